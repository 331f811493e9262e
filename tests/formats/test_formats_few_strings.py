"""String tensors of a few elements are decoded without numpy, with the same values and errors
as the vectorized path many strings take (the listing commands read a TF2 object graph this way)."""

from __future__ import annotations

import pytest

from metainspect.formats import bundle_codec, crc
from metainspect.formats.bundle_codec import decode_string_list, decode_strings, encode_strings


def _both(data: bytes, count: int, monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[bytes], int] | str]:
    """The result (or error) of the Python path, then of the numpy path, on the same bytes."""
    out: list[tuple[list[bytes], int] | str] = []
    for few in (count, -1):
        monkeypatch.setattr(bundle_codec, "_FEW_STRINGS", few)
        try:
            strings, running = decode_string_list(data, count, "little")
            out.append((strings, crc.mask(running)))
        except ValueError as exc:
            out.append(str(exc))
    return out


@pytest.mark.parametrize("values", [[b"graph"], [b"", b"a" * 300, b"xyz"], [bytes([i]) * i for i in range(16)]])
def test_both_paths_decode_alike(values: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    _, chunks, masked = encode_strings(values)
    assert _both(b"".join(chunks), len(values), monkeypatch) == [(values, masked)] * 2
    array, _ = decode_strings(b"".join(chunks), len(values), "little")
    assert array.tolist() == values


@pytest.mark.parametrize(("damage", "message"), [
    ("truncated", "bad string length at offset 8"), ("too wide", "bad string length at offset 1"),
    ("checksum", "the string length checksum does not match"), ("total", "string bytes total 2, 3 are stored"),
])
def test_both_paths_refuse_alike(damage: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, chunks, _ = encode_strings([b"a", b"b"])
    data = bytearray(b"".join(chunks))  # 01 01 | checksum (4) | 61 62
    if damage == "truncated":
        data[1:] = b"\x81" * 7  # the second length never ends inside the tensor's 8 bytes
    elif damage == "too wide":
        data[1:2] = b"\x81" * 11 + b"\x01"
    elif damage == "checksum":
        data[3] ^= 1
    else:
        data += b"!"
    assert _both(bytes(data), 2, monkeypatch) == [message] * 2
