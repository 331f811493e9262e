"""Node attrs as comparable keys and as short text, constant tensors by the digest of their values.

A tensor's digest covers its dtype, shape and element values, not its encoding: a constant
stored in ``tensor_content`` and the same constant stored in ``float_val`` have one digest.
Attrs that name other things go through a :class:`Names` mapping before they are compared:
``loc:@node`` colocation entries (node names), ``frame_name`` (a scope), functions (``func``
attrs, by function name). A ``shared_name`` equal to the node's own name stands for "the node
itself", so it survives a rename.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metainspect.formats import dtypes
from metainspect.formats.tensor_proto import element_count, nested_lists, shape_of, to_numpy

if TYPE_CHECKING:
    from tensorboard.compat.proto.attr_value_pb2 import AttrValue
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

#: splat constants (fewer stored values than elements) are expanded for the digest up to this size
_EXPAND_LIMIT = 1 << 20
#: tensors with at most this many elements show their values beside the digest
_SHOWN_ELEMENTS = 6
_LOC = b"loc:@"
_LIST_KINDS = ("s", "i", "f", "b", "type", "shape", "tensor", "func")
#: attrs holding names of other nodes, scopes or the node itself (compared after mapping)
NAME_ATTRS = frozenset({"_class", "frame_name", "shared_name"})


def _same(name: str) -> str:
    return name


@dataclass(frozen=True)
class Names:
    """How the names inside A's attrs translate to B's (identity for B itself)."""

    nodes: Callable[[str], str] = _same
    scopes: Callable[[str], str] = _same
    functions: Callable[[str], str] = _same


IDENTITY = Names()


def attr_key(name: str, value: AttrValue, node_name: str, names: Names = IDENTITY) -> Hashable:
    """A hashable key equal for two attrs that mean the same (after ``names``)."""
    if name == "shared_name" and value.WhichOneof("value") == "s":
        return ("self",) if value.s.decode("utf-8", "replace") == node_name else ("s", value.s)
    if name == "frame_name" and value.WhichOneof("value") == "s":
        return ("s", names.scopes(value.s.decode("utf-8", "replace")).encode("utf-8"))
    if name == "_class" and value.WhichOneof("value") == "list":
        return ("list", "s", tuple(_colocation(item, names) for item in value.list.s))
    return _key(value, names)


def _colocation(item: bytes, names: Names) -> bytes:
    if item.startswith(_LOC):
        return _LOC + names.nodes(item[len(_LOC):].decode("utf-8", "replace")).encode("utf-8")
    return item


def _key(value: AttrValue, names: Names) -> Hashable:
    kind = value.WhichOneof("value")
    if kind is None:
        return ("none",)
    if kind == "list":
        for list_kind in _LIST_KINDS:
            items = getattr(value.list, list_kind)
            if items:
                return ("list", list_kind, tuple(_scalar_key(list_kind, item, names) for item in items))
        return ("list", "", ())
    return _scalar_key(kind, getattr(value, kind), names)


def _scalar_key(kind: str, item: Any, names: Names) -> Hashable:
    if kind == "f":
        return ("f", struct.pack("<f", item))  # bit pattern: NaN equals NaN, -0.0 differs from 0.0
    if kind == "shape":
        return ("shape", item.unknown_rank, tuple(d.size for d in item.dim))
    if kind == "tensor":
        return ("tensor", tensor_digest(item)[2])
    if kind == "func":
        return ("func", names.functions(item.name),
                tuple(sorted((k, _key(v, names)) for k, v in item.attr.items())))
    return (kind, item)


def tensor_digest(proto: TensorProto) -> tuple[str, tuple[int, ...], str, Any]:
    """(dtype name, shape, sha256 hex of the values, the values when there are only a few or None)."""
    dtype_name = dtypes.name_of(proto.dtype)
    shape = shape_of(proto)
    count = element_count(shape)
    digest = hashlib.sha256(f"{dtype_name}{list(shape)}".encode())
    values = None
    try:
        if not _expandable(proto, dtype_name, count):
            raise ValueError("splat constant too large to expand")
        array = to_numpy(proto)
    except (ValueError, TypeError):
        # a huge splat constant, an undecodable dtype or a malformed proto: its bytes stand for it
        digest.update(b"proto")
        digest.update(proto.SerializeToString(deterministic=True))
        return dtype_name, shape, digest.hexdigest(), None
    if array.dtype == object:
        for item in array.reshape(-1).tolist():
            raw = item if isinstance(item, bytes) else item.SerializeToString(deterministic=True)
            digest.update(struct.pack("<Q", len(raw)))
            digest.update(raw)
    else:
        digest.update(array.tobytes())  # this machine's byte order: digests compare within one run
    if count <= _SHOWN_ELEMENTS and nested_lists(shape) <= _SHOWN_ELEMENTS and dtype_name != "variant":
        values = array.tolist()
    return dtype_name, shape, digest.hexdigest(), values


def _expandable(proto: TensorProto, dtype_name: str, count: int) -> bool:
    """Whether decoding allocates no more than the proto holds (or a bounded amount)."""
    if count <= _EXPAND_LIMIT or proto.tensor_content:
        return True
    stored = max((len(field) for descriptor, field in proto.ListFields() if descriptor.name.endswith("_val")),
                 default=0)
    divisor = 2 if dtype_name.startswith("complex") else 1
    return stored // divisor >= count


def show(value: AttrValue | None) -> str | None:
    """Short text for an attr value (None when absent)."""
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind is None:
        return "<no value>"
    if kind == "list":
        for list_kind in _LIST_KINDS:
            items = getattr(value.list, list_kind)
            if items:
                return "[" + ", ".join(_show_scalar(list_kind, item) for item in items) + "]"
        return "[]"
    return _show_scalar(kind, getattr(value, kind))


def _show_scalar(kind: str, item: Any) -> str:
    if kind == "s":
        try:
            return repr(item.decode("utf-8"))
        except UnicodeDecodeError:
            return "0x" + str(item.hex())
    if kind == "type":
        return dtypes.name_of(item)
    if kind == "shape":
        if item.unknown_rank:
            return "<unknown rank>"
        return "[" + ", ".join("?" if d.size < 0 else str(d.size) for d in item.dim) + "]"
    if kind == "tensor":
        dtype_name, shape, digest, values = tensor_digest(item)
        text = f"{dtype_name} {list(shape)} sha256:{digest[:16]}"
        if values is not None:
            text += f" = {_short(values)}"
        return text
    if kind == "func":
        return str(item.name)
    if kind == "f":
        return repr(item)
    if kind == "b":
        return "true" if item else "false"
    return str(item)


def _short(values: Any) -> str:
    if isinstance(values, bytes):
        try:
            return repr(values.decode("utf-8"))
        except UnicodeDecodeError:
            return "0x" + values.hex()
    if isinstance(values, list):
        return "[" + ", ".join(_short(v) for v in values) + "]"
    return repr(values)
