"""The ``checkpoint`` state file: text-format ``CheckpointState`` naming the latest prefix.

Resolution follows ``tf.train.latest_checkpoint`` (relative paths are joined onto the
directory; a prefix exists when ``PREFIX.index`` or ``PREFIX`` itself matches as a glob), and
goes one step further: when the recorded path is missing (an absolute path from another
machine such as ``F:\\run\\model.ckpt`` or ``/data/run/model.ckpt``), the same basename beside
the state file is used and a note says so.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from google.protobuf import text_format

from metainspect.errors import CorruptError, NotFoundError
from metainspect.formats.source import open_source
from metainspect.proto.checkpoint_state_pb2 import CheckpointState

STATE_FILE = "checkpoint"
_WINDOWS_ABSOLUTE = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")


@dataclass(frozen=True)
class Latest:
    """The latest checkpoint prefix (possibly a V1 glob pattern) and notes on how it was found."""

    prefix: str
    notes: tuple[str, ...] = ()


def read_state(path: str) -> CheckpointState:
    """Parse a state file; NotFoundError if absent, CorruptError if it is not a CheckpointState."""
    with open_source(path, missing="no checkpoint state file") as source:
        text = source.read_bytes(0, source.size).decode("utf-8", "surrogateescape")
    try:
        return text_format.Parse(text, CheckpointState())
    except text_format.ParseError as exc:
        raise CorruptError(path, f"not a checkpoint state file: {exc}") from None


def checkpoint_exists(prefix: str) -> bool:
    """True when ``PREFIX.index`` exists or ``PREFIX`` names files (the basename may be a glob)."""
    directory, base = os.path.split(prefix)
    pattern = os.path.join(glob.escape(directory), base)
    return bool(glob.glob(pattern + ".index") or glob.glob(pattern))


def basename(recorded: str) -> str:
    """Last component of a path written on any OS (``/`` and ``\\`` both separate)."""
    return re.split(r"[\\/]", recorded)[-1]


def latest_checkpoint(directory: str, state_name: str = STATE_FILE) -> Latest:
    """The latest checkpoint recorded in ``directory``'s state file."""
    state_path = os.path.join(directory, state_name)
    recorded = read_state(state_path).model_checkpoint_path
    if not recorded:
        raise CorruptError(state_path, "model_checkpoint_path is empty")
    candidate = recorded if os.path.isabs(recorded) else os.path.join(directory, recorded)
    if checkpoint_exists(candidate):
        return Latest(candidate)
    fallback = os.path.join(directory, basename(recorded))
    if fallback != candidate and basename(recorded) and checkpoint_exists(fallback):
        foreign = os.path.isabs(recorded) or _WINDOWS_ABSOLUTE.match(recorded)
        why = "an absolute path from another machine" if foreign else "which does not exist"
        return Latest(
            fallback,
            (f'{state_path} records "{recorded}" ({why}); using "{basename(recorded)}" beside the state file',),
        )
    raise NotFoundError(
        state_path, f"the latest checkpoint {recorded!r} does not exist (looked for {candidate} and {fallback})"
    )
