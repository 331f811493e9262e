"""SSTable reader: TF's own index bytes (FORMAT_NOTES §1.9), the suite's own writer
(helpers.table, the independent encoder of §1.4–1.5), corrupt inputs."""

from __future__ import annotations

import time

import pytest

from metainspect.errors import CorruptError
from metainspect.formats.table import BlockHandle, Table

from helpers.table import MAGIC, TF_INDEX, assemble, block_contents, build_table, varint, with_trailer


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
