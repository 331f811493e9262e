"""Moving the bytes of a rewrite: kernel copies, casts and byte swaps in chunks, CRC checks.

Pieces whose bytes do not change are copied inside the kernel (``copy_file_range``, in the
writer's background lanes) while another thread checks their stored CRC32C through
short-lived memory maps; every check has passed before any output file takes its final name.
Casts and byte swaps are converted chunk by chunk; V1 tensors, variants and big-endian strings
are decoded one tensor at a time. Memory stays bounded by a chunk, not by the tensor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from metainspect.checkpoint import StoredPiece
from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.formats import crc, dtypes, slices
from metainspect.formats.bundle_codec import Endianness, TensorCorruptError, crc_mismatch, decode_numbers, strings_crc
from metainspect.formats.bundle_writer import BundleWriter
from metainspect.formats.source import ByteSource, LocalFile
from metainspect.formats.wire import BytesLike
from metainspect.progress import Progress
from metainspect.rewrite.plan import Decided, RewriteOptions, RewritePlan, TensorPlan
from metainspect.rewrite.source import RewriteSource, SourceTensor

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CHUNK", "WRITING", "Converter", "checked", "crc_range", "write"]

#: bytes read, checked and written at a time
CHUNK = 8 << 20
#: the step a rewrite reports progress under (output data bytes)
WRITING = "writing"


def write(source: RewriteSource, plan: RewritePlan, decided: Decided, options: RewriteOptions,
          progress: Progress | None) -> list[str]:
    """Stream every kept piece into a new bundle; return the warnings (values a cast lost)."""
    assert plan.output is not None
    overflows: dict[str, tuple[int, str]] = {}
    written = 0  # bytes written by this thread; queued copies are counted by the writer
    writer = BundleWriter(plan.output, shard_size=options.shard_size, sync=options.sync)
    copier = _Copier(source, writer, decided.new_object_graph, options.verify)
    try:
        previous = None
        for tensor, tensor_plan, piece, index in decided.ordered(source):
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
                    progress(WRITING, written + writer.copied_bytes, plan.output_bytes)
        writer.wait(None if progress is None else lambda copied: progress(WRITING, written + copied, plan.output_bytes))
        copier.check_copied()
        if plan.in_place:
            moves = _move_to_backup(source, plan)
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

    def __init__(self, source: RewriteSource, writer: BundleWriter, new_object_graph: bytes | None,
                 verify: bool) -> None:
        self.source = source
        self.writer = writer
        self.new_object_graph = new_object_graph
        self.verify = verify
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crc32c")
        #: checksums of copied pieces being computed: (CRC, the piece, what it is)
        self._pending: list[tuple[Future[int], StoredPiece, str]] = []

    def close(self) -> None:
        self._checker.shutdown(cancel_futures=True)

    def check_copied(self) -> None:
        """Raise for the first copied piece (in writing order) whose bytes fail their CRC32C."""
        for pending, piece, what in self._pending:
            _check_crc(pending.result(), piece, what)
        self._pending.clear()

    def write(self, tensor: SourceTensor, plan: TensorPlan, piece: StoredPiece) -> tuple[bool, int]:
        """Write one piece, or queue its copy; return whether it was queued (its bytes then
        count in the writer's ``copied_bytes``) and how many finite values a cast could not
        represent. Queued copies are checked by :meth:`check_copied`."""
        assert plan.new_name is not None
        source, writer = self.source, self.writer
        new_dtype = dtypes.from_name(plan.new_dtype)
        if tensor.name == OBJECT_GRAPH_KEY and self.new_object_graph is not None:
            import numpy as np

            writer.add(OBJECT_GRAPH_KEY, np.array(self.new_object_graph, dtype=object), dtype="string")
            return False, 0
        if source.format == "v1" or (source.big_endian and not tensor.dtype.is_numeric):
            return False, self._decoded(tensor, plan.new_name, new_dtype, piece)
        full_shape = None if piece.extents is None else tensor.shape
        data = source.shard(piece.shard)
        what = f"tensor {tensor.name!r}" + ("" if piece.slice is None else f" slice {piece.slice}")
        if new_dtype == tensor.dtype and not source.big_endian:
            if self.verify and tensor.dtype.name == "string":
                _check_crc(_strings_crc(data, piece, what), piece, what)
            elif self.verify and tensor.dtype.is_numeric:  # checksummed on another core while the kernel copies
                self._pending.append((self._checker.submit(crc_range, data, piece.offset, piece.size), piece, what))
            elif self.verify:
                source.values(tensor.name)  # variants: decoded, every element's checksum checked
            if isinstance(data, LocalFile):
                writer.copy_bytes(plan.new_name, new_dtype.name, piece.shape, data.fileno(), piece.offset, piece.size,
                                  piece.crc32c, full_shape=full_shape, extents=piece.extents)
                return True, 0
            writer.add_bytes(plan.new_name, new_dtype.name, piece.shape, piece.size,
                             data.chunks(piece.offset, piece.size, CHUNK), crc32c=piece.crc32c, full_shape=full_shape,
                             extents=piece.extents)
            return False, 0
        chunks: Iterable[BytesLike] = data.chunks(piece.offset, piece.size, CHUNK)
        if self.verify:
            chunks = checked(chunks, piece, what)
        converter = Converter(tensor.dtype, new_dtype, source.big_endian)
        size = math.prod(piece.shape) * new_dtype.itemsize
        writer.add_bytes(plan.new_name, new_dtype.name, piece.shape, size, converter(chunks), full_shape=full_shape,
                         extents=piece.extents)
        return False, converter.overflow

    def _decoded(self, tensor: SourceTensor, new_name: str, new_dtype: dtypes.DType, piece: StoredPiece) -> int:
        """V1 tensors and big-endian strings: decode, cast if asked, encode again."""
        values = self.source.values(tensor.name)
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


def _move_to_backup(source: RewriteSource, plan: RewritePlan) -> list[tuple[str, str]]:
    """Move the input's files under the backup prefix (index first); return the moves done."""
    assert plan.backup is not None
    files = source.input_files()
    source.close()
    moves: list[tuple[str, str]] = []
    try:
        for path in files:
            if source.format == "v1":
                target = plan.backup
            elif path.endswith(".index"):
                target = plan.backup + ".index"
            else:
                target = plan.backup + path[len(source.prefix):]
            os.rename(path, target)
            moves.append((path, target))
    except BaseException:
        _undo(moves)
        raise
    return moves


def _undo(moves: list[tuple[str, str]]) -> None:
    for original, moved in reversed(moves):
        os.rename(moved, original)


def crc_range(data: ByteSource, offset: int, size: int) -> int:
    """CRC32C of ``size`` bytes at ``offset``, a chunk at a time."""
    running = 0
    for chunk in data.chunks(offset, size, CHUNK):
        running = crc.crc32c(chunk, running)
    return running


def _strings_crc(data: ByteSource, piece: StoredPiece, what: str) -> int:
    """The CRC32C of a string tensor's bytes, its layout checked without decoding the strings."""
    try:
        return strings_crc(data.chunks(piece.offset, piece.size, CHUNK), piece.size, math.prod(piece.shape))
    except ValueError as exc:
        raise TensorCorruptError(piece.file, piece.offset, f"{what} at offset {piece.offset}: {exc}") from None


def _check_crc(running: int, piece: StoredPiece, what: str) -> None:
    """Raise unless the unmasked CRC32C ``running`` matches the piece's stored (masked) one."""
    if crc.mask(running) != piece.crc32c:
        raise crc_mismatch(piece.file, piece.offset, piece.size, what, piece.crc32c, crc.mask(running))


def checked(chunks: Iterable[BytesLike], piece: StoredPiece, what: str) -> Iterator[BytesLike]:
    """Pass chunks through; after the last one, compare their CRC32C with the stored one."""
    running = 0
    for chunk in chunks:
        running = crc.crc32c(chunk, running)
        yield chunk
    _check_crc(running, piece, what)


class Converter:
    """Chunk by chunk: big-endian to little-endian and/or a cast between floating types."""

    def __init__(self, source: dtypes.DType, target: dtypes.DType, big_endian: bool) -> None:
        self.source = source
        self.target = target
        self.endianness: Endianness = "big" if big_endian else "little"
        self.overflow = 0

    def __call__(self, chunks: Iterable[BytesLike]) -> Iterator[memoryview]:
        import numpy as np

        for chunk in chunks:
            values = decode_numbers(chunk, self.source, self.endianness)
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
