"""Bundle writer: TensorFlow's bytes reproduced from decoded values, every dtype, slices, shards,
atomic output."""

from __future__ import annotations

import errno
import glob
import os
import stat
import threading
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from tensorboard.compat.proto.tensor_pb2 import VariantTensorDataProto

from metainspect.formats import bundle_writer
from metainspect.formats.bundle import Bundle
from metainspect.formats.bundle_writer import (
    BundleWriter,
    encode_entry,
    encode_header,
    encode_strings,
    encode_variants,
    starts_new_shard,
)
from metainspect.formats.slices import bounds, encode_slice_key

from helpers.bundle import string_bytes, variant_bytes
from helpers.paths import SAMPLES
from helpers.table import TF_INDEX


def _tf_bundles() -> list[str]:
    return sorted({p[: -len(".index")] for p in glob.glob(str(SAMPLES / "**" / "*.index"), recursive=True)})


def _files(prefix: Path | str) -> list[str]:
    return sorted(os.path.basename(f) for f in glob.glob(glob.escape(str(prefix)) + "*"))


def test_partitioned_sample_from_format_notes(tmp_path: Path) -> None:
    value = np.arange(40, dtype=np.float32).reshape(10, 4)
    with BundleWriter(str(tmp_path / "model.ckpt")) as writer:
        writer.add_slice("emb", [10, 4], [(0, 5), (0, 4)], value[:5])
        writer.add_slice("emb", [10, 4], [(5, 5), (0, 4)], value[5:])
    assert (tmp_path / "model.ckpt.index").read_bytes() == TF_INDEX
    assert (tmp_path / "model.ckpt.data-00000-of-00001").read_bytes() == value.tobytes()


@pytest.mark.parametrize("prefix", _tf_bundles(), ids=lambda p: os.path.relpath(p, SAMPLES))
def test_decoded_values_written_again_give_tensorflows_files(prefix: str, tmp_path: Path) -> None:
    """Every TF-written sample, decoded and re-added in its data order, comes out byte-identical."""
    source = Bundle(prefix)
    pieces = []
    for name in source.names():
        for extents, part in source.pieces(name):
            pieces.append((part.shard_id, part.offset, part.size, name, extents))
    out = str(tmp_path / "copy")
    with BundleWriter(out) as writer:
        shard = 0
        for shard_id, _, _, name, extents in sorted(pieces):
            if shard_id != shard:
                writer.start_shard()
                shard = shard_id
            value = source.read(name)
            dtype = bundle_writer.dtypes.name_of(source.entry(name).dtype)
            if extents is None:
                writer.add(name, value, dtype=dtype)
            else:
                shape = value.shape
                writer.add_slice(name, shape, extents, value[bounds(extents, shape)], dtype=dtype)
    assert Path(out + ".index").read_bytes() == Path(prefix + ".index").read_bytes()
    for i in range(source.num_shards):
        assert Path(bundle_writer.data_file_name(out, i, source.num_shards)).read_bytes() == \
            Path(source.shard_path(i)).read_bytes()


def test_header_and_entry_encodings() -> None:
    assert encode_header(1) == bytes.fromhex("08011a020801")
    assert encode_header(4) == bytes.fromhex("08041a020801")
    # FORMAT_NOTES §1.9: the second slice of emb, and the full entry listing both slices
    assert encode_entry(1, (5, 4), offset=80, size=80, crc32c=0x7EB74C54).hex() == \
        "0801120812020805120208042050285035544cb77e"
    assert encode_entry(1, (10, 4), slices=[[(0, 5), (0, 4)], [(5, 5), (0, 4)]]).hex() == \
        "080112081202080a120208043a080a0210050a0210043a0a0a04080510050a021004"
    assert encode_entry(7, ()) == bytes.fromhex("08071200")  # scalar shape present, crc 0 omitted
    assert encode_entry(1, (0, 3), crc32c=0xA282EAD8) == bytes.fromhex("0801120612001202080335d8ea82a2")
    assert encode_entry(1, (4,), slices=[[(0, 2)], [(0, -1)]]).hex().endswith("3a040a0210023a020a00")


def test_string_and_variant_layouts_match_format_notes() -> None:
    values = [b"ab", b"", b"xyz" * 50]
    size, chunks, checksum = encode_strings(values)
    raw = b"".join(chunks)
    assert raw[:8].hex() == "02009601dc561d91" and size == len(raw) == 160
    assert (raw, checksum) == string_bytes(values)
    assert b"".join(encode_strings([])[1]).hex() == "d8ea82a2"
    assert b"".join(encode_strings([b""])[1]).hex() == "00a67b113a"
    protos = [VariantTensorDataProto(type_name="tensorflow::TensorList").SerializeToString(), b""]
    size, chunks, checksum = encode_variants(protos)
    assert (b"".join(chunks), checksum) == variant_bytes(protos) and size == len(b"".join(chunks))


