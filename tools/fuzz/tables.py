"""Tables (SSTables) taken apart and rebuilt with chosen lies, for the table-bearing families.

:func:`read_entries` decodes a valid table through metainspect's own reader (seeds are written
by TensorFlow). :class:`Layout` rebuilds one from entries and can lie at every layer: an
entry's shared/unshared/value lengths, the restart array, the compression type and Snappy
payload, a block trailer's CRC, the index block's handles and order, the footer. Unless a CRC
lie is asked for, every block carries a valid CRC, so the damage reaches the parsers behind
the checksum instead of stopping at it.
"""

from __future__ import annotations

import random
from collections.abc import Sized
from dataclasses import dataclass, field

from metainspect.formats import crc
from metainspect.formats.table import MAGIC, Table
from metainspect.formats.wire import encode_varint
from tools.fuzz.mutators import INTERESTING_INTS, mutate_bytes, mutate_int

Entry = tuple[bytes, bytes]


def read_entries(data: bytes, name: str) -> list[Entry]:
    """Every ``(key, value)`` of a valid table, in order."""
    table = Table(data, name)
    try:
        return [(bytes(k), bytes(v)) for k, v in table]
    finally:
        table.close()


@dataclass
class Layout:
    """How to lay entries out; each field is a lie the encoder tells (defaults tell none)."""

    per_block: int = 1000
    restart_interval: int = 16
    #: block number -> compression type byte (1 = Snappy, compressed for real)
    compression: dict[int, int] = field(default_factory=dict)
    #: (block, entry) -> (shared, non_shared, value_len) written instead of the true ones
    entry_lies: dict[tuple[int, int], tuple[int | None, int | None, int | None]] = field(default_factory=dict)
    #: block -> restart count written instead of the true one
    restart_lies: dict[int, int] = field(default_factory=dict)
    #: block -> restart offsets garbled
    restart_junk: set[int] = field(default_factory=set)
    #: block -> stored CRC made wrong
    crc_lies: set[int] = field(default_factory=set)
    #: block -> Snappy body damaged after compression (CRC recomputed over the damage)
    snappy_damage: set[int] = field(default_factory=set)
    #: block -> Snappy length header replaced
    snappy_length_lies: dict[int, int] = field(default_factory=dict)
    #: index entry -> (offset, size) written instead of the block's
    handle_lies: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: index entries reversed
    index_reversed: bool = False
    #: the footer's index handle replaced
    footer_lie: tuple[int, int] | None = None
    #: bytes appended inside the data area before the index (shifts nothing: handles stay true)
    padding: bytes = b""


def encode(entries: list[Entry], layout: Layout, rng: random.Random) -> bytes:
    """A table file holding ``entries`` laid out as ``layout`` says (``rng`` for the junk it needs)."""
    out = bytearray()
    index: list[tuple[bytes, bytes]] = []
    chunks = [entries[i : i + max(1, layout.per_block)] for i in range(0, len(entries), max(1, layout.per_block))]
    for number, chunk in enumerate(chunks):
        contents = _block(chunk, number, layout, rng)
        kind = layout.compression.get(number, 0)
        stored = contents
        if kind == 1:
            stored = _snappy(contents, number, layout, rng)
        handle = (len(out), len(stored))
        if number in layout.handle_lies:
            handle = layout.handle_lies[number]
        index.append((chunk[-1][0], encode_varint(handle[0] % 2**64) + encode_varint(handle[1] % 2**64)))
        out += _with_trailer(stored, kind, number in layout.crc_lies)
    out += layout.padding
    meta_handle = encode_varint(len(out)) + encode_varint(8)
    out += _with_trailer(_block([], -1, Layout(), rng), 0, False)
    if layout.index_reversed:
        index.reverse()
    index_contents = _block(index, -1, Layout(restart_interval=1), rng)
    index_handle = (len(out), len(index_contents))
    if layout.footer_lie is not None:
        index_handle = layout.footer_lie
    out += _with_trailer(index_contents, 0, False)
    handles = meta_handle + encode_varint(index_handle[0] % 2**64) + encode_varint(index_handle[1] % 2**64)
    out += handles[:40] + bytes(max(0, 40 - len(handles))) + MAGIC
    return bytes(out)


