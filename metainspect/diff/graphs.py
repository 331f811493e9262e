"""What differs between two graphs: nodes, library functions, collections, signatures, saver, versions.

Graphs are ``.meta`` files, GraphDefs (binary or text) or SavedModels, in any pairing; a
SavedModel contributes the meta graph :func:`metainspect.load_model` picks (``tags``). Nodes
pair by name, by rename rules the caller gives, then by structure
(:mod:`metainspect.diff.matching`): a node renamed with everything that refers to it (what
``edit --rename`` does) pairs with its new name. Library functions pair by name, then by
identical content (function names inside attrs mapped), and their bodies are compared the same
way. A pair is *changed* when its op, data inputs, control inputs (as a set), device or any attr
differs once A's names are mapped to B's; an attr absent on one side and equal to its op's
default (from either graph's stripped op list) on the other is not a change. Constant tensors
compare by the digest of their values (:mod:`metainspect.diff.attrvalues`). Collections,
signatures, the saver and asset references compare after A's node names are mapped the same way
(checkpoint keys and scopes through the scope renames the pairs imply).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metainspect.checkpoint.renames import Rename, Renamer
from metainspect.diff.attrvalues import IDENTITY, NAME_ATTRS, Names, attr_key, show
from metainspect.diff.matching import NodeSet, ScopeRenames, match_nodes, split_function_reference
from metainspect.diff.results import FieldChange, Renamed, name_filter
from metainspect.graph.model import Model, Node

if TYPE_CHECKING:
    from tensorboard.compat.proto.attr_value_pb2 import AttrValue
    from tensorboard.compat.proto.function_pb2 import FunctionDef
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

GRAPH = "graph"
#: attrs left out of the structural key (they name other nodes or scopes; compared after pairing)
_UNKEYED_ATTRS = frozenset({"_class", "frame_name"})
Defaults = Mapping[tuple[str, str], "AttrValue"]


@dataclass(frozen=True)
class NodeEntry:
    """A node only one side holds."""

    name: str
    op: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op}


@dataclass(frozen=True)
class NodeChange:
    """A node both sides hold (``name`` in B) that differs in ``changes``."""

    name: str
    renamed_from: str | None
    op: str
    changes: tuple[FieldChange, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "renamed_from": self.renamed_from, "op": self.op,
                "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class NodesDiff:
    """Nodes of one graph (or function body) against another."""

    nodes_a: int
    nodes_b: int
    added: tuple[NodeEntry, ...] = ()
    removed: tuple[NodeEntry, ...] = ()
    renamed: tuple[Renamed, ...] = ()
    changed: tuple[NodeChange, ...] = ()

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.renamed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [n.to_json() for n in self.added], "removed": [n.to_json() for n in self.removed],
            "renamed": [r.to_json() for r in self.renamed], "changed": [c.to_json() for c in self.changed],
        }


@dataclass(frozen=True)
class FunctionChange:
    """A library function both sides hold (``name`` in B) whose signature or body differs."""

    name: str
    renamed_from: str | None
    signature: tuple[FieldChange, ...]
    body: NodesDiff

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "renamed_from": self.renamed_from,
                "signature": [c.to_json() for c in self.signature], **self.body.to_json()}


@dataclass(frozen=True)
class FunctionsDiff:
    """The function libraries."""

    functions_a: int = 0
    functions_b: int = 0
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[Renamed, ...] = ()
    changed: tuple[FunctionChange, ...] = ()

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.renamed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {"added": list(self.added), "removed": list(self.removed),
                "renamed": [r.to_json() for r in self.renamed], "changed": [c.to_json() for c in self.changed]}


@dataclass(frozen=True)
class CollectionChange:
    """A collection both sides hold whose items differ (A's items shown with A's names)."""

    name: str
    kind_a: str
    kind_b: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    #: same items in another order
    reordered: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind_a": self.kind_a, "kind_b": self.kind_b, "added": list(self.added),
                "removed": list(self.removed), "reordered": self.reordered}


@dataclass(frozen=True)
class KeyedDiff:
    """Entries by key (collections by name, signatures by key): added, removed, changed."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[Any, ...] = ()

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {"added": list(self.added), "removed": list(self.removed), "changed": [c.to_json() for c in self.changed]}


