"""Every place a MetaGraphDef names a graph node outside the nodes themselves.

Collections (node lists, ``VariableDef``, ``SaverDef``, cond/while contexts, queue runners,
asset defs), the ``SaverDef``, signatures and ``asset_file_def`` refer to nodes by op or tensor
name. :func:`rewrite_meta_graph` passes each such reference to a visitor that may keep, change
or remove it; renames and prunes both go through it so neither can miss a place.

A visitor returning None removes the reference: a list loses the item, a map the entry; when
a single-valued reference goes, the whole entry holding it (a collection item, a signature, the
saver) is removed, since TensorFlow refuses to import an entry naming a missing node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from metainspect.edit.changes import ChangeLog

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

#: roles of a referencing string: an op or tensor name, a checkpoint key, a control-flow context name
NAME, KEY, SCOPE = "name", "key", "scope"
#: message type -> {field: role}; fields of other types are searched recursively
FIELD_ROLES: dict[str, dict[str, str]] = {
    "VariableDef": {"variable_name": NAME, "initializer_name": NAME, "snapshot_name": NAME,
                    "initial_value_name": NAME},
    "SaveSliceInfoDef": {"full_name": KEY},
    "SaverDef": {"filename_tensor_name": NAME, "save_tensor_name": NAME, "restore_op_name": NAME},
    "CondContextDef": {"context_name": SCOPE, "pred_name": NAME, "pivot_name": NAME},
    "WhileContextDef": {"context_name": SCOPE, "pivot_name": NAME, "pivot_for_pred_name": NAME,
                        "pivot_for_body_name": NAME, "loop_exit_names": NAME, "loop_enter_names": NAME,
                        "maximum_iterations_name": NAME},
    "ValuesDef": {"values": NAME, "external_values": NAME},
    "QueueRunnerDef": {"queue_name": NAME, "enqueue_op_name": NAME, "close_op_name": NAME,
                       "cancel_op_name": NAME},
    "TensorInfo": {"name": NAME},
    "CooSparse": {"values_tensor_name": NAME, "indices_tensor_name": NAME, "dense_shape_tensor_name": NAME},
}

#: (role, value, where) -> the new value, the same value, or None to remove the reference
Visitor = Callable[[str, str, str], "str | None"]


def rewrite_message(message: Message, visit: Visitor, where: str) -> tuple[bool, bool]:
    """Apply ``visit`` to every reference inside ``message``; returns (changed, intact).

    ``intact`` is False when a single-valued reference (or a nested entry) was removed: the
    caller must then drop the whole message.
    """
    roles = FIELD_ROLES.get(message.DESCRIPTOR.name, {})
    changed, intact = False, True
    for fd, value in message.ListFields():
        here = f"{where}.{fd.name}"
        role = roles.get(fd.name)
        if role is None:
            if fd.message_type is None:
                continue
            if fd.message_type.GetOptions().map_entry:  # map<string, message>: the values
                if fd.message_type.fields_by_name["value"].message_type is None:
                    continue
                children = [(f"{here}[{key}]", value[key]) for key in sorted(value)]
            else:
                children = [(here, child) for child in (value if fd.is_repeated else [value])]
            for label, child in children:
                child_changed, child_intact = rewrite_message(child, visit, label)
                changed |= child_changed
                intact &= child_intact
        elif fd.message_type is not None:  # map<string, string> of tensor names (external_values)
            changed |= _rewrite_map(value, role, visit, here)
        elif fd.is_repeated:
            old = list(value)
            new = [v for v in (visit(role, item, here) for item in old) if v is not None]
            if new != old:
                value[:] = new
                changed = True
        else:
            new_value = visit(role, value, here)
            if new_value is None:
                intact = False
            elif new_value != value:
                setattr(message, fd.name, new_value)
                changed = True
    return changed, intact


def _rewrite_map(mapping: Any, role: str, visit: Visitor, where: str) -> bool:
    changed = False
    for key, value in list(mapping.items()):
        new_key, new_value = visit(role, key, f"{where} key"), visit(role, value, f"{where}[{key}]")
        if (new_key, new_value) == (key, value):
            continue
        del mapping[key]
        if new_key is not None and new_value is not None:
            mapping[new_key] = new_value
        changed = True
    return changed


def rewrite_meta_graph(meta_graph: MetaGraphDef, visit: Visitor, log: ChangeLog) -> None:
    """Apply ``visit`` to every reference of ``meta_graph`` outside its nodes.

    Entries left naming a removed node are dropped (and logged): collection items, then
    collections left empty, signatures, asset defs, the saver.
    """
    for name in sorted(meta_graph.collection_def):
        _rewrite_collection(meta_graph, name, visit, log)
    for key in sorted(meta_graph.signature_def):
        _, intact = rewrite_message(meta_graph.signature_def[key], visit, f"signature {key}")
        if not intact:
            del meta_graph.signature_def[key]
            log.add(f"signature {key}", "removed: it names a removed tensor")
    broken = [i for i, asset in enumerate(meta_graph.asset_file_def)
              if not rewrite_message(asset, visit, f"asset_file_def[{i}]")[1]]
    for i in reversed(broken):
        log.add(f"asset_file_def {meta_graph.asset_file_def[i].filename}", "removed: its tensor was removed")
        del meta_graph.asset_file_def[i]
    if meta_graph.HasField("saver_def"):
        _, intact = rewrite_message(meta_graph.saver_def, visit, "saver_def")
        if not intact:
            meta_graph.ClearField("saver_def")
            log.add("saver_def", "removed: it names a removed node")


def _rewrite_collection(meta_graph: MetaGraphDef, name: str, visit: Visitor, log: ChangeLog) -> None:
    from metainspect.graph.collections import decode_collection

    collection = meta_graph.collection_def[name]
    kind = collection.WhichOneof("kind")
    if kind not in ("node_list", "bytes_list", "any_list"):
        return
    values = getattr(collection, kind).value
    if kind == "node_list":
        new = [visit(NAME, v, f"collection {name}") for v in values]
        kept = [v for v in new if v is not None]
        for old, value in zip(list(values), new):
            if value is None:
                log.add(f"collection {name}", f"item {old} removed")
        if kept == list(values):
            return
        values[:] = kept
    else:
        items = decode_collection(name, collection).items
        keep = [True] * len(items)
        for i, item in enumerate(items):
            if not hasattr(item, "DESCRIPTOR"):  # plain strings hold no names
                continue
            changed, intact = rewrite_message(item, visit, f"collection {name}[{i}] {item.DESCRIPTOR.name}")
            if not intact:
                keep[i] = False
                log.add(f"collection {name}", f"item {i} ({_label(item)}) removed: it names a removed node")
            elif changed and kind == "bytes_list":
                values[i] = item.SerializeToString()
            elif changed:
                values[i].value = item.SerializeToString()
        if all(keep):
            return
        for i in reversed(range(len(keep))):
            if not keep[i]:
                del values[i]
    if not values:
        del meta_graph.collection_def[name]
        log.add(f"collection {name}", "removed: no items left")


def _label(item: Any) -> str:
    """A short name for a collection item in a log line."""
    for attr in ("variable_name", "context_name", "queue_name", "filename", "filename_tensor_name"):
        value = getattr(item, attr, "")
        if value:
            return f"{item.DESCRIPTOR.name} {value}"
    name: str = item.DESCRIPTOR.name
    return name


def referenced_names(message: Message) -> list[str]:
    """Every op or tensor name ``message`` refers to (checkpoint keys and scopes left out)."""
    found: list[str] = []

    def record(role: str, value: str, where: str) -> str:
        if role == NAME:
            found.append(value)
        return value

    rewrite_message(message, record, "")
    return found


def collect(meta_graph: MetaGraphDef, role: str) -> list[str]:
    """Every value of ``role`` the meta graph's references hold (nothing is changed)."""
    found: list[str] = []

    def record(value_role: str, value: str, where: str) -> str:
        if value_role == role:
            found.append(value)
        return value

    rewrite_meta_graph(meta_graph, record, ChangeLog())
    return found
