"""The signature check: do the named inputs and outputs exist and suffice, and what to propose.

With ``--input``/``--output`` given, every tensor must exist as ``op:index`` and every output's
placeholders must be fed. With none given, a :class:`Proposal` is made: a SavedModel's
``serving_default`` when it has one, else ranked candidates from the graph (see
:func:`propose`). SignatureDefs stored in the model are checked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.serving import GRADIENT_SCOPE, VARIABLE_UPDATE_OPS, is_input_pipeline
from metainspect.formats.graph_file import SAVED_MODEL
from metainspect.graph.attrs import Shape
from metainspect.graph.model import PLACEHOLDER_OPS, VARIABLE_OPS, op_name
from metainspect.graph.outputs import OutputSpec, output_spec, outputs_of
from metainspect.graph.roles import AUXILIARY_OPS, AUXILIARY_SCOPES, TRAINING_OP_PREFIXES
from metainspect.graph.walk import GraphIndex, ancestors, feeds_needed, forward_masks, index_of, tensor_key

if TYPE_CHECKING:
    from metainspect.graph.model import Model, Node, Placeholder, Signature, TensorSpec

SERVING_DEFAULT = "serving_default"
HIGH, MEDIUM, LOW = "high", "medium", "low"
#: last name components that say "this is what the model produces"
OUTPUT_WORDS = frozenset({
    "output", "outputs", "logits", "probs", "probabilities", "prob", "prediction", "predictions",
    "pred", "preds", "y_pred", "scores", "classes", "class_ids", "embedding", "embeddings",
    "result", "results", "softmax", "sigmoid",
})
#: output words that name an op rather than a role; they rank but are never added alongside a sink
_OP_LIKE_WORDS = frozenset({"softmax", "sigmoid"})
#: ops whose result usually is a model output
OUTPUT_OPS = frozenset({"Softmax", "Sigmoid", "ArgMax", "TopKV2"})
#: name fragments of loss and metric computations (evaluation, not inference)
LOSS_FRAGMENTS = ("loss", "cost", "xent", "cross_entropy", "crossentropy", "accuracy", "metric")
LOSS_OPS = frozenset({"SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits", "L2Loss"})
#: name fragments of placeholders that carry training targets
LABEL_FRAGMENTS = ("label", "target", "y_true", "ground_truth", "groundtruth")
_READ_OPS = frozenset({"Identity", "ReadVariableOp", "Snapshot"})
#: ops a label passes through on its way into a cross-entropy op (first input followed)
_PASS_THROUGH_OPS = frozenset({"Identity", "StopGradient", "Reshape", "Cast", "ExpandDims", "Squeeze", "OneHot"})
#: names TF gives control-flow plumbing (``tf.cond``'s branch identities)
_PLUMBING_WORDS = frozenset({"switch_t", "switch_f", "pred_id"})
#: control-flow ops that route values and never are a result (Merge and Exit can be)
_PLUMBING_OPS = frozenset({"Switch", "RefSwitch", "Enter", "RefEnter", "NextIteration", "RefNextIteration",
                           "LoopCond", "ControlTrigger"})
#: default names TF's Python API gives ops whose op type is spelled differently
_AUTO_WORDS = frozenset({"truediv", "floordiv", "add_n", "concat", "stack", "einsum", "tensordot",
                         "clip_by_value", "random_uniform", "random_normal", "truncated_normal", "zeros",
                         "ones", "zeros_like", "ones_like", "strided_slice", "transpose", "matmul"})
_UNSERVABLE_DTYPES = frozenset({"resource", "variant"})
#: ranked alternatives kept in a proposal
MAX_CANDIDATES = 20
#: graphs up to this size are searched whole for "did you mean" suggestions
MAX_SUGGESTION_POOL = 20000
#: taint bits: what makes a node training, evaluation or saver work rather than inference
_SAVER, _TRAIN, _EVAL, _LABEL = 1, 2, 4, 8
#: loss and metric name fragments, matched against a lower-cased name (literal alternation: fast)
_LOSS_NAME = re.compile("|".join(LOSS_FRAGMENTS))
#: ops that are never computation a client asks for
_NOT_COMPUTE_OPS = AUXILIARY_OPS | VARIABLE_OPS | PLACEHOLDER_OPS
#: a cheap pre-test for _NOT_COMPUTE_SCOPE (a literal alternation is searched fast)
_SCOPE_HINT = re.compile("|".join(AUXILIARY_SCOPES) + "|save|gradients|Initializer|Adam|GradientDescent|Momentum|"
                         "RMSProp|Adagrad|Adadelta|Ftrl|Proximal")
#: graph_roles' auxiliary scopes at the start of a name; gradient, initializer and optimizer scopes anywhere
_NOT_COMPUTE_SCOPE = re.compile(
    "^(?:" + "|".join(re.escape(s) for s in AUXILIARY_SCOPES) + r"|save(?:_\d+)?/)"
    r"|(?:^|/)(?:gradients(?:_\d+)?|Initializer|Adam|GradientDescent|Momentum|RMSProp|Adagrad|AdagradDA|"
    r"Adadelta|Ftrl|ProximalAdagrad|ProximalGradientDescent)(?:_\d+)?/")


@dataclass(frozen=True)
class Candidate:
    """One ranked choice for a signature entry: a tensor, the key it would get, and why."""

    role: str  # "output" | "input" | "optional-input" | "unused-input"
    key: str
    tensor: str
    score: int
    dtype: str | None
    shape: Shape
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "key": self.key, "tensor": self.tensor, "score": self.score,
                "dtype": self.dtype, "shape": self.shape, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Proposal:
    """The signature to use: key -> tensor name for inputs and outputs, and how sure that is.

    ``source`` is "given" (from ``--input``/``--output``), "signature" (the SavedModel's
    ``serving_default``) or "inferred" (ranked from the graph). ``unambiguous`` is True when
    an export may use it without asking; ``note`` says what was decided or must be decided.
    """

    inputs: dict[str, str]
    outputs: dict[str, str]
    unambiguous: bool
    confidence: str
    candidates: tuple[Candidate, ...] = ()
    optional_inputs: dict[str, str] = field(default_factory=dict)
    source: str = "inferred"
    note: str = ""
    specs: dict[str, OutputSpec] = field(default_factory=dict, repr=False)

    def explain(self) -> str:
        """One or two sentences: the proposed signature, and the choice left to the user."""
        ins = ", ".join(f"{k}={v}" for k, v in self.inputs.items()) or "nothing"
        outs = ", ".join(f"{k}={v}" for k, v in self.outputs.items()) or "nothing"
        label = {"given": "given signature", "signature": "the model's own signature"}.get(self.source, "proposed signature")
        head = f"{label} ({self.confidence} confidence): inputs {ins}; outputs {outs}."
        return f"{head} {self.note}".strip()

    def to_json(self) -> dict[str, Any]:
        def spec(tensor: str) -> dict[str, Any]:
            found = self.specs.get(tensor)
            return {"tensor": tensor, "dtype": found.dtype if found else None,
                    "shape": found.shape if found else None}

        return {
            "source": self.source, "unambiguous": self.unambiguous, "confidence": self.confidence,
            "inputs": {k: spec(v) for k, v in self.inputs.items()},
            "outputs": {k: spec(v) for k, v in self.outputs.items()},
            "optional_inputs": {k: spec(v) for k, v in self.optional_inputs.items()},
            "note": self.note, "explain": self.explain(),
            "candidates": [c.to_json() for c in self.candidates],
        }


def check_signature(ctx: CheckContext) -> tuple[list[Finding], Proposal]:
    """Check the given endpoints (or propose some) and the model's own SignatureDefs."""
    model = ctx.model
    findings = check_signature_defs(model)
    if ctx.inputs or ctx.outputs:
        given_findings, proposal = _check_given(model, ctx.inputs, ctx.outputs)
        findings += given_findings
    else:
        proposal = propose(model)
        findings.append(_proposal_finding(model, proposal))
    return findings, proposal


