"""The input families: seeds from ``sample_meta/`` (written by TensorFlow) and their mutators.

Each family decodes its seeds once into a model of the format (table entries and layout, bundle
header and entries, V1 records, graph protos, state files…), applies one to four structured
mutations to a copy, and writes the files back, CRCs recomputed unless a mutation lies about
them. A few inputs also get raw byte havoc on one file at the end.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from google.protobuf.message import Message

from metainspect.formats import crc, slices
from metainspect.formats.wire import encode_varint
from metainspect.proto.saved_tensor_slice_pb2 import SavedTensorSlices
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto, BundleHeaderProto
from tools.fuzz import tables
from tools.fuzz.case import Case
from tools.fuzz.mutators import (
    INTERESTING_BYTES,
    INTERESTING_INTS,
    mutate_bytes,
    mutate_int,
    mutate_message,
    mutate_string,
    mutate_wire,
    pick_weighted,
)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_meta"
#: what a case is run through (see tools.fuzz.targets)
CHECKPOINT, GRAPH, CHECK = "checkpoint", "graph", "check"
#: DataType values worth trying: every real one, references, resource/variant, unknown ones
DTYPES = (*range(0, 34), 101, 107, 120, 20, 21, 7, 7, 1, 1, 3, 9, 99, 2**31 - 1)
_HAVOC = 0.05


@dataclass
class Seed:
    name: str
    files: dict[str, bytes]
    entry: str
    targets: tuple[str, ...]


def _load(directory: str, names: list[str] | None = None, *, under: str = "") -> dict[str, bytes]:
    root = SAMPLES / directory
    paths = [root / n for n in names] if names else [p for p in sorted(root.rglob("*")) if p.is_file()]
    return {under + p.relative_to(root).as_posix(): p.read_bytes() for p in paths
            if not p.name.startswith("golden") and p.name != "fingerprint.pb"}


class Family:
    """A family of inputs: ``generate(rng)`` makes one case from a random seed."""

    name = ""
    description = ""

    def __init__(self) -> None:
        self._seeds: list[Seed] | None = None
        self._models: dict[str, Any] = {}

    def seeds(self) -> list[Seed]:
        if self._seeds is None:
            self._seeds = self.load_seeds()
        return self._seeds

    def load_seeds(self) -> list[Seed]:
        raise NotImplementedError

    def decode(self, seed: Seed) -> Any:
        """The seed's model (decoded once, copied for every input)."""
        raise NotImplementedError

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        raise NotImplementedError

    def render(self, model: Any, rng: random.Random) -> dict[str, bytes]:
        raise NotImplementedError

    def generate(self, rng: random.Random) -> tuple[Case, tuple[str, ...]]:
        seed = rng.choice(self.seeds())
        if seed.name not in self._models:
            self._models[seed.name] = self.decode(seed)
        model = copy.deepcopy(self._models[seed.name])
        steps = []
        for _ in range(1 + min(3, int(rng.expovariate(1.2)))):
            steps.append(pick_weighted(rng, self.mutations())(rng, model))
        files = self.render(model, rng)
        case = Case(self.name, seed.name, files, getattr(model, "entry", seed.entry), getattr(model, "links", {}), steps)
        if rng.random() < _HAVOC and files:
            name = rng.choice(sorted(files))
            files[name] = mutate_bytes(rng, files[name])
            steps.append(f"havoc:{name}")
        return case, seed.targets


# -- V2 bundles ------------------------------------------------------------------------------------

_V2_SEEDS = (
    ("mlp", "mlp", ["model.ckpt-3.index", "model.ckpt-3.data-00000-of-00001", "checkpoint"], "model.ckpt-3", (CHECKPOINT,)),
    ("dtypes", "ckpt_dtypes", None, ".", (CHECKPOINT,)),
    ("partitioned", "ckpt_partitioned", None, "model.ckpt", (CHECKPOINT, CHECK)),
    ("tf1_sharded", "ckpt_tf1_sharded", None, "model.ckpt", (CHECKPOINT, CHECK)),
    ("tf2", "ckpt_tf2", None, ".", (CHECKPOINT,)),
    ("tf2_slots", "ckpt_tf2_slots", None, ".", (CHECKPOINT,)),
    ("savedmodel_tf2", "savedmodel_tf2", None, ".", (CHECKPOINT, CHECK)),
    ("partitioned_mismatch", "check/partitioned_mismatch", None, "model.ckpt", (CHECKPOINT, CHECK)),
    ("device_pinned", "check/device_pinned", None, "model.ckpt", (CHECKPOINT, CHECK)),
)


@dataclass
class BundleModel:
    files: dict[str, bytes]
    index: str
    header: BundleHeaderProto
    #: [key, entry proto or raw (possibly damaged) bytes]
    entries: list[list[Any]]
    layout: tables.Layout = field(default_factory=tables.Layout)
    raw_header: bytes | None = None
    header_position: int = 0
    #: the values of partitioned tensors, by key (the slices family re-partitions them)
    values: dict[bytes, Any] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.index[: -len(".index")]

    def shard_name(self, shard_id: int) -> str:
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.header.num_shards:05d}"

    def parsed(self) -> list[tuple[bytes, BundleEntryProto]]:
        return [(k, v) for k, v in self.entries if isinstance(v, BundleEntryProto)]

    def tensor_bytes(self, entry: BundleEntryProto) -> bytes | None:
        data = self.files.get(self.shard_name(entry.shard_id))
        if data is None or entry.offset + entry.size > len(data) or entry.offset < 0:
            return None
        return data[entry.offset : entry.offset + entry.size]

    def store(self, entry: BundleEntryProto, data: bytes, *, fix_crc: bool) -> None:
        """Append ``data`` to the entry's shard and point the entry at it."""
        name = self.shard_name(entry.shard_id)
        if name not in self.files:
            return
        entry.offset = len(self.files[name])
        entry.size = len(data)
        self.files[name] += data
        if fix_crc:
            entry.crc32c = crc.mask(crc.crc32c(data))


def _bundle_seeds() -> list[Seed]:
    seeds = []
    for name, directory, files, entry, targets in _V2_SEEDS:
        seeds.append(Seed(name, _load(directory, files), entry, targets))
    return seeds


def _decode_bundle(seed: Seed) -> BundleModel:
    index = next(n for n in sorted(seed.files) if n.endswith(".index"))
    rows = tables.read_entries(seed.files[index], index)
    header = BundleHeaderProto.FromString(rows[0][1])
    entries = [[key, BundleEntryProto.FromString(value)] for key, value in rows[1:]]
    return BundleModel(dict(seed.files), index, header, entries)


def _render_bundle(model: BundleModel, rng: random.Random) -> dict[str, bytes]:
    rows = [(k, v if isinstance(v, bytes) else v.SerializeToString()) for k, v in model.entries]
    header = model.raw_header if model.raw_header is not None else model.header.SerializeToString()
    rows.insert(min(model.header_position, len(rows)), (b"", header))
    files = dict(model.files)
    files[model.index] = tables.encode(rows, model.layout, rng)
    return files


def _pick_entry(rng: random.Random, model: BundleModel, want: Callable[[BundleEntryProto], bool] | None = None
                ) -> BundleEntryProto | None:
    parsed = [v for _, v in model.parsed() if want is None or want(v)]
    return rng.choice(parsed) if parsed else None


def _mutate_shape(rng: random.Random, shape: Any) -> str:
    roll = rng.randrange(6)
    if roll == 0 or not shape.dim:
        for _ in range(rng.choice((1, 2, 31, 33, 40, 64))):
            shape.dim.add(size=rng.choice((1, 2, 0, 3)))
        return "dims-added"
    dim = rng.choice(shape.dim)
    if roll == 1:
        dim.size = rng.choice((-1, -2, -(2**63), 2**31, 2**40, 2**62, 2**63 - 1))
        return "dim-hostile"
    if roll == 2:
        for d in shape.dim:
            d.size = rng.choice((2**20, 2**24, 2**32, 10**6))
        return "dims-huge"
    if roll == 3:
        shape.unknown_rank = True
        return "unknown-rank"
    if roll == 4:
        del shape.dim[rng.randrange(len(shape.dim))]
        return "dim-removed"
    dim.size = mutate_int(rng, dim.size)
    return "dim"


