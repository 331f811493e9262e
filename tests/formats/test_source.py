"""The byte-source seam: local files (mmap views, pread copies, windowed chunks), bytes in
memory, range and open errors, and readers that ask only for the ranges they need."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np
import pytest

from metainspect.errors import CorruptError, NotFoundError
from metainspect.formats import bundle as bundle_module
from metainspect.formats import table as table_module
from metainspect.formats.bundle import Bundle
from metainspect.formats.bundle_writer import BundleWriter
from metainspect.formats.source import LocalFile, MemorySource, open_source
from metainspect.formats.table import Table, has_magic
from metainspect.formats.table_writer import build_table

from helpers.sources import count_reads


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = bytes(range(256)) * 1000  # 256,000 bytes: several allocation granules
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def test_local_reads_are_zero_copy_views(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with open_source(path) as source:
        assert isinstance(source, LocalFile) and source.name == str(path) and source.size == len(data)
        view = source.read(1000, 4000)
        assert isinstance(view, memoryview) and view.readonly and bytes(view) == data[1000:5000]
        array = np.frombuffer(view, np.uint8)
        assert not array.flags.owndata and not array.flags.writeable
        assert source.read_bytes(255_990, 10) == data[-10:]
    assert bytes(array[:3]) == data[1000:1003]  # an array made from a view outlives close()


def test_chunks_are_bounded_windows_covering_the_range(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    offset = mmap.ALLOCATIONGRANULARITY + 7  # a window cannot start there: it is mapped from the granule
    with LocalFile(path) as source:
        kept = []
        pieces = []
        for chunk in source.chunks(offset, 100_001, 30_000):
            assert len(chunk) <= 30_000
            pieces.append(bytes(chunk))
            kept.append(np.frombuffer(chunk, np.uint8))  # still referenced when the next window opens
        assert b"".join(pieces) == data[offset : offset + 100_001]
        assert b"".join(k.tobytes() for k in kept) == data[offset : offset + 100_001]
        assert list(source.chunks(10, 0, 30_000)) == []


def test_range_and_open_errors_name_the_file(tmp_path: Path, data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with LocalFile(path) as source:
        for offset, length in ((len(data) - 2, 3), (-1, 2), (0, len(data) + 1)):
            with pytest.raises(CorruptError, match=rf"data\.bin: bytes .* extend beyond the file \({len(data)} bytes\)"):
                source.read(offset, length)
        with pytest.raises(CorruptError):
            next(source.chunks(len(data), 1, 10))
    with pytest.raises(NotFoundError, match=r"nothing\.bin: no such file"):
        open_source(tmp_path / "nothing.bin")
    with pytest.raises(NotFoundError, match="shard 3 is gone"):
        open_source(tmp_path / "nothing.bin", missing="shard 3 is gone")
    with pytest.raises(NotFoundError, match="cannot open: Is a directory"):
        open_source(tmp_path)


def test_empty_file_is_never_mapped(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with open_source(tmp_path / "empty") as source:
        assert source.size == 0 and source.read(0, 0) == b"" and source.read_bytes(0, 0) == b""
        assert list(source.chunks(0, 0, 8)) == []
    assert not has_magic(tmp_path / "empty") and not has_magic(tmp_path)


def test_closed_source_refuses_new_reads(data_file: tuple[Path, bytes]) -> None:
    source = LocalFile(data_file[0])
    source.close()
    source.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        source.read(0, 1)


def test_memory_source() -> None:
    source = MemorySource(b"abcdef", "mem")
    assert source.size == 6 and bytes(source.read(2, 3)) == b"cde" and source.read_bytes(0, 2) == b"ab"
    assert [bytes(c) for c in source.chunks(1, 5, 2)] == [b"bc", b"de", b"f"]
    with pytest.raises(CorruptError, match=r"mem: bytes 5\.\.7"):
        source.read(5, 2)


def test_a_table_reads_the_same_from_any_source(tmp_path: Path) -> None:
    items = [(f"key{i:04d}".encode(), bytes([i % 251]) * (i % 40)) for i in range(600)]
    data = build_table(items, block_size=1024)
    (tmp_path / "t").write_bytes(data)
    in_memory = Table(MemorySource(data, "in-memory"))
    on_disk = Table.open(tmp_path / "t")
    assert [(k, bytes(v)) for k, v in in_memory] == [(k, bytes(v)) for k, v in on_disk] == items
    assert in_memory.path == "in-memory" and on_disk.path == str(tmp_path / "t")
    assert in_memory.first() == (b"key0000", b"")
    on_disk.close()


def test_opening_a_bundle_reads_footer_index_and_data_blocks_in_three_ranges(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with BundleWriter(str(tmp_path / "m")) as writer:
        for i in range(3000):  # an index of many blocks
            writer.add(f"layer_{i:04d}/kernel", np.full((2, 2), i, np.float32))
    sources = count_reads(monkeypatch, table_module, bundle_module)
    bundle = Bundle(str(tmp_path / "m"))
    (index,) = sources
    size = os.path.getsize(tmp_path / "m.index")
    assert len(index.reads) == 3 and index.reads[0] == (size - 48, 48)  # footer, index block, all data blocks
    np.testing.assert_array_equal(bundle.read("layer_1234/kernel"), np.full((2, 2), 1234, np.float32))
    (shard,) = sources[1:]
    assert shard.reads == [(1234 * 16, 16)]  # one tensor's bytes, not the shard
    bundle.close()