def _block(entries: list[Entry], number: int, layout: Layout, rng: random.Random) -> bytes:
    out = bytearray()
    restarts = []
    previous = b""
    interval = max(1, layout.restart_interval)
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % interval == 0:
            restarts.append(len(out))
        else:
            limit = min(len(key), len(previous))
            while shared < limit and key[shared] == previous[shared]:
                shared += 1
        lengths = [shared, len(key) - shared, len(value)]
        lie = layout.entry_lies.get((number, i))
        if lie is not None:
            lengths = [true if said is None else said for true, said in zip(lengths, lie)]
        out += b"".join(encode_varint(n % 2**64) for n in lengths) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    if number in layout.restart_junk:
        restarts = [rng.choice(INTERESTING_INTS) % 2**32 for _ in restarts]
    for offset in restarts:
        out += offset.to_bytes(4, "little")
    count = layout.restart_lies.get(number, len(restarts))
    out += (count % 2**32).to_bytes(4, "little")
    return bytes(out)


def _snappy(contents: bytes, number: int, layout: Layout, rng: random.Random) -> bytes:
    import cramjam

    stored = bytes(cramjam.snappy.compress_raw(contents))
    if number in layout.snappy_length_lies:
        body = stored[_varint_length(stored) :]
        stored = encode_varint(layout.snappy_length_lies[number] % 2**64) + body
    if number in layout.snappy_damage:
        stored = mutate_bytes(rng, stored)
    return stored


def _varint_length(data: bytes) -> int:
    n = 0
    while n < len(data) and data[n] & 0x80:
        n += 1
    return n + 1


def _with_trailer(contents: bytes, kind: int, wrong_crc: bool) -> bytes:
    trailer_crc = crc.mask(crc.crc32c(contents + bytes([kind])))
    if wrong_crc:
        trailer_crc ^= 0x00010000
    return contents + bytes([kind]) + trailer_crc.to_bytes(4, "little")


def mutate_layout(rng: random.Random, layout: Layout, entries: Sized) -> str:
    """Add one lie to ``layout``; return its name (for the input's description)."""
    blocks = max(1, -(-len(entries) // max(1, layout.per_block)))
    block = rng.randrange(blocks)
    op = rng.randrange(13)
    if op == 0:
        layout.per_block = rng.choice((1, 2, 3, 7))
        return "blocks-split"
    if op == 1:
        layout.restart_interval = rng.choice((1, 2, 1000))
        return "restart-interval"
    if op == 2:
        layout.compression[block] = 1
        return "snappy"
    if op == 3:
        layout.compression[block] = rng.choice((1, 1, 2, 3, 0x7F, 0xFF))
        if layout.compression[block] == 1:
            layout.snappy_damage.add(block)
        return "compression-type"
    if op == 4:
        layout.compression[block] = 1
        layout.snappy_length_lies[block] = rng.choice(INTERESTING_INTS) % 2**64
        return "snappy-length"
    if op == 5:
        count = min(len(entries), max(1, layout.per_block))
        entry = rng.randrange(max(1, count))
        lie: list[int | None] = [None, None, None]
        slot = rng.randrange(3)
        lie[slot] = mutate_int(rng, 3, 0, 2**64 - 1)
        layout.entry_lies[(block, entry)] = (lie[0], lie[1], lie[2])
        return ("shared", "non-shared", "value-length")[slot] + "-lie"
    if op == 6:
        layout.restart_lies[block] = rng.choice(INTERESTING_INTS) % 2**32
        return "restart-count"
    if op == 7:
        layout.restart_junk.add(block)
        return "restart-offsets"
    if op == 8:
        layout.crc_lies.add(block)
        return "block-crc"
    if op == 9:
        layout.handle_lies[block] = (mutate_int(rng, 0, 0, 2**64 - 1), mutate_int(rng, 100, 0, 2**64 - 1))
        return "block-handle"
    if op == 10:
        layout.index_reversed = True
        return "index-order"
    if op == 11:
        layout.footer_lie = (mutate_int(rng, 0, 0, 2**64 - 1), mutate_int(rng, 50, 0, 2**64 - 1))
        return "footer-handle"
    layout.padding = rng.randbytes(rng.choice((1, 5, 48)))
    return "padding"
