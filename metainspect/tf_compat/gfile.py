"""``tf.io.gfile`` for local paths: ``exists`` and ``GFile``.

Remote file systems (``gs://``, ``s3://``, ``hdfs://``…) are TensorFlow plugins the stand-in
does not have: naming one raises :class:`~metainspect.tf_compat.errors.UnimplementedError`.
"""

from __future__ import annotations

import os
from typing import IO, Any

from metainspect.tf_compat import errors


def _local(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        raise errors.UnimplementedError(f"{text}: the TensorFlow stand-in reads local files only")
    return text.removeprefix("file://")


def exists(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` exists."""
    return os.path.exists(_local(path))


class GFile:
    """A local file opened as TensorFlow's ``GFile`` opens it (``"r"`` text, ``"rb"`` bytes…)."""

    def __init__(self, name: str | os.PathLike[str], mode: str = "r") -> None:
        path = _local(name)
        try:
            # the GFile owns the file, as TensorFlow's does: closed by close() or the with block
            self._file: IO[Any] = open(path, mode, encoding=None if "b" in mode else "utf-8")  # noqa: SIM115
        except FileNotFoundError:
            raise errors.NotFoundError(f"{path}; No such file or directory") from None
        self.name = path
        self.mode = mode

    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def __getattr__(self, name: str) -> Any:  # read, write, readline, seek, tell, flush, close…
        return getattr(self._file, name)

    def __iter__(self) -> Any:
        return iter(self._file)

    def __enter__(self) -> GFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


def Exists(path: str | os.PathLike[str]) -> bool:
    """``tf.compat.v1.gfile.Exists``."""
    return exists(path)
