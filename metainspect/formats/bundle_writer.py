"""Write V2 checkpoints (tensor bundles) exactly as TensorFlow lays them out.

Tensors are appended to the data shard as they arrive (TensorFlow's order is the order of
``SaveV2``'s names), densely packed, little-endian; the index is written at the end with keys
sorted bytewise, the header first, every ``BundleEntryProto`` encoded like TensorFlow's C++
protobuf (default-valued fields omitted). Partitioned tensors are kept as slices: a full entry
listing the slices plus one entry per slice under its OrderedCode key. Several shards are
numbered in the order they were started, and a partitioned tensor's full entry names the
first shard holding one of its slices, as ``MergeBundles`` does.

Everything is written beside the target under temporary names, fsynced, and renamed at the
end, data shards first and the index last (through :func:`metainspect.formats.atomic.replacing`): a
reader never sees an index whose data is incomplete, even after a crash. ``sync=False`` skips
the fsyncs, as TensorFlow's own writer does: the renames still keep readers from partial
files, but after a power cut a named file may lack data (its CRCs then fail on read). The data
shards cannot be opened under their final names from the start because those names carry the shard count, known only at the
end. To keep the disk busy while tensors are still being copied, written data is handed to the
kernel's writeback every 64 MiB.

Copies of stored bytes (:meth:`BundleWriter.copy_bytes`) are only queued: their place in the
shard is decided at once, the bytes move in a background "lane" per data shard (each shard's
copies in order, then its fsync), and two lanes run at a time. Copies into one file serialise
on its inode lock in the kernel; copies into different files do not, so a multi-shard copy runs
on two cores (measured on ext4: one ``copy_file_range`` stream about 2.5 GB/s, two streams into
different files about 4 GB/s, two into the same file slower than one).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Protocol

from metainspect.formats import atomic, crc, dtypes, slices
from metainspect.formats.bundle import data_file_name
from metainspect.formats.bundle_codec import (
    HEADER_KEY,
    encode_entry,
    encode_header,
    encode_strings,
    encode_variants,
    string_values,
)
from metainspect.formats.table_writer import TableBuilder
from metainspect.formats.wire import BytesLike

if TYPE_CHECKING:
    import numpy as np

_WRITE_BUFFER = 1 << 20
#: bytes moved by one kernel copy call (and handed to writeback after it)
_COPY_CHUNK = 1 << 26
#: buffer of the read/write fallback where the kernel cannot copy between the two files
_FALLBACK_CHUNK = 8 << 20
#: written data is handed to the disk every this many bytes, so the final fsync is short
_WRITEBACK_STEP = 64 << 20
#: data shards whose queued copies run at the same time
_COPY_LANES = 2


@dataclass(frozen=True)
class BundleFiles:
    """What :meth:`BundleWriter.finish` wrote."""

    prefix: str
    index_file: str
    data_files: tuple[str, ...]
    #: bytes of tensor data over all shards
    data_bytes: int
    #: index entries besides the header (tensors, slices and full entries of partitioned tensors)
    entries: int

    @property
    def num_shards(self) -> int:
        return len(self.data_files)


@dataclass
class _FullEntry:
    """The entry of a partitioned tensor: built up slice by slice, encoded at the end."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    extents: list[list[slices.Extent]] = field(default_factory=list)


@dataclass
class _Shard:
    temp_path: str
    file: BinaryIO
    size: int = 0
    pieces: int = 0
    #: background work on this file (copies, then the fsync), run in order by one lane
    jobs: deque[Callable[[], int]] = field(default_factory=deque)
    #: whether a lane is working through ``jobs``
    busy: bool = False



class Lane(Protocol):
    """A file that background jobs write to: :class:`CopyLanes` runs its jobs in order."""

    jobs: deque[Callable[[], int]]
    #: whether a lane is working through ``jobs``
    busy: bool