def endpoints(ctx: CheckContext) -> list[tuple[str, list[str], list[str]]]:
    """What gets served: ``(label, output tensors, fed tensors)`` per signature.

    The given ``--output``s; with only ``--input``s given, the outputs proposed for them; else
    the model's SignatureDefs, else the proposal. Tensors naming absent nodes are left out (the
    signature check reports them).
    """
    model = ctx.model
    nodes = index_of(model).nodes
    if ctx.outputs:
        outs = [t for t in ctx.outputs.values() if op_name(t) in nodes]
        return [("the given outputs", outs, list(ctx.inputs.values()))] if outs else []
    result = []
    signatures = {} if ctx.inputs else model.signatures()
    for key, sig in signatures.items():
        if key.startswith("__"):
            continue
        outs = [t for spec in sig.outputs.values() for t in _tensors(spec) if op_name(t) in nodes]
        fed = [t for spec in sig.inputs.values() for t in _tensors(spec)]
        if outs:
            result.append((f"signature {key!r}", outs, fed))
    if result:
        return result
    proposal = propose(model, ctx.inputs or None)
    if proposal.outputs:
        return [("the proposed outputs", list(proposal.outputs.values()), list(proposal.inputs.values()))]
    return []


# -- stored SignatureDefs -----------------------------------------------------------------------

