"""numpy's ``.npz`` archives: a zip file holding one ``NAME.npy`` member per array.

Members are written uncompressed (as ``numpy.savez`` does) with ZIP64 records, streamed chunk
by chunk; the ``.npy`` headers come from numpy's own ``numpy.lib.format`` writer. TensorFlow
types numpy has no type for are stored as numpy stores them: bfloat16 and the 8-bit floats as
their raw bits with the void type numpy writes for them (``<V2``, ``<V1``), quantized types as
their storage type (``qint8`` as ``int8``); strings as fixed-width bytes (``S<longest>``). The
``__metadata__`` member (a 0-d unicode array holding a JSON object of strings) records what
was converted, and each tensor's TensorFlow dtype under ``dtypes`` so that the raw-bits arrays
can be read back as what they were.

Reading checks each member's ``.npy`` header against the member's size before any data is
read; zip's own CRC-32 is checked by :mod:`zipfile` as each member is streamed.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.errors import CorruptError, NotFoundError, WrongKindError
from metainspect.formats import dtypes
from metainspect.formats.wire import BytesLike

if TYPE_CHECKING:
    import numpy as np

SUFFIX = ".npy"
METADATA_KEY = "__metadata__"
#: zip's fixed timestamp for members (the earliest it can hold): the same input gives the same bytes
_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: deflate expands at most ~1032:1; a member claiming more is lying about its size
_MAX_DEFLATE_RATIO = 1100
#: the largest ``__metadata__`` member read
_MAX_METADATA = 64 << 20
_READ_CHUNK = 8 << 20


def storage_dtype(dtype: dtypes.DType, strings_width: int = 0) -> np.dtype:
    """The numpy dtype an npz member of TensorFlow type ``dtype`` is written with."""
    import numpy as np

    if dtype.name == "string":
        return np.dtype(f"S{max(strings_width, 1)}")
    if not dtype.is_numeric:
        raise ValueError(f"{dtype.name} tensors cannot be stored in an npz file")
    storage = dtype.numpy()
    if storage.kind == "V" or dtype.numpy_name.startswith("ml_dtypes."):
        return np.dtype(f"V{storage.itemsize}")
    little: np.dtype = storage.newbyteorder("<")
    return little


def tf_dtype(storage: np.dtype, declared: str | None) -> dtypes.DType | None:
    """The TensorFlow type of an npz member of numpy type ``storage``; ``declared`` is what the
    archive's metadata says (None when it says nothing). None when there is no such type."""
    if declared is not None:
        try:
            kind = dtypes.from_name(declared)
        except ValueError:
            return None
        return kind if _compatible(kind, storage) else None
    if storage.kind in "SU":
        return dtypes.BY_NAME["string"]
    if storage.kind == "V" and storage.itemsize == 2 and storage.fields is None:
        return dtypes.BY_NAME["bfloat16"]  # what numpy.save writes for ml_dtypes.bfloat16 (jax, TF)
    found = dtypes.BY_NAME.get(storage.newbyteorder("=").name)
    if found is None or not found.is_numeric or found.numpy_name != found.name:
        return None
    return found


def _compatible(kind: dtypes.DType, storage: np.dtype) -> bool:
    if kind.name == "string":
        return storage.kind in "SU"
    if not kind.is_numeric or storage.itemsize != kind.itemsize:
        return False
    return storage.kind == "V" or storage.newbyteorder("=") == kind.numpy().newbyteorder("=")


# -- writing --------------------------------------------------------------------------------------


class NpzWriter:
    """Stream arrays into a new npz file at ``path`` (the caller makes it atomic)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True)

    def add(self, name: str, storage: np.dtype, shape: tuple[int, ...], chunks: Iterable[BytesLike]) -> int:
        """Add member ``name`` from its C-order data ``chunks``; return the data bytes written."""
        import numpy as np

        info = zipfile.ZipInfo(name + SUFFIX, date_time=_DATE_TIME)
        info.compress_type = zipfile.ZIP_STORED
        header = {"descr": np.lib.format.dtype_to_descr(storage), "fortran_order": False, "shape": tuple(shape)}
        written = 0
        with self._zip.open(info, "w", force_zip64=True) as member:
            try:
                np.lib.format.write_array_header_1_0(member, header)
            except ValueError:  # a header beyond 64 KiB (a very high rank): version 2.0
                np.lib.format.write_array_header_2_0(member, header)
            for chunk in chunks:
                member.write(chunk)
                written += memoryview(chunk).nbytes
        needed = math.prod(shape) * storage.itemsize
        if written != needed:
            raise ValueError(f"npz member {name!r}: {written} bytes written, shape {list(shape)} needs {needed}")
        return written

    def add_metadata(self, metadata: dict[str, str]) -> None:
        """Add the ``__metadata__`` member."""
        import numpy as np

        text = np.array(json.dumps(metadata, ensure_ascii=False, sort_keys=True))
        self.add(METADATA_KEY, text.dtype, (), [text.tobytes()])

    def close(self) -> None:
        self._zip.close()


# -- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One array of an npz file, as its ``.npy`` header describes it."""

    name: str
    info: zipfile.ZipInfo
    storage: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    #: bytes of the ``.npy`` header before the data
    header_size: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.storage.itemsize


