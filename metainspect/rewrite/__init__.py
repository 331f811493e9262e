"""Rewrite a checkpoint into a new V2 bundle: rename, drop, keep, cast, reshard.

Any checkpoint :func:`metainspect.checkpoint.open_checkpoint` accepts is read (V2 bundles, big-endian
or with Snappy index blocks, legacy V1 files); the output is always what TensorFlow writes
today: a little-endian V2 bundle without compression, byte for byte TensorFlow's layout. With
no operation the output equals the input for any bundle TensorFlow wrote: each tensor keeps
its data shard and its place in it, so offsets, CRCs and the index come out identical.

Three steps: :mod:`~metainspect.rewrite.source` opens the input on the checkpoint readers;
:mod:`~metainspect.rewrite.plan` decides every change on the input's names
(:func:`plan_rewrite`), where every refusal (a rename collision, a pattern that matches
nothing, a cast of a non-float type, an existing output, a truncated data shard) happens;
:mod:`~metainspect.rewrite.stream` moves the bytes, tensor by tensor, in bounded memory, and
checks every CRC before any output file takes its final name (nothing is checked with
``verify=False``). Partitioned tensors stay partitioned: each slice is renamed through its
tensor's name and re-keyed.

A TF2 object graph (``_CHECKPOINTABLE_OBJECT_GRAPH``) follows the changes: attributes whose
keys are dropped are removed, optimizer slot references whose slot values are all dropped are
removed, ``checkpoint_key`` fields take the new names, ``full_name`` fields are renamed by the
same rules, and ``has_checkpoint_values`` is recomputed the way TensorFlow computes it. Node
numbering is kept (a SavedModel's object graph refers to the same node ids); nodes left
without values are harmless to TensorFlow's restore. The object graph entry itself is never
matched by the selection rules (:mod:`metainspect.checkpoint.selection`).
"""

from __future__ import annotations

import dataclasses

from metainspect.checkpoint.selection import Dropped
from metainspect.errors import MetainspectError
from metainspect.formats.bundle_writer import BundleFiles
from metainspect.formats.filesystem import staged_output
from metainspect.progress import Progress
from metainspect.rewrite.plan import (
    BACKUP_SUFFIX,
    ObjectGraphChange,
    RewriteOptions,
    RewritePlan,
    TensorPlan,
    cast_types,
    decide,
    rewrite_object_graph,
)
from metainspect.rewrite.source import RewriteSource
from metainspect.rewrite.stream import CHUNK, WRITING, write

__all__ = [
    "BACKUP_SUFFIX", "CHUNK", "WRITING", "Dropped", "ObjectGraphChange", "RewriteOptions", "RewritePlan", "TensorPlan",
    "cast_types", "plan_rewrite", "rewrite_checkpoint", "rewrite_object_graph",
]


def plan_rewrite(source: str, options: RewriteOptions = RewriteOptions(), *, out_prefix: str | None = None,
                 in_place: bool = False) -> RewritePlan:
    """Decide every change :func:`rewrite_checkpoint` would make; write nothing.

    With ``out_prefix`` (or ``in_place``) the destination is checked too. Raises
    :class:`MetainspectError` for anything the rewrite would refuse.
    """
    with RewriteSource.open(source) as checkpoint:
        return decide(checkpoint, options, out_prefix, in_place)[0]


def rewrite_checkpoint(source: str, out_prefix: str | None, options: RewriteOptions = RewriteOptions(), *,
                       in_place: bool = False, progress: Progress | None = None) -> RewritePlan:
    """Write the rewritten checkpoint at ``out_prefix`` atomically and return its plan.

    ``in_place=True`` rewrites ``source`` itself (``out_prefix`` None or the same prefix) and
    keeps the input under the backup prefix ``PREFIX.bak`` (refused for a URL). A URL output
    is written to a local temporary directory, then each file is uploaded as one object, the
    ``.index`` last; a failure deletes what was uploaded. ``progress("writing", done, total)`` is
    called with output data bytes as tensors are written.
    """
    with RewriteSource.open(source) as checkpoint:
        plan, decided = decide(checkpoint, options, out_prefix, in_place)
        if plan.output is None:
            raise MetainspectError(None, "no output prefix given (and not rewriting in place)")
        with staged_output(plan.output, order=lambda url: url.endswith(".index")) as local:
            if local != plan.output:
                plan, decided = decide(checkpoint, options, local, in_place)
            try:
                warnings = write(checkpoint, plan, decided, options, progress)
            except OSError as exc:
                raise MetainspectError(exc.filename or plan.output, f"cannot write: {exc.strerror or exc}") from None
        if local != out_prefix and out_prefix is not None and decided.written is not None:
            return _uploaded(dataclasses.replace(plan, warnings=tuple(warnings)), decided.written, local, out_prefix)
    return dataclasses.replace(plan, warnings=tuple(warnings), written=decided.written)


def _uploaded(plan: RewritePlan, written: BundleFiles, local: str, url: str) -> RewritePlan:
    """The plan of a rewrite staged at ``local`` and uploaded to prefix ``url``: names the URLs."""
    def moved(path: str) -> str:
        return url + path[len(local) :]

    files = dataclasses.replace(written, prefix=url, index_file=moved(written.index_file),
                                data_files=tuple(moved(f) for f in written.data_files))
    return dataclasses.replace(plan, output=url, written=files)
