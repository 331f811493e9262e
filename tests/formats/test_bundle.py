"""V2 bundles: TF's own bytes from FORMAT_NOTES (§1.9, §2.5, §3.4), the suite's bundle writer
(helpers.bundle), every dtype family, big-endian data, partitions, and corrupt or missing data."""

from __future__ import annotations

import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from tensorboard.compat.proto.tensor_pb2 import VariantTensorDataProto

from metainspect.errors import CorruptError, NotFoundError, WrongKindError
from metainspect.formats.bundle import Bundle, TensorCorruptError
from metainspect.proto.tensor_bundle_pb2 import BundleEntryProto

from helpers.bundle import DT, entry, header, string_bytes, variant_bytes, write_bundle
from helpers.table import TF_INDEX, build_table, masked_crc


@pytest.fixture
def emb_prefix(tmp_path: Path) -> Path:
    """TF's partitioned `emb` sample: the §1.9 index and its 160-byte data file (§3.4)."""
    prefix = tmp_path / "model.ckpt"
    Path(f"{prefix}.index").write_bytes(TF_INDEX)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(np.arange(40, dtype="<f4").tobytes())
    return prefix


# ----------------------------------------------------------------------------------------------
# tests
# ----------------------------------------------------------------------------------------------


def test_tensorflow_partitioned_sample(emb_prefix: Path) -> None:
    bundle = Bundle(str(emb_prefix))
    assert bundle.names() == ["emb"] and bundle.num_shards == 1 and not bundle.big_endian
    value = bundle.read("emb")  # verify=True: TF's stored CRCs 0x191c91dd / 0x7eb74c54 must match
    assert value.shape == (10, 4) and not value.flags.writeable
    np.testing.assert_array_equal(value, np.arange(40, dtype=np.float32).reshape(10, 4))
    pieces = bundle.pieces("emb")
    assert [(ext, p.offset, p.size, p.crc32c) for ext, p in pieces] == [
        ([(0, 5), (0, 4)], 0, 80, 0x191C91DD), ([(5, 5), (0, 4)], 80, 80, 0x7EB74C54)]
    bundle.close()


def test_flipped_tensor_byte_names_tensor_shard_and_offset(emb_prefix: Path) -> None:
    data_path = Path(f"{emb_prefix}.data-00000-of-00001")
    data = bytearray(data_path.read_bytes())
    data[100] ^= 0x40
    data_path.write_bytes(bytes(data))
    bundle = Bundle(str(emb_prefix))
    with pytest.raises(TensorCorruptError) as info:
        bundle.read("emb")
    message = str(info.value)
    assert "'emb'" in message and "offset 80" in message and "checksum mismatch" in message
    assert info.value.path == str(data_path) and info.value.offset == 80
    assert bundle.read("emb", verify=False).ravel()[25] != 25.0  # an unchecked read still decodes


def test_missing_data_shard_names_expected_file(emb_prefix: Path) -> None:
    Path(f"{emb_prefix}.data-00000-of-00001").unlink()
    bundle = Bundle(str(emb_prefix))
    assert bundle.names() == ["emb"]  # opening reads only the index
    with pytest.raises(NotFoundError, match=r"model\.ckpt\.data-00000-of-00001"):
        bundle.read("emb")


def test_tensor_beyond_end_of_file(emb_prefix: Path) -> None:
    Path(f"{emb_prefix}.data-00000-of-00001").write_bytes(np.arange(30, dtype="<f4").tobytes())
    with pytest.raises(CorruptError, match=r"bytes 80\.\.160 extend beyond the file \(120 bytes\)"):
        Bundle(str(emb_prefix)).read("emb")


