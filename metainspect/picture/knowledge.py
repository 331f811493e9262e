"""What metainspect knows about a graph's nodes beyond the graph itself.

Two sources, both optional: the checkpoint (each variable's stored dtype and shape, found
through the key the graph's saver uses) and the findings of ``check`` (pinned to the nodes
they name). Pictures attach them: DOT labels and highlights, TensorBoard node attributes and a
text summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metainspect.graph.walk import GRAPH

if TYPE_CHECKING:
    from metainspect.check.findings import Finding
    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Model


@dataclass(frozen=True)
class StoredVariable:
    """A variable as its checkpoint holds it."""

    key: str
    dtype: str
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.key}: {self.dtype} [{', '.join(str(d) for d in self.shape)}]"


@dataclass
class Knowledge:
    """Facts per node name, and where they come from."""

    #: variable node name -> its tensor in the checkpoint
    stored: dict[str, StoredVariable] = field(default_factory=dict)
    #: node name -> findings naming it (most severe first, as the report orders them)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    checkpoint_path: str | None = None
    #: why no checkpoint is attached, when none is
    checkpoint_problem: str | None = None
    #: the check's verdict line and every finding, when checks ran
    verdict: str | None = None
    all_findings: list[Finding] = field(default_factory=list)

    def severity(self, node: str) -> str | None:
        """The most severe finding's severity for a node, or None."""
        found = self.findings.get(node)
        return found[0].severity if found else None


def stored_variables(model: Model, checkpoint: Checkpoint) -> dict[str, StoredVariable]:
    """Variable node name -> dtype and shape of the checkpoint tensor its saver key names."""
    result = {}
    for variable in model.variables():
        key = variable.checkpoint_key
        if key in checkpoint:
            info = checkpoint.info(key)
            result[variable.name] = StoredVariable(key, info.dtype, tuple(info.shape))
    return result


def findings_by_node(model: Model, findings: Iterable[Finding], where: str = GRAPH) -> dict[str, list[Finding]]:
    """Node name -> the findings that name it, for the nodes of ``where`` (the graph, or
    ``function NAME``).

    A finding names nodes through its subject (a node, a tensor or a checkpoint key) and its
    details (``node``/``nodes``/``variables``); entries that say they sit elsewhere are skipped.
    """
    by_key = {v.checkpoint_key: v.name for v in model.variables()}
    result: dict[str, list[Finding]] = {}
    for finding in findings:
        names = set()
        for name, located in _named(finding, by_key):
            if located in (None, where):
                names.add(name)
        for name in sorted(names):
            result.setdefault(name, []).append(finding)
    return result


def _named(finding: Finding, by_key: dict[str, str]) -> Iterable[tuple[str, str | None]]:
    """(name, where it sits or None) for every node name a finding mentions."""
    from metainspect.graph.names import op_name

    details: dict[str, Any] = finding.details
    where = details.get("where") if isinstance(details.get("where"), str) else None
    if finding.subject:
        yield by_key.get(finding.subject, op_name(finding.subject)), where
    for name in details.get("variables") or ():
        if isinstance(name, str):
            yield name, None
    if isinstance(details.get("node"), str):
        yield details["node"], where
    for item in details.get("nodes") or ():
        if isinstance(item, dict) and isinstance(item.get("node"), str):
            yield item["node"], item.get("where") if isinstance(item.get("where"), str) else None
        elif isinstance(item, str):
            yield item, where
