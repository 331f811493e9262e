"""What a conversion reads: TensorFlow checkpoints, safetensors files, npz archives.

Opening reads only the index or header. A source lists its tensors (name, TensorFlow dtype,
shape, stored bytes, role) and gives a tensor's bytes in the cheapest way its layout allows:

- :meth:`Source.runs`: byte ranges of the input files that already are the tensor's
  little-endian C-order bytes (a whole tensor, or the slices of a variable partitioned along
  its first dimension), for the kernel to copy, each with the CRC32C TensorFlow stored for it;
- :meth:`Source.chunks`: the tensor's bytes in C order, in the stored byte order, streamed
  through a buffer with the stored checksums checked at the end;
- :meth:`Source.values`: the decoded array (strings, V1 tensors, partitions cut along another
  dimension), one tensor in memory at a time.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.checkpoint.object_graph import ObjectGraph
from metainspect.checkpoint.roles import classify
from metainspect.convert import npz, safetensors
from metainspect.errors import CorruptError, NotFoundError, WrongKindError
from metainspect.formats import dtypes, slices
from metainspect.rewrite import _checked, _Input, _read, _Tensor

if TYPE_CHECKING:
    import numpy as np

SAFETENSORS_SUFFIX = ".safetensors"
SAFETENSORS_INDEX_SUFFIX = ".safetensors.index.json"
NPZ_SUFFIX = ".npz"


@dataclass(frozen=True)
class SourceTensor:
    """One tensor of a source, as its index or header describes it."""

    name: str
    dtype: dtypes.DType
    shape: tuple[int, ...]
    #: bytes stored for it in the source
    nbytes: int
    #: model | optimizer | bookkeeping (:func:`metainspect.checkpoint.roles.classify`)
    role: str
    partitioned: bool = False


@dataclass(frozen=True)
class Run:
    """Stored bytes that are a contiguous part of a tensor's little-endian C-order bytes."""

    fd: int
    path: str
    offset: int
    size: int
    #: where these bytes go in the tensor's bytes
    at: int
    #: the masked CRC32C the source stores for them (None: the format stores none)
    crc32c: int | None
    #: names the bytes in errors: ``tensor 'x'`` or ``tensor 'x' slice 0,2:-``
    what: str


