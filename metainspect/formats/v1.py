"""Legacy V1 checkpoints: one table per shard, written by TensorFlow's ``TensorSliceWriter``.

Each table maps ``""`` to a ``SavedTensorSlices`` meta record (names, dtypes, shapes and
slices of the tensors in that file) and the OrderedCode key of every slice
(:func:`~metainspect.formats.slices.encode_slice_key`) to a ``SavedTensorSlices`` data record
whose ``TensorProto`` holds the values in the typed field of the dtype. There is no tensor CRC;
every block's CRC is checked when it is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from metainspect.errors import CorruptError, WrongKindError
from metainspect.formats import slices
from metainspect.formats.bundle_codec import VERSION, TensorCorruptError, dtype_of, shape_of
from metainspect.formats.source import ByteSource
from metainspect.formats.table import BlockHandle, Table
from metainspect.formats.wire import BytesLike, WireError, iter_fields
from metainspect.proto.saved_tensor_slice_pb2 import SavedTensorSlices

if TYPE_CHECKING:
    import numpy as np

    from metainspect.formats.dtypes import DType

#: TensorProto field holding the values of each dtype in a V1 record
_VALUE_FIELDS = {
    "float32": ("float_val", 5), "float64": ("double_val", 6), "int64": ("int64_val", 10),
    "bool": ("bool_val", 11), "complex64": ("scomplex_val", 9), "complex128": ("dcomplex_val", 12),
    "float16": ("half_val", 13), "bfloat16": ("half_val", 13), "string": ("string_val", 8),
    **{name: ("int_val", 7) for name in ("int32", "int16", "int8", "uint8", "uint16", "qint8", "quint8", "qint32")},
}
#: fields whose packed form is raw little-endian floats: read without decoding
_FIXED_WIDTH = {"float32", "float64", "complex64", "complex128"}
_DATA_FIELD, _TENSOR_PROTO_FIELD = 2, 3
#: a shard of a sharded V1 checkpoint, ``BASE-00000-of-00002``
SHARD = re.compile(r"^(?P<base>.+)-(?P<id>\d{5})-of-(?P<total>\d{5})$")
#: the pattern TensorFlow records for a sharded V1 checkpoint, ``BASE-?????-of-00002``
_SHARD_PATTERN = re.compile(r"^(?P<base>.+)-\?{5}-of-(?P<total>\d{5})$")


def shard_names(base: str, total: int) -> list[str]:
    """The file names of the ``total`` shards of a V1 checkpoint written as ``base``."""
    return [f"{base}-{i:05d}-of-{total:05d}" for i in range(total)]


def expand_shard_pattern(pattern: str) -> list[str] | None:
    """Every shard name a ``BASE-?????-of-NNNNN`` pattern stands for (None for other names),
    for stores that cannot list files to match it."""
    match = _SHARD_PATTERN.match(pattern)
    return shard_names(match["base"], int(match["total"])) if match else None


@dataclass
class V1Tensor:
    """What the meta records say about one tensor: type, full shape, and its stored slices."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    #: ``(table index, extents)`` per stored slice
    slices: list[tuple[int, list[slices.Extent]]] = field(default_factory=list)