class CopyLanes:
    """Background work on output files: one file's jobs run in order, different files'
    jobs run side by side on :data:`_COPY_LANES` threads. A job returns the data bytes it
    moved; the first error stops every lane and is raised by :meth:`wait`. Used for data
    shards here and for any other output that takes kernel copies (``metainspect convert``)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._changed = threading.Condition()
        self._queued = 0
        self._error: BaseException | None = None
        #: data bytes moved by finished jobs
        self.done_bytes = 0

    def submit(self, shard: Lane, job: Callable[[], int]) -> None:
        with self._changed:
            shard.jobs.append(job)
            self._queued += 1
            if shard.busy:
                return
            shard.busy = True
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_COPY_LANES, thread_name_prefix="bundle-lane")
        self._pool.submit(self._run, shard)

    def wait(self, progress: Callable[[int], None] | None = None) -> None:
        """Wait until every job is done (calling ``progress(done_bytes)`` as they finish); raise
        the first job's error."""
        reported = -1
        while True:
            with self._changed:
                if self._queued and self._error is None and self.done_bytes == reported:
                    self._changed.wait()
                queued, error, done = self._queued, self._error, self.done_bytes
            if error is not None:
                self.stop()
                raise error
            if progress is not None and done != reported:
                progress(done)
            reported = done
            if not queued:
                return

    @property
    def stopping(self) -> bool:
        """Whether running jobs should give up (an error or :meth:`stop`): checked between chunks."""
        return self._error is not None

    def copy(self, lane: Lane, source: int, target: int, offset: int, at: int, size: int, what: str,
             copied: Callable[[int, int], None] | None = None) -> None:
        """Queue a copy of ``size`` bytes at ``offset`` of the open file descriptor ``source``
        to ``at`` in ``target`` (the lane's file), inside the kernel (``copy_file_range``);
        ``copied(start, end)`` is called after each chunk with the bytes of ``target`` written.
        ``what`` names the bytes in errors. Both descriptors must stay open until :meth:`wait`
        has returned."""

        def job() -> int:
            done = 0
            while done < size:
                if self.stopping:  # an abort does not wait for the rest of a big tensor
                    raise _Stopped()
                moved = _copy_range(source, target, offset + done, at + done, size - done)
                if moved == 0:
                    raise OSError(f"{what}: the source ended {size - done} bytes early")
                if copied is not None:
                    copied(at + done, at + done + moved)
                done += moved
            return size

        self.submit(lane, job)

    def stop(self) -> None:
        """Drop queued jobs and wait for running ones (nothing is left touching the files)."""
        with self._changed:
            self._error = self._error or _Stopped()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _run(self, shard: Lane) -> None:
        while True:
            with self._changed:
                if self._error is not None or not shard.jobs:
                    self._queued -= len(shard.jobs)
                    shard.jobs.clear()
                    shard.busy = False
                    self._changed.notify_all()
                    return
                job = shard.jobs.popleft()
            try:
                moved = job()
            except BaseException as exc:  # noqa: BLE001  (handed to the waiting thread, which re-raises it)
                with self._changed:
                    self._queued -= 1
                    self._error = self._error or exc
                    self._changed.notify_all()
                continue
            with self._changed:
                self._queued -= 1
                self.done_bytes += moved
                self._changed.notify_all()


class _Stopped(Exception):
    """Marks lanes stopped on purpose (an abort), not by a failing job."""


def starts_new_shard(shard_bytes: int, shard_pieces: int, size: int, shard_size: int | None) -> bool:
    """Whether a piece of ``size`` bytes goes to a new shard (the rule of ``--shard-size``).

    A shard is closed when the piece would take it past ``shard_size``, unless it is still
    empty: a tensor larger than the limit gets a shard of its own.
    """
    return shard_size is not None and shard_pieces > 0 and shard_bytes + size > shard_size


