"""What a rewrite does to each tensor, decided on the input's index before anything is written."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from metainspect.checkpoint import CheckpointFormat, StoredPiece
from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.checkpoint.renames import Rename, Renamer
from metainspect.checkpoint.roles import Role, classify
from metainspect.checkpoint.selection import Dropped, select
from metainspect.errors import Hint, MetainspectError
from metainspect.formats import dtypes
from metainspect.formats.bundle_codec import TensorCorruptError, encode_strings
from metainspect.formats.bundle_writer import BundleFiles, starts_new_shard
from metainspect.formats.filesystem import filesystem, is_url
from metainspect.rewrite.source import RewriteSource, SourceTensor, numeric_size

__all__ = [
    "BACKUP_SUFFIX", "ObjectGraphChange", "PlannedTensors", "RewriteOptions", "RewritePlan", "TensorChange",
    "TensorPlan", "cast_types", "rewrite_object_graph",
]

#: in-place rewrites move the input to PREFIX + this (a checkpoint prefix of its own)
BACKUP_SUFFIX = ".bak"


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
    #: ``(source, target)`` floating types: every ``source`` tensor becomes ``target``, e.g.
    #: ``("float32", "float16")``
    cast: tuple[str, str] | None = None
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
        if self.cast is not None and not isinstance(self.cast, str):  # a str is refused by cast_types
            object.__setattr__(self, "cast", tuple(self.cast))


@dataclass(frozen=True, kw_only=True)
class TensorChange:
    """What a rewrite and a conversion say of each tensor, and what follows from it."""

    name: str
    #: None when the tensor is left out
    new_name: str | None
    #: TensorFlow dtype name in the input, and in the output (differs after a cast)
    dtype: str
    new_dtype: str
    shape: tuple[int, ...]
    #: bytes stored for it in the input
    nbytes: int
    #: bytes of it in the output (0 when left out)
    new_nbytes: int
    #: why it is left out (None when kept): the selection rule and the pattern that matched, or
    #: ``object_graph`` (a conversion to safetensors or npz)
    drop_reason: Dropped | None = None

    @property
    def dropped(self) -> bool:
        return self.new_name is None

    @property
    def renamed(self) -> bool:
        return self.new_name is not None and self.new_name != self.name

    @property
    def cast(self) -> bool:
        return self.new_name is not None and self.new_dtype != self.dtype

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"shape": list(self.shape),
                                           "drop_reason": self.drop_reason._asdict() if self.drop_reason else None}


T = TypeVar("T", bound=TensorChange)


class PlannedTensors(Generic[T]):
    """The tensors of a rewrite or conversion plan, and their counts and sizes (a mixin)."""

    tensors: tuple[T, ...]

    @property
    def kept(self) -> list[T]:
        return [t for t in self.tensors if not t.dropped]

    @property
    def dropped(self) -> list[T]:
        return [t for t in self.tensors if t.dropped]

    @property
    def renamed(self) -> list[T]:
        return [t for t in self.tensors if t.renamed]

    @property
    def cast(self) -> list[T]:
        return [t for t in self.tensors if t.cast]

    @property
    def input_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def output_bytes(self) -> int:
        return sum(t.new_nbytes for t in self.tensors)

    def summary(self) -> dict[str, int]:
        """The ``summary`` object of a plan's JSON."""
        return {"tensors": len(self.tensors), "kept": len(self.kept), "dropped": len(self.dropped),
                "renamed": len(self.renamed), "cast": len(self.cast), "input_bytes": self.input_bytes,
                "output_bytes": self.output_bytes, "dropped_bytes": sum(t.nbytes for t in self.dropped)}


@dataclass(frozen=True, kw_only=True)
class TensorPlan(TensorChange):
    """What happens to one tensor. Sizes are data bytes as stored in a V2 bundle."""

    partitioned: bool
    role: Role


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
class RewritePlan(PlannedTensors[TensorPlan]):
    """Every change a rewrite makes, computed before anything is written."""

    source: str
    source_format: CheckpointFormat
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

    def to_json(self) -> dict[str, object]:
        """The plan as plain data (``rewrite --json`` adds each tensor's ``dropped_by`` in flag words)."""
        return {
            "source": self.source, "source_format": self.source_format, "source_shards": self.source_shards,
            "output": self.output, "in_place": self.in_place, "backup": self.backup,
            "tensors": [t.to_json() for t in self.tensors],
            "object_graph": dataclasses.asdict(self.object_graph) if self.object_graph else None,
            "summary": self.summary() | {"output_shards": self.output_shards},
            "shard_size": self.shard_size, "verify": self.verify, "sync": self.sync, "notes": list(self.notes),
            "warnings": list(self.warnings),
            "written": None if self.written is None else {
                "index_file": self.written.index_file, "data_files": list(self.written.data_files),
                "data_bytes": self.written.data_bytes,
                "bytes": sum(filesystem(f).size(f) for f in (self.written.index_file, *self.written.data_files)),
            },
        }


