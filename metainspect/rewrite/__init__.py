"""Rewrite a checkpoint into a new V2 bundle: rename, drop, keep, cast, reshard.

Any checkpoint :func:`metainspect.checkpoint.resolve` accepts is read (V2 bundles, big-endian
or with Snappy index blocks, legacy V1 files); the output is always what TensorFlow writes
today: a little-endian V2 bundle without compression, byte for byte TensorFlow's layout. With
no operation the output equals the input for any bundle TensorFlow wrote: each tensor keeps
its data shard and its place in it, so offsets, CRCs and the index come out identical.

Decisions are made on the input's tensor names, before anything is written
(:func:`plan_rewrite`); every refusal (a rename collision, a pattern that matches nothing, a
cast of a non-float type, an existing output, a truncated data shard) happens there. Writing
streams tensor by tensor: tensors whose bytes do not change keep their stored CRC32C and are
copied inside the kernel (``copy_file_range``, in the writer's background lanes, data shards
side by side) while another thread checks that CRC through short-lived memory maps (string
checksums are checked without decoding the strings; nothing is checked with
``verify=False``); every check has passed before any output file takes its final name. Casts
and byte swaps are converted in chunks. Memory stays bounded by a chunk, not by the tensor or
the checkpoint (V1 tensors, variants and big-endian strings are decoded one tensor at a time).
Partitioned tensors stay partitioned: each slice is renamed through its tensor's name and
re-keyed.

A TF2 object graph (``_CHECKPOINTABLE_OBJECT_GRAPH``) follows the changes: attributes whose
keys are dropped are removed, optimizer slot references whose slot values are all dropped are
removed, ``checkpoint_key`` fields take the new names, ``full_name`` fields are renamed by the
same rules, and ``has_checkpoint_values`` is recomputed the way TensorFlow computes it. Node
numbering is kept (a SavedModel's object graph refers to the same node ids); nodes left
without values are harmless to TensorFlow's restore. The object graph entry itself is never
matched by ``--rename``/``--drop``/``--keep``.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import mmap
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY, ObjectGraph
from metainspect.checkpoint.renames import Rename, Renamer
from metainspect.checkpoint.roles import OPTIMIZER, classify
from metainspect.errors import CorruptError, MetainspectError, NotFoundError
from metainspect.formats import crc, dtypes, slices
from metainspect.formats.bundle import Bundle
from metainspect.formats.bundle_codec import TensorCorruptError, crc_mismatch, dtype_of, shape_of
from metainspect.formats.bundle_writer import BundleFiles, BundleWriter, encode_strings, starts_new_shard

if TYPE_CHECKING:
    import numpy as np

    from metainspect.formats.v1 import V1Checkpoint

#: bytes read, checked and written at a time
CHUNK = 8 << 20
#: in-place rewrites move the input to PREFIX + this (a checkpoint prefix of its own)
BACKUP_SUFFIX = ".bak"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RewriteOptions:
    """What to change. Patterns are regular expressions searched in the input's tensor names."""

    #: ``OLD=NEW`` scope renames and ``re:PATTERN=REPLACEMENT`` rules (first match wins)
    renames: tuple[str | Rename, ...] = ()
    #: drop tensors matching any of these
    drop: tuple[str, ...] = ()
    #: keep only tensors matching one of these (then ``drop`` applies to what is kept)
    keep: tuple[str, ...] = ()
    #: drop optimizer state (slots, moments, optimizer step), keep model and bookkeeping
    drop_optimizer: bool = False
    #: ``"SRC:DST"`` between floating types, e.g. ``"float32:float16"``
    cast: str | None = None
    #: start a new data shard before one would exceed this many bytes (None: keep the input's shards)
    shard_size: int | None = None
    #: check every tensor's stored CRC32C while copying
    verify: bool = True
    #: fsync the output before renaming it into place (False: as TensorFlow's writer, faster,
    #: not crash-safe)
    sync: bool = True

    def __post_init__(self) -> None:
        for name in ("renames", "drop", "keep"):
            value = getattr(self, name)
            if isinstance(value, (str, Rename)):
                value = (value,)
            object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True)
class TensorPlan:
    """What happens to one tensor. Sizes are data bytes as stored in a V2 bundle."""

    name: str
    #: None when the tensor is dropped
    new_name: str | None
    dtype: str
    new_dtype: str
    shape: tuple[int, ...]
    nbytes: int
    #: 0 when dropped
    new_nbytes: int
    partitioned: bool
    #: model | optimizer | bookkeeping
    role: str
    #: why it is dropped: ``--drop PATTERN``, ``--keep``, ``--drop-optimizer``
    dropped_by: str | None = None

    @property
    def dropped(self) -> bool:
        return self.new_name is None

    @property
    def renamed(self) -> bool:
        return self.new_name is not None and self.new_name != self.name

    @property
    def cast(self) -> bool:
        return self.new_name is not None and self.new_dtype != self.dtype


@dataclass(frozen=True)
class ObjectGraphChange:
    """How the TF2 object graph is rewritten."""

    attributes_removed: int
    slot_variables_removed: int
    keys_renamed: int
    full_names_renamed: int

    @property
    def changed(self) -> bool:
        return any(dataclasses.astuple(self))


