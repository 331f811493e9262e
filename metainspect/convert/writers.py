"""Writing a planned conversion: safetensors files, an npz archive, or a TensorFlow checkpoint.

Every output is written under temporary names beside its final one and renamed only when
complete and checked (the index of a sharded output last); on any error the temporary files
are removed and nothing appears. Tensor bytes move the cheapest way the source allows: ranges
that already are the output's bytes are copied inside the kernel on the bundle writer's
background copy lanes (:class:`metainspect.formats.bundle_writer.CopyLanes`) while another
thread checks their stored CRC32C; others stream through one reused buffer, converted chunk by
chunk (byte order, ``--cast``); strings and layouts that need reassembly are decoded one tensor
at a time.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from metainspect.convert import npz, safetensors
from metainspect.convert.sources import Run, Source, SourceTensor
from metainspect.errors import CorruptError
from metainspect.formats import atomic, crc, dtypes
from metainspect.formats.bundle import crc_mismatch
from metainspect.formats.bundle_writer import BundleWriter, CopyLanes
from metainspect.formats.wire import BytesLike
from metainspect.progress import Progress
from metainspect.rewrite.stream import WRITING, Converter, crc_range

if TYPE_CHECKING:
    import numpy as np

@dataclass
class Item:
    """One kept tensor: where it comes from and what it becomes."""

    tensor: SourceTensor
    new_name: str
    new_dtype: dtypes.DType
    #: output data bytes
    nbytes: int
    #: npz: fixed width of a string tensor's elements
    width: int = 0


@dataclass
class SafetensorsFile:
    """One output ``.safetensors`` file (a copy lane: its background copies run in order)."""

    path: str
    entries: dict[str, safetensors.Entry]
    header: bytes
    jobs: deque[Callable[[], int]] = field(default_factory=deque)
    busy: bool = False

    @property
    def data_bytes(self) -> int:
        return sum(e.nbytes for e in self.entries.values())


class _Progress:
    """Bytes written by this thread plus bytes copied by the lanes, reported as they grow."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.written = 0
        self.copied = 0

    def wrote(self, count: int) -> None:
        self.written += count
        self._report()

    def copied_so_far(self, count: int) -> None:
        self.copied = count
        self._report()

    def _report(self) -> None:
        if self.callback is not None:
            self.callback(WRITING, self.written + self.copied, self.total)


class _Overflows:
    """Values a cast could not represent, per output tensor."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, str]] = {}

    def converted(self, item: Item, chunks: Iterable[BytesLike], big_endian: bool) -> Iterator[BytesLike]:
        """``chunks`` in the output's byte order and type."""
        if item.new_dtype == item.tensor.dtype and not big_endian:
            yield from chunks
            return
        converter = Converter(item.tensor.dtype, item.new_dtype, big_endian)
        yield from converter(chunks)
        if converter.overflow:
            count = self.counts.get(item.new_name, (0, ""))[0]
            self.counts[item.new_name] = (count + converter.overflow, item.new_dtype.name)

    def warnings(self) -> list[str]:
        return [f"{name}: {count} finite value(s) out of {dtype}'s range became inf or nan"
                for name, (count, dtype) in self.counts.items()]


def _copyable(source: Source, item: Item) -> list[Run] | None:
    return source.runs(item.tensor) if item.new_dtype == item.tensor.dtype else None


# -- safetensors ----------------------------------------------------------------------------------


def write_safetensors(source: Source, items: list[Item], files: list[SafetensorsFile], index: tuple[str, bytes] | None,
                      *, verify: bool, sync: bool, progress: Progress | None) -> list[str]:
    """Write ``files`` (and the Hugging Face ``index`` file of a sharded output); return warnings."""
    where = {name: (file, entry) for file in files for name, entry in file.entries.items()}
    report = _Progress(progress, sum(item.nbytes for item in items))
    overflows = _Overflows()
    lanes = CopyLanes()
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crc32c")
    pending: list[tuple[Future[int], Run]] = []
    fds: dict[str, int] = {}
    with ExitStack() as stack:
        index_temp = stack.enter_context(atomic.replacing(index[0], sync=sync)) if index else None
        temps = {file.path: stack.enter_context(atomic.replacing(file.path, sync=sync)) for file in files}
        try:
            for file in files:
                fds[file.path] = os.open(temps[file.path], os.O_RDWR)
                _pwrite(fds[file.path], file.header, 0)
            for item in items:
                file, entry = where[item.new_name]
                fd = fds[file.path]
                base = len(file.header) + entry.begin
                runs = _copyable(source, item)
                if runs is not None:
                    for run in runs:
                        lanes.copy(file, run.data.fileno(), fd, run.offset, base + run.at, run.size, run.what,
                                   _writeback(fd) if sync else None)
                        if verify and run.crc32c is not None:
                            pending.append((checker.submit(crc_range, run.data, run.offset, run.size), run))
                    continue
                chunks, big_endian = source.chunks(item.tensor)
                at = base
                for chunk in overflows.converted(item, chunks, big_endian):
                    _pwrite(fd, chunk, at)
                    at += len(chunk)
                    if sync:
                        _writeback(fd)(at - len(chunk), at)
                    report.wrote(len(chunk))
                _check_size(source, item, at - base)
            lanes.wait(report.copied_so_far)
            for future, run in pending:
                actual = crc.mask(future.result())
                if actual != run.crc32c:
                    raise crc_mismatch(run.path, run.offset, run.size, run.what, run.crc32c or 0, actual)
            if index is not None and index_temp is not None:
                with open(index_temp, "wb") as handle:
                    handle.write(index[1])
        finally:
            lanes.stop()
            checker.shutdown(cancel_futures=True)
            for fd in fds.values():
                os.close(fd)
    return overflows.warnings()