def check_signature_defs(model: Model) -> list[Finding]:
    """Tensors, dtypes, shapes and feeds of every SignatureDef; ``serving_default`` for SavedModels."""
    findings: list[Finding] = []
    signatures = {k: s for k, s in model.signatures().items() if not k.startswith("__")}
    if model.kind == SAVED_MODEL and SERVING_DEFAULT not in signatures:
        have = ", ".join(signatures) or "none"
        findings.append(Finding(
            "signature.no-serving-default", WARNING,
            f"the SavedModel has no {SERVING_DEFAULT!r} signature (signatures: {have}); TF Serving "
            f"requests must then name a signature, and clients that do not will fail",
            SERVING_DEFAULT,
            f"add one: metainspect edit {model.path} -o OUT --add-signature {SERVING_DEFAULT} "
            f"--input KEY=TENSOR --output KEY=TENSOR (or name the signature in every request)",
            {"signatures": list(signatures)},
        ))
    index = index_of(model)
    for key, sig in signatures.items():
        findings += _check_one_signature(model, index, key, sig)
    return findings


def _check_one_signature(model: Model, index: GraphIndex, key: str, sig: Signature) -> list[Finding]:
    findings: list[Finding] = []
    raw = model.meta_graph.signature_def[key]
    for role, entries, infos in (("input", sig.inputs, raw.inputs), ("output", sig.outputs, raw.outputs)):
        for name, spec in entries.items():
            where = f"signature {key!r} {role} {name!r}"
            for tensor in _tensors(spec):
                found, problem = _lookup(model, index, tensor, where)
                if problem is not None:
                    findings.append(problem)
                elif found is not None and spec.encoding == "name":
                    declared = spec.shape if infos[name].HasField("tensor_shape") else None
                    findings += _compare_spec(where, spec.dtype, declared, found, _recreate(model, key, sig))
    fed = [t for spec in sig.inputs.values() for t in _tensors(spec)]
    outs = [t for spec in sig.outputs.values() for t in _tensors(spec) if op_name(t) in index.nodes]
    findings += _missing_feeds(model, index, outs, fed, f"signature {key!r}")
    findings += _method_conventions(key, sig)
    return findings


def _tensors(spec: TensorSpec) -> list[str]:
    if spec.encoding == "name":
        return [spec.name] if spec.name else []
    return [t for t in spec.components if t]


def _compare_spec(where: str, dtype: str | None, shape: Shape, found: OutputSpec, fix: str) -> list[Finding]:
    """A declared dtype and shape (None: not declared) against the graph's."""
    if dtype and found.dtype and dtype != found.dtype:
        return [Finding(
            "signature.dtype-mismatch", ERROR,
            f"{where} declares {dtype} but {found.tensor} is {found.dtype}; requests fail to convert",
            found.tensor, fix, {"declared": dtype, "graph": found.dtype},
        )]
    if not shapes_compatible(shape, found.shape):
        return [Finding(
            "signature.shape-mismatch", WARNING,
            f"{where} declares shape {shape} but {found.tensor} has shape {found.shape}",
            found.tensor, fix, {"declared": shape, "graph": found.shape},
        )]
    return []


def _recreate(model: Model, key: str, sig: Signature) -> str:
    """The edit command that rebuilds a signature with dtypes and shapes taken from the graph."""
    args = [f"--input {k}={v.name}" for k, v in sig.inputs.items() if v.name]
    args += [f"--output {k}={v.name}" for k, v in sig.outputs.items() if v.name]
    return (f"re-create it from the graph: metainspect edit {model.path} -o OUT --remove-signature {key} "
            f"--add-signature {key} {' '.join(args)}")