@dataclass(frozen=True)
class RewritePlan:
    """Every change a rewrite makes, computed before anything is written."""

    source: str
    source_format: str
    source_shards: int
    #: output prefix (None when planned without one)
    output: str | None
    in_place: bool
    #: where an in-place rewrite moves the input (a checkpoint prefix)
    backup: str | None
    tensors: tuple[TensorPlan, ...]
    object_graph: ObjectGraphChange | None
    output_shards: int
    shard_size: int | None
    verify: bool
    #: whether the output is fsynced before it takes its final names
    sync: bool = True
    notes: tuple[str, ...] = ()
    #: filled by :func:`rewrite_checkpoint`: values cast to infinity, and so on
    warnings: tuple[str, ...] = ()
    written: BundleFiles | None = None

    @property
    def kept(self) -> list[TensorPlan]:
        return [t for t in self.tensors if not t.dropped]

    @property
    def dropped(self) -> list[TensorPlan]:
        return [t for t in self.tensors if t.dropped]

    @property
    def renamed(self) -> list[TensorPlan]:
        return [t for t in self.tensors if t.renamed]

    @property
    def cast(self) -> list[TensorPlan]:
        return [t for t in self.tensors if t.cast]

    @property
    def input_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def output_bytes(self) -> int:
        return sum(t.new_nbytes for t in self.tensors)

    def to_json(self) -> dict[str, object]:
        """Plain data for ``--json`` (schema in the README)."""
        return {
            "source": self.source, "source_format": self.source_format, "source_shards": self.source_shards,
            "output": self.output, "in_place": self.in_place, "backup": self.backup,
            "tensors": [dataclasses.asdict(t) | {"shape": list(t.shape)} for t in self.tensors],
            "object_graph": dataclasses.asdict(self.object_graph) if self.object_graph else None,
            "summary": {
                "tensors": len(self.tensors), "kept": len(self.kept), "dropped": len(self.dropped),
                "renamed": len(self.renamed), "cast": len(self.cast), "input_bytes": self.input_bytes,
                "output_bytes": self.output_bytes, "dropped_bytes": sum(t.nbytes for t in self.dropped),
                "output_shards": self.output_shards,
            },
            "shard_size": self.shard_size, "verify": self.verify, "sync": self.sync, "notes": list(self.notes),
            "warnings": list(self.warnings),
            "written": None if self.written is None else {
                "index_file": self.written.index_file, "data_files": list(self.written.data_files),
                "data_bytes": self.written.data_bytes,
                "bytes": sum(os.path.getsize(f) for f in (self.written.index_file, *self.written.data_files)),
            },
        }


def plan_rewrite(source: str, options: RewriteOptions = RewriteOptions(), *, out_prefix: str | None = None,
                 in_place: bool = False) -> RewritePlan:
    """Decide every change :func:`rewrite_checkpoint` would make; write nothing.

    With ``out_prefix`` (or ``in_place``) the destination is checked too. Raises
    :class:`MetainspectError` for anything the rewrite would refuse.
    """
    with _Input.open(source) as checkpoint:
        return _plan(checkpoint, options, out_prefix, in_place)[0]


def rewrite_checkpoint(source: str, out_prefix: str | None, options: RewriteOptions = RewriteOptions(), *,
                       in_place: bool = False, progress: ProgressCallback | None = None) -> RewritePlan:
    """Write the rewritten checkpoint at ``out_prefix`` atomically and return its plan.

    ``in_place=True`` rewrites ``source`` itself (``out_prefix`` None or the same prefix) and
    keeps the input under the backup prefix ``PREFIX.bak``. ``progress(done, total)`` is called
    with output data bytes as tensors are written.
    """
    with _Input.open(source) as checkpoint:
        plan, decided = _plan(checkpoint, options, out_prefix, in_place)
        if plan.output is None:
            raise MetainspectError(None, "no output prefix given (and not rewriting in place)")
        try:
            warnings = _write(checkpoint, plan, decided, options, progress)
        except OSError as exc:
            raise MetainspectError(exc.filename or plan.output, f"cannot write: {exc.strerror or exc}") from None
    return dataclasses.replace(plan, warnings=tuple(warnings), written=decided.written)


# -- the input ------------------------------------------------------------------------------------


class _Piece(NamedTuple):
    """One stored piece of a tensor: the whole tensor, or one slice."""

    shard: int
    offset: int
    size: int
    crc32c: int
    shape: tuple[int, ...]
    #: None for a whole tensor
    extents: list[slices.Extent] | None


@dataclass
class _Tensor:
    name: str
    dtype: dtypes.DType
    shape: tuple[int, ...]
    pieces: list[_Piece]

    @property
    def nbytes(self) -> int:
        return sum(p.size for p in self.pieces)

    @property
    def partitioned(self) -> bool:
        first = self.pieces[0].extents if self.pieces else None
        return len(self.pieces) > 1 or (first is not None and not slices.is_full(first, self.shape))


