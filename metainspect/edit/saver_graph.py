"""Edits of the TF1 saver's subgraph: its key constants renamed, variables taken out of it.

What the saver's ops read and write is :mod:`metainspect.graph.saver`'s; renaming keys rewrites
the key constants it finds, and dropping variables removes their entries from every save and
restore op in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metainspect.edit.changes import ChangeLog
from metainspect.errors import MetainspectError
from metainspect.graph.names import output_index, split_reference
from metainspect.graph.ops import RESTORE_OPS, SAVE_OPS
from metainspect.graph.saver import SAVED_DTYPES_ATTR, key_constant, key_constants, string_values

if TYPE_CHECKING:
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

    from metainspect.graph.model import Model, Node


def set_strings(const: NodeDef, values: list[str]) -> None:
    """Replace a string Const's values, keeping it a scalar or resizing its one dimension."""
    tensor = const.attr["value"].tensor
    del tensor.string_val[:]
    tensor.string_val.extend(v.encode("utf-8") for v in values)
    if tensor.tensor_shape.dim:
        del tensor.tensor_shape.dim[1:]
        tensor.tensor_shape.dim[0].size = len(values)
        if "_output_shapes" in const.attr and const.attr["_output_shapes"].list.shape:
            shape = const.attr["_output_shapes"].list.shape[0]
            shape.Clear()
            shape.dim.add(size=len(values))


def rename_keys(model: Model, mapping: dict[str, str], log: ChangeLog) -> None:
    """Rewrite ``model``'s key constants by ``mapping`` (keys not in it stay)."""
    for const in list(key_constants(model)):
        old = string_values(const.proto)
        new = [mapping.get(key, key) for key in old]
        if new == old:
            continue
        set_strings(const.proto, new)
        for before, after in zip(old, new):
            if before != after:
                log.add(f"node {const.name}", f"checkpoint key {before} -> {after}")


def drop_saved_variables(model: Model, variables: set[str], log: ChangeLog) -> set[str]:
    """Take ``variables`` out of every save and restore op of ``model``'s graph.

    Save ops lose the tensor inputs, keys, slice specs and dtypes of those variables; RestoreV2
    ops lose the matching outputs (later outputs are renumbered in every consumer). Returns the
    nodes that read a dropped restore output (the assigns into the dropped variables) and V1
    restore ops of dropped keys: the caller removes them.
    """
    saved = model.saver_keys()
    keys = {entry for name in variables for entry in saved.get(name, [])}
    if not keys:
        return set()
    graph = _Wiring(model)
    doomed: set[str] = set()
    for node in list(model.graph_def.node):
        if node.op in SAVE_OPS and len(node.input) > 2:
            _drop_from_save(graph, node, keys, log)
        elif node.op == "RestoreV2" and len(node.input) > 2:
            doomed |= _drop_from_restore(graph, node, keys, log)
        elif node.op in RESTORE_OPS and len(node.input) > 1:
            found = _entries(graph, node, node.op == "RestoreSlice" and len(node.input) > 2)
            if found is not None and set(found[2]) & keys:
                doomed.add(node.name)
    return doomed


class _Wiring:
    """Nodes by name and, for each node, the NodeDefs reading it (data or control)."""

    def __init__(self, model: Model) -> None:
        self.nodes: dict[str, Node] = model.nodes_by_name()
        self.consumers: dict[str, list[NodeDef]] = {}
        for node in model.graph_def.node:
            for ref in node.input:
                self.consumers.setdefault(split_reference(ref)[1], []).append(node)


def _entries(graph: _Wiring, node: NodeDef, with_slices: bool) -> tuple[NodeDef, NodeDef | None, list[tuple[str, str]]] | None:
    """The key and slice Consts of a saver op and its (key, slice spec) entries."""
    names_const = _exclusive_const(graph, node, 1)
    if names_const is None:
        return None
    names = string_values(names_const)
    slices_const = _exclusive_const(graph, node, 2) if with_slices else None
    specs = string_values(slices_const) if slices_const is not None else []
    return names_const, slices_const, [(key, specs[i] if i < len(specs) else "") for i, key in enumerate(names)]


