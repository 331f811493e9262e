"""The signature check: do the named inputs and outputs exist and suffice, and what to propose.

With ``--input``/``--output`` given, every tensor must exist as ``op:index`` and every output's
placeholders must be fed. With none given, the proposal of
:func:`metainspect.graph.proposal.propose` is reported: a SavedModel's serving signature when
it has one, else ranked candidates from the graph. SignatureDefs stored in the model are
checked too.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import TYPE_CHECKING

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.formats.graph_file import SAVED_MODEL
from metainspect.graph.attrs import Shape, shapes_compatible
from metainspect.graph.endpoints import (
    SERVING_DEFAULT,
    UNSERVABLE_DTYPES,
    method_problems,
    serving_signatures,
    signature_tensors,
)
from metainspect.graph.names import op_name
from metainspect.graph.ops import PLACEHOLDER_OPS
from metainspect.graph.outputs import OutputSpec, output_spec, outputs_of
from metainspect.graph.proposal import HIGH, LOW, Proposal, keyed_placeholders, propose, signature_key, spec_of
from metainspect.graph.walk import GraphIndex, feeds_needed, index_of, upstream
from metainspect.remedy import KEY_TENSOR, Remedy

if TYPE_CHECKING:
    from metainspect.graph.model import Model, Signature

#: graphs up to this size are searched whole for "did you mean" suggestions
MAX_SUGGESTION_POOL = 20000


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


# -- stored SignatureDefs -----------------------------------------------------------------------

def check_signature_defs(model: Model) -> list[Finding]:
    """Tensors, dtypes, shapes and feeds of every SignatureDef; ``serving_default`` for SavedModels."""
    findings: list[Finding] = []
    signatures = serving_signatures(model)
    if model.kind == SAVED_MODEL and SERVING_DEFAULT not in signatures:
        have = ", ".join(signatures) or "none"
        remedy = Remedy("edit", model.path, (("add_signature", SERVING_DEFAULT), ("inputs", KEY_TENSOR),
                                             ("outputs", KEY_TENSOR)))
        findings.append(Finding(
            "signature.no-serving-default", WARNING,
            f"the SavedModel has no {SERVING_DEFAULT!r} signature (signatures: {have}); TF Serving "
            f"requests must then name a signature, and clients that do not will fail",
            SERVING_DEFAULT, f"add one: {remedy.text} (or name the signature in every request)",
            {"signatures": list(signatures)}, remedy,
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
            for tensor in signature_tensors(spec):
                found, problem = _lookup(model, index, tensor, where)
                if problem is not None:
                    findings.append(problem)
                elif found is not None and spec.encoding == "name":
                    declared = spec.shape if infos[name].HasField("tensor_shape") else None
                    findings += _compare_spec(where, spec.dtype, declared, found, _recreate(model, key, sig))
    fed = [t for spec in sig.inputs.values() for t in signature_tensors(spec)]
    outs = [t for spec in sig.outputs.values() for t in signature_tensors(spec) if op_name(t) in index.nodes]
    findings += _missing_feeds(model, index, outs, fed, f"signature {key!r}")
    findings += _method_conventions(key, sig)
    return findings


def _compare_spec(where: str, dtype: str | None, shape: Shape, found: OutputSpec,
                  remedy: Remedy) -> list[Finding]:
    """A declared dtype and shape (None: not declared) against the graph's."""
    fix = f"re-create it from the graph: {remedy.text}"
    if dtype and found.dtype and dtype != found.dtype:
        return [Finding(
            "signature.dtype-mismatch", ERROR,
            f"{where} declares {dtype} but {found.tensor} is {found.dtype}; requests fail to convert",
            found.tensor, fix, {"declared": dtype, "graph": found.dtype}, remedy,
        )]
    if not shapes_compatible(shape, found.shape):
        return [Finding(
            "signature.shape-mismatch", WARNING,
            f"{where} declares shape {shape} but {found.tensor} has shape {found.shape}",
            found.tensor, fix, {"declared": shape, "graph": found.shape}, remedy,
        )]
    return []


