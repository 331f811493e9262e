"""The graph check: every input a node names exists (``graph.missing-input``).

TensorFlow's graph import (``import_meta_graph``, ``import_graph_def``, a SavedModel loader)
refuses a node whose input names no node ("Unknown input node") or an output its node does not
have ("Connecting to invalid output 5 of source node x which has 1 outputs"); it stops at the
first. An output count comes from :func:`metainspect.graph.outputs.outputs_of` (the op's OpDef
and attrs); ops whose outputs cannot be told are not checked for it. One finding per node, in
graph order; the first says how many there are in all.

Function bodies name their inputs differently (:func:`metainspect.graph.names.function_input`):
``node:out:0`` must name a node of the body, a plain ``x`` an argument of the function. TensorFlow
refuses such a body when it instantiates the function, so the finding is an error when something
served or loaded calls the function and a warning otherwise (one finding per function).
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING

from metainspect.check.findings import ERROR, WARNING, CheckContext, Finding
from metainspect.graph.names import function_input, op_name, output_index
from metainspect.graph.outputs import output_count
from metainspect.graph.phases import OFF_PATH, describe, phases
from metainspect.graph.walk import index_of

if TYPE_CHECKING:
    from metainspect.graph.model import Node


def check_references(ctx: CheckContext) -> list[Finding]:
    """``graph.missing-input``: inputs naming nodes or outputs that do not exist."""
    model = ctx.model
    nodes = model.nodes_by_name()
    graph = model.nodes()
    # the common case, kept fast for 10^5 nodes: every distinct reference checked once
    beyond: dict[str, tuple[str, int]] = {}
    missing: set[str] = set()
    arity: dict[str, int | None] = {}
    for ref in set(chain.from_iterable([node.inputs for node in graph])).difference(nodes):
        source, index = op_name(ref), output_index(ref)  # a stray '^x' among data inputs names x too
        if source not in nodes:
            missing.add(ref)
        elif index > 0:
            count = arity[source] if source in arity else arity.setdefault(source, output_count(model, source))
            if count is not None and index >= count:
                beyond[ref] = (nodes[source].op, count)
    missing_controls = set(chain.from_iterable([node.control_inputs for node in graph])).difference(nodes)
    findings = _check_functions(ctx)
    if not missing and not beyond and not missing_controls:
        return findings
    broken = []
    for node in graph:
        absent = [ref for ref in node.inputs if ref in missing] + \
            [f"^{name}" for name in node.control_inputs if name in missing_controls]
        invalid = [(ref, *beyond[ref]) for ref in node.inputs if ref in beyond]
        if absent or invalid:
            broken.append((node, absent, invalid))
    return [_finding(node, absent, invalid, i, len(broken)) for i, (node, absent, invalid) in enumerate(broken)] + \
        findings


def _resolves(ref: str, args: set[str], body: set[str]) -> bool:
    """Whether a function-body input (or result) names something the body has."""
    named = function_input(ref)
    if named.control:
        return named.node in body or named.node in args
    return named.node in (body if named.output else args)


def _check_functions(ctx: CheckContext) -> list[Finding]:
    """``graph.missing-input`` in function bodies: one finding per function naming what is not there."""
    broken: list[tuple[str, list[str]]] = []
    for fn in ctx.model.graph_def.library.function:
        args = {arg.name for arg in fn.signature.input_arg}
        body = {node.name for node in fn.node_def}
        problems = [f"node {node.name!r} ({node.op}) input {ref!r}" for node in fn.node_def for ref in node.input
                    if not _resolves(ref, args, body)]
        problems += [f"result {key!r} = {ref!r}" for key, ref in sorted(fn.ret.items()) if not _resolves(ref, args, body)]
        problems += [f"control result {key!r} = {ref!r}" for key, ref in sorted(fn.control_ret.items())
                     if ref not in body]
        if problems:
            broken.append((fn.signature.name, problems))
    if not broken:
        return []
    when = phases(index_of(ctx.model), ctx.inputs, ctx.outputs)
    findings = []
    for name, problems in broken:
        phase, hook = when.of_function(name)
        running = phase != OFF_PATH
        shown = "; ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
        consequence = (f"{describe(phase, hook)}, and TensorFlow cannot instantiate the function" if running else
                       "TensorFlow cannot instantiate the function (nothing served or loaded calls it)")
        findings.append(Finding(
            "graph.missing-input", ERROR if running else WARNING,
            f"function {name!r}: {shown} names nothing in its body or arguments: {consequence}",
            name, "the graph file is incomplete or was edited by hand: export it again from the model that built it",
            {"function": name, "problems": problems, "count": len(problems), "when": phase},
        ))
    return findings


def _finding(node: Node, missing: list[str], beyond: list[tuple[str, str, int]], position: int,
             total: int) -> Finding:
    problems = [f"input {ref!r} names no node" for ref in missing]
    problems += [f"input {ref!r} names output {output_index(ref)} of {op_name(ref)!r} ({op}), "
                 f"which has {count} output{'' if count == 1 else 's'}" for ref, op, count in beyond]
    first = missing[0] if missing else beyond[0][0]
    said = (f"Unknown input node '{first}'" if missing else
            f"Connecting to invalid output {output_index(first)} of source node {op_name(first)}")
    message = f"node {node.name!r} ({node.op}): {'; '.join(problems)}: TensorFlow cannot import the graph ({said})"
    if total > 1:
        message += (f"; the first of {total} such nodes, where TensorFlow's import stops" if position == 0 else
                    f" ({position + 1} of {total})")
    return Finding(
        "graph.missing-input", ERROR, message, node.name,
        "the graph file is incomplete or was edited by hand: export it again from the model that built it "
        "(or restore the missing nodes)",
        {"node": node.name, "op": node.op, "missing": missing,
         "invalid_outputs": [{"input": ref, "op": op, "outputs": count} for ref, op, count in beyond],
         "count": total},
    )
