"""The signature proposed for a model that has no usable one: ranked candidates from the graph.

:func:`propose` starts from the serving signature (:mod:`metainspect.graph.endpoints`); without
one it classifies the graph's nodes and ranks output candidates (see its docstring). ``check``
reports the proposal, ``export`` uses it when it is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from metainspect.graph.endpoints import SERVING_DEFAULT, UNSERVABLE_DTYPES, serving_signature
from metainspect.graph.names import is_valid_node_name, op_name, parse_tensor_name, tensor_name
from metainspect.graph.ops import (
    LABEL_TRANSFORM_OPS,
    LOSS_OPS,
    OUTPUT_LIKE_OPS,
    PLUMBING_OPS,
    VARIABLE_UPDATE_OPS,
    is_input_pipeline,
    is_training_op,
)
from metainspect.graph.outputs import OutputSpec, output_spec, outputs_of
from metainspect.graph.roles import in_gradient_scope, is_auxiliary
from metainspect.graph.walk import follow, forward_masks, index_of, is_variable_read, upstream

if TYPE_CHECKING:
    from metainspect.graph.attrs import Shape
    from metainspect.graph.model import Model, Node, Placeholder

Confidence = Literal["high", "medium", "low"]
HIGH: Confidence = "high"
MEDIUM: Confidence = "medium"
LOW: Confidence = "low"
#: where a proposal comes from: the user, the model's own SignatureDef, or the graph
ProposalSource = Literal["given", "signature", "inferred"]
CandidateRole = Literal["output", "input", "optional-input", "unused-input"]

#: last name components that say "this is what the model produces"
OUTPUT_WORDS = frozenset({
    "output", "outputs", "logits", "probs", "probabilities", "prob", "prediction", "predictions",
    "pred", "preds", "y_pred", "scores", "classes", "class_ids", "embedding", "embeddings",
    "result", "results", "softmax", "sigmoid",
})
#: output words that name an op rather than a role; they rank but are never added alongside a sink
_OP_LIKE_WORDS = frozenset({"softmax", "sigmoid"})
#: name fragments of loss and metric computations (evaluation, not inference)
LOSS_FRAGMENTS = ("loss", "cost", "xent", "cross_entropy", "crossentropy", "accuracy", "metric")
#: name fragments of placeholders that carry training targets
LABEL_FRAGMENTS = ("label", "target", "y_true", "ground_truth", "groundtruth")
#: names TF gives control-flow plumbing (``tf.cond``'s branch identities)
_PLUMBING_WORDS = frozenset({"switch_t", "switch_f", "pred_id"})
#: default names TF's Python API gives ops whose op type is spelled differently
_AUTO_WORDS = frozenset({"truediv", "floordiv", "add_n", "concat", "stack", "einsum", "tensordot",
                         "clip_by_value", "random_uniform", "random_normal", "truncated_normal", "zeros",
                         "ones", "zeros_like", "ones_like", "strided_slice", "transpose", "matmul"})
#: ranked alternatives kept in a proposal
MAX_CANDIDATES = 20
#: taint bits: what makes a node training, evaluation or saver work rather than inference
_SAVER, _TRAIN, _EVAL, _LABEL = 1, 2, 4, 8
#: loss and metric name fragments, matched against a lower-cased name (literal alternation: fast)
_LOSS_NAME = re.compile("|".join(LOSS_FRAGMENTS))


@dataclass(frozen=True)
class Candidate:
    """One ranked choice for a signature entry: a tensor, the key it would get, and why."""

    role: CandidateRole
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
    confidence: Confidence
    candidates: tuple[Candidate, ...] = ()
    optional_inputs: dict[str, str] = field(default_factory=dict)
    source: ProposalSource = "inferred"
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
    """The model's serving signature (see :func:`serving_signature`) as a proposal."""
    sig = serving_signature(model)
    if sig is None:
        return None
    key = sig.key
    index = index_of(model)
    specs = {}
    for spec in list(sig.inputs.values()) + list(sig.outputs.values()):
        if spec.encoding != "name" or not spec.name or op_name(spec.name) not in index.nodes:
            return None
        specs[spec.name] = spec_of(model, spec.name)
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
            if is_training_op(op) or in_gradient_scope(name):
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
                source = nodes.get(op_name(follow(nodes, node.inputs[1], LABEL_TRANSFORM_OPS)))
                if source is not None:
                    found.add(source.name)
        return found & set(self.placeholders)

    # -- classification --------------------------------------------------------------------
    def _compute_nodes(self) -> set[str]:
        """Nodes computing something: not saver, init, summary, optimizer, variable or initializer work."""
        nodes, consumers, scope = self.index.nodes, self.index.consumers, self.scope
        found = set()
        for name, node in nodes.items():
            if is_auxiliary(node, scope) or is_variable_read(nodes, node):
                continue
            users = consumers.get(name)
            if users and nodes[users[0]].op in VARIABLE_UPDATE_OPS and all(nodes[c].op in VARIABLE_UPDATE_OPS for c in users):
                continue  # an initial value or an update amount
            found.add(name)
        return found

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
            if ((word in OUTPUT_WORDS or unused) and node.op not in PLUMBING_OPS and word not in _PLUMBING_WORDS
                    and not self._junk(node) and self._servable(node)):
                found.append(node)
        return found

    def _junk(self, node: Node) -> bool:
        """Auto-named and fed by nothing (initial values, bookkeeping) in a graph that has inputs."""
        return bool(self.placeholders) and _auto_named(node) and not self._feeds(self.mask(node.name))

    def _servable(self, node: Node) -> bool:
        if is_input_pipeline(node.op) or not is_valid_node_name(node.name):  # TF refuses to import such a node
            return False
        outs = outputs_of(self.model, node.name)
        return outs is None or any(o.dtype not in UNSERVABLE_DTYPES for o in outs)

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
        if node.op in OUTPUT_LIKE_OPS:
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
        outputs = keyed_tensors([t for node in chosen + extra for t in self._tensors_of(node)])
        unambiguous, confidence, note = self._judge(sinks, demoted, chosen)
        mask = 0
        for node in chosen + extra:
            mask |= self.mask(node.name)
        if self.given is not None:
            inputs, optional = dict(self.given), {}
        else:
            inputs = keyed_placeholders(self._feeds(mask))
            optional = keyed_placeholders([p for p in self.placeholders if mask & self.bit[p] and p in self.defaults])
        specs = {t: spec_of(self.model, t) for t in [*outputs.values(), *inputs.values(), *optional.values()]
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
        path = upstream(self.index, [sink.name])
        return [n for n in named if n.name in path]

    def _judge(self, sinks: list[Node], demoted: list[_Scored], chosen: list[Node]) -> tuple[bool, Confidence, str]:
        if not chosen:
            return False, LOW, "no output candidates found: name the outputs"
        names = ", ".join(n.name for n in chosen)
        left_out = " (left out: " + ", ".join(f"{c.node.name} ({c.demotion})" for c in demoted[:3]) + \
            (f" and {len(demoted) - 3} more" if len(demoted) > 3 else "") + ")" if demoted else ""
        if not sinks:
            return False, LOW, (f"no sensible inference sink; best guess {names}. "
                                "Choose the outputs")
        if len(sinks) == 1:
            node = sinks[0]
            if _auto_named(node):
                return False, LOW, (f"the only inference sink {node.name!r} has an auto-generated name; "
                                    f"confirm it as an output ({node.name}:0)")
            return True, MEDIUM if demoted else HIGH, f"{node.name!r} is the only inference sink{left_out}"
        same_inputs = len({self.mask(n.name) for n in sinks}) == 1
        if same_inputs and all(_word(n.name) in OUTPUT_WORDS for n in sinks):
            return True, MEDIUM, f"{len(sinks)} output-named sinks needing the same inputs: {names}{left_out}"
        return False, LOW, (f"{len(sinks)} candidate outputs ({names}) need different inputs or have "
                            f"unclear names: choose the outputs")

    def _tensors_of(self, node: Node) -> list[str]:
        outs = outputs_of(self.model, node.name)
        if outs is None:
            return [f"{node.name}:0"]
        return [o.tensor for o in outs if o.dtype not in UNSERVABLE_DTYPES]

    def _candidates(self, scored: list[_Scored], chosen_mask: int) -> tuple[Candidate, ...]:
        result = []
        for item in scored[:MAX_CANDIDATES]:
            node = item.node
            mask = self.mask(node.name)
            needs = [p for p in self.placeholders if mask & self.bit[p]]
            tensor = f"{node.name}:0"
            spec = spec_of(self.model, tensor)
            why = item.reasons if node.name in self.taint else \
                (*item.reasons, f"needs {', '.join(needs) or 'no placeholder'}")
            result.append(Candidate("output", signature_key(node.name), tensor, item.score, spec.dtype, spec.shape, why))
        for name in self.placeholders:
            used = bool(chosen_mask & self.bit[name])
            role: CandidateRole = ("optional-input" if name in self.defaults else "input") if used else "unused-input"
            reason = ("has a default value" if name in self.defaults else "fed by clients") if used else \
                "not needed by the proposed outputs"
            if name in self.labels:
                reason += "; a label placeholder"
            spec = spec_of(self.model, f"{name}:0")
            score = {"input": 2, "optional-input": 1, "unused-input": 0}[role]
            result.append(Candidate(role, signature_key(name), f"{name}:0", score, spec.dtype, spec.shape, (reason,)))
        return tuple(result)


# -- names and keys -----------------------------------------------------------------------------

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


def signature_key(name: str) -> str:
    """The key a node's tensor gets in a proposed signature: the node's last name component."""
    return name.rsplit("/", 1)[-1]


def keyed_placeholders(names: Iterable[str]) -> dict[str, str]:
    """Signature keys for placeholders (their ``:0`` tensors)."""
    return keyed_tensors([f"{name}:0" for name in names])


def keyed_tensors(tensors: list[str]) -> dict[str, str]:
    """Key each tensor by its op's last name component (``_N`` for output N > 0), made unique.

    A clash is resolved by prefixing more of the name (``a/output`` -> ``a_output``), then by
    numbering.
    """
    def base(tensor: str, parts: int) -> str:
        name, index = parse_tensor_name(tensor)
        key = "_".join(name.split("/")[-parts:])
        return key if index == 0 else f"{key}_{index}"

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


def spec_of(model: Model, tensor: str) -> OutputSpec:
    """The dtype and shape of ``tensor``, both None when unknown or when there is no such tensor."""
    try:
        return output_spec(model, tensor)
    except (LookupError, ValueError):
        return OutputSpec(tensor_name(tensor), None, None)
