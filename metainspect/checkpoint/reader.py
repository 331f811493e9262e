"""Open a TensorFlow checkpoint (V2 bundle or legacy V1) from any path a user might give.

:func:`open_checkpoint` accepts a prefix, an ``.index`` or ``.data-…`` file, a V1 file, pattern
or shard, a directory with a ``checkpoint`` state file, a SavedModel directory, or a directory
holding exactly one checkpoint, as a local path or a URL. It recognises files by content (the
table magic), reads only the index when opening, and reads tensors on demand as read-only numpy
arrays (from a URL: only the byte ranges they occupy).
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from google.protobuf.message import DecodeError

from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY, ObjectGraph
from metainspect.checkpoint.tensor import StoredTensor
from metainspect.errors import (
    CorruptError,
    Hint,
    LfsPointerError,
    MetainspectError,
    NotFoundError,
    TensorNotFoundError,
    WrongKindError,
)
from metainspect.formats import dtypes, slices
from metainspect.formats.bundle import Bundle, raw_key
from metainspect.formats.bundle_codec import (
    Endianness,
    check_entry,
    decode_entry,
    decode_numbers,
    shape_of,
    size_mismatch,
)
from metainspect.formats.checkpoint_state import STATE_FILE, latest_checkpoint
from metainspect.formats.detect import DATA_SHARD, SAVED_MODEL_FILES
from metainspect.formats.filesystem import FileSystem, filesystem, is_url
from metainspect.formats.filesystem import storage_options as using_storage_options
from metainspect.formats.graph_file import read_graph_file
from metainspect.formats.table import has_magic
from metainspect.progress import Progress, silent
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto
from metainspect.suggest import did_you_mean

if TYPE_CHECKING:
    import numpy as np

    from metainspect.formats.source import ByteSource
    from metainspect.formats.v1 import V1Checkpoint

__all__ = [
    "Checkpoint", "CheckpointFormat", "CorruptTensor", "StoredPiece", "TensorInfo", "TensorLocation",
    "open_checkpoint", "resolve",
]

CheckpointFormat = Literal["v1", "v2"]
_GRAPH_SUFFIXES = (".meta", ".pb", ".pbtxt")


class TensorLocation(NamedTuple):
    """Where one stored piece of a tensor lies (a NamedTuple: listing builds one per tensor, cheaply)."""

    #: data shard path (V2) or table file (V1)
    file: str
    #: byte offset in that file (V1: offset of the block holding the record)
    offset: int
    #: bytes stored
    size: int
    #: slice spec like ``"0,5:0,4"`` for a partition, None for a whole tensor
    slice: str | None


class StoredPiece(NamedTuple):
    """One stored piece of a tensor with what reading its bytes needs: a
    :class:`TensorLocation` (its first four fields) plus the shard, checksum, shape and extents."""

    file: str
    offset: int
    size: int
    slice: str | None
    #: index of ``file`` in :attr:`Checkpoint.data_files`
    shard: int
    #: masked CRC32C of the stored bytes (0 in V1, which has none)
    crc32c: int
    #: shape of this piece
    shape: tuple[int, ...]
    #: ``(start, length)`` per dimension of a slice, None for a whole tensor
    extents: tuple[slices.Extent, ...] | None

    @property
    def location(self) -> TensorLocation:
        return TensorLocation(self.file, self.offset, self.size, self.slice)


class TensorInfo(NamedTuple):
    """What the index says about one tensor (immutable; a NamedTuple for listing speed)."""

    name: str
    #: TensorFlow dtype name, e.g. ``float32``, ``bfloat16``, ``string``, ``variant``
    dtype: str
    shape: tuple[int, ...]
    #: the tensor's bytes (elements x item size) in every format; for strings and variants,
    #: whose size is what they hold, the bytes stored (see :attr:`stored_nbytes`)
    nbytes: int
    locations: tuple[TensorLocation, ...]
    #: True when the tensor is stored as slices (a partitioned variable)
    partitioned: bool = False

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def stored_nbytes(self) -> int:
        """The bytes the file holds for this tensor (sum over slices): V1 records add their
        serialization to :attr:`nbytes`; in V2 the two differ only for strings (length varints)."""
        return sum(loc.size for loc in self.locations)


@dataclass(frozen=True)
class CorruptTensor:
    """One finding of :meth:`Checkpoint.verify`."""

    name: str
    file: str
    offset: int
    message: str


class _Reader(Protocol):
    def names(self) -> list[str]: ...
    def header(self, name: str) -> tuple[str, tuple[int, ...]]: ...
    def info(self, name: str) -> TensorInfo: ...
    def infos(self) -> list[TensorInfo]: ...
    def pieces(self, name: str) -> tuple[StoredPiece, ...]: ...
    def read(self, name: str, verify: bool) -> np.ndarray: ...
    def verify(self, name: str) -> None: ...
    def read_elements(self, name: str, first: int, count: int) -> np.ndarray | None: ...
    def read_strings(self, name: str, verify: bool) -> list[bytes] | None: ...
    def read_box(self, name: str, box: tuple[slice, ...], verify: bool) -> np.ndarray | None: ...
    def source(self, index: int) -> ByteSource: ...
    def close(self) -> None: ...


class _BundleReader:
    """Adapts a V2 :class:`Bundle` to the checkpoint API."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    def names(self) -> list[str]:
        return self.bundle.names()

    def header(self, name: str) -> tuple[str, tuple[int, ...]]:
        entry = self.bundle.entry(name)
        return dtypes.name_of(entry.dtype), shape_of(entry.shape, self.bundle.index_path, f"tensor {name!r}")

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
            try:
                entry = parse(raw)
            except DecodeError:
                entry = decode_entry(raw, self.bundle.index_path, raw_key(name))  # raises, naming the key
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

    def pieces(self, name: str) -> tuple[StoredPiece, ...]:
        """The pieces of ``name``, checked against the index (CorruptError naming it)."""
        bundle = self.bundle
        where, what = bundle.index_path, f"tensor {name!r}"
        entry = bundle.entry(name)
        full = entry if entry.slices else None
        if full is not None:
            shape_of(full.shape, where, what)
        out = []
        for extents, part in bundle.pieces(name):
            spec = None if extents is None else slices.slice_spec(extents)
            label = what if spec is None else f"{what} slice {spec}"
            dtype, shape = check_entry(part, where, label, bundle.num_shards, full)
            mismatch = size_mismatch(label, part.size, dtype, shape) if dtype.is_numeric else None
            if mismatch:
                raise CorruptError(where, mismatch)
            out.append(StoredPiece(bundle.shard_path(part.shard_id), part.offset, part.size, spec, part.shard_id,
                                   part.crc32c, shape, None if extents is None else tuple(extents)))
        return tuple(out)

    def read(self, name: str, verify: bool) -> np.ndarray:
        return self.bundle.read(name, verify=verify)

    def read_strings(self, name: str, verify: bool) -> list[bytes] | None:
        """A string tensor stored whole, as a list of its values (no numpy)."""
        entry = self.bundle.entry(name)
        if entry.slices or dtypes.name_of(entry.dtype) != "string":
            return None
        return self.bundle.read_strings(entry, f"tensor {name!r}", verify)

    def verify(self, name: str) -> None:
        self.bundle.verify(name)

    def read_elements(self, name: str, first: int, count: int) -> np.ndarray | None:
        """Elements ``first`` to ``first + count`` (C order) of a tensor stored whole, as numbers,
        reading only their bytes (not checksummed: the CRC covers the whole tensor)."""
        if self.bundle.entry(name).slices:
            return None
        (piece,) = self.pieces(name)
        dtype = dtypes.from_enum(self.bundle.entry(name).dtype)
        if not dtype.is_numeric:
            return None
        source = self.bundle.shard(piece.shard)
        if piece.offset < 0 or piece.offset + piece.size > source.size:
            return None  # the whole read names the problem
        data = source.read(piece.offset + first * dtype.itemsize, count * dtype.itemsize)
        return decode_numbers(data, dtype, self.bundle.endianness)

    def read_box(self, name: str, box: tuple[slice, ...], verify: bool) -> np.ndarray | None:
        """The region ``box`` of a partitioned tensor, reading only the slices overlapping it."""
        bundle = self.bundle
        entry = bundle.entry(name)
        if not entry.slices:
            return None
        what = f"tensor {name!r}"
        dtype, shape = check_entry(entry, bundle.index_path, what, bundle.num_shards)
        try:
            return slices.assemble(shape, dtype.numpy(), bundle.slice_parts(name, entry, shape, verify), box)
        except ValueError as exc:
            raise CorruptError(bundle.index_path, f"{what}: {exc}") from None

    def source(self, index: int) -> ByteSource:
        return self.bundle.shard(index)

    def close(self) -> None:
        self.bundle.close()


