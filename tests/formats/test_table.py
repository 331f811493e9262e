"""SSTable reader: TF's own index bytes (FORMAT_NOTES §1.9), a test-only writer, corrupt inputs.

The writer below is the test suite's independent encoder of the table format (§1.4–1.5); other
checkpoint tests import :func:`build_table` from here.
"""

from __future__ import annotations

import time

import crc32c
import pytest

from metainspect.errors import CorruptError
from metainspect.formats.table import BlockHandle, Table

MAGIC = bytes.fromhex("57fb808b247547db")

# FORMAT_NOTES §1.9: the complete 204-byte .index TensorFlow wrote for `emb` [10,4] in 2 slices
TF_INDEX_HEXDUMP = """
0000 0608 011a 0208 0100 0c13 0065 6d62
0001 0102 8085 8084 0801 1208 1202 0805
1202 0804 2850 35dd 911c 1908 0415 8585
8084 0801 1208 1202 0805 1202 0804 2050
2850 3554 4cb7 7e00 0322 656d 6208 0112
0812 0208 0a12 0208 043a 080a 0210 050a
0210 043a 0a0a 0408 0510 050a 0210 0400
0000 0001 0000 0000 7521 f105 0000 0000
0100 0000 00c0 f2a1 b000 0102 6600 7700
0000 0001 0000 0000 2ddf cba2 7c08 8901
0e00 0000 0000 0000 0000 0000 0000 0000
0000 0000 0000 0000 0000 0000 0000 0000
0000 0000 57fb 808b 2475 47db
"""
TF_INDEX = bytes.fromhex("".join(TF_INDEX_HEXDUMP.split()))


