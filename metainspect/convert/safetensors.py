"""The safetensors format, read and written without the ``safetensors`` package.

A file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the tensor
data. The JSON object maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin,
end]}`` (offsets into the data, which starts right after the header) and may hold
``"__metadata__"``, a string-to-string map. Data is little-endian, C order, densely packed:
the tensors together cover the data exactly, without holes or overlaps. Writers pad the header
with spaces to a multiple of 8 bytes and order the tensors by decreasing element size, so
every tensor starts at a multiple of its element size (readers can map it without a copy).

Reading treats the file as hostile: the header length is checked against the file before
anything is read, the JSON is parsed with duplicate names refused, and every entry's dtype,
shape and byte range are checked against each other and against the file.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass

from metainspect.errors import CorruptError, WrongKindError
from metainspect.formats import dtypes

#: the header's byte count, stored first
LENGTH = struct.Struct("<Q")
#: the largest header accepted (the reference implementation's own limit)
MAX_HEADER = 100_000_000
#: headers are padded with spaces so that the data starts at a multiple of this
ALIGNMENT = 8
METADATA_KEY = "__metadata__"

#: TensorFlow dtype name -> safetensors dtype, for every type both formats store the same way
#: (one element per byte for the 8-bit floats; safetensors' F4/F6 pack several per byte, and
#: TensorFlow has no E8M0, so those have no counterpart)
DTYPES: dict[str, str] = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8",
    "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL",
    "complex64": "C64",
    "float8_e5m2": "F8_E5M2", "float8_e4m3fn": "F8_E4M3",
    "float8_e4m3fnuz": "F8_E4M3FNUZ", "float8_e5m2fnuz": "F8_E5M2FNUZ",
}
#: safetensors dtype -> TensorFlow dtype name
TF_DTYPES: dict[str, str] = {st: tf for tf, st in DTYPES.items()}


def unstorable(dtype: str) -> str | None:
    """Why a TensorFlow dtype cannot be stored in safetensors, or None when it can."""
    if dtype in DTYPES:
        return None
    if dtype in ("string", "variant"):
        return f"it is a {dtype} tensor (safetensors stores numbers only)"
    if dtype.startswith(("qint", "quint")):
        return f"{dtype} is a quantized type, which safetensors has no type for"
    return f"safetensors has no {dtype} type"


@dataclass(frozen=True)
class Entry:
    """One tensor of a safetensors file."""

    name: str
    #: TensorFlow dtype name (``bfloat16``…)
    dtype: str
    shape: tuple[int, ...]
    #: byte range in the data section (``end - begin`` is the tensor's size)
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class Header:
    """The parsed header of one file: entries in data order, metadata, where the data starts."""

    path: str
    entries: tuple[Entry, ...]
    metadata: dict[str, str] | None
    #: file offset of the data section (8 + header length)
    data_start: int
    file_size: int


def read_header(path: str) -> Header:
    """Parse and check the header of ``path`` (a file or a URL); CorruptError naming the first problem."""
    from metainspect.formats.filesystem import filesystem
    from metainspect.formats.source import open_source

    if filesystem(path).isdir(path):
        raise WrongKindError(path, "is a directory, not a .safetensors file")
    with closing(open_source(path)) as source:
        size = source.size
        if size < LENGTH.size:
            raise CorruptError(path, f"truncated: {size} bytes cannot hold the 8-byte header length")
        (length,) = LENGTH.unpack(source.read_bytes(0, LENGTH.size))
        if length > size - LENGTH.size:
            raise CorruptError(path, f"truncated: the header length is {length} bytes, "
                                     f"the file holds {size - LENGTH.size} after it")
        if length > MAX_HEADER:
            raise CorruptError(path, f"header of {length} bytes is larger than the {MAX_HEADER}-byte limit")
        text = source.read_bytes(LENGTH.size, length)
    if len(text) != length:
        raise CorruptError(path, f"truncated: the header length is {length} bytes, {len(text)} could be read")
    entries, metadata = parse_header(path, text)
    data_start = LENGTH.size + length
    data_size = size - data_start
    for entry in entries:
        if entry.end > data_size:
            raise CorruptError(path, f"tensor {entry.name!r}: bytes {entry.begin}..{entry.end} of the data lie "
                                     f"past the end of the file ({data_size} bytes of data)")
    ordered = sorted(entries, key=lambda e: (e.begin, e.end))
    for previous, entry in itertools.pairwise(ordered):
        if entry.begin < previous.end:
            raise CorruptError(path, f"tensor {entry.name!r}: bytes {entry.begin}..{entry.end} overlap "
                                     f"tensor {previous.name!r} ({previous.begin}..{previous.end})")
    return Header(path, tuple(ordered), metadata, data_start, size)


def parse_header(path: str, text: bytes) -> tuple[list[Entry], dict[str, str] | None]:
    """The entries and metadata of a header's JSON text (checked, except against the file)."""
    try:
        document = json.loads(text.decode("utf-8"), object_pairs_hook=_unique_object)
    except UnicodeDecodeError as exc:
        raise CorruptError(path, f"the header is not UTF-8 (byte {exc.start})") from None
    except _Duplicate as exc:
        raise CorruptError(path, f"duplicate name {exc.args[0]!r} in the header") from None
    except (ValueError, RecursionError) as exc:
        raise CorruptError(path, f"the header is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CorruptError(path, "the header is not a JSON object")
    metadata = document.pop(METADATA_KEY, None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise CorruptError(path, f"{METADATA_KEY} is not a map of strings")
    return [_entry(path, name, info) for name, info in document.items()], metadata


class _Duplicate(ValueError):
    pass


def _unique_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _entry(path: str, name: str, info: object) -> Entry:
    what = f"tensor {name!r}"
    if not isinstance(info, dict):
        raise CorruptError(path, f"{what}: its header entry is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str):
        raise CorruptError(path, f"{what}: no dtype")
    if dtype not in TF_DTYPES:
        raise WrongKindError(path, f"{what} has dtype {dtype}, which TensorFlow has no type for")
    if not isinstance(shape, list) or not all(_natural(d) for d in shape):
        raise CorruptError(path, f"{what}: shape {shape!r} is not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_natural(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise CorruptError(path, f"{what}: data_offsets {offsets!r} is not a [begin, end] byte range")
    kind = dtypes.from_name(TF_DTYPES[dtype])
    needed = math.prod(shape) * kind.itemsize
    if offsets[1] - offsets[0] != needed:
        raise CorruptError(path, f"{what}: holds {offsets[1] - offsets[0]} bytes, shape {shape} {dtype} "
                                 f"needs {needed}")
    return Entry(name, kind.name, tuple(shape), offsets[0], offsets[1])


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# -- writing --------------------------------------------------------------------------------------


def layout(tensors: Iterable[tuple[str, str, Sequence[int]]]) -> list[Entry]:
    """Place ``(name, TensorFlow dtype, shape)`` tensors in a data section: by decreasing
    element size (then name), so that each starts at a multiple of its element size."""
    items = [(name, dtypes.from_name(dtype), tuple(int(d) for d in shape)) for name, dtype, shape in tensors]
    items.sort(key=lambda item: (-item[1].itemsize, item[0]))
    entries = []
    at = 0
    for name, kind, shape in items:
        size = math.prod(shape) * kind.itemsize
        entries.append(Entry(name, kind.name, shape, at, at + size))
        at += size
    return entries


def encode_header(entries: Sequence[Entry], metadata: dict[str, str] | None) -> bytes:
    """The length field and the JSON header (padded with spaces to :data:`ALIGNMENT`)."""
    document: dict[str, object] = {}
    if metadata:
        document[METADATA_KEY] = metadata
    for entry in entries:
        document[entry.name] = {"dtype": DTYPES[entry.dtype], "shape": list(entry.shape),
                                "data_offsets": [entry.begin, entry.end]}
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(LENGTH.size + len(text)) % ALIGNMENT)
    return LENGTH.pack(len(text)) + text
