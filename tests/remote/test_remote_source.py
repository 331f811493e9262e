"""The remote byte source on fsspec's in-memory filesystem: what each read costs in requests and
bytes (read-ahead, the tail read, reuse of kept responses, the cache bound), and the seam."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metainspect.errors import NotFoundError
from metainspect.formats import remote
from metainspect.formats.filesystem import filesystem, is_url, storage_options
from metainspect.formats.source import open_source

DATA = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def memory() -> Iterator[str]:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/bucket/data.bin", DATA)
    fs.pipe_file("/bucket/sub/a.index", b"x")
    fs.pipe_file("/bucket/sub/b.index", b"y")
    yield "memory://bucket"
    fs.rm("/bucket", recursive=True)


def _costs(log: remote.TransferLog, url: str) -> tuple[int, int]:
    entry = log.objects[url]
    return entry.requests, entry.bytes


def test_small_reads_fetch_a_read_ahead_window_once(memory: str) -> None:
    url = f"{memory}/data.bin"
    with remote.recording() as log, open_source(url) as source:
        assert source.size == len(DATA)
        for offset in range(1000, 1000 + 100 * 500, 500):  # 100 adjacent small reads
            assert bytes(source.read(offset, 500)) == DATA[offset : offset + 500]
    requests, received = _costs(log, url)
    assert requests == 1 + 1  # the open (size) and one 64 KiB window
    assert received == remote.READ_AHEAD


def test_a_read_at_the_end_fetches_the_tail_then_only_what_is_missing(memory: str) -> None:
    url = f"{memory}/data.bin"
    size = len(DATA)
    with remote.recording() as log, open_source(url) as source:
        assert bytes(source.read(size - 48, 48)) == DATA[-48:]  # a table's footer
        assert bytes(source.read(size - 4096, 4096)) == DATA[-4096:]  # its index block: already there
        assert _costs(log, url) == (2, remote.TAIL)
        start = size - remote.TAIL - 100_000
        assert bytes(source.read(start, size - start)) == DATA[start:]  # data blocks up to the end
    assert _costs(log, url) == (3, remote.TAIL + 100_000)  # the tail was not fetched again


def test_big_reads_are_not_kept_and_the_cache_is_bounded(memory: str) -> None:
    url = f"{memory}/data.bin"
    with open_source(url) as source:
        assert isinstance(source, remote.RemoteSource)
        for offset in range(0, len(DATA), 128 * 1024):
            source.read(offset, 128 * 1024)
        kept = sum(len(data) for _, data in source._blocks)
        assert kept <= remote.CACHE_LIMIT
        chunks = list(source.chunks(0, len(DATA), 300_000))
        assert b"".join(bytes(c) for c in chunks) == DATA


def test_the_seam_resolves_urls_like_paths(memory: str) -> None:
    files = filesystem(f"{memory}/sub")
    assert is_url(f"{memory}/sub") and not is_url("C:\\run\\model.ckpt") and not is_url("/data/x")
    assert files.isdir(f"{memory}/sub") and not files.isfile(f"{memory}/sub")
    assert files.listdir(f"{memory}/sub") == ["a.index", "b.index"]
    assert files.glob(f"{memory}/sub/*.index") == [f"{memory}/sub/a.index", f"{memory}/sub/b.index"]
    assert files.size(f"{memory}/sub/a.index") == 1 and files.join(f"{memory}/sub", "x") == f"{memory}/sub/x"
    with pytest.raises(NotFoundError, match="no data here"):
        open_source(f"{memory}/none.bin", missing="no data here")


def test_storage_options_reach_the_backend_and_stay_with_what_was_opened(
        memory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec
    import numpy as np

    from metainspect import open_checkpoint
    from metainspect.formats.bundle_writer import BundleWriter

    with storage_options({"marker": 1}):
        files = filesystem(f"{memory}/data.bin")
    assert isinstance(files, remote.RemoteFileSystem) and files.fs.storage_options["marker"] == 1
    assert filesystem(f"{memory}/data.bin").fs.storage_options.get("marker") is None  # outside: defaults

    with BundleWriter(tmp_path / "model.ckpt") as writer:
        writer.add("w", np.arange(6, dtype=np.float32))
    for name in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
        fsspec.filesystem("memory").pipe_file(f"/bucket/ckpt/{name}", (tmp_path / name).read_bytes())
    opened: list[tuple[str, Any]] = []
    real_open = remote.RemoteFileSystem.open

    def recording_open(self: remote.RemoteFileSystem, path: str, **kwargs: str) -> Any:
        opened.append((path, self.fs.storage_options.get("marker")))
        return real_open(self, path, **kwargs)

    monkeypatch.setattr(remote.RemoteFileSystem, "open", recording_open)
    with open_checkpoint(f"{memory}/ckpt/model.ckpt", storage_options={"marker": 2}) as ckpt:
        assert opened == [(f"{memory}/ckpt/model.ckpt.index", 2)]
        np.testing.assert_array_equal(ckpt.get("w"), np.arange(6, dtype=np.float32))  # the shard opens now
    assert opened[-1] == (f"{memory}/ckpt/model.ckpt.data-00000-of-00001", 2)