@dataclass(frozen=True)
class SignatureChange:
    """A signature both sides hold whose method, inputs or outputs differ."""

    key: str
    changes: tuple[FieldChange, ...]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class GraphDiff:
    """The result of :func:`diff_graphs`."""

    a: str
    b: str
    graph_kind_a: str
    graph_kind_b: str
    nodes: NodesDiff
    functions: FunctionsDiff = FunctionsDiff()
    collections: KeyedDiff = KeyedDiff()
    signatures: KeyedDiff = KeyedDiff()
    saver: tuple[FieldChange, ...] = ()
    versions: tuple[FieldChange, ...] = ()
    #: object graph, asset files
    other: tuple[FieldChange, ...] = ()
    #: scope renames explaining the renamed nodes (``net`` -> ``model``), with how many each explains
    rename_rules: tuple[tuple[Renamed, int], ...] = ()
    notes: tuple[str, ...] = ()
    kind: str = field(default=GRAPH, init=False)

    @property
    def added(self) -> tuple[NodeEntry, ...]:
        return self.nodes.added

    @property
    def removed(self) -> tuple[NodeEntry, ...]:
        return self.nodes.removed

    @property
    def renamed(self) -> tuple[Renamed, ...]:
        return self.nodes.renamed

    @property
    def changed(self) -> tuple[NodeChange, ...]:
        return self.nodes.changed

    @property
    def identical(self) -> bool:
        """Nothing differs (renamed nodes count as a difference)."""
        return (self.nodes.identical and self.functions.identical and self.collections.identical
                and self.signatures.identical and not (self.saver or self.versions or self.other))

    def to_json(self) -> dict[str, Any]:
        """The ``diff --json`` document (schema in docs/diff.md)."""
        f = self.functions
        return {
            "a": self.a, "b": self.b, "kind": self.kind, "identical": self.identical,
            "graph_kind_a": self.graph_kind_a, "graph_kind_b": self.graph_kind_b,
            "counts": {
                "nodes_a": self.nodes.nodes_a, "nodes_b": self.nodes.nodes_b, "added": len(self.added),
                "removed": len(self.removed), "renamed": len(self.renamed), "changed": len(self.changed),
                "functions_a": f.functions_a, "functions_b": f.functions_b, "functions_added": len(f.added),
                "functions_removed": len(f.removed), "functions_renamed": len(f.renamed),
                "functions_changed": len(f.changed),
            },
            **self.nodes.to_json(),
            "rename_rules": [{**rule.to_json(), "nodes": count} for rule, count in self.rename_rules],
            "functions": f.to_json(),
            "collections": self.collections.to_json(),
            "signatures": self.signatures.to_json(),
            "saver": [c.to_json() for c in self.saver],
            "versions": [c.to_json() for c in self.versions],
            "other": [c.to_json() for c in self.other],
            "notes": list(self.notes),
        }


