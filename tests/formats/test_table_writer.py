"""Table writer: TensorFlow's own files rebuilt byte for byte, block boundaries, restarts, index keys."""

from __future__ import annotations

import glob
import io
from pathlib import Path

import pytest

from metainspect.formats.table import FOOTER_SIZE, Table
from metainspect.formats.table_writer import BLOCK_SIZE, TableBuilder, build_table, short_successor, shortest_separator

from helpers.paths import SAMPLES
from helpers.table import TF_INDEX


def _entries(data: bytes, path: str = "t") -> list[tuple[bytes, bytes]]:
    return [(key, bytes(value)) for key, value in Table(data, path)]


def _tables_written_by_tensorflow() -> list[Path]:
    paths = [Path(p) for p in glob.glob(str(SAMPLES / "**" / "*.index"), recursive=True)]
    paths += [SAMPLES / "ckpt_v1" / "model.ckpt", *sorted((SAMPLES / "ckpt_v1_sharded").glob("model.ckpt-0*"))]
    return sorted(paths)


def test_format_notes_index_is_rebuilt_exactly() -> None:
    assert build_table(_entries(TF_INDEX)) == TF_INDEX


@pytest.mark.parametrize("path", _tables_written_by_tensorflow(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_every_sample_table_is_rebuilt_exactly(path: Path) -> None:
    data = path.read_bytes()
    assert build_table(_entries(data, str(path))) == data


def test_real_uncompressed_tables_are_rebuilt_exactly(real_models: Path) -> None:
    checked = 0
    for path in sorted(real_models.rglob("*.index")):
        data = path.read_bytes()
        table = Table(data, str(path))
        if any(data[h.offset + h.size] != 0 for h in table.blocks):  # Snappy blocks: we never compress
            continue
        assert build_table(_entries(data, str(path))) == data, path
        checked += 1
    assert checked >= 5


def test_blocks_close_at_the_size_estimate_and_index_keys_separate_them() -> None:
    items = [(f"layer_{i:06d}/dense/kernel".encode(), bytes([i % 251]) * 40) for i in range(20000)]
    data = build_table(items)
    table = Table(data, "big.index")
    assert [(k, bytes(v)) for k, v in table] == items
    blocks = table.blocks
    assert len(blocks) > 2
    for handle in blocks[:-1]:  # every full block crossed the threshold with its last entry
        assert BLOCK_SIZE <= handle.size < BLOCK_SIZE + 100
    assert blocks[-1].size < BLOCK_SIZE
    keys = table._index_keys  # the index block's keys as stored
    firsts, lasts = [], []
    for handle in blocks:
        block_keys = [k for k, _ in table.block_entries(handle)]
        firsts.append(block_keys[0])
        lasts.append(block_keys[-1])
    for i, key in enumerate(keys[:-1]):
        assert lasts[i] <= key < firsts[i + 1]
        assert key == shortest_separator(lasts[i], firsts[i + 1])
    assert keys[-1] == short_successor(lasts[-1]) == b"m"


def test_restart_points_every_16_entries_with_full_keys() -> None:
    items = [(f"k{i:03d}".encode(), b"v") for i in range(40)]
    data = build_table(items)
    handle = Table(data, "t").blocks[0]
    block = data[handle.offset: handle.offset + handle.size]
    count = int.from_bytes(block[-4:], "little")
    restarts = [int.from_bytes(block[-4 - 4 * (count - i): -4 * (count - i)], "little") for i in range(count)]
    offsets, shared, pos = [], [], 0
    while pos < len(block) - 4 * (count + 1):  # every length here fits one varint byte
        offsets.append(pos)
        shared.append(block[pos])
        pos += 3 + block[pos + 1] + block[pos + 2]
    assert len(offsets) == 40
    assert restarts == [offsets[0], offsets[16], offsets[32]]
    assert [i for i, s in enumerate(shared) if s == 0] == [0, 16, 32]  # full keys only at restarts


def test_an_oversized_entry_starts_its_own_block() -> None:
    items = [(b"a", b"x"), (b"b", b"y" * (2 * BLOCK_SIZE)), (b"c", b"z")]
    table = Table(build_table(items), "t")
    per_block = [[k for k, _ in table.block_entries(h)] for h in table.blocks]
    assert per_block == [[b"a"], [b"b"], [b"c"]]
    assert table._index_keys == [b"a", b"b", b"d"]  # a/b: no shorter separator exists


def test_empty_table_is_valid() -> None:
    data = build_table([])
    assert len(data) == 8 + 5 + 8 + 5 + FOOTER_SIZE  # empty metaindex and index blocks
    assert _entries(data) == []


@pytest.mark.parametrize(("start", "limit", "expected"), [
    (b"emb", b"emc", b"emb"),               # the next byte up is the limit itself
    (b"abc", b"abz", b"abd"),
    (b"ab", b"abc", b"ab"),                  # a prefix of the limit is kept
    (b"a\xff", b"b", b"a\xff"),
    (b"\x00emb\x00\x01", b"emb", b"\x01"),
])
def test_shortest_separator(start: bytes, limit: bytes, expected: bytes) -> None:
    assert shortest_separator(start, limit) == expected
    assert start <= expected < limit


def test_short_successor_examples_from_format_notes() -> None:
    assert short_successor(b"emb") == b"f"
    assert short_successor(b"\x00s\x00\x01\x01\x01\x80\x7f") == b"\x01"
    assert short_successor(b"v/.ATTRIBUTES/VARIABLE_VALUE") == b"w"
    assert short_successor(b"\xff\xffa") == b"\xff\xffb"
    assert short_successor(b"\xff\xff") == b"\xff\xff"


def test_keys_must_increase_and_a_table_finishes_once() -> None:
    builder = TableBuilder(io.BytesIO())
    builder.add(b"b", b"")
    for bad in (b"a", b"b"):
        with pytest.raises(ValueError, match="must increase"):
            builder.add(bad, b"")
    assert builder.num_entries == 1
    builder.finish()
    with pytest.raises(ValueError, match="finished"):
        builder.add(b"c", b"")
    with pytest.raises(ValueError, match="finished"):
        builder.finish()