class NpzArchive:
    """An opened npz file: its members and metadata; data is streamed on demand."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise NotFoundError(path, "no such file") from None
        except IsADirectoryError:
            raise WrongKindError(path, "is a directory, not an .npz file") from None
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CorruptError(path, f"not a readable zip (npz) file: {exc}") from None
        self._size = os.path.getsize(path)
        try:
            self.members, self.metadata = self._read_members()
        except BaseException:
            self._zip.close()
            raise

    def _read_members(self) -> tuple[list[Member], dict[str, str] | None]:
        members: list[Member] = []
        seen: set[str] = set()
        metadata = None
        for info in self._zip.infolist():
            if info.is_dir():
                continue
            if not info.filename.endswith(SUFFIX):
                raise WrongKindError(self.path, f"member {info.filename!r} is not an .npy array")
            name = info.filename[: -len(SUFFIX)]
            if name in seen:
                raise CorruptError(self.path, f"duplicate member {info.filename!r}")
            seen.add(name)
            member = self._member(name, info)
            if name == METADATA_KEY:
                metadata = self._metadata(member)
            else:
                members.append(member)
        return members, metadata

    def _member(self, name: str, info: zipfile.ZipInfo) -> Member:
        import numpy as np

        what = f"array {name!r}"
        if info.header_offset + info.compress_size > self._size:
            raise CorruptError(self.path, f"{what}: {info.compress_size} stored bytes at offset {info.header_offset} "
                                          f"lie past the end of the file ({self._size} bytes)")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > info.compress_size * _MAX_DEFLATE_RATIO:
            raise CorruptError(self.path, f"{what}: claims {info.file_size} bytes from {info.compress_size} compressed")
        try:
            with self._zip.open(info) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, storage = np.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, fortran, storage = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise WrongKindError(self.path, f"{what}: .npy format version {version} is not supported")
                header_size = handle.tell()
        except (ValueError, EOFError, zipfile.BadZipFile, OSError) as exc:
            raise CorruptError(self.path, f"{what}: bad .npy header: {exc}") from None
        if any(d < 0 for d in shape):
            raise CorruptError(self.path, f"{what}: negative dimension in shape {list(shape)}")
        if storage.hasobject:
            raise WrongKindError(self.path, f"{what} holds Python objects (a pickle), which are never loaded")
        member = Member(name, info, storage, tuple(shape), bool(fortran), header_size)
        if info.file_size != header_size + member.nbytes:
            raise CorruptError(self.path, f"{what}: the member holds {info.file_size - header_size} bytes of data, "
                                          f"shape {list(member.shape)} {storage} needs {member.nbytes}")
        return member

    def _metadata(self, member: Member) -> dict[str, str]:
        if member.nbytes > _MAX_METADATA:
            raise CorruptError(self.path, f"{METADATA_KEY} holds {member.nbytes} bytes, more than metadata ever needs")
        array = self.read(member)
        try:
            value = json.loads(str(array[()])) if array.shape == () and array.dtype.kind == "U" else None
        except ValueError:
            value = None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise CorruptError(self.path, f"{METADATA_KEY} is not a JSON map of strings")
        return value

    def chunks(self, member: Member) -> Iterator[bytes]:
        """The member's data bytes, in file order, a chunk at a time (zip's CRC checked at the end)."""
        try:
            with self._zip.open(member.info) as handle:
                handle.read(member.header_size)
                left = member.nbytes
                while left:
                    chunk = handle.read(min(_READ_CHUNK, left))
                    if not chunk:
                        raise CorruptError(self.path, f"array {member.name!r}: the member ends {left} bytes early")
                    left -= len(chunk)
                    yield chunk
                if handle.read(1):
                    raise CorruptError(self.path, f"array {member.name!r}: bytes left after the data")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CorruptError(self.path, f"array {member.name!r}: {exc}") from None

    def read(self, member: Member) -> np.ndarray:
        """The whole member as an array (its numpy type, C or Fortran order as stored)."""
        import numpy as np

        data = b"".join(self.chunks(member))
        array: np.ndarray = np.frombuffer(data, dtype=member.storage)
        shaped: np.ndarray = array.reshape(member.shape[::-1]).transpose() if member.fortran_order \
            else array.reshape(member.shape)
        return shaped

    def close(self) -> None:
        self._zip.close()

