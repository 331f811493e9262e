"""OrderedCode slice keys and slice specs, against the examples of FORMAT_NOTES §3.3–3.4."""

from __future__ import annotations

import random

import pytest

from metainspect.formats.slices import FULL, bounds, decode_slice_key, encode_slice_key, extents_of, is_full, slice_spec
from metainspect.proto.tensor_slice_pb2 import TensorSliceProto

# §3.3 SignedNumIncreasing examples, as (value, encoding)
SIGNED = [
    (0, "80"), (1, "81"), (5, "85"), (10, "8a"), (63, "bf"), (-1, "7f"), (-64, "40"),
    (64, "c040"), (100, "c064"), (8191, "dfff"), (8192, "e02000"), (30000, "e07530"),
    (70000, "e11170"), (0x424242, "f0424242"), (-0x800, "3800"), (-65, "3fbf"),
]


def _signed(value: int) -> bytes:
    """The encoding of one signed number, cut out of a rank-1 key with start 0."""
    key = encode_slice_key("x", [(0, value)])
    return key[len(bytes.fromhex("00 78 00 01 01 01 80".replace(" ", ""))) :]


@pytest.mark.parametrize(("value", "encoded"), SIGNED)
def test_signed_num_increasing_examples(value: int, encoded: str) -> None:
    assert _signed(value).hex() == encoded
    assert decode_slice_key(encode_slice_key("x", [(0, value)]))[1] == [(0, value)]


def test_worked_example_keys_of_emb() -> None:
    assert encode_slice_key("emb", [(0, 5), (0, 4)]).hex() == "00656d62000101028085" "8084"
    assert encode_slice_key("emb", [(5, 5), (0, 4)]).hex() == "00656d62000101028585" "8084"


def test_other_keys_seen_from_tensorflow() -> None:
    assert encode_slice_key("m", [(0, 5), FULL]).hex() == "006d0001010280858" "07f"
    assert encode_slice_key("big", [(70000, 30000), FULL]).hex() == "00626967000101" "02e11170e0753080" "7f"
    assert encode_slice_key("i", []).hex() == "0069000100"  # V1 scalar key, rank 0
    key = b"\x00a3/.ATTRIBUTES/VARIABLE_VALUE\x00\x01\x01\x01\xa0\x81"
    assert encode_slice_key("a3/.ATTRIBUTES/VARIABLE_VALUE", [(32, 1)]) == key


def test_string_escapes_and_num_lengths() -> None:
    key = encode_slice_key(b"a\x00b\xffc", [])
    assert key.hex() == "00" "6100ff62ff0063" "0001" "00"
    assert decode_slice_key(key) == (b"a\x00b\xffc", [])
    wide = encode_slice_key("t", [FULL] * 256)  # rank 256 -> Num(256) = 02 01 00
    assert wide[:7].hex() == "00740001020100"
    assert decode_slice_key(wide)[1] == [FULL] * 256


def test_signed_round_trip_and_order() -> None:
    rng = random.Random(5)
    values = sorted({rng.randint(-(2**63), 2**63 - 1) for _ in range(3000)} | {v for v, _ in SIGNED})
    encoded = [_signed(v) for v in values]
    assert encoded == sorted(encoded)
    for value in values:
        assert decode_slice_key(encode_slice_key("x", [(0, value)]))[1] == [(0, value)]


@pytest.mark.parametrize(
    "bad",
    [b"\x01\x01", b"\x00abc", b"\x00a\x00\x02\x00", b"\x00a\x00\x01\x01\x01\x80", b"\x00a\x00\x01\x00\x99", b"\x00a\x00\x01\x09"],
)
def test_malformed_keys(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_slice_key(bad)


def test_specs_extents_and_bounds() -> None:
    proto = TensorSliceProto()
    proto.extent.add(length=5)
    proto.extent.add()
    proto.extent.add(start=7, length=3)
    extents = extents_of(proto)
    assert extents == [(0, 5), FULL, (7, 3)]
    assert slice_spec(extents) == "0,5:-:7,3"
    assert slice_spec([]) == ""
    assert bounds(extents, (10, 4, 10)) == (slice(0, 5), slice(0, 4), slice(7, 10))
    with pytest.raises(ValueError, match="does not fit"):
        bounds([(8, 5)], (10,))
    assert is_full([FULL, (0, 4)], (3, 4)) and not is_full([(0, 2)], (3,))
