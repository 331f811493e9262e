"""The exceptions TensorFlow's checkpoint reader raises, for code that catches them.

``tf.errors.OpError`` and its subclasses as the stand-in raises them: a missing key or file is
:class:`NotFoundError`, a checksum mismatch or a file that is not a checkpoint
:class:`DataLossError`. Each message is metainspect's one line naming the file and the problem.
"""

from __future__ import annotations

from metainspect.errors import CorruptError, MetainspectError
from metainspect.errors import NotFoundError as _Missing


class OpError(Exception):
    """Base class of TensorFlow's runtime errors; ``message`` holds the text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(OpError):
    """A key, file or directory does not exist."""


class DataLossError(OpError):
    """The data is corrupt or is not what it should be."""


class InvalidArgumentError(OpError):
    """An argument is not acceptable."""


class UnimplementedError(OpError):
    """The stand-in does not do this (remote file systems, for instance)."""


def translate(exc: MetainspectError) -> OpError:
    """The TensorFlow error a metainspect error corresponds to."""
    if isinstance(exc, _Missing):
        return NotFoundError(str(exc))
    if isinstance(exc, CorruptError):
        return DataLossError(str(exc))
    return DataLossError(str(exc)) if exc.path else InvalidArgumentError(str(exc))