class _Input:
    """An opened input checkpoint: its tensors and pieces, and raw access to the data."""

    def __init__(self, prefix: str, notes: tuple[str, ...], bundle: Bundle | None, v1: V1Checkpoint | None,
                 files: tuple[str, ...]) -> None:
        self.prefix = prefix
        self.format = "v2" if bundle is not None else "v1"
        self.notes = notes
        self.bundle = bundle
        self.v1 = v1
        #: data shards (V2) or table files (V1), by shard index
        self.files = files
        self.big_endian = bundle is not None and bundle.big_endian
        self._fds: dict[int, int] = {}
        self._last: tuple[str, np.ndarray] | None = None
        self.tensors = _bundle_tensors(bundle) if bundle is not None else _v1_tensors(v1)  # type: ignore[arg-type]

    @classmethod
    def open(cls, source: str) -> _Input:
        from metainspect.checkpoint.reader import resolve
        from metainspect.formats.v1 import V1Checkpoint

        target = resolve(os.fspath(source))
        reader: Bundle | V1Checkpoint
        if target.format == "v2":
            reader = Bundle(target.prefix)
            files = tuple(reader.shard_path(i) for i in range(reader.num_shards))
        else:
            reader = V1Checkpoint(target.files)
            files = tuple(target.files)
        try:
            if isinstance(reader, Bundle):
                return cls(target.prefix, target.notes, reader, None, files)
            return cls(target.prefix, target.notes, None, reader, files)
        except BaseException:
            reader.close()
            raise

    def string_sizes(self, tensor: _Tensor) -> list[int]:
        """Stored V2 size of each piece of a V1 string tensor (read to find out)."""
        values = self.values(tensor.name)
        return [encode_strings(_flat_bytes(values[slices.bounds(p.extents or [], tensor.shape)]))[0]
                for p in tensor.pieces]

    def values(self, name: str) -> np.ndarray:
        """A whole tensor decoded and checked (the last one is kept: its slices are read in turn)."""
        if self._last is None or self._last[0] != name:
            value = self.v1.read(name) if self.v1 is not None else self.bundle.read(name)  # type: ignore[union-attr]
            self._last = (name, value)
        return self._last[1]

    def object_graph_bytes(self) -> bytes | None:
        if not any(t.name == OBJECT_GRAPH_KEY for t in self.tensors):
            return None
        value = self.values(OBJECT_GRAPH_KEY)
        if value.shape != () or not isinstance(value[()], bytes):
            raise CorruptError(self.prefix, f"{OBJECT_GRAPH_KEY} is not a string scalar")
        return value[()]

    def fd(self, shard: int) -> int:
        """An open descriptor on data shard ``shard``."""
        if shard not in self._fds:
            path = self.files[shard]
            try:
                self._fds[shard] = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise NotFoundError(path, f"data shard {shard} of {len(self.files)} is missing") from None
        return self._fds[shard]

    def input_files(self) -> list[str]:
        """Every file of the input (the index first)."""
        if self.bundle is not None:
            return [self.bundle.index_path, *self.files]
        return list(self.files)

    def close(self) -> None:
        self._last = None
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self.bundle is not None:
            self.bundle.close()
        if self.v1 is not None:
            self.v1.close()

    def __enter__(self) -> _Input:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _bundle_tensors(bundle: Bundle) -> list[_Tensor]:
    """The tensors of a V2 bundle with their pieces, checked against their dtypes and shapes."""
    out = []
    where = bundle.index_path
    for name in bundle.names():
        entry = bundle.entry(name)
        what = f"tensor {name!r}"
        kind, shape = dtype_of(entry.dtype, where, what), shape_of(entry.shape, where, what)
        if not kind.is_numeric and not kind.numpy_name:
            raise CorruptError(where, f"{what} has dtype {kind.name}, which cannot be stored")
        pieces = []
        for extents, part in bundle.pieces(name):
            label = what if extents is None else f"{what} slice {slices.slice_spec(extents)}"
            part_shape = shape_of(part.shape, where, label)
            needed = math.prod(part_shape) * kind.itemsize
            if kind.is_numeric and part.size != needed:
                raise CorruptError(where, f"{label} holds {part.size} bytes, shape {list(part_shape)} {kind.name} needs {needed}")
            if part.dtype != entry.dtype:
                raise CorruptError(where, f"{label} is {dtypes.name_of(part.dtype)}, its tensor {kind.name}")
            if not 0 <= part.shard_id < bundle.num_shards:
                raise CorruptError(where, f"{label} is in shard {part.shard_id}, the bundle has {bundle.num_shards}")
            pieces.append(_Piece(part.shard_id, part.offset, part.size, part.crc32c, part_shape, extents))
        out.append(_Tensor(name, kind, shape, pieces))
    return out


def _v1_tensors(v1: V1Checkpoint) -> list[_Tensor]:
    """The tensors of a V1 checkpoint; a piece's offset is its place in name order (V1 has no data file)."""
    out = []
    sequence = 0
    for name in v1.names():
        info = v1.tensor(name)
        pieces = []
        for table_index, extents in info.slices:
            try:
                index = slices.bounds(extents, info.shape)
            except ValueError as exc:
                raise CorruptError(v1.files[table_index], f"tensor {name!r}: {exc}") from None
            part_shape = tuple(s.stop - s.start for s in index)
            size = math.prod(part_shape) * info.dtype.itemsize if info.dtype.is_numeric else -1
            pieces.append(_Piece(table_index, sequence, size, 0, part_shape, extents))
            sequence += 1
        out.append(_Tensor(info.name, info.dtype, info.shape, pieces))
    return out


# -- deciding -------------------------------------------------------------------------------------


@dataclass
class _Decided:
    """What :func:`_write` needs beyond the public plan."""

    #: (tensor, its plan) of every kept tensor, in input order
    kept: list[tuple[_Tensor, TensorPlan]]
    new_object_graph: bytes | None
    written: BundleFiles | None = None
    #: output size of every kept piece, by (tensor name, piece index)
    piece_sizes: dict[tuple[str, int], int] = field(default_factory=dict)