class Source(ABC):
    """An opened input."""

    #: the path named in errors and recorded in the output's metadata
    path: str
    #: v2 | v1 | safetensors | npz
    format: str
    notes: tuple[str, ...] = ()
    tensors: list[SourceTensor]

    @abstractmethod
    def runs(self, tensor: SourceTensor) -> list[Run] | None:
        """Kernel-copyable ranges covering the tensor, or None when its bytes need converting."""

    @abstractmethod
    def chunks(self, tensor: SourceTensor, buffer: bytearray) -> tuple[Iterable[memoryview | bytes], bool]:
        """The tensor's bytes in C order (chunks may reuse ``buffer``) and whether they are big-endian."""

    @abstractmethod
    def values(self, tensor: SourceTensor) -> np.ndarray:
        """The decoded tensor (strings as an object array of bytes)."""

    @abstractmethod
    def check(self, tensors: Sequence[SourceTensor]) -> None:
        """Refuse (before anything is written) when the files cannot hold ``tensors``' bytes."""

    @abstractmethod
    def close(self) -> None:
        """Release the input's files."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_source(path: str, *, verify: bool = True) -> Source:
    """Open ``path``: ``*.safetensors``, ``*.safetensors.index.json`` (Hugging Face shards),
    ``*.npz``, or any TensorFlow checkpoint :func:`metainspect.checkpoint.reader.resolve` accepts
    (``verify=False``: a checkpoint's streamed tensors skip their CRC32C check)."""
    if path.endswith(SAFETENSORS_SUFFIX) or path.endswith(SAFETENSORS_INDEX_SUFFIX):
        return SafetensorsSource(path)
    if path.endswith(NPZ_SUFFIX):
        return NpzSource(path)
    return CheckpointSource(path, verify=verify)


def _chunks_of(array: np.ndarray) -> list[memoryview]:
    """A numeric array's bytes, little-endian C order, as one chunk."""
    import numpy as np

    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return [little.reshape(-1).view(np.uint8).data]


# -- TensorFlow checkpoints -----------------------------------------------------------------------


def contiguous_start(extents: Sequence[slices.Extent], shape: Sequence[int]) -> int | None:
    """The element index where a slice starts in its tensor's C-order elements, or None when the
    slice's elements are not one contiguous run there (only whole trailing dimensions, and
    single indices before the one dimension cut into a range, keep a slice contiguous)."""
    index = slices.bounds(extents, tuple(shape))
    cut = next((i for i in range(len(shape) - 1, -1, -1)
                if index[i].stop - index[i].start != shape[i]), None)
    if cut is not None and any(s.stop - s.start != 1 for s in index[:cut]):
        return None
    start = 0
    for s, dim in zip(index, shape):
        start = start * dim + s.start
    return start


class CheckpointSource(Source):
    """A TensorFlow checkpoint: V2 (sharded, partitioned, big-endian, TF2, in a SavedModel) or V1."""

    def __init__(self, path: str, *, verify: bool = True) -> None:
        self._input = _Input.open(path)
        self._verify = verify
        try:
            inp = self._input
            self.path = inp.prefix
            self.format = inp.format
            self.notes = inp.notes
            graph_bytes = inp.object_graph_bytes()
            graph = ObjectGraph.from_bytes(graph_bytes, inp.prefix) if graph_bytes is not None else None
            self._stored = {t.name: t for t in inp.tensors}
            self.tensors = [
                SourceTensor(t.name, t.dtype, t.shape, self._stored_size(t), classify(t.name, graph), t.partitioned)
                for t in inp.tensors
            ]
        except BaseException:
            self._input.close()
            raise

    def _stored_size(self, tensor: _Tensor) -> int:
        if self._input.v1 is not None and not tensor.dtype.is_numeric:  # V1 records do not say: measured
            return sum(self._input.string_sizes(tensor))
        return tensor.nbytes

    def runs(self, tensor: SourceTensor) -> list[Run] | None:
        inp = self._input
        stored = self._stored[tensor.name]
        if inp.bundle is None or inp.big_endian or not stored.dtype.is_numeric:
            return None
        out = []
        for piece in stored.pieces:
            start = 0 if piece.extents is None else contiguous_start(piece.extents, stored.shape)
            if start is None:
                return None
            out.append(Run(inp.fd(piece.shard), inp.files[piece.shard], piece.offset, piece.size,
                           start * stored.dtype.itemsize, piece.crc32c, _label(stored.name, piece.extents)))
        return out

    def chunks(self, tensor: SourceTensor, buffer: bytearray) -> tuple[Iterable[memoryview | bytes], bool]:
        inp = self._input
        stored = self._stored[tensor.name]
        if inp.bundle is not None and stored.dtype.is_numeric and len(stored.pieces) == 1 \
                and stored.pieces[0].extents is None:
            piece = stored.pieces[0]
            path = inp.files[piece.shard]
            raw = _read(inp.fd(piece.shard), path, piece.offset, piece.size, buffer)
            if not self._verify:
                return raw, inp.big_endian
            return _checked(raw, piece, path, _label(stored.name, None)), inp.big_endian
        return _chunks_of(self.values(tensor)), False

    def values(self, tensor: SourceTensor) -> np.ndarray:
        return self._input.values(tensor.name)

    def check(self, tensors: Sequence[SourceTensor]) -> None:
        inp = self._input
        if inp.bundle is None:
            return
        sizes: dict[int, int] = {}
        for tensor in tensors:
            for piece in self._stored[tensor.name].pieces:
                path = inp.files[piece.shard]
                if piece.shard not in sizes:
                    if not os.path.exists(path):
                        raise NotFoundError(path, f"data shard {piece.shard} of {len(inp.files)} is missing")
                    sizes[piece.shard] = os.path.getsize(path)
                if piece.offset + piece.size > sizes[piece.shard]:
                    raise CorruptError(path, f"{_label(tensor.name, piece.extents)}: bytes {piece.offset}.."
                                             f"{piece.offset + piece.size} lie past the end of the file "
                                             f"({sizes[piece.shard]} bytes)")

    def close(self) -> None:
        self._input.close()


def _label(name: str, extents: Sequence[slices.Extent] | None) -> str:
    return f"tensor {name!r}" + ("" if extents is None else f" slice {slices.slice_spec(extents)}")


# -- safetensors ----------------------------------------------------------------------------------


class SafetensorsSource(Source):
    """A ``.safetensors`` file, or the shards listed by a ``*.safetensors.index.json``."""

    format = "safetensors"

    def __init__(self, path: str) -> None:
        self.path = path
        self._fds: dict[str, int] = {}
        weight_map = _weight_map(path) if path.endswith(SAFETENSORS_INDEX_SUFFIX) else None
        files = [path] if weight_map is None else _index_files(path, weight_map)
        self._entries: dict[str, tuple[safetensors.Header, safetensors.Entry]] = {}
        self.tensors = []
        for file in files:
            header = safetensors.read_header(file)
            for entry in header.entries:
                if entry.name in self._entries:
                    other = self._entries[entry.name][0].path
                    raise CorruptError(file, f"tensor {entry.name!r} is also in {other}")
                self._entries[entry.name] = (header, entry)
                self.tensors.append(SourceTensor(entry.name, dtypes.from_name(entry.dtype), entry.shape,
                                                 entry.nbytes, classify(entry.name)))
        if weight_map is not None:
            _check_weight_map(path, weight_map, {name: h.path for name, (h, _) in self._entries.items()})

    def _fd(self, path: str) -> int:
        if path not in self._fds:
            self._fds[path] = os.open(path, os.O_RDONLY)
        return self._fds[path]

    def runs(self, tensor: SourceTensor) -> list[Run] | None:
        header, entry = self._entries[tensor.name]
        return [Run(self._fd(header.path), header.path, header.data_start + entry.begin, entry.nbytes, 0, None,
                    f"tensor {tensor.name!r}")]

    def chunks(self, tensor: SourceTensor, buffer: bytearray) -> tuple[Iterable[memoryview | bytes], bool]:
        header, entry = self._entries[tensor.name]
        return _read(self._fd(header.path), header.path, header.data_start + entry.begin, entry.nbytes, buffer), False

    def check(self, tensors: Sequence[SourceTensor]) -> None:
        """Nothing left to check: opening checked every byte range against its file."""

    def values(self, tensor: SourceTensor) -> np.ndarray:
        import numpy as np

        header, entry = self._entries[tensor.name]
        data = os.pread(self._fd(header.path), entry.nbytes, header.data_start + entry.begin)
        return np.frombuffer(data, dtype=tensor.dtype.numpy().newbyteorder("<")).reshape(tensor.shape)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _index_files(path: str, weight_map: dict[str, str]) -> list[str]:
    """The shard files a Hugging Face ``*.safetensors.index.json`` names, in name order."""
    directory = os.path.dirname(path)
    files = sorted(set(weight_map.values()))
    for name in files:
        if os.path.isabs(name) or os.pardir in name.replace("\\", "/").split("/"):
            raise WrongKindError(path, f"weight_map names {name!r}, a file outside the index's directory")
    return [os.path.join(directory, name) for name in files]


def _weight_map(path: str) -> dict[str, str]:
    try:
        with open(path, "rb") as handle:
            document = json.loads(handle.read(safetensors.MAX_HEADER + 1).decode("utf-8"))
    except FileNotFoundError:
        raise NotFoundError(path, "no such file") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptError(path, f"not a JSON index: {exc}") from None
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or \
            not all(isinstance(v, str) for v in weight_map.values()):
        raise CorruptError(path, "no weight_map (a map of tensor names to shard files)")
    return weight_map


def _check_weight_map(path: str, weight_map: dict[str, str], found: dict[str, str]) -> None:
    """Every tensor of the shards is in ``weight_map``, under the file that holds it."""
    directory = os.path.dirname(path)
    for name, file in weight_map.items():
        if found.get(name) != os.path.join(directory, file):
            raise CorruptError(path, f"weight_map puts tensor {name!r} in {file}, which does not hold it")
    for name, file in found.items():
        if name not in weight_map:
            raise CorruptError(path, f"tensor {name!r} of {file} is missing from weight_map")


# -- npz ------------------------------------------------------------------------------------------


class NpzSource(Source):
    """An ``.npz`` archive (``numpy.savez``, ``savez_compressed`` or metainspect's own)."""

    format = "npz"

    def __init__(self, path: str) -> None:
        self.path = path
        self._archive = npz.NpzArchive(path)
        try:
            declared = self._declared_dtypes()
            self._members: dict[str, npz.Member] = {}
            self.tensors = []
            notes = []
            for member in self._archive.members:
                kind = npz.tf_dtype(member.storage, declared.get(member.name))
                if kind is None:
                    raise WrongKindError(path, f"array {member.name!r} has numpy type {member.storage}, "
                                               "which TensorFlow has no type for")
                if member.storage.kind == "V" and member.name not in declared:
                    notes.append(f"array {member.name!r} holds raw 2-byte values ({member.storage}) and the archive "
                                 "records no dtype: read as bfloat16")
                self._members[member.name] = member
                self.tensors.append(SourceTensor(member.name, kind, member.shape, member.nbytes, classify(member.name)))
            self.notes = tuple(notes)
        except BaseException:
            self._archive.close()
            raise

    def _declared_dtypes(self) -> dict[str, str]:
        metadata = self._archive.metadata or {}
        if "dtypes" not in metadata:
            return {}
        try:
            declared = json.loads(metadata["dtypes"])
        except ValueError:
            declared = None
        if not isinstance(declared, dict) or not all(isinstance(v, str) for v in declared.values()):
            raise CorruptError(self.path, "__metadata__ dtypes is not a JSON map of dtype names")
        return declared

    def runs(self, tensor: SourceTensor) -> list[Run] | None:
        return None  # zip members are read through zipfile, which checks their CRC-32

    def check(self, tensors: Sequence[SourceTensor]) -> None:
        """Nothing left to check: opening checked every member's size against its header."""

    def chunks(self, tensor: SourceTensor, buffer: bytearray) -> tuple[Iterable[memoryview | bytes], bool]:
        member = self._members[tensor.name]
        if member.fortran_order or not tensor.dtype.is_numeric:
            return _chunks_of(self.values(tensor)), False
        return self._archive.chunks(member), member.storage.byteorder == ">"

    def values(self, tensor: SourceTensor) -> np.ndarray:
        import numpy as np

        array = self._archive.read(self._members[tensor.name])
        if tensor.dtype.name == "string":
            flat = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in array.reshape(-1).tolist()]
            out = np.empty(len(flat), dtype=object)
            out[:] = flat
            return out.reshape(array.shape)
        return array.view(tensor.dtype.numpy().newbyteorder(array.dtype.byteorder if array.dtype.byteorder in "<>"
                                                            else "="))

    def close(self) -> None:
        self._archive.close()

