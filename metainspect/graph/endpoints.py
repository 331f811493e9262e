"""The serving endpoints of a model: which signature a client gets, what it feeds and fetches.

One rule for ``info``, ``check``, ``export``, ``edit`` and ``graph``:

* the **serving signature** (:func:`serving_signature`) is ``serving_default`` when the model has
  it (what TF Serving answers a request that names no signature), else its only SignatureDef (the
  one every client must name), else none; the loader's own ``__…`` entries never count;
* what gets served (:func:`served_endpoints`): the given outputs, else every SignatureDef, else
  the proposal of :func:`metainspect.graph.proposal.propose`;
* what ``info`` shows (:func:`summary_endpoints`): the serving signature, else the graph's
  :func:`likely_inputs` and :func:`likely_outputs`;
* TF Serving's Classify and Regress rules for a signature's keys and dtypes
  (:func:`method_problems`): what ``edit --add-signature`` enforces and ``check`` reports.

The ranked proposal for graphs without a usable signature is :mod:`metainspect.graph.proposal`,
a module of its own so that the commands needing only this rule (``info`` above all) do not load
the ranking and the walks behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from metainspect.graph.names import op_name, tensor_name

if TYPE_CHECKING:
    from metainspect.graph.attrs import Shape
    from metainspect.graph.model import Model, Node, Placeholder, Signature, TensorSpec

#: the SignatureDef key TF Serving uses when a request names none
SERVING_DEFAULT = "serving_default"
#: the tag of the meta graph a server loads
SERVE_TAG = "serve"
#: the SignatureDef a TF2 SavedModel's loader runs to initialize (not a serving signature)
INIT_OP_SIGNATURE = "__saved_model_init_op"
#: SignatureDef keys starting with this are the loader's, not a client's
_INTERNAL_PREFIX = "__"

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
#: short method names -> SignatureDef method names
METHODS = {"predict": PREDICT, "classify": CLASSIFY, "regress": REGRESS}
#: TF Serving's Classify and Regress APIs: method -> (input key, {output key: dtype})
METHOD_KEYS = {
    CLASSIFY: ("inputs", {"classes": "string", "scores": "float32"}),
    REGRESS: ("inputs", {"outputs": "float32"}),
}
#: dtypes a client can never receive
UNSERVABLE_DTYPES = frozenset({"resource", "variant"})


# -- the serving signature ----------------------------------------------------------------------

def serving_signatures(model: Model) -> dict[str, Signature]:
    """The SignatureDefs a client can call, by key (the loader's own ``__…`` ones left out)."""
    return {k: s for k, s in model.signatures().items() if not k.startswith(_INTERNAL_PREFIX)}


def serving_signature(model: Model) -> Signature | None:
    """``serving_default``, else the only SignatureDef, else None (see the module docstring)."""
    signatures = serving_signatures(model)
    if SERVING_DEFAULT in signatures:
        return signatures[SERVING_DEFAULT]
    return next(iter(signatures.values())) if len(signatures) == 1 else None


def signature_tensors(spec: TensorSpec) -> list[str]:
    """The graph tensors one signature entry names (a sparse or composite entry names several)."""
    if spec.encoding == "name":
        return [spec.name] if spec.name else []
    return [t for t in spec.components if t]


class Endpoint(NamedTuple):
    """One thing that gets served: a label for messages, its output tensors and what is fed."""

    label: str
    outputs: list[str]
    fed: list[str]


def served_endpoints(model: Model, inputs: Mapping[str, str] | None = None,
                     outputs: Mapping[str, str] | None = None) -> list[Endpoint]:
    """What gets served, given the endpoints a user named (key -> tensor; none: decided here).

    The given outputs; with only inputs given, the outputs proposed for them; else the model's
    SignatureDefs, else the proposal. Tensors naming absent nodes are left out (the signature
    check reports them).
    """
    from metainspect.graph.proposal import propose
    from metainspect.graph.walk import index_of

    nodes = index_of(model).nodes
    if outputs:
        outs = [t for t in outputs.values() if op_name(t) in nodes]
        return [Endpoint("the given outputs", outs, list((inputs or {}).values()))] if outs else []
    result = []
    for key, sig in ({} if inputs else serving_signatures(model)).items():
        outs = [t for spec in sig.outputs.values() for t in signature_tensors(spec) if op_name(t) in nodes]
        fed = [t for spec in sig.inputs.values() for t in signature_tensors(spec)]
        if outs:
            result.append(Endpoint(f"signature {key!r}", outs, fed))
    if result:
        return result
    proposal = propose(model, dict(inputs) if inputs else None)
    if proposal.outputs:
        return [Endpoint("the proposed outputs", list(proposal.outputs.values()), list(proposal.inputs.values()))]
    return []


def likely_inputs(model: Model) -> list[Placeholder]:
    """Placeholders a caller would feed (the saver's own are left out)."""
    return model.placeholders()


def likely_outputs(model: Model) -> list[Node]:
    """Sink nodes that look like model outputs rather than training or bookkeeping ops."""
    from metainspect.graph.roles import is_auxiliary
    from metainspect.graph.walk import is_variable_read

    nodes = model.nodes_by_name()
    consumed = model.consumers()
    scope = model.saver_scope()
    return [n for n in model.nodes()
            if n.name not in consumed and not is_auxiliary(n, scope) and not is_variable_read(nodes, n)]


def summary_endpoints(model: Model) -> tuple[list[tuple[str | None, str | None, Shape]], list[str]]:
    """What ``info`` shows: ``([(input tensor, dtype, shape)], [output tensors])``.

    The serving signature's entries when there is one (see :func:`serving_signature`), else
    the likely inputs and outputs of the graph.
    """
    signature = serving_signature(model)
    if signature is not None:
        return ([(spec.name, spec.dtype, spec.shape) for spec in signature.inputs.values()],
                [spec.name or spec.encoding for spec in signature.outputs.values()])
    return ([(p.tensor, p.dtype, p.shape) for p in likely_inputs(model)],
            [tensor_name(n.name) for n in likely_outputs(model)])


def method_name(method: str) -> str:
    """``predict`` -> ``tensorflow/serving/predict``; full names pass through."""
    return METHODS.get(method, method)


def method_problems(method: str, inputs: Mapping[str, str | None],
                    outputs: Mapping[str, str | None]) -> list[str]:
    """How a signature breaks TF Serving's Classify/Regress rules (none for other methods).

    ``inputs``/``outputs`` map keys to dtype names, None where the dtype is unknown (an
    unknown dtype is never reported). The rules are what ``classification_signature_def`` and
    ``regression_signature_def`` build: one serialized tf.Example string under ``inputs``, and
    the outputs those APIs know.
    """
    if method not in METHOD_KEYS:
        return []
    input_key, output_types = METHOD_KEYS[method]
    wanted_input = f"needs exactly one input {input_key!r}, a string tensor of serialized tf.Examples"
    problems = []
    if set(inputs) != {input_key}:
        problems.append(f"{wanted_input} (has {sorted(inputs)})")
    elif inputs[input_key] not in (None, "string"):
        problems.append(f"{wanted_input} (is {inputs[input_key]})")
    if not outputs or set(outputs) - output_types.keys():
        allowed = " and/or ".join(f"{key!r} ({dtype})" for key, dtype in output_types.items())
        problems.append(f"outputs must be {allowed} (has {sorted(outputs)})")
    problems += [f"output {key!r} must be a {output_types[key]} tensor (is {dtype})"
                 for key, dtype in outputs.items() if key in output_types and dtype not in (None, output_types[key])]
    return problems