def shapes_compatible(a: Shape, b: Shape) -> bool:
    """False only when both ranks are known and differ, or a dimension known on both sides differs."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


#: TF Serving's Classify and Regress APIs: method -> (input key, {output key: dtype})
_METHOD_KEYS = {
    "tensorflow/serving/classify": ("inputs", {"classes": "string", "scores": "float32"}),
    "tensorflow/serving/regress": ("inputs", {"outputs": "float32"}),
}


def _method_conventions(key: str, sig: Signature) -> list[Finding]:
    """Classify/regress signatures take one serialized tf.Example string under ``inputs`` and
    return the outputs those APIs know (what ``classification_signature_def`` /
    ``regression_signature_def`` build)."""
    if sig.method_name not in _METHOD_KEYS:
        return []
    input_key, output_types = _METHOD_KEYS[sig.method_name]
    method = sig.method_name.rsplit("/", 1)[1]
    problems = []
    spec = sig.inputs.get(input_key)
    if len(sig.inputs) != 1 or spec is None:
        problems.append(f"needs exactly one input named {input_key!r} (has {sorted(sig.inputs)})")
    elif spec.dtype not in (None, "string"):
        problems.append(f"input {input_key!r} must be a string tensor of serialized tf.Example (is {spec.dtype})")
    if not sig.outputs or set(sig.outputs) - output_types.keys():
        problems.append(f"outputs must be among {sorted(output_types)} (has {sorted(sig.outputs)})")
    problems += [f"output {name!r} must be {output_types[name]} (is {out.dtype})"
                 for name, out in sig.outputs.items()
                 if name in output_types and out.dtype not in (None, output_types[name])]
    return [Finding(
        "signature.method-keys", WARNING,
        f"signature {key!r} ({method}) {'; '.join(problems)}: TF Serving's {method.capitalize()} API "
        f"rejects it (the Predict API still works)",
        key, f"use method tensorflow/serving/predict for {key!r}, or follow the {method} conventions",
        {"method": sig.method_name, "problems": problems},
    )] if problems else []


# -- given endpoints ----------------------------------------------------------------------------

def _check_given(model: Model, inputs: dict[str, str], outputs: dict[str, str]) -> tuple[list[Finding], Proposal]:
    index = index_of(model)
    findings: list[Finding] = []
    specs: dict[str, OutputSpec] = {}
    for role, entries in (("input", inputs), ("output", outputs)):
        for key, tensor in entries.items():
            found, problem = _lookup(model, index, tensor, f"{role} {key!r}")
            if problem is not None:
                findings.append(problem)
                continue
            if found is None:
                continue
            specs[tensor] = found
            findings += _role_findings(index, role, key, tensor, found)
    valid_in = [t for t in inputs.values() if t in specs]
    valid_out = [t for t in outputs.values() if t in specs]
    if not outputs:
        proposal = propose(model, given_inputs=inputs)
        return findings, proposal
    if inputs:
        findings += _missing_feeds(model, index, valid_out, valid_in, "the given outputs")
        findings += _unused_inputs(index, inputs, valid_out, specs)
        chosen_inputs, optional = dict(inputs), {}
    else:
        feeds = feeds_needed(index, valid_out)
        chosen_inputs = _keyed(feeds.required)
        optional = _keyed(feeds.optional)
        for name in feeds.required + feeds.optional:
            specs[f"{name}:0"] = _spec(model, f"{name}:0")
    ok = not any(f.severity == ERROR for f in findings)
    note = ("the given signature has errors (see findings)" if not ok else
            "as given" if inputs else "inputs are the placeholders the given outputs need")
    return findings, Proposal(chosen_inputs, dict(outputs), ok, HIGH if ok else LOW, (),
                              optional, "given", note, specs)


def _lookup(model: Model, index: GraphIndex, tensor: str, where: str) -> tuple[OutputSpec | None, Finding | None]:
    """The tensor's spec, or a finding saying why it is not there (absent node, index too high)."""
    name = op_name(tensor)
    if name not in index.nodes:
        close = get_close_matches(name, _similar_names(index, name), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(c + ':0' for c in close)}?" if close else \
            "list the graph's nodes with: metainspect nodes MODEL"
        return None, Finding("signature.missing-tensor", ERROR, f"{where}: no node named {name!r} in the graph",
                             tensor, hint, {"suggestions": [f"{c}:0" for c in close]})
    try:
        return output_spec(model, tensor), None
    except (LookupError, ValueError) as exc:
        outputs = outputs_of(model, name) or []
        return None, Finding("signature.bad-index", ERROR, f"{where}: {exc}", tensor,
                             f"use one of {', '.join(o.tensor for o in outputs) or 'no outputs: pick another node'}",
                             {"outputs": [o.tensor for o in outputs]})


def _similar_names(index: GraphIndex, name: str) -> list[str]:
    """Names worth comparing with a mistyped one: all of a small graph; in a large one those
    sharing the last name component, placeholders and nodes nothing consumes."""
    if len(index.nodes) <= MAX_SUGGESTION_POOL:
        return list(index.nodes)
    last = name.rsplit("/", 1)[-1]
    return [n for n, node in index.nodes.items()
            if n.rsplit("/", 1)[-1] == last or node.op in PLACEHOLDER_OPS or n not in index.consumers]


def _role_findings(index: GraphIndex, role: str, key: str, tensor: str, found: OutputSpec) -> list[Finding]:
    node = index.nodes[op_name(tensor)]
    if role == "input" and node.op not in PLACEHOLDER_OPS:
        return [Finding(
            "signature.input-not-placeholder", INFO,
            f"input {key!r} feeds {tensor}, computed by a {node.op} node: feeding it overrides that "
            f"computation (fine for TF Serving, but the ops behind it still load)",
            tensor, "feed a placeholder instead if the graph has one for this value", {"op": node.op},
        )]
    if role == "output" and found.dtype in _UNSERVABLE_DTYPES:
        return [Finding(
            "signature.unservable-output", ERROR,
            f"output {key!r} is {tensor}, a {found.dtype} tensor: it cannot be returned to a client",
            tensor, "pick a tensor the model computes (the value, not the handle)", {"dtype": found.dtype},
        )]
    return []


