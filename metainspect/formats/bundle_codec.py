"""The bytes of a V2 bundle's parts, both ways: header and entry protos, shapes, slices, string
and variant tensors, big-endian numbers, and the checks a reader makes on them.

Entries are encoded as TensorFlow's C++ protobuf does (fields equal to 0 omitted, the shape
always present) and decoded with the generated protos. A string tensor is stored as varint
lengths, the masked CRC32C of those lengths written as fixed-width integers (uint32, uint64
beyond 4 GiB), then the bytes; its entry CRC runs over the fixed-width lengths, the 4 stored
checksum bytes and the strings. A variant tensor stores per element a varint length, a
serialized ``VariantTensorDataProto`` and a masked running CRC32C (over the length as uint64,
the proto and the previous stored checksums).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

from google.protobuf.message import DecodeError

from metainspect.errors import CorruptError, WrongKindError
from metainspect.formats import crc, dtypes, slices
from metainspect.formats.tensor_proto import shape_problem
from metainspect.formats.wire import BytesLike, WireError, encode_varint, read_varint
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto

if TYPE_CHECKING:
    import numpy as np
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

__all__ = [
    "HEADER_KEY",
    "VERSION",
    "Endianness",
    "Header",
    "TensorCorruptError",
    "check_entry",
    "crc_mismatch",
    "decode_entry",
    "decode_header",
    "decode_numbers",
    "decode_string_list",
    "decode_strings",
    "decode_variants",
    "dtype_of",
    "encode_entry",
    "encode_header",
    "encode_shape",
    "encode_slice",
    "encode_strings",
    "encode_variants",
    "shape_of",
    "size_mismatch",
    "strings_crc",
]

#: TensorFlow's kTensorBundleVersion: written as the producer version, the newest one read
VERSION = 1
#: the index key of the ``BundleHeaderProto``
HEADER_KEY = b""
Endianness = Literal["little", "big"]
#: non-numeric types a bundle can hold
_VARIABLE_LENGTH = ("string", "variant")
#: the longest varint a string length can take
_MAX_VARINT = 10
#: string tensors of at most this many elements have their lengths read without numpy (a TF2
#: object graph is one string: listing a checkpoint then needs no numpy)
_FEW_STRINGS = 16


class TensorCorruptError(CorruptError):
    """A tensor's stored bytes are bad; ``offset`` is where they start in ``path``."""

    def __init__(self, path: str, offset: int, message: str) -> None:
        super().__init__(path, message)
        self.offset = offset


class Header(NamedTuple):
    """What a bundle's header says."""

    num_shards: int
    endianness: Endianness


# -- header and entries ---------------------------------------------------------------------------


def encode_header(num_shards: int) -> bytes:
    """``BundleHeaderProto``: shard count, little-endian (the default, omitted), version 1."""
    return _varint_field(1, num_shards) + _bytes_field(3, _varint_field(1, VERSION))


def decode_header(value: BytesLike, path: str) -> Header:
    """Parse and check a ``BundleHeaderProto``: WrongKindError for a version this reader cannot
    read, CorruptError for anything malformed."""
    try:
        header = BundleHeaderProto.FromString(value)  # type: ignore[arg-type]  # upb parses any buffer; the stub says bytes, bytes() would copy
    except DecodeError:
        raise CorruptError(path, "bad BundleHeaderProto under key ''") from None
    version = header.version
    if version.producer < 0 or version.min_consumer > VERSION or VERSION in version.bad_consumers:
        raise WrongKindError(
            path,
            f"bundle version producer={version.producer} min_consumer={version.min_consumer} "
            f"bad_consumers={list(version.bad_consumers)} cannot be read by a version-{VERSION} reader",
        )
    if header.num_shards < 0 or header.endianness not in (0, 1):
        raise CorruptError(path, f"bad bundle header: num_shards={header.num_shards} endianness={header.endianness}")
    return Header(header.num_shards, "big" if header.endianness == BundleHeaderProto.BIG else "little")


