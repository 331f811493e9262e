"""Tensor slices: the OrderedCode keys that store partitions, and TF-style slice spec strings.

A slice is a list of extents ``(start, length)``, one per dimension; ``length == -1`` (with
``start == 0``) is a full extent. The key of a slice is
``Num(0) ‖ String(name) ‖ Num(rank) ‖ (Signed(start) ‖ Signed(length))*`` in OrderedCode.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from metainspect.proto.tensor_slice_pb2 import TensorSliceProto

Extent = tuple[int, int]
_ESCAPE = re.compile(rb"[\x00\xff]")
_ESCAPES = {b"\x00": b"\x00\xff", b"\xff": b"\xff\x00"}
FULL: Extent = (0, -1)

# OrderedCode's header bits XOR-ed into the first two bytes of an L-byte signed number
_SIGNED_HEADER = {
    1: (0x80, 0), 2: (0xC0, 0), 3: (0xE0, 0), 4: (0xF0, 0), 5: (0xF8, 0),
    6: (0xFC, 0), 7: (0xFE, 0), 8: (0xFF, 0), 9: (0xFF, 0x80), 10: (0xFF, 0xC0),
}


def extents_of(proto: TensorSliceProto) -> list[Extent]:
    """Extents of a ``TensorSliceProto``; an extent without ``length`` is full."""
    return [(e.start, e.length) if e.HasField("length") else FULL for e in proto.extent]


def is_full(extents: Sequence[Extent], shape: Sequence[int]) -> bool:
    """True when the slice covers the whole tensor of ``shape``."""
    return all(length == -1 or (start == 0 and length == dim) for (start, length), dim in zip(extents, shape))


def slice_spec(extents: Sequence[Extent]) -> str:
    """TF's spec string: ``"0,5:0,4"``, ``"-"`` for a full extent, ``""`` for a scalar."""
    return ":".join("-" if length == -1 else f"{start},{length}" for start, length in extents)


def bounds(extents: Sequence[Extent], shape: Sequence[int]) -> tuple[slice, ...]:
    """Numpy index of the slice within a tensor of ``shape``; ValueError when it does not fit."""
    out = []
    for (start, length), dim in zip(extents, shape, strict=True):
        if length == -1:
            out.append(slice(0, dim))
            continue
        if start < 0 or length < 0 or start + length > dim:
            raise ValueError(f"slice {slice_spec(extents)} does not fit shape {list(shape)}")
        out.append(slice(start, start + length))
    return tuple(out)


def assemble(shape: Sequence[int], dtype: np.dtype,
             parts: Iterable[tuple[tuple[slice, ...], Callable[[], np.ndarray]]],
             box: tuple[slice, ...] | None = None) -> np.ndarray:
    """The region ``box`` (unit-step slices; default: everything) of a tensor of ``shape`` stored
    as slices. ``parts`` gives each slice's index in the tensor (from :func:`bounds`) and a
    function that reads its values (of the index's shape). Without ``box`` every slice is read;
    with it, only those overlapping it. ValueError when the slices overlap or leave part of the
    region uncovered."""
    import numpy as np

    whole = box is None
    box = tuple(slice(0, dim) for dim in shape) if box is None else box
    region = [b.stop - b.start for b in box]
    out = np.empty(region, dtype=object) if dtype.kind == "O" else np.zeros(region, dtype=dtype)
    filled = np.zeros(region, dtype=bool)
    for index, read in parts:
        overlap = [slice(max(i.start, b.start), min(i.stop, b.stop)) for i, b in zip(index, box, strict=True)]
        if not whole and any(o.start >= o.stop for o in overlap):
            continue
        piece = read()
        target = tuple(slice(o.start - b.start, o.stop - b.start) for o, b in zip(overlap, box))
        if filled[target].any():
            raise ValueError(f"slice {slice_spec([(i.start, i.stop - i.start) for i in index])} overlaps another")
        out[target] = piece[tuple(slice(o.start - i.start, o.stop - i.start) for o, i in zip(overlap, index))]
        filled[target] = True
    covered = int(filled.sum())
    if covered != out.size:
        raise ValueError(f"slices cover {covered} of {out.size} elements")
    return out


def encode_slice_key(name: str | bytes, extents: Sequence[Extent]) -> bytes:
    """The table key under which the slice ``extents`` of tensor ``name`` is stored."""
    raw = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
    out = bytearray(_num_increasing(0))
    out += _ESCAPE.sub(lambda m: _ESCAPES[m.group()], raw)
    out += b"\x00\x01"
    out += _num_increasing(len(extents))
    for start, length in extents:
        out += _signed_num_increasing(start)
        out += _signed_num_increasing(length)
    return bytes(out)


def decode_slice_key(key: bytes) -> tuple[bytes, list[Extent]]:
    """Split a slice key into ``(name, extents)`` (for debugging); ValueError if malformed."""
    value, pos = _decode_num_increasing(key, 0)
    if value != 0:
        raise ValueError(f"slice key starts with {value}, not 0")
    name, pos = _decode_string(key, pos)
    rank, pos = _decode_num_increasing(key, pos)
    extents = []
    for _ in range(rank):
        start, pos = _decode_signed(key, pos)
        length, pos = _decode_signed(key, pos)
        extents.append((start, length))
    if pos != len(key):
        raise ValueError(f"{len(key) - pos} trailing bytes after the slice key")
    return name, extents


def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _signed_num_increasing(value: int) -> bytes:
    magnitude = ~value if value < 0 else value
    length = 1
    while magnitude >= 1 << (7 * length - 1):
        length += 1
    raw = bytearray((value % (1 << 80)).to_bytes(10, "big")[-length:])
    first, second = _SIGNED_HEADER[length]
    raw[0] ^= first
    if length > 1:
        raw[1] ^= second
    return bytes(raw)


def _decode_num_increasing(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key):
        raise ValueError(f"truncated number at offset {pos}")
    length = key[pos]
    if length > 8 or pos + 1 + length > len(key):
        raise ValueError(f"bad number length {length} at offset {pos}")
    return int.from_bytes(key[pos + 1 : pos + 1 + length], "big"), pos + 1 + length


def _decode_string(key: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    while pos + 1 < len(key):
        byte, nxt = key[pos], key[pos + 1]
        if byte == 0x00 and nxt == 0x01:
            return bytes(out), pos + 2
        if byte in (0x00, 0xFF):
            if nxt != byte ^ 0xFF:
                raise ValueError(f"bad escape {byte:02x} {nxt:02x} at offset {pos}")
            out.append(byte)
            pos += 2
        else:
            out.append(byte)
            pos += 1
    raise ValueError("unterminated string in slice key")


def _decode_signed(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key):
        raise ValueError(f"truncated signed number at offset {pos}")
    flip = 0x00 if key[pos] & 0x80 else 0xFF
    first = key[pos] ^ flip
    length = _leading_ones(first)
    if first == 0xFF:
        if pos + 1 >= len(key):
            raise ValueError(f"truncated signed number at offset {pos}")
        length = 8 + _leading_ones(key[pos + 1] ^ flip)
    if length > 10 or pos + length > len(key):
        raise ValueError(f"bad signed number at offset {pos}")
    raw = bytearray(key[pos : pos + length])
    head_first, head_second = _SIGNED_HEADER[length]
    raw[0] ^= head_first
    if length > 1:
        raw[1] ^= head_second
    return int.from_bytes(raw, "big", signed=True), pos + length


def _leading_ones(byte: int) -> int:
    count = 0
    while count < 8 and byte & (0x80 >> count):
        count += 1
    return count