def diff_graphs(a: str | os.PathLike[str] | Model, b: str | os.PathLike[str] | Model, *,
                tags: list[str] | None = None, match: str | re.Pattern[str] | None = None,
                renames: Iterable[str | Rename] = ()) -> GraphDiff:
    """Compare graph ``a`` with graph ``b`` (paths or :class:`Model` objects).

    ``tags`` picks a SavedModel's meta graph (as :func:`metainspect.load_model`); ``renames``
    (``OLD=NEW`` scopes, ``re:PATTERN=REPL``) pair A's nodes with the names the rules give them
    before structural pairing; ``match`` (a regular expression, searched) restricts the report to
    nodes and functions whose A or B name it finds, leaving collections, signatures, saver and
    versions out. Raises :class:`MetainspectError` for an unusable input.
    """
    model_a, model_b = _model(a, tags), _model(b, tags)
    keep = name_filter(match)
    user_rules = Renamer(renames)
    rules = user_rules.rules
    notes = [f"{side}: compared the meta graph tagged {','.join(m.tags) or '(no tags)'} of {len(m.all_tags)}"
             for side, m in (("A", model_a), ("B", model_b)) if len(m.all_tags) > 1]
    functions, fmap = _diff_functions(model_a, model_b, keep)
    names_for_key = Names(functions=lambda f: fmap.get(f, f))
    side_a, side_b = NodeSet(model_a.nodes()), NodeSet(model_b.nodes())
    seed = _seed(side_a, side_b, rules)
    pairs = match_nodes(side_a, side_b, lambda n: _node_key(n, names_for_key), lambda n: _node_key(n, IDENTITY), seed)
    scope_rules = _scopes(user_rules, ScopeRenames(pairs.items()))
    names = Names(nodes=lambda x: pairs.get(x, x), scopes=scope_rules, functions=names_for_key.functions)
    defaults = _defaults(model_a, model_b)
    exact = not any(x != y for x, y in (*pairs.items(), *fmap.items()))
    nodes = _nodes_diff(side_a, side_b, pairs, names, defaults, keep, exact)
    result = GraphDiff(
        a=model_a.path, b=model_b.path, graph_kind_a=model_a.kind, graph_kind_b=model_b.kind, nodes=nodes,
        functions=functions, rename_rules=_explaining_rules(nodes.renamed), notes=tuple(notes),
    )
    if match is not None:
        return result
    mapped_a = _mapped_meta_graph(model_a.meta_graph, {x: y for x, y in pairs.items() if x != y}, scope_rules)
    view_a = Model(model_a.path, model_a.kind, model_a.encoding, mapped_a, model_a.all_tags)
    view_b = Model(model_b.path, model_b.kind, model_b.encoding, _outside_graph(model_b.meta_graph), model_b.all_tags)
    return GraphDiff(
        a=result.a, b=result.b, graph_kind_a=result.graph_kind_a, graph_kind_b=result.graph_kind_b, nodes=nodes,
        functions=functions, collections=_diff_collections(model_a, view_a, view_b),
        signatures=_diff_signatures(view_a, view_b), saver=_diff_saver(view_a, view_b),
        versions=_diff_versions(model_a, model_b), other=_diff_other(view_a, view_b),
        rename_rules=result.rename_rules, notes=result.notes,
    )


def _model(source: str | os.PathLike[str] | Model, tags: list[str] | None) -> Model:
    if isinstance(source, Model):
        return source
    from metainspect.graph.model import load_model

    return load_model(source, tags)


def _seed(a: NodeSet, b: NodeSet, rules: list[Rename]) -> dict[str, str]:
    """Pairs the caller's rename rules give: A's node -> its renamed name, when B holds that."""
    if not rules:
        return {}
    renamer = Renamer(rules)
    seed = {}
    for name in a.nodes:
        new = renamer(name)
        if new != name and new in b.nodes:
            seed[name] = new
    return seed


def _node_key(node: Node, names: Names) -> Hashable:
    """Op and attrs, without names of other nodes: the structural key of a node."""
    attrs = node.proto.attr
    return (node.op, tuple(sorted((k, attr_key(k, attrs[k], node.name, names)) for k in attrs if k not in _UNKEYED_ATTRS)))


def _defaults(*models: Model) -> dict[tuple[str, str], AttrValue]:
    """(op, attr) -> default value, from the graphs' own stripped op lists."""
    found: dict[tuple[str, str], AttrValue] = {}
    for model in models:
        for op in model.meta_graph.meta_info_def.stripped_op_list.op:
            for attr in op.attr:
                if attr.HasField("default_value"):
                    found.setdefault((op.name, attr.name), attr.default_value)
    return found


# -- nodes ----------------------------------------------------------------------------------------


def _nodes_diff(a: NodeSet, b: NodeSet, pairs: dict[str, str], names: Names, defaults: Defaults,
                keep: Callable[[str], bool], exact: bool) -> NodesDiff:
    """``exact``: no node or function is renamed, so equal protos mean equal nodes."""
    paired_b = set(pairs.values())
    removed = tuple(NodeEntry(n, node.op) for n, node in a.nodes.items() if n not in pairs and keep(n))
    added = tuple(NodeEntry(n, node.op) for n, node in b.nodes.items() if n not in paired_b and keep(n))
    renamed, changed = [], []
    order = sorted(pairs.items(), key=lambda p: b.order[p[1]])
    for x, y in order:
        if not (keep(x) or keep(y)):
            continue
        if x != y:
            renamed.append(Renamed(x, y))
        node_a, node_b = a.nodes[x], b.nodes[y]
        if exact and node_a.proto == node_b.proto:
            continue
        changes = _node_changes(a, b, node_a, node_b, pairs, names, defaults)
        if changes:
            changed.append(NodeChange(y, x if x != y else None, node_b.op, tuple(changes)))
    return NodesDiff(len(a.nodes), len(b.nodes), added, removed, tuple(renamed), tuple(changed))


