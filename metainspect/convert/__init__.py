"""Convert checkpoints between TensorFlow's format, safetensors and numpy's npz.

Directions: any TensorFlow checkpoint metainspect reads (V2, V1, sharded, partitioned —
reassembled into the full tensor —, TF2 object-based, big-endian, inside a SavedModel) to
``*.safetensors`` (one file, or Hugging Face's sharded layout) or ``*.npz``; and
``*.safetensors`` (or a Hugging Face ``*.safetensors.index.json``) or ``*.npz`` to a V2
TensorFlow checkpoint written by the pure bundle writer (or to each other). TensorFlow's names
are kept as keys unless renamed. Selection and renaming follow ``rewrite``'s rules, with the
same implementation: ``keep``/``drop`` patterns searched in the input's names, ``drop_optimizer``
by :mod:`metainspect.checkpoint.roles`, scope and regex renames, ``cast`` between floating types.

Every decision is made before anything is written (:func:`plan_conversion`): a tensor the
output format cannot store (a string tensor in safetensors, a type safetensors lacks) is
refused by name unless dropped, and so are names that collide, existing outputs and data
files too short for the index. The TF2 object graph ``_CHECKPOINTABLE_OBJECT_GRAPH`` is
TensorFlow bookkeeping, not a weight: it is left out of safetensors and npz outputs with a note.
See :mod:`metainspect.convert.writers` for how bytes move.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf import text_format

from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.checkpoint.renames import Rename
from metainspect.checkpoint.selection import Dropped, SelectionError, select
from metainspect.convert import npz, safetensors
from metainspect.convert.sources import Source, SourceTensor, open_source
from metainspect.convert.writers import (
    Item,
    SafetensorsFile,
    index_document,
    string_width,
    write_checkpoint,
    write_npz,
    write_safetensors,
)
from metainspect.errors import MetainspectError, WrongKindError
from metainspect.formats import dtypes
from metainspect.formats.bundle import data_file_name
from metainspect.formats.bundle_writer import encode_strings, starts_new_shard
from metainspect.formats.checkpoint_state import STATE_FILE
from metainspect.formats.filesystem import filesystem, is_url, staged_output
from metainspect.progress import Progress
from metainspect.rewrite import RewriteOptions, cast_types
from metainspect.rewrite.plan import PlannedTensors, TensorChange

if TYPE_CHECKING:
    from metainspect.proto.checkpoint_state_pb2 import CheckpointState

#: output formats, as ``--to`` names them
FORMATS = ("safetensors", "npz", "checkpoint")
#: file names used when the output names a directory
DIRECTORY_NAMES = {"safetensors": "model.safetensors", "npz": "model.npz", "checkpoint": "model.ckpt"}
#: source formats that are TensorFlow checkpoints
_CHECKPOINT_FORMATS = ("v1", "v2")
#: why the TF2 object graph is not in a safetensors or npz output
OBJECT_GRAPH_LEFT_OUT = Dropped("object_graph")


@dataclass(frozen=True)
class ConvertOptions(RewriteOptions):
    """``rewrite``'s options (``renames``, ``drop``, ``keep``, ``drop_optimizer``, ``cast``,
    ``verify``, ``sync``; ``shard_size``: Hugging Face shards of at most this many bytes for
    safetensors, data shards for a checkpoint), plus the output format and metadata."""

    #: the output format (:data:`FORMATS`); None: from the output's name
    to: str | None = None
    #: extra ``(key, value)`` entries for the output's metadata (safetensors, npz)
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class TensorConversion(TensorChange):
    """What happens to one input tensor."""

    #: the type as the output format spells it: ``BF16`` (safetensors), ``<f4``/``|V2`` (npz),
    #: ``bfloat16`` (checkpoint); None when left out
    stored_dtype: str | None
    #: model | optimizer | bookkeeping
    role: str
    #: the output file holding it
    file: str | None = None


@dataclass(frozen=True)
class ConvertPlan(PlannedTensors[TensorConversion]):
    """A conversion decided before anything is written, and what was written."""

    source: str
    source_format: str
    #: what was asked for (a file, prefix or directory); None when planned without one
    output: str | None
    #: safetensors | npz | checkpoint
    format: str
    tensors: tuple[TensorConversion, ...]
    #: the metadata the output records (safetensors ``__metadata__``, npz ``__metadata__``)
    metadata: dict[str, str] | None
    #: every file the conversion writes, the index or state file last
    files: tuple[str, ...]
    max_shard_size: int | None
    verify: bool
    sync: bool
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: True once the files are written
    written: bool = False

    def to_json(self) -> dict[str, object]:
        """The plan as plain data (``convert --json`` adds each tensor's ``dropped_by`` in flag words)."""
        written = None
        if self.written:
            written = {"files": list(self.files), "bytes": sum(filesystem(f).size(f) for f in self.files)}
        return {
            "source": self.source, "source_format": self.source_format, "output": self.output,
            "format": self.format,
            "tensors": [t.to_json() for t in self.tensors],
            "metadata": self.metadata, "files": list(self.files), "summary": self.summary(),
            "max_shard_size": self.max_shard_size, "verify": self.verify, "sync": self.sync,
            "notes": list(self.notes), "warnings": list(self.warnings), "written": written,
        }


@dataclass
class _Layout:
    """What the writers need beyond the public plan."""

    items: list[Item]
    safetensors_files: list[SafetensorsFile]
    #: (path, bytes) of a sharded safetensors output's index, or of a checkpoint's state file
    extra: tuple[str, bytes] | None
    #: npz file, checkpoint prefix
    target: str | None


def output_format(output: str | None, to: str | None, source_format: str) -> str:
    """The format ``to`` names, else the one ``output``'s name implies: ``*.safetensors``,
    ``*.npz``; any other name is a checkpoint, except that a directory receiving a TensorFlow
    checkpoint gets safetensors (Hugging Face's layout)."""
    if to is not None:
        if to not in FORMATS:
            raise MetainspectError(None, f"unknown output format {to!r}; choose one of {', '.join(FORMATS)}")
        return to
    if output is None:
        raise MetainspectError(None, "no output named and no output format given")
    for fmt, suffix in (("safetensors", ".safetensors"), ("npz", ".npz")):
        if output.endswith(suffix):
            return fmt
    if source_format not in _CHECKPOINT_FORMATS:
        return "checkpoint"
    if os.path.isdir(output) or output.endswith(("/", os.sep)):
        return "safetensors"
    raise MetainspectError(output, "the output's name does not tell its format: name it *.safetensors or *.npz "
                                   "(or a directory), or give the format")


def plan_conversion(source: str, output: str | None, options: ConvertOptions = ConvertOptions()) -> ConvertPlan:
    """Decide every step :func:`convert` would take; write nothing. Raises
    :class:`MetainspectError` for anything the conversion would refuse."""
    with open_source(os.fspath(source), verify=options.verify) as opened:
        return _plan(opened, output, options)[0]


def convert(source: str, output: str, options: ConvertOptions = ConvertOptions(), *,
            progress: Progress | None = None) -> ConvertPlan:
    """Convert ``source`` into ``output`` atomically and return the plan carried out.

    ``progress("writing", done, total)`` is called with output data bytes as tensors are written. A URL
    output is written to a local temporary directory, then uploaded one object per file in the
    plan's order (index or state file last); a failure deletes what was uploaded.
    """
    if is_url(output):
        return _convert_to_url(source, output, options, progress)
    with open_source(os.fspath(source), verify=options.verify) as opened:
        plan, layout = _plan(opened, output, options)
        try:
            warnings = _write(opened, plan, layout, options, progress)
        except OSError as exc:
            raise MetainspectError(exc.filename or output, f"cannot write: {exc.strerror or exc}") from None
    return dataclasses.replace(plan, warnings=plan.warnings + tuple(warnings), written=True)


def _convert_to_url(source: str, output: str, options: ConvertOptions,
                    progress: Progress | None) -> ConvertPlan:
    files = filesystem(output)
    planned = plan_conversion(source, output, options)
    for path in planned.files:
        if files.exists(path):
            raise MetainspectError(path, "already exists; refusing to overwrite (choose another output)")
    rank = {path: n for n, path in enumerate(planned.files)}
    with staged_output(output, order=lambda url: rank.get(url, -1)) as local:
        local_output = local + "/" if output.endswith("/") else local
        done = convert(source, local_output, options, progress=progress)

    def moved(path: str) -> str:
        return output.rstrip("/") + path[len(local) :]

    return dataclasses.replace(done, output=output, files=tuple(moved(f) for f in done.files))


# -- deciding -------------------------------------------------------------------------------------


def _plan(source: Source, output: str | None, options: ConvertOptions) -> tuple[ConvertPlan, _Layout]:
    fmt = output_format(output, options.to, source.format)
    if fmt == "checkpoint" and source.format in _CHECKPOINT_FORMATS:
        raise MetainspectError(output, "names a TensorFlow checkpoint, and the input is one already: rewrite "
                                       "turns one TensorFlow checkpoint into another; name a .safetensors or "
                                       ".npz output here")
    selected, notes = _select(source, options)
    decided: dict[str, tuple[str, dtypes.DType, int]] = {}  # name -> (new name, new dtype, npz width)
    cast = cast_types(options.cast) if options.cast is not None else None
    for tensor in source.tensors:
        new_name = selected.get(tensor.name)
        if new_name is None:
            continue
        new_dtype = cast[1] if cast and tensor.dtype == cast[0] else tensor.dtype
        _check_storable(source, tensor, new_name, new_dtype, fmt)
        width = string_width(source.values(tensor)) if fmt == "npz" and new_dtype.name == "string" else 0
        decided[tensor.name] = (new_name, new_dtype, width)
    if cast and not any(tensor.dtype == cast[0] for tensor in source.tensors if tensor.name in decided):
        raise MetainspectError(source.path, f"cast {':'.join(options.cast or ())}: no {cast[0].name} tensor to cast")
    source.check([t for t in source.tensors if t.name in decided])
    items = [Item(t, *decided[t.name][:2], _output_size(source, t, *decided[t.name][1:], fmt), decided[t.name][2])
             for t in source.tensors if t.name in decided]
    if options.shard_size is not None and fmt == "npz":
        raise MetainspectError(output, "an npz archive is one file; a maximum shard size applies to "
                                       "safetensors and checkpoint outputs")
    metadata = _metadata(source, selected, items, options, fmt)
    layout, files, placed = _destination(output, fmt, items, metadata, options)
    rows = []
    by_name = {item.tensor.name: item for item in items}
    for tensor in source.tensors:
        item = by_name.get(tensor.name)
        if item is None:
            rows.append(TensorConversion(name=tensor.name, new_name=None, dtype=tensor.dtype.name,
                                         new_dtype=tensor.dtype.name, stored_dtype=None, shape=tensor.shape,
                                         nbytes=tensor.nbytes, new_nbytes=0, role=tensor.role,
                                         drop_reason=selected.dropped_by(tensor.name)))
            continue
        rows.append(TensorConversion(name=tensor.name, new_name=item.new_name, dtype=tensor.dtype.name,
                                     new_dtype=item.new_dtype.name, stored_dtype=_stored_dtype(item, fmt),
                                     shape=tensor.shape, nbytes=tensor.nbytes, new_nbytes=item.nbytes, role=tensor.role,
                                     file=placed.get(item.new_name)))
    plan = ConvertPlan(
        source=source.path, source_format=source.format, output=output, format=fmt, tensors=tuple(rows),
        metadata=metadata if fmt != "checkpoint" else None, files=tuple(files),
        max_shard_size=options.shard_size, verify=options.verify, sync=options.sync,
        notes=source.notes + tuple(notes),
    )
    return plan, layout


class _Selection(dict[str, str]):
    """Kept input name -> output name, and why the others are left out."""

    def __init__(self, kept: dict[str, str], dropped: dict[str, Dropped]) -> None:
        super().__init__(kept)
        self.why = dropped

    def dropped_by(self, name: str) -> Dropped | None:
        return self.why.get(name)


def _select(source: Source, options: ConvertOptions) -> tuple[_Selection, list[str]]:
    """``rewrite``'s selection and renaming rules, applied to the source's names."""
    names = [t.name for t in source.tensors if t.name != OBJECT_GRAPH_KEY]
    roles = {t.name: t.role for t in source.tensors}
    try:
        chosen = select(names, roles, keep=options.keep, drop=options.drop, drop_optimizer=options.drop_optimizer,
                        renames=options.renames)
    except SelectionError as exc:
        raise exc.with_path(source.path) from None
    new_names = {s.name: s.new_name for s in chosen if s.new_name is not None}
    dropped = {s.name: s.dropped_by for s in chosen if s.dropped_by is not None}
    if not names:
        raise MetainspectError(source.path, "holds no tensor to convert" + (
            f" (only {OBJECT_GRAPH_KEY}, TensorFlow's bookkeeping)" if source.tensors else ""))
    notes = []
    if len(names) != len(source.tensors):
        dropped[OBJECT_GRAPH_KEY] = OBJECT_GRAPH_LEFT_OUT
        notes.append(f"{OBJECT_GRAPH_KEY} (the TF2 object graph: TensorFlow's bookkeeping of which object owns "
                     "which variable, not a weight) is left out")
    return _Selection(new_names, dropped), notes


def _check_storable(source: Source, tensor: SourceTensor, new_name: str, new_dtype: dtypes.DType, fmt: str) -> None:
    """Refuse a tensor the output format cannot hold, naming it."""
    what = f"tensor {tensor.name!r}"
    if fmt == "safetensors":
        reason = safetensors.unstorable(new_dtype.name)
        if reason:
            raise WrongKindError(source.path, f"{what} cannot be stored in safetensors: {reason}; drop it to "
                                              "convert the rest")
        if new_name == safetensors.METADATA_KEY:
            raise WrongKindError(source.path, f"{what} would be named {new_name}, the key safetensors keeps its "
                                              "metadata under; rename it")
    if fmt == "npz":
        if not new_dtype.is_numeric and new_dtype.name != "string":
            raise WrongKindError(source.path, f"{what} is a {new_dtype.name} tensor, which an npz file cannot "
                                              "hold; drop it to convert the rest")
        if new_name == npz.METADATA_KEY:
            raise WrongKindError(source.path, f"{what} would be named {new_name}, the member npz metadata is "
                                              "kept in; rename it")
    if fmt in ("safetensors", "npz"):
        try:
            new_name.encode("utf-8")
        except UnicodeEncodeError:
            raise WrongKindError(source.path, f"{what}: its name is not valid UTF-8, which {fmt} names must "
                                              "be; rename it") from None


def _output_size(source: Source, tensor: SourceTensor, new_dtype: dtypes.DType, width: int, fmt: str) -> int:
    """Bytes of the tensor's data in the output."""
    count = 1
    for dim in tensor.shape:
        count *= dim
    if new_dtype.is_numeric:
        return count * new_dtype.itemsize
    if fmt == "npz":
        return count * width
    values = source.values(tensor)
    return encode_strings([bytes(v) for v in values.reshape(-1).tolist()])[0]


def _stored_dtype(item: Item, fmt: str) -> str:
    if fmt == "safetensors":
        return safetensors.DTYPES[item.new_dtype.name]
    if fmt == "npz":
        return str(npz.storage_dtype(item.new_dtype, item.width).str)
    return item.new_dtype.name


def _metadata(source: Source, selected: _Selection, items: list[Item], options: ConvertOptions,
              fmt: str) -> dict[str, str]:
    """What the output records about the conversion (all values are strings)."""
    from metainspect import __version__

    metadata = {"source": os.path.basename(source.path.rstrip("/")), "source_format": source.format,
                "converted_by": f"metainspect {__version__}"}
    dropped = [t.name for t in source.tensors if t.name not in selected]
    if dropped:
        metadata["dropped"] = json.dumps(dropped, ensure_ascii=False)
    if options.renames:
        texts = [r.text if isinstance(r, Rename) else r for r in options.renames]
        metadata["renames"] = json.dumps(texts, ensure_ascii=False)
    if options.cast:
        metadata["cast"] = ":".join(options.cast)  # recorded as SRC:DST
    if fmt == "npz":
        metadata["dtypes"] = json.dumps({i.new_name: i.new_dtype.name for i in items}, ensure_ascii=False)
    for key, value in options.metadata:
        metadata[key] = value
    return metadata


def _destination(output: str | None, fmt: str, items: list[Item], metadata: dict[str, str],
                 options: ConvertOptions) -> tuple[_Layout, list[str], dict[str, str]]:
    """The files to write, checked not to exist; and which file holds each output tensor."""
    layout = _Layout(items, [], None, None)
    if output is None:
        return layout, [], {}
    is_directory = os.path.isdir(output) or output.endswith(("/", os.sep))
    target = os.path.join(output, DIRECTORY_NAMES[fmt]) if is_directory else output
    placed: dict[str, str] = {}
    if fmt == "safetensors":
        groups = _shards([(i.new_name, i.nbytes) for i in items], options.shard_size)
        base = target[: -len(".safetensors")] if target.endswith(".safetensors") else target
        by_name = {i.new_name: i for i in items}
        for number, names in enumerate(groups, 1):
            path = target if len(groups) == 1 else f"{base}-{number:05d}-of-{len(groups):05d}.safetensors"
            entries = safetensors.layout((n, by_name[n].new_dtype.name, by_name[n].tensor.shape) for n in names)
            header = safetensors.encode_header(entries, metadata)
            layout.safetensors_files.append(SafetensorsFile(path, {e.name: e for e in entries}, header))
            placed.update({n: path for n in names})
        files = [f.path for f in layout.safetensors_files]
        if len(groups) > 1:
            layout.extra = (target + ".index.json", index_document(layout.safetensors_files, metadata))
            files.append(layout.extra[0])
    elif fmt == "npz":
        layout.target = target
        files = [target]
        placed = {i.new_name: target for i in items}
    else:
        prefix = target[: -len(".index")] if target.endswith(".index") else target
        layout.target = prefix
        ordered = sorted(items, key=lambda i: i.new_name.encode("utf-8", "surrogateescape"))
        groups = _shards([(i.new_name, i.nbytes) for i in ordered], options.shard_size)
        data = [data_file_name(prefix, n, len(groups)) for n in range(len(groups))]
        placed = {name: data[n] for n, names in enumerate(groups) for name in names}
        files = [*data, prefix + ".index"]
        if is_directory:
            state = text_format.MessageToString(_state(os.path.basename(prefix)))
            layout.extra = (os.path.join(output, STATE_FILE), state.encode("utf-8"))
            files.append(layout.extra[0])
    for path in files:
        if os.path.lexists(path):
            raise MetainspectError(path, "already exists; refusing to overwrite (choose another output)")
    return layout, files, placed


def _state(basename: str) -> CheckpointState:
    from metainspect.proto.checkpoint_state_pb2 import CheckpointState

    return CheckpointState(model_checkpoint_path=basename, all_model_checkpoint_paths=[basename])


def _shards(sizes: Sequence[tuple[str, int]], limit: int | None) -> list[list[str]]:
    """Names grouped into shards in order: a new one starts before one would pass ``limit``."""
    groups: list[list[str]] = [[]]
    current = 0
    for name, size in sizes:
        if starts_new_shard(current, len(groups[-1]), size, limit):
            groups.append([])
            current = 0
        groups[-1].append(name)
        current += size
    return groups


# -- writing --------------------------------------------------------------------------------------


def _write(source: Source, plan: ConvertPlan, layout: _Layout, options: ConvertOptions,
           progress: Progress | None) -> list[str]:
    if plan.output is None:
        raise MetainspectError(None, "no output named")
    if plan.format == "safetensors":
        return write_safetensors(source, layout.items, layout.safetensors_files, layout.extra, verify=options.verify,
                                 sync=options.sync, progress=progress)
    assert layout.target is not None
    if plan.format == "npz":
        return write_npz(source, layout.items, layout.target, plan.metadata or {}, sync=options.sync,
                         progress=progress)
    return write_checkpoint(source, layout.items, layout.target, layout.extra, shard_size=options.shard_size,
                            sync=options.sync, progress=progress)


__all__ = ["FORMATS", "ConvertOptions", "ConvertPlan", "TensorConversion", "convert", "output_format",
           "plan_conversion"]