class BundleWriter:
    """Stream tensors into ``PREFIX.index`` + ``PREFIX.data-NNNNN-of-NNNNN``.

    Use as a context manager: leaving the block normally calls :meth:`finish`, an exception
    calls :meth:`abort` (temporary files removed, nothing appears under the final names).
    ``shard_size`` starts a new data shard whenever the next tensor would make the current one
    larger (see :func:`starts_new_shard`); :meth:`start_shard` starts one explicitly.
    Copies queued by :meth:`copy_bytes` run in the background; :meth:`wait` waits for them and
    :meth:`finish` does too, so their errors surface there. ``sync=False`` does not fsync the
    files before renaming them (see the module's docstring).
    """

    def __init__(self, prefix: str, *, shard_size: int | None = None, sync: bool = True) -> None:
        if shard_size is not None and shard_size <= 0:
            raise ValueError(f"shard_size must be positive, not {shard_size}")
        self.prefix = os.fspath(prefix)
        self.shard_size = shard_size
        self.sync = sync
        self._directory = os.path.dirname(os.path.abspath(self.prefix))
        self._entries: dict[bytes, bytes | _FullEntry] = {}
        self._shards: list[_Shard] = []
        self._lanes = CopyLanes()
        self._state = "open"
        os.makedirs(self._directory, exist_ok=True)
        self._new_shard()

    # -- adding tensors --------------------------------------------------------------------

    def add(self, name: str, array: np.ndarray, *, dtype: str | None = None) -> None:
        """Add a whole tensor: numeric arrays, strings (object arrays of bytes or str) or
        variants (object arrays of ``VariantTensorDataProto``). ``dtype`` names the
        TensorFlow type to store (``qint8``…); by default numpy's type decides."""
        self._add_array(name, array, dtype, None, None)

    def add_slice(self, name: str, full_shape: Sequence[int], extents: Sequence[slices.Extent], array: np.ndarray,
                  *, dtype: str | None = None) -> None:
        """Add one slice of a partitioned tensor; ``extents`` are ``(start, length)`` per
        dimension, ``(0, -1)`` for a whole dimension. A slice covering the whole tensor is
        stored as a plain tensor, as TensorFlow does."""
        self._add_array(name, array, dtype, full_shape, extents)

    def add_bytes(self, name: str, dtype: str, shape: Sequence[int], size: int, chunks: Iterable[BytesLike], *,
                  crc32c: int | None = None, full_shape: Sequence[int] | None = None,
                  extents: Sequence[slices.Extent] | None = None) -> None:
        """Add a tensor (or, with ``full_shape`` and ``extents``, a slice) from its stored bytes.

        ``chunks`` must total ``size`` bytes laid out as in a bundle (little-endian numbers,
        TensorFlow's string and variant encodings). ``crc32c`` is the masked checksum to
        record; when None it is computed over the bytes, which is right for numeric types only.
        """
        kind = dtypes.from_name(dtype)
        if crc32c is None and not kind.is_numeric:
            raise ValueError(f"{name!r}: a {kind.name} tensor needs its checksum given")
        key, shard = self._place(name, kind, tuple(shape), size, full_shape, extents)
        running = 0
        written = 0
        handed = 0  # bytes of this tensor already handed to writeback
        write = shard.file.write
        for chunk in chunks:
            write(chunk)
            written += len(chunk)
            if crc32c is None:
                running = crc.crc32c(chunk, running)
            if written - handed >= _WRITEBACK_STEP:
                shard.file.flush()
                self._write_back(shard, shard.size + handed, shard.size + written)
                handed = written
        if written != size:
            raise ValueError(f"tensor {name!r}: {written} bytes given, {size} announced")
        self._record(key, kind.enum, tuple(shape), size, crc.mask(running) if crc32c is None else crc32c)

    def copy_bytes(self, name: str, dtype: str, shape: Sequence[int], source: int, offset: int, size: int,
                   crc32c: int, *, full_shape: Sequence[int] | None = None,
                   extents: Sequence[slices.Extent] | None = None) -> None:
        """Like :meth:`add_bytes`, copying ``size`` bytes at ``offset`` of the open file
        descriptor ``source`` inside the kernel (``copy_file_range``), without reading them.

        The copy is queued: the entry is recorded now, the bytes move in the background.
        ``source`` must stay open until :meth:`wait` or :meth:`finish` has returned.
        """
        kind = dtypes.from_name(dtype)
        key, shard = self._place(name, kind, tuple(shape), size, full_shape, extents)
        at = shard.size
        self._record(key, kind.enum, tuple(shape), size, crc32c)
        shard.file.seek(shard.size)  # later buffered writes go after the reserved bytes
        self._lanes.copy(shard, source, shard.file.fileno(), offset, at, size, f"tensor {name!r}",
                         lambda start, end: self._write_back(shard, start, end))

    def wait(self, progress: Callable[[int], None] | None = None) -> None:
        """Wait for the queued copies, calling ``progress(bytes copied so far)`` as they finish;
        raise the first copy's error (the writer is then aborted)."""
        try:
            self._lanes.wait(progress)
        except BaseException:
            self.abort()
            raise

    def start_shard(self) -> None:
        """Put the next tensors in a new data shard (nothing happens while the current one is empty)."""
        self._check_open()
        if self._shards[-1].pieces:
            self._new_shard()

    # -- finishing ---------------------------------------------------------------------------

    def finish(self) -> BundleFiles:
        """Write the index and move every file to its final name (the index last)."""
        self._check_open()
        self._state = "finishing"
        try:
            count = len(self._shards)
            self._close_shard(self._shards[-1])
            self._lanes.wait()
            for shard in self._shards:
                shard.file.close()
            data_files = tuple(data_file_name(self.prefix, i, count) for i in range(count))
            index_file = self.prefix + ".index"
            with atomic.replacing(index_file, sync=self.sync) as temp_index, open(temp_index, "wb") as out:
                os.fchmod(out.fileno(), atomic.new_file_mode())
                self._write_index(out, count)
                out.flush()
                for shard, final in zip(self._shards, data_files):
                    os.replace(shard.temp_path, final)
        except BaseException:
            self.abort()
            raise
        self._state = "finished"
        self._lanes.stop()
        return BundleFiles(self.prefix, index_file, data_files, sum(s.size for s in self._shards), len(self._entries))

    def abort(self) -> None:
        """Drop everything written so far (temporary files removed); the writer is closed."""
        self._lanes.stop()  # queued copies dropped, running ones waited for: no lane touches a file after this
        for shard in self._shards:
            if not shard.file.closed:
                shard.file.close()
            if os.path.exists(shard.temp_path):
                os.unlink(shard.temp_path)
        self._state = "aborted"

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            if self._state == "open":
                self.abort()
        elif self._state == "open":
            self.finish()

    @property
    def data_bytes(self) -> int:
        """Bytes of tensor data written or queued so far."""
        return sum(s.size for s in self._shards)

    @property
    def copied_bytes(self) -> int:
        """Bytes of queued copies already done."""
        return self._lanes.done_bytes

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"bundle writer for {self.prefix} is {self._state}")

    def _close_shard(self, shard: _Shard) -> None:
        """No more data goes to ``shard``: its fsync is queued after its copies."""
        shard.file.flush()
        if not self.sync:
            return
        fd = shard.file.fileno()

        def sync() -> int:
            os.fsync(fd)
            return 0

        self._lanes.submit(shard, sync)

    def _new_shard(self) -> None:
        if self._shards:  # the finished shard goes to disk while the next one is written
            self._close_shard(self._shards[-1])
        base = os.path.basename(self.prefix)
        fd, path = tempfile.mkstemp(prefix=f".{base}.data-{len(self._shards):05d}.", suffix=".tmp", dir=self._directory)
        os.fchmod(fd, atomic.new_file_mode())
        self._shards.append(_Shard(path, os.fdopen(fd, "wb", buffering=_WRITE_BUFFER)))

    def _write_back(self, shard: _Shard, start: int, end: int) -> None:
        """Start writing bytes ``start:end`` of ``shard`` to disk without waiting.

        ``posix_fadvise(DONTNEED)`` starts asynchronous writeback of dirty pages (and drops
        pages already clean): the disk works while later tensors are copied, the closing fsync
        has little left to do, and the output does not crowd the page cache. Without fsync
        (``sync=False``) nothing waits for the disk, so nothing is handed to it early.
        """
        if self.sync and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(shard.file.fileno(), start, end - start, os.POSIX_FADV_DONTNEED)

    def _add_array(self, name: str, array: np.ndarray, dtype: str | None, full_shape: Sequence[int] | None,
                   extents: Sequence[slices.Extent] | None) -> None:
        import numpy as np

        array = np.asarray(array)
        kind = _dtype_of(array, dtype)
        size, chunks, checksum = _encode(array, kind)
        self.add_bytes(name, kind.name, array.shape, size, chunks, crc32c=checksum, full_shape=full_shape, extents=extents)

    def _place(self, name: str, kind: dtypes.DType, shape: tuple[int, ...], size: int,
               full_shape: Sequence[int] | None, extents: Sequence[slices.Extent] | None) -> tuple[bytes, _Shard]:
        """The key of a tensor or slice and the shard its bytes go to (a slice is also added
        to the full entry of its tensor)."""
        self._check_open()
        if (full_shape is None) != (extents is None):
            raise ValueError(f"{name!r}: give both full_shape and extents for a slice, or neither")
        key = _key(name)
        full_entry: _FullEntry | None = None
        if full_shape is not None and extents is not None:
            full = tuple(int(d) for d in full_shape)
            extents = [(int(s), int(n)) for s, n in extents]
            try:
                index = slices.bounds(extents, full)
            except ValueError as exc:
                raise ValueError(f"{name!r}: {exc}") from None
            expected = tuple(s.stop - s.start for s in index)
            if expected != shape:
                raise ValueError(f"{name!r}: slice {slices.slice_spec(extents)} of {list(full)} has shape "
                                 f"{list(expected)}, not {list(shape)}")
            if not slices.is_full(extents, full):
                existing = self._entries.get(key)
                if existing is None:
                    full_entry = _FullEntry(kind.enum, full, -1)
                elif not isinstance(existing, _FullEntry):
                    raise ValueError(f"duplicate tensor {name!r}: already added whole")
                else:
                    full_entry = existing
                if (full_entry.dtype, full_entry.shape) != (kind.enum, full):
                    raise ValueError(f"{name!r}: slice is {kind.name} of {list(full)}, earlier slices were "
                                     f"{dtypes.name_of(full_entry.dtype)} of {list(full_entry.shape)}")
                key = slices.encode_slice_key(key, extents)
        if key in self._entries:
            raise ValueError(f"duplicate tensor {name!r}" + (f" slice {slices.slice_spec(extents or [])}" if full_entry else ""))
        last = self._shards[-1]
        if starts_new_shard(last.size, last.pieces, size, self.shard_size):
            self._new_shard()
        if full_entry is not None and extents is not None:
            if full_entry.shard_id < 0:
                full_entry.shard_id = len(self._shards) - 1
                self._entries[_key(name)] = full_entry
            full_entry.extents.append(list(extents))
        return key, self._shards[-1]

    def _record(self, key: bytes, dtype: int, shape: tuple[int, ...], size: int, checksum: int) -> None:
        shard = self._shards[-1]
        self._entries[key] = encode_entry(dtype, shape, shard_id=len(self._shards) - 1, offset=shard.size,
                                          size=size, crc32c=checksum)
        shard.size += size
        shard.pieces += 1

    def _write_index(self, out: BinaryIO, num_shards: int) -> None:
        table = TableBuilder(out)
        table.add(HEADER_KEY, encode_header(num_shards))
        for key in sorted(self._entries):
            value = self._entries[key]
            if isinstance(value, _FullEntry):
                value = encode_entry(value.dtype, value.shape, shard_id=value.shard_id, slices=value.extents)
            table.add(key, value)
        table.finish()