class V1Checkpoint:
    """One V1 checkpoint made of one or more table files (shards)."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files = list(files)
        self._tables: list[Table] = []
        self._tensors: dict[bytes, V1Tensor] = {}
        try:
            for index, path in enumerate(self.files):
                table = Table.open(path)
                self._tables.append(table)
                self._read_meta(index, table)
        except BaseException:
            self.close()
            raise
        self._locations: dict[tuple[int, bytes], tuple[int, int]] | None = None

    def _read_meta(self, index: int, table: Table) -> None:
        path = table.path
        first = table.first()
        if first is None or first[0] != b"":
            raise CorruptError(path, "no V1 meta record under the empty key")
        try:
            meta = SavedTensorSlices.FromString(first[1]).meta  # type: ignore[arg-type]  # upb parses any buffer; the stub says bytes, bytes() would copy
        except DecodeError:
            raise CorruptError(path, "bad SavedTensorSlices meta record") from None
        versions = meta.versions
        if versions.min_consumer > VERSION or VERSION in versions.bad_consumers:
            raise WrongKindError(path, f"V1 checkpoint version min_consumer={versions.min_consumer} is too new to read")
        for item in meta.tensor:
            what = f"tensor {item.name!r}"
            dtype = dtype_of(item.type, path, what)
            shape = shape_of(item.shape, path, what)
            key = item.name.encode("utf-8", "surrogateescape")
            tensor = self._tensors.setdefault(key, V1Tensor(item.name, dtype, shape))
            if (tensor.dtype, tensor.shape) != (dtype, shape):
                raise CorruptError(path, f"{what} is {dtype.name} {list(shape)} here, "
                                         f"{tensor.dtype.name} {list(tensor.shape)} in another shard")
            for proto in item.slice:
                extents = slices.extents_of(proto)
                if len(extents) != len(shape):
                    raise CorruptError(path, f"{what}: slice {slices.slice_spec(extents)} does not match rank {len(shape)}")
                tensor.slices.append((index, extents))

    def names(self) -> list[str]:
        """Tensor names sorted bytewise."""
        return [self._tensors[key].name for key in sorted(self._tensors)]

    def tensor(self, name: str) -> V1Tensor:
        """The meta data of ``name`` (KeyError if absent)."""
        return self._tensors[name.encode("utf-8", "surrogateescape")]

    def location(self, name: str, extents: list[slices.Extent], table_index: int) -> tuple[int, int]:
        """``(offset of the record's block, record size)`` of one stored slice."""
        if self._locations is None:  # one pass over every block, on first use
            self._locations = {}
            for index, table in enumerate(self._tables):
                for handle in table.blocks:
                    for key, value in table.block_entries(handle):
                        self._locations[(index, key)] = (handle.offset, len(value))
        found = self._locations.get((table_index, slices.encode_slice_key(name, extents)))
        if found is None:
            raise CorruptError(self.files[table_index], f"tensor {name!r}: no record for slice {slices.slice_spec(extents)}")
        return found

    def read(self, name: str) -> np.ndarray:
        """Decode tensor ``name``, assembling its slices, as a read-only numpy array."""
        tensor = self.tensor(name)
        parts = self.slice_parts(name)
        if len(parts) == 1 and slices.is_full(tensor.slices[0][1], tensor.shape):
            out = parts[0][1]()
        else:
            try:
                out = slices.assemble(tensor.shape, tensor.dtype.numpy(), parts)
            except ValueError as exc:
                raise CorruptError(self.files[0], f"tensor {name!r}: {exc}") from None
        out.flags.writeable = False
        return out

    def slice_parts(self, name: str) -> list[tuple[tuple[slice, ...], partial[np.ndarray]]]:
        """The stored slices of ``name`` for :func:`~metainspect.formats.slices.assemble`: each
        one's index in the tensor and a reader of its values.

        Checked before anything is allocated: the dtype is one V1 stores, each slice fits the
        tensor, its record can hold its values (every value takes at least one byte), and the
        slices together hold exactly the tensor's element count.
        """
        tensor = self.tensor(name)
        if tensor.dtype.name not in _VALUE_FIELDS:
            raise CorruptError(self.files[0], f"tensor {name!r}: V1 checkpoints cannot hold {tensor.dtype.name}")
        parts = []
        total = 0
        for table_index, extents in tensor.slices:
            table = self._tables[table_index]
            spec = slices.slice_spec(extents) or "(scalar)"
            try:
                index = slices.bounds(extents, tensor.shape)
            except ValueError as exc:
                raise CorruptError(table.path, f"tensor {name!r}: {exc}") from None
            piece_shape = tuple(s.stop - s.start for s in index)
            found = table.get(slices.encode_slice_key(tensor.name, extents))
            if found is None:
                raise CorruptError(table.path, f"tensor {tensor.name!r}: no record for slice {spec}")
            count = math.prod(piece_shape)
            if count > len(found[1]):
                raise CorruptError(table.path, f"tensor {name!r} slice {spec}: {count} values cannot fit its "
                                               f"{len(found[1])}-byte record")
            total += count
            parts.append((index, partial(self._decode_slice, table.path, tensor, spec, piece_shape, *found)))
        if total != math.prod(tensor.shape):
            raise CorruptError(self.files[0], f"tensor {name!r}: slices cover {total} of {math.prod(tensor.shape)} elements")
        return parts

    @staticmethod
    def _decode_slice(path: str, tensor: V1Tensor, spec: str, shape: tuple[int, ...], handle: BlockHandle,
                      record: BytesLike) -> np.ndarray:
        try:
            return _decode_record(record, tensor.dtype, shape)
        except ValueError as exc:
            raise TensorCorruptError(
                path, handle.offset, f"tensor {tensor.name!r} slice {spec} in the block at offset {handle.offset}: {exc}"
            ) from None

    def source(self, table_index: int) -> ByteSource:
        """The bytes of table file ``table_index``."""
        return self._tables[table_index].source

    def close(self) -> None:
        """Release every table file."""
        for table in self._tables:
            table.close()
        self._tables.clear()


def _decode_record(record: BytesLike, dtype: DType, shape: tuple[int, ...]) -> np.ndarray:
    """Values of one data record (a SavedTensorSlices with ``data`` set); ValueError if bad."""
    import numpy as np
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

    tensor_bytes = _tensor_proto_bytes(record)
    field_name, number = _VALUE_FIELDS[dtype.name]
    count = math.prod(shape)
    np_dtype = np.dtype(object) if dtype.name == "string" else dtype.numpy()
    if dtype.name in _FIXED_WIDTH:
        component = np.dtype(np.float32 if dtype.name in ("float32", "complex64") else np.float64)
        chunks = []
        for number_, wire_type, value in iter_fields(tensor_bytes):
            if number_ != number:
                continue
            if isinstance(value, memoryview):  # packed
                if len(value) % component.itemsize:
                    raise ValueError(f"packed {field_name} of {len(value)} bytes")
                chunks.append(np.frombuffer(value, dtype=component))
            elif wire_type == (5 if component.itemsize == 4 else 1):  # one fixed32 float / fixed64 double
                chunks.append(np.frombuffer(int(value).to_bytes(component.itemsize, "little"), dtype=component))
            else:
                raise ValueError(f"a {field_name} element has wire type {wire_type}")
        values = chunks[0] if len(chunks) == 1 else np.concatenate(chunks) if chunks else np.empty(0, component)
        expected = count * (2 if np_dtype.kind == "c" else 1)
        if values.size != expected:
            raise ValueError(f"{values.size} values in {field_name}, shape {list(shape)} needs {expected}")
        return values.view(np_dtype).reshape(shape)
    try:
        proto = TensorProto.FromString(tensor_bytes)  # type: ignore[arg-type]  # upb parses any buffer; the stub says bytes, bytes() would copy
    except DecodeError:
        raise ValueError("bad TensorProto") from None
    raw = getattr(proto, field_name)
    if len(raw) != count:
        raise ValueError(f"{len(raw)} values in {field_name}, shape {list(shape)} needs {count}")
    if dtype.name == "string":
        values = np.empty(count, dtype=object)
        values[:] = list(raw)
    elif field_name == "half_val":
        values = np.array(raw, dtype=np.int64).astype(np.uint16).view(np_dtype)
    else:
        values = np.array(raw, dtype=np.int64 if field_name == "int_val" else np_dtype).astype(np_dtype)
    return values.reshape(shape)


def _tensor_proto_bytes(record: BytesLike) -> memoryview:
    """The ``data.data`` TensorProto bytes of a SavedTensorSlices record, without copying."""
    try:
        for number, wire_type, value in iter_fields(record):
            if number == _DATA_FIELD and wire_type == 2:
                for inner, inner_type, tensor in iter_fields(value):  # type: ignore[arg-type]
                    if inner == _TENSOR_PROTO_FIELD and inner_type == 2:
                        return tensor  # type: ignore[return-value]
    except WireError as exc:
        raise ValueError(str(exc)) from None
    raise ValueError("record has no tensor data")
