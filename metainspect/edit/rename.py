"""``--rename OLD=NEW``: rename nodes and every reference to them, checkpoint keys included.

One :class:`~metainspect.checkpoint.renames.Renamer` (the rules ``rewrite --rename`` applies to a
checkpoint) renames node names, data and control inputs (``^x``, ``x:1``), colocation
``loc:@x`` attrs, a variable's own ``shared_name``, while-loop frame names, every collection,
saver, signature and asset reference (see :mod:`metainspect.edit.references`), and the saver's
key constants, so the renamed graph restores from a checkpoint renamed with the same rules.
Function bodies are namespaces of their own and are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.checkpoint.renames import Rename, Renamer
from metainspect.edit.changes import ChangeLog, log_for
from metainspect.errors import Hint, MetainspectError
from metainspect.graph.names import is_valid_node_name, rename_reference
from metainspect.graph.ops import FRAME_ENTER_OPS
from metainspect.graph.saver import checkpoint_keys

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

_LOC = b"loc:@"


@dataclass(frozen=True)
class Renamed:
    """What a rename changed: old -> new node names and old -> new checkpoint keys."""

    nodes: dict[str, str]
    keys: dict[str, str]
    #: the rules that renamed checkpoint keys (what ``rewrite --rename`` must apply to the checkpoint)
    key_rules: tuple[str, ...] = ()


def rename(meta_graph: MetaGraphDef, rules: Renamer | Iterable[Rename | str],
           log: ChangeLog | None = None, *, every_rule_used: bool = True) -> Renamed:
    """Apply rename ``rules`` to nodes, every reference to them and the saver's checkpoint keys.

    Raises MetainspectError, before changing anything, when two names would become one (or a new
    name is taken), a new name is not a valid node name, or (with ``every_rule_used``) a rule
    matches no node and no key.
    """
    from metainspect.edit import references, saver_graph
    from metainspect.edit.target import model_of

    log = log_for(log, "rename")
    renamer = rules if isinstance(rules, Renamer) else Renamer(rules)
    graph_def = meta_graph.graph_def
    mapping = _valid_names(renamer.mapping(node.name for node in graph_def.node))
    keys = checkpoint_keys(model_of(meta_graph)) + references.collect(meta_graph, references.KEY)
    key_mapping = renamer.mapping(dict.fromkeys(keys))
    unused = renamer.unused()
    if unused and every_rule_used:
        hint = Hint("renames", unused[0].text)
        raise MetainspectError(None, f"{hint.text} matches no node and no checkpoint key", hint)

    for node in graph_def.node:
        _rename_node(node, mapping, renamer, log)
    saver_graph.rename_keys(model_of(meta_graph), key_mapping, log)

    def visit(role: str, value: str, where: str) -> str:
        if role == references.NAME:
            new = rename_reference(value, mapping)
        elif role == references.KEY:
            new = key_mapping.get(value, value)
        else:
            new = renamer(value)
        if new != value:
            log.add(where, f"{value} -> {new}")
        return new

    references.rewrite_meta_graph(meta_graph, visit, log)
    return Renamed(mapping, key_mapping, _rules_used(renamer, key_mapping))


def _rules_used(renamer: Renamer, renamed: dict[str, str]) -> tuple[str, ...]:
    """Texts of the rules that are the first match of at least one of ``renamed``'s names."""
    used = {next(i for i, rule in enumerate(renamer.rules) if rule.apply(name) is not None) for name in renamed}
    return tuple(renamer.rules[i].text for i in sorted(used))


def _valid_names(mapping: dict[str, str]) -> dict[str, str]:
    bad = [new for new in mapping.values() if not is_valid_node_name(new)]
    if bad:
        hint = Hint("renames")
        raise MetainspectError(None, f"{hint.text} would name a node {bad[0]!r}, which TensorFlow refuses", hint)
    return mapping


def _rename_node(node: NodeDef, mapping: dict[str, str], renamer: Renamer, log: ChangeLog) -> None:
    old_name = node.name
    if old_name in mapping:
        node.name = mapping[old_name]
        log.add(f"node {old_name}", f"renamed to {node.name}")
    subject = f"node {node.name}"
    for i, ref in enumerate(node.input):
        new = rename_reference(ref, mapping)
        if new != ref:
            node.input[i] = new
            log.add(subject, f"input {ref} -> {new}")
    if "_class" in node.attr:
        values = node.attr["_class"].list.s
        for i, value in enumerate(values):
            target = value[len(_LOC):].decode("utf-8", "replace") if value.startswith(_LOC) else None
            if target in mapping:
                values[i] = _LOC + mapping[target].encode("utf-8")
                log.add(subject, f"colocation loc:@{target} -> loc:@{mapping[target]}")
    if "shared_name" in node.attr and node.attr["shared_name"].s.decode("utf-8", "replace") == old_name != node.name:
        node.attr["shared_name"].s = node.name.encode("utf-8")
        log.add(subject, f"shared_name {old_name} -> {node.name}")
    if node.op in FRAME_ENTER_OPS and "frame_name" in node.attr:
        frame = node.attr["frame_name"].s.decode("utf-8", "replace")
        new_frame = renamer(frame)
        if new_frame != frame:
            node.attr["frame_name"].s = new_frame.encode("utf-8")
            log.add(subject, f"frame_name {frame} -> {new_frame}")