def _bundle_mutations(extra: list[tuple[int, Callable[[random.Random, BundleModel], str]]]
                      ) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
    def header_field(rng: random.Random, model: BundleModel) -> str:
        which = rng.randrange(4)
        if which == 0:
            model.header.num_shards = rng.choice((0, 2, 99999, 100000, 10**9, 2**31 - 1, -1, -(2**31)))
            return "num-shards"
        if which == 1:
            model.header.endianness = rng.choice((1, 1, 2, 7, -1))  # type: ignore[assignment]
            return "endianness"
        if which == 2:
            version = model.header.version
            version.producer = rng.choice((-1, 0, 2, 2**31 - 1))
            version.min_consumer = rng.choice((0, 1, 2, -1))
            if rng.random() < 0.3:
                version.bad_consumers.append(rng.choice((0, 1, 2)))
            return "version"
        mutate_message(rng, model.header)
        return "header-message"

    def header_wire(rng: random.Random, model: BundleModel) -> str:
        if rng.random() < 0.3:
            model.header_position = rng.randrange(len(model.entries) + 1)
            return "header-moved"
        model.raw_header = mutate_wire(rng, model.header.SerializeToString())
        return "header-wire"

    def entry_field(rng: random.Random, model: BundleModel) -> str:
        entry = _pick_entry(rng, model)
        if entry is None:
            return "no-entry"
        which = rng.randrange(7)
        if which == 0:
            entry.dtype = rng.choice(DTYPES)
            return "dtype"
        if which == 1:
            return "shape:" + _mutate_shape(rng, entry.shape)
        if which == 2:
            entry.shard_id = rng.choice((1, 2, -1, 99999, 2**31 - 1))
            return "shard-id"
        if which == 3:
            entry.offset = mutate_int(rng, entry.offset)
            return "offset"
        if which == 4:
            entry.size = mutate_int(rng, entry.size)
            return "size"
        if which == 5:
            entry.crc32c = rng.getrandbits(32)
            return "crc"
        mutate_message(rng, entry)
        return "entry-message"

    def entry_wire(rng: random.Random, model: BundleModel) -> str:
        if not model.entries:
            return "no-entry"
        row = rng.choice(model.entries)
        raw = row[1] if isinstance(row[1], bytes) else row[1].SerializeToString()
        row[1] = mutate_wire(rng, raw)
        return "entry-wire"

    def keys(rng: random.Random, model: BundleModel) -> str:
        if not model.entries:
            return "no-entry"
        i = rng.randrange(len(model.entries))
        which = rng.randrange(5)
        if which == 0:
            key = model.entries[i][0]
            k = rng.randrange(len(key) + 1)
            model.entries[i][0] = key[:k] + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00")) + key[k:]
            return "key-bytes"
        if which == 1:
            model.entries.insert(i, [model.entries[i][0], copy.deepcopy(model.entries[i][1])])
            return "key-duplicated"
        if which == 2:
            del model.entries[i]
            return "key-removed"
        if which == 3:
            j = rng.randrange(len(model.entries))
            model.entries[i], model.entries[j] = model.entries[j], model.entries[i]
            return "keys-swapped"
        model.entries.insert(i, [rng.choice(INTERESTING_BYTES) or b"\x01", copy.deepcopy(model.entries[i][1])])
        return "key-added"

    def data(rng: random.Random, model: BundleModel) -> str:
        shards = [n for n in model.files if ".data-" in n]
        if not shards:
            return "no-data"
        name = rng.choice(shards)
        which = rng.randrange(4)
        if which == 0:
            del model.files[name]
            return "shard-removed"
        if which == 1:
            model.files[name] = model.files[name][: rng.randrange(len(model.files[name]) + 1)]
            return "shard-truncated"
        entry = _pick_entry(rng, model, lambda e: e.size > 0 and e.shard_id < 2**20)
        if entry is None:
            return "no-entry"
        raw = model.tensor_bytes(entry)
        if raw is None:
            return "no-bytes"
        model.store(entry, mutate_bytes(rng, raw), fix_crc=which == 2)
        return "tensor-bytes" + ("-crc-fixed" if which == 2 else "")

    def layout(rng: random.Random, model: BundleModel) -> str:
        return "layout:" + tables.mutate_layout(rng, model.layout, model.entries)

    return [(3, header_field), (1, header_wire), (8, entry_field), (2, entry_wire), (2, keys), (3, data), (1, layout),
            *extra]


class BundleFamily(Family):
    name = "bundle"
    description = "V2 index entries and header: dtypes, shapes, shard ids, offsets, sizes, CRCs, num_shards, versions"

    def load_seeds(self) -> list[Seed]:
        return _bundle_seeds()

    def decode(self, seed: Seed) -> BundleModel:
        return _decode_bundle(seed)

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        return _bundle_mutations([])

    def render(self, model: BundleModel, rng: random.Random) -> dict[str, bytes]:
        return _render_bundle(model, rng)


# -- string and variant tensors ----------------------------------------------------------------------


