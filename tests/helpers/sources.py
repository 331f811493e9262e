"""A byte source that records what the readers ask for, to prove they read only what they need."""

from __future__ import annotations

import pytest

from metainspect.formats.source import ByteSource, open_source
from metainspect.formats.wire import BytesLike


class CountingSource(ByteSource):
    """Wraps a source and records every ``(offset, length)`` read from it."""

    def __init__(self, inner: ByteSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.reads: list[tuple[int, int]] = []

    @property
    def size(self) -> int:
        return self.inner.size

    def read(self, offset: int, length: int) -> BytesLike:
        self.reads.append((offset, length))
        return self.inner.read(offset, length)

    def close(self) -> None:
        self.inner.close()


def count_reads(monkeypatch: pytest.MonkeyPatch, *modules: object) -> list[CountingSource]:
    """Make ``open_source`` in ``modules`` hand out counting sources; the list fills as they open."""
    opened: list[CountingSource] = []

    def counting(path: str, **kwargs: str) -> ByteSource:
        opened.append(CountingSource(open_source(path, **kwargs)))
        return opened[-1]

    for module in modules:
        monkeypatch.setattr(module, "open_source", counting)
    return opened