def encode_entry(dtype: int, shape: Sequence[int], *, shard_id: int = 0, offset: int = 0, size: int = 0,
                 crc32c: int = 0, slices: Sequence[Sequence[slices.Extent]] = ()) -> bytes:
    """``BundleEntryProto`` as TensorFlow serializes it (fields equal to 0 omitted, shape always present)."""
    out = bytearray(_varint_field(1, dtype))
    out += _bytes_field(2, encode_shape(shape), keep_empty=True)
    out += _varint_field(3, shard_id)
    out += _varint_field(4, offset)
    out += _varint_field(5, size)
    if crc32c:
        out += b"\x35" + crc32c.to_bytes(4, "little")
    for extents in slices:
        out += _bytes_field(7, encode_slice(extents), keep_empty=True)
    return bytes(out)


def decode_entry(raw: BytesLike, path: str, key: bytes) -> BundleEntryProto:
    """Parse the ``BundleEntryProto`` stored under ``key``; CorruptError if it does not parse."""
    try:
        return BundleEntryProto.FromString(raw)  # type: ignore[arg-type]  # upb parses any buffer; the stub says bytes, bytes() would copy
    except DecodeError:
        raise CorruptError(path, f"bad BundleEntryProto for key {key!r}") from None


def encode_shape(shape: Sequence[int]) -> bytes:
    """``TensorShapeProto`` of a known shape (a 0-size dimension is an empty ``Dim``)."""
    return b"".join(_bytes_field(2, _varint_field(1, dim), keep_empty=True) for dim in shape)


def shape_of(proto: TensorShapeProto, path: str, what: str) -> tuple[int, ...]:
    """A fully known shape an array can have, or CorruptError (stored tensors never have
    unknown dimensions)."""
    dims = tuple(d.size for d in proto.dim)
    if proto.unknown_rank or any(d < 0 for d in dims):
        raise CorruptError(path, f"{what} has a shape with unknown dimensions: {list(dims)}")
    problem = shape_problem(dims)
    if problem:
        raise CorruptError(path, f"{what} has a shape with {problem}")
    return dims


def encode_slice(extents: Sequence[slices.Extent]) -> bytes:
    """``TensorSliceProto``: a full extent is an empty ``Extent``; ``start`` 0 is omitted."""
    out = bytearray()
    for start, length in extents:
        body = b"" if length == -1 else _varint_field(1, start) + b"\x10" + encode_varint(length)
        out += _bytes_field(1, body, keep_empty=True)
    return bytes(out)


def dtype_of(value: int, path: str, what: str) -> dtypes.DType:
    """The DType of an enum value, or CorruptError naming it when unknown."""
    try:
        return dtypes.from_enum(value)
    except ValueError:
        raise CorruptError(path, f"{what} has unknown dtype enum {value}") from None


def check_entry(entry: BundleEntryProto, path: str, what: str, num_shards: int,
                full: BundleEntryProto | None = None) -> tuple[dtypes.DType, tuple[int, ...]]:
    """The dtype and shape of a stored tensor (or, with its tensor's ``full`` entry, a slice)
    after checking that its entry can be read: a storable dtype (the full entry's), a known
    shape (of the full entry's rank), a shard of the bundle. CorruptError naming ``path``."""
    dtype = dtype_of(entry.dtype, path, what)
    shape = shape_of(entry.shape, path, what)
    if not dtype.is_numeric and dtype.name not in _VARIABLE_LENGTH:
        raise CorruptError(path, f"{what} has dtype {dtype.name}, which cannot be stored")
    if full is not None and (entry.dtype != full.dtype or len(shape) != len(full.shape.dim)):
        raise CorruptError(path, f"{what}: dtype or rank differs from the full entry")
    if not 0 <= entry.shard_id < num_shards:
        raise CorruptError(path, f"{what} is in shard {entry.shard_id}, the bundle has {num_shards}")
    return dtype, shape


def size_mismatch(what: str, size: int, dtype: dtypes.DType, shape: Sequence[int]) -> str | None:
    """Why ``size`` stored bytes cannot hold a numeric tensor of ``shape``, or None when they can."""
    needed = math.prod(shape) * dtype.itemsize
    if size == needed:
        return None
    return f"{what} holds {size} bytes, shape {list(shape)} {dtype.name} needs {needed}"


def crc_mismatch(path: str, offset: int, size: int, what: str, stored: int, actual: int) -> TensorCorruptError:
    """The error for ``size`` stored bytes at ``offset`` whose masked CRC32C is ``actual``, not ``stored``."""
    return TensorCorruptError(
        path, offset,
        f"{what}: checksum mismatch at offset {offset} (size {size}): stored {stored:#010x}, computed {actual:#010x}"
    )


# -- numbers --------------------------------------------------------------------------------------