# ----------------------------------------------------------------------------------------------
# test-only table writer
# ----------------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def masked_crc(data: bytes) -> int:
    c = crc32c.crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def block_contents(entries: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    """Entries with prefix-compressed keys, then the restart array and its count (§1.4)."""
    out = bytearray()
    restarts = []
    previous = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += r.to_bytes(4, "little")
    out += len(restarts).to_bytes(4, "little")
    return bytes(out)


def with_trailer(contents: bytes, kind: int = 0) -> bytes:
    return contents + bytes([kind]) + masked_crc(contents + bytes([kind])).to_bytes(4, "little")


def assemble(blocks: list[tuple[bytes, bytes, int]]) -> bytes:
    """A table from ``(index key, stored block contents, compression type)`` data blocks."""
    out = bytearray()
    index_entries = []
    for index_key, stored, kind in blocks:
        index_entries.append((index_key, varint(len(out)) + varint(len(stored))))
        out += with_trailer(stored, kind)
    meta_handle = varint(len(out)) + varint(8)
    out += with_trailer(block_contents([]))
    index = block_contents(index_entries, restart_interval=1)
    index_handle = varint(len(out)) + varint(len(index))
    out += with_trailer(index)
    handles = meta_handle + index_handle
    out += handles + bytes(40 - len(handles)) + MAGIC
    return bytes(out)


def build_table(items: list[tuple[bytes, bytes]], per_block: int = 1000, snappy: bool = False) -> bytes:
    """A complete table holding ``items`` (sorted), ``per_block`` entries per data block."""
    blocks = []
    for start in range(0, len(items), per_block):
        chunk = items[start : start + per_block]
        contents = block_contents(chunk)
        kind = 0
        if snappy:
            import cramjam

            contents, kind = bytes(cramjam.snappy.compress_raw(contents)), 1
        blocks.append((chunk[-1][0], contents, kind))
    return assemble(blocks)


# ----------------------------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------------------------


def test_tensorflow_index_from_format_notes() -> None:
    table = Table(TF_INDEX, "model.ckpt.index")
    assert table.blocks == (BlockHandle(0, 119),)
    entries = [(key, bytes(value)) for key, value in table]
    assert [key for key, _ in entries] == [
        b"",
        bytes.fromhex("00656d62000101028085 8084".replace(" ", "")),
        bytes.fromhex("00656d62000101028585 8084".replace(" ", "")),
        b"emb",
    ]
    assert entries[0][1] == bytes.fromhex("0801 1a02 0801".replace(" ", ""))
    assert entries[2][1].endswith(bytes.fromhex("35544cb77e"))  # crc32c field of the second slice
    assert len(entries[3][1]) == 34
    assert bytes(table.get(b"emb")[1]) == entries[3][1]
    assert table.get(b"emc") is None and table.get(b"\x00") is None and table.get(b"zzz") is None


def test_written_table_many_blocks_restarts_and_prefixes() -> None:
    items = [(f"layer_{i:05d}/kernel".encode(), bytes([i % 256]) * (i % 7)) for i in range(2500)]
    table = Table(build_table(items, per_block=300), "t")
    assert len(table.blocks) == 9
    assert [(k, bytes(v)) for k, v in table] == items
    for key, value in items[::97]:
        assert bytes(table.get(key)[1]) == value
    assert table.get(b"layer_00001/kernel0") is None


def test_snappy_blocks_are_decompressed() -> None:
    items = [(f"w{i:04d}".encode(), b"abcd" * 20) for i in range(200)]
    data = build_table(items, per_block=50, snappy=True)
    table = Table(data, "old.ckpt")
    assert all(data[h.offset + h.size] == 1 for h in table.blocks)
    assert [(k, bytes(v)) for k, v in table] == items


def test_open_maps_file_and_close(tmp_path) -> None:
    path = tmp_path / "x.index"
    path.write_bytes(TF_INDEX)
    table = Table.open(path)
    assert table.file_size == len(TF_INDEX)
    assert len(list(table)) == 4
    table.close()


def _raises_quickly(data: bytes, *fragments: str) -> CorruptError:
    start = time.perf_counter()
    with pytest.raises(CorruptError) as info:
        list(Table(data, "bad.index"))
    assert time.perf_counter() - start < 0.5
    message = str(info.value)
    assert "\n" not in message and message.startswith("bad.index: ")
    for fragment in fragments:
        assert fragment in message
    return info.value


def test_truncated_file() -> None:
    _raises_quickly(TF_INDEX[-40:], "truncated", "40 bytes")
    _raises_quickly(b"", "truncated")


def test_truncated_index_keeps_magic_but_loses_blocks() -> None:
    # drop the first 150 bytes: the footer's handles now point past the data area
    _raises_quickly(TF_INDEX[150:], "index block", "beyond")


def test_bad_magic() -> None:
    _raises_quickly(TF_INDEX[:-1] + b"\x00", "not a TensorFlow checkpoint index/table (bad magic)")
    _raises_quickly(b"\x08\x01" * 100, "bad magic")


def test_flipped_byte_in_data_block() -> None:
    data = bytearray(TF_INDEX)
    data[0x30] ^= 0x01
    _raises_quickly(bytes(data), "checksum mismatch", "offset 0")


def test_flipped_byte_in_trailer_type_is_covered_by_crc() -> None:
    data = bytearray(TF_INDEX)
    data[0x77] = 1  # compression type byte of block 0: part of the CRC input
    _raises_quickly(bytes(data), "checksum mismatch")


def test_unknown_compression_type() -> None:
    _raises_quickly(assemble([(b"k", block_contents([(b"k", b"v")]), 7)]), "compression type 7")


def test_block_handle_beyond_file() -> None:
    index = block_contents([(b"k", varint(10**12) + varint(50))], restart_interval=1)
    out = with_trailer(block_contents([]))
    handles = varint(0) + varint(8) + varint(len(out)) + varint(len(index))
    data = out + with_trailer(index) + handles + bytes(40 - len(handles)) + MAGIC
    _raises_quickly(data, "data block 0", "beyond")


def test_restart_count_that_does_not_fit() -> None:
    contents = block_contents([(b"k", b"v")])[:-4] + (2**31).to_bytes(4, "little")
    _raises_quickly(assemble([(b"k", contents, 0)]), "restart count 2147483648")


def test_absurd_varint_in_entry() -> None:
    contents = b"\xff" * 11 + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    _raises_quickly(assemble([(b"k", contents, 0)]), "varint longer than 10 bytes")


def test_huge_lengths_in_entry() -> None:
    contents = b"\x00" + varint(2**40) + b"\x01" + b"abc" + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    _raises_quickly(assemble([(b"k", contents, 0)]), "runs past")


def test_shared_prefix_longer_than_previous_key() -> None:
    contents = b"\x05\x01\x00k" + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    _raises_quickly(assemble([(b"k", contents, 0)]), "shares 5 key bytes")


def test_snappy_block_claiming_absurd_size() -> None:
    contents = varint(2**40) + b"\x00" * 8
    _raises_quickly(assemble([(b"k", contents, 1)]), "snappy", "claims")


def test_corrupted_snappy_payload() -> None:
    contents = varint(20) + b"\xfe\xff\xff\xff\xff"
    _raises_quickly(assemble([(b"k", contents, 1)]), "snappy")