def _plan(checkpoint: _Input, options: RewriteOptions, out_prefix: str | None, in_place: bool) -> tuple[RewritePlan, _Decided]:
    graph_bytes = checkpoint.object_graph_bytes()
    graph = ObjectGraph.from_bytes(graph_bytes, checkpoint.prefix) if graph_bytes is not None else None
    names = [t.name for t in checkpoint.tensors if t.name != OBJECT_GRAPH_KEY]
    roles = {t.name: classify(t.name, graph) for t in checkpoint.tensors}
    dropped_by = _drops(names, roles, options)
    kept_names = [n for n in names if n not in dropped_by]
    if names and not kept_names:
        raise MetainspectError(None, "every tensor would be dropped; nothing would be left to write")
    new_names = _renames(kept_names, [n for n in names if n in dropped_by], options.renames)
    cast = parse_cast(options.cast) if options.cast else None
    if cast and not any(t.dtype == cast[0] for t in checkpoint.tensors if t.name in new_names):
        raise MetainspectError(None, f"--cast {options.cast!r}: no {cast[0].name} tensor to cast"
                                     + (" among those kept" if dropped_by else ""))
    new_graph, graph_change = None, None
    if graph_bytes is not None:
        renamer = Renamer(options.renames)
        new_graph, graph_change = rewrite_object_graph(
            graph_bytes, {old: new for old, new in new_names.items() if old != new}, set(dropped_by), renamer)
    decided = _Decided([], new_graph if graph_change and graph_change.changed else None)
    plans = []
    for tensor in checkpoint.tensors:
        dtype = tensor.dtype
        new_name = OBJECT_GRAPH_KEY if tensor.name == OBJECT_GRAPH_KEY else new_names.get(tensor.name)
        new_dtype = cast[1] if cast and dtype == cast[0] and new_name is not None else dtype
        nbytes, sizes = _piece_sizes(checkpoint, tensor, new_dtype, decided.new_object_graph)
        plan = TensorPlan(tensor.name, new_name, dtype.name, new_dtype.name, tensor.shape, nbytes,
                          sum(sizes) if new_name is not None else 0, tensor.partitioned,
                          roles[tensor.name], dropped_by.get(tensor.name))
        plans.append(plan)
        if new_name is not None:
            decided.kept.append((tensor, plan))
            decided.piece_sizes.update({(tensor.name, i): size for i, size in enumerate(sizes)})
    if checkpoint.bundle is not None:
        _check_data_files(checkpoint, decided)
    output, backup = _destination(checkpoint, out_prefix, in_place)
    rewrite_plan = RewritePlan(
        source=checkpoint.prefix, source_format=checkpoint.format, source_shards=len(checkpoint.files),
        output=output, in_place=in_place, backup=backup, tensors=tuple(plans), object_graph=graph_change,
        output_shards=_count_shards(decided, options.shard_size), shard_size=options.shard_size,
        verify=options.verify, sync=options.sync, notes=checkpoint.notes,
    )
    return rewrite_plan, decided


def _check_data_files(checkpoint: _Input, decided: _Decided) -> None:
    """Every data shard the output needs exists and holds the bytes the index promises."""
    sizes: dict[int, int] = {}
    for tensor, _ in decided.kept:
        for piece in tensor.pieces:
            path = checkpoint.files[piece.shard]
            if piece.shard not in sizes:
                try:
                    sizes[piece.shard] = os.path.getsize(path)
                except FileNotFoundError:
                    raise NotFoundError(path, f"data shard {piece.shard} of {len(checkpoint.files)} is missing") from None
            end = piece.offset + piece.size
            if end > sizes[piece.shard]:
                raise TensorCorruptError(path, piece.offset, f"tensor {tensor.name!r}: bytes {piece.offset}..{end} "
                                                             f"extend beyond the file ({sizes[piece.shard]} bytes)")


def _drops(names: list[str], roles: dict[str, str], options: RewriteOptions) -> dict[str, str]:
    """Tensor name -> why it is dropped; refuses patterns that match nothing."""
    keeps = _patterns(options.keep, "--keep")
    drops = _patterns(options.drop, "--drop")
    for flag, patterns in (("--keep", keeps), ("--drop", drops)):
        for pattern in patterns:
            if not any(pattern.search(n) for n in names):
                raise MetainspectError(None, f"{flag} {pattern.pattern!r} matches no tensor")
    if options.drop_optimizer and not any(roles[n] == OPTIMIZER for n in names):
        raise MetainspectError(None, "--drop-optimizer: this checkpoint holds no optimizer state")
    out = {}
    for name in names:
        if keeps and not any(p.search(name) for p in keeps):
            out[name] = "--keep"
            continue
        matched = next((p for p in drops if p.search(name)), None)
        if matched is not None:
            out[name] = f"--drop {matched.pattern}"
        elif options.drop_optimizer and roles[name] == OPTIMIZER:
            out[name] = "--drop-optimizer"
    return out


