"""Open a TensorFlow checkpoint (V2 bundle or legacy V1) from any path a user might give.

:func:`open_checkpoint` accepts a prefix, an ``.index`` or ``.data-…`` file, a V1 file, pattern
or shard, a directory with a ``checkpoint`` state file, a SavedModel directory, or a directory
holding exactly one checkpoint. It recognises files by content (the table magic), reads only
the index when opening, and reads tensors on demand as read-only numpy arrays.
"""

from __future__ import annotations

import difflib
import glob
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY, ObjectGraph
from metainspect.errors import CorruptError, MetainspectError, NotFoundError, WrongKindError
from metainspect.formats import dtypes, slices
from metainspect.formats.bundle import Bundle
from metainspect.formats.checkpoint_state import STATE_FILE, latest_checkpoint
from metainspect.formats.detect import DATA_SHARD, SAVED_MODEL_FILES
from metainspect.formats.table import has_magic
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto

if TYPE_CHECKING:
    import numpy as np

    from metainspect.formats.v1 import V1Checkpoint

_V1_SHARD = re.compile(r"^(?P<base>.+)-(?P<id>\d{5})-of-(?P<total>\d{5})$")
_GRAPH_SUFFIXES = (".meta", ".pb", ".pbtxt")


class TensorLocation(NamedTuple):
    """One stored piece of a tensor (a NamedTuple: listing builds one per tensor, cheaply)."""

    #: data shard path (V2) or table file (V1)
    file: str
    #: byte offset in that file (V1: offset of the block holding the record)
    offset: int
    #: bytes stored
    size: int
    #: slice spec like ``"0,5:0,4"`` for a partition, None for a whole tensor
    slice: str | None


class TensorInfo(NamedTuple):
    """What the index says about one tensor (immutable; a NamedTuple for listing speed)."""

    name: str
    #: TensorFlow dtype name, e.g. ``float32``, ``bfloat16``, ``string``, ``variant``
    dtype: str
    shape: tuple[int, ...]
    #: bytes stored for this tensor (sum over slices; strings and V1 records: stored size)
    nbytes: int
    locations: tuple[TensorLocation, ...]
    #: True when the tensor is stored as slices (a partitioned variable)
    partitioned: bool = False

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class CorruptTensor:
    """One finding of :meth:`Checkpoint.verify`."""

    name: str
    file: str
    offset: int
    message: str


class _Reader(Protocol):
    def names(self) -> list[str]: ...
    def info(self, name: str) -> TensorInfo: ...
    def infos(self) -> list[TensorInfo]: ...
    def read(self, name: str, verify: bool) -> np.ndarray: ...
    def close(self) -> None: ...


