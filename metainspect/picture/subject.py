"""What a picture shows: the model's graph or one library function, with node roles and facts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.graph.endpoints import serving_signatures, signature_tensors
from metainspect.graph.model import Node
from metainspect.graph.names import op_name
from metainspect.graph.ops import CONST_OPS, PLACEHOLDER_OPS, VARIABLE_OPS, stock_registry
from metainspect.graph.walk import GRAPH, function_refs
from metainspect.picture import dot
from metainspect.picture.function_graph import ARG_OP, RETVAL_OP, function_graph_def
from metainspect.picture.knowledge import Knowledge, findings_by_node, stored_variables

if TYPE_CHECKING:
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Model

#: findings listed in the text summary (the check's --json output has them all)
SUMMARY_FINDINGS = 200


@dataclass(frozen=True)
class Subject:
    """The graph drawn: the model's top-level graph, or the body of ``function``."""

    model: Model
    graph_def: GraphDef
    nodes: list[Node]
    function: str | None = None

    @property
    def where(self) -> str:
        """Where the nodes sit, as check findings say it: ``graph`` or ``function NAME``."""
        return GRAPH if self.function is None else f"function {self.function}"

    def roles(self) -> dict[str, str]:
        """Node name -> its :mod:`~metainspect.picture.dot` role (nodes of no role are left out)."""
        stock = stock_registry().ops
        library = {fn.signature.name for fn in self.model.graph_def.library.function}
        outputs = self._outputs()
        roles = {}
        for node in self.nodes:
            op = node.op
            if node.name in outputs or op == RETVAL_OP:
                role = dot.OUTPUT
            elif op in PLACEHOLDER_OPS or op == ARG_OP:
                role = dot.PLACEHOLDER
            elif op in VARIABLE_OPS:
                role = dot.VARIABLE
            elif op in library or any(True for _ in function_refs(node)):
                role = dot.CALL
            elif op not in stock:
                role = dot.CUSTOM
            elif op in CONST_OPS:
                role = dot.CONST
            else:
                continue
            roles[node.name] = role
        return roles

    def _outputs(self) -> set[str]:
        """The serving signatures' output nodes, else the likely outputs (top-level graph only)."""
        if self.function is not None:
            return set()
        found = {op_name(t) for signature in serving_signatures(self.model).values()
                 for spec in signature.outputs.values() for t in signature_tensors(spec)}
        return found or {node.name for node in self.model.likely_outputs()}


def subject_of(model: Model, function: str | None = None) -> Subject:
    """The model's graph, or library function ``function`` (:class:`NoSuchFunctionError` if absent).

    A graph without nodes raises :class:`~metainspect.picture.dot.PictureError`.
    """
    if function is None:
        if not model.nodes():
            raise dot.PictureError(model.path, "the graph has no nodes: nothing to picture")
        return Subject(model, model.graph_def, model.nodes())
    graph_def = function_graph_def(model, function)
    return Subject(model, graph_def, [Node.from_proto(proto) for proto in graph_def.node], function)


def gather_knowledge(subject: Subject, argument: str | os.PathLike[str], checkpoint: str | None = None,
                     *, check: bool = False) -> Knowledge:
    """What metainspect knows about the subject's nodes.

    ``argument`` is the model path as given (a checkpoint prefix finds its checkpoint through
    it). The checkpoint is ``checkpoint`` when given (unreadable: an error), else the one beside
    the graph when there is one. ``check`` runs every check on the loaded model (read once) and
    pins the findings to nodes.
    """
    from metainspect.check.runner import default_checkpoint, run_checks
    from metainspect.checkpoint import open_checkpoint

    model = subject.model
    knowledge = Knowledge()
    ckpt: Checkpoint | None
    if checkpoint is not None:
        ckpt, problem = open_checkpoint(checkpoint), None
    else:
        ckpt, problem = default_checkpoint(os.fspath(argument), model)
    knowledge.checkpoint_problem = problem
    report = None
    if ckpt is not None:
        with ckpt:
            knowledge.checkpoint_path = ckpt.prefix
            knowledge.stored = stored_variables(model, ckpt)
            report = run_checks(model, ckpt) if check else None
    elif check:
        report = run_checks(model)
    if report is not None:
        knowledge.verdict = report.verdict
        knowledge.all_findings = list(report.findings)
        knowledge.findings = findings_by_node(model, report.findings, subject.where)
    return knowledge


def summary_markdown(subject: Subject, knowledge: Knowledge) -> str:
    """A Markdown page (TensorBoard's Text dashboard) on what the event file shows."""
    model = subject.model
    drawn = (f"graph: {len(subject.nodes)} nodes, {len(model.graph_def.library.function)} library functions"
             if subject.function is None else f"function {subject.function}: {len(subject.nodes)} nodes")
    rows = [("model", model.path), ("kind", f"{model.kind} ({model.encoding})"),
            ("meta graph tags", ", ".join(model.tags) or "(none)"), ("shown", drawn)]
    if knowledge.checkpoint_path:
        found = f"{len(knowledge.stored)} variables found (attribute `_metainspect_checkpoint`)"
        rows.append(("checkpoint", f"{knowledge.checkpoint_path}: {found}"))
    else:
        rows.append(("checkpoint", f"none ({knowledge.checkpoint_problem or 'not read'})"))
    if knowledge.verdict:
        rows.append(("check", f"{knowledge.verdict} (attribute `_metainspect_findings` on the nodes concerned)"))
    lines = [f"## metainspect: {_cell(model.path)}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in rows]
    if knowledge.all_findings:
        lines += ["", "### Findings", "", "| severity | id | subject | message |", "|---|---|---|---|"]
        lines += [f"| {f.severity} | {f.id} | {_cell(f.subject or '')} | {_cell(f.message)} |"
                  for f in knowledge.all_findings[:SUMMARY_FINDINGS]]
        if len(knowledge.all_findings) > SUMMARY_FINDINGS:
            lines.append(f"\n… and {len(knowledge.all_findings) - SUMMARY_FINDINGS} more")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
