"""Legacy V1 checkpoints: the §4.1 record bytes, typed TensorProto fields, slices across shards,
Snappy blocks, corrupt blocks and records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metainspect.errors import CorruptError, WrongKindError
from metainspect.formats.slices import FULL, encode_slice_key
from metainspect.formats.v1 import V1Checkpoint

from helpers.table import build_table
from helpers.v1 import data_entry, meta_entry, write_v1

# §4.1: SavedSliceMeta of `a` (float [2,3], one full slice) and the data record of `a`
META_A = bytes.fromhex("0a15" "0a0161" "120812020802 12020803".replace(" ", "") + "1801" "22040a000a00")
RECORD_A = bytes.fromhex("12250a0161120" "40a000a001a1a2a18") + np.arange(1, 7, dtype="<f4").tobytes()


def test_record_bytes_from_format_notes(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    key = bytes.fromhex("006100010102807f807f")  # §4.1: the key of `a`, full extents
    path.write_bytes(build_table([(b"", b"\x0a\x17" + META_A), (key, RECORD_A)]))
    ckpt = V1Checkpoint([str(path)])
    assert ckpt.names() == ["a"]
    tensor = ckpt.tensor("a")
    assert tensor.dtype.name == "float32" and tensor.shape == (2, 3) and tensor.slices == [(0, [FULL, FULL])]
    value = ckpt.read("a")
    np.testing.assert_array_equal(value, [[1, 2, 3], [4, 5, 6]])
    assert not value.flags.writeable
    assert ckpt.location("a", [FULL, FULL], 0) == (0, len(RECORD_A))
    ckpt.close()


def test_typed_fields(tmp_path: Path) -> None:
    metas = [
        meta_entry("i32", 3, (3,), [[FULL]]), meta_entry("i64", 9, (), [[]]), meta_entry("s", 7, (2,), [[FULL]]),
        meta_entry("h", 19, (2,), [[FULL]]), meta_entry("b", 10, (2,), [[FULL]]), meta_entry("c", 8, (1,), [[FULL]]),
        meta_entry("u8", 4, (2,), [[FULL]]), meta_entry("d", 2, (2,), [[FULL]]),
    ]
    records = [
        data_entry("i32", [FULL], int_val=[-1, 0, 2**31 - 1]),
        data_entry("i64", [], int64_val=[-(2**40)]),
        data_entry("s", [FULL], string_val=[b"hello", b"\x00\xff"]),
        data_entry("h", [FULL], half_val=[15872, 0xC000]),  # 1.5 and -2.0 as float16 bit patterns
        data_entry("b", [FULL], bool_val=[True, False]),
        data_entry("c", [FULL], scomplex_val=[1.0, -2.0]),
        data_entry("u8", [FULL], int_val=[255, 7]),
        data_entry("d", [FULL], double_val=[0.1, -3.0]),
    ]
    ckpt = V1Checkpoint([write_v1(tmp_path / "t.ckpt", metas, records)])
    assert ckpt.names() == ["b", "c", "d", "h", "i32", "i64", "s", "u8"]
    np.testing.assert_array_equal(ckpt.read("i32"), np.array([-1, 0, 2**31 - 1], np.int32))
    i64 = ckpt.read("i64")
    assert i64.shape == () and i64.dtype == np.int64 and int(i64) == -(2**40)
    assert ckpt.read("s").tolist() == [b"hello", b"\x00\xff"]
    np.testing.assert_array_equal(ckpt.read("h"), np.array([1.5, -2.0], np.float16))
    np.testing.assert_array_equal(ckpt.read("b"), [True, False])
    np.testing.assert_array_equal(ckpt.read("c"), np.array([1 - 2j], np.complex64))
    assert ckpt.read("u8").dtype == np.uint8 and ckpt.read("u8").tolist() == [255, 7]
    np.testing.assert_array_equal(ckpt.read("d"), [0.1, -3.0])


def test_unpacked_float_field_is_accepted(tmp_path: Path) -> None:
    # proto2-era writers used one tag per element: field 5, wire type 5 (tag byte 0x2d)
    floats = b"".join(b"\x2d" + np.float32(v).tobytes() for v in (1.0, 2.5))
    saved_slice = b"\x0a\x01x" + b"\x12\x02\x0a\x00" + b"\x1a" + bytes([len(floats)]) + floats
    record = b"\x12" + bytes([len(saved_slice)]) + saved_slice
    meta = meta_entry("x", 1, (2,), [[FULL]]).SerializeToString()
    (tmp_path / "u").write_bytes(build_table([(b"", meta), (encode_slice_key("x", [FULL]), record)]))
    np.testing.assert_array_equal(V1Checkpoint([str(tmp_path / "u")]).read("x"), [1.0, 2.5])


def test_partitioned_tensor_across_shards(tmp_path: Path) -> None:
    full = np.arange(12, dtype=np.float32).reshape(6, 2)
    first = write_v1(tmp_path / "m-00000-of-00002", [meta_entry("emb", 1, (6, 2), [[(0, 3), (0, 2)]])],
                     [data_entry("emb", [(0, 3), (0, 2)], float_val=full[:3].ravel().tolist())])
    second = write_v1(tmp_path / "m-00001-of-00002", [meta_entry("emb", 1, (6, 2), [[(3, 3), (0, 2)]])],
                      [data_entry("emb", [(3, 3), (0, 2)], float_val=full[3:].ravel().tolist())])
    ckpt = V1Checkpoint([first, second])
    assert ckpt.names() == ["emb"]
    assert ckpt.tensor("emb").slices == [(0, [(0, 3), (0, 2)]), (1, [(3, 3), (0, 2)])]
    np.testing.assert_array_equal(ckpt.read("emb"), full)
    with pytest.raises(CorruptError, match="slices cover 6 of 12"):
        V1Checkpoint([first]).read("emb")


def test_snappy_compressed_v1_file(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 4000, dtype=np.float32)
    metas = [meta_entry(f"w{i}", 1, (4000,), [[FULL]]) for i in range(3)]
    records = [data_entry(f"w{i}", [FULL], float_val=(values * i).tolist()) for i in range(3)]
    path = write_v1(tmp_path / "old.ckpt", metas, records, per_block=2, snappy=True)
    ckpt = V1Checkpoint([path])
    for i in range(3):
        np.testing.assert_array_equal(ckpt.read(f"w{i}"), values * i)


def test_corrupt_block_and_bad_records(tmp_path: Path) -> None:
    metas = [meta_entry("x", 1, (3,), [[FULL]]), meta_entry("y", 1, (3,), [[FULL]]), meta_entry("z", 1, (2,), [[FULL]])]
    records = [data_entry("x", [FULL], float_val=[1, 2, 3]), data_entry("y", [FULL], float_val=[1, 2]),
               data_entry("z", [FULL], int_val=[1, 2])]
    path = Path(write_v1(tmp_path / "c.ckpt", metas, records, per_block=2))
    ckpt = V1Checkpoint([str(path)])
    with pytest.raises(CorruptError, match=r"tensor 'y'.*2 values in float_val, shape \[3\] needs 3"):
        ckpt.read("y")
    with pytest.raises(CorruptError, match=r"tensor 'z'.*0 values in float_val"):
        ckpt.read("z")
    data = bytearray(path.read_bytes())
    second_block = ckpt._tables[0].blocks[1]
    data[second_block.offset + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    ckpt.close()
    ckpt = V1Checkpoint([str(path)])  # the meta block is intact: opening works
    np.testing.assert_array_equal(ckpt.read("x"), [1, 2, 3])
    with pytest.raises(CorruptError, match=f"checksum mismatch for the block at offset {second_block.offset}"):
        ckpt.read("z")


def test_missing_record_and_too_new_version(tmp_path: Path) -> None:
    path = write_v1(tmp_path / "m.ckpt", [meta_entry("x", 1, (1,), [[FULL]])], [])
    with pytest.raises(CorruptError, match="no record for slice -"):
        V1Checkpoint([path]).read("x")
    meta = meta_entry("x", 1, (1,), [[FULL]])
    meta.meta.versions.min_consumer = 5
    (tmp_path / "new").write_bytes(build_table([(b"", meta.SerializeToString())]))
    with pytest.raises(WrongKindError, match="min_consumer=5"):
        V1Checkpoint([str(tmp_path / "new")])
    (tmp_path / "nometa").write_bytes(build_table([(b"k", b"")]))
    with pytest.raises(CorruptError, match="no V1 meta record"):
        V1Checkpoint([str(tmp_path / "nometa")])
