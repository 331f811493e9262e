"""V2 checkpoints ("tensor bundles"): ``PREFIX.index`` plus ``PREFIX.data-NNNNN-of-NNNNN`` shards.

The index is a table (:mod:`metainspect.formats.table`) mapping ``""`` to a
``BundleHeaderProto`` and every tensor name to a ``BundleEntryProto``. Opening reads only the
index; data shards are memory-mapped on first use and numeric tensors are returned as
read-only zero-copy views of the mapping. String and variant tensors carry inline checksums
that are always checked; the per-tensor CRC32C is checked when asked.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from metainspect.errors import CorruptError
from metainspect.formats import crc, dtypes, slices
from metainspect.formats.bundle_codec import (
    HEADER_KEY,
    Endianness,
    TensorCorruptError,
    check_entry,
    crc_mismatch,
    decode_entry,
    decode_header,
    decode_numbers,
    decode_string_list,
    decode_strings,
    decode_variants,
    size_mismatch,
)
from metainspect.formats.filesystem import current_storage_options, storage_options
from metainspect.formats.source import ByteSource, open_source
from metainspect.formats.table import Table
from metainspect.formats.wire import BytesLike
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Bundle", "TensorCorruptError", "data_file_name", "raw_key"]


def data_file_name(prefix: str, shard_id: int, num_shards: int) -> str:
    """``PREFIX.data-00000-of-00001`` for shard 0 of 1."""
    return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"


class Bundle:
    """An opened V2 bundle: header, entries in key order, data shards opened on first use."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        table = Table.open(self.index_path)
        try:
            self._raw = self._read_entries(table)
        finally:
            table.close()
        self._parsed: dict[bytes, BundleEntryProto] = {}
        hidden: set[bytes] = set()
        # slice keys start with OrderedCode Num(0) = b"\x00", so in bytewise key order they all
        # come first: looking at the first key tells whether any exist
        if next(iter(self._raw), b"")[:1] == b"\x00":
            for key in self._raw:
                for proto in self._entry(key).slices:
                    hidden.add(slices.encode_slice_key(key, slices.extents_of(proto)))
        self._names = [k.decode("utf-8", "surrogateescape") for k in self._raw if k not in hidden]
        if self.num_shards > max(1, len(self._raw)):  # TensorFlow writes no shard without a tensor
            raise CorruptError(
                self.index_path, f"the header claims {self.num_shards} data shards for {len(self._raw)} index entries")
        self._paths = [data_file_name(prefix, i, self.num_shards) for i in range(self.num_shards)]
        self._shards: dict[int, ByteSource] = {}
        self._storage_options = current_storage_options()  # data shards behind URLs open as the index did

    def _read_entries(self, table: Table) -> dict[bytes, bytes]:
        """Serialized entries by key (parsed on first use, so opening stays cheap)."""
        entries: dict[bytes, bytes] = {}
        rows = iter(table)
        first = next(rows, None)
        if first is None:
            raise CorruptError(self.index_path, "empty index: no bundle header")
        if first[0] != HEADER_KEY:
            raise CorruptError(self.index_path, f"first key is {first[0]!r}, not the bundle header")
        header = decode_header(first[1], self.index_path)
        self.num_shards: int = header.num_shards
        self.endianness: Endianness = header.endianness
        self.big_endian: bool = header.endianness == "big"
        for key, value in rows:
            entries[key] = bytes(value)
        return entries

    def _entry(self, key: bytes) -> BundleEntryProto:
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = decode_entry(self._raw[key], self.index_path, key)
        return parsed

    def names(self) -> list[str]:
        """Tensor names in key (bytewise) order, slice keys hidden."""
        return list(self._names)

    def raw_entries(self) -> Iterator[tuple[str, bytes]]:
        """``(name, serialized BundleEntryProto)`` of every tensor in key order, slice keys hidden.

        For listing thousands of tensors without caching a parsed proto per tensor.
        """
        raw = self._raw
        if len(self._names) == len(raw):
            return zip(self._names, raw.values())
        return ((name, raw[raw_key(name)]) for name in self._names)

    def entry(self, name: str) -> BundleEntryProto:
        """The index entry of ``name`` (KeyError if absent)."""
        return self._entry(raw_key(name))

    def pieces(self, name: str) -> list[tuple[list[slices.Extent] | None, BundleEntryProto]]:
        """The stored pieces of ``name``: ``[(None, entry)]``, or one ``(extents, entry)`` per slice."""
        entry = self.entry(name)
        if not entry.slices:
            return [(None, entry)]
        out: list[tuple[list[slices.Extent] | None, BundleEntryProto]] = []
        for proto in entry.slices:
            extents = slices.extents_of(proto)
            key = slices.encode_slice_key(raw_key(name), extents)
            if key not in self._raw:
                raise CorruptError(
                    self.index_path, f"tensor {name!r}: slice {slices.slice_spec(extents)} has no entry (key {key!r})"
                )
            out.append((extents, self._entry(key)))
        return out

    def shard_path(self, shard_id: int) -> str:
        """The data file holding shard ``shard_id``."""
        if 0 <= shard_id < self.num_shards:
            return self._paths[shard_id]
        return data_file_name(self.prefix, shard_id, self.num_shards)

    def shard(self, shard_id: int) -> ByteSource:
        """The data shard ``shard_id`` (opened on first use, closed by :meth:`close`)."""
        source = self._shards.get(shard_id)
        if source is None:
            missing = f"data shard {shard_id} of {self.num_shards} is missing (expected beside {self.index_path})"
            with storage_options(self._storage_options):
                source = self._shards[shard_id] = open_source(self.shard_path(shard_id), missing=missing)
        return source

    def read(self, name: str, *, verify: bool = True) -> np.ndarray:
        """Decode tensor ``name`` (partitions reassembled) as a read-only numpy array."""
        entry = self.entry(name)
        if not entry.slices:
            array = self.read_piece(entry, f"tensor {name!r}", verify)
        else:
            array = self._assemble(name, entry, verify)
        array.flags.writeable = False
        return array

    def slice_parts(self, name: str, entry: BundleEntryProto, shape: tuple[int, ...], verify: bool,
                    ) -> list[tuple[tuple[slice, ...], partial[np.ndarray]]]:
        """The slices of partitioned tensor ``name`` for :func:`~metainspect.formats.slices.assemble`:
        each one's index in the tensor and a reader of its values.

        Everything the index says is checked before anything is allocated: each slice fits the
        tensor and its entry (dtype, rank, shape, bytes inside its shard, size for its shape),
        no two slices share bytes, and together they hold exactly the tensor's element count, so
        assembling never allocates more than the data files hold.
        """
        what = f"tensor {name!r}"
        parts = []
        spans = []
        total = 0
        for extents, part in self.pieces(name):
            assert extents is not None
            label = f"{what} slice {slices.slice_spec(extents)}"
            try:
                index = slices.bounds(extents, shape)
            except ValueError as exc:
                raise CorruptError(self.index_path, f"{what}: {exc}") from None
            _, piece_shape, _ = self._stored(part, label, full=entry)
            if piece_shape != tuple(s.stop - s.start for s in index):
                raise CorruptError(self.index_path, f"{label}: stored shape {list(piece_shape)} does not match the slice")
            total += math.prod(piece_shape)
            spans.append((part.shard_id, part.offset, part.size, label))
            parts.append((index, partial(self.read_piece, part, label, verify)))
        if total != math.prod(shape):
            raise CorruptError(self.index_path, f"{what}: slices cover {total} of {math.prod(shape)} elements")
        spans.sort()
        for (shard, start, size, label), (next_shard, next_start, _, next_label) in itertools.pairwise(spans):
            if shard == next_shard and next_start < start + size:
                raise CorruptError(self.index_path, f"{label} and {next_label} share bytes of data shard {shard}")
        return parts

    def _assemble(self, name: str, entry: BundleEntryProto, verify: bool) -> np.ndarray:
        what = f"tensor {name!r}"
        dtype, shape = check_entry(entry, self.index_path, what, self.num_shards)
        try:
            return slices.assemble(shape, dtype.numpy(), self.slice_parts(name, entry, shape, verify))
        except ValueError as exc:
            raise CorruptError(self.index_path, f"{what}: {exc}") from None

    def _stored(self, entry: BundleEntryProto, what: str, full: BundleEntryProto | None = None,
                ) -> tuple[dtypes.DType, tuple[int, ...], ByteSource]:
        """Check what the index says about one entry's bytes (see :func:`check_entry`; the bytes
        lie inside their shard and their size can hold the shape): its dtype, shape and shard."""
        dtype, shape = check_entry(entry, self.index_path, what, self.num_shards, full)
        source = self.shard(entry.shard_id)
        path, offset, size = source.name, entry.offset, entry.size
        if offset < 0 or size < 0 or offset + size > source.size:
            raise TensorCorruptError(
                path, offset, f"{what}: bytes {offset}..{offset + size} extend beyond the file ({source.size} bytes)"
            )
        count = math.prod(shape)
        if dtype.is_numeric:
            mismatch = size_mismatch(what, size, dtype, shape)
            if mismatch:
                raise TensorCorruptError(path, offset, mismatch)
        elif size < (count + 4 if dtype.name == "string" else 5 * count):
            raise TensorCorruptError(path, offset, f"{what}: {size} bytes cannot hold {count} {dtype.name} elements")
        return dtype, shape, source

    def read_piece(self, entry: BundleEntryProto, what: str, verify: bool = True) -> np.ndarray:
        """Decode the bytes one entry points at (a whole tensor or one slice), checking its
        CRC32C when ``verify``; ``what`` names it in errors."""
        dtype, shape, source = self._stored(entry, what)
        path, offset, size = source.name, entry.offset, entry.size
        if dtype.is_numeric:
            data = self._checked_numbers(entry, what, source) if verify else source.read(offset, size)
            return decode_numbers(data, dtype, self.endianness).reshape(shape)
        data = source.read(offset, size)
        count = math.prod(shape)
        try:
            if dtype.name == "string":
                values, actual = decode_strings(data, count, self.endianness)
            else:
                values, actual = decode_variants(data, count)
        except ValueError as exc:
            raise TensorCorruptError(path, offset, f"{what} at offset {offset}: {exc}") from None
        if verify and crc.mask(actual) != entry.crc32c:
            raise crc_mismatch(path, offset, size, what, entry.crc32c, crc.mask(actual))
        return values.reshape(shape)

    def read_strings(self, entry: BundleEntryProto, what: str, verify: bool = True) -> list[bytes]:
        """The strings of a string entry in order, as a list: :meth:`read_piece` without numpy."""
        _, shape, source = self._stored(entry, what)
        path, offset, size = source.name, entry.offset, entry.size
        data = source.read(offset, size)
        try:
            strings, actual = decode_string_list(data, math.prod(shape), self.endianness)
        except ValueError as exc:
            raise TensorCorruptError(path, offset, f"{what} at offset {offset}: {exc}") from None
        if verify and crc.mask(actual) != entry.crc32c:
            raise crc_mismatch(path, offset, size, what, entry.crc32c, crc.mask(actual))
        return strings
    def verify(self, name: str) -> None:
        """Check the stored bytes of ``name`` (every slice of a partitioned one) against their CRC32C.

        Numeric tensors are checksummed without being decoded; strings and variants are decoded,
        since their checksum covers their length prefixes. Raises what :meth:`read` raises for
        the same bytes (TensorCorruptError naming the tensor for a checksum mismatch).
        """
        entry = self.entry(name)
        what = f"tensor {name!r}"
        pieces: list[tuple[str, BundleEntryProto, BundleEntryProto | None]] = [(what, entry, None)]
        if entry.slices:
            pieces = [(f"{what} slice {slices.slice_spec(extents or [])}", part, entry)
                      for extents, part in self.pieces(name)]
        for label, part, full in pieces:
            dtype, _, source = self._stored(part, label, full)
            if dtype.is_numeric:
                self._checked_numbers(part, label, source)
            else:
                self.read_piece(part, label)

    @staticmethod
    def _checked_numbers(entry: BundleEntryProto, what: str, source: ByteSource) -> BytesLike:
        """The bytes of a numeric entry, checked against its CRC32C."""
        data = source.read(entry.offset, entry.size)
        actual = crc.mask(crc.crc32c(data))
        if actual != entry.crc32c:
            raise crc_mismatch(source.name, entry.offset, entry.size, what, entry.crc32c, actual)
        return data

    def close(self) -> None:
        """Close the data shards (arrays still in use keep their memory)."""
        for source in self._shards.values():
            source.close()
        self._shards.clear()


def raw_key(name: str) -> bytes:
    """The index key of tensor ``name`` (names that are not UTF-8 keep their bytes as surrogates)."""
    return name.encode("utf-8", "surrogateescape")