def _drop_from_save(graph: _Wiring, node: NodeDef, keys: set[tuple[str, str]], log: ChangeLog) -> None:
    found = _entries(graph, node, node.op != "Save")
    if found is None:
        return
    names_const, slices_const, entries = found
    first = 2 if node.op == "Save" else 3
    data = [ref for ref in node.input if not ref.startswith("^")]
    control = [ref for ref in node.input if ref.startswith("^")]
    drop = {i for i, entry in enumerate(entries) if entry in keys}
    if not drop:
        return
    if len(data) - first != len(entries):
        raise MetainspectError(None, f"saver op {node.name} has {len(data) - first} tensors for {len(entries)} keys")
    _keep_entries(names_const, slices_const, entries, drop)
    tensors = [ref for i, ref in enumerate(data[first:]) if i not in drop]
    node.input[:] = data[:first] + tensors + control
    _drop_list_items(node, SAVED_DTYPES_ATTR[node.op], drop)
    for i in sorted(drop):
        log.add(f"node {node.name}", f"no longer saves {_describe(entries[i])}")


def _drop_from_restore(graph: _Wiring, node: NodeDef, keys: set[tuple[str, str]], log: ChangeLog) -> set[str]:
    found = _entries(graph, node, True)
    if found is None:
        return set()
    names_const, slices_const, entries = found
    drop = {i for i, entry in enumerate(entries) if entry in keys}
    if not drop:
        return set()
    _keep_entries(names_const, slices_const, entries, drop)
    _drop_list_items(node, "dtypes", drop)
    _drop_list_items(node, "_output_shapes", drop)
    for i in sorted(drop):
        log.add(f"node {node.name}", f"no longer restores {_describe(entries[i])}")
    renumbered = {old: old - sum(1 for d in drop if d < old) for old in range(len(entries)) if old not in drop}
    doomed: set[str] = set()
    for consumer in graph.consumers.get(node.name, []):
        for j, ref in enumerate(consumer.input):
            control, op, _ = split_reference(ref)
            if op != node.name or control:
                continue
            index = output_index(ref)
            if index in drop:
                doomed.add(consumer.name)
            elif renumbered.get(index, index) != index:
                new_index = renumbered[index]
                consumer.input[j] = op if new_index == 0 else f"{op}:{new_index}"
    return doomed


def _keep_entries(names_const: NodeDef, slices_const: NodeDef | None, entries: list[tuple[str, str]],
                  drop: set[int]) -> None:
    kept = [entry for i, entry in enumerate(entries) if i not in drop]
    set_strings(names_const, [key for key, _ in kept])
    if slices_const is not None:
        set_strings(slices_const, [spec for _, spec in kept])


def _describe(entry: tuple[str, str]) -> str:
    key, spec = entry
    return f"{key} (slice {spec})" if spec else key


def _exclusive_const(graph: _Wiring, node: NodeDef, index: int) -> NodeDef | None:
    """The key/slice Const feeding input ``index`` of a saver op, refusing one shared with others."""
    const = key_constant(graph.nodes, node.input[index])
    if const is None:
        return None
    users = sorted({user.name for user in graph.consumers.get(const.name, [])})
    if len(users) > 1:
        raise MetainspectError(None, f"saver constant {const.name} is shared by {', '.join(users)}; "
                               "cannot take variables out of the saver safely")
    return const.proto


def _drop_list_items(node: NodeDef, attr: str, drop: set[int]) -> None:
    if attr not in node.attr:
        return
    lst = node.attr[attr].list
    field = "type" if attr != "_output_shapes" else "shape"
    kept = [item for i, item in enumerate(getattr(lst, field)) if i not in drop]
    if field == "type":
        lst.type[:] = kept
    else:
        copies = [shape.SerializeToString() for shape in kept]
        del lst.shape[:]
        for data in copies:
            lst.shape.add().ParseFromString(data)