def _key(name: str) -> bytes:
    key = name.encode("utf-8", "surrogateescape")
    if key == HEADER_KEY:
        raise ValueError("a tensor cannot have an empty name (the key of the bundle header)")
    return key


def _dtype_of(array: np.ndarray, dtype: str | None) -> dtypes.DType:
    """The TensorFlow type of ``array``: ``dtype`` if given, else from numpy's type or the elements."""
    kind = dtypes.from_name(dtype if dtype is not None else dtypes.name_for_array(array))
    if kind.name == "resource":
        raise ValueError("resource tensors cannot be stored in a checkpoint")
    return kind


def _encode(array: np.ndarray, kind: dtypes.DType) -> tuple[int, Sequence[BytesLike], int | None]:
    """``(size, chunks, masked crc or None when it is to be computed over the chunks)``."""
    import numpy as np

    if kind.name == "string":
        return encode_strings(string_values(array))
    if kind.name == "variant":
        return encode_variants([v.SerializeToString() for v in array.reshape(-1)])
    storage = kind.numpy()
    little = np.ascontiguousarray(array, dtype=storage.newbyteorder("<")).reshape(-1)
    raw = little.view(np.uint8)
    return raw.nbytes, [raw.data], None


def _copy_range(source: int, target: int, offset: int, at: int, count: int) -> int:
    """Copy up to ``count`` bytes from ``source`` at ``offset`` to ``target`` at ``at``
    (neither file position moves); return how many were copied, 0 at the end of ``source``."""
    try:
        return os.copy_file_range(source, target, min(count, _COPY_CHUNK), offset, at)
    except (AttributeError, OSError):  # no copy_file_range (old kernel, other OS, some file systems)
        data = memoryview(os.pread(source, min(count, _FALLBACK_CHUNK), offset))
        written = 0
        while written < len(data):
            written += os.pwrite(target, data[written:], at + written)
        return len(data)