def _renames(kept: list[str], dropped: list[str], rules: Sequence[str | Rename]) -> dict[str, str]:
    """Kept name -> new name (identity included); refuses collisions and unused rules."""
    renamer = Renamer(rules)
    changed = renamer.mapping(kept)
    unused = renamer.unused()
    if unused:
        probe = Renamer(unused)
        hits = [n for n in dropped if probe(n) != n]
        why = f"matches only dropped tensors (such as {hits[0]!r})" if hits else "matches no tensor"
        raise MetainspectError(None, f"--rename {unused[0].text!r} {why}")
    for old, new in changed.items():
        if not new:
            raise MetainspectError(None, f"--rename: {old!r} would get an empty name")
        if new == OBJECT_GRAPH_KEY:
            raise MetainspectError(None, f"--rename: {old!r} would become {OBJECT_GRAPH_KEY}, the TF2 object graph")
    return {name: changed.get(name, name) for name in kept}


def _piece_sizes(checkpoint: _Input, tensor: _Tensor, new_dtype: dtypes.DType,
                 new_graph: bytes | None) -> tuple[int, list[int]]:
    """Input bytes of the tensor and the output bytes of each of its pieces."""
    if tensor.name == OBJECT_GRAPH_KEY and new_graph is not None:
        return tensor.nbytes, [encode_strings([new_graph])[0]]
    if tensor.dtype.is_numeric:
        sizes = [math.prod(p.shape) * new_dtype.itemsize for p in tensor.pieces]
        return tensor.nbytes, sizes
    if checkpoint.v1 is not None:
        sizes = checkpoint.string_sizes(tensor)
        return sum(sizes), sizes
    return tensor.nbytes, [p.size for p in tensor.pieces]


def _count_shards(decided: _Decided, shard_size: int | None) -> int:
    """The number of data shards the writer will produce (same rules as :func:`_write`)."""
    shards = pieces = current = 0
    previous = None
    for tensor, _, piece, index in _ordered(decided):
        size = decided.piece_sizes[(tensor.name, index)]
        if shard_size is None:
            if piece.shard != previous and pieces:
                shards, pieces, current = shards + 1, 0, 0
            previous = piece.shard
        elif starts_new_shard(current, pieces, size, shard_size):
            shards, pieces, current = shards + 1, 0, 0
        pieces += 1
        current += size
    return shards + 1


def _ordered(decided: _Decided) -> list[tuple[_Tensor, TensorPlan, _Piece, int]]:
    """Kept pieces in the order their bytes are written: the input's shard, then data order."""
    rows = [(tensor, plan, piece, i) for tensor, plan in decided.kept for i, piece in enumerate(tensor.pieces)]
    rows.sort(key=lambda row: (row[2].shard, row[2].offset, row[2].size))
    return rows


def _destination(checkpoint: _Input, out_prefix: str | None, in_place: bool) -> tuple[str | None, str | None]:
    """The output prefix and backup prefix; refuses to write over anything that exists."""
    if in_place:
        if out_prefix is not None and os.path.realpath(out_prefix) != os.path.realpath(checkpoint.prefix):
            raise MetainspectError(out_prefix, "--in-place rewrites the input itself; do not name another output")
        if checkpoint.format == "v1" and len(checkpoint.files) > 1:
            raise MetainspectError(checkpoint.prefix, "--in-place cannot rewrite a sharded V1 checkpoint "
                                                      "(its prefix is a pattern); name an output prefix instead")
        backup = checkpoint.prefix + BACKUP_SUFFIX
        existing = _existing_outputs(backup)
        if checkpoint.format == "v1" and os.path.lexists(backup):
            existing.insert(0, backup)
        if existing:
            raise MetainspectError(existing[0], "a backup of an earlier --in-place rewrite is in the way; "
                                                "move or remove it first")
        return checkpoint.prefix, backup
    if out_prefix is None:
        return None, None
    if out_prefix.endswith(("/", os.sep)) or os.path.isdir(out_prefix):
        raise MetainspectError(out_prefix, "is a directory; give an output prefix such as DIR/model.ckpt")
    if os.path.realpath(out_prefix) == os.path.realpath(checkpoint.prefix):
        raise MetainspectError(out_prefix, "is the input checkpoint; choose another output prefix or use --in-place")
    existing = _existing_outputs(out_prefix)
    if existing:
        raise MetainspectError(existing[0], "already exists; refusing to overwrite (choose another output prefix)")
    return out_prefix, None


def _existing_outputs(prefix: str) -> list[str]:
    pattern = glob.escape(prefix) + ".data-?????-of-?????"
    return [f for f in [prefix + ".index", *sorted(glob.glob(pattern))] if os.path.lexists(f)]


# -- writing --------------------------------------------------------------------------------------


def _write(checkpoint: _Input, plan: RewritePlan, decided: _Decided, options: RewriteOptions,
           progress: ProgressCallback | None) -> list[str]:
    """Stream every kept piece into a new bundle; return the warnings (values a cast lost)."""
    assert plan.output is not None
    overflows: dict[str, tuple[int, str]] = {}
    written = 0  # bytes written by this thread; queued copies are counted by the writer
    writer = BundleWriter(plan.output, shard_size=options.shard_size, sync=options.sync)
    copier = _Copier(checkpoint, writer, decided.new_object_graph, options.verify)
    try:
        previous = None
        for tensor, tensor_plan, piece, index in _ordered(decided):
            if options.shard_size is None and piece.shard != previous:
                writer.start_shard()
                previous = piece.shard
            copied, overflow = copier.write(tensor, tensor_plan, piece)
            if overflow:
                count = overflows.get(tensor.name, (0, ""))[0]
                overflows[tensor.name] = (count + overflow, tensor_plan.new_dtype)
            if not copied:
                written += decided.piece_sizes[(tensor.name, index)]
                if progress is not None:
                    progress(written + writer.copied_bytes, plan.output_bytes)
        writer.wait(None if progress is None else lambda copied: progress(written + copied, plan.output_bytes))
        copier.check_copied()
        if plan.in_place:
            moves = _move_to_backup(checkpoint, plan)
            try:
                decided.written = writer.finish()
            except BaseException:
                _undo(moves)
                raise
        else:
            decided.written = writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        copier.close()
    return [f"{name}: {count} finite value(s) out of {dtype}'s range became inf or nan"
            for name, (count, dtype) in overflows.items()]