def _missing_feeds(model: Model, index: GraphIndex, outputs: list[str], fed: list[str], label: str) -> list[Finding]:
    """One error per placeholder some output needs but nobody feeds."""
    if not outputs:
        return []
    findings = []
    required = feeds_needed(index, outputs, fed).required
    reach = {t: ancestors(index, [t], fed) for t in outputs} if required else {}
    for name in required:
        needing = [t for t in outputs if name in reach[t]]
        spec = _spec(model, f"{name}:0")
        findings.append(Finding(
            "signature.missing-feed", ERROR,
            f"{label}: {', '.join(needing)} need{'s' if len(needing) == 1 else ''} placeholder {name!r} "
            f"({spec.dtype}, shape {spec.shape}), which is not an input; running it fails with "
            f"'You must feed a value for placeholder tensor'",
            name, f"add it as an input: --input {_key_for(name)}={name}:0",
            {"placeholder": f"{name}:0", "needed_by": needing, "dtype": spec.dtype, "shape": spec.shape},
        ))
    return findings


def _unused_inputs(index: GraphIndex, inputs: dict[str, str], outputs: list[str],
                   specs: dict[str, OutputSpec]) -> list[Finding]:
    if not outputs:
        return []
    needed = ancestors(index, outputs)
    return [Finding(
        "signature.unused-input", WARNING,
        f"input {key!r} ({tensor}) does not affect any output: clients must send it for nothing",
        tensor, f"drop --input {key}={tensor}", {},
    ) for key, tensor in inputs.items() if tensor in specs and op_name(tensor) not in needed]


# -- proposal -----------------------------------------------------------------------------------

def propose(model: Model, given_inputs: dict[str, str] | None = None) -> Proposal:
    """Propose a signature for a model, given some inputs or none (memoised per model and inputs).

    A ``serving_default`` SignatureDef wins. Otherwise output candidates are the inference
    sinks (computing nodes no inference node consumes: not saver, init, summary, optimizer,
    initializer or control-flow plumbing, not variable reads) and nodes named like outputs,
    scored: sink +3, output-like name +3, output-like op +1, explicitly named Identity +1,
    auto-generated name -1, and -6 for each demotion: a loss or metric, depends on a label
    placeholder (named like one, or feeding a cross-entropy's labels), on gradients or
    optimizer updates, on the saver, on placeholders beyond ``given_inputs``, or on no
    placeholder at all. Demoted candidates are never chosen. The proposal is the sensible sinks
    (plus output-named nodes on the path of a single sink, like ``logits`` and ``probs`` before
    ``prediction``) with the placeholders they need as inputs; it is unambiguous when exactly
    one sensible sink with a meaningful name remains, or several output-named ones needing the
    same inputs.
    """
    memo = index_of(model).memo
    key = ("proposal", tuple(sorted(given_inputs.items())) if given_inputs is not None else None)
    if key not in memo:
        memo[key] = (_Ranker(model, given_inputs).proposal() if given_inputs is not None else
                     _signature_proposal(model) or _Ranker(model, None).proposal())
    return memo[key]  # type: ignore[no-any-return]


def _signature_proposal(model: Model) -> Proposal | None:
    """The model's ``serving_default`` SignatureDef, else its only one, as a proposal."""
    signatures = {k: v for k, v in model.signatures().items() if not k.startswith("__")}
    key = SERVING_DEFAULT if SERVING_DEFAULT in signatures else next(iter(signatures)) if len(signatures) == 1 else None
    if key is None:
        return None
    sig = signatures[key]
    index = index_of(model)
    specs = {}
    for spec in list(sig.inputs.values()) + list(sig.outputs.values()):
        if spec.encoding != "name" or not spec.name or op_name(spec.name) not in index.nodes:
            return None
        specs[spec.name] = _spec(model, spec.name)
    inputs = {k: v.name for k, v in sig.inputs.items() if v.name}
    outputs = {k: v.name for k, v in sig.outputs.items() if v.name}
    if key == SERVING_DEFAULT:
        return Proposal(inputs, outputs, True, HIGH, (), {}, "signature", f"From its {key!r} SignatureDef.", specs)
    return Proposal(inputs, outputs, True, MEDIUM, (), {}, "signature",
                    f"From its only SignatureDef, {key!r}.", specs)


@dataclass(frozen=True)
class _Scored:
    """An output candidate with its score, the reasons for it and what demotes it (if anything)."""

    score: int
    node: Node
    reasons: tuple[str, ...]
    demotion: str | None


