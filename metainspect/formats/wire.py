"""Protobuf wire-format primitives shared by the hand-written decoders (varints, fields)."""

from __future__ import annotations

from collections.abc import Iterator

MAX_VARINT_BYTES = 10

#: Anything exposing the buffer protocol that the decoders accept without copying.
BytesLike = bytes | bytearray | memoryview


class WireError(ValueError):
    """Malformed wire data: the message says what and where (offset in the buffer)."""


def read_varint(buf: BytesLike, pos: int, limit: int | None = None) -> tuple[int, int]:
    """Decode one unsigned varint at ``pos``; return ``(value, next_pos)``."""
    end = len(buf) if limit is None else limit
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at offset {start}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if pos - start >= MAX_VARINT_BYTES:
            raise WireError(f"varint longer than {MAX_VARINT_BYTES} bytes at offset {start}")


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer (or an int64, two's complement) as a varint."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def iter_fields(buf: BytesLike) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field_number, wire_type, value)`` for each top-level field of a message.

    Varint and fixed fields give ints; length-delimited fields give a memoryview of ``buf``
    (no copy). Lengths are checked against the buffer, so hostile sizes never allocate.
    """
    view = memoryview(buf)
    pos = 0
    end = len(view)
    while pos < end:
        tag, pos = read_varint(view, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireError(f"field number 0 at offset {pos}")
        if wire_type == 0:
            value, pos = read_varint(view, pos)
            yield number, wire_type, value
        elif wire_type == 1:
            if pos + 8 > end:
                raise WireError(f"truncated fixed64 at offset {pos}")
            yield number, wire_type, int.from_bytes(view[pos : pos + 8], "little")
            pos += 8
        elif wire_type == 2:
            length, pos = read_varint(view, pos)
            if pos + length > end:
                raise WireError(f"field {number} claims {length} bytes at offset {pos}, only {end - pos} left")
            yield number, wire_type, view[pos : pos + length]
            pos += length
        elif wire_type == 5:
            if pos + 4 > end:
                raise WireError(f"truncated fixed32 at offset {pos}")
            yield number, wire_type, int.from_bytes(view[pos : pos + 4], "little")
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire_type} at offset {pos}")