def test_numeric_dtypes_are_zero_copy_and_read_only(tmp_path: Path) -> None:
    values = {
        "f": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "c": np.array([1 + 2j, -3.5 + 0.25j], dtype=np.complex64),
        "z": np.array([[1 - 1j], [2 + 8j]], dtype=np.complex128),
        "b": np.array([True, False, True]),
        "h": np.array([1.5, -2.0], dtype=np.float16),
        "bf": np.array([1.0, -0.5, 3.0], dtype=ml_dtypes.bfloat16),
        "q": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 3), dtype=np.int32),
    }
    names = {"f": "float32", "c": "complex64", "z": "complex128", "b": "bool", "h": "float16",
             "bf": "bfloat16", "q": "int64", "empty": "int32"}
    tensors = {k: (DT[names[k]], v.shape, v.tobytes(), None) for k, v in values.items()}
    tensors["i4"] = (DT["int4"], (4,), bytes([0x0F, 0x07, 0x08, 0x00]), None)  # unpacked, one per byte
    bundle = Bundle(str(write_bundle(tmp_path / "m", tensors)))
    for name, expected in values.items():
        got = bundle.read(name)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        assert not got.flags.writeable
    f = bundle.read("f")
    assert not f.flags.owndata and f.base is not None  # a view of the memory map
    np.testing.assert_array_equal(bundle.read("i4").astype(np.int8), [-1, 7, -8, 0])


def test_unaligned_offset_is_copied(tmp_path: Path) -> None:
    value = np.arange(5, dtype=np.float64)
    bundle = Bundle(str(write_bundle(tmp_path / "m", {"x": (2, (5,), value.tobytes(), None)}, lead=b"\x01\x02\x03")))
    got = bundle.read("x")
    np.testing.assert_array_equal(got, value)
    assert got.flags.aligned and not got.flags.writeable


def test_big_endian_bundle(tmp_path: Path) -> None:
    f = np.array([1.5, -2.25], dtype=">f4")
    c = np.array([1 + 2j], dtype=">c8")  # each float32 component stored big-endian
    i = np.array([[1, -2]], dtype=">i8")
    prefix = write_bundle(tmp_path / "be", {
        "f": (1, (2,), f.tobytes(), None), "c": (8, (1,), c.tobytes(), None), "i": (9, (1, 2), i.tobytes(), None),
        "s": (7, (2,), *string_bytes([b"ab", b"xyz"], "big")),
    }, big_endian=True)
    bundle = Bundle(str(prefix))
    assert bundle.big_endian
    np.testing.assert_array_equal(bundle.read("f"), [1.5, -2.25])
    np.testing.assert_array_equal(bundle.read("c"), [1 + 2j])
    np.testing.assert_array_equal(bundle.read("i"), [[1, -2]])
    assert list(bundle.read("s")) == [b"ab", b"xyz"]


def test_strings_from_format_notes(tmp_path: Path) -> None:
    # §2.5: [b"ab", b"", b"xyz"*50] -> lengths 02 00 96 01, length checksum dc 56 1d 91
    raw, crc = string_bytes([b"ab", b"", b"xyz" * 50])
    assert raw[:8].hex() == "020096" "01dc561d91" and len(raw) == 160
    # §2.5: one empty string is 00 a6 7b 11 3a; zero strings are just d8 ea 82 a2
    tensors = {
        "str": (7, (3,), raw, crc),
        "none": (7, (0,), bytes.fromhex("d8ea82a2"), string_bytes([])[1]),
        "grid": (7, (2, 2), *string_bytes([b"a", b"bb", b"\x00\xff", b""])),
    }
    tensors["one"] = (7, (), bytes.fromhex("00a67b113a"), string_bytes([b""])[1])
    assert string_bytes([b""])[0].hex() == "00a67b113a" and string_bytes([])[0].hex() == "d8ea82a2"
    bundle = Bundle(str(write_bundle(tmp_path / "s", tensors)))
    assert list(bundle.read("str")) == [b"ab", b"", b"xyz" * 50]
    scalar = bundle.read("one")
    assert scalar.shape == () and scalar[()] == b"" and scalar.dtype == object
    assert bundle.read("none").shape == (0,)
    assert bundle.read("grid").tolist() == [[b"a", b"bb"], [b"\x00\xff", b""]]