class _Ranker:
    """Classifies the graph's nodes, scores output candidates and assembles the proposal.

    Two forward propagations (:func:`forward_masks`) label the nodes: ``taint`` marks what
    depends on the saver's placeholders, on training machinery (gradients, optimizer updates),
    on evaluation (losses, metrics) or on a label placeholder; ``feeds`` gives every node of
    the untainted part a bit per placeholder (and given input) it depends on.
    """

    def __init__(self, model: Model, given_inputs: dict[str, str] | None) -> None:
        self.model = model
        self.index = index_of(model)
        self.scope = model.saver_scope()
        self.given = given_inputs
        user = model.placeholders()
        self.placeholders = [p.name for p in user]
        self.defaults = {p.name for p in user if p.has_default}
        given_ops = [op_name(t) for t in (given_inputs or {}).values() if op_name(t) in self.index.nodes]
        self.labels = self._label_placeholders() - set(given_ops)  # what the user feeds is no label
        self.bit = {name: 1 << i for i, name in enumerate(dict.fromkeys(self.placeholders + given_ops))}
        self.taint = forward_masks(self.index, self._taint_sources(user))
        self.feeds = forward_masks(self.index, self.bit, stops=set(given_ops), barrier=self.taint.keys())
        self.compute = self._compute_nodes()
        deps = self.index.deps
        self.used_by_compute: set[str] = set()
        self.used_by_inference: set[str] = set()
        for name in self.compute:
            self.used_by_compute.update(deps[name])
            if name not in self.taint:
                self.used_by_inference.update(deps[name])

    def _taint_sources(self, user: list[Placeholder]) -> dict[str, int]:
        names = {p.name for p in user}
        sources = {p.name: _SAVER for p in self.model.placeholders(include_saver=True) if p.name not in names}
        sources.update((p, _LABEL) for p in self.labels)
        loss_name = _LOSS_NAME.search
        for name, node in self.index.nodes.items():
            op = node.op
            if op.startswith(TRAINING_OP_PREFIXES) or ("gradients" in name and GRADIENT_SCOPE.search(name)):
                sources[name] = _TRAIN
            elif op in LOSS_OPS or loss_name(name.lower()):
                sources.setdefault(name, _EVAL)
        return sources

    def _label_placeholders(self) -> set[str]:
        """Placeholders named like labels, or feeding a cross-entropy op's ``labels`` input."""
        found = {p for p in self.placeholders if any(f in p.lower() for f in LABEL_FRAGMENTS)}
        nodes = self.index.nodes
        for node in self.model.nodes():
            if node.op in LOSS_OPS and len(node.inputs) > 1:
                source = nodes.get(op_name(node.inputs[1]))
                for _ in range(16):
                    if source is None or source.op not in _PASS_THROUGH_OPS or not source.inputs:
                        break
                    source = nodes.get(op_name(source.inputs[0]))
                if source is not None:
                    found.add(source.name)
        return found & set(self.placeholders)

    # -- classification --------------------------------------------------------------------
    def _compute_nodes(self) -> set[str]:
        """Nodes computing something: not saver, init, summary, optimizer, variable or initializer work."""
        nodes, consumers, scope = self.index.nodes, self.index.consumers, self.scope
        hint, search = _SCOPE_HINT.search, _NOT_COMPUTE_SCOPE.search
        found = set()
        for name, node in nodes.items():
            op = node.op
            if (op in _NOT_COMPUTE_OPS or op.startswith(TRAINING_OP_PREFIXES) or (hint(name) and search(name))
                    or (scope and name.startswith(scope)) or (op in _READ_OPS and self._is_variable_read(node))):
                continue
            users = consumers.get(name)
            if users and nodes[users[0]].op in VARIABLE_UPDATE_OPS and all(nodes[c].op in VARIABLE_UPDATE_OPS for c in users):
                continue  # an initial value or an update amount
            found.add(name)
        return found

    def _is_variable_read(self, node: Node) -> bool:
        for _ in range(16):
            if node.op not in _READ_OPS or not node.inputs:
                return False
            source = self.index.nodes.get(op_name(node.inputs[0]))
            if source is None:
                return False
            if source.op in VARIABLE_OPS:
                return True
            node = source
        return False

    def is_sink(self, name: str) -> bool:
        """No inference node consumes it."""
        return name not in self.used_by_inference

    def is_strict_sink(self, name: str) -> bool:
        """No compute node at all consumes it (a loss feeding only summaries and gradients)."""
        return name not in self.used_by_compute

    def mask(self, name: str) -> int:
        return self.feeds.get(name, 0)

    # -- ranking ---------------------------------------------------------------------------
    def pool(self) -> list[Node]:
        """Inference sinks, strict sinks and output-named compute nodes, with servable outputs."""
        found = []
        compute, taint = self.compute, self.taint
        for node in self.model.nodes():
            name = node.name
            if name not in compute:
                continue
            word = _word(name)
            unused = name not in self.used_by_compute if name in taint else name not in self.used_by_inference
            if ((word in OUTPUT_WORDS or unused) and node.op not in _PLUMBING_OPS and word not in _PLUMBING_WORDS
                    and not self._junk(node) and self._servable(node)):
                found.append(node)
        return found

    def _junk(self, node: Node) -> bool:
        """Auto-named and fed by nothing (initial values, bookkeeping) in a graph that has inputs."""
        return bool(self.placeholders) and _auto_named(node) and not self._feeds(self.mask(node.name))

    def _servable(self, node: Node) -> bool:
        if is_input_pipeline(node.op):
            return False
        outs = outputs_of(self.model, node.name)
        return outs is None or any(o.dtype not in _UNSERVABLE_DTYPES for o in outs)

    def score(self, node: Node) -> _Scored:
        """Rank a candidate; a demoted one (a loss, a saver op…) is never chosen as an output."""
        mask = self.mask(node.name)
        reasons: list[str] = []
        score = 0
        word = _word(node.name)
        if self.is_sink(node.name):
            score += 3
            reasons.append("nothing in the model consumes it")
        if word in OUTPUT_WORDS:
            score += 3
            reasons.append(f"named like an output ({word!r})")
        if node.op in OUTPUT_OPS:
            score += 1
            reasons.append(f"{node.op} usually ends a model")
        if _auto_named(node):
            score -= 1
            reasons.append("auto-generated name")
        elif node.op == "Identity":
            score += 1
            reasons.append("explicitly named Identity")
        taint = self.taint.get(node.name, 0)
        demotions = [reason for applies, reason in (
            (_loss_like(node) or taint & _EVAL, "a loss or metric"),
            (taint & _LABEL, f"needs a label placeholder ({', '.join(sorted(self.labels))})"),
            (taint & _TRAIN, "depends on gradients or optimizer updates"),
            (taint & _SAVER, "part of the saver"),
            (self.given is not None and not self._covered_by_given(mask), "needs placeholders beyond the given inputs"),
        ) if applies]
        if not demotions and self.placeholders and not self._feeds(mask):
            demotions.append("needs no input (computed from variables and constants)")
        score -= 6 * len(demotions)
        return _Scored(score, node, tuple(reasons + demotions), demotions[0] if demotions else None)

    def _feeds(self, mask: int) -> list[str]:
        return [p for p in self.placeholders if mask & self.bit[p] and p not in self.defaults]

    def _covered_by_given(self, mask: int) -> bool:
        assert self.given is not None
        given = {op_name(t) for t in self.given.values()}
        given_bits = sum(self.bit[g] for g in given if g in self.bit)
        return bool(mask & given_bits) and set(self._feeds(mask)) <= given

    # -- proposal --------------------------------------------------------------------------
    def proposal(self) -> Proposal:
        scored = sorted((self.score(node) for node in self.pool()), key=lambda c: (-c.score, c.node.name))
        sinks = [c.node for c in scored if c.demotion is None and self.is_sink(c.node.name)]
        demoted = [c for c in scored if c.demotion is not None and self.is_strict_sink(c.node.name)]
        chosen = (sinks or [scored[0].node]) if scored else []
        extra = self._named_on_path(sinks[0], scored) if len(sinks) == 1 else []
        outputs = _keyed_tensors([t for node in chosen + extra for t in self._tensors_of(node)])
        unambiguous, confidence, note = self._judge(sinks, demoted, chosen)
        mask = 0
        for node in chosen + extra:
            mask |= self.mask(node.name)
        if self.given is not None:
            inputs, optional = dict(self.given), {}
        else:
            inputs = _keyed(self._feeds(mask))
            optional = _keyed([p for p in self.placeholders if mask & self.bit[p] and p in self.defaults])
        specs = {t: _spec(self.model, t) for t in [*outputs.values(), *inputs.values(), *optional.values()]
                 if op_name(t) in self.index.nodes}
        candidates = self._candidates(scored, mask)
        return Proposal(inputs, outputs, unambiguous, confidence, candidates, optional, "inferred", note, specs)

    def _named_on_path(self, sink: Node, scored: list[_Scored]) -> list[Node]:
        """Output-named nodes feeding the single chosen sink, at no deeper scope (``logits``, ``probs``)."""
        depth = sink.name.count("/")
        named = [c.node for c in scored
                 if c.demotion is None and c.node is not sink and c.node.name.count("/") <= depth
                 and _word(c.node.name) in OUTPUT_WORDS - _OP_LIKE_WORDS]
        if not named:
            return []
        path = ancestors(self.index, [sink.name])
        return [n for n in named if n.name in path]

    def _judge(self, sinks: list[Node], demoted: list[_Scored], chosen: list[Node]) -> tuple[bool, str, str]:
        if not chosen:
            return False, LOW, "no output candidates found: name the outputs with --output KEY=TENSOR"
        names = ", ".join(n.name for n in chosen)
        left_out = " (left out: " + ", ".join(f"{c.node.name} ({c.demotion})" for c in demoted[:3]) + \
            (f" and {len(demoted) - 3} more" if len(demoted) > 3 else "") + ")" if demoted else ""
        if not sinks:
            return False, LOW, (f"no sensible inference sink; best guess {names}. "
                                "Choose the outputs with --output KEY=TENSOR")
        if len(sinks) == 1:
            node = sinks[0]
            if _auto_named(node):
                return False, LOW, (f"the only inference sink {node.name!r} has an auto-generated name; "
                                    f"confirm it with --output KEY={node.name}:0")
            return True, MEDIUM if demoted else HIGH, f"{node.name!r} is the only inference sink{left_out}"
        same_inputs = len({self.mask(n.name) for n in sinks}) == 1
        if same_inputs and all(_word(n.name) in OUTPUT_WORDS for n in sinks):
            return True, MEDIUM, f"{len(sinks)} output-named sinks needing the same inputs: {names}{left_out}"
        return False, LOW, (f"{len(sinks)} candidate outputs ({names}) need different inputs or have "
                            f"unclear names: choose with --output KEY=TENSOR")

    def _tensors_of(self, node: Node) -> list[str]:
        outs = outputs_of(self.model, node.name)
        if outs is None:
            return [f"{node.name}:0"]
        return [o.tensor for o in outs if o.dtype not in _UNSERVABLE_DTYPES]

    def _candidates(self, scored: list[_Scored], chosen_mask: int) -> tuple[Candidate, ...]:
        result = []
        for item in scored[:MAX_CANDIDATES]:
            node = item.node
            mask = self.mask(node.name)
            needs = [p for p in self.placeholders if mask & self.bit[p]]
            tensor = f"{node.name}:0"
            spec = _spec(self.model, tensor)
            why = item.reasons if node.name in self.taint else \
                (*item.reasons, f"needs {', '.join(needs) or 'no placeholder'}")
            result.append(Candidate("output", _key_for(node.name), tensor, item.score, spec.dtype, spec.shape, why))
        for name in self.placeholders:
            used = bool(chosen_mask & self.bit[name])
            role = ("optional-input" if name in self.defaults else "input") if used else "unused-input"
            reason = ("has a default value" if name in self.defaults else "fed by clients") if used else \
                "not needed by the proposed outputs"
            if name in self.labels:
                reason += "; a label placeholder"
            spec = _spec(self.model, f"{name}:0")
            score = {"input": 2, "optional-input": 1, "unused-input": 0}[role]
            result.append(Candidate(role, _key_for(name), f"{name}:0", score, spec.dtype, spec.shape, (reason,)))
        return tuple(result)


