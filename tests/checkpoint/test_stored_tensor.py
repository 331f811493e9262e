"""Checkpoint as a mapping of lazy tensors: ckpt[name] reads nothing until asked, slicing reads
only the bytes (or slices) it needs, np.asarray works, missing names raise TensorNotFoundError."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from metainspect.checkpoint import StoredTensor, open_checkpoint
from metainspect.errors import MetainspectError, TensorNotFoundError
from metainspect.formats import bundle as bundle_module
from metainspect.formats.bundle_codec import HEADER_KEY, VERSION, encode_entry
from metainspect.formats.bundle_writer import BundleWriter
from metainspect.formats.table_writer import build_table
from metainspect.proto.tensor_bundle_pb2 import BundleHeaderProto

from helpers.paths import SAMPLES
from helpers.sources import CountingSource, count_reads

W = np.arange(100 * 8, dtype=np.float32).reshape(100, 8)
P = np.arange(10 * 3, dtype=np.int64).reshape(10, 3)


@pytest.fixture
def prefix(tmp_path: Path) -> str:
    with BundleWriter(str(tmp_path / "m")) as writer:
        writer.add("a/first", np.ones(5, np.float32))
        writer.add("w", W)
        writer.add("bf", np.array([[1.0, -0.5], [3.0, 0.25]], dtype=ml_dtypes.bfloat16))
        writer.add("s", np.array([b"ab", b"", b"xyz"], dtype=object))
        writer.add("scalar", np.array(7, np.int64))
        for start, rows in ((0, 4), (4, 4), (8, 2)):  # a partitioned tensor: three row blocks
            writer.add_slice("p", P.shape, [(start, rows), (0, -1)], P[start : start + rows])
    return str(tmp_path / "m")


@pytest.fixture
def shards(monkeypatch: pytest.MonkeyPatch) -> list[CountingSource]:
    """The data shards the checkpoint opens, each recording the ranges read from it."""
    return count_reads(monkeypatch, bundle_module)


def test_checkpoint_is_a_mapping_of_lazy_tensors(prefix: str, shards: list[CountingSource]) -> None:
    with open_checkpoint(prefix) as ckpt:
        assert isinstance(ckpt, Mapping) and len(ckpt) == 6
        assert ckpt.keys() == list(ckpt) == ["a/first", "bf", "p", "s", "scalar", "w"]
        tensor = ckpt["w"]
        assert isinstance(tensor, StoredTensor) and "w" in ckpt
        assert (tensor.name, tensor.dtype, tensor.shape, tensor.nbytes) == ("w", "float32", (100, 8), W.nbytes)
        assert [t.name for t in ckpt.values()] == ckpt.keys() and dict(ckpt.items())["p"].shape == (10, 3)
        assert shards == []  # nothing read from the data yet
        np.testing.assert_array_equal(np.asarray(tensor), W)
        got = ckpt.get("w")  # get() keeps returning the array
        assert isinstance(got, np.ndarray) and not got.flags.writeable
        assert np.asarray(tensor, dtype=np.float64).dtype == np.float64
        with pytest.raises(ValueError, match="needs a copy"):
            tensor.__array__(np.float64, copy=False)
        assert np.array(tensor, copy=True).flags.writeable
        assert repr(tensor) == "<StoredTensor 'w' float32 [100, 8]>"
    with open_checkpoint(prefix) as other:
        assert ckpt == ckpt and ckpt != other and {ckpt: 1}[ckpt] == 1  # identity, like any open file


def test_slicing_reads_only_those_rows(prefix: str, shards: list[CountingSource]) -> None:
    with open_checkpoint(prefix) as ckpt:
        offset = ckpt.info("w").locations[0].offset
        tensor = ckpt["w"]
        (shard,) = shards if shards else [ckpt.data_source(0)]
        assert shard.reads == []
        cases = [
            ((slice(2, 4),), [(offset + 2 * 32, 64)]),
            ((5,), [(offset + 5 * 32, 32)]),
            ((slice(2, 4), slice(1, 3)), [(offset + 2 * 32, 64)]),  # whole rows, cut in memory
            ((3, slice(2, 5)), [(offset + 3 * 32 + 8, 12)]),  # within one row: just those elements
            ((slice(10, 2, -3),), [(offset + 4 * 32, 7 * 32)]),  # rows 10, 7, 4: the run 4..10
            ((Ellipsis, 1), [(0 + offset, 100 * 32)]),  # every row
            ((-1, -1), [(offset + 99 * 32 + 28, 4)]),
        ]
        for key, reads in cases:
            shard.reads.clear()
            got = tensor[key if len(key) > 1 else key[0]]
            np.testing.assert_array_equal(got, W[key])
            assert np.asarray(got).shape == W[key].shape, key
            assert shard.reads == reads, key
        shard.reads.clear()
        empty = tensor[5:5]
        assert empty.shape == (0, 8) and empty.dtype == np.float32 and shard.reads == []
        assert not tensor[1:3].flags.writeable
        assert isinstance(tensor[0, 0], np.float32) and tensor[..., 0, 0].shape == ()  # numpy's rules


def test_index_errors_and_fancy_keys(prefix: str) -> None:
    with open_checkpoint(prefix) as ckpt:
        tensor = ckpt["w"]
        with pytest.raises(IndexError, match="out of bounds for axis 0"):
            tensor[100]
        with pytest.raises(IndexError, match="too many indices"):
            tensor[1, 2, 3]
        np.testing.assert_array_equal(tensor[[3, 1]], W[[3, 1]])  # anything else: read whole, then index
        np.testing.assert_array_equal(tensor[W[:, 0] > 700], W[W[:, 0] > 700])
        assert ckpt["scalar"][()] == 7 and ckpt["scalar"].numpy().shape == ()


def test_partitioned_slicing_reads_only_overlapping_slices(prefix: str, shards: list[CountingSource]) -> None:
    with open_checkpoint(prefix) as ckpt:
        pieces = ckpt.pieces("p")
        assert [p.slice for p in pieces] == ["0,4:-", "4,4:-", "8,2:-"] and ckpt.info("p").partitioned
        assert tuple(p.location for p in pieces) == ckpt.info("p").locations
        assert [(p.shape, p.extents) for p in pieces][2] == ((2, 3), ((8, 2), (0, -1)))
        got = ckpt["p"][5:7, 1:]
        np.testing.assert_array_equal(got, P[5:7, 1:])
        (shard,) = shards
        assert shard.reads == [(pieces[1].offset, pieces[1].size)]  # the middle slice alone, CRC checked
        shard.reads.clear()
        np.testing.assert_array_equal(ckpt["p"][2:6:3], P[2:6:3])  # rows 2 and 5: the first two slices
        assert shard.reads == [(pieces[0].offset, pieces[0].size), (pieces[1].offset, pieces[1].size)]


def test_bfloat16_and_strings(prefix: str) -> None:
    with open_checkpoint(prefix) as ckpt:
        bf = ckpt["bf"]
        assert bf.dtype == "bfloat16" and np.asarray(bf).dtype == ml_dtypes.bfloat16
        assert bf[1].dtype == ml_dtypes.bfloat16 and bf[1].tolist() == [3.0, 0.25]
        assert ckpt["s"][1:].tolist() == [b"", b"xyz"] and ckpt["s"][0] == b"ab"


def test_v1_tensors(prefix: str) -> None:
    with open_checkpoint(SAMPLES / "ckpt_v1") as ckpt:
        assert ckpt.format == "v1"
        for name in ("emb", "weights", "words"):  # emb is stored as two slices
            full = ckpt.get(name)
            np.testing.assert_array_equal(ckpt[name][1:3], full[1:3])
            np.testing.assert_array_equal(ckpt[name][-1], full[-1])
            np.testing.assert_array_equal(np.asarray(ckpt[name]), full)
        assert ckpt.info("emb").partitioned and len(ckpt.pieces("emb")) == 2


def test_tensorflow_partitioned_sample() -> None:
    with open_checkpoint(SAMPLES / "ckpt_partitioned") as ckpt:
        for name in ckpt:
            full = ckpt.get(name)
            if full.ndim:
                np.testing.assert_array_equal(ckpt[name][1:-1, ...], full[1:-1, ...])
                np.testing.assert_array_equal(ckpt[name][..., 1], full[..., 1])


def test_big_endian_rows_are_swapped(tmp_path: Path) -> None:
    values = np.arange(12, dtype=">f8").reshape(4, 3)
    header = BundleHeaderProto(num_shards=1, endianness=BundleHeaderProto.BIG)
    header.version.producer = VERSION
    (tmp_path / "be.index").write_bytes(build_table([
        (HEADER_KEY, header.SerializeToString()),
        (b"x", encode_entry(2, (4, 3), size=values.nbytes)),
    ]))
    (tmp_path / "be.data-00000-of-00001").write_bytes(values.tobytes())
    with open_checkpoint(tmp_path / "be", verify=False) as ckpt:
        assert ckpt.endianness == "big"
        np.testing.assert_array_equal(ckpt["x"][1:3], values[1:3].astype("<f8"))
        np.testing.assert_array_equal(ckpt["x"][2, 1], 7.0)


def test_missing_names_raise_tensor_not_found(prefix: str) -> None:
    with open_checkpoint(prefix) as ckpt:
        for read in (ckpt.__getitem__, ckpt.get, ckpt.info, ckpt.pieces):
            with pytest.raises(TensorNotFoundError) as caught:
                read("ww")
            assert isinstance(caught.value, KeyError) and isinstance(caught.value, MetainspectError)
            assert str(caught.value) == f"{prefix}: no tensor 'ww'; did you mean 'w'?"  # not KeyError's quoting
        with pytest.raises(KeyError):
            ckpt[3]  # type: ignore[index]