class _V1Reader:
    """Adapts a :class:`V1Checkpoint` to the checkpoint API (V1 has no tensor CRC)."""

    def __init__(self, checkpoint: V1Checkpoint) -> None:
        self.checkpoint = checkpoint

    def names(self) -> list[str]:
        return self.checkpoint.names()

    def header(self, name: str) -> tuple[str, tuple[int, ...]]:
        tensor = self.checkpoint.tensor(name)
        return tensor.dtype.name, tensor.shape

    def info(self, name: str) -> TensorInfo:
        tensor = self.checkpoint.tensor(name)
        whole = len(tensor.slices) == 1 and slices.is_full(tensor.slices[0][1], tensor.shape)
        locations = []
        for table_index, extents in tensor.slices:
            offset, size = self.checkpoint.location(name, extents, table_index)
            spec = None if whole else slices.slice_spec(extents)
            locations.append(TensorLocation(self.checkpoint.files[table_index], offset, size, spec))
        stored = sum(loc.size for loc in locations)
        nbytes = tensor.dtype.itemsize * math.prod(tensor.shape) if tensor.dtype.itemsize > 0 else stored
        return TensorInfo(name, tensor.dtype.name, tensor.shape, nbytes, tuple(locations), not whole)

    def infos(self) -> list[TensorInfo]:
        return [self.info(name) for name in self.names()]

    def pieces(self, name: str) -> tuple[StoredPiece, ...]:
        tensor = self.checkpoint.tensor(name)
        whole = len(tensor.slices) == 1 and slices.is_full(tensor.slices[0][1], tensor.shape)
        out = []
        for table_index, extents in tensor.slices:
            offset, size = self.checkpoint.location(name, extents, table_index)
            try:
                index = slices.bounds(extents, tensor.shape)
            except ValueError as exc:
                raise CorruptError(self.checkpoint.files[table_index], f"tensor {name!r}: {exc}") from None
            out.append(StoredPiece(self.checkpoint.files[table_index], offset, size,
                                   None if whole else slices.slice_spec(extents), table_index, 0,
                                   tuple(s.stop - s.start for s in index), None if whole else tuple(extents)))
        return tuple(out)

    def read(self, name: str, verify: bool) -> np.ndarray:
        return self.checkpoint.read(name)

    def verify(self, name: str) -> None:
        self.checkpoint.read(name)  # the table's block checksums are checked on the way

    def read_elements(self, name: str, first: int, count: int) -> np.ndarray | None:
        return None  # values are protobuf fields: a record is decoded whole

    def read_strings(self, name: str, verify: bool) -> list[bytes] | None:
        return None

    def read_box(self, name: str, box: tuple[slice, ...], verify: bool) -> np.ndarray | None:
        tensor = self.checkpoint.tensor(name)
        if len(tensor.slices) == 1 and slices.is_full(tensor.slices[0][1], tensor.shape):
            return None
        parts = self.checkpoint.slice_parts(name)
        try:
            return slices.assemble(tensor.shape, tensor.dtype.numpy(), parts, box)
        except ValueError as exc:
            raise CorruptError(self.checkpoint.files[0], f"tensor {name!r}: {exc}") from None

    def source(self, index: int) -> ByteSource:
        return self.checkpoint.source(index)

    def close(self) -> None:
        self.checkpoint.close()


