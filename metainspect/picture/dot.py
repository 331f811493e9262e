"""A Graphviz DOT picture of a graph: name scopes as clusters, deep scopes collapsed.

Name scopes (the ``a/b/`` parts of node names) become nested clusters. Scopes deeper than the
collapse depth are drawn as one box each, labelled with how many nodes (and inputs, variables,
outputs, findings) they hold; the edges between drawn boxes are aggregated, their count shown
when more than one. Without a depth, the deepest depth that keeps the drawing within a node
budget is chosen. Inputs, variables, outputs, constants, function calls, ops stock TensorFlow
does not register, and inputs naming absent nodes each have their own style; nodes named by
``check`` findings are outlined in the colour of their most severe finding.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from metainspect.errors import MetainspectError
from metainspect.graph.names import op_name

if TYPE_CHECKING:
    from metainspect.graph.model import Node
    from metainspect.picture.knowledge import Knowledge

#: drawn-node budget the automatic depth keeps within
DEFAULT_BUDGET = 200

PLACEHOLDER = "input"
VARIABLE = "variable"
OUTPUT = "output"
CONST = "const"
CALL = "call"
CUSTOM = "custom"
MISSING = "missing"
#: roles in the order a collapsed scope's label lists them
ROLES = (PLACEHOLDER, VARIABLE, OUTPUT, CUSTOM, CALL, CONST, MISSING)

_FONT = "Helvetica"
#: the multiplication sign before an aggregated edge's count
_TIMES = "\N{MULTIPLICATION SIGN}"
_STYLE = {
    "": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    PLACEHOLDER: 'shape=invhouse, style=filled, fillcolor="#cfe8ff"',
    VARIABLE: 'shape=cylinder, style=filled, fillcolor="#ffe2b8"',
    OUTPUT: 'shape=box, style="rounded,filled,bold", peripheries=2, fillcolor="#d5f5d5"',
    CONST: 'shape=box, style="rounded,filled", fillcolor="#f2f2f2", fontcolor="#555555", fontsize=8',
    CALL: 'shape=component, style=filled, fillcolor="#e4e4ff"',
    CUSTOM: 'shape=box, style="rounded,filled,dashed", fillcolor="#f3d9ff", color="#8e44ad"',
    MISSING: 'shape=box, style="dashed", color="#d62728", fontcolor="#d62728"',
}
_GROUP_STYLE = 'shape=box3d, style=filled, fillcolor="#eeeeee"'
_SEVERITY_STYLE = {
    "error": 'color="#d62728", penwidth=3',
    "warning": 'color="#ff7f0e", penwidth=3',
    "info": 'color="#1f77b4", penwidth=2',
}
#: how a collapsed scope's label counts each role: (one, several)
_COUNTED = {PLACEHOLDER: ("input", "inputs"), VARIABLE: ("variable", "variables"), OUTPUT: ("output", "outputs"),
            CALL: ("call", "calls"), CUSTOM: ("custom op", "custom ops"), MISSING: ("absent", "absent")}


class PictureError(MetainspectError):
    """A picture cannot be drawn as asked (no such node, nothing selected…)."""


@dataclass(frozen=True)
class Selection:
    """Which nodes to draw and how much to collapse.

    ``depth``: name-scope levels drawn as clusters (deeper scopes collapse into one box);
    None picks the deepest that keeps within ``budget`` drawn nodes. ``around``/``radius``:
    only nodes within ``radius`` edges (either direction) of that node. ``match``: only nodes
    whose name the regular expression finds a match in.
    """

    depth: int | None = None
    budget: int = DEFAULT_BUDGET
    around: str | None = None
    radius: int = 2
    match: re.Pattern[str] | None = None


@dataclass(frozen=True)
class DotPicture:
    """The DOT source and what it shows."""

    text: str
    #: nodes in the graph (absent inputs not counted)
    graph_nodes: int
    #: graph nodes the selection kept
    selected_nodes: int
    #: boxes drawn: nodes, collapsed scopes and absent inputs
    drawn_nodes: int
    #: aggregated edges drawn
    drawn_edges: int
    #: collapsed scopes among the drawn boxes
    collapsed_scopes: int
    #: name-scope depth used (None: nothing collapsed)
    depth: int | None
    #: drawn boxes outlined for a finding
    highlighted: int
    #: True when runs of like-named boxes were merged to come closer to the budget
    series_merged: bool = False


@dataclass
class _Box:
    """One drawn box: a node, or a collapsed scope holding several."""

    key: str
    cluster: tuple[str, ...]
    members: list[str] = field(default_factory=list)
    group: bool = False


def draw(nodes: Sequence[Node], roles: dict[str, str], selection: Selection, *, path: str,
         knowledge: Knowledge | None = None, title: str = "") -> DotPicture:
    """Draw ``nodes`` (one graph or function body) as DOT; ``roles`` maps node names to a role.

    ``path`` names the model in errors. Raises :class:`PictureError` when ``around`` names no
    node or the selection keeps nothing.
    """
    names = {node.name for node in nodes}
    edges = _edges(nodes)
    missing = sorted({src for src, _, _ in edges if src not in names})
    all_roles = dict(roles)
    all_roles.update(dict.fromkeys(missing, MISSING))
    order = [node.name for node in nodes] + missing
    kept = _select(order, edges, selection, path)
    scopes = _scopes(kept)
    scoped = {name: _scope_of(name, scopes) for name in kept}
    depth: int | None
    if selection.depth is not None:
        depth = selection.depth
        series = len(_boxes(scoped, depth, False)) > selection.budget
    else:
        depth, series = _auto_depth(scoped, selection.budget)
    boxes = _boxes(scoped, depth, series)
    box_of = {member: box.key for box in boxes.values() for member in box.members}
    counts: Counter[tuple[str, str, bool]] = Counter()
    for src, dst, control in edges:
        a, b = box_of.get(src), box_of.get(dst)
        if a is not None and b is not None and a != b:
            counts[(a, b, control)] += 1
    ops = {node.name: node.op for node in nodes}
    devices = {node.name: node.device for node in nodes}
    lines = _header(title)
    highlighted = 0
    statements: dict[tuple[str, ...], list[str]] = {}
    for box in boxes.values():
        text, marked = _box_statement(box, ops, devices, all_roles, knowledge)
        highlighted += marked
        statements.setdefault(box.cluster, []).append(text)
    lines += _clusters(statements, 1)
    for (a, b, control), n in counts.items():
        attrs = ['style=dashed, color="#999999"' if control else 'color="#555555"']
        if n > 1:
            attrs.append(f"label={_quote(f'{_TIMES}{n}')}, penwidth={min(1 + n.bit_length() * 0.5, 5):g}")
        lines.append(f"  {_quote(a)} -> {_quote(b)} [{', '.join(attrs)}];")
    lines.append("}")
    return DotPicture(
        text="\n".join(lines) + "\n", graph_nodes=len(nodes), selected_nodes=sum(1 for n in kept if n in names),
        drawn_nodes=len(boxes), drawn_edges=len(counts), collapsed_scopes=sum(b.group for b in boxes.values()),
        depth=depth, highlighted=highlighted, series_merged=series,
    )


def _edges(nodes: Iterable[Node]) -> list[tuple[str, str, bool]]:
    """(source, destination, is control) for every input of every node."""
    edges: list[tuple[str, str, bool]] = []
    for node in nodes:
        edges.extend((op_name(ref), node.name, False) for ref in node.inputs)
        edges.extend((ref, node.name, True) for ref in node.control_inputs)
    return edges


def _select(order: list[str], edges: list[tuple[str, str, bool]], selection: Selection, path: str) -> list[str]:
    kept = order
    if selection.around is not None:
        if selection.around not in set(order):
            raise PictureError(path, f"no node named {selection.around!r} to draw the neighbourhood of")
        neighbours: dict[str, set[str]] = {}
        for src, dst, _ in edges:
            neighbours.setdefault(src, set()).add(dst)
            neighbours.setdefault(dst, set()).add(src)
        reached = {selection.around}
        frontier = [selection.around]
        for _ in range(max(selection.radius, 0)):
            frontier = [n for name in frontier for n in neighbours.get(name, ()) if n not in reached]
            reached.update(frontier)
        kept = [name for name in kept if name in reached]
    if selection.match is not None:
        search = selection.match.search
        kept = [name for name in kept if search(name)]
    if not kept:
        raise PictureError(path, "no node matches the selection: nothing to draw")
    return kept


def _scope_of(name: str, scopes: set[tuple[str, ...]]) -> tuple[str, ...]:
    """The name scope a node is drawn in: its own when other names are under it (``dense/kernel``
    joins ``dense/kernel/read``, as TensorBoard groups them), else its parent scope."""
    parts = tuple(name.split("/"))
    return parts if parts in scopes else parts[:-1]


def _scopes(names: Iterable[str]) -> set[tuple[str, ...]]:
    """Every name scope some node sits in."""
    found: set[tuple[str, ...]] = set()
    for name in names:
        parts = tuple(name.split("/"))
        found.update(parts[:i] for i in range(1, len(parts)))
    return found


def _place(scope: tuple[str, ...], name: str, depth: int | None) -> tuple[str, tuple[str, ...], bool]:
    """(box key, cluster path, collapsed?) of a node in ``scope`` at a collapse depth."""
    if depth is None or len(scope) <= depth:
        return name, scope, False
    # a trailing "/" keeps a scope's key apart from a node of the same name
    return "/".join(scope[:depth + 1]) + "/", scope[:depth], True


def _boxes(scoped: dict[str, tuple[str, ...]], depth: int | None, series: bool) -> dict[str, _Box]:
    """The boxes drawn at a collapse depth, runs of like-named boxes merged when ``series``."""
    boxes: dict[str, _Box] = {}
    for name, scope in scoped.items():
        key, cluster, group = _place(scope, name, depth)
        box = boxes.get(key)
        if box is None:
            box = boxes[key] = _Box(key, cluster, group=group)
        box.members.append(name)
    return _merge_series(boxes) if series else boxes


def _auto_depth(scoped: dict[str, tuple[str, ...]], budget: int) -> tuple[int | None, bool]:
    """The deepest collapse depth drawing at most ``budget`` boxes (None: no need to collapse),
    first without merging series, then with; depth 0 with series when nothing fits."""
    if len(scoped) <= budget:
        return None, False
    deepest = max(len(scope) for scope in scoped.values())
    for series in (False, True):
        for depth in range(deepest - (0 if series else 1), -1, -1):
            if len(_boxes(scoped, depth, series)) <= budget:
                return depth, series
    return 0, True


def _merge_series(boxes: dict[str, _Box]) -> dict[str, _Box]:
    """``boxes`` with runs of like-named boxes in one cluster (``add``, ``add_1``, ``add_2/``…)
    merged into one ``add_*`` box each, as TensorBoard groups series."""
    runs: dict[tuple[tuple[str, ...], str], list[_Box]] = {}
    for box in boxes.values():
        last = box.key.rstrip("/").rpartition("/")[2]
        runs.setdefault((box.cluster, _SERIES.sub("", last)), []).append(box)
    merged: dict[str, _Box] = {}
    for (cluster, stem), run in runs.items():
        if len(run) == 1:
            merged[run[0].key] = run[0]
            continue
        key = "/".join((*cluster, stem + "_*"))  # "*" never occurs in a node name
        merged[key] = _Box(key, cluster, [m for box in run for m in box.members], group=True)
    return merged


_SERIES = re.compile(r"_\d+$")


def _header(title: str) -> list[str]:
    lines = [
        "digraph metainspect {",
        (f'  graph [rankdir=TB, compound=true, newrank=true, fontname="{_FONT}", fontsize=12, '
         f"labelloc=t, label={_quote(title)}];"),
        f'  node [fontname="{_FONT}", fontsize=10, margin="0.1,0.03", height=0.3];',
        f'  edge [fontname="{_FONT}", fontsize=8, arrowsize=0.6];',
    ]
    return lines


def _box_statement(box: _Box, ops: dict[str, str], devices: dict[str, str], roles: dict[str, str],
                   knowledge: Knowledge | None) -> tuple[str, int]:
    """The DOT node statement of a box, and 1 when a finding outlines it."""
    severities = [knowledge.severity(m) for m in box.members] if knowledge else []
    rank = {"error": 0, "warning": 1, "info": 2}
    worst = min((s for s in severities if s), key=rank.__getitem__, default=None)
    if box.group:
        role_counts = Counter(roles.get(m, "") for m in box.members)
        last = box.key.rstrip("/").rpartition("/")[2]
        label = [last if box.key.endswith("*") else last + "/", f"{len(box.members)} nodes"]
        described = [f"{role_counts[r]} {_COUNTED[r][role_counts[r] > 1]}" for r in ROLES if role_counts[r] and r in _COUNTED]
        if described:
            label.append(", ".join(described))
        findings = sum(1 for s in severities if s)
        if findings:
            label.append(f"{findings} with findings")
        tooltip = f"{box.key} ({len(box.members)} nodes)"
        style = _GROUP_STYLE
    else:
        name = box.members[0]
        role = roles.get(name, "")
        short = name.rpartition("/")[2]
        if role == MISSING:
            label = [short, "(absent)"]
            tooltip = f"{name}: an input names this node, the graph has no node of that name"
        else:
            label = [short] if short == ops[name] else [short, ops[name]]
            tooltip = f"{name} ({ops[name]})" + (f" on {devices[name]}" if devices.get(name) else "")
        stored = knowledge.stored.get(name) if knowledge else None
        if stored is not None:
            label.append(f"{stored.dtype}[{','.join(str(d) for d in stored.shape)}]")
            tooltip += f"\ncheckpoint {stored}"
        for finding in knowledge.findings.get(name, []) if knowledge else []:
            tooltip += f"\n{finding.severity} {finding.id}: {finding.message}"
        style = _STYLE[role] if role in _STYLE else _STYLE[""]
    attrs = [f"label={_quote(chr(10).join(label))}", f"tooltip={_quote(tooltip)}", style]
    if worst is not None:
        attrs.append(_SEVERITY_STYLE[worst])
    return f"{_quote(box.key)} [{', '.join(attrs)}];", int(worst is not None)


def _clusters(statements: dict[tuple[str, ...], list[str]], indent: int) -> list[str]:
    """Node statements nested in one cluster per name scope."""
    tree: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for path in statements:
        for i in range(len(path)):
            tree.setdefault(path[:i], set()).add(path[:i + 1])

    def emit(path: tuple[str, ...], level: int) -> list[str]:
        pad = "  " * level
        out = [pad + text for text in statements.get(path, ())]
        for child in sorted(tree.get(path, ())):
            out.append(f"{pad}subgraph {_quote('cluster_' + '/'.join(child))} {{")
            out.append(f'{pad}  graph [label={_quote(child[-1] + "/")}, style="rounded", color="#bbbbbb", '
                       f"labeljust=l, fontsize=10];")
            out += emit(child, level + 1)
            out.append(pad + "}")
        return out

    return emit((), indent)


def _quote(text: str) -> str:
    """A DOT double-quoted string: backslashes, quotes and line breaks escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    if escaped.endswith("\\"):  # Graphviz's lexer would read the closing quote as escaped
        escaped += " "
    return f'"{escaped}"'