def test_every_dtype_family_round_trips(tmp_path: Path) -> None:
    values = {
        "f32": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "f64_be": np.array([1.5, -2.25], dtype=">f8"),
        "c64": np.array([1 + 2j, -3.5 + 0.25j], dtype=np.complex64),
        "bool": np.array([True, False]),
        "bf16": np.array([1.0, -0.5], dtype=ml_dtypes.bfloat16),
        "i4": np.array([-1, 7, -8, 0], dtype=ml_dtypes.int4),
        "f8": np.array([0.5, -2.0], dtype=ml_dtypes.float8_e4m3fn),
        "scalar": np.int64(7),
        "empty": np.zeros((0, 3), dtype=np.int32),
        "str": np.array([[b"a", "\u00e9"], [b"\x00\xff", b""]], dtype=object),
        "str_scalar": np.array(b"x" * 300, dtype=object),
        "str_none": np.empty((0,), dtype=object),
    }
    variant = np.array([VariantTensorDataProto(type_name="t", metadata=b"\x01")], dtype=object)
    with BundleWriter(str(tmp_path / "m")) as writer:
        for name, value in values.items():
            writer.add(name, value)
        writer.add("q8", np.array([-3, 4], dtype=np.int8), dtype="qint8")
        writer.add("var", variant)
    bundle = Bundle(str(tmp_path / "m"))
    for name, value in values.items():
        got = bundle.read(name, verify=True)
        expected = np.asarray(value)
        if name == "str":
            expected = np.array([[b"a", "\u00e9".encode()], [b"\x00\xff", b""]], dtype=object)
        assert got.shape == expected.shape and got.tolist() == expected.tolist(), name
    assert bundle_writer.dtypes.name_of(bundle.entry("q8").dtype) == "qint8"
    assert bundle_writer.dtypes.name_of(bundle.entry("f64_be").dtype) == "float64"
    assert bundle.read("var")[0].metadata == b"\x01"
    entry = bundle.entry("empty")
    assert entry.size == 0 and entry.crc32c == 0xA282EAD8


def test_shard_size_rolls_shards_and_full_entries_name_their_first_shard(tmp_path: Path) -> None:
    value = np.arange(24, dtype=np.float32).reshape(6, 4)  # 96 bytes, slices of 32
    with BundleWriter(str(tmp_path / "s"), shard_size=64) as writer:
        writer.add("a", np.zeros(10, np.float32))   # 40 bytes: shard 0
        for i in range(3):                            # 40+32 > 64: the slices start shard 1
            writer.add_slice("p", [6, 4], [(2 * i, 2), (0, -1)], value[2 * i: 2 * i + 2])
        writer.add("big", np.zeros(100, np.float32))  # 400 bytes: a shard of its own
        writer.add("tail", np.zeros(1, np.int8))      # and the next tensor starts another one
    assert _files(tmp_path / "s") == [f"s.data-{i:05d}-of-00005" for i in range(5)] + ["s.index"]
    bundle = Bundle(str(tmp_path / "s"))
    assert bundle.num_shards == 5
    assert [(part.shard_id, part.offset) for _, part in bundle.pieces("p")] == [(1, 0), (1, 32), (2, 0)]
    assert bundle.entry("p").shard_id == 1  # the full entry names the shard of its first slice
    assert (bundle.entry("big").shard_id, bundle.entry("tail").shard_id) == (3, 4)
    np.testing.assert_array_equal(bundle.read("p"), value)


def test_starts_new_shard_rule() -> None:
    assert not starts_new_shard(0, 0, 10**9, 100)  # an empty shard takes anything
    assert starts_new_shard(60, 1, 41, 100) and not starts_new_shard(60, 1, 40, 100)
    assert not starts_new_shard(10**12, 5, 1, None)


def test_start_shard_only_when_the_current_one_has_tensors(tmp_path: Path) -> None:
    with BundleWriter(str(tmp_path / "m")) as writer:
        writer.start_shard()
        writer.add("a", np.zeros(0, np.float32))
        writer.start_shard()
        writer.start_shard()
        writer.add("b", np.ones(2, np.float32))
    assert _files(tmp_path / "m") == ["m.data-00000-of-00002", "m.data-00001-of-00002", "m.index"]
    assert (tmp_path / "m.data-00000-of-00002").read_bytes() == b""


