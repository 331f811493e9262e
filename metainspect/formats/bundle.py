"""V2 checkpoints ("tensor bundles"): ``PREFIX.index`` plus ``PREFIX.data-NNNNN-of-NNNNN`` shards.

The index is a table (:mod:`metainspect.formats.table`) mapping ``""`` to a
``BundleHeaderProto`` and every tensor name to a ``BundleEntryProto``. Opening reads only the
index; data shards are memory-mapped on first use and numeric tensors are returned as
read-only zero-copy views of the mapping. String and variant tensors carry inline checksums
that are always checked; the per-tensor CRC32C is checked when asked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from google.protobuf.message import DecodeError

from metainspect.errors import CorruptError, NotFoundError, WrongKindError
from metainspect.formats import crc, dtypes, slices
from metainspect.formats.table import Table, map_file, release
from metainspect.formats.wire import BytesLike, WireError, read_varint
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto

if TYPE_CHECKING:
    import numpy as np
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

#: the bundle format version this reader implements (TF's kTensorBundleVersion)
CONSUMER_VERSION = 1
HEADER_KEY = b""


class TensorCorruptError(CorruptError):
    """A tensor's stored bytes are bad; ``offset`` is where they start in ``path``."""

    def __init__(self, path: str, offset: int, message: str) -> None:
        super().__init__(path, message)
        self.offset = offset


def data_file_name(prefix: str, shard_id: int, num_shards: int) -> str:
    """``PREFIX.data-00000-of-00001`` for shard 0 of 1."""
    return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"


def shape_of(proto: TensorShapeProto, path: str, what: str) -> tuple[int, ...]:
    """A fully known shape, or CorruptError (stored tensors never have unknown dimensions)."""
    dims = tuple(d.size for d in proto.dim)
    if proto.unknown_rank or any(d < 0 for d in dims):
        raise CorruptError(path, f"{what} has a shape with unknown dimensions: {list(dims)}")
    return dims


def dtype_of(value: int, path: str, what: str) -> dtypes.DType:
    """The DType of an enum value, or CorruptError naming it when unknown."""
    try:
        return dtypes.from_enum(value)
    except ValueError:
        raise CorruptError(path, f"{what} has unknown dtype enum {value}") from None


