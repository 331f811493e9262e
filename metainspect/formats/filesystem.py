"""Where paths are looked up: one small filesystem seam for local paths and URLs.

Path resolution (a checkpoint prefix, its ``.index`` and ``.data`` names, a ``checkpoint``
state file, a SavedModel directory, V1 shard patterns) asks a :class:`FileSystem` whether
names exist, what a directory holds and what a glob matches, and opens files through it as
:class:`~metainspect.formats.source.ByteSource` objects. :func:`filesystem` picks the local
one for paths and a remote one (:mod:`metainspect.formats.remote`, fsspec, imported only
then) for URLs such as ``s3://bucket/run/model.ckpt`` or ``https://host/model/``.

Backend settings that a URL cannot carry (credentials, endpoints, ``anon``...) are
:func:`storage_options`, a context in which URLs are opened; objects opened there keep them.
"""

from __future__ import annotations

import glob as _glob
import os
import posixpath
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metainspect.formats.source import ByteSource

__all__ = ["FileSystem", "LocalFileSystem", "filesystem", "is_url", "storage_options"]

#: ``scheme://`` (two letters at least, so ``C:\`` stays a path) or an fsspec chain ``a::b``
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+(://|::)")
_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})
_options: ContextVar[Mapping[str, Any]] = ContextVar("metainspect_storage_options", default=_NO_OPTIONS)


def is_url(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a URL (``s3://…``, ``https://…``, ``simplecache::s3://…``), not a local path."""
    return bool(_URL.match(os.fspath(path)))


@contextmanager
def storage_options(options: Mapping[str, Any] | None) -> Iterator[None]:
    """Open URLs inside this block with these backend options (fsspec ``storage_options``:
    ``{"anon": True}``, ``{"endpoint_url": …}``, ``{"token": …}``). Sources opened here keep them."""
    token = _options.set(dict(options or {}))
    try:
        yield
    finally:
        _options.reset(token)


def current_storage_options() -> Mapping[str, Any]:
    """The options URLs are opened with here (see :func:`storage_options`)."""
    return _options.get()


class FileSystem(ABC):
    """What path resolution and the readers need from where files live."""

    #: False where directories cannot be listed (HTTP): globs and scans are then unavailable
    listable: bool = True

    @abstractmethod
    def open(self, path: str, *, missing: str = "no such file") -> ByteSource:
        """A byte source over ``path``; NotFoundError with ``missing`` when nothing is there."""

    @abstractmethod
    def isfile(self, path: str) -> bool: ...

    @abstractmethod
    def isdir(self, path: str) -> bool: ...

    def exists(self, path: str) -> bool:
        return self.isfile(path) or self.isdir(path)

    @abstractmethod
    def size(self, path: str) -> int:
        """Bytes in file ``path``."""

    @abstractmethod
    def listdir(self, path: str) -> list[str]:
        """Names (not paths) directly in directory ``path``, sorted."""

    @abstractmethod
    def glob(self, pattern: str) -> list[str]:
        """Paths matching ``pattern`` (``*``, ``?``, ``[…]`` in its last component), sorted."""

    def join(self, directory: str, *names: str) -> str:
        return posixpath.join(directory, *names)

    def split(self, path: str) -> tuple[str, str]:
        return posixpath.split(path)

    def dirname(self, path: str) -> str:
        return self.split(path)[0]

    def basename(self, path: str) -> str:
        return self.split(path)[1]

    def isabs(self, path: str) -> bool:
        """True when ``path`` names a location on its own, without a directory to join it to."""
        return is_url(path) or path.startswith("/")

    def escape(self, path: str) -> str:
        """``path`` with glob characters made literal."""
        return _glob.escape(path)


class LocalFileSystem(FileSystem):
    """The machine's own files (``os.path``, ``glob``, memory-mapped sources)."""

    def open(self, path: str, *, missing: str = "no such file") -> ByteSource:
        from metainspect.formats.source import LocalFile

        return LocalFile(path, missing=missing)

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def glob(self, pattern: str) -> list[str]:
        return sorted(_glob.glob(pattern))

    def join(self, directory: str, *names: str) -> str:
        return os.path.join(directory, *names)

    def split(self, path: str) -> tuple[str, str]:
        return os.path.split(path)

    def isabs(self, path: str) -> bool:
        return is_url(path) or os.path.isabs(path)


LOCAL = LocalFileSystem()


def filesystem(path: str | os.PathLike[str]) -> FileSystem:
    """The filesystem ``path`` lives on: local for paths, remote for URLs (with the
    :func:`storage_options` in force)."""
    if not is_url(path):
        return LOCAL
    from metainspect.formats.remote import remote_filesystem

    return remote_filesystem(os.fspath(path), current_storage_options())



@contextmanager
def staged_output(destination: str, *, order: Callable[[str], int] = lambda url: 0) -> Iterator[str]:
    """Where to write ``destination``: the path itself when it is local.

    For a URL, a path of the same name in a temporary local directory; when the block succeeds,
    every file written in that directory is uploaded beside the URL in ascending ``order(url)``
    (so a checkpoint's index, a SavedModel's graph or a state file goes after what it names),
    and the directory is removed in any case. A failed upload deletes what it uploaded.
    """
    if not is_url(destination):
        yield destination
        return
    from metainspect.formats.remote import RemoteFileSystem, staging, upload

    files = filesystem(destination)
    assert isinstance(files, RemoteFileSystem)
    parent, name = files.split(destination.rstrip("/"))
    with staging(destination) as directory:
        yield os.path.join(directory, name)
        pairs = []
        for root, _, names in os.walk(directory):
            for file_name in names:
                local = os.path.join(root, file_name)
                relative = os.path.relpath(local, directory).replace(os.sep, "/")
                pairs.append((local, files.join(parent, relative)))
        upload(files, pairs, order=order)