def _proposal_finding(model: Model, proposal: Proposal) -> Finding:
    details = proposal.to_json()
    if proposal.unambiguous:
        return Finding("signature.proposed", INFO, proposal.explain(), None,
                       f"export with it, or override: metainspect check {model.path} --input KEY=TENSOR "
                       f"--output KEY=TENSOR", details)
    return Finding("signature.ambiguous", INFO, proposal.explain(), None,
                   f"name the endpoints: metainspect check {model.path} --input KEY=TENSOR --output KEY=TENSOR "
                   f"(candidates in details)", details)


# -- names --------------------------------------------------------------------------------------

def _word(name: str) -> str:
    """The last name component, lower-cased, without a ``_N`` uniquifying suffix."""
    last = name[name.rfind("/") + 1:]
    bare = last.rstrip("0123456789")
    return (bare[:-1] if bare != last and bare.endswith("_") else last).lower()


def _auto_named(node: Node) -> bool:
    """True when the node's name is just its op's (``add``, ``MatMul_3``, ``Identity``)."""
    word = _word(node.name)
    op = node.op.lower()
    return word in _AUTO_WORDS or word in (op, re.sub(r"v\d+$", "", op))


def _loss_like(node: Node) -> bool:
    return node.op in LOSS_OPS or _LOSS_NAME.search(node.name.lower()) is not None


