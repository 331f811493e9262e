"""TensorFlow's SSTable ("table") format: the container of ``.index`` files and V1 checkpoints.

Layout (LevelDB-derived): data blocks, an empty metaindex block, an index block, then a
48-byte footer holding the two block handles and the magic number. Every block is followed by
a 5-byte trailer (compression type, masked CRC32C of contents + type byte). Blocks hold
prefix-compressed keys with a restart array at the end. Every check raises
:class:`~metainspect.errors.CorruptError` with the file offset concerned; loops always advance
and no length read from the file is trusted before it is checked against the buffer.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass

from metainspect.errors import CorruptError, NotFoundError
from metainspect.formats import crc
from metainspect.formats.source import ByteSource, MemorySource, open_source
from metainspect.formats.wire import BytesLike, WireError, read_varint

FOOTER_SIZE = 48
TRAILER_SIZE = 5
MAGIC = bytes.fromhex("57fb808b247547db")
NO_COMPRESSION = 0
SNAPPY = 1
#: the largest expansion Snappy can achieve (a 3-byte copy of 64 bytes) is below 22x
_SNAPPY_MAX_RATIO = 22
#: blocks up to this size are copied to bytes before parsing (index blocks are ~4 KiB; V1
#: blocks holding whole tensors stay memory views)
_COPY_BLOCK_LIMIT = 64 * 1024


@dataclass(frozen=True)
class BlockHandle:
    """Where a block's contents lie in the file (``size`` excludes the 5-byte trailer)."""

    offset: int
    size: int


def has_magic(path: str | os.PathLike[str]) -> bool:
    """True when the file is at least a footer long and ends with the table magic number.

    A Git LFS pointer raises :class:`~metainspect.errors.LfsPointerError` (it stands for a file
    that may well be a table).
    """
    try:
        with open_source(path) as source:
            size = source.size
            return size >= FOOTER_SIZE and source.read_bytes(size - len(MAGIC), len(MAGIC)) == MAGIC
    except (NotFoundError, CorruptError, OSError, ValueError):  # unreadable, or a file that cannot be mapped
        return False