def decode_numbers(data: BytesLike, dtype: dtypes.DType, endianness: Endianness) -> np.ndarray:
    """Stored numbers as a flat array: a zero-copy view of ``data`` when it is aligned and
    little-endian, else a copy (big-endian numbers swapped, complex ones per component)."""
    import numpy as np

    kind = dtype.numpy()
    values = np.frombuffer(data, dtype=kind)
    if not values.flags.aligned:
        values = values.copy()
    if endianness == "big" and kind.itemsize > 1:
        unit = kind.itemsize // 2 if kind.kind == "c" else kind.itemsize
        values = values.view(f"u{unit}").byteswap().view(kind)
    return values


# -- strings --------------------------------------------------------------------------------------


def encode_strings(values: Sequence[bytes]) -> tuple[int, list[bytes], int]:
    """A string tensor's stored layout (little-endian): ``(size, chunks, masked crc)``."""
    lengths = b"".join(encode_varint(len(v)) for v in values)
    running = crc.crc32c(b"".join(_fixed_width(len(v), "little") for v in values))
    stored = crc.mask(running).to_bytes(4, "little")
    running = crc.crc32c(stored, running)
    for value in values:
        running = crc.crc32c(value, running)
    chunks = [lengths, stored, *values]
    return sum(len(c) for c in chunks), chunks, crc.mask(running)


def string_values(array: np.ndarray) -> list[bytes]:
    """The elements of a string array, flattened, as bytes (``str`` encoded as UTF-8)."""
    return [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in array.reshape(-1).tolist()]


def decode_strings(data: BytesLike, count: int, endianness: Endianness) -> tuple[np.ndarray, int]:
    """The ``count`` strings stored in ``data`` (a flat object array of bytes) and the entry's
    unmasked CRC32C; ValueError saying what is wrong."""
    import numpy as np

    strings, running = decode_string_list(data, count, endianness)
    values = np.empty(count, dtype=object)
    values[:] = strings
    return values, running


def decode_string_list(data: BytesLike, count: int, endianness: Endianness) -> tuple[list[bytes], int]:
    """:func:`decode_strings` as a list; a few strings (a TF2 object graph is one) need no numpy."""
    lengths, pos, running = _string_head(data, len(data), count, endianness)
    running = crc.crc32c(data[pos:], running)
    strings = []
    for length in lengths if isinstance(lengths, list) else lengths.tolist():
        strings.append(bytes(data[pos : pos + length]))
        pos += length
    return strings, running


def strings_crc(chunks: Iterable[BytesLike], size: int, count: int, endianness: Endianness = "little") -> int:
    """Check the layout of a string tensor streamed as ``chunks`` (``size`` bytes in all)
    without decoding its strings; return its unmasked CRC32C. ValueError saying what is wrong.

    Only the lengths are held in memory (at most 10 bytes a string).
    """
    head = bytearray()
    wanted = min(size, _MAX_VARINT * count + 4)
    running: int | None = None
    for chunk in chunks:
        if running is not None:
            running = crc.crc32c(chunk, running)
            continue
        head += chunk
        if len(head) >= wanted:
            running = _head_crc(head, size, count, endianness)
    return _head_crc(head, size, count, endianness) if running is None else running


def _head_crc(head: bytearray, size: int, count: int, endianness: Endianness) -> int:
    """The running CRC32C through the bytes of ``head`` (lengths, checksum, first strings)."""
    _, pos, running = _string_head(head, size, count, endianness)
    return crc.crc32c(memoryview(head)[pos:], running)


def _string_head(head: BytesLike, size: int, count: int,
                 endianness: Endianness) -> tuple[list[int] | np.ndarray, int, int]:
    """Parse and check the lengths at the start of a string tensor of ``size`` bytes (``head``
    holds at least the lengths and their checksum): ``(lengths, offset of the first string,
    running CRC32C through the stored checksum)``."""
    if count + 4 > size:
        raise ValueError(f"{size} bytes cannot hold {count} string lengths and their checksum")
    lengths: list[int] | np.ndarray
    if count > _FEW_STRINGS:
        lengths, pos, fixed = _many_lengths(head, size, count, endianness)
    else:
        lengths, pos = _few_lengths(head, size, count)
        fixed = b"".join(_fixed_width(n, endianness) for n in lengths)
    if pos + 4 > size:
        raise ValueError("string lengths leave no room for their checksum")
    running = crc.crc32c(fixed)
    stored = bytes(head[pos : pos + 4])
    if int.from_bytes(stored, endianness) != crc.mask(running):
        raise ValueError("the string length checksum does not match")
    total = sum(lengths) if isinstance(lengths, list) else int(lengths.sum())
    if pos + 4 + total != size:
        raise ValueError(f"string bytes total {total}, {size - pos - 4} are stored")
    return lengths, pos + 4, crc.crc32c(stored, running)


