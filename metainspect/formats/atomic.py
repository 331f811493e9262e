"""Atomic writes: outputs appear complete under their final name or not at all.

Everything is written to a temporary name in the destination's own directory (so the final
``os.replace``/``os.rename`` never crosses a filesystem) and renamed once complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from metainspect.errors import MetainspectError


@contextmanager
def replacing(path: str | os.PathLike[str], *, sync: bool = True) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary file is fsynced before the rename (``sync=False`` skips that: readers still
    never see a partial file, but a crash soon after may leave it incomplete). Missing parent
    directories are created. On an exception the temporary file is removed and ``path`` is
    left as it was.
    """
    final = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(final))
    os.makedirs(directory, exist_ok=True)  # outputs may name a new directory, as new_directory's may
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        # mkstemp makes it 0600: keep the mode of the file replaced, else a new file's mode
        mode = os.stat(final).st_mode & 0o7777 if os.path.exists(final) else new_file_mode()
        os.chmod(tmp, mode)
        yield tmp
        if sync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with replacing(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


@contextmanager
def new_directory(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary directory beside ``path``; on success it is renamed to ``path``.

    Refuses (before anything is written) when ``path`` already exists.
    """
    final = os.path.abspath(os.fspath(path))
    if os.path.lexists(final):
        raise MetainspectError(final, "already exists; choose a new output directory or remove it first")
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=parent)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it a new directory's mode
        yield tmp
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def new_file_mode() -> int:
    """Permissions of a new file under the current umask (temporary files start at 0600)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
