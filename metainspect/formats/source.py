"""Where the readers get their bytes: one small interface, ranged reads only.

Every decoder (tables, bundle index and data shards, V1 files, graph files, the state file)
asks a :class:`ByteSource` for the byte ranges it needs and nothing more, so a source that
fetches ranges over a network (:mod:`metainspect.formats.remote`, chosen by
:func:`open_source` for URLs) backs them all without touching a decoder. Local files are
memory-mapped: :meth:`LocalFile.read` returns zero-copy views of the mapping.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import stat
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import TypeVar

from metainspect.errors import CorruptError, LfsPointerError, NotFoundError
from metainspect.formats.lfs import MAX_POINTER_SIZE, parse_pointer
from metainspect.formats.wire import BytesLike

__all__ = ["ByteSource", "LocalFile", "MemorySource", "open_source"]

_Source = TypeVar("_Source", bound="ByteSource")


class ByteSource(ABC):
    """A read-only sequence of bytes with a name (a path or URL) for messages."""

    #: the path or URL, as errors should name it
    name: str

    @property
    @abstractmethod
    def size(self) -> int:
        """Total length in bytes."""

    @abstractmethod
    def read(self, offset: int, length: int) -> BytesLike:
        """The ``length`` bytes at ``offset``; valid until :meth:`close` (and after, for views
        still referenced). CorruptError when the range runs past the end."""

    def read_bytes(self, offset: int, length: int) -> bytes:
        """A copy of the ``length`` bytes at ``offset`` that the caller owns (for parsers that
        keep their input, and for small reads)."""
        return bytes(self.read(offset, length))

    def chunks(self, offset: int, length: int, chunk_size: int) -> Iterator[BytesLike]:
        """The same bytes as :meth:`read` in pieces of at most ``chunk_size`` bytes, for
        streaming in bounded memory: each piece is valid until the next one is requested."""
        self._check_range(offset, length)
        for start in range(offset, offset + length, chunk_size):
            yield self.read(start, min(chunk_size, offset + length - start))

    @abstractmethod
    def close(self) -> None:
        """Release what the source holds (idempotent)."""

    def __enter__(self: _Source) -> _Source:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CorruptError(self.name, f"bytes {offset}..{offset + length} extend beyond the file ({self.size} bytes)")


class MemorySource(ByteSource):
    """Bytes already in memory (a buffer read whole, or built by a test)."""

    def __init__(self, data: BytesLike, name: str = "<memory>") -> None:
        self.name = name
        self._view = memoryview(data).cast("B")

    @property
    def size(self) -> int:
        return len(self._view)

    def read(self, offset: int, length: int) -> memoryview:
        self._check_range(offset, length)
        return self._view[offset : offset + length]

    def close(self) -> None:
        """Nothing to release: the bytes belong to the caller."""


class LocalFile(ByteSource):
    """A local file, memory-mapped on the first :meth:`read` (an empty file is never mapped).

    Opening a Git LFS pointer raises :class:`~metainspect.errors.LfsPointerError`.

    :meth:`chunks` maps one window at a time instead, so streaming a big file does not keep
    its pages in this process; :meth:`fileno` serves kernel-side copies.
    """

    def __init__(self, path: str | os.PathLike[str], *, missing: str = "no such file") -> None:
        self.name = os.fspath(path)
        try:
            fd = os.open(self.name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise NotFoundError(self.name, missing) from None
        except OSError as exc:
            raise NotFoundError(self.name, f"cannot open: {exc.strerror or exc}") from None
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            os.close(fd)
            raise NotFoundError(self.name, f"cannot open: {os.strerror(errno.EISDIR)}")
        self._fd: int | None = fd
        self._closer = weakref.finalize(self, os.close, fd)  # a source never closed still frees its descriptor
        self._size = info.st_size
        self._map: mmap.mmap | None = None
        if self._size < MAX_POINTER_SIZE:  # no TensorFlow file is a Git LFS pointer: say so when one is
            pointer = parse_pointer(os.pread(fd, MAX_POINTER_SIZE, 0))
            if pointer is not None:
                self.close()
                raise LfsPointerError(self.name, *pointer)

    @property
    def size(self) -> int:
        return self._size

    def fileno(self) -> int:
        """The open descriptor (for ``copy_file_range``); valid until :meth:`close`."""
        if self._fd is None:
            raise ValueError(f"{self.name}: source is closed")
        return self._fd

    def read(self, offset: int, length: int) -> BytesLike:
        self._check_range(offset, length)
        if length == 0:
            return b""
        if self._map is None:
            self._map = mmap.mmap(self.fileno(), 0, access=mmap.ACCESS_READ)
        return memoryview(self._map)[offset : offset + length]

    def read_bytes(self, offset: int, length: int) -> bytes:
        """Read with ``pread`` (no mapping)."""
        self._check_range(offset, length)
        fd = self.fileno()
        parts = []
        done = 0
        while done < length:
            part = os.pread(fd, length - done, offset + done)
            if not part:
                raise CorruptError(
                    self.name, f"the file ends at offset {offset + done}, inside bytes {offset}..{offset + length}")
            parts.append(part)
            done += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def chunks(self, offset: int, length: int, chunk_size: int) -> Iterator[BytesLike]:
        """Short-lived read-only maps of ``chunk_size`` bytes, one at a time (no copy)."""
        self._check_range(offset, length)
        fd = self.fileno()
        for at in range(offset, offset + length, chunk_size):
            size = min(chunk_size, offset + length - at)
            start = at - at % mmap.ALLOCATIONGRANULARITY
            window = mmap.mmap(fd, at + size - start, offset=start, access=mmap.ACCESS_READ)
            view = memoryview(window)[at - start :]
            try:
                yield view
            finally:
                with contextlib.suppress(BufferError):  # an array made from the piece is alive: GC frees both
                    view.release()
                _close_map(window)

    def close(self) -> None:
        if self._map is not None:
            _close_map(self._map)
            self._map = None
        if self._fd is not None:
            self._closer()
            self._fd = None


def open_source(path: str | os.PathLike[str], *, missing: str = "no such file") -> ByteSource:
    """Open what ``path`` names for reading: a local file, or a URL through its filesystem
    (:mod:`metainspect.formats.filesystem`); NotFoundError (with ``missing`` as its message when
    nothing is there) if it cannot be opened."""
    from metainspect.formats.filesystem import filesystem, is_url

    if is_url(path):
        return filesystem(path).open(os.fspath(path), missing=missing)
    return LocalFile(path, missing=missing)


def _close_map(mapping: mmap.mmap) -> None:
    """Close a mapping unless arrays still reference it (it is then freed with the last of them)."""
    with contextlib.suppress(BufferError):
        mapping.close()