class _Copier:
    """Writes pieces of the input into the writer, the cheapest way each allows."""

    def __init__(self, checkpoint: _Input, writer: BundleWriter, new_object_graph: bytes | None, verify: bool) -> None:
        self.checkpoint = checkpoint
        self.writer = writer
        self.new_object_graph = new_object_graph
        self.verify = verify
        self.buffer = bytearray(CHUNK)
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crc32c")
        #: checksums of copied pieces being computed: (CRC, the piece, its file, what it is)
        self._pending: list[tuple[Future[int], _Piece, str, str]] = []

    def close(self) -> None:
        self._checker.shutdown(cancel_futures=True)

    def check_copied(self) -> None:
        """Raise for the first copied piece (in writing order) whose bytes fail their CRC32C."""
        for pending, piece, path, what in self._pending:
            _check_crc(pending.result(), piece, path, what)
        self._pending.clear()

    def write(self, tensor: _Tensor, plan: TensorPlan, piece: _Piece) -> tuple[bool, int]:
        """Write one piece, or queue its copy; return whether it was queued (its bytes then
        count in the writer's ``copied_bytes``) and how many finite values a cast could not
        represent. Queued copies are checked by :meth:`check_copied`."""
        assert plan.new_name is not None
        checkpoint, writer = self.checkpoint, self.writer
        new_dtype = dtypes.from_name(plan.new_dtype)
        if tensor.name == OBJECT_GRAPH_KEY and self.new_object_graph is not None:
            import numpy as np

            writer.add(OBJECT_GRAPH_KEY, np.array(self.new_object_graph, dtype=object), dtype="string")
            return False, 0
        if checkpoint.v1 is not None or (checkpoint.big_endian and not tensor.dtype.is_numeric):
            return False, self._decoded(tensor, plan.new_name, new_dtype, piece)
        full_shape = None if piece.extents is None else tensor.shape
        fd, path = checkpoint.fd(piece.shard), checkpoint.files[piece.shard]
        unchanged = new_dtype == tensor.dtype and not checkpoint.big_endian
        what = f"tensor {tensor.name!r}" + ("" if piece.extents is None else f" slice {slices.slice_spec(piece.extents)}")
        if unchanged:
            if self.verify and tensor.dtype.name == "string":
                _check_strings(fd, piece, path, what)
            elif self.verify and tensor.dtype.is_numeric:  # checksummed on another core while the kernel copies
                self._pending.append((self._checker.submit(_crc_range, fd, piece.offset, piece.size), piece, path, what))
            elif self.verify:
                checkpoint.values(tensor.name)  # variants: decoded, every element's checksum checked
            writer.copy_bytes(plan.new_name, new_dtype.name, piece.shape, fd, piece.offset, piece.size,
                              piece.crc32c, full_shape=full_shape, extents=piece.extents)
            return True, 0
        chunks: Iterable[memoryview] = _read(fd, path, piece.offset, piece.size, self.buffer)
        if self.verify:
            chunks = _checked(chunks, piece, path, what)
        converter = _Converter(tensor.dtype, new_dtype, checkpoint.big_endian)
        size = math.prod(piece.shape) * new_dtype.itemsize
        writer.add_bytes(plan.new_name, new_dtype.name, piece.shape, size, converter(chunks), full_shape=full_shape,
                         extents=piece.extents)
        return False, converter.overflow

    def _decoded(self, tensor: _Tensor, new_name: str, new_dtype: dtypes.DType, piece: _Piece) -> int:
        """V1 tensors and big-endian strings: decode, cast if asked, encode again."""
        values = self.checkpoint.values(tensor.name)
        if piece.extents is not None:
            values = values[slices.bounds(piece.extents, tensor.shape)]
        overflow = 0
        if new_dtype != tensor.dtype:
            values, overflow = _cast(values, new_dtype)
        if piece.extents is None:
            self.writer.add(new_name, values, dtype=new_dtype.name)
        else:
            self.writer.add_slice(new_name, tensor.shape, piece.extents, values, dtype=new_dtype.name)
        return overflow


def _move_to_backup(checkpoint: _Input, plan: RewritePlan) -> list[tuple[str, str]]:
    """Move the input's files under the backup prefix (index first); return the moves done."""
    assert plan.backup is not None
    files = checkpoint.input_files()
    checkpoint.close()
    moves: list[tuple[str, str]] = []
    try:
        for path in files:
            if checkpoint.format == "v1":
                target = plan.backup
            elif path.endswith(".index"):
                target = plan.backup + ".index"
            else:
                target = plan.backup + path[len(checkpoint.prefix):]
            os.rename(path, target)
            moves.append((path, target))
    except BaseException:
        _undo(moves)
        raise
    return moves


def _undo(moves: list[tuple[str, str]]) -> None:
    for original, moved in reversed(moves):
        os.rename(moved, original)