class Bundle:
    """An opened V2 bundle: header, entries in key order, lazily mapped data shards."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        table = Table.open(self.index_path)
        try:
            self._raw = self._read_entries(table)
        finally:
            table.close()
        self._parsed: dict[bytes, BundleEntryProto] = {}
        hidden: set[bytes] = set()
        # slice keys start with OrderedCode Num(0) = b"\x00", so in bytewise key order they all
        # come first: looking at the first key tells whether any exist
        if next(iter(self._raw), b"")[:1] == b"\x00":
            for key in self._raw:
                for proto in self._entry(key).slices:
                    hidden.add(slices.encode_slice_key(key, slices.extents_of(proto)))
        self._names = [k.decode("utf-8", "surrogateescape") for k in self._raw if k not in hidden]
        self._paths = [data_file_name(prefix, i, self.num_shards) for i in range(self.num_shards)]
        self._shards: dict[int, object] = {}

    def _read_entries(self, table: Table) -> dict[bytes, bytes]:
        """Serialized entries by key (parsed on first use, so opening stays cheap)."""
        entries: dict[bytes, bytes] = {}
        rows = iter(table)
        first = next(rows, None)
        if first is None:
            raise CorruptError(self.index_path, "empty index: no bundle header")
        if first[0] != HEADER_KEY:
            raise CorruptError(self.index_path, f"first key is {first[0]!r}, not the bundle header")
        self._read_header(first[1])
        for key, value in rows:
            entries[key] = bytes(value)
        return entries

    def _entry(self, key: bytes) -> BundleEntryProto:
        parsed = self._parsed.get(key)
        if parsed is None:
            try:
                parsed = BundleEntryProto.FromString(self._raw[key])
            except DecodeError:
                raise CorruptError(self.index_path, f"bad BundleEntryProto for key {key!r}") from None
            self._parsed[key] = parsed
        return parsed

    def _read_header(self, value: BytesLike) -> None:
        try:
            header = BundleHeaderProto.FromString(value)  # type: ignore[arg-type]  # upb parses any buffer; the stub says bytes, bytes() would copy
        except DecodeError:
            raise CorruptError(self.index_path, "bad BundleHeaderProto under key ''") from None
        version = header.version
        if version.producer < 0 or version.min_consumer > CONSUMER_VERSION or CONSUMER_VERSION in version.bad_consumers:
            raise WrongKindError(
                self.index_path,
                f"bundle version producer={version.producer} min_consumer={version.min_consumer} "
                f"bad_consumers={list(version.bad_consumers)} cannot be read by a version-{CONSUMER_VERSION} reader",
            )
        if header.num_shards < 0 or header.endianness not in (0, 1):
            raise CorruptError(
                self.index_path, f"bad bundle header: num_shards={header.num_shards} endianness={header.endianness}"
            )
        self.num_shards: int = header.num_shards
        self.big_endian: bool = header.endianness == BundleHeaderProto.BIG

    def names(self) -> list[str]:
        """Tensor names in key (bytewise) order, slice keys hidden."""
        return list(self._names)

    def raw_entries(self) -> Iterator[tuple[str, bytes]]:
        """``(name, serialized BundleEntryProto)`` of every tensor in key order, slice keys hidden.

        For listing thousands of tensors without caching a parsed proto per tensor.
        """
        raw = self._raw
        if len(self._names) == len(raw):
            return zip(self._names, raw.values())
        return ((name, raw[_key(name)]) for name in self._names)

    def entry(self, name: str) -> BundleEntryProto:
        """The index entry of ``name`` (KeyError if absent)."""
        return self._entry(_key(name))

    def pieces(self, name: str) -> list[tuple[list[slices.Extent] | None, BundleEntryProto]]:
        """The stored pieces of ``name``: ``[(None, entry)]``, or one ``(extents, entry)`` per slice."""
        entry = self.entry(name)
        if not entry.slices:
            return [(None, entry)]
        out: list[tuple[list[slices.Extent] | None, BundleEntryProto]] = []
        for proto in entry.slices:
            extents = slices.extents_of(proto)
            key = slices.encode_slice_key(_key(name), extents)
            if key not in self._raw:
                raise CorruptError(
                    self.index_path, f"tensor {name!r}: slice {slices.slice_spec(extents)} has no entry (key {key!r})"
                )
            out.append((extents, self._entry(key)))
        return out

    def shard_path(self, shard_id: int) -> str:
        """The data file holding shard ``shard_id``."""
        if 0 <= shard_id < self.num_shards:
            return self._paths[shard_id]
        return data_file_name(self.prefix, shard_id, self.num_shards)

    def read(self, name: str, *, verify: bool = True) -> np.ndarray:
        """Decode tensor ``name`` (partitions reassembled) as a read-only numpy array."""
        entry = self.entry(name)
        if not entry.slices:
            array = self._read_entry(name, entry, verify)
        else:
            array = self._assemble(name, entry, verify)
        array.flags.writeable = False
        return array

    def _assemble(self, name: str, entry: BundleEntryProto, verify: bool) -> np.ndarray:
        import numpy as np

        what = f"tensor {name!r}"
        dtype = dtype_of(entry.dtype, self.index_path, what)
        shape = shape_of(entry.shape, self.index_path, what)
        if dtype.is_numeric:
            out = np.zeros(shape, dtype=dtype.numpy())
        else:
            out = np.empty(shape, dtype=object)
        covered = 0
        for extents, part in self.pieces(name):
            assert extents is not None
            label = f"{what} slice {slices.slice_spec(extents)}"
            if part.dtype != entry.dtype or len(extents) != len(shape):
                raise CorruptError(self.index_path, f"{label}: dtype or rank differs from the full entry")
            try:
                index = slices.bounds(extents, shape)
            except ValueError as exc:
                raise CorruptError(self.index_path, f"{what}: {exc}") from None
            piece = self._read_entry(name, part, verify, label)
            if piece.shape != out[index].shape:
                raise CorruptError(self.index_path, f"{label}: stored shape {list(piece.shape)} does not match the slice")
            out[index] = piece
            covered += piece.size
        if covered != out.size:
            raise CorruptError(self.index_path, f"{what}: slices cover {covered} of {out.size} elements")
        return out

    def _shard(self, shard_id: int) -> object:
        if shard_id not in self._shards:
            path = self.shard_path(shard_id)
            if not os.path.exists(path):
                raise NotFoundError(
                    path, f"data shard {shard_id} of {self.num_shards} is missing (expected beside {self.index_path})")
            self._shards[shard_id] = map_file(path)
        return self._shards[shard_id]

    def _read_entry(self, name: str, entry: BundleEntryProto, verify: bool, label: str | None = None) -> np.ndarray:
        what = label or f"tensor {name!r}"
        dtype = dtype_of(entry.dtype, self.index_path, what)
        shape = shape_of(entry.shape, self.index_path, what)
        if not 0 <= entry.shard_id < self.num_shards:
            raise CorruptError(self.index_path, f"{what} is in shard {entry.shard_id}, the bundle has {self.num_shards}")
        path = self.shard_path(entry.shard_id)
        buf = self._shard(entry.shard_id)
        offset, size = entry.offset, entry.size
        file_size = len(buf)  # type: ignore[arg-type]
        if offset < 0 or size < 0 or offset + size > file_size:
            raise TensorCorruptError(
                path, offset, f"{what}: bytes {offset}..{offset + size} extend beyond the file ({file_size} bytes)"
            )
        data = memoryview(buf)[offset : offset + size]  # type: ignore[arg-type]
        if dtype.is_numeric:
            return self._numeric(buf, data, dtype, shape, what, path, offset, entry.crc32c if verify else None)
        count = math.prod(shape)
        try:
            if dtype.name == "string":
                values, actual = _strings(data, count, self.big_endian)
            elif dtype.name == "variant":
                values, actual = _variants(data, count)
            else:
                raise CorruptError(self.index_path, f"{what} has dtype {dtype.name}, which cannot be stored")
        except ValueError as exc:
            raise TensorCorruptError(path, offset, f"{what} at offset {offset}: {exc}") from None
        if verify and crc.mask(actual) != entry.crc32c:
            raise crc_mismatch(path, offset, size, what, entry.crc32c, crc.mask(actual))
        return values.reshape(shape)

    def _numeric(
        self, buf: object, data: memoryview, dtype: dtypes.DType, shape: tuple[int, ...],
        what: str, path: str, offset: int, stored_crc: int | None,
    ) -> np.ndarray:
        import numpy as np

        count = math.prod(shape)
        np_dtype = dtype.numpy()
        if len(data) != count * np_dtype.itemsize:
            raise TensorCorruptError(
                path, offset,
                f"{what} holds {len(data)} bytes, shape {list(shape)} {dtype.name} needs {count * np_dtype.itemsize}"
            )
        if stored_crc is not None:
            actual = crc.mask(crc.crc32c(data))
            if actual != stored_crc:
                raise crc_mismatch(path, offset, len(data), what, stored_crc, actual)
        if offset % np_dtype.alignment == 0:
            array: np.ndarray = np.frombuffer(buf, dtype=np_dtype, count=count, offset=offset)  # type: ignore[call-overload]
        else:
            array = np.frombuffer(bytes(data), dtype=np_dtype)
        if self.big_endian and np_dtype.itemsize > 1:
            unit = np_dtype.itemsize // 2 if np_dtype.kind == "c" else np_dtype.itemsize
            array = array.view(f"u{unit}").byteswap().view(np_dtype)
        return array.reshape(shape)

    def close(self) -> None:
        """Release the data shard mappings (arrays still in use keep theirs alive)."""
        for buf in self._shards.values():
            release(buf)
        self._shards.clear()


def _key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def crc_mismatch(path: str, offset: int, size: int, what: str, stored: int, actual: int) -> TensorCorruptError:
    """The error for ``size`` stored bytes at ``offset`` whose masked CRC32C is ``actual``, not ``stored``."""
    return TensorCorruptError(
        path, offset,
        f"{what}: checksum mismatch at offset {offset} (size {size}): stored {stored:#010x}, computed {actual:#010x}"
    )


def _strings(data: memoryview, count: int, big_endian: bool) -> tuple[np.ndarray, int]:
    """Decode a string tensor; return the values and the entry's (unmasked) CRC; ValueError if bad."""
    import numpy as np

    order: Literal["big", "little"] = "big" if big_endian else "little"
    if count + 4 > len(data):
        raise ValueError(f"{len(data)} bytes cannot hold {count} string lengths and their checksum")
    lengths = []
    pos = 0
    try:
        for _ in range(count):
            length, pos = read_varint(data, pos)
            lengths.append(length)
    except WireError as exc:
        raise ValueError(f"bad string length: {exc}") from None
    if pos + 4 > len(data):
        raise ValueError("string lengths leave no room for their checksum")
    if all(n <= 0xFFFFFFFF for n in lengths):
        fixed = np.asarray(lengths, dtype=">u4" if big_endian else "<u4").tobytes()
    else:
        fixed = b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, order) for n in lengths)
    running = crc.crc32c(fixed)
    stored = int.from_bytes(data[pos : pos + 4], order)
    if crc.mask(running) != stored:
        raise ValueError("the string length checksum does not match")
    running = crc.crc32c(data[pos : pos + 4], running)
    pos += 4
    if pos + sum(lengths) != len(data):
        raise ValueError(f"string bytes total {sum(lengths)}, {len(data) - pos} are stored")
    running = crc.crc32c(data[pos:], running)
    values = np.empty(count, dtype=object)
    for i, length in enumerate(lengths):
        values[i] = bytes(data[pos : pos + length])
        pos += length
    return values, running