def test_copy_bytes_mixed_with_buffered_writes(tmp_path: Path) -> None:
    source = tmp_path / "raw"
    payload = np.arange(1000, dtype=np.int32)
    source.write_bytes(b"junk" + payload.tobytes())
    fd = os.open(source, os.O_RDONLY)
    try:
        with BundleWriter(str(tmp_path / "m")) as writer:
            writer.add("first", np.array([1.5], np.float32))
            stored = bundle_writer.crc.mask(bundle_writer.crc.crc32c(payload.tobytes()))
            writer.copy_bytes("copied", "int32", (1000,), fd, 4, 4000, stored)
            writer.add("last", np.array([2], np.int64))
    finally:
        os.close(fd)
    bundle = Bundle(str(tmp_path / "m"))
    np.testing.assert_array_equal(bundle.read("copied"), payload)
    assert bundle.read("last")[0] == 2 and bundle.entry("last").offset == 4004


def _source(tmp_path: Path, parts: int, size: int) -> tuple[int, list[bytes]]:
    """An open descriptor on a file of ``parts`` random blocks of ``size`` bytes, and the blocks."""
    blocks = [np.random.default_rng(i).integers(0, 256, size, np.uint8).tobytes() for i in range(parts)]
    (tmp_path / "raw").write_bytes(b"".join(blocks))
    return os.open(tmp_path / "raw", os.O_RDONLY), blocks


def _crc(data: bytes) -> int:
    return bundle_writer.crc.mask(bundle_writer.crc.crc32c(data))


def test_queued_copies_into_different_shards_run_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    both_copying = threading.Barrier(2, timeout=10)  # broken (the test fails) unless two copies overlap
    copy_range = bundle_writer._copy_range
    first_calls: set[int] = set()

    def meeting_copy(source: int, target: int, offset: int, at: int, count: int) -> int:
        if target not in first_calls:
            first_calls.add(target)
            both_copying.wait()
        return copy_range(source, target, offset, at, count)

    monkeypatch.setattr(bundle_writer, "_copy_range", meeting_copy)
    fd, blocks = _source(tmp_path, 4, 5000)
    progress: list[int] = []
    try:
        with BundleWriter(str(tmp_path / "m")) as writer:
            for i, block in enumerate(blocks):
                if i == 2:
                    writer.start_shard()
                writer.copy_bytes(f"t{i}", "uint8", (5000,), fd, 5000 * i, 5000, _crc(block))
            writer.add("written", np.arange(3, dtype=np.int32))  # after the queued copies of its shard
            writer.wait(progress.append)
    finally:
        os.close(fd)
    assert progress[-1] == 20000 == writer.copied_bytes and progress == sorted(progress)
    bundle = Bundle(str(tmp_path / "m"))
    assert [bundle.entry(f"t{i}").shard_id for i in range(4)] == [0, 0, 1, 1]
    assert bundle.entry("written").offset == 10000
    for i, block in enumerate(blocks):
        assert bundle.read(f"t{i}").tobytes() == block
    np.testing.assert_array_equal(bundle.read("written"), np.arange(3, dtype=np.int32))