@dataclass
class Decided:
    """What writing needs beyond the public plan."""

    #: (tensor, its plan) of every kept tensor, in input order
    kept: list[tuple[SourceTensor, TensorPlan]]
    new_object_graph: bytes | None
    written: BundleFiles | None = None
    #: output size of every kept piece, by (tensor name, piece index)
    piece_sizes: dict[tuple[str, int], int] = field(default_factory=dict)

    def ordered(self, source: RewriteSource) -> list[tuple[SourceTensor, TensorPlan, StoredPiece, int]]:
        """Kept pieces in the order their bytes are written: the input's shard, then data order
        (V1: name order, V1 records have no data offsets)."""
        rows = [(tensor, plan, piece, i) for tensor, plan in self.kept for i, piece in enumerate(tensor.pieces)]
        if source.format == "v1":
            rows.sort(key=lambda row: row[2].shard)
        else:
            rows.sort(key=lambda row: (row[2].shard, row[2].offset, row[2].size))
        return rows


def decide(source: RewriteSource, options: RewriteOptions, out_prefix: str | None,
           in_place: bool) -> tuple[RewritePlan, Decided]:
    """The plan of a rewrite of ``source``; MetainspectError for anything it refuses."""
    graph_bytes = source.checkpoint.object_graph_bytes()
    graph = source.checkpoint.object_graph()
    roles = {t.name: classify(t.name, graph) for t in source.tensors}
    selected = select([t.name for t in source.tensors if t.name != OBJECT_GRAPH_KEY], roles, keep=options.keep,
                      drop=options.drop, drop_optimizer=options.drop_optimizer, renames=options.renames)
    new_names = {s.name: s.new_name for s in selected if s.new_name is not None}
    dropped_by = {s.name: s.dropped_by for s in selected if s.dropped_by is not None}
    cast = cast_types(options.cast) if options.cast is not None else None
    if cast and not any(t.dtype == cast[0] for t in source.tensors if t.name in new_names):
        hint = Hint("cast", options.cast)
        raise MetainspectError(None, f"{hint.text}: no {cast[0].name} tensor to cast"
                                     + (" among those kept" if dropped_by else ""), hint)
    new_graph, graph_change = None, None
    if graph_bytes is not None:
        new_graph, graph_change = rewrite_object_graph(
            graph_bytes, {old: new for old, new in new_names.items() if old != new}, set(dropped_by),
            Renamer(options.renames))
    decided = Decided([], new_graph if graph_change and graph_change.changed else None)
    plans = []
    for tensor in source.tensors:
        dtype = tensor.dtype
        new_name = OBJECT_GRAPH_KEY if tensor.name == OBJECT_GRAPH_KEY else new_names.get(tensor.name)
        new_dtype = cast[1] if cast and dtype == cast[0] and new_name is not None else dtype
        nbytes, sizes = _piece_sizes(source, tensor, new_dtype, decided.new_object_graph)
        tensor_plan = TensorPlan(name=tensor.name, new_name=new_name, dtype=dtype.name, new_dtype=new_dtype.name,
                                 shape=tensor.shape, nbytes=nbytes, new_nbytes=sum(sizes) if new_name is not None else 0,
                                 partitioned=tensor.partitioned, role=roles[tensor.name],
                                 drop_reason=dropped_by.get(tensor.name))
        plans.append(tensor_plan)
        if new_name is not None:
            decided.kept.append((tensor, tensor_plan))
            decided.piece_sizes.update({(tensor.name, i): size for i, size in enumerate(sizes)})
    if source.format == "v2":
        _check_data_files(source, decided)
    output, backup = _destination(source, out_prefix, in_place)
    plan = RewritePlan(
        source=source.prefix, source_format=source.format, source_shards=len(source.files),
        output=output, in_place=in_place, backup=backup, tensors=tuple(plans), object_graph=graph_change,
        output_shards=_count_shards(source, decided, options.shard_size), shard_size=options.shard_size,
        verify=options.verify, sync=options.sync, notes=source.notes,
    )
    return plan, decided


def _check_data_files(source: RewriteSource, decided: Decided) -> None:
    """Every data shard the output needs exists and holds the bytes the index promises."""
    for tensor, _ in decided.kept:
        for piece in tensor.pieces:
            size = source.shard(piece.shard).size
            end = piece.offset + piece.size
            if end > size:
                raise TensorCorruptError(piece.file, piece.offset, f"tensor {tensor.name!r}: bytes {piece.offset}..{end} "
                                                                   f"extend beyond the file ({size} bytes)")


