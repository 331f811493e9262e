"""What a conversion reads: TensorFlow checkpoints, safetensors files, npz archives.

Opening reads only the index or header. A source lists its tensors (name, TensorFlow dtype,
shape, stored bytes, role) and gives a tensor's bytes in the cheapest way its layout allows:

- :meth:`Source.runs`: byte ranges of the input files that already are the tensor's
  little-endian C-order bytes (a whole tensor, or the slices of a variable partitioned along
  its first dimension), for the kernel to copy, each with the CRC32C TensorFlow stored for it;
- :meth:`Source.chunks`: the tensor's bytes in C order, in the stored byte order, streamed a
  chunk at a time (short-lived memory maps) with the stored checksums checked at the end;
- :meth:`Source.values`: the decoded array (strings, V1 tensors, partitions cut along another
  dimension), one tensor in memory at a time.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.checkpoint import StoredPiece, open_checkpoint
from metainspect.checkpoint.roles import Role, classify
from metainspect.convert import npz, safetensors
from metainspect.errors import CorruptError, WrongKindError
from metainspect.formats import dtypes, slices
from metainspect.formats.filesystem import filesystem
from metainspect.formats.source import ByteSource, LocalFile
from metainspect.formats.source import open_source as open_byte_source
from metainspect.formats.wire import BytesLike
from metainspect.rewrite.stream import CHUNK, checked

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
    role: Role
    partitioned: bool = False


@dataclass(frozen=True)
class Run:
    """Stored bytes that are a contiguous part of a tensor's little-endian C-order bytes."""

    #: the local file holding them (its descriptor serves the kernel copy)
    data: LocalFile
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
    def chunks(self, tensor: SourceTensor) -> tuple[Iterable[BytesLike], bool]:
        """The tensor's bytes in C order, a chunk at a time (each valid until the next is taken),
        and whether they are big-endian."""

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
        self._checkpoint = open_checkpoint(path)
        self._verify = verify
        try:
            checkpoint = self._checkpoint
            self.path = checkpoint.prefix
            self.format = checkpoint.format
            self.notes = checkpoint.notes
            self._big_endian = checkpoint.endianness == "big"
            graph = checkpoint.object_graph()
            self._pieces = {name: checkpoint.pieces(name) for name in checkpoint}
            self.tensors = [SourceTensor(info.name, dtypes.from_name(info.dtype), info.shape, info.nbytes,
                                         classify(info.name, graph), info.partitioned) for info in checkpoint.infos()]
        except BaseException:
            self._checkpoint.close()
            raise

    def _local(self, piece: StoredPiece) -> LocalFile | None:
        """The V2 data file of ``piece`` when the kernel can copy from it."""
        data = self._checkpoint.data_source(piece.shard)
        return data if isinstance(data, LocalFile) else None

    def runs(self, tensor: SourceTensor) -> list[Run] | None:
        if self.format != "v2" or self._big_endian or not tensor.dtype.is_numeric:
            return None
        out = []
        for piece in self._pieces[tensor.name]:
            start = 0 if piece.extents is None else contiguous_start(piece.extents, tensor.shape)
            data = self._local(piece)
            if start is None or data is None:
                return None
            out.append(Run(data, piece.file, piece.offset, piece.size, start * tensor.dtype.itemsize, piece.crc32c,
                           _label(tensor.name, piece.slice)))
        return out

    def chunks(self, tensor: SourceTensor) -> tuple[Iterable[BytesLike], bool]:
        pieces = self._pieces[tensor.name]
        if self.format == "v2" and tensor.dtype.is_numeric and len(pieces) == 1 and pieces[0].extents is None:
            piece = pieces[0]
            raw = self._checkpoint.data_source(piece.shard).chunks(piece.offset, piece.size, CHUNK)
            if not self._verify:
                return raw, self._big_endian
            return checked(raw, piece, _label(tensor.name, None)), self._big_endian
        return _chunks_of(self.values(tensor)), False

    def values(self, tensor: SourceTensor) -> np.ndarray:
        return self._checkpoint.get(tensor.name)

    def check(self, tensors: Sequence[SourceTensor]) -> None:
        if self.format != "v2":
            return
        for tensor in tensors:
            for piece in self._pieces[tensor.name]:
                data = self._checkpoint.data_source(piece.shard)  # NotFoundError when the shard is missing
                if piece.offset + piece.size > data.size:
                    raise CorruptError(piece.file, f"{_label(tensor.name, piece.slice)}: bytes {piece.offset}.."
                                                   f"{piece.offset + piece.size} lie past the end of the file "
                                                   f"({data.size} bytes)")

    def close(self) -> None:
        self._checkpoint.close()


def _label(name: str, spec: str | None) -> str:
    return f"tensor {name!r}" + ("" if spec is None else f" slice {spec}")


# -- safetensors ----------------------------------------------------------------------------------


class SafetensorsSource(Source):
    """A ``.safetensors`` file, or the shards listed by a ``*.safetensors.index.json``."""

    format = "safetensors"

    def __init__(self, path: str) -> None:
        self.path = path
        self._files: dict[str, ByteSource] = {}
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

    def _file(self, path: str) -> ByteSource:
        if path not in self._files:
            self._files[path] = open_byte_source(path)
        return self._files[path]

    def runs(self, tensor: SourceTensor) -> list[Run] | None:
        header, entry = self._entries[tensor.name]
        data = self._file(header.path)
        if not isinstance(data, LocalFile):
            return None  # behind a URL: streamed in chunks, no kernel copy
        return [Run(data, header.path, header.data_start + entry.begin, entry.nbytes, 0, None,
                    f"tensor {tensor.name!r}")]

    def chunks(self, tensor: SourceTensor) -> tuple[Iterable[BytesLike], bool]:
        header, entry = self._entries[tensor.name]
        return self._file(header.path).chunks(header.data_start + entry.begin, entry.nbytes, CHUNK), False

    def check(self, tensors: Sequence[SourceTensor]) -> None:
        """Nothing left to check: opening checked every byte range against its file."""

    def values(self, tensor: SourceTensor) -> np.ndarray:
        import numpy as np

        header, entry = self._entries[tensor.name]
        data = self._file(header.path).read_bytes(header.data_start + entry.begin, entry.nbytes)
        return np.frombuffer(data, dtype=tensor.dtype.numpy().newbyteorder("<")).reshape(tensor.shape)

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()


def _index_files(path: str, weight_map: dict[str, str]) -> list[str]:
    """The shard files a Hugging Face ``*.safetensors.index.json`` names, in name order."""
    fs = filesystem(path)
    directory = fs.dirname(path)
    files = sorted(set(weight_map.values()))
    for name in files:
        if os.path.isabs(name) or "://" in name or os.pardir in name.replace("\\", "/").split("/"):
            raise WrongKindError(path, f"weight_map names {name!r}, a file outside the index's directory")
    return [fs.join(directory, name) for name in files]


def _weight_map(path: str) -> dict[str, str]:
    with closing(open_byte_source(path)) as source:
        size = source.size
        if size > safetensors.MAX_HEADER:
            raise CorruptError(path, f"an index of {size} bytes is larger than the {safetensors.MAX_HEADER}-byte limit")
        text = source.read_bytes(0, size)
    try:
        document = json.loads(text.decode("utf-8"))
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

    def chunks(self, tensor: SourceTensor) -> tuple[Iterable[BytesLike], bool]:
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