def _node_changes(side_a: NodeSet, side_b: NodeSet, a: Node, b: Node, pairs: Mapping[str, str], names: Names,
                  defaults: Defaults) -> list[FieldChange]:
    changes = []
    if a.op != b.op:
        changes.append(FieldChange("op", None, a.op, b.op))
    data_a, control_a = side_a.mapped_inputs(a.name, pairs)
    data_b, control_b = side_b.mapped_inputs(b.name)
    if data_a != data_b:
        changes.append(FieldChange("inputs", None, ", ".join(a.inputs), ", ".join(b.inputs)))
    if control_a != control_b:
        changes.append(FieldChange("control_inputs", None, ", ".join(sorted(a.control_inputs)),
                                   ", ".join(sorted(b.control_inputs))))
    if a.device != b.device:
        changes.append(FieldChange("device", None, a.device, b.device))
    changes += _attr_changes(a.proto.attr, b.proto.attr, a.name, b.name, b.op, names, defaults)
    return changes


def _attr_changes(attrs_a: Mapping[str, AttrValue], attrs_b: Mapping[str, AttrValue], name_a: str, name_b: str,
                  op: str, names: Names, defaults: Defaults) -> list[FieldChange]:
    changes = []
    for key in sorted(set(attrs_a) | set(attrs_b)):
        value_a = attrs_a.get(key)
        value_b = attrs_b.get(key)
        if value_a is not None and value_b is not None:
            if value_a == value_b and key not in NAME_ATTRS and not _names_function(value_a):
                continue
            if attr_key(key, value_a, name_a, names) == attr_key(key, value_b, name_b):
                continue
        else:
            default = defaults.get((op, key))
            present = value_a if value_a is not None else value_b
            if default is not None and present is not None and attr_key(key, present, "") == attr_key(key, default, ""):
                continue
        changes.append(FieldChange("attr", key, show(value_a), show(value_b)))
    return changes


def _names_function(value: AttrValue) -> bool:
    kind = value.WhichOneof("value")
    return kind == "func" or (kind == "list" and len(value.list.func) > 0)


# -- functions ------------------------------------------------------------------------------------


def _diff_functions(model_a: Model, model_b: Model, keep: Callable[[str], bool]) -> tuple[FunctionsDiff, dict[str, str]]:
    """The library diff, and A's function name -> B's for every paired function."""
    lib_a = {f.signature.name: f for f in model_a.graph_def.library.function}
    lib_b = {f.signature.name: f for f in model_b.graph_def.library.function}
    fmap = {name: name for name in lib_a if name in lib_b}
    while True:  # pair by content; each round maps more function names inside attrs
        names = Names(functions=lambda f: fmap.get(f, f))
        keys_b: dict[int, list[str]] = {}
        paired = set(fmap.values())
        for name, fdef in lib_b.items():
            if name not in paired:
                keys_b.setdefault(_function_key(fdef, IDENTITY), []).append(name)
        new: dict[str, str] = {}
        for name, fdef in lib_a.items():
            if name in fmap:
                continue
            found = keys_b.get(_function_key(fdef, names), [])
            if len(found) == 1 and found[0] not in new.values():
                new[name] = found[0]
        if not new:
            break
        fmap.update(new)
    paired_b = set(fmap.values())
    names = Names(functions=lambda f: fmap.get(f, f))
    fmap_exact = all(x == y for x, y in fmap.items())
    changed = []
    for x, y in sorted(fmap.items(), key=lambda p: p[1]):
        if keep(x) or keep(y):
            change = _function_change(lib_a[x], lib_b[y], names, fmap_exact)
            if change is not None:
                changed.append(change)
    diff = FunctionsDiff(
        functions_a=len(lib_a), functions_b=len(lib_b),
        added=tuple(n for n in sorted(lib_b) if n not in paired_b and keep(n)),
        removed=tuple(n for n in sorted(lib_a) if n not in fmap and keep(n)),
        renamed=tuple(Renamed(x, y) for x, y in sorted(fmap.items()) if x != y and (keep(x) or keep(y))),
        changed=tuple(changed),
    )
    return diff, fmap