def _variants(data: memoryview, count: int) -> tuple[np.ndarray, int]:
    """Decode a variant tensor into VariantTensorDataProto messages; return them and the CRC."""
    import numpy as np
    from tensorboard.compat.proto.tensor_pb2 import VariantTensorDataProto

    if 5 * count > len(data):
        raise ValueError(f"{len(data)} bytes cannot hold {count} variant elements")
    values = np.empty(count, dtype=object)
    running = 0
    pos = 0
    for i in range(count):
        try:
            length, pos = read_varint(data, pos)
        except WireError as exc:
            raise ValueError(f"element {i}: {exc}") from None
        if pos + length + 4 > len(data):
            raise ValueError(f"element {i} ({length} bytes) runs past the tensor's bytes")
        body = data[pos : pos + length]
        running = crc.crc32c(body, crc.crc32c(length.to_bytes(8, "little"), running))
        stored = data[pos + length : pos + length + 4]
        if int.from_bytes(stored, "little") != crc.mask(running):
            raise ValueError(f"element {i}: variant checksum mismatch")
        running = crc.crc32c(stored, running)
        try:
            values[i] = VariantTensorDataProto.FromString(body)  # type: ignore[arg-type]  # upb parses any buffer; the stub says bytes, bytes() would copy
        except DecodeError:
            raise ValueError(f"element {i} is not a VariantTensorDataProto") from None
        pos += length + 4
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes left after {count} variant elements")
    return values, running