def test_copies_fall_back_to_reads_and_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot_copy(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", cannot_copy)
    monkeypatch.setattr(bundle_writer, "_FALLBACK_CHUNK", 1000)
    fd, blocks = _source(tmp_path, 2, 4500)
    try:
        with BundleWriter(str(tmp_path / "m")) as writer:
            writer.add("first", np.ones(1, np.float64))
            for i, block in enumerate(blocks):
                writer.copy_bytes(f"t{i}", "uint8", (4500,), fd, 4500 * i, 4500, _crc(block))
    finally:
        os.close(fd)
    bundle = Bundle(str(tmp_path / "m"))
    assert [bundle.read(f"t{i}").tobytes() for i in range(2)] == blocks  # read() checks each CRC


@pytest.mark.parametrize("shards", [1, 3])
def test_a_failing_copy_surfaces_at_finish_and_leaves_nothing(shards: int, tmp_path: Path) -> None:
    fd, blocks = _source(tmp_path, 3, 1000)
    out = tmp_path / "out"
    try:
        writer = BundleWriter(str(out / "m"))
        for i, block in enumerate(blocks):
            if shards > 1:
                writer.start_shard()
            writer.copy_bytes(f"t{i}", "uint8", (1000,), fd, 1000 * i, 1000, _crc(block))
        writer.copy_bytes("beyond", "uint8", (1000,), fd, 2500, 1000, 0)  # the source has 500 of them
        with pytest.raises(OSError, match="'beyond': the source ended 500 bytes early"):
            writer.finish()
    finally:
        os.close(fd)
    assert os.listdir(out) == []


@pytest.mark.parametrize("sync", [True, False])
def test_files_are_fsynced_before_their_rename_unless_told_not_to(sync: bool, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with BundleWriter(str(tmp_path / "m"), shard_size=8, sync=sync) as writer:
        writer.add("a", np.zeros(2, np.float32))
        writer.add("b", np.ones(2, np.float32))
    names = sorted(os.path.basename(path) for path in synced)
    if sync:  # under their temporary names: two data shards and the index
        assert len(names) == 3 and all(n.startswith(".m.") and n.endswith(".tmp") for n in names)
    else:
        assert names == []
    bundle = Bundle(str(tmp_path / "m"))
    np.testing.assert_array_equal(bundle.read("b"), np.ones(2, np.float32))


def test_early_writeback_keeps_data_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_writer, "_WRITEBACK_STEP", 1000)
    values = [np.random.default_rng(i).standard_normal(700).astype(np.float32) for i in range(5)]
    with BundleWriter(str(tmp_path / "m")) as writer:
        for i, value in enumerate(values):
            writer.add(f"t{i}", value)
    bundle = Bundle(str(tmp_path / "m"))
    for i, value in enumerate(values):
        np.testing.assert_array_equal(bundle.read(f"t{i}"), value)


@pytest.mark.parametrize("shard_size", [None, 8])
def test_an_error_leaves_nothing_behind(shard_size: int | None, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), BundleWriter(str(tmp_path / "m"), shard_size=shard_size) as writer:
        for i in range(4):  # with shard_size 8: three finished shards, fsynced in the background
            writer.add(f"a{i}", np.zeros(3, np.float32))
        raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []


def test_outputs_appear_only_at_the_end_with_normal_permissions(tmp_path: Path) -> None:
    writer = BundleWriter(str(tmp_path / "out" / "m"))  # the directory is created
    writer.add("a", np.zeros(3, np.float32))
    assert all(name.startswith(".m.") and name.endswith(".tmp") for name in os.listdir(tmp_path / "out"))
    files = writer.finish()
    assert _files(tmp_path / "out" / "m") == ["m.data-00000-of-00001", "m.index"]
    assert files.num_shards == 1 and files.data_bytes == 12 and files.entries == 1
    umask = os.umask(0)
    os.umask(umask)
    for path in (files.index_file, *files.data_files):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    with pytest.raises(ValueError, match="finished"):
        writer.add("b", np.zeros(1, np.float32))


def test_misuse_is_refused(tmp_path: Path) -> None:
    with BundleWriter(str(tmp_path / "m")) as writer:
        writer.add("a", np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="duplicate"):
            writer.add("a", np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="empty name"):
            writer.add("", np.zeros(2, np.float32))
        writer.add_slice("p", [4], [(0, 2)], np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="duplicate"):
            writer.add_slice("p", [4], [(0, 2)], np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="has shape"):
            writer.add_slice("p", [4], [(2, 2)], np.zeros(3, np.float32))
        with pytest.raises(ValueError, match="earlier slices"):
            writer.add_slice("p", [4], [(2, 2)], np.zeros(2, np.float64))
        with pytest.raises(ValueError, match="does not fit"):
            writer.add_slice("q", [4], [(3, 2)], np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="already added whole"):
            writer.add_slice("a", [4], [(0, 2)], np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="checksum given"):
            writer.add_bytes("s", "string", (1,), 5, [b"\x00" * 5])
        with pytest.raises(ValueError, match="announced"):
            writer.add_bytes("n", "float32", (2,), 8, [b"\x00" * 4])
        writer.add_slice("p", [4], [(2, 2)], np.ones(2, np.float32))
        writer.add_slice("whole", [3], [(0, 3)], np.ones(3, np.float32))  # a full slice is a plain tensor
    bundle = Bundle(str(tmp_path / "m"))
    assert not bundle.entry("whole").slices
    assert encode_slice_key("p", [(0, 2)]) in bundle._raw


def test_an_abort_stops_a_long_copy_between_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_writer, "_COPY_CHUNK", 100)
    copy_range = bundle_writer._copy_range
    started, chunks = threading.Event(), []
    release = threading.Event()

    def slow_copy(source: int, target: int, offset: int, at: int, count: int) -> int:
        chunks.append(offset)
        started.set()
        release.wait(10)
        return copy_range(source, target, offset, at, count)

    monkeypatch.setattr(bundle_writer, "_copy_range", slow_copy)
    fd, blocks = _source(tmp_path, 1, 10_000)  # 100 chunks of 100 bytes
    out = tmp_path / "out"
    try:
        writer = BundleWriter(str(out / "m"))
        writer.copy_bytes("big", "uint8", (10_000,), fd, 0, 10_000, _crc(blocks[0]))
        assert started.wait(10)
        threading.Timer(0.2, release.set).start()
        writer.abort()  # returns once the lane has finished its current chunk
    finally:
        os.close(fd)
    assert len(chunks) == 1 and os.listdir(out) == []
