"""The suite's own encoder of TensorFlow's table (SSTable) format: blocks, restarts, trailers,
footer (docs/formats.md, "Table files"), and the 204-byte .index TensorFlow wrote for a sample."""

from __future__ import annotations

import crc32c

MAGIC = bytes.fromhex("57fb808b247547db")

# FORMAT_NOTES §1.9: the complete 204-byte .index TensorFlow wrote for `emb` [10,4] in 2 slices
TF_INDEX_HEXDUMP = """
0000 0608 011a 0208 0100 0c13 0065 6d62
0001 0102 8085 8084 0801 1208 1202 0805
1202 0804 2850 35dd 911c 1908 0415 8585
8084 0801 1208 1202 0805 1202 0804 2050
2850 3554 4cb7 7e00 0322 656d 6208 0112
0812 0208 0a12 0208 043a 080a 0210 050a
0210 043a 0a0a 0408 0510 050a 0210 0400
0000 0001 0000 0000 7521 f105 0000 0000
0100 0000 00c0 f2a1 b000 0102 6600 7700
0000 0001 0000 0000 2ddf cba2 7c08 8901
0e00 0000 0000 0000 0000 0000 0000 0000
0000 0000 0000 0000 0000 0000 0000 0000
0000 0000 57fb 808b 2475 47db
"""
TF_INDEX = bytes.fromhex("".join(TF_INDEX_HEXDUMP.split()))


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def masked_crc(data: bytes) -> int:
    c = crc32c.crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def block_contents(entries: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    """Entries with prefix-compressed keys, then the restart array and its count (§1.4)."""
    out = bytearray()
    restarts = []
    previous = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += r.to_bytes(4, "little")
    out += len(restarts).to_bytes(4, "little")
    return bytes(out)


def with_trailer(contents: bytes, kind: int = 0) -> bytes:
    return contents + bytes([kind]) + masked_crc(contents + bytes([kind])).to_bytes(4, "little")


def assemble(blocks: list[tuple[bytes, bytes, int]]) -> bytes:
    """A table from ``(index key, stored block contents, compression type)`` data blocks."""
    out = bytearray()
    index_entries = []
    for index_key, stored, kind in blocks:
        index_entries.append((index_key, varint(len(out)) + varint(len(stored))))
        out += with_trailer(stored, kind)
    meta_handle = varint(len(out)) + varint(8)
    out += with_trailer(block_contents([]))
    index = block_contents(index_entries, restart_interval=1)
    index_handle = varint(len(out)) + varint(len(index))
    out += with_trailer(index)
    handles = meta_handle + index_handle
    out += handles + bytes(40 - len(handles)) + MAGIC
    return bytes(out)


def build_table(items: list[tuple[bytes, bytes]], per_block: int = 1000, snappy: bool = False) -> bytes:
    """A complete table holding ``items`` (sorted), ``per_block`` entries per data block."""
    blocks = []
    for start in range(0, len(items), per_block):
        chunk = items[start : start + per_block]
        contents = block_contents(chunk)
        kind = 0
        if snappy:
            import cramjam

            contents, kind = bytes(cramjam.snappy.compress_raw(contents)), 1
        blocks.append((chunk[-1][0], contents, kind))
    return assemble(blocks)