def _pwrite(fd: int, data: BytesLike, at: int) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written


def _writeback(fd: int) -> Callable[[int, int], None]:
    """Hand written bytes to the disk at once, as the bundle writer does, so the closing fsync
    is short and the output does not crowd the page cache."""

    def hand(start: int, end: int) -> None:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)

    return hand


def _check_size(source: Source, item: Item, written: int) -> None:
    if written != item.nbytes:
        raise CorruptError(source.path, f"tensor {item.tensor.name!r}: {written} bytes read, "
                                        f"{item.nbytes} expected")


def index_document(files: list[SafetensorsFile], metadata: dict[str, str] | None) -> bytes:
    """Hugging Face's ``*.safetensors.index.json``: total size and which file holds each tensor."""
    weight_map = {name: os.path.basename(file.path) for file in files for name in sorted(file.entries)}
    document = {"metadata": {"total_size": sum(f.data_bytes for f in files), **(metadata or {})},
                "weight_map": dict(sorted(weight_map.items()))}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# -- npz ------------------------------------------------------------------------------------------


def write_npz(source: Source, items: list[Item], path: str, metadata: dict[str, str], *, sync: bool,
              progress: Progress | None) -> list[str]:
    """Write the npz archive ``path``; return warnings."""
    report = _Progress(progress, sum(item.nbytes for item in items))
    overflows = _Overflows()
    warnings = []
    with atomic.replacing(path, sync=sync) as temp:
        writer = npz.NpzWriter(temp)
        try:
            import numpy as np

            for item in items:
                storage = npz.storage_dtype(item.new_dtype, item.width)
                if item.new_dtype.name == "string":
                    decoded = source.values(item.tensor)
                    values = fixed_width(decoded, item.width)
                    lost = _trailing_nuls(decoded)
                    if lost:
                        warnings.append(f"{item.new_name}: {lost} string(s) end in NUL bytes, which fixed-width "
                                        "numpy bytes drop")
                    report.wrote(writer.add(item.new_name, storage, item.tensor.shape, [values.reshape(-1).view(np.uint8).data]))
                    continue
                chunks, big_endian = source.chunks(item.tensor)
                counted = _counting(overflows.converted(item, chunks, big_endian), report)
                written = writer.add(item.new_name, storage, item.tensor.shape, counted)
                _check_size(source, item, written)
            writer.add_metadata(metadata)
        finally:
            writer.close()
    return overflows.warnings() + warnings


def _counting(chunks: Iterable[BytesLike], report: _Progress) -> Iterator[BytesLike]:
    for chunk in chunks:
        yield chunk
        report.wrote(memoryview(chunk).nbytes)


def string_width(values: np.ndarray) -> int:
    """The fixed width that holds every string of ``values`` (at least 1, as numpy's ``S1``)."""
    return max((len(v) for v in values.reshape(-1).tolist()), default=1) or 1


def fixed_width(values: np.ndarray, width: int) -> np.ndarray:
    """An object array of bytes as numpy fixed-width bytes ``S<width>``."""
    import numpy as np

    return np.array(values.reshape(-1).tolist(), dtype=f"S{width}").reshape(values.shape)


def _trailing_nuls(values: np.ndarray) -> int:
    return sum(1 for v in values.reshape(-1).tolist() if v.endswith(b"\x00"))


# -- TensorFlow checkpoints -----------------------------------------------------------------------


def write_checkpoint(source: Source, items: list[Item], prefix: str, state: tuple[str, bytes] | None, *,
                     shard_size: int | None, sync: bool, progress: Progress | None) -> list[str]:
    """Write a V2 checkpoint at ``prefix`` (and a ``checkpoint`` state file when ``state`` names
    one) with the pure bundle writer; return warnings."""
    report = _Progress(progress, sum(item.nbytes for item in items))
    overflows = _Overflows()
    writer = BundleWriter(prefix, shard_size=shard_size, sync=sync)
    try:
        for item in sorted(items, key=lambda i: i.new_name.encode("utf-8", "surrogateescape")):
            shape = item.tensor.shape
            if item.new_dtype.name == "string":
                writer.add(item.new_name, source.values(item.tensor), dtype="string")
                report.wrote(item.nbytes)
                continue
            runs = _copyable(source, item)
            if runs is not None and len(runs) == 1:
                run = runs[0]
                checksum = run.crc32c if run.crc32c is not None else crc.mask(crc_range(run.data, run.offset, run.size))
                writer.copy_bytes(item.new_name, item.new_dtype.name, shape, run.data.fileno(), run.offset, run.size,
                                  checksum)
                continue
            chunks, big_endian = source.chunks(item.tensor)
            counted = _counting(overflows.converted(item, chunks, big_endian), report)
            writer.add_bytes(item.new_name, item.new_dtype.name, shape, item.nbytes, counted)
        writer.wait(report.copied_so_far)
        writer.finish()
        if state is not None:
            atomic.write_bytes(state[0], state[1])
    except BaseException:
        writer.abort()
        raise
    return overflows.warnings()
