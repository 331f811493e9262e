"""The one home of a bundle's byte layouts: strings (decoded, or checked while streamed), big-endian
numbers, entries and their checks."""

from __future__ import annotations

import numpy as np
import pytest

from metainspect.errors import CorruptError, WrongKindError
from metainspect.formats import crc
from metainspect.formats.bundle_codec import (
    check_entry,
    decode_entry,
    decode_header,
    decode_numbers,
    decode_strings,
    encode_entry,
    encode_header,
    encode_strings,
    size_mismatch,
    string_values,
    strings_crc,
)
from metainspect.formats.dtypes import from_name
from metainspect.proto.tensor_bundle_pb2 import BundleHeaderProto

VALUES = [b"ab", b"", b"x" * 300] + [b"w%d" % i for i in range(200)]


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_strings_round_trip_and_stream_check() -> None:
    size, chunks, masked = encode_strings(VALUES)
    raw = b"".join(chunks)
    assert len(raw) == size and raw[:4].hex() == "0200ac02"  # varint lengths 2, 0, 300
    values, running = decode_strings(raw, len(VALUES), "little")
    assert values.tolist() == VALUES and crc.mask(running) == masked
    for piece in (1, 7, 200, len(raw)):  # the lengths may straddle any number of chunks
        assert strings_crc(_chunks(raw, piece), size, len(VALUES)) == running
    assert string_values(np.array([["é", b"\x00"]], dtype=object)) == ["é".encode(), b"\x00"]


def test_big_endian_strings() -> None:
    lengths = np.array([2, 3], ">u4").tobytes()
    stored = crc.mask(crc.crc32c(lengths)).to_bytes(4, "big")
    raw = b"\x02\x03" + stored + b"abxyz"
    values, running = decode_strings(raw, 2, "big")
    assert values.tolist() == [b"ab", b"xyz"]
    assert strings_crc([raw], len(raw), 2, "big") == running
    with pytest.raises(ValueError, match="length checksum"):
        decode_strings(raw, 2, "little")


@pytest.mark.parametrize(("damage", "message"), [
    (lambda raw: raw[:1] + bytes([raw[1] ^ 1]) + raw[2:], "string length checksum does not match"),
    (lambda raw: raw[:-1], "string bytes total"),
    (lambda raw: b"\xff" * 11 + raw[11:], "bad string length at offset 0"),
    (lambda raw: raw[:3], "cannot hold 203 string lengths"),
])
def test_damaged_strings_say_what_is_wrong(damage, message: str) -> None:  # type: ignore[no-untyped-def]
    raw = damage(b"".join(encode_strings(VALUES)[1]))
    with pytest.raises(ValueError, match=message):
        decode_strings(raw, len(VALUES), "little")
    with pytest.raises(ValueError, match=message):
        strings_crc(_chunks(raw, 5), len(raw), len(VALUES))


def test_decode_numbers_swaps_big_endian_and_copies_unaligned() -> None:
    values = np.array([1 + 2j, -3.5 + 0.25j], dtype=">c8")
    got = decode_numbers(values.tobytes(), from_name("complex64"), "big")
    assert got.dtype == np.complex64 and got.tolist() == [1 + 2j, -3.5 + 0.25j]
    raw = b"\x00" + np.arange(3, dtype="<f8").tobytes()
    unaligned = decode_numbers(memoryview(raw)[1:], from_name("float64"), "little")
    assert unaligned.flags.aligned and unaligned.tolist() == [0.0, 1.0, 2.0]
    view = decode_numbers(np.arange(4, dtype="<i4").tobytes(), from_name("int32"), "little")
    assert not view.flags.owndata  # aligned little-endian: no copy


def test_header_and_entry_checks() -> None:
    assert decode_header(encode_header(3), "p.index") == (3, "little")
    newer = BundleHeaderProto(num_shards=1)
    newer.version.min_consumer = 2
    with pytest.raises(WrongKindError, match="min_consumer=2"):
        decode_header(newer.SerializeToString(), "p.index")
    entry = decode_entry(encode_entry(1, (2, 3), shard_id=1, offset=8, size=24, crc32c=5), "p.index", b"w")
    dtype, shape = check_entry(entry, "p.index", "tensor 'w'", num_shards=2)
    assert (dtype.name, shape) == ("float32", (2, 3)) and size_mismatch("w", 24, dtype, shape) is None
    assert size_mismatch("tensor 'w'", 20, dtype, shape) == "tensor 'w' holds 20 bytes, shape [2, 3] float32 needs 24"
    with pytest.raises(CorruptError, match=r"p\.index: tensor 'w' is in shard 1, the bundle has 1"):
        check_entry(entry, "p.index", "tensor 'w'", num_shards=1)
    resource = decode_entry(encode_entry(20, ()), "p.index", b"r")
    with pytest.raises(CorruptError, match="resource, which cannot be stored"):
        check_entry(resource, "p.index", "tensor 'r'", num_shards=1)
    with pytest.raises(CorruptError, match="dtype or rank differs from the full entry"):
        check_entry(entry, "p.index", "tensor 'w' slice 0,1:-", num_shards=2, full=resource)
    with pytest.raises(CorruptError, match="bad BundleEntryProto for key b'x'"):
        decode_entry(b"\xff\xff", "p.index", b"x")