def _key_for(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _keyed(names: Iterable[str]) -> dict[str, str]:
    """Signature keys for placeholders (their ``:0`` tensors)."""
    return _keyed_tensors([f"{name}:0" for name in names])


def _keyed_tensors(tensors: list[str]) -> dict[str, str]:
    """Key each tensor by its op's last name component (``_N`` for output N > 0), made unique.

    A clash is resolved by prefixing more of the name (``a/output`` -> ``a_output``), then by
    numbering.
    """
    def base(tensor: str, parts: int) -> str:
        name, _, index = tensor_key(tensor).rpartition(":")
        key = "_".join(name.split("/")[-parts:])
        return key if index == "0" else f"{key}_{index}"

    keys = {t: base(t, 1) for t in tensors}
    for parts in (2, 3):
        counts: dict[str, int] = {}
        for key in keys.values():
            counts[key] = counts.get(key, 0) + 1
        keys = {t: base(t, parts) if counts[k] > 1 else k for t, k in keys.items()}
    result: dict[str, str] = {}
    for tensor in tensors:
        key, n = keys[tensor], 1
        while key in result:
            key = f"{keys[tensor]}_{n}"
            n += 1
        result[key] = tensor
    return result


def _spec(model: Model, tensor: str) -> OutputSpec:
    try:
        return output_spec(model, tensor)
    except (LookupError, ValueError):
        return OutputSpec(tensor_key(tensor), None, None)
