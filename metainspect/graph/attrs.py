"""Decode ``AttrValue`` / ``TensorShapeProto`` protos into plain Python values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metainspect.formats import dtypes
from metainspect.formats.tensor_proto import TensorProtoError, element_count, shape_of, to_numpy

if TYPE_CHECKING:
    from tensorboard.compat.proto.attr_value_pb2 import AttrValue
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

#: attr tensors with more elements than this are summarised, not decoded
SMALL_TENSOR_ELEMENTS = 4096

Shape = list[int | None] | None


@dataclass(frozen=True)
class TensorSummary:
    """Stands for an attr tensor too large to decode eagerly, or one whose values do not decode."""

    dtype: str
    shape: tuple[int, ...]
    #: why the values could not be decoded ("" when the tensor is only large)
    problem: str = ""

    def __str__(self) -> str:
        return f"<{self.dtype} tensor {list(self.shape)}{': ' + self.problem if self.problem else ''}>"


@dataclass(frozen=True)
class FunctionRef:
    """An attr naming a function (``func`` attr), with the attrs it is instantiated with."""

    name: str
    attrs: dict[str, Any]


def shape_to_list(shape: TensorShapeProto) -> Shape:
    """A shape as a list with ``None`` for unknown dimensions, or ``None`` for unknown rank."""
    if shape.unknown_rank:
        return None
    return [d.size if d.size >= 0 else None for d in shape.dim]


def shapes_compatible(a: Shape, b: Shape) -> bool:
    """False only when both ranks are known and differ, or a dimension known on both sides differs."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def tensor_value(proto: TensorProto) -> Any:
    """A small tensor as a numpy array; a large or undecodable one as a :class:`TensorSummary`.

    Values are only shown, never needed: a constant whose values do not decode (content of
    the wrong length, impossible dimensions…) is summarised with the reason, and the rest of
    the graph reads on.
    """
    dtype = dtypes.name_of(proto.dtype)
    shape = shape_of(proto)
    if element_count(shape) > SMALL_TENSOR_ELEMENTS:
        return TensorSummary(dtype, shape)
    try:
        return to_numpy(proto)
    except TensorProtoError as exc:
        return TensorSummary(dtype, shape, str(exc))


def attr_value(value: AttrValue) -> Any:
    """Decode one attr: dtype names, shapes as lists, tensors as arrays, lists element-wise."""
    kind = value.WhichOneof("value")
    if kind == "list":
        lst = value.list
        for name in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
            items = getattr(lst, name)
            if items:
                return [_scalar(name, item) for item in items]
        return []
    if kind is None:
        return None
    return _scalar(kind, getattr(value, kind))


def _scalar(kind: str, item: Any) -> Any:
    if kind == "s":
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return item
    if kind == "type":
        return dtypes.name_of(item)
    if kind == "shape":
        return shape_to_list(item)
    if kind == "tensor":
        return tensor_value(item)
    if kind == "func":
        return FunctionRef(item.name, {k: attr_value(v) for k, v in item.attr.items()})
    if kind == "placeholder":
        return f"${item}"
    return item