class _NoTensors:
    """The reader of a SavedModel without variables: TensorFlow restores nothing from it."""

    def names(self) -> list[str]:
        return []

    def header(self, name: str) -> tuple[str, tuple[int, ...]]:
        raise KeyError(name)

    def info(self, name: str) -> TensorInfo:
        raise KeyError(name)

    def infos(self) -> list[TensorInfo]:
        return []

    def pieces(self, name: str) -> tuple[StoredPiece, ...]:
        raise KeyError(name)

    def read(self, name: str, verify: bool) -> np.ndarray:
        raise KeyError(name)

    def verify(self, name: str) -> None:
        raise KeyError(name)

    def read_elements(self, name: str, first: int, count: int) -> np.ndarray | None:
        raise KeyError(name)

    def read_strings(self, name: str, verify: bool) -> list[bytes] | None:
        raise KeyError(name)

    def read_box(self, name: str, box: tuple[slice, ...], verify: bool) -> np.ndarray | None:
        raise KeyError(name)

    def source(self, index: int) -> ByteSource:
        raise IndexError(index)

    def close(self) -> None:
        """Nothing to release."""


class Checkpoint(Mapping[str, StoredTensor]):
    """An opened checkpoint: a mapping of tensor names to lazy :class:`StoredTensor` handles.

    ``ckpt[name]`` reads nothing until asked (``.numpy()``, ``np.asarray``, slicing);
    :meth:`get` reads a whole tensor, :meth:`info` and :meth:`infos` say where tensors lie,
    :meth:`verify` checks every checksum. Missing names raise :class:`TensorNotFoundError`.
    """

    def __init__(
        self, *, prefix: str, format: CheckpointFormat, data_files: tuple[str, ...], index_file: str | None,
        num_shards: int, endianness: Endianness, notes: tuple[str, ...], reader: _Reader, verify: bool,
    ) -> None:
        self.prefix = prefix
        self.format: CheckpointFormat = format
        self.data_files = data_files
        self.index_file = index_file
        self.num_shards = num_shards
        self.endianness: Endianness = endianness
        self.notes = notes
        self._verify = verify
        self._reader = reader
        self._names = reader.names()
        self._name_set = frozenset(self._names)
        self._object_graph: ObjectGraph | None = None

    # identity, as for any open file: comparing two checkpoints by value would read every tensor
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def keys(self) -> list[str]:  # type: ignore[override]  # a list, as before it was a Mapping
        """Tensor names sorted bytewise like TensorFlow, slice keys hidden."""
        return list(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._name_set

    def __getitem__(self, name: str) -> StoredTensor:
        """A lazy handle on tensor ``name`` (TensorNotFoundError if absent)."""
        self._check(name)
        dtype, shape = self._reader.header(name)
        return StoredTensor(self, name, dtype, shape)

    def _check(self, name: str) -> None:
        if name not in self._name_set:
            hint = did_you_mean(name, self._names) if isinstance(name, str) else ""
            raise TensorNotFoundError(self.prefix, f"no tensor {name!r}{hint}", name)

    def info(self, name: str) -> TensorInfo:
        """Dtype, shape, stored size and locations of ``name`` (TensorNotFoundError if absent)."""
        self._check(name)
        return self._reader.info(name)

    def infos(self) -> list[TensorInfo]:
        """:meth:`info` of every tensor, in key order."""
        return self._reader.infos()

    def pieces(self, name: str) -> tuple[StoredPiece, ...]:
        """The stored pieces of ``name`` (one, or one per slice), checked against the index."""
        self._check(name)
        return self._reader.pieces(name)

    def data_source(self, index: int) -> ByteSource:
        """The bytes of ``data_files[index]`` (opened on first use, closed with the checkpoint)."""
        return self._reader.source(index)

    def dtype(self, name: str) -> str:
        """TensorFlow dtype name of ``name``."""
        return self.info(name).dtype

    def shape(self, name: str) -> tuple[int, ...]:
        """Full shape of ``name``."""
        return self.info(name).shape

    def nbytes(self, name: str) -> int:
        """Bytes stored for ``name``."""
        return self.info(name).nbytes

    def get(self, name: str) -> np.ndarray:  # type: ignore[override]  # reads the array, unlike Mapping.get
        """Read ``name`` as a read-only array (strings: bytes objects; variants: protos)."""
        self._check(name)
        return self._reader.read(name, self._verify)

    def verify(self, progress: Progress = silent) -> list[CorruptTensor]:
        """Read every tensor and check every checksum; return the findings, never raise for one.

        ``progress("verifying", tensors done, tensors)`` reports each tensor read.
        """
        findings = []
        total = len(self._names)
        progress("verifying", 0, total)
        for done, name in enumerate(self._names, 1):
            try:
                self._reader.verify(name)
            except MetainspectError as exc:
                offset = getattr(exc, "offset", None)
                if offset is None:
                    offset = _first_offset(self._reader, name)
                findings.append(CorruptTensor(name, exc.path or self.prefix, offset, exc.message))
            progress("verifying", done, total)
        return findings

    def object_graph_bytes(self) -> bytes | None:
        """The serialized TF2 object graph, or None for name-based (TF1) and V1 checkpoints."""
        if OBJECT_GRAPH_KEY not in self._name_set:
            return None
        if self.info(OBJECT_GRAPH_KEY).shape == ():
            strings = self._reader.read_strings(OBJECT_GRAPH_KEY, self._verify)  # listing needs no numpy
            if strings is not None:
                return strings[0]
        value = self.get(OBJECT_GRAPH_KEY)
        if value.shape != () or not isinstance(value[()], bytes):
            raise CorruptError(self.prefix, f"{OBJECT_GRAPH_KEY} is not a string scalar")
        return value[()]

    def object_graph(self) -> ObjectGraph | None:
        """The TF2 object graph, or None for name-based (TF1) and V1 checkpoints."""
        if self._object_graph is None:
            data = self.object_graph_bytes()
            if data is not None:
                self._object_graph = ObjectGraph.from_bytes(data, self.index_file or self.prefix)
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

    def _read_box(self, name: str, box: tuple[slice, ...]) -> np.ndarray:
        """The region ``box`` (non-empty unit-step slices, one per axis) of tensor ``name``, reading
        as little as the storage allows: the rows of a tensor stored whole, the slices of a
        partitioned one that overlap the box; else the whole tensor."""
        region = self._reader.read_box(name, box, self._verify)
        if region is not None:
            return region
        shape = self._reader.header(name)[1]
        # leading axes of one index, one range (axis k), then whole trailing axes: one
        # contiguous run of elements in C order
        k = next((axis for axis, b in enumerate(box) if b.stop - b.start != 1), len(box) - 1)
        first = sum(b.start * math.prod(shape[axis + 1 :]) for axis, b in enumerate(box[: k + 1]))
        span = box[k].stop - box[k].start
        trailing = tuple(shape[k + 1 :])
        flat = self._reader.read_elements(name, first, span * math.prod(trailing))
        if flat is None:
            return self.get(name)[box]
        run = flat.reshape((1,) * k + (span, *trailing))
        return run[(slice(None),) * (k + 1) + box[k + 1 :]]


def _first_offset(reader: _Reader, name: str) -> int:
    try:
        return reader.info(name).locations[0].offset
    except (MetainspectError, IndexError):
        return 0


@dataclass(frozen=True)
class _Target:
    #: "v1", "v2", or "none" for a SavedModel without variables
    format: str
    #: V2 prefix, V1 file or V1 glob pattern
    prefix: str
    #: V1 table files (empty for V2)
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def open_checkpoint(path: str | os.PathLike[str], *, verify: bool = True,
                    storage_options: Mapping[str, Any] | None = None) -> Checkpoint:
    """Open the checkpoint named by ``path`` in any of the accepted forms (module docstring).

    ``path`` may be a URL (``s3://``, ``gs://``, ``https://``, any fsspec protocol; needs the
    ``remote`` extra): only the index is fetched, then each tensor's byte range when read.
    ``storage_options`` go to the URL's fsspec backend (credentials, endpoint, ``anon``...).
    """
    if storage_options is not None:
        with using_storage_options(storage_options):
            return open_checkpoint(path, verify=verify)
    target = resolve(os.fspath(path))
    if target.format == "none":
        return Checkpoint(
            prefix=target.prefix, format="v2", data_files=(), index_file=None, num_shards=0,
            endianness="little", notes=target.notes, reader=_NoTensors(), verify=verify,
        )
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


def resolve(path: str, *, from_state: bool = False) -> _Target:
    """Decide which checkpoint ``path`` means; NotFoundError/WrongKindError/CorruptError if none.

    Every lookup goes through the path's filesystem (:mod:`metainspect.formats.filesystem`), so
    URLs resolve like local paths. Where a store cannot list (HTTP), a directory is known by
    its state file or SavedModel graph, and V1 patterns by their shard names. ``from_state``:
    ``path`` was read from a state file, whose prefix is never itself resolved through a state
    file or directory again (a state file naming its own directory, or two naming each other,
    would otherwise loop).
    """
    if not path:
        raise NotFoundError(None, "empty checkpoint path")
    files = filesystem(path)
    if files.isdir(path):
        if from_state:
            raise WrongKindError(path, "is a directory, not a checkpoint prefix")
        return _from_directory(files, path.rstrip("/") if is_url(path) else path)
    directory, name = files.split(path)
    if files.isfile(path):
        if name.endswith(".index"):
            return _Target("v2", path[: -len(".index")])
        match = DATA_SHARD.match(name)
        if match:
            prefix = files.join(directory, match["prefix"])
            if not files.exists(prefix + ".index"):
                raise NotFoundError(prefix + ".index", f"the index of data file {name} is missing")
            return _Target("v2", prefix)
        if files.exists(path + ".index"):
            return _Target("v2", path)
        if has_magic(path):
            return _v1_from_file(files, path)
        if name == STATE_FILE and not from_state:
            return _from_directory(files, directory or ".")
        if name.endswith(".meta") and files.exists(path[: -len(".meta")] + ".index"):
            raise _graph_error(path, f"is a graph (MetaGraphDef); its checkpoint is {path[: -len('.meta')]}")
        if name.endswith(_GRAPH_SUFFIXES):
            read_graph_file(path)  # a damaged graph file is called corrupt, not "a graph"
            raise _graph_error(path)
        raise CorruptError(path, "not a TensorFlow checkpoint index/table (bad magic)")
    if files.exists(path + ".index"):
        return _Target("v2", path)
    if glob.has_magic(name):
        from metainspect.formats.v1 import expand_shard_pattern

        shards = None if files.listable else expand_shard_pattern(path)
        found = shards if shards is not None else files.glob(files.join(files.escape(directory), name))
        if found:
            return _v1_target(path, found)
    if files.listable:
        found = files.glob(files.escape(path) + V1_SHARDS)
        if found:  # TF1's sharded V1 saver: model.ckpt names model.ckpt-0000N-of-0000M
            return _v1_target(path + V1_SHARDS, found)
    if _unlisted_directory(files, path):
        return _from_directory(files, path)
    if files.exists(path + ".meta"):
        raise _graph_error(path + ".meta", f"{path} has only a graph ({name}.meta), no checkpoint data")
    raise NotFoundError(path, f"no checkpoint here: neither {name}.index nor {name} exists"
                              + did_you_mean(name, _prefixes_beside(files, directory)))


#: the shard files of a sharded V1 checkpoint, after its prefix (TF1 ``Saver(sharded=True)``)
V1_SHARDS = "-?????-of-?????"


def _prefixes_beside(files: FileSystem, directory: str) -> list[str]:
    """The checkpoint prefixes in ``directory`` (V2 ``.index`` files, V1 shard bases); none on a
    store that cannot list."""
    from metainspect.formats.v1 import SHARD

    if not files.listable:
        return []
    try:
        entries = files.listdir(directory or ".")
    except (OSError, MetainspectError):
        return []
    prefixes = {e[: -len(".index")] for e in entries if e.endswith(".index")}
    prefixes |= {m["base"] for e in entries if not DATA_SHARD.match(e) and (m := SHARD.match(e))}
    return sorted(prefixes)


def _unlisted_directory(files: FileSystem, path: str) -> bool:
    """On a store that cannot list (HTTP), a URL is a directory when it holds a state file or a
    SavedModel graph."""
    return not files.listable and any(
        files.isfile(files.join(path, name)) for name in (STATE_FILE, *SAVED_MODEL_FILES))


def _graph_error(path: str, lead: str | None = None) -> WrongKindError:
    what = lead or "is a graph (MetaGraphDef/SavedModel), not a checkpoint"
    hint = Hint("list_nodes", path)
    return WrongKindError(path, f"{what}; {hint.text}", hint)


def _v1_from_file(files: FileSystem, path: str) -> _Target:
    """A V1 table file, or every shard of its set when its name is ``BASE-NNNNN-of-MMMMM``."""
    from metainspect.formats.v1 import SHARD, shard_names

    directory, name = files.split(path)
    match = SHARD.match(name)
    if not match:
        return _Target("v1", path, (path,))
    total = int(match["total"])
    pattern = files.join(directory, f"{match['base']}-?????-of-{match['total']}")
    expected = [files.join(directory, shard) for shard in shard_names(match["base"], total)]
    missing = [f for f in expected if not files.exists(f)]
    if missing:
        raise NotFoundError(missing[0], f"V1 shard {len(expected) - len(missing)} of {total} is missing")
    return _Target("v1", pattern, tuple(expected))


def _v1_target(pattern: str, files: list[str], notes: tuple[str, ...] = ()) -> _Target:
    for f in files:
        if not has_magic(f):
            raise CorruptError(f, "not a TensorFlow checkpoint index/table (bad magic)")
    return _Target("v1", pattern, tuple(files), notes)


def _from_directory(files: FileSystem, directory: str) -> _Target:
    notes: tuple[str, ...] = ()
    if files.isfile(files.join(directory, STATE_FILE)):
        try:
            latest = latest_checkpoint(directory)
            target = resolve(latest.prefix, from_state=True)
        except (NotFoundError, CorruptError, WrongKindError) as exc:
            if isinstance(exc, LfsPointerError):
                raise
            notes = (f"ignoring the state file: {exc}",)
        else:
            return _Target(target.format, target.prefix, target.files, latest.notes + target.notes)
    if any(files.isfile(files.join(directory, f)) for f in SAVED_MODEL_FILES):
        prefix = files.join(directory, "variables", "variables")
        if not files.exists(prefix + ".index"):  # TensorFlow's loader then restores nothing
            return _Target("none", prefix, notes=(*notes, f"the SavedModel has no variables ({prefix}.index "
                                                          "does not exist): it holds no tensors"))
        return _Target("v2", prefix, notes=notes)
    if not files.listable:
        raise NotFoundError(directory, "holds no `checkpoint` state file or SavedModel, and this store cannot "
                                       "list the rest; name the checkpoint prefix")
    found, pointer = _scan(files, directory)
    if len(found) == 1:
        target = resolve(found[0])
        return _Target(target.format, target.prefix, target.files, notes + target.notes)
    if found:
        listed = ", ".join(files.basename(f) for f in found)
        raise WrongKindError(directory, f"holds {len(found)} checkpoints ({listed}); name one of them")
    if pointer is not None:
        raise pointer
    graphs = [f for f in files.listdir(directory) if f.endswith(_GRAPH_SUFFIXES)]
    if graphs:
        raise _graph_error(files.join(directory, graphs[0]), "holds a graph but no checkpoint")
    raise NotFoundError(directory, "no checkpoint in this directory")


def _scan(files: FileSystem, directory: str) -> tuple[list[str], LfsPointerError | None]:
    """Checkpoint prefixes (V2), files (V1) and V1 shard patterns found directly in ``directory``,
    and the first Git LFS pointer met (named when nothing else is found)."""
    from metainspect.formats.v1 import SHARD

    found: set[str] = set()
    pointer = None
    for name in files.listdir(directory):
        path = files.join(directory, name)
        if DATA_SHARD.match(name) or not files.isfile(path):
            continue
        try:
            if not has_magic(path):
                continue
        except LfsPointerError as exc:
            pointer = pointer or exc
            continue
        if name.endswith(".index"):
            found.add(path[: -len(".index")])
            continue
        match = SHARD.match(name)
        found.add(files.join(directory, f"{match['base']}-?????-of-{match['total']}") if match else path)
    return sorted(found), pointer