def _function_key(fdef: FunctionDef, names: Names) -> int:
    """A digest of a function's content without its own name (function names inside mapped)."""
    signature = type(fdef.signature)()
    signature.CopyFrom(fdef.signature)
    signature.name = ""
    digest = hashlib.sha256(signature.SerializeToString(deterministic=True))
    for node in fdef.node_def:
        attrs = tuple(sorted((k, attr_key(k, node.attr[k], node.name, names)) for k in node.attr))
        digest.update(repr((node.name, node.op, tuple(node.input), node.device, attrs)).encode())
    attrs = tuple(sorted((k, attr_key(k, fdef.attr[k], "", names)) for k in fdef.attr))
    digest.update(repr((sorted(fdef.ret.items()), sorted(fdef.control_ret.items()), attrs)).encode())
    return int.from_bytes(digest.digest()[:8], "little")


def _function_change(fa: FunctionDef, fb: FunctionDef, names: Names, fmap_exact: bool) -> FunctionChange | None:
    name_a, name_b = fa.signature.name, fb.signature.name
    outputs_a = {**{f"ret:{k}": v for k, v in fa.ret.items()}, **{f"control:{k}": v for k, v in fa.control_ret.items()}}
    outputs_b = {**{f"ret:{k}": v for k, v in fb.ret.items()}, **{f"control:{k}": v for k, v in fb.control_ret.items()}}
    side_a = NodeSet([Node.from_proto(n) for n in fa.node_def], split_function_reference, outputs_a)
    side_b = NodeSet([Node.from_proto(n) for n in fb.node_def], split_function_reference, outputs_b)
    pairs = match_nodes(side_a, side_b, lambda n: _node_key(n, names), lambda n: _node_key(n, IDENTITY))
    body_names = Names(nodes=lambda x: pairs.get(x, x), scopes=ScopeRenames(pairs.items()),
                       functions=names.functions)
    exact = fmap_exact and not any(x != y for x, y in pairs.items())
    body = _nodes_diff(side_a, side_b, pairs, body_names, {}, lambda name: True, exact)
    signature = _signature_changes(fa, fb, pairs, names)
    if body.identical and not signature:  # a renamed function alone is listed under renamed
        return None
    return FunctionChange(name_b, name_a if name_a != name_b else None, tuple(signature), body)


def _signature_changes(fa: FunctionDef, fb: FunctionDef, pairs: Mapping[str, str], names: Names) -> list[FieldChange]:
    changes = []
    for label, args_a, args_b in (("input_args", fa.signature.input_arg, fb.signature.input_arg),
                                  ("output_args", fa.signature.output_arg, fb.signature.output_arg)):
        text_a, text_b = [_arg_text(x) for x in args_a], [_arg_text(x) for x in args_b]
        if text_a != text_b:
            changes.append(FieldChange(label, None, ", ".join(text_a), ", ".join(text_b)))
    if fa.signature.is_stateful != fb.signature.is_stateful:
        changes.append(FieldChange("is_stateful", None, str(fa.signature.is_stateful), str(fb.signature.is_stateful)))
    attrs_a = [f"{a.name}:{a.type}" for a in fa.signature.attr]
    attrs_b = [f"{a.name}:{a.type}" for a in fb.signature.attr]
    if attrs_a != attrs_b:
        changes.append(FieldChange("attr_defs", None, ", ".join(attrs_a), ", ".join(attrs_b)))
    for label, map_a, map_b in (("ret", fa.ret, fb.ret), ("control_ret", fa.control_ret, fb.control_ret)):
        for key in sorted(set(map_a) | set(map_b)):
            ref_a, ref_b = map_a.get(key), map_b.get(key)
            mapped = _rename_function_ref(ref_a, pairs) if ref_a is not None else None
            if mapped != ref_b:
                changes.append(FieldChange(label, key, ref_a, ref_b))
    changes += _attr_changes(fa.attr, fb.attr, "", "", "", names, {})
    return changes