def _read(fd: int, path: str, offset: int, size: int, buffer: bytearray) -> Iterator[memoryview]:
    """``size`` bytes at ``offset`` in chunks of the buffer's length (each chunk reuses the buffer)."""
    view = memoryview(buffer)
    done = 0
    while done < size:
        want = min(len(buffer), size - done)
        got = 0
        while got < want:
            n = os.preadv(fd, [view[got:want]], offset + done + got)
            if n == 0:
                raise TensorCorruptError(path, offset, f"the file ends inside the tensor at offset {offset} "
                                                       f"({size} bytes from there)")
            got += n
        yield view[:want]
        done += want


def _crc_range(fd: int, offset: int, size: int) -> int:
    """CRC32C of ``size`` bytes at ``offset``, read through short-lived memory maps of
    :data:`CHUNK` bytes (no copy, and never more than one window mapped at a time)."""
    running = 0
    for start_at in range(offset, offset + size, CHUNK):
        length = min(CHUNK, offset + size - start_at)
        start = start_at - start_at % mmap.ALLOCATIONGRANULARITY
        with (mmap.mmap(fd, start_at + length - start, offset=start, access=mmap.ACCESS_READ) as window,
              memoryview(window)[start_at - start:] as view):
            running = crc.crc32c(view, running)
    return running


