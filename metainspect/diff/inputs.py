"""Decide whether two paths are compared as checkpoints or as graphs.

A path can be read as a checkpoint (:func:`metainspect.checkpoint.reader.resolve` accepts it),
as a graph (:func:`metainspect.formats.detect.find_graph_file` finds one), or as either: a
SavedModel directory holds a graph and its variables, a training directory a ``checkpoint``
state file and the ``.meta`` beside the latest checkpoint. A file or a checkpoint prefix is
read as what it names. A pair is compared as the kind both can be read as; when both could be
either, as graphs.
"""

from __future__ import annotations

import os

from metainspect.errors import MetainspectError, NotFoundError, WrongKindError

GRAPH = "graph"
CHECKPOINT = "checkpoint"
KINDS = (GRAPH, CHECKPOINT)


def kinds_of(path: str | os.PathLike[str]) -> frozenset[str]:
    """The kinds ``path`` can be compared as (never empty; raises when it is neither)."""
    from metainspect.checkpoint.reader import resolve
    from metainspect.formats.detect import DATA_SHARD, find_graph_file

    path = os.fspath(path)
    try:
        resolve(path)
    except WrongKindError as exc:
        checkpoint_error: MetainspectError | None = exc
        if os.path.isfile(path):  # the checkpoint reader recognised a graph file
            return frozenset({GRAPH})
    except MetainspectError as exc:
        checkpoint_error = exc
    else:
        if not os.path.isdir(path):
            return frozenset({CHECKPOINT})
        checkpoint_error = None
    if os.path.isfile(path):
        # not a checkpoint the reader recognises by name or magic: a graph, or a damaged checkpoint
        named_like_checkpoint = path.endswith(".index") or DATA_SHARD.match(os.path.basename(path))
        return frozenset({CHECKPOINT}) if named_like_checkpoint else frozenset(KINDS)
    try:
        find_graph_file(path)
    except MetainspectError as exc:
        if checkpoint_error is None:
            return frozenset({CHECKPOINT})
        if isinstance(checkpoint_error, NotFoundError) and not isinstance(exc, NotFoundError):
            raise exc from None
        if not os.path.exists(path) and isinstance(checkpoint_error, NotFoundError):
            raise NotFoundError(path, "no such file, directory or checkpoint prefix") from None
        if os.path.isdir(path) and isinstance(checkpoint_error, NotFoundError):
            raise NotFoundError(path, "holds no checkpoint and no graph") from None
        raise checkpoint_error from None
    if checkpoint_error is None:
        return frozenset(KINDS)
    return frozenset({GRAPH})


def pair_kind(a: str | os.PathLike[str], b: str | os.PathLike[str], kind: str | None = None) -> str:
    """The kind ``a`` and ``b`` are compared as; ``kind`` forces one.

    Raises :class:`WrongKindError` naming the offending path when the two cannot be compared
    (a graph and a checkpoint), or when one cannot be read as the forced ``kind``.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    kinds_a, kinds_b = kinds_of(a), kinds_of(b)
    if kind is not None:
        for path, kinds in ((a, kinds_a), (b, kinds_b)):
            if kind not in kinds:
                (found,) = kinds
                raise WrongKindError(path, f"is a {found}, not a {kind}")
        return kind
    common = kinds_a & kinds_b
    if not common:
        (found_a,) = kinds_a
        (found_b,) = kinds_b
        raise WrongKindError(b, f"is a {found_b} and {os.fspath(a)} is a {found_a}: "
                                "diff compares two checkpoints or two graphs")
    return GRAPH if GRAPH in common else CHECKPOINT