def _arg_text(arg: Any) -> str:
    from metainspect.formats import dtypes

    kind = dtypes.name_of(arg.type) if arg.type else arg.type_attr or arg.type_list_attr
    return f"{arg.name}:{arg.number_attr + '*' if arg.number_attr else ''}{kind}"


def _rename_function_ref(ref: str, pairs: Mapping[str, str]) -> str:
    control, op, suffix = split_function_reference(ref)
    return control + pairs.get(op, op) + suffix


# -- beyond the nodes -----------------------------------------------------------------------------


def _explaining_rules(renamed: Iterable[Renamed]) -> tuple[tuple[Renamed, int], ...]:
    """The learned scope rules with how many renamed nodes each renames, most first."""
    pairs = [(r.old, r.new) for r in renamed]
    learned = ScopeRenames(pairs)
    counts: Counter[str] = Counter()
    for old, new in pairs:
        rule = learned.rule_for(old)
        if rule is not None and rule.apply(old) == new:
            counts[rule.old] += 1
    return tuple((Renamed(old, learned.rules[old].new), n) for old, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))


def _scopes(user: Renamer, learned: ScopeRenames) -> Callable[[str], str]:
    """Checkpoint keys and scope names of A in B's names: the caller's rules first, else the learned ones."""
    def rename(name: str) -> str:
        renamed = user(name) if user else name
        return renamed if renamed != name else learned(name)

    return rename


def _outside_graph(meta_graph: MetaGraphDef) -> MetaGraphDef:
    """A copy of everything but the GraphDef (collections, signatures, saver, assets, object graph)."""
    copy = type(meta_graph)()
    for descriptor, value in meta_graph.ListFields():
        if descriptor.name == "graph_def":
            continue
        if descriptor.name == "meta_info_def":
            copy.meta_info_def.CopyFrom(value)
            copy.meta_info_def.ClearField("stripped_op_list")
        elif descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            for key in value:
                getattr(copy, descriptor.name)[key].CopyFrom(value[key])
        elif descriptor.is_repeated:
            getattr(copy, descriptor.name).extend(value)
        else:
            getattr(copy, descriptor.name).CopyFrom(value)
    return copy


def _mapped_meta_graph(meta_graph: MetaGraphDef, renamed: dict[str, str], scopes: Callable[[str], str]) -> MetaGraphDef:
    """:func:`_outside_graph` with every node reference renamed to B's names."""
    from metainspect.edit.changes import ChangeLog
    from metainspect.edit.references import NAME, rewrite_meta_graph
    from metainspect.graph.names import rename_reference

    copy = _outside_graph(meta_graph)
    if not renamed:
        return copy

    def visit(role: str, value: str, where: str) -> str:
        if role == NAME:
            return rename_reference(value, renamed)
        return scopes(value)  # checkpoint keys and control-flow scopes

    rewrite_meta_graph(copy, visit, ChangeLog())
    return copy


def _diff_collections(original_a: Model, view_a: Model, view_b: Model) -> KeyedDiff:
    shown_a = {c.name: c for c in original_a.collections()}
    mapped_a = {c.name: c for c in view_a.collections()}
    collections_b = {c.name: c for c in view_b.collections()}
    changed = []
    for name in sorted(set(mapped_a) & set(collections_b)):
        ca, cb, shown = mapped_a[name], collections_b[name], shown_a[name]
        items_a = [_item_text(i) for i in ca.items]
        items_b = [_item_text(i) for i in cb.items]
        if items_a == items_b and ca.kind == cb.kind:
            continue
        original = dict(zip(items_a, (_item_text(i) for i in shown.items)))
        count_a, count_b = Counter(items_a), Counter(items_b)
        added = tuple((count_b - count_a).elements())
        removed = tuple(original.get(i, i) for i in (count_a - count_b).elements())
        changed.append(CollectionChange(name, ca.kind, cb.kind, added, removed, not added and not removed))
    return KeyedDiff(
        added=tuple(sorted(set(collections_b) - set(mapped_a))),
        removed=tuple(sorted(set(mapped_a) - set(collections_b))), changed=tuple(changed),
    )