def _check_strings(fd: int, piece: _Piece, path: str, what: str) -> None:
    """Check a string tensor's length checksum and CRC32C without decoding its strings.

    Layout: varint lengths, the masked CRC32C of the lengths as little-endian uint32 (uint64
    beyond 4 GiB), then the bytes; the entry CRC runs over those fixed-width lengths, the
    stored checksum and the bytes. The varints are decoded with numpy, a few passes in all.
    """
    import numpy as np

    count = math.prod(piece.shape)
    if piece.size < count + 4:
        raise TensorCorruptError(path, piece.offset, f"{what}: {piece.size} bytes cannot hold {count} strings")
    start = piece.offset - piece.offset % mmap.ALLOCATIONGRANULARITY
    with mmap.mmap(fd, piece.offset + piece.size - start, offset=start, access=mmap.ACCESS_READ) as window:
        # only temporary views of the map: a view still alive would keep it from closing
        head = np.frombuffer(window[piece.offset - start: piece.offset - start + min(piece.size, 10 * count)], np.uint8)
        ends = np.flatnonzero(head < 0x80)[:count]
        starts = np.concatenate(([0], ends[:-1] + 1)) if count else ends
        widths = ends - starts + 1
        if len(ends) < count or (count and widths.max() > 10):
            raise TensorCorruptError(path, piece.offset, f"{what}: bad string lengths at offset {piece.offset}")
        lengths = np.zeros(count, np.uint64)
        for k in range(int(widths.max()) if count else 0):
            chosen = widths > k
            lengths[chosen] |= (head[starts[chosen] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        if (lengths <= 0xFFFFFFFF).all():
            fixed = lengths.astype("<u4").tobytes()
        else:
            fixed = b"".join(int(n).to_bytes(4 if n <= 0xFFFFFFFF else 8, "little") for n in lengths)
        at = piece.offset - start + (int(ends[-1]) + 1 if count else 0)
        running = crc.crc32c(fixed)
        stored = window[at: at + 4]
        if int.from_bytes(stored, "little") != crc.mask(running):
            raise TensorCorruptError(path, piece.offset, f"{what}: the string length checksum does not match")
        if at + 4 + int(lengths.sum()) != len(window):
            raise TensorCorruptError(path, piece.offset, f"{what}: string lengths do not add up to its {piece.size} bytes")
        with memoryview(window)[at + 4:] as body:
            running = crc.crc32c(body, crc.crc32c(stored, running))
    _check_crc(running, piece, path, what)


def _check_crc(running: int, piece: _Piece, path: str, what: str) -> None:
    """Raise unless the unmasked CRC32C ``running`` matches the piece's stored (masked) one."""
    if crc.mask(running) != piece.crc32c:
        raise crc_mismatch(path, piece.offset, piece.size, what, piece.crc32c, crc.mask(running))


def _checked(chunks: Iterable[memoryview], piece: _Piece, path: str, what: str) -> Iterator[memoryview]:
    """Pass chunks through; after the last one, compare their CRC32C with the stored one."""
    running = 0
    for chunk in chunks:
        running = crc.crc32c(chunk, running)
        yield chunk
    _check_crc(running, piece, path, what)


class _Converter:
    """Chunk by chunk: big-endian to little-endian and/or a cast between floating types."""

    def __init__(self, source: dtypes.DType, target: dtypes.DType, big_endian: bool) -> None:
        self.source = source
        self.target = target
        self.big_endian = big_endian
        self.overflow = 0

    def __call__(self, chunks: Iterable[memoryview]) -> Iterator[memoryview]:
        import numpy as np

        storage = self.source.numpy()
        for chunk in chunks:
            values = np.frombuffer(chunk, dtype=storage)
            if self.big_endian and storage.itemsize > 1:
                unit = storage.itemsize // 2 if storage.kind == "c" else storage.itemsize
                values = values.view(f"u{unit}").byteswap().view(storage)
            if self.target != self.source:
                values, overflow = _cast(values, self.target)
                self.overflow += overflow
            yield np.ascontiguousarray(values).view(np.uint8).data


def _cast(values: np.ndarray, target: dtypes.DType) -> tuple[np.ndarray, int]:
    """``values`` in ``target`` (round to nearest even) and how many finite values did not fit.

    The exact count is only taken when the largest finite magnitude exceeds the target's range.
    """
    import ml_dtypes
    import numpy as np

    storage = target.numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        out = values.astype(storage)
        finite = np.isfinite(values)
        peak = np.max(np.abs(values), where=finite, initial=0) if values.size else 0
        if peak <= ml_dtypes.finfo(storage).max:
            return out, 0
        return out, int(np.count_nonzero(finite & ~np.isfinite(out)))


# -- helpers --------------------------------------------------------------------------------------


def rewrite_object_graph(data: bytes, renamed: dict[str, str], dropped: set[str],
                         rename: Callable[[str], str]) -> tuple[bytes, ObjectGraphChange]:
    """A serialized ``TrackableObjectGraph`` adjusted to renamed and dropped keys.

    ``renamed`` maps old checkpoint keys to new ones, ``dropped`` holds removed keys,
    ``rename`` is applied to every ``full_name``. Returns the input bytes untouched when nothing
    changes.
    """
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    proto = TrackableObjectGraph.FromString(data)
    removed_attributes = removed_slots = keys = full_names = 0
    emptied: set[int] = set()
    for node_id, node in enumerate(proto.nodes):
        kept = [a for a in node.attributes if a.checkpoint_key not in dropped]
        if len(kept) != len(node.attributes):
            removed_attributes += len(node.attributes) - len(kept)
            if not kept:
                emptied.add(node_id)
            kept_copies = [type(a)() for a in kept]
            for copy, original in zip(kept_copies, kept):
                copy.CopyFrom(original)
            del node.attributes[:]
            node.attributes.extend(kept_copies)
        for attribute in node.attributes:
            if attribute.checkpoint_key in renamed:
                attribute.checkpoint_key = renamed[attribute.checkpoint_key]
                keys += 1
            new_full_name = rename(attribute.full_name) if attribute.full_name else attribute.full_name
            if new_full_name != attribute.full_name:
                attribute.full_name = new_full_name
                full_names += 1
    for node in proto.nodes:
        slots = [s for s in node.slot_variables if s.slot_variable_node_id not in emptied]
        if len(slots) != len(node.slot_variables):
            removed_slots += len(node.slot_variables) - len(slots)
            copies = [type(s)() for s in slots]
            for copy_slot, slot in zip(copies, slots):
                copy_slot.CopyFrom(slot)
            del node.slot_variables[:]
            node.slot_variables.extend(copies)
    change = ObjectGraphChange(removed_attributes, removed_slots, keys, full_names)
    if not change.changed:
        return data, change
    if any(node.HasField("has_checkpoint_values") for node in proto.nodes):
        for node_id, value in enumerate(_has_checkpoint_values(proto)):
            proto.nodes[node_id].has_checkpoint_values.value = value
    return proto.SerializeToString(), change


def _has_checkpoint_values(proto: object) -> list[bool]:
    """TensorFlow's rule: a node with attributes, slot variables or a registered saver has
    values, and so does every node it can be reached from through ``children``."""
    nodes = proto.nodes  # type: ignore[attr-defined]
    parents: dict[int, set[int]] = {}
    marked: set[int] = set()
    for node_id, node in enumerate(nodes):
        if node.attributes or node.slot_variables or node.HasField("registered_saver"):
            marked.add(node_id)
        for child in node.children:
            parents.setdefault(child.node_id, set()).add(node_id)
    pending = list(marked)
    while pending:
        for parent in parents.pop(pending.pop(), ()):
            marked.add(parent)
            pending.append(parent)
    return [node_id in marked for node_id in range(len(nodes))]


def parse_cast(text: str) -> tuple[dtypes.DType, dtypes.DType]:
    """``"float32:float16"`` -> the two types; refuses anything but floating types."""
    source, sep, target = text.partition(":")
    if not sep:
        raise MetainspectError(None, f"--cast {text!r}: expected SRC:DST, e.g. float32:float16")
    try:
        pair = dtypes.from_name(source.strip()), dtypes.from_name(target.strip())
    except ValueError as exc:
        raise MetainspectError(None, f"--cast {text!r}: {exc}") from None
    for kind in pair:
        if not kind.is_floating:
            raise MetainspectError(None, f"--cast {text!r}: {kind.name} is not a floating-point type; "
                                         "only float tensors can be cast")
    if pair[0] == pair[1]:
        raise MetainspectError(None, f"--cast {text!r}: source and target types are the same")
    return pair


def parse_size(text: str) -> int:
    """``"512M"``, ``"1G"``, ``"1.5GiB"``, ``"4096"`` -> bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise MetainspectError(None, f"--shard-size {text!r}: expected a size such as 512M, 1G or a byte count")
    value = int(float(match[1]) * _UNITS[match[2].lower()])
    if value <= 0:
        raise MetainspectError(None, f"--shard-size {text!r}: must be more than 0 bytes")
    return value


def _patterns(texts: Sequence[str], flag: str) -> list[re.Pattern[str]]:
    out = []
    for text in texts:
        try:
            out.append(re.compile(text))
        except re.error as exc:
            raise MetainspectError(None, f"{flag} {text!r}: bad regular expression: {exc}") from None
    return out


def _flat_bytes(values: np.ndarray) -> list[bytes]:
    return [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values.reshape(-1).tolist()]
