"""The ``checkpoint`` state file: text-format ``CheckpointState`` naming the latest prefix.

Resolution follows ``tf.train.latest_checkpoint`` (relative paths are joined onto the
directory; a prefix exists when ``PREFIX.index`` or ``PREFIX`` itself matches as a glob), and
goes one step further: when the recorded path is missing (an absolute path from another
machine such as ``F:\\run\\model.ckpt`` or ``/data/run/model.ckpt``), the same basename beside
the state file is used and a note says so. Directories may be URLs: every lookup goes through
:mod:`metainspect.formats.filesystem`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metainspect.errors import CorruptError, NotFoundError
from metainspect.formats import text_proto
from metainspect.formats.detect import STATE_FILE
from metainspect.formats.filesystem import filesystem
from metainspect.formats.source import open_source
from metainspect.proto.checkpoint_state_pb2 import CheckpointState

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
    state = CheckpointState()
    text_proto.parse(text, state, path, "not a checkpoint state file")
    return state


def checkpoint_exists(prefix: str) -> bool:
    """True when ``PREFIX.index`` exists or ``PREFIX`` names files (the basename may be a glob)."""
    files = filesystem(prefix)
    directory, base = files.split(prefix)
    if not files.listable:  # no globbing (HTTP): the names themselves, a V1 pattern by its first shard
        from metainspect.formats.v1 import expand_shard_pattern

        shards = expand_shard_pattern(prefix)
        return files.isfile(prefix + ".index") or files.isfile(shards[0] if shards else prefix)
    pattern = files.join(files.escape(directory), base)
    return bool(files.glob(pattern + ".index") or files.glob(pattern))


def basename(recorded: str) -> str:
    """Last component of a path written on any OS (``/`` and ``\\`` both separate)."""
    return re.split(r"[\\/]", recorded)[-1]


def latest_checkpoint(directory: str, state_name: str = STATE_FILE) -> Latest:
    """The latest checkpoint recorded in ``directory``'s state file."""
    files = filesystem(directory)
    state_path = files.join(directory, state_name)
    recorded = read_state(state_path).model_checkpoint_path
    if not recorded:
        raise CorruptError(state_path, "model_checkpoint_path is empty")
    candidate = recorded if files.isabs(recorded) else files.join(directory, recorded)
    if checkpoint_exists(candidate):
        return Latest(candidate)
    fallback = files.join(directory, basename(recorded))
    if fallback != candidate and basename(recorded) and checkpoint_exists(fallback):
        foreign = files.isabs(recorded) or _WINDOWS_ABSOLUTE.match(recorded)
        why = "an absolute path from another machine" if foreign else "which does not exist"
        return Latest(
            fallback,
            (f'{state_path} records "{recorded}" ({why}); using "{basename(recorded)}" beside the state file',),
        )
    raise NotFoundError(
        state_path, f"the latest checkpoint {recorded!r} does not exist (looked for {candidate} and {fallback})"
    )
