"""Errors raised for inputs metainspect cannot use.

Every error names the file concerned and says what is wrong in one line; the CLI prints
``metainspect: <path>: <message>`` and exits with :data:`EXIT_UNUSABLE`.
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_UNUSABLE = 2


class MetainspectError(Exception):
    """An input that cannot be read or used, with the path it concerns."""

    def __init__(self, path: str | os.PathLike[str] | None, message: str) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class NotFoundError(MetainspectError):
    """The path (or a file it implies, such as a data shard) does not exist."""


class WrongKindError(MetainspectError):
    """The file is readable but is not the kind of file the command needs."""


class CorruptError(MetainspectError):
    """The file is truncated, malformed or fails a checksum."""


class TensorNotFoundError(MetainspectError, KeyError):
    """A name the file does not hold (a tensor in a checkpoint); a KeyError too, as mappings raise."""

    __str__ = Exception.__str__  # KeyError's would quote the message


class LfsPointerError(WrongKindError):
    """The file is a Git LFS pointer: a few lines naming the real file (by ``oid``, ``size``
    bytes), which was never fetched."""

    def __init__(self, path: str | os.PathLike[str], oid: str, size: int) -> None:
        super().__init__(path, f"is a Git LFS pointer (oid {oid}, {size} bytes)")
        self.oid = oid
        self.size = size


def one_line(text: str, limit: int = 300) -> str:
    """``text`` (a parser's message quoting the input, say) on one line of at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
