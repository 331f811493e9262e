"""Write TensorFlow's SSTable ("table") format byte for byte as TensorFlow does.

The counterpart of :mod:`metainspect.formats.table`. TensorFlow's table builder, with the
options every checkpoint writer uses: data blocks flushed once their estimated size (entries +
restart array + count) reaches 256 KiB, a restart point every 16 entries, an entry of at
least twice the block size starting a block of its own, no compression. The index block has a
restart at every entry and keys that are short separators between blocks (a short successor
after the last block); the metaindex block is empty. Keys must be added in strictly
increasing bytewise order.
"""

from __future__ import annotations

from typing import BinaryIO

from metainspect.formats import crc
from metainspect.formats.table import FOOTER_SIZE, MAGIC, NO_COMPRESSION
from metainspect.formats.wire import encode_varint

#: TensorFlow's ``table::Options`` defaults (``table_options.h``)
BLOCK_SIZE = 262144
RESTART_INTERVAL = 16
#: an entry this many times the block size flushes the current block before it is added
_OVERSIZED_RATIO = 2


class _BlockBuilder:
    """One block being built: prefix-compressed entries, then the restart array."""

    def __init__(self, restart_interval: int) -> None:
        self.restart_interval = restart_interval
        self.buffer = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""

    @property
    def empty(self) -> bool:
        return not self.buffer

    def size_estimate(self) -> int:
        """Bytes the block would take if finished now."""
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.counter < self.restart_interval:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.counter = 0
        buffer = self.buffer
        buffer += encode_varint(shared)
        buffer += encode_varint(len(key) - shared)
        buffer += encode_varint(len(value))
        buffer += key[shared:]
        buffer += value
        self.last_key = key
        self.counter += 1

    def finish(self) -> bytes:
        """The block contents; the builder is reset for the next block."""
        out = self.buffer
        for offset in self.restarts:
            out += offset.to_bytes(4, "little")
        out += len(self.restarts).to_bytes(4, "little")
        self.buffer = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""
        return bytes(out)


class TableBuilder:
    """Stream a table to a binary file: :meth:`add` keys in order, then :meth:`finish`."""

    def __init__(self, out: BinaryIO, *, block_size: int = BLOCK_SIZE, restart_interval: int = RESTART_INTERVAL) -> None:
        self._out = out
        self._block_size = block_size
        self._data = _BlockBuilder(restart_interval)
        self._index = _BlockBuilder(1)
        self._offset = 0
        self._entries = 0
        self._last_key = b""
        #: handle of the last data block, waiting for the next key to pick its separator
        self._pending: bytes | None = None
        self._finished = False

    def add(self, key: bytes, value: bytes) -> None:
        """Append one entry; ``key`` must sort after every key added before it."""
        if self._finished:
            raise ValueError("table already finished")
        if self._entries:
            if key <= self._last_key:
                raise ValueError(f"table keys must increase: {key!r} after {self._last_key!r}")
            if len(key) + len(value) >= _OVERSIZED_RATIO * self._block_size:
                self._flush()
        if self._pending is not None:
            self._index.add(shortest_separator(self._last_key, key), self._pending)
            self._pending = None
        self._last_key = key
        self._entries += 1
        self._data.add(key, value)
        if self._data.size_estimate() >= self._block_size:
            self._flush()

    def finish(self) -> int:
        """Write the last data block, the metaindex and index blocks and the footer; return the file size."""
        if self._finished:
            raise ValueError("table already finished")
        self._flush()
        self._finished = True
        metaindex = self._write_block(_BlockBuilder(RESTART_INTERVAL).finish())
        if self._pending is not None:
            self._index.add(short_successor(self._last_key), self._pending)
            self._pending = None
        index = self._write_block(self._index.finish())
        handles = metaindex + index
        footer = handles + bytes(FOOTER_SIZE - len(MAGIC) - len(handles)) + MAGIC
        self._out.write(footer)
        self._offset += len(footer)
        return self._offset

    @property
    def num_entries(self) -> int:
        return self._entries

    def _flush(self) -> None:
        if self._data.empty:
            return
        self._pending = self._write_block(self._data.finish())

    def _write_block(self, contents: bytes) -> bytes:
        """Write a block and its trailer; return its encoded BlockHandle."""
        handle = encode_varint(self._offset) + encode_varint(len(contents))
        kind = bytes([NO_COMPRESSION])
        checksum = crc.mask(crc.crc32c(kind, crc.crc32c(contents)))
        self._out.write(contents)
        self._out.write(kind + checksum.to_bytes(4, "little"))
        self._offset += len(contents) + 1 + 4
        return handle


def build_table(items: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...], **options: int) -> bytes:
    """A whole table in memory from ``(key, value)`` pairs already sorted by key."""
    import io

    out = io.BytesIO()
    builder = TableBuilder(out, **options)
    for key, value in items:
        builder.add(key, value)
    builder.finish()
    return out.getvalue()


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key ``k`` with ``start <= k < limit`` (TensorFlow's choice, for index keys)."""
    common = min(len(start), len(limit))
    diff = 0
    while diff < common and start[diff] == limit[diff]:
        diff += 1
    if diff >= common:  # one is a prefix of the other: keep start
        return start
    byte = start[diff]
    if byte < 0xFF and byte + 1 < limit[diff]:
        return start[:diff] + bytes([byte + 1])
    return start


def short_successor(key: bytes) -> bytes:
    """A short key ``>= key``: the first byte that is not 0xff incremented, the rest cut off."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key