def test_string_checksums_are_checked(tmp_path: Path) -> None:
    raw, crc = string_bytes([b"ab", b"cd"])
    bad_lengths = raw[:2] + bytes([raw[2] ^ 1]) + raw[3:]
    bad_body = raw[:-1] + b"!"
    bundle = Bundle(str(write_bundle(tmp_path / "s", {"a": (7, (2,), bad_lengths, crc), "b": (7, (2,), bad_body, crc)})))
    with pytest.raises(CorruptError, match="length checksum"):
        bundle.read("a", verify=False)
    with pytest.raises(CorruptError, match=r"'b'.*checksum mismatch"):
        bundle.read("b")
    assert list(bundle.read("b", verify=False)) == [b"ab", b"c!"]


def test_absurd_string_count_fails_fast(tmp_path: Path) -> None:
    bundle = Bundle(str(write_bundle(tmp_path / "s", {"a": (7, (10**12,), b"\x00" * 8, None)})))
    start = time.perf_counter()
    with pytest.raises(CorruptError, match="cannot hold"):
        bundle.read("a")
    assert time.perf_counter() - start < 0.1


def test_variant_tensor(tmp_path: Path) -> None:
    protos = [VariantTensorDataProto(type_name="tensorflow::TensorList", metadata=b"\x01").SerializeToString(),
              VariantTensorDataProto(type_name="x").SerializeToString()]
    raw, crc = variant_bytes(protos)
    bundle = Bundle(str(write_bundle(tmp_path / "v", {"v": (21, (2,), raw, crc), "bad": (21, (2,), raw[:-1] + b"\x00", crc)})))
    value = bundle.read("v")
    assert [p.type_name for p in value] == ["tensorflow::TensorList", "x"] and value[0].metadata == b"\x01"
    with pytest.raises(CorruptError, match="element 1: variant checksum mismatch"):
        bundle.read("bad")


def test_size_that_does_not_match_shape(tmp_path: Path) -> None:
    bundle = Bundle(str(write_bundle(tmp_path / "m", {"x": (1, (3,), bytes(8), None)})))
    with pytest.raises(CorruptError, match="holds 8 bytes, shape \\[3\\] float32 needs 12"):
        bundle.read("x")


def test_version_and_header_checks(tmp_path: Path) -> None:
    with pytest.raises(WrongKindError, match="min_consumer=2"):
        Bundle(str(write_bundle(tmp_path / "new", {}, min_consumer=2)))
    Path(tmp_path / "nohdr.index").write_bytes(build_table([(b"x", entry(1, ()))]))
    with pytest.raises(CorruptError, match="not the bundle header"):
        Bundle(str(tmp_path / "nohdr"))
    Path(tmp_path / "badentry.index").write_bytes(build_table([(b"", header()), (b"x", b"\xff\xff")]))
    bundle = Bundle(str(tmp_path / "badentry"))  # entries are parsed on first use
    with pytest.raises(CorruptError, match="bad BundleEntryProto for key b'x'"):
        bundle.entry("x")


def test_partition_whose_slice_entry_is_missing(tmp_path: Path) -> None:
    full = BundleEntryProto(dtype=1)
    full.shape.dim.add(size=4)
    full.slices.add().extent.add(length=2)
    full.slices.add().extent.add(start=2, length=2)
    part = entry(1, (2,), size=8, crc32c=masked_crc(bytes(8)))
    from metainspect.formats.slices import encode_slice_key

    items = sorted([(b"w", full.SerializeToString()), (encode_slice_key("w", [(0, 2)]), part)])
    Path(tmp_path / "p.index").write_bytes(build_table([(b"", header())] + items))
    Path(tmp_path / "p.data-00000-of-00001").write_bytes(bytes(8))
    bundle = Bundle(str(tmp_path / "p"))
    assert bundle.names() == ["w"]
    with pytest.raises(CorruptError, match=r"slice 2,2:? has no entry|slice 2,2 has no entry"):
        bundle.read("w")


def test_shard_id_out_of_range(tmp_path: Path) -> None:
    items = [(b"", header()), (b"x", entry(1, (1,), shard_id=3, size=4))]
    Path(tmp_path / "s.index").write_bytes(build_table(items))
    with pytest.raises(CorruptError, match="shard 3, the bundle has 1"):
        Bundle(str(tmp_path / "s")).read("x")