def _item_text(item: Any) -> str:
    if hasattr(item, "DESCRIPTOR"):
        from google.protobuf import text_format

        return f"{item.DESCRIPTOR.name} {{{text_format.MessageToString(item, as_one_line=True)}}}"
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + item.hex()
    return str(item)


def _diff_signatures(view_a: Model, view_b: Model) -> KeyedDiff:
    sigs_a, sigs_b = view_a.signatures(), view_b.signatures()
    changed = []
    for key in sorted(set(sigs_a) & set(sigs_b)):
        sa, sb = sigs_a[key], sigs_b[key]
        changes = []
        if sa.method_name != sb.method_name:
            changes.append(FieldChange("method_name", None, sa.method_name, sb.method_name))
        for label, specs_a, specs_b in (("input", sa.inputs, sb.inputs), ("output", sa.outputs, sb.outputs)):
            for name in sorted(set(specs_a) | set(specs_b)):
                text_a = _spec_text(specs_a.get(name))
                text_b = _spec_text(specs_b.get(name))
                if text_a != text_b:
                    changes.append(FieldChange(label, name, text_a, text_b))
        if changes:
            changed.append(SignatureChange(key, tuple(changes)))
    return KeyedDiff(added=tuple(sorted(set(sigs_b) - set(sigs_a))),
                     removed=tuple(sorted(set(sigs_a) - set(sigs_b))), changed=tuple(changed))


def _spec_text(spec: Any) -> str | None:
    if spec is None:
        return None
    shape = "<unknown>" if spec.shape is None else "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
    where = spec.name if spec.encoding == "name" else f"{spec.encoding}({', '.join(spec.components)})"
    return f"{where} {spec.dtype or '?'} {shape}"


def _diff_saver(view_a: Model, view_b: Model) -> tuple[FieldChange, ...]:
    saver_a, saver_b = view_a.saver_def(), view_b.saver_def()
    if saver_a is None or saver_b is None:
        if saver_a is saver_b:
            return ()
        return (FieldChange("saver_def", None, "present" if saver_a else None, "present" if saver_b else None),)
    return tuple(FieldChange(key, None, str(saver_a[key]), str(saver_b[key]))
                 for key in saver_a if saver_a[key] != saver_b[key])


def _diff_versions(model_a: Model, model_b: Model) -> tuple[FieldChange, ...]:
    changes = []
    if model_a.kind != model_b.kind:
        changes.append(FieldChange("kind", None, model_a.kind, model_b.kind))
    if model_a.saved_model_schema_version != model_b.saved_model_schema_version:
        changes.append(FieldChange("saved_model_schema_version", None, _text(model_a.saved_model_schema_version),
                                   _text(model_b.saved_model_schema_version)))
    info_a, info_b = model_a.meta_info(), model_b.meta_info()
    for key in info_a:
        va, vb = info_a[key], info_b[key]
        if va == vb:
            continue
        if key == "stripped_op_list":
            changes.append(FieldChange(key, None, ", ".join(sorted(set(va) - set(vb))),
                                       ", ".join(sorted(set(vb) - set(va)))))
        else:
            changes.append(FieldChange(key, None, _text(va), _text(vb)))
    return tuple(changes)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _diff_other(view_a: Model, view_b: Model) -> tuple[FieldChange, ...]:
    changes = []
    graph_a, graph_b = view_a.meta_graph.object_graph_def, view_b.meta_graph.object_graph_def
    digest_a, digest_b = _digest(graph_a) if graph_a.nodes else None, _digest(graph_b) if graph_b.nodes else None
    if digest_a != digest_b:
        changes.append(FieldChange("object_graph_def", None, digest_a, digest_b))
    assets_a = sorted(_item_text(x) for x in view_a.meta_graph.asset_file_def)
    assets_b = sorted(_item_text(x) for x in view_b.meta_graph.asset_file_def)
    if assets_a != assets_b:
        changes.append(FieldChange("asset_file_def", None, "; ".join(assets_a) or None, "; ".join(assets_b) or None))
    return tuple(changes)


def _digest(message: Any) -> str:
    return "sha256:" + hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()[:16]