class Table:
    """A read-only table; iterate it for ``(key, value)`` pairs in key order.

    It reads through a :class:`~metainspect.formats.source.ByteSource` (which it closes in
    :meth:`close`): the footer, the index block, then data blocks as they are asked for.
    Bytes given instead of a source are read from memory, named ``path`` in errors.
    """

    def __init__(self, source: ByteSource | BytesLike, path: str | os.PathLike[str] | None = None) -> None:
        if not isinstance(source, ByteSource):
            source = MemorySource(source, os.fspath(path) if path is not None else "<memory>")
        self._source = source
        self.path = os.fspath(path) if path is not None else source.name
        size = source.size
        if size < FOOTER_SIZE:
            raise CorruptError(self.path, f"truncated: {size} bytes, a table needs a {FOOTER_SIZE}-byte footer")
        footer_at = size - FOOTER_SIZE
        footer = source.read(footer_at, FOOTER_SIZE)
        if bytes(footer[FOOTER_SIZE - len(MAGIC) :]) != MAGIC:
            raise CorruptError(self.path, "not a TensorFlow checkpoint index/table (bad magic)")
        footer = footer[: FOOTER_SIZE - len(MAGIC)]
        self._data_end = footer_at
        try:
            _, pos = _read_handle(footer, 0)  # the metaindex block is always empty: never read
            index_handle, _ = _read_handle(footer, pos)
        except WireError as exc:
            raise CorruptError(self.path, f"bad footer at offset {footer_at}: {exc}") from None
        self._check_handle(index_handle, "index block")
        self._index_keys: list[bytes] = []
        self._handles: list[BlockHandle] = []
        for key, value in self._block_entries(index_handle):
            try:
                handle, _ = _read_handle(value, 0)
            except WireError as exc:
                raise CorruptError(self.path, f"bad block handle in index entry {len(self._handles)}: {exc}") from None
            self._check_handle(handle, f"data block {len(self._handles)}")
            self._index_keys.append(key)
            self._handles.append(handle)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Table:
        """Open the table in file ``path`` (call :meth:`close` when done)."""
        source = open_source(path)
        try:
            return cls(source)
        except BaseException:
            source.close()
            raise

    def close(self) -> None:
        """Release the source (values still referenced stay valid)."""
        self._source.close()

    @property
    def source(self) -> ByteSource:
        """Where the table's bytes come from."""
        return self._source

    @property
    def file_size(self) -> int:
        """Size of the whole file in bytes."""
        return self._data_end + FOOTER_SIZE

    @property
    def blocks(self) -> tuple[BlockHandle, ...]:
        """The data blocks in file (and key) order."""
        return tuple(self._handles)

    def __iter__(self) -> Iterator[tuple[bytes, BytesLike]]:
        if not self._handles:
            return
        # one read for every data block (a remote source then makes one request, not one per block)
        first = min(h.offset for h in self._handles)
        span = self._source.read(first, max(h.offset + h.size for h in self._handles) + TRAILER_SIZE - first)
        for handle in self._handles:
            start = handle.offset - first
            yield from self._block_entries(handle, span[start : start + handle.size + TRAILER_SIZE])

    def first(self) -> tuple[bytes, BytesLike] | None:
        """The first entry, reading only the blocks up to it."""
        for handle in self._handles:
            for entry in self._block_entries(handle):
                return entry
        return None

    def block_entries(self, handle: BlockHandle) -> Iterator[tuple[bytes, BytesLike]]:
        """The entries of one data block, after checking its CRC (and decompressing it)."""
        return self._block_entries(handle)

    def get(self, key: bytes) -> tuple[BlockHandle, BytesLike] | None:
        """Look ``key`` up through the index; return its block and value, or None."""
        i = bisect.bisect_left(self._index_keys, key)
        if i == len(self._handles):
            return None
        handle = self._handles[i]
        for entry_key, value in self._block_entries(handle):
            if entry_key == key:
                return handle, value
            if entry_key > key:
                break
        return None

    def _check_handle(self, handle: BlockHandle, what: str) -> None:
        if handle.offset + handle.size + TRAILER_SIZE > self._data_end:
            raise CorruptError(
                self.path,
                f"{what} (offset {handle.offset}, size {handle.size}) extends beyond the data area "
                f"ending at offset {self._data_end}",
            )

    def _read_block(self, handle: BlockHandle, raw: BytesLike | None = None) -> BytesLike:
        """Verify a block's trailer CRC and return its (decompressed) contents; ``raw`` holds
        the block and its trailer when they were already read."""
        start, size = handle.offset, handle.size
        if raw is None:
            raw = self._source.read(start, size + TRAILER_SIZE)
        kind = raw[size]
        stored = int.from_bytes(raw[size + 1 : size + TRAILER_SIZE], "little")
        actual = crc.crc32c(raw[: size + 1])
        if crc.unmask(stored) != actual:
            raise CorruptError(
                self.path,
                f"block checksum mismatch for the block at offset {start} (size {size}): "
                f"stored {stored:#010x}, computed {crc.mask(actual):#010x}",
            )
        contents = raw[:size]
        if kind == NO_COMPRESSION:
            return contents
        if kind == SNAPPY:
            return self._decompress(contents, start)
        raise CorruptError(self.path, f"unknown block compression type {kind} at offset {start + size}")

    def _decompress(self, contents: BytesLike, start: int) -> memoryview:
        try:
            expected, _ = read_varint(contents, 0)
        except WireError as exc:
            raise CorruptError(self.path, f"snappy-compressed block at offset {start}: {exc}") from None
        if expected > _SNAPPY_MAX_RATIO * len(contents) + 64:
            raise CorruptError(
                self.path,
                f"snappy-compressed block at offset {start} claims {expected} bytes from {len(contents)}",
            )
        from cramjam import snappy

        try:
            out = bytes(snappy.decompress_raw(contents))
        except Exception as exc:  # noqa: BLE001  (cramjam raises its own DecompressionError, not exported)
            raise CorruptError(self.path, f"corrupted snappy-compressed block at offset {start}: {exc}") from None
        if len(out) != expected:
            raise CorruptError(
                self.path, f"snappy-compressed block at offset {start} decompressed to {len(out)} bytes, not {expected}")
        return memoryview(out)

    def _block_entries(self, handle: BlockHandle, raw: BytesLike | None = None) -> Iterator[tuple[bytes, BytesLike]]:
        """Decode a block's entries; values are memoryviews into big blocks, bytes from small ones."""
        block = self._read_block(handle, raw)
        where = handle.offset
        n = len(block)
        if n <= _COPY_BLOCK_LIMIT:  # indexing and slicing bytes is faster than a memoryview
            block = bytes(block)
        if n < 4:
            raise CorruptError(self.path, f"block at offset {where} is {n} bytes, too small for a restart count")
        restarts = int.from_bytes(block[n - 4 : n], "little")
        if 4 * (restarts + 1) > n:
            raise CorruptError(
                self.path, f"block at offset {where}: restart count {restarts} does not fit in its {n} bytes"
            )
        limit = n - 4 * (restarts + 1)
        pos = 0
        key = b""
        while pos < limit:
            entry_at = pos
            if pos + 3 <= limit and (block[pos] | block[pos + 1] | block[pos + 2]) < 0x80:
                shared, non_shared, value_len = block[pos], block[pos + 1], block[pos + 2]
                pos += 3
            else:
                try:
                    shared, pos = read_varint(block, pos, limit)
                    non_shared, pos = read_varint(block, pos, limit)
                    value_len, pos = read_varint(block, pos, limit)
                except WireError as exc:
                    raise CorruptError(self.path, f"bad entry in block at offset {where}: {exc}") from None
            if shared > len(key):
                raise CorruptError(
                    self.path,
                    f"entry at offset {entry_at} of block at offset {where} shares {shared} key bytes, "
                    f"previous key has {len(key)}",
                )
            end = pos + non_shared + value_len
            if end > limit:
                raise CorruptError(
                    self.path,
                    f"entry at offset {entry_at} of block at offset {where} runs past the block's entries "
                    f"({non_shared}+{value_len} bytes from {pos}, entries end at {limit})",
                )
            key = key[:shared] + bytes(block[pos : pos + non_shared])
            yield key, block[pos + non_shared : end]
            pos = end


def _read_handle(buf: BytesLike, pos: int) -> tuple[BlockHandle, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return BlockHandle(offset, size), pos