def _recreate(model: Model, key: str, sig: Signature) -> Remedy:
    """The edit that rebuilds a signature with dtypes and shapes taken from the graph."""
    return Remedy("edit", model.path, (
        ("remove_signature", key), ("add_signature", key),
        ("inputs", {k: v.name for k, v in sig.inputs.items() if v.name}),
        ("outputs", {k: v.name for k, v in sig.outputs.items() if v.name})))


def _method_conventions(key: str, sig: Signature) -> list[Finding]:
    """Classify/regress signatures that TF Serving's Classify/Regress APIs reject
    (see :func:`metainspect.graph.endpoints.method_problems`)."""
    problems = method_problems(sig.method_name, {k: s.dtype for k, s in sig.inputs.items()},
                               {k: s.dtype for k, s in sig.outputs.items()})
    if not problems:
        return []
    method = sig.method_name.rsplit("/", 1)[1]
    return [Finding(
        "signature.method-keys", WARNING,
        f"signature {key!r} ({method}) {'; '.join(problems)}: TF Serving's {method.capitalize()} API "
        f"rejects it (the Predict API still works)",
        key, f"use method tensorflow/serving/predict for {key!r}, or follow the {method} conventions",
        {"method": sig.method_name, "problems": problems},
    )]


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
        chosen_inputs = keyed_placeholders(feeds.required)
        optional = keyed_placeholders(feeds.optional)
        for name in feeds.required + feeds.optional:
            specs[f"{name}:0"] = spec_of(model, f"{name}:0")
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
        remedy = None if close else Remedy("nodes", model.path)
        hint = f"did you mean {', '.join(c + ':0' for c in close)}?" if remedy is None else \
            f"list the graph's nodes: {remedy.text}"
        return None, Finding("signature.missing-tensor", ERROR, f"{where}: no node named {name!r} in the graph",
                             tensor, hint, {"suggestions": [f"{c}:0" for c in close]}, remedy)
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
    if role == "output" and found.dtype in UNSERVABLE_DTYPES:
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
    reach = {t: upstream(index, [t], fed=fed) for t in outputs} if required else {}
    for name in required:
        needing = [t for t in outputs if name in reach[t]]
        spec = spec_of(model, f"{name}:0")
        remedy = Remedy("check", model.path, (("inputs", {signature_key(name): f"{name}:0"}),))
        findings.append(Finding(
            "signature.missing-feed", ERROR,
            f"{label}: {', '.join(needing)} need{'s' if len(needing) == 1 else ''} placeholder {name!r} "
            f"({spec.dtype}, shape {spec.shape}), which is not an input; running it fails with "
            f"'You must feed a value for placeholder tensor'",
            name, f"add it as an input: {remedy.text}",
            {"placeholder": f"{name}:0", "needed_by": needing, "dtype": spec.dtype, "shape": spec.shape}, remedy,
        ))
    return findings


def _unused_inputs(index: GraphIndex, inputs: dict[str, str], outputs: list[str],
                   specs: dict[str, OutputSpec]) -> list[Finding]:
    if not outputs:
        return []
    needed = upstream(index, outputs)
    return [Finding(
        "signature.unused-input", WARNING,
        f"input {key!r} ({tensor}) does not affect any output: clients must send it for nothing",
        tensor, f"leave input {key!r} out", {},
    ) for key, tensor in inputs.items() if tensor in specs and op_name(tensor) not in needed]


def _proposal_finding(model: Model, proposal: Proposal) -> Finding:
    details = proposal.to_json()
    remedy = Remedy("check", model.path, (("inputs", KEY_TENSOR), ("outputs", KEY_TENSOR)))
    if proposal.unambiguous:
        return Finding("signature.proposed", INFO, proposal.explain(), None,
                       f"export with it, or override: {remedy.text}", details, remedy)
    return Finding("signature.ambiguous", INFO, proposal.explain(), None,
                   f"name the endpoints: {remedy.text} (candidates in details)", details, remedy)