class _BundleReader:
    """Adapts a V2 :class:`Bundle` to the checkpoint API."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    def names(self) -> list[str]:
        return self.bundle.names()

    def info(self, name: str) -> TensorInfo:
        entry = self.bundle.entry(name)
        shape = tuple([d.size for d in entry.shape.dim])
        if not entry.slices:  # the common case, kept short: listing calls this for every tensor
            location = TensorLocation(self.bundle.shard_path(entry.shard_id), entry.offset, entry.size, None)
            return TensorInfo(name, dtypes.name_of(entry.dtype), shape, entry.size, (location,))
        locations = tuple(
            TensorLocation(self.bundle.shard_path(part.shard_id), part.offset, part.size, slices.slice_spec(extents or []))
            for extents, part in self.bundle.pieces(name)
        )
        return TensorInfo(name, dtypes.name_of(entry.dtype), shape, sum(loc.size for loc in locations), locations, True)

    def infos(self) -> list[TensorInfo]:
        """Every tensor's info in key order: the listing path, kept lean for 10^4-10^5 tensors.

        Entries are parsed once and not cached; shapes and dtype names are shared between
        tensors with equal ones (most checkpoints repeat a few hundred shapes).
        """
        parse = BundleEntryProto.FromString
        shard_path = self.bundle.shard_path
        new = tuple.__new__  # the NamedTuples' own __new__ is Python code: 0.4 us a record
        shapes: dict[bytes, tuple[int, ...]] = {}
        names: dict[int, str] = {}
        result = []
        for name, raw in self.bundle.raw_entries():
            entry = parse(raw)
            if entry.slices:
                result.append(self.info(name))
                continue
            shape_proto = entry.shape
            shape_key = shape_proto.SerializeToString()
            shape = shapes.get(shape_key)
            if shape is None:
                shape = shapes[shape_key] = tuple([d.size for d in shape_proto.dim])
            dtype = names.get(entry.dtype)
            if dtype is None:
                dtype = names[entry.dtype] = dtypes.name_of(entry.dtype)
            size = entry.size
            location = new(TensorLocation, (shard_path(entry.shard_id), entry.offset, size, None))
            result.append(new(TensorInfo, (name, dtype, shape, size, (location,), False)))
        return result

    def read(self, name: str, verify: bool) -> np.ndarray:
        return self.bundle.read(name, verify=verify)

    def close(self) -> None:
        self.bundle.close()


class _V1Reader:
    """Adapts a :class:`V1Checkpoint` to the checkpoint API (V1 has no tensor CRC)."""

    def __init__(self, checkpoint: V1Checkpoint) -> None:
        self.checkpoint = checkpoint

    def names(self) -> list[str]:
        return self.checkpoint.names()

    def info(self, name: str) -> TensorInfo:
        tensor = self.checkpoint.tensor(name)
        whole = len(tensor.slices) == 1 and slices.is_full(tensor.slices[0][1], tensor.shape)
        locations = []
        for table_index, extents in tensor.slices:
            offset, size = self.checkpoint.location(name, extents, table_index)
            spec = None if whole else slices.slice_spec(extents)
            locations.append(TensorLocation(self.checkpoint.files[table_index], offset, size, spec))
        return TensorInfo(name, tensor.dtype.name, tensor.shape, sum(loc.size for loc in locations),
                          tuple(locations), not whole)

    def infos(self) -> list[TensorInfo]:
        return [self.info(name) for name in self.names()]

    def read(self, name: str, verify: bool) -> np.ndarray:
        return self.checkpoint.read(name)

    def close(self) -> None:
        self.checkpoint.close()


class Checkpoint:
    """An opened checkpoint: list tensors, read them, verify them."""

    def __init__(
        self, *, prefix: str, format: str, data_files: tuple[str, ...], index_file: str | None,
        num_shards: int, endianness: str, notes: tuple[str, ...], reader: _Reader, verify: bool,
    ) -> None:
        self.prefix = prefix
        self.format = format
        self.data_files = data_files
        self.index_file = index_file
        self.num_shards = num_shards
        self.endianness = endianness
        self.notes = notes
        self._reader = reader
        self._verify = verify
        self._names = reader.names()
        self._name_set = frozenset(self._names)
        self._object_graph: ObjectGraph | None = None

    def keys(self) -> list[str]:
        """Tensor names sorted bytewise like TensorFlow, slice keys hidden."""
        return list(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._name_set

    def _check(self, name: str) -> None:
        if name not in self._name_set:
            close = difflib.get_close_matches(name, self._names, n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(f"no tensor {name!r} in checkpoint {self.prefix}{hint}")

    def info(self, name: str) -> TensorInfo:
        """Dtype, shape, stored size and locations of ``name`` (KeyError if absent)."""
        self._check(name)
        return self._reader.info(name)

    def infos(self) -> list[TensorInfo]:
        """:meth:`info` of every tensor, in key order."""
        return self._reader.infos()

    def dtype(self, name: str) -> str:
        """TensorFlow dtype name of ``name``."""
        return self.info(name).dtype

    def shape(self, name: str) -> tuple[int, ...]:
        """Full shape of ``name``."""
        return self.info(name).shape

    def nbytes(self, name: str) -> int:
        """Bytes stored for ``name``."""
        return self.info(name).nbytes

    def get(self, name: str) -> np.ndarray:
        """Read ``name`` as a read-only array (strings: bytes objects; variants: protos)."""
        self._check(name)
        return self._reader.read(name, self._verify)

    def verify(self) -> list[CorruptTensor]:
        """Read every tensor and check every checksum; return the findings, never raise for one."""
        findings = []
        for name in self._names:
            try:
                self._reader.read(name, True)
            except MetainspectError as exc:
                offset = getattr(exc, "offset", None)
                if offset is None:
                    offset = _first_offset(self._reader, name)
                findings.append(CorruptTensor(name, exc.path or self.prefix, offset, exc.message))
        return findings

    def object_graph(self) -> ObjectGraph | None:
        """The TF2 object graph, or None for name-based (TF1) and V1 checkpoints."""
        if self._object_graph is None and OBJECT_GRAPH_KEY in self._name_set:
            value = self.get(OBJECT_GRAPH_KEY)
            if value.shape != () or not isinstance(value[()], bytes):
                raise CorruptError(self.prefix, f"{OBJECT_GRAPH_KEY} is not a string scalar")
            self._object_graph = ObjectGraph.from_bytes(value[()], self.index_file or self.prefix)
        return self._object_graph

    def close(self) -> None:
        """Release the files (arrays already returned stay valid)."""
        self._reader.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Checkpoint {self.format} {self.prefix!r}: {len(self)} tensors>"


def _first_offset(reader: _Reader, name: str) -> int:
    try:
        return reader.info(name).locations[0].offset
    except (MetainspectError, IndexError):
        return 0


@dataclass(frozen=True)
class _Target:
    format: str
    #: V2 prefix, V1 file or V1 glob pattern
    prefix: str
    #: V1 table files (empty for V2)
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def open_checkpoint(path: str | os.PathLike[str], *, verify: bool = True) -> Checkpoint:
    """Open the checkpoint named by ``path`` in any of the accepted forms (module docstring)."""
    target = resolve(os.fspath(path))
    if target.format == "v2":
        bundle = Bundle(target.prefix)
        return Checkpoint(
            prefix=target.prefix, format="v2",
            data_files=tuple(bundle.shard_path(i) for i in range(bundle.num_shards)),
            index_file=bundle.index_path, num_shards=bundle.num_shards,
            endianness="big" if bundle.big_endian else "little", notes=target.notes,
            reader=_BundleReader(bundle), verify=verify,
        )
    from metainspect.formats.v1 import V1Checkpoint

    v1 = V1Checkpoint(target.files)
    return Checkpoint(
        prefix=target.prefix, format="v1", data_files=target.files, index_file=None,
        num_shards=len(target.files), endianness="little", notes=target.notes,
        reader=_V1Reader(v1), verify=verify,
    )


def resolve(path: str) -> _Target:
    """Decide which checkpoint ``path`` means; NotFoundError/WrongKindError/CorruptError if none."""
    if not path:
        raise NotFoundError(None, "empty checkpoint path")
    if os.path.isdir(path):
        return _from_directory(path)
    name = os.path.basename(path)
    if os.path.isfile(path):
        if name.endswith(".index"):
            return _Target("v2", path[: -len(".index")])
        match = DATA_SHARD.match(name)
        if match:
            prefix = os.path.join(os.path.dirname(path), match["prefix"])
            if not os.path.exists(prefix + ".index"):
                raise NotFoundError(prefix + ".index", f"the index of data file {name} is missing")
            return _Target("v2", prefix)
        if os.path.exists(path + ".index"):
            return _Target("v2", path)
        if has_magic(path):
            return _v1_from_file(path)
        if name == STATE_FILE:
            return _from_directory(os.path.dirname(path) or ".")
        if name.endswith(".meta") and os.path.exists(path[: -len(".meta")] + ".index"):
            raise _graph_error(path, f"is a graph (MetaGraphDef); its checkpoint is {path[: -len('.meta')]}")
        if name.endswith(_GRAPH_SUFFIXES):
            raise _graph_error(path)
        raise CorruptError(path, "not a TensorFlow checkpoint index/table (bad magic)")
    if os.path.exists(path + ".index"):
        return _Target("v2", path)
    if glob.has_magic(name):
        files = sorted(glob.glob(os.path.join(glob.escape(os.path.dirname(path)), name)))
        if files:
            return _v1_target(path, files)
    if os.path.exists(path + ".meta"):
        raise _graph_error(path + ".meta", f"{path} has only a graph ({name}.meta), no checkpoint data")
    raise NotFoundError(path, f"no checkpoint here: neither {name}.index nor {name} exists")


def _graph_error(path: str, lead: str | None = None) -> WrongKindError:
    what = lead or "is a graph (MetaGraphDef/SavedModel), not a checkpoint"
    return WrongKindError(path, f"{what}; use `metainspect nodes {path}` to inspect it")


def _v1_from_file(path: str) -> _Target:
    """A V1 table file, or every shard of its set when its name is ``BASE-NNNNN-of-MMMMM``."""
    directory, name = os.path.split(path)
    match = _V1_SHARD.match(name)
    if not match:
        return _Target("v1", path, (path,))
    total = int(match["total"])
    pattern = os.path.join(directory, f"{match['base']}-?????-of-{match['total']}")
    expected = [os.path.join(directory, f"{match['base']}-{i:05d}-of-{total:05d}") for i in range(total)]
    missing = [f for f in expected if not os.path.exists(f)]
    if missing:
        raise NotFoundError(missing[0], f"V1 shard {len(expected) - len(missing)} of {total} is missing")
    return _Target("v1", pattern, tuple(expected))


def _v1_target(pattern: str, files: list[str], notes: tuple[str, ...] = ()) -> _Target:
    for f in files:
        if not has_magic(f):
            raise CorruptError(f, "not a TensorFlow checkpoint index/table (bad magic)")
    return _Target("v1", pattern, tuple(files), notes)


def _from_directory(directory: str) -> _Target:
    notes: tuple[str, ...] = ()
    if os.path.isfile(os.path.join(directory, STATE_FILE)):
        try:
            latest = latest_checkpoint(directory)
        except (NotFoundError, CorruptError) as exc:
            notes = (f"ignoring the state file: {exc}",)
        else:
            target = resolve(latest.prefix)
            return _Target(target.format, target.prefix, target.files, latest.notes + target.notes)
    if any(os.path.isfile(os.path.join(directory, f)) for f in SAVED_MODEL_FILES):
        prefix = os.path.join(directory, "variables", "variables")
        if not os.path.exists(prefix + ".index"):
            raise NotFoundError(prefix + ".index", "this SavedModel has no variables")
        return _Target("v2", prefix, notes=notes)
    found = _scan(directory)
    if len(found) == 1:
        target = resolve(found[0])
        return _Target(target.format, target.prefix, target.files, notes + target.notes)
    if found:
        listed = ", ".join(os.path.basename(f) for f in found)
        raise WrongKindError(directory, f"holds {len(found)} checkpoints ({listed}); name one of them")
    graphs = [f for f in sorted(os.listdir(directory)) if f.endswith(_GRAPH_SUFFIXES)]
    if graphs:
        raise _graph_error(os.path.join(directory, graphs[0]), "holds a graph but no checkpoint")
    raise NotFoundError(directory, "no checkpoint in this directory")


def _scan(directory: str) -> list[str]:
    """Checkpoint prefixes (V2), files (V1) and V1 shard patterns found directly in ``directory``."""
    found: set[str] = set()
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if DATA_SHARD.match(name) or not os.path.isfile(path) or not has_magic(path):
            continue
        if name.endswith(".index"):
            found.add(path[: -len(".index")])
            continue
        match = _V1_SHARD.match(name)
        found.add(os.path.join(directory, f"{match['base']}-?????-of-{match['total']}") if match else path)
    return sorted(found)