_UINT64 = (1 << 64) - 1


def _few_lengths(head: BytesLike, size: int, count: int) -> tuple[list[int], int]:
    """The varint lengths of a few strings, read in Python: ``(lengths, offset after them)``."""
    window = bytes(head[: min(len(head), size, _MAX_VARINT * count)])
    ends = [i for i, byte in enumerate(window) if byte < 0x80][:count]
    starts = [0, *(end + 1 for end in ends[:-1])]
    too_wide = [start for start, end in zip(starts, ends) if end - start + 1 > _MAX_VARINT]
    if len(ends) < count or too_wide:
        raise ValueError(f"bad string length at offset {too_wide[0] if len(ends) == count else len(window)}")
    lengths = [sum((window[start + k] & 0x7F) << (7 * k) for k in range(end - start + 1)) & _UINT64
               for start, end in zip(starts, ends)]  # 64 bits, as varints are read (and numpy's path)
    return lengths, ends[-1] + 1 if count else 0


def _many_lengths(head: BytesLike, size: int, count: int, endianness: Endianness) -> tuple[np.ndarray, int, bytes]:
    """The varint lengths of many strings, vectorized: ``(lengths, offset after them, the lengths
    written fixed-width as the checksum covers them)``."""
    import numpy as np

    window = np.frombuffer(head, np.uint8, count=min(len(head), size, _MAX_VARINT * count))
    ends = np.flatnonzero(window < 0x80)[:count]
    starts = np.concatenate(([0], ends[:-1] + 1)) if count else ends
    widths = ends - starts + 1
    if len(ends) < count or (count and int(widths.max()) > _MAX_VARINT):
        bad = int(starts[np.argmax(widths > _MAX_VARINT)]) if len(ends) == count else len(window)
        raise ValueError(f"bad string length at offset {bad}")
    lengths = np.zeros(count, np.uint64)
    for k in range(int(widths.max()) if count else 0):
        chosen = widths > k
        lengths[chosen] |= (window[starts[chosen] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    pos = int(ends[-1]) + 1 if count else 0
    if (lengths <= 0xFFFFFFFF).all():
        fixed = lengths.astype("<u4" if endianness == "little" else ">u4").tobytes()
    else:
        fixed = b"".join(_fixed_width(int(n), endianness) for n in lengths)
    return lengths, pos, fixed


def _fixed_width(length: int, endianness: Endianness) -> bytes:
    return length.to_bytes(4 if length <= 0xFFFFFFFF else 8, endianness)


# -- variants -------------------------------------------------------------------------------------


def encode_variants(values: Sequence[bytes]) -> tuple[int, list[bytes], int]:
    """A variant tensor's stored layout from serialized ``VariantTensorDataProto``s:
    ``(size, chunks, masked crc)``."""
    chunks: list[bytes] = []
    running = 0
    for body in values:
        running = crc.crc32c(body, crc.crc32c(len(body).to_bytes(8, "little"), running))
        stored = crc.mask(running).to_bytes(4, "little")
        running = crc.crc32c(stored, running)
        chunks += [encode_varint(len(body)), body, stored]
    return sum(len(c) for c in chunks), chunks, crc.mask(running)


def decode_variants(data: BytesLike, count: int) -> tuple[np.ndarray, int]:
    """The ``count`` ``VariantTensorDataProto``s stored in ``data`` (a flat object array) and
    the entry's unmasked CRC32C; every element's checksum is checked. ValueError if bad."""
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


# -- protobuf fields ------------------------------------------------------------------------------


def _varint_field(number: int, value: int) -> bytes:
    return encode_varint(number << 3) + encode_varint(value) if value else b""


def _bytes_field(number: int, body: bytes, *, keep_empty: bool = False) -> bytes:
    if not body and not keep_empty:
        return b""
    return encode_varint(number << 3 | 2) + encode_varint(len(body)) + body
