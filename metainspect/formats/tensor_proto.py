"""Decode a ``TensorProto`` (Const values, attr tensors, V1 checkpoint slices) into numpy.

Values come from ``tensor_content`` (raw little-endian bytes) or from the typed repeated field
for the dtype; TensorFlow repeats the last typed value to fill the shape ("splat" constants).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metainspect.formats import dtypes

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import DTypeLike
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

#: typed value field holding each dtype's elements, when ``tensor_content`` is empty
_VALUE_FIELD = {
    "float32": "float_val", "float64": "double_val", "int64": "int64_val", "bool": "bool_val",
    "string": "string_val", "uint32": "uint32_val", "uint64": "uint64_val",
    "complex64": "scomplex_val", "complex128": "dcomplex_val",
    "float16": "half_val", "bfloat16": "half_val",
}


#: numpy arrays (before 2.0) hold at most 32 dimensions; no TensorFlow tensor in practice has more
MAX_RANK = 32
#: the most elements (zero-size dimensions left out) any array may span: numpy needs the count
#: times the item size (at most 16 bytes) to fit in a signed 64-bit integer
MAX_ELEMENTS = 2**59
#: elements a "splat" constant (fewer stored values than its shape holds) may be expanded to
MAX_SPLAT_ELEMENTS = 1 << 20


class TensorProtoError(ValueError):
    """A TensorProto whose values cannot be decoded (the message says why)."""


def shape_problem(shape: tuple[int, ...]) -> str | None:
    """Why no array can have ``shape`` (a negative dimension, too many dimensions, too many
    elements), or None when one can."""
    if len(shape) > MAX_RANK:
        return f"{len(shape)} dimensions, more than {MAX_RANK}"
    if any(d < 0 for d in shape):
        return f"a negative dimension in {list(shape)}"
    if element_count(tuple(d for d in shape if d)) > MAX_ELEMENTS:
        return f"more elements than any array can hold in {list(shape)}"
    return None


def shape_of(proto: TensorProto) -> tuple[int, ...]:
    """The tensor's shape as a tuple (a TensorProto always has a known shape)."""
    return tuple(d.size for d in proto.tensor_shape.dim)


def element_count(shape: tuple[int, ...]) -> int:
    """Number of elements of ``shape`` (1 for a scalar)."""
    count = 1
    for dim in shape:
        count *= dim
    return count


def nested_lists(shape: tuple[int, ...] | list[int]) -> int:
    """How many lists ``ndarray.tolist()`` builds for ``shape``: for a shape with a 0 in it, far
    more than its 0 elements can be ([2**40, 0] is 2**40 empty lists in one)."""
    lists, outer = 0, 1
    for dim in shape:
        if outer == 0:
            break
        lists += outer
        outer *= dim
    return lists