def _piece_sizes(source: RewriteSource, tensor: SourceTensor, new_dtype: dtypes.DType,
                 new_graph: bytes | None) -> tuple[int, list[int]]:
    """Input bytes of the tensor and the output bytes of each of its pieces (as V2 stores them)."""
    if tensor.name == OBJECT_GRAPH_KEY and new_graph is not None:
        return tensor.nbytes, [encode_strings([new_graph])[0]]
    if tensor.dtype.is_numeric:
        stored = sum(numeric_size(p, tensor.dtype) for p in tensor.pieces)
        return stored, [numeric_size(p, new_dtype) for p in tensor.pieces]
    if source.format == "v1":
        sizes = source.string_sizes(tensor)
        return sum(sizes), sizes
    return tensor.nbytes, [p.size for p in tensor.pieces]


def _count_shards(source: RewriteSource, decided: Decided, shard_size: int | None) -> int:
    """The number of data shards the writer will produce (same rules as the writing)."""
    shards = pieces = current = 0
    previous = None
    for tensor, _, piece, index in decided.ordered(source):
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


def _destination(checkpoint: RewriteSource, out_prefix: str | None, in_place: bool) -> tuple[str | None, str | None]:
    """The output prefix and backup prefix; refuses to write over anything that exists."""
    if in_place:
        hint = Hint("in_place")
        if is_url(checkpoint.prefix):
            raise MetainspectError(checkpoint.prefix, "a checkpoint behind a URL cannot be rewritten in place "
                                                      "(no backup can be moved aside); write a new prefix")
        if out_prefix is not None and (is_url(out_prefix) or os.path.realpath(out_prefix) != os.path.realpath(checkpoint.prefix)):
            raise MetainspectError(out_prefix, f"{hint.text} rewrites the input itself; do not name another output",
                                   hint)
        if checkpoint.format == "v1" and len(checkpoint.files) > 1:
            raise MetainspectError(checkpoint.prefix, f"{hint.text} cannot rewrite a sharded V1 checkpoint "
                                                      "(its prefix is a pattern); name an output prefix instead", hint)
        backup = checkpoint.prefix + BACKUP_SUFFIX
        existing = _existing_outputs(backup)
        if checkpoint.format == "v1" and os.path.lexists(backup):
            existing.insert(0, backup)
        if existing:
            raise MetainspectError(existing[0], f"a backup of an earlier {hint.text} rewrite is in the way; "
                                                "move or remove it first", hint)
        return checkpoint.prefix, backup
    if out_prefix is None:
        return None, None
    files = filesystem(out_prefix)
    if out_prefix.endswith(("/", os.sep)) or files.isdir(out_prefix):
        raise MetainspectError(out_prefix, "is a directory; give an output prefix such as DIR/model.ckpt")
    same = out_prefix == checkpoint.prefix if is_url(out_prefix) or is_url(checkpoint.prefix) else \
        os.path.realpath(out_prefix) == os.path.realpath(checkpoint.prefix)
    if same:
        hint = Hint("other_output")
        raise MetainspectError(out_prefix, f"is the input checkpoint; {hint.text}", hint)
    existing = _existing_outputs(out_prefix)
    if existing:
        raise MetainspectError(existing[0], "already exists; refusing to overwrite (choose another output prefix)")
    return out_prefix, None


def _existing_outputs(prefix: str) -> list[str]:
    files = filesystem(prefix)
    if not files.listable:
        return [f for f in [prefix + ".index"] if files.exists(f)]
    pattern = files.escape(prefix) + ".data-?????-of-?????"
    return [f for f in [prefix + ".index", *files.glob(pattern)] if files.exists(f)]


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


def cast_types(cast: tuple[str, str]) -> tuple[dtypes.DType, dtypes.DType]:
    """The two types of ``RewriteOptions.cast``; refuses anything but two different floating types."""
    hint = Hint("cast", cast)
    if isinstance(cast, str) or len(cast) != 2:
        raise MetainspectError(None, f"cast {cast!r}: expected (source, target), e.g. ('float32', 'float16')")
    try:
        pair = dtypes.from_name(cast[0].strip()), dtypes.from_name(cast[1].strip())
    except ValueError as exc:
        raise MetainspectError(None, f"{hint.text}: {exc}", hint) from None
    for kind in pair:
        if not kind.is_floating:
            raise MetainspectError(None, f"{hint.text}: {kind.name} is not a floating-point type; "
                                         "only float tensors can be cast", hint)
    if pair[0] == pair[1]:
        raise MetainspectError(None, f"{hint.text}: source and target types are the same", hint)
    return pair
