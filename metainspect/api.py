"""The top-level functions: each takes a path or the object already in memory.

A graph is a :class:`~metainspect.graph.model.Model` (from :func:`load_model`, or from an
editor's ``.model()``), a checkpoint a :class:`~metainspect.checkpoint.Checkpoint` (from
:func:`open_checkpoint`); every function below accepts either one or a path to read it from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metainspect.check.runner import Report
    from metainspect.checkpoint import Checkpoint
    from metainspect.convert import ConvertOptions, ConvertPlan
    from metainspect.export import ExportOptions, ExportResult
    from metainspect.graph.model import Model
    from metainspect.progress import Progress
    from metainspect.rewrite import RewriteOptions, RewritePlan

PathLike = str | os.PathLike[str]


def load_model(model: PathLike | Model, tags: Sequence[str] | None = None, *,
               storage_options: Mapping[str, Any] | None = None) -> Model:
    """The model ``model`` names: a ``.meta``, ``.pb``/``.pbtxt``, SavedModel or checkpoint prefix,
    local or a URL (``storage_options`` go to its fsspec backend).

    ``tags`` picks a SavedModel's meta graph by its tag set (default: the only one, else
    ``serve``). A :class:`Model` is returned as it is.
    """
    from metainspect.graph.model import Model
    from metainspect.graph.model import load_model as load

    if isinstance(model, Model):
        return model
    return load(model, list(tags) if tags else None, storage_options=storage_options)


def open_checkpoint(checkpoint: PathLike | Checkpoint, *, verify: bool = True,
                    storage_options: Mapping[str, Any] | None = None) -> Checkpoint:
    """The checkpoint ``checkpoint`` names (prefix, ``.index``, ``.data-*``, V1 file, directory),
    local or a URL (``storage_options`` go to its fsspec backend).

    ``verify=False`` skips the per-tensor CRC32C. A :class:`Checkpoint` is returned as it is.
    """
    from metainspect.checkpoint import Checkpoint
    from metainspect.checkpoint import open_checkpoint as open_

    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    return open_(checkpoint, verify=verify, storage_options=storage_options)


def check(model: PathLike | Model, checkpoint: PathLike | Checkpoint | None = None, *,
          inputs: Mapping[str, str] | None = None, outputs: Mapping[str, str] | None = None,
          tags: Sequence[str] | None = None, verify: bool = True,
          progress: Progress | None = None) -> Report:
    """Is ``model`` ready to restore ``checkpoint`` and to be served? A :class:`Report` of findings.

    ``model`` may be a model edited in memory (``model.edit()….model()``): nothing is written.
    ``checkpoint`` defaults to the one beside the model's file. ``inputs``/``outputs`` map
    signature keys to tensor names (``{"x": "input:0"}``) the way a server would feed and fetch.
    ``verify=False`` skips reading the checkpoint's data back against its checksums.
    """
    from metainspect.check.runner import run_checks

    return run_checks(model, checkpoint, inputs, outputs, tags, verify=verify, progress=progress)


def rewrite_checkpoint(checkpoint: PathLike | Checkpoint, out_prefix: PathLike | None,
                       options: RewriteOptions | None = None, *, in_place: bool = False,
                       progress: Progress | None = None) -> RewritePlan:
    """Write ``checkpoint`` rewritten by ``options`` (renamed, dropped, cast, resharded) at ``out_prefix``.

    Returns the plan with what was written. ``in_place=True`` rewrites the input itself and keeps
    it under ``PREFIX.bak``. Nothing is written when a change is refused.
    """
    from metainspect.checkpoint import Checkpoint
    from metainspect.rewrite import RewriteOptions
    from metainspect.rewrite import rewrite_checkpoint as rewrite

    source = checkpoint.prefix if isinstance(checkpoint, Checkpoint) else os.fspath(checkpoint)
    return rewrite(source, os.fspath(out_prefix) if out_prefix is not None else None,
                   options if options is not None else RewriteOptions(), in_place=in_place, progress=progress)


def export_saved_model(model: PathLike | Model, out: PathLike, options: ExportOptions | None = None, *,
                       engine: str = "auto", progress: Progress | None = None) -> ExportResult:
    """Export ``model`` and its checkpoint as a SavedModel directory ``out`` (which must not exist).

    ``check`` runs first and refuses on errors (``ExportOptions(force=True)`` overrides).
    ``engine`` is ``"tf"`` (TensorFlow's builder), ``"pure"`` (no TensorFlow) or ``"auto"``.
    """
    from metainspect.export import ExportOptions
    from metainspect.export import export_saved_model as export
    from metainspect.progress import silent

    return export(model, out, options if options is not None else ExportOptions(), engine=engine,
                  progress=progress if progress is not None else silent)


def convert(checkpoint: PathLike | Checkpoint, output: PathLike, options: ConvertOptions | None = None, *,
            progress: Progress | None = None) -> ConvertPlan:
    """Convert a TensorFlow checkpoint to safetensors or npz (or one of those to a checkpoint) at ``output``.

    The format comes from ``output``'s name (``model.safetensors``, ``model.npz``, a checkpoint
    prefix) or ``ConvertOptions(to=...)``; selection, renames and casts are ``rewrite``'s.
    """
    from metainspect.checkpoint import Checkpoint
    from metainspect.convert import ConvertOptions
    from metainspect.convert import convert as run

    source = checkpoint.prefix if isinstance(checkpoint, Checkpoint) else os.fspath(checkpoint)
    return run(source, os.fspath(output), options if options is not None else ConvertOptions(), progress=progress)


__all__ = ["check", "convert", "export_saved_model", "load_model", "open_checkpoint", "rewrite_checkpoint"]