def to_numpy(proto: TensorProto, dtype: dtypes.DType | None = None, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Decode ``proto``; ``dtype``/``shape`` override the proto's own (V1 slices omit them).

    Raises :class:`TensorProtoError` for an unknown dtype, an unknown rank, a shape no array can
    have (:func:`shape_problem`), ``tensor_content`` whose length does not
    match the shape, or a splat constant that would expand beyond :data:`MAX_SPLAT_ELEMENTS`.
    Typed values outside their dtype's range wrap around, as TensorFlow's ``static_cast`` does.
    """
    import numpy as np

    if dtype is None:
        try:
            dtype = dtypes.from_enum(proto.dtype)
        except ValueError as exc:
            raise TensorProtoError(str(exc)) from None
    if shape is None:
        if proto.tensor_shape.unknown_rank:
            raise TensorProtoError("the tensor's shape has an unknown rank")
        shape = shape_of(proto)
    problem = shape_problem(shape)
    if problem:
        raise TensorProtoError(f"the tensor's shape has {problem}")
    count = element_count(shape)
    if dtype.name in ("variant", "resource"):
        values = proto.variant_val if dtype.name == "variant" else proto.resource_handle_val
        return _filled(list(values), count, None, object).reshape(shape)
    if dtype.name == "string":
        return _filled(list(proto.string_val), count, b"", object).reshape(shape)
    np_dtype = dtype.numpy()
    if proto.tensor_content:
        if len(proto.tensor_content) != count * np_dtype.itemsize:
            raise TensorProtoError(
                f"tensor_content holds {len(proto.tensor_content)} bytes, {list(shape)} {dtype.name} "
                f"needs {count * np_dtype.itemsize}"
            )
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape)
    field = _VALUE_FIELD.get(dtype.name, "int_val")
    raw = list(getattr(proto, field))
    if field == "half_val":  # bit patterns in an int32 field: the low 16 bits count
        return _filled(raw, count, 0, np.int64).astype(np.uint16).view(np_dtype).reshape(shape)
    if dtype.name.startswith("complex"):  # (real, imaginary) pairs; a splat repeats the last pair
        pairs = [complex(re, im) for re, im in zip(raw[::2], raw[1::2])]
        return _filled(pairs, count, 0j, np_dtype).reshape(shape)
    if dtype.name.startswith(("float8", "float4")):  # bit patterns, one byte each, in float8_val
        return _filled(list(proto.float8_val), count, 0, np.uint8).view(np_dtype).reshape(shape)
    if np_dtype.kind in "iu" or dtype.numpy_name.startswith("ml_dtypes."):  # int_val holds int32 values
        wide = np.uint64 if field == "uint64_val" else np.int64
        return _filled(raw, count, 0, wide).astype(np_dtype).reshape(shape)
    return _filled(raw, count, 0, np_dtype).reshape(shape)


def _filled(values: list, count: int, zero: object, np_dtype: DTypeLike) -> np.ndarray:
    """``values`` padded to ``count`` by repeating the last one (zeros when there are none)."""
    import numpy as np

    if count > len(values) and count > MAX_SPLAT_ELEMENTS:
        raise TensorProtoError(
            f"{len(values)} stored values would have to fill {count} elements "
            f"(more than {MAX_SPLAT_ELEMENTS} are not expanded)"
        )
    out = np.empty(count, dtype=np_dtype)
    stored = min(len(values), count)
    out[:stored] = values[:stored]
    if stored < count:
        out[stored:] = values[-1] if values else zero
    return out


def encode(array: np.ndarray, dtype: str | None = None) -> TensorProto:
    """A ``TensorProto`` holding ``array`` as TensorFlow dtype ``dtype`` (inferred when None).

    Raises ``ValueError`` when the array cannot be stored as that dtype (wrong element size,
    non-bytes strings, resource handles).
    """
    import numpy as np
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

    array = np.asarray(array)
    record = dtypes.from_name(dtype or dtypes.name_for_array(array))
    proto = TensorProto(dtype=record.enum)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if record.name == "string":
        proto.string_val.extend(_as_bytes(item) for item in array.flat)
    elif record.name == "variant":
        for item in array.flat:
            proto.variant_val.add().ParseFromString(item.SerializeToString())
    elif record.is_numeric:
        proto.tensor_content = _raw_bytes(array, record)
    else:
        raise ValueError(f"a {record.name} tensor cannot be stored in a TensorProto constant")
    return proto


def _raw_bytes(array: np.ndarray, record: dtypes.DType) -> bytes:
    """Little-endian element bytes; a different numpy type is cast only when no value changes."""
    import numpy as np

    storage = record.numpy()
    if array.dtype.newbyteorder("=") != storage.newbyteorder("="):
        cast = array.astype(storage)
        if not np.array_equal(cast.astype(array.dtype), array, equal_nan=array.dtype.kind in "fc"):
            raise ValueError(f"{array.dtype.name} values do not fit {record.name} without change")
        array = cast
    return np.ascontiguousarray(array, dtype=storage.newbyteorder("<")).tobytes()


def _as_bytes(item: object) -> bytes:
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    raise ValueError(f"string tensor element {item!r} is not bytes or str")