def _string_layout(lengths: list[int], body: bytes, *, fix_length_crc: bool, rng: random.Random) -> bytes:
    """Varint lengths, their masked CRC32C (over 4- or 8-byte little-endian lengths), the bytes."""
    lengths = [n % 2**64 for n in lengths]
    running = crc.crc32c(b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little") for n in lengths))
    stored = crc.mask(running) if fix_length_crc else rng.getrandbits(32)
    return b"".join(encode_varint(n % 2**64) for n in lengths) + stored.to_bytes(4, "little") + body


def _split_strings(data: bytes, count: int) -> tuple[list[int], bytes] | None:
    pos, lengths = 0, []
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= len(data):
                return None
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        lengths.append(value)
    return lengths, data[pos + 4 :]


def _variant_layout(bodies: list[bytes], *, lie: int | None, fix: bool) -> bytes:
    out = bytearray()
    running = 0
    for i, body in enumerate(bodies):
        running = crc.crc32c(body, crc.crc32c(len(body).to_bytes(8, "little"), running))
        stored = crc.mask(running) if fix or i else running
        out += encode_varint((lie if lie is not None and i == 0 else len(body)) % 2**64) + body
        out += stored.to_bytes(4, "little")
        running = crc.crc32c(stored.to_bytes(4, "little"), running)
    return bytes(out)


class StringsFamily(BundleFamily):
    name = "strings"
    description = "string and variant tensors: varint length prefixes, the length CRC, element counts, variant elements"

    def load_seeds(self) -> list[Seed]:
        keep = ("dtypes", "tf2", "tf2_slots", "savedmodel_tf2")
        return [s for s in _bundle_seeds() if s.name in keep]

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def lengths(rng: random.Random, model: BundleModel) -> str:
            entry = _pick_entry(rng, model, lambda e: e.dtype == 7)
            raw = model.tensor_bytes(entry) if entry else None
            count = 1
            for d in entry.shape.dim if entry else ():
                count *= max(d.size, 0)
            split = _split_strings(raw, count) if raw is not None and count < 10**6 else None
            if entry is None or split is None:
                return "no-string"
            values, body = split
            which = rng.randrange(5)
            if which == 0 and values:
                i = rng.randrange(len(values))
                values[i] = rng.choice((0, 1, 2**32 - 1, 2**32, 2**40, 2**63, 2**64 - 1, values[i] + 1))
            elif which == 1:
                body = body[: rng.randrange(len(body) + 1)]
            elif which == 2:
                values.append(rng.choice((0, 5, 2**31)))
            elif which == 3 and values:
                values.pop()
            else:
                body += rng.randbytes(rng.randrange(1, 9))
            fix = rng.random() < 0.8
            model.store(entry, _string_layout(values, body, fix_length_crc=fix, rng=rng), fix_crc=rng.random() < 0.8)
            return "string-lengths" + ("" if fix else "-crc")

        def overlong(rng: random.Random, model: BundleModel) -> str:
            entry = _pick_entry(rng, model, lambda e: e.dtype == 7)
            if entry is None:
                return "no-string"
            prefix = rng.choice((b"\x80" * 10 + b"\x01", b"\xff" * 9 + b"\x7f", b"\x80" * 11, b"\xff\xff\xff\xff\x0f"))
            model.store(entry, prefix + rng.randbytes(rng.randrange(4, 12)), fix_crc=True)
            return "string-varint"

        def count(rng: random.Random, model: BundleModel) -> str:
            entry = _pick_entry(rng, model, lambda e: e.dtype in (7, 21))
            if entry is None:
                return "no-string"
            del entry.shape.dim[:]
            for _ in range(rng.choice((1, 2, 3))):
                entry.shape.dim.add(size=rng.choice((0, 1, 3, 1000, 10**6, 2**31, 2**40)))
            return "element-count"

        def variants(rng: random.Random, model: BundleModel) -> str:
            entry = _pick_entry(rng, model, lambda e: e.dtype == 21)
            raw = model.tensor_bytes(entry) if entry else None
            if entry is None or raw is None:
                return "no-variant"
            from tensorboard.compat.proto.tensor_pb2 import VariantTensorDataProto

            body = raw[_varint_end(raw) : -4] if len(raw) > 5 else b""
            try:
                proto = VariantTensorDataProto.FromString(body)
                mutate_message(rng, proto)
                body = proto.SerializeToString()
            except Exception:  # noqa: BLE001  (a seed's element that does not parse stays raw)
                body = mutate_bytes(rng, body)
            if rng.random() < 0.3:
                body = mutate_wire(rng, body)
            bodies = [body] * rng.choice((1, 1, 2))
            lie = rng.choice((None, None, 0, len(body) + 1, 2**40, 2**64 - 1))
            model.store(entry, _variant_layout(bodies, lie=lie, fix=rng.random() < 0.8), fix_crc=rng.random() < 0.8)
            return "variant-element"

        def to_string(rng: random.Random, model: BundleModel) -> str:
            entry = _pick_entry(rng, model)
            if entry is None:
                return "no-entry"
            entry.dtype = rng.choice((7, 21))  # type: ignore[assignment]
            return "retyped-string"

        return [(6, lengths), (2, overlong), (2, count), (3, variants), (2, to_string)]


def _varint_end(data: bytes) -> int:
    n = 0
    while n < len(data) and data[n] & 0x80:
        n += 1
    return n + 1


# -- slices ----------------------------------------------------------------------------------------


class SlicesFamily(BundleFamily):
    name = "slices"
    description = "partitioned tensors: full shapes, slice extents, slice keys, slice entries"

    def load_seeds(self) -> list[Seed]:
        return [s for s in _bundle_seeds() if s.name in ("partitioned", "partitioned_mismatch")]

    def decode(self, seed: Seed) -> BundleModel:
        """The bundle, and the values of its partitioned tensors (read once, through metainspect)."""
        import tempfile

        from metainspect import open_checkpoint

        model = _decode_bundle(seed)
        with tempfile.TemporaryDirectory() as directory:
            for name, data in seed.files.items():
                (Path(directory) / name).write_bytes(data)
            with open_checkpoint(Path(directory) / model.prefix) as ckpt:
                model.values = {key: ckpt.get(key.decode()).copy() for key, entry in model.parsed() if entry.slices}
        return model

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def repartition(rng: random.Random, model: BundleModel) -> str:
            """Store a partitioned tensor as other valid slices: new cuts along one axis, true CRCs."""
            found = full(model, rng)
            if found is None or found[0] not in model.values:
                return "no-slices"
            key, entry = found
            values = model.values[key]
            axis = rng.randrange(values.ndim) if values.ndim else 0
            if not values.ndim or values.shape[axis] < 2:
                return "no-axis"
            cuts = sorted(rng.sample(range(1, values.shape[axis]), rng.randrange(0, min(4, values.shape[axis] - 1) + 1)))
            stale = {slices.encode_slice_key(key, slices.extents_of(p)) for p in entry.slices}
            model.entries = [row for row in model.entries if row[0] not in stale]
            del entry.slices[:]
            for start, stop in zip([0, *cuts], [*cuts, values.shape[axis]]):
                extents = [(start, stop - start) if a == axis else slices.FULL for a in range(values.ndim)]
                proto = entry.slices.add()
                for a, (begin, length) in enumerate(extents):
                    ext = proto.extent.add()
                    if a == axis:
                        ext.start, ext.length = begin, length
                index = tuple(slice(start, stop) if a == axis else slice(None) for a in range(values.ndim))
                piece = BundleEntryProto(dtype=entry.dtype)
                for size in values[index].shape:
                    piece.shape.dim.add(size=size)
                model.store(piece, values[index].astype(values.dtype.newbyteorder("<")).tobytes(), fix_crc=True)
                model.entries.append([slices.encode_slice_key(key, extents), piece])
            model.entries.sort(key=lambda row: row[0])
            return f"repartition:{len(cuts) + 1}"

        def full(model: BundleModel, rng: random.Random) -> tuple[bytes, BundleEntryProto] | None:
            found = [(k, v) for k, v in model.parsed() if v.slices]
            return rng.choice(found) if found else None

        def rekey(model: BundleModel, key: bytes, old: list[slices.Extent], new: list[slices.Extent]) -> None:
            old_key, new_key = slices.encode_slice_key(key, old), slices.encode_slice_key(key, new)
            for row in model.entries:
                if row[0] == old_key:
                    row[0] = new_key
            model.entries.sort(key=lambda row: row[0])

        def full_shape(rng: random.Random, model: BundleModel) -> str:
            found = full(model, rng)
            if found is None:
                return "no-slices"
            _, entry = found
            if rng.random() < 0.5:
                for dim in entry.shape.dim:
                    dim.size = rng.choice((2**20, 2**22, 2**24, 2**31, 10**7))
                return "full-shape-huge"
            return "full-shape:" + _mutate_shape(rng, entry.shape)

        def extent(rng: random.Random, model: BundleModel) -> str:
            found = full(model, rng)
            if found is None:
                return "no-slices"
            key, entry = found
            proto = rng.choice(entry.slices)
            old = slices.extents_of(proto)
            if not proto.extent:
                proto.extent.add()
            ext = rng.choice(proto.extent)
            which = rng.randrange(5)
            if which == 0:
                ext.start = mutate_int(rng, ext.start)
            elif which == 1:
                ext.length = mutate_int(rng, ext.length if ext.HasField("length") else 0)
            elif which == 2:
                ext.ClearField("length")
            elif which == 3:
                proto.extent.add(start=0, length=rng.choice((1, 2**40)))
            else:
                del proto.extent[-1]
            if rng.random() < 0.7:
                rekey(model, key, old, slices.extents_of(proto))
                return "extent-rekeyed"
            return "extent"

        def add_slice(rng: random.Random, model: BundleModel) -> str:
            found = full(model, rng)
            if found is None:
                return "no-slices"
            _, entry = found
            proto = entry.slices.add()
            proto.CopyFrom(rng.choice(entry.slices[:-1]) if len(entry.slices) > 1 else proto)
            if rng.random() < 0.5:
                del entry.slices[: rng.randrange(len(entry.slices))]
            return "slice-duplicated"

        def slice_entry(rng: random.Random, model: BundleModel) -> str:
            pieces = [v for k, v in model.parsed() if k[:1] == b"\x00"]
            if not pieces:
                return "no-slices"
            entry = rng.choice(pieces)
            if rng.random() < 0.5:
                return "piece-shape:" + _mutate_shape(rng, entry.shape)
            entry.dtype = rng.choice(DTYPES)
            return "piece-dtype"

        return [(6, repartition), (3, full_shape), (5, extent), (2, add_slice), (3, slice_entry)]


# -- tables ----------------------------------------------------------------------------------------


@dataclass
class TableModel:
    files: dict[str, bytes]
    table: str
    entries: list[tuple[bytes, bytes]]
    layout: tables.Layout = field(default_factory=tables.Layout)


class TableFamily(Family):
    name = "table"
    description = "table files (.index, V1): blocks, entries, restarts, Snappy, trailers, block handles, footer"

    def load_seeds(self) -> list[Seed]:
        return [s for s in _bundle_seeds() if s.name in ("mlp", "dtypes", "tf1_sharded", "tf2_slots")] + _v1_seeds()

    def decode(self, seed: Seed) -> TableModel:
        name = next((n for n in sorted(seed.files) if n.endswith(".index")), None)
        if name is None:
            name = next(n for n in sorted(seed.files) if n.startswith("model.ckpt") and not n.endswith(".meta"))
        return TableModel(dict(seed.files), name, tables.read_entries(seed.files[name], name))

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def layout(rng: random.Random, model: TableModel) -> str:
            return tables.mutate_layout(rng, model.layout, model.entries)

        def entry(rng: random.Random, model: TableModel) -> str:
            if not model.entries:
                return "no-entry"
            i = rng.randrange(len(model.entries))
            key, value = model.entries[i]
            which = rng.randrange(4)
            if which == 0:
                model.entries[i] = (mutate_bytes(rng, key), value)
                return "key-bytes"
            if which == 1:
                model.entries[i] = (key, mutate_bytes(rng, value))
                return "value-bytes"
            if which == 2:
                del model.entries[i]
                return "entry-removed"
            model.entries.insert(i, model.entries[rng.randrange(len(model.entries))])
            return "entry-duplicated"

        return [(6, layout), (2, entry)]

    def render(self, model: TableModel, rng: random.Random) -> dict[str, bytes]:
        files = dict(model.files)
        files[model.table] = tables.encode(model.entries, model.layout, rng)
        return files


# -- V1 checkpoints ----------------------------------------------------------------------------------


def _v1_seeds() -> list[Seed]:
    return [Seed("v1", _load("ckpt_v1"), "model.ckpt", (CHECKPOINT, CHECK)),
            Seed("v1_sharded", _load("ckpt_v1_sharded"), "model.ckpt-00000-of-00003", (CHECKPOINT,)),
            Seed("v1_sharded_dir", _load("ckpt_v1_sharded"), ".", (CHECKPOINT, CHECK))]


@dataclass
class V1Model:
    files: dict[str, bytes]
    #: table file -> [key, SavedTensorSlices or raw bytes]
    records: dict[str, list[list[Any]]]
    layout: tables.Layout = field(default_factory=tables.Layout)


_V1_VALUE_FIELDS = ("float_val", "double_val", "int_val", "int64_val", "bool_val", "half_val", "string_val",
                    "scomplex_val", "dcomplex_val", "uint32_val", "uint64_val")


def _mutate_tensor_proto(rng: random.Random, proto: Any) -> str:
    """Hostile TensorProto contents: dtype, dims, content length, out-of-range typed values."""
    which = rng.randrange(9)
    if which == 0:
        proto.dtype = rng.choice(DTYPES)
        return "tensor-dtype"
    if which == 1:
        return "tensor-shape:" + _mutate_shape(rng, proto.tensor_shape)
    if which == 2:
        proto.tensor_content = rng.randbytes(rng.choice((0, 1, 3, 4, 7, 8, 64, 1000)))
        return "tensor-content"
    if which == 3:
        proto.ClearField("int_val")
        proto.int_val.extend(rng.choice(((2**31 - 1,), (-(2**31),), (300, -300), (70000,), (-1,), (2, 3) * 50)))
        return "int-val-range"
    if which == 4:
        proto.int64_val.extend(rng.choice(((2**63 - 1,), (-(2**63),), (2**40,))))
        return "int64-val"
    if which == 5:
        proto.half_val.extend(rng.choice(((65536,), (-1,), (2**31 - 1,), (1, 2, 3))))
        return "half-val"
    if which == 6:
        name = rng.choice(_V1_VALUE_FIELDS)
        container = getattr(proto, name)
        sample: Any = {"bool_val": True, "string_val": b"\xff"}.get(name, 1.5 if "float" in name or "double" in name
                                                                   or "complex" in name else 7)
        container.extend([sample] * rng.choice((1, 2, 5, 1000)))
        return f"values:{name}"
    if which == 7:
        for name in _V1_VALUE_FIELDS:
            proto.ClearField(name)
        proto.ClearField("tensor_content")
        return "values-cleared"
    mutate_message(rng, proto)
    return "tensor-message"


class V1Family(Family):
    name = "v1"
    description = "V1 SavedTensorSlices: meta records (names, types, shapes, slices), data records (typed values)"

    def load_seeds(self) -> list[Seed]:
        return _v1_seeds()

    def decode(self, seed: Seed) -> V1Model:
        records = {}
        for name, data in seed.files.items():
            if name.startswith("model.ckpt") and not name.endswith(".meta"):
                records[name] = [[k, SavedTensorSlices.FromString(v)] for k, v in tables.read_entries(data, name)]
        return V1Model(dict(seed.files), records)

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def pick(rng: random.Random, model: V1Model, meta: bool) -> Any:
            rows = [r for rs in model.records.values() for r in rs
                    if isinstance(r[1], SavedTensorSlices) and (r[0] == b"") == meta]
            return rng.choice(rows) if rows else None

        def meta(rng: random.Random, model: V1Model) -> str:
            row = pick(rng, model, True)
            if row is None or not row[1].meta.tensor:
                return "no-meta"
            tensor = rng.choice(row[1].meta.tensor)
            which = rng.randrange(6)
            if which == 0:
                tensor.type = rng.choice(DTYPES)
                return "meta-type"
            if which == 1:
                return "meta-shape:" + _mutate_shape(rng, tensor.shape)
            if which == 2:
                tensor.name = mutate_string(rng, tensor.name)
                return "meta-name"
            if which == 3 and tensor.slice:
                ext = rng.choice(tensor.slice).extent
                if ext:
                    e = rng.choice(ext)
                    e.start, e.length = mutate_int(rng, e.start), mutate_int(rng, e.length)
                else:
                    ext.add(start=mutate_int(rng, 0), length=mutate_int(rng, 1))
                return "meta-slice"
            if which == 4:
                row[1].meta.versions.min_consumer = rng.choice((0, 1, 2, -1))
                return "meta-versions"
            mutate_message(rng, row[1])
            return "meta-message"

        def data(rng: random.Random, model: V1Model) -> str:
            row = pick(rng, model, False)
            if row is None:
                return "no-data"
            if rng.random() < 0.15:
                mutate_message(rng, row[1].data)
                return "data-message"
            return "data:" + _mutate_tensor_proto(rng, row[1].data.data)

        def wire(rng: random.Random, model: V1Model) -> str:
            rows = [r for rs in model.records.values() for r in rs]
            row = rng.choice(rows)
            raw = row[1] if isinstance(row[1], bytes) else row[1].SerializeToString()
            row[1] = mutate_wire(rng, raw)
            return "record-wire" + ("-meta" if row[0] == b"" else "")

        def name_bytes(rng: random.Random, model: V1Model) -> str:
            row = pick(rng, model, True)
            if row is None or not row[1].meta.tensor:
                return "no-meta"
            # a name that is not UTF-8: only the wire form can say it (the field is a proto3 string)
            raw = row[1].SerializeToString()
            name = rng.choice(row[1].meta.tensor).name.encode()
            row[1] = raw.replace(name, name[:-1] + b"\xff", 1) if name else raw
            return "meta-name-bytes"

        def records(rng: random.Random, model: V1Model) -> str:
            rows = rng.choice(list(model.records.values()))
            if len(rows) < 2:
                return "no-records"
            i = rng.randrange(1, len(rows))
            if rng.random() < 0.5:
                del rows[i]
                return "record-removed"
            rows.insert(i, [rows[i][0], copy.deepcopy(rows[i][1])])
            return "record-duplicated"

        def files(rng: random.Random, model: V1Model) -> str:
            name = rng.choice(sorted(model.records))
            if rng.random() < 0.5 and len(model.records) > 1:
                del model.records[name]
                del model.files[name]
                return "shard-removed"
            model.layout = tables.Layout(per_block=rng.choice((1, 2)))
            return "blocks-split"

        return [(4, meta), (6, data), (2, wire), (1, name_bytes), (1, records), (1, files)]

    def render(self, model: V1Model, rng: random.Random) -> dict[str, bytes]:
        files = dict(model.files)
        for name, rows in model.records.items():
            entries = [(k, v if isinstance(v, bytes) else v.SerializeToString()) for k, v in rows]
            files[name] = tables.encode(entries, model.layout, rng)
        return files


# -- graphs ----------------------------------------------------------------------------------------

_GRAPH_SEEDS = (
    ("frozen_pb", "frozen", ["frozen.pb"], "frozen.pb"),
    ("functions", "functions", None, "functions.meta"),
    ("control_flow", "control_flow", None, "control_flow.meta"),
    ("v1_meta", "ckpt_v1", None, "model.ckpt.meta"),
    ("partitioned_meta", "ckpt_partitioned", None, "model.ckpt.meta"),
    ("savedmodel_tf2", "savedmodel_tf2", None, "saved_model.pb"),
    ("unsafe_ops", "check/unsafe_ops", None, "model.meta"),
    ("io_unambiguous", "check/io_unambiguous", None, "model.meta"),
)


@dataclass
class GraphModel:
    files: dict[str, bytes]
    path: str
    message: Message
    raw: bytes | None = None
    text: bool = False


def _graph_message(data: bytes) -> Message:
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    from metainspect.formats.graph_file import GRAPH_DEF, SAVED_MODEL, sniff_binary
    from metainspect.proto.saved_model_pb2 import SavedModel

    kind = sniff_binary(data)
    cls: type[Message] = SavedModel if kind == SAVED_MODEL else GraphDef if kind == GRAPH_DEF else MetaGraphDef
    return cls.FromString(data)


def _graph_defs(message: Message) -> list[Any]:
    name = message.DESCRIPTOR.name
    if name == "GraphDef":
        return [message]
    if name == "MetaGraphDef":
        return [message.graph_def]  # type: ignore[attr-defined]
    return [mg.graph_def for mg in message.meta_graphs]  # type: ignore[attr-defined]


def _meta_graphs(message: Message) -> list[Any]:
    name = message.DESCRIPTOR.name
    if name == "MetaGraphDef":
        return [message]
    if name == "SavedModel":
        return list(message.meta_graphs)  # type: ignore[attr-defined]
    return []


def _all_nodes(message: Message) -> list[Any]:
    nodes = []
    for graph in _graph_defs(message):
        nodes.extend(graph.node)
        for function in graph.library.function:
            nodes.extend(function.node_def)
    return nodes


_OPS = ("Const", "Placeholder", "PlaceholderWithDefault", "VariableV2", "VarHandleOp", "Identity", "SaveV2",
        "RestoreV2", "PartitionedCall", "StatefulPartitionedCall", "While", "If", "ReadVariableOp", "NoOp",
        "Assign", "Switch", "Merge", "Enter", "ParseExample", "WriteFile", "NotAnOp")


def _graph_mutations() -> list[tuple[int, Callable[[random.Random, Any], str]]]:
    def const(rng: random.Random, model: GraphModel) -> str:
        nodes = [n for n in _all_nodes(model.message) if any(v.HasField("tensor") for v in n.attr.values())]
        if not nodes:
            return "no-const"
        node = rng.choice(nodes)
        key = rng.choice([k for k, v in node.attr.items() if v.HasField("tensor")])
        return "const:" + _mutate_tensor_proto(rng, node.attr[key].tensor)

    def placeholder(rng: random.Random, model: GraphModel) -> str:
        nodes = [n for n in _all_nodes(model.message) if n.op.startswith("Placeholder")]
        if not nodes:
            return "no-placeholder"
        node = rng.choice(nodes)
        shape = node.attr["shape"].shape
        which = rng.randrange(4)
        if which == 0:
            shape.Clear()
            node.attr["shape"].shape.SetInParent()
            return "placeholder-empty-shape"
        if which == 1:
            for graph in _graph_defs(model.message):
                graph.versions.producer = rng.choice((8, 21, 22, 0))
            return "producer"
        if which == 2:
            del node.attr["shape"]
            return "placeholder-no-shape"
        return "placeholder-shape:" + _mutate_shape(rng, shape)

    def node(rng: random.Random, model: GraphModel) -> str:
        nodes = _all_nodes(model.message)
        if not nodes:
            return "no-node"
        target = rng.choice(nodes)
        which = rng.randrange(7)
        if which == 0:
            target.op = rng.choice(_OPS)
            return "op"
        if which == 1:
            target.input.append(rng.choice(("missing", "missing:3", "^missing", target.name, f"{target.name}:99",
                                            "", ":", "^", "a:b:c", "x:-1", "x:99999999999999999999")))
            return "input"
        if which == 2:
            target.attr["_class"].list.s.append(rng.choice((b"loc:@\xff\xfe", b"loc:@", b"loc", b"\xc3\x28")))
            return "colocation"
        if which == 3:
            target.attr[rng.choice(("f", "then_branch", "body", "cond", "func"))].func.name = rng.choice(
                ("missing", "", target.name))
            return "func-attr"
        if which == 4:
            target.attr[rng.choice(("dtype", "T", "value", "shape", "N"))].CopyFrom(
                rng.choice(list(target.attr.values())) if target.attr else target.attr["x"])
            return "attr-swapped"
        if which == 5:
            target.name = mutate_string(rng, target.name)
            return "node-name"
        mutate_message(rng, target)
        return "node-message"

    def functions(rng: random.Random, model: GraphModel) -> str:
        graphs = [g for g in _graph_defs(model.message) if g.library.function]
        if not graphs:
            return "no-function"
        library = rng.choice(graphs).library
        function = rng.choice(library.function)
        which = rng.randrange(4)
        if which == 0:
            call = function.node_def.add(name="self_call", op=function.signature.name)
            call.attr["f"].func.name = function.signature.name
            return "function-recursive"
        if which == 1:
            library.function.add().CopyFrom(function)
            return "function-duplicated"
        if which == 2:
            arg = rng.choice(list(function.signature.input_arg) + list(function.signature.output_arg) or [None])
            if arg is None:
                return "no-arg"
            arg.type = rng.choice(DTYPES)
            return "function-arg-type"
        mutate_message(rng, function)
        return "function-message"

    def meta(rng: random.Random, model: GraphModel) -> str:
        metas = _meta_graphs(model.message)
        if not metas:
            return "no-meta-graph"
        meta_graph = rng.choice(metas)
        which = rng.randrange(4)
        if which == 0 and meta_graph.signature_def:
            sig = meta_graph.signature_def[rng.choice(list(meta_graph.signature_def))]
            info = sig.inputs[rng.choice(list(sig.inputs) or ["x"])]
            choice = rng.randrange(4)
            if choice == 0:
                info.coo_sparse.values_tensor_name = rng.choice(("missing:0", "", ":"))
            elif choice == 1:
                info.composite_tensor.components.add(name="missing:0")
            elif choice == 2:
                info.dtype = rng.choice(DTYPES)
            else:
                _mutate_shape(rng, info.tensor_shape)
            return "signature"
        if which == 1:
            saver = meta_graph.saver_def
            saver.version = rng.choice((0, 1, 2, 7))
            saver.filename_tensor_name = rng.choice(("", ":", "save/Const:0", "missing:0", "a/b/c"))
            return "saver-def"
        if which == 2:
            meta_graph.meta_info_def.stripped_op_list.op.add(name=rng.choice(_OPS))
            return "stripped-ops"
        mutate_message(rng, meta_graph)
        return "meta-graph-message"

    def generic(rng: random.Random, model: GraphModel) -> str:
        mutate_message(rng, model.message, descend=0.85)
        return "message"

    def wire(rng: random.Random, model: GraphModel) -> str:
        model.raw = mutate_wire(rng, model.raw if model.raw is not None else model.message.SerializeToString())
        return "wire"

    def nested(rng: random.Random, model: GraphModel) -> str:
        """A GraphDef of the model hidden in a string constant or an ``_``-attr, wrapped as the scan unwraps."""
        graphs = _graph_defs(model.message)
        if not graphs:
            return "no-graph"
        blob, how = _wrapped_graph(rng, rng.choice(graphs).SerializeToString())
        if rng.random() < 0.3:
            blob = mutate_bytes(rng, blob)
            how += "+bytes"
        host = rng.choice(graphs)
        if rng.random() < 0.5 or not host.node:
            const = host.node.add(name=f"nested_{rng.randrange(1 << 16)}", op="Const")
            const.attr["dtype"].type = 7
            const.attr["value"].tensor.dtype = 7
            const.attr["value"].tensor.string_val.append(blob)
            return f"nested-const:{how}"
        rng.choice(host.node).attr["_payload"].s = blob
        return f"nested-attr:{how}"

    return [(6, const), (3, placeholder), (6, node), (2, functions), (3, meta), (4, generic), (1, wire), (2, nested)]


def _wrapped_graph(rng: random.Random, graph: bytes) -> tuple[bytes, str]:
    """``graph`` in up to three wrappers the security scan unwraps (base64, zlib, gzip, tensor, meta graph)."""
    import base64
    import gzip
    import zlib

    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

    def meta(data: bytes) -> bytes:
        message = MetaGraphDef()
        message.meta_info_def.tags.append("serve")
        return message.SerializeToString() + b"\x12" + encode_varint(len(data)) + data

    wrappers: dict[str, Callable[[bytes], bytes]] = {
        "base64": base64.b64encode, "urlsafe": lambda d: base64.urlsafe_b64encode(d).rstrip(b"="),
        "mime": base64.encodebytes, "zlib": zlib.compress, "gzip": gzip.compress,
        "tensor": lambda d: TensorProto(dtype=7, string_val=[b"x", d]).SerializeToString(), "meta": meta,
    }
    names = [rng.choice(list(wrappers)) for _ in range(rng.randrange(4))]
    for name in names:
        graph = wrappers[name](graph)
    return graph, "+".join(names) or "plain"


class GraphFamily(Family):
    name = "graph"
    description = "binary graphs (MetaGraphDef, GraphDef, SavedModel): nodes, attrs, TensorProto fields, functions, signatures"

    def load_seeds(self) -> list[Seed]:
        return [Seed(name, _load(directory, files), entry, (GRAPH, CHECK))
                for name, directory, files, entry in _GRAPH_SEEDS]

    def decode(self, seed: Seed) -> GraphModel:
        return GraphModel(dict(seed.files), seed.entry, _graph_message(seed.files[seed.entry]))

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        return _graph_mutations()

    def render(self, model: GraphModel, rng: random.Random) -> dict[str, bytes]:
        files = dict(model.files)
        if model.raw is not None:
            files[model.path] = model.raw
        elif model.text:
            files[model.path] = text_format.MessageToString(model.message).encode()
        else:
            files[model.path] = model.message.SerializeToString()
        return files


# -- collections (Any payloads and serialized protos in bytes lists) -----------------------------------

_COLLECTION_SEEDS = (
    ("control_flow", "control_flow", None, "control_flow.meta"),
    ("partitioned_meta", "ckpt_partitioned", None, "model.ckpt.meta"),
    ("v1_meta", "ckpt_v1", None, "model.ckpt.meta"),
    ("savedmodel_tf1", "savedmodel_tf1", None, "saved_model.pb"),
)
_PROTO_COLLECTIONS = ("variables", "trainable_variables", "savers", "cond_context", "while_context", "queue_runners",
                      "local_variables", "global_step")
_ANY_TYPES = ("type.googleapis.com/tensorflow.AssetFileDef", "tensorflow.AssetFileDef", "/tensorflow.AssetFileDef",
              "type.googleapis.com/tensorflow.VariableDef", "type.googleapis.com/google.protobuf.Int64Value", "", "x/")


class CollectionsFamily(GraphFamily):
    name = "any"
    description = "collections: Any payloads (type URLs, values) and serialized VariableDef/SaverDef/context protos"

    def load_seeds(self) -> list[Seed]:
        return [Seed(name, _load(directory, files), entry, (GRAPH, CHECK))
                for name, directory, files, entry in _COLLECTION_SEEDS]

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def collection(rng: random.Random, model: GraphModel) -> Any:
            meta_graph = rng.choice(_meta_graphs(model.message))
            names = list(meta_graph.collection_def)
            if not names or rng.random() < 0.2:
                name = rng.choice(_PROTO_COLLECTIONS + ("saved_model_assets", "other"))
                return name, meta_graph.collection_def[name]
            name = rng.choice(names)
            return name, meta_graph.collection_def[name]

        def any_item(rng: random.Random, model: GraphModel) -> str:
            _, coll = collection(rng, model)
            items = coll.any_list.value
            if not items or rng.random() < 0.3:
                item = items.add()
                item.type_url = rng.choice(_ANY_TYPES)
                item.value = rng.choice((b"", b"\x0a\x02ab", rng.randbytes(rng.randrange(1, 20))))
                return "any-added"
            item = rng.choice(items)
            which = rng.randrange(3)
            if which == 0:
                item.type_url = rng.choice(_ANY_TYPES)
            elif which == 1:
                item.value = mutate_wire(rng, item.value)
            else:
                item.value = mutate_bytes(rng, item.value)
            return "any-item"

        def proto_item(rng: random.Random, model: GraphModel) -> str:
            name, coll = collection(rng, model)
            items = coll.bytes_list.value
            if not items:
                items.append(rng.randbytes(rng.randrange(1, 30)))
                return "bytes-added"
            i = rng.randrange(len(items))
            parsed = _proto_for(name, items[i])
            if parsed is not None and rng.random() < 0.6:
                mutate_message(rng, parsed, descend=0.8)
                items[i] = parsed.SerializeToString()
                return f"bytes-proto:{name}"
            items[i] = mutate_wire(rng, items[i])
            return f"bytes-wire:{name}"

        def partition(rng: random.Random, model: GraphModel) -> str:
            from tensorboard.compat.proto.variable_pb2 import VariableDef

            name, coll = collection(rng, model)
            items = coll.bytes_list.value
            if name not in _PROTO_COLLECTIONS[:2] or not items:
                return "no-variables"
            i = rng.randrange(len(items))
            try:
                var = VariableDef.FromString(items[i])
            except Exception:  # noqa: BLE001  (an item an earlier mutation broke)
                return "no-variables"
            info = var.save_slice_info_def
            info.full_name = info.full_name or var.variable_name.split(":")[0]
            del info.full_shape[:]
            info.full_shape.extend(rng.choice(([2**40, 2**20], [-1], [10, 4], [0], [2**31] * 3)))
            del info.var_offset[:]
            info.var_offset.extend(rng.choice(([0, 0], [-5], [2**62, 0], [])))
            del info.var_shape[:]
            info.var_shape.extend(rng.choice(([5, 4], [2**40], [-1, -1], [])))
            items[i] = var.SerializeToString()
            return "save-slice-info"

        def kind(rng: random.Random, model: GraphModel) -> str:
            _, coll = collection(rng, model)
            which = rng.randrange(4)
            if which == 0:
                coll.node_list.value.append(rng.choice(("missing", "", "^x:0", "a:9")))
            elif which == 1:
                coll.int64_list.value.append(rng.choice(INTERESTING_INTS) % 2**63)
            elif which == 2:
                coll.float_list.value.append(float("nan"))
            else:
                coll.bytes_list.value.append(rng.choice(INTERESTING_BYTES))
            return "collection-kind"

        return [(5, any_item), (6, proto_item), (2, partition), (1, kind)]


def _proto_for(collection: str, value: bytes) -> Message | None:
    from tensorboard.compat.proto.saver_pb2 import SaverDef
    from tensorboard.compat.proto.variable_pb2 import VariableDef

    from metainspect.proto.control_flow_pb2 import CondContextDef, WhileContextDef
    from metainspect.proto.queue_runner_pb2 import QueueRunnerDef

    classes: dict[str, type[Message]] = {"savers": SaverDef, "cond_context": CondContextDef,
                                         "while_context": WhileContextDef, "queue_runners": QueueRunnerDef}
    cls = classes.get(collection, VariableDef if "variables" in collection or collection == "global_step" else None)
    if cls is None:
        return None
    try:
        return cls.FromString(value)
    except Exception:  # noqa: BLE001  (an item that does not parse is mutated as bytes)
        return None


# -- object graphs ------------------------------------------------------------------------------------


@dataclass
class ObjectGraphModel:
    bundle: BundleModel | None
    graph: GraphModel | None
    #: the checkpoint's TrackableObjectGraph (None for the SavedModel side)
    trackable: Message | None
    raw: bytes | None = None


def _object_graph_mutations(rng: random.Random, nodes: Any) -> str:
    if not len(nodes):
        nodes.add()
        return "node-added"
    node = rng.choice(nodes)
    count = len(nodes)
    which = rng.randrange(8)
    out_of_range = rng.choice((count, count + 1, 2**31 - 1, -1, 2**30))
    if which == 0 and node.children:
        rng.choice(node.children).node_id = out_of_range
        return "child-id"
    if which == 1:
        node.children.add(node_id=rng.choice((0, rng.randrange(count))), local_name=rng.choice(("loop", "", ".", "/")))
        return "child-cycle"
    if which == 2 and hasattr(node, "slot_variables"):
        slot = node.slot_variables.add()
        slot.original_variable_node_id = rng.choice((out_of_range, rng.randrange(count)))
        slot.slot_variable_node_id = rng.choice((out_of_range, rng.randrange(count)))
        slot.slot_name = rng.choice(("m", "", "/"))
        return "slot-id"
    if which == 3:
        del nodes[rng.randrange(count) :]
        return "nodes-truncated"
    if which == 4 and hasattr(node, "attributes"):
        node.attributes.add(name="VARIABLE_VALUE", full_name=rng.choice(("", "x")),
                            checkpoint_key=rng.choice(("missing", "", "_CHECKPOINTABLE_OBJECT_GRAPH")))
        return "attribute"
    if which == 5:
        for _ in range(rng.choice((1, 100))):
            nodes.add().CopyFrom(node)
        return "nodes-duplicated"
    if which == 6:
        for i, n in enumerate(nodes):
            for child in n.children:
                child.node_id = (i + 1) % count
        return "chain"
    mutate_message(rng, node, descend=0.6)
    return "node-message"


class ObjectGraphFamily(Family):
    name = "object_graph"
    description = "TF2 object graphs: the checkpoint's _CHECKPOINTABLE_OBJECT_GRAPH and a SavedModel's object graph"

    def load_seeds(self) -> list[Seed]:
        out = [s for s in _bundle_seeds() if s.name in ("tf2", "tf2_slots")]
        out.append(Seed("savedmodel_tf2", _load("savedmodel_tf2"), ".", (CHECKPOINT, GRAPH, CHECK)))
        out.append(Seed("savedmodel_tf2_graph", _load("savedmodel_tf2"), ".", (CHECKPOINT, GRAPH, CHECK)))
        return out

    def decode(self, seed: Seed) -> ObjectGraphModel:
        from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

        if seed.name == "savedmodel_tf2_graph":
            graph = GraphModel(dict(seed.files), "saved_model.pb", _graph_message(seed.files["saved_model.pb"]))
            return ObjectGraphModel(None, graph, None)
        seed_files = dict(seed.files)
        if seed.name == "tf2":  # the state file names ckpt-2
            seed_files = {k: v for k, v in seed.files.items() if not k.startswith("ckpt-1")}
        bundle = _decode_bundle(Seed(seed.name, seed_files, seed.entry, seed.targets))
        row = next(r for r in bundle.entries if r[0] == b"_CHECKPOINTABLE_OBJECT_GRAPH")
        raw = bundle.tensor_bytes(row[1])
        assert raw is not None
        _, body = _split_strings(raw, 1) or ([], b"")
        return ObjectGraphModel(bundle, None, TrackableObjectGraph.FromString(body))

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def structured(rng: random.Random, model: ObjectGraphModel) -> str:
            if model.graph is not None:
                nodes = model.graph.message.meta_graphs[0].object_graph_def.nodes  # type: ignore[attr-defined]
                return _object_graph_mutations(rng, nodes)
            assert model.trackable is not None
            return _object_graph_mutations(rng, model.trackable.nodes)  # type: ignore[attr-defined]

        def wire(rng: random.Random, model: ObjectGraphModel) -> str:
            if model.graph is not None:
                meta_graph = model.graph.message.meta_graphs[0]  # type: ignore[attr-defined]
                raw = mutate_wire(rng, meta_graph.object_graph_def.SerializeToString())
                try:
                    meta_graph.object_graph_def.ParseFromString(raw)
                except Exception:  # noqa: BLE001  (unparseable: the whole file carries the damage)
                    model.graph.raw = mutate_wire(rng, model.graph.message.SerializeToString())
                return "saved-object-graph-wire"
            assert model.trackable is not None
            model.raw = mutate_wire(rng, model.raw if model.raw is not None else model.trackable.SerializeToString())
            return "object-graph-wire"

        return [(8, structured), (2, wire)]

    def render(self, model: ObjectGraphModel, rng: random.Random) -> dict[str, bytes]:
        if model.graph is not None:
            return GraphFamily.render(self, model.graph, rng)  # type: ignore[arg-type]
        assert model.bundle is not None and model.trackable is not None
        from metainspect.formats.bundle_writer import encode_strings

        body = model.raw if model.raw is not None else model.trackable.SerializeToString()
        row = next(r for r in model.bundle.entries if r[0] == b"_CHECKPOINTABLE_OBJECT_GRAPH")
        _, chunks, checksum = encode_strings([body])
        model.bundle.store(row[1], b"".join(chunks), fix_crc=False)
        row[1].crc32c = checksum
        return _render_bundle(model.bundle, rng)


# -- state files and directories --------------------------------------------------------------------------

_STATE_PATHS = (".", "", "..", "checkpoint", "sub", "sub/", "{root}", "{root}/sub", "missing", "*", "?", "[", "model*",
                "C:\\run\\model.ckpt-3", "\\\\server\\share\\ckpt", "/nonexistent/dir/model.ckpt-3", "a\\000b",
                "x" * 5000, "sub/../sub/..", "./.", "loop", "dirlink", "ckpt-\\377", "model.ckpt-3.index",
                "model.ckpt-3.data-00000-of-00001")


@dataclass
class StateModel:
    files: dict[str, bytes]
    entry: str
    prefixes: list[str]
    state: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


class StateFamily(Family):
    name = "state"
    description = "checkpoint state files and directories: recorded paths, loops, globs, links, text-format damage"

    def load_seeds(self) -> list[Seed]:
        return [Seed("mlp", _load("mlp", ["model.ckpt-3.index", "model.ckpt-3.data-00000-of-00001", "checkpoint"]),
                     ".", (CHECKPOINT, GRAPH, CHECK)),
                Seed("tf2", _load("ckpt_tf2"), ".", (CHECKPOINT, GRAPH, CHECK)),
                Seed("v1", _load("ckpt_v1"), ".", (CHECKPOINT, GRAPH, CHECK)),
                Seed("v1_sharded", _load("ckpt_v1_sharded"), ".", (CHECKPOINT, GRAPH, CHECK)),
                Seed("savedmodel_tf2", _load("savedmodel_tf2", under="sub/"), ".", (CHECKPOINT, GRAPH, CHECK))]

    def decode(self, seed: Seed) -> StateModel:
        prefixes = sorted({re.sub(r"(\.index|\.data-.*|\.meta|-\d{5}-of-\d{5})$", "", n) for n in seed.files
                           if n != "checkpoint" and "/" not in n})
        state = seed.files.get("checkpoint", b"").decode().splitlines()
        return StateModel(dict(seed.files), seed.entry, prefixes, state)

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def recorded(rng: random.Random, model: StateModel) -> str:
            path = rng.choice(_STATE_PATHS + tuple(model.prefixes))
            field_name = rng.choice(("model_checkpoint_path", "model_checkpoint_path", "all_model_checkpoint_paths"))
            line = f'{field_name}: "{path}"'
            if model.state and rng.random() < 0.6:
                model.state[rng.randrange(len(model.state))] = line
            else:
                model.state.insert(rng.randrange(len(model.state) + 1), line)
            return f"recorded:{path[:20]}"

        def nested(rng: random.Random, model: StateModel) -> str:
            target = rng.choice(("..", ".", "../sub", "{root}", "{root}/sub", "sub", "../missing"))
            model.files["sub/checkpoint"] = f'model_checkpoint_path: "{target}"\n'.encode()
            if rng.random() < 0.5:
                model.state = ['model_checkpoint_path: "sub"']
            return f"nested:{target}"

        def links(rng: random.Random, model: StateModel) -> str:
            which = rng.randrange(4)
            if which == 0:
                model.links["loop"] = "loop"
            elif which == 1:
                model.links["dirlink"] = "."
                model.state = ['model_checkpoint_path: "dirlink"']
            elif which == 2 and model.prefixes:
                model.links[f"{rng.choice(model.prefixes)}.index"] = "{root}"
            else:
                model.links["checkpoint"] = "checkpoint"
                model.files.pop("checkpoint", None)
            return f"link:{which}"

        def shapes(rng: random.Random, model: StateModel) -> str:
            which = rng.randrange(4)
            if which == 0:
                model.files.pop("checkpoint", None)
                model.state = []
                model.files["checkpoint/x"] = b""
                return "state-is-directory"
            if which == 1 and model.prefixes:
                prefix = rng.choice(model.prefixes)
                for name in [n for n in model.files if n.startswith(prefix + ".index")]:
                    del model.files[name]
                model.files[f"{prefix}.index/x"] = b""
                return "index-is-directory"
            if which == 2:
                model.entry = rng.choice(("checkpoint", ".", "sub", "missing", "sub/checkpoint"))
                return "entry"
            model.files["other.meta"] = b"\n"
            return "extra-meta"

        def text(rng: random.Random, model: StateModel) -> str:
            joined = "\n".join(model.state)
            which = rng.randrange(4)
            if which == 0:
                model.state = [_text_havoc(rng, joined)]
            elif which == 1:
                model.state = [joined + rng.choice(("{", "}", '"', "\\", "model_checkpoint_path {", " # c", "\x00"))]
            elif which == 2:
                model.state = ["model_checkpoint_path: " + rng.choice(('"\\xff"', "'a'", "1", '"\\u00e9"', '"a" "b"'))]
            else:
                model.state = ["\ufeff" + joined]
            return "state-text"

        return [(6, recorded), (3, nested), (2, links), (2, shapes), (3, text)]

    def render(self, model: StateModel, rng: random.Random) -> dict[str, bytes]:
        files = dict(model.files)
        if model.state or "checkpoint" in files:
            files["checkpoint"] = "\n".join(model.state).encode("utf-8", "surrogatepass") + b"\n"
        return files


# -- text-format graphs -------------------------------------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|[A-Za-z_][\w.]*|-?\d[\w.+-]*|\S')
_NEST = (('attr { key: "f" value { func { name: "g" ', "} } } "),
         ('attr { key: "l" value { list { func { name: "g" ', "} } } } "),
         ("tensor_shape { dim { size: 1 } ", "} "))


@dataclass
class TextModel:
    files: dict[str, bytes]
    path: str
    text: str
    raw_insert: tuple[int, bytes] | None = None


def _text_havoc(rng: random.Random, text: str) -> str:
    """One token-level edit: mostly values replaced in kind (numbers, strings), sometimes syntax damage."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return text + rng.choice(("{", "}", "node {"))
    which = rng.randrange(10)
    wanted: Callable[[str], bool] = {
        0: lambda t: t[:1].isdigit() or t[:1] == "-", 1: lambda t: t[:1].isdigit() or t[:1] == "-",
        2: lambda t: t[:1] in "\"'", 3: lambda t: t[:1] in "\"'", 4: lambda t: t[:1].isalpha(),
    }.get(which, lambda t: True)
    spots = [i for i, t in enumerate(tokens) if wanted(t)] or list(range(len(tokens)))
    i = rng.choice(spots)
    if which in (0, 1):
        tokens[i] = str(rng.choice((*INTERESTING_INTS, 2**64, 10**30, "1e999", "-1e999", "nan", "0x7fffffffffffffff")))
    elif which in (2, 3):
        tokens[i] = rng.choice(('"\\377\\376"', '"\\x"', '"\\u12"', '"\\000"', '"\\xc3\\x28"', '""', '"a:b:c"',
                                '"' + "x" * 5000 + '"', "'\\''"))
    elif which == 4:
        tokens[i] = rng.choice(("DT_RESOURCE", "DT_INVALID", "DT_VARIANT", "DT_STRING", "DT_HALF_REF", "true",
                                "unknown_rank", "tensor_content", "int_val", "half_val", "dim", "size", "node"))
    elif which == 5:
        del tokens[i]
    elif which == 6:
        tokens.insert(i, tokens[i])
    elif which == 7:
        tokens[i] = rng.choice(("{", "}", ":", "<", ">", "[", "]", ",", ";", "#", '"', "'"))
    else:
        j = rng.randrange(len(tokens))
        tokens[i], tokens[j] = tokens[j], tokens[i]
    return " ".join(tokens)


class TextFamily(Family):
    name = "text"
    description = "text-format graphs: deep nesting, tokens, numbers, string escapes, encodings"

    def load_seeds(self) -> list[Seed]:
        seeds = [Seed("frozen_pbtxt", _load("frozen", ["frozen.pbtxt"]), "frozen.pbtxt", (CHECK,))]
        for name, directory, entry in (("functions", "functions", "functions.meta"),
                                       ("control_flow", "control_flow", "control_flow.meta")):
            files = _load(directory, [entry])
            text = text_format.MessageToString(_graph_message(files[entry])).encode()
            target = "saved_model.pbtxt" if entry == "saved_model.pb" else entry.replace(".meta", ".pbtxt")
            seeds.append(Seed(name, {target: text}, target, (CHECK,)))
        return seeds

    def decode(self, seed: Seed) -> TextModel:
        return TextModel(dict(seed.files), seed.entry, seed.files[seed.entry].decode())

    def mutations(self) -> list[tuple[int, Callable[[random.Random, Any], str]]]:
        def nest(rng: random.Random, model: TextModel) -> str:
            depth = rng.choice((10, 99, 100, 101, 150, 200, 1000, 5000, 30000))
            opening, closing = rng.choice(_NEST)
            spot = model.text.find("node {")
            if spot < 0:
                spot = model.text.find("{")
            insert = 'node { name: "deep" op: "Const" ' + opening * depth + closing * depth + "} "
            if rng.random() < 0.2:
                insert = "{" * depth
            model.text = model.text[: max(spot, 0)] + insert + model.text[max(spot, 0) :]
            return f"nesting:{depth}"

        def tokens(rng: random.Random, model: TextModel) -> str:
            model.text = _text_havoc(rng, model.text)
            return "tokens"

        def lines(rng: random.Random, model: TextModel) -> str:
            rows = model.text.splitlines()
            if not rows:
                return "no-lines"
            i = rng.randrange(len(rows))
            if rng.random() < 0.5:
                del rows[i : i + rng.randrange(1, 5)]
            else:
                rows.insert(rng.randrange(len(rows)), rows[i])
            model.text = "\n".join(rows)
            return "lines"

        def encoding(rng: random.Random, model: TextModel) -> str:
            at = rng.randrange(len(model.text) + 1)
            model.raw_insert = (at, rng.choice((b"\xff", b"\xc3", b"\xef\xbb\xbf", b"\x00", b"\r\n", b"\xe2\x82")))
            return "encoding"

        def head(rng: random.Random, model: TextModel) -> str:
            model.text = rng.choice(("# comment\n", "\n\n", "\ufeff", "#\n" * 3000, "node:", "versions ", "")) + model.text
            return "head"

        return [(3, nest), (6, tokens), (2, lines), (1, encoding), (1, head)]

    def render(self, model: TextModel, rng: random.Random) -> dict[str, bytes]:
        files = dict(model.files)
        data = model.text.encode("utf-8", "surrogatepass")
        if model.raw_insert is not None:
            at, raw = model.raw_insert
            data = data[:at] + raw + data[at:]
        files[model.path] = data
        return files


FAMILIES: dict[str, type[Family]] = {f.name: f for f in (
    TableFamily, BundleFamily, StringsFamily, SlicesFamily, V1Family, GraphFamily, CollectionsFamily,
    ObjectGraphFamily, StateFamily, TextFamily)}
