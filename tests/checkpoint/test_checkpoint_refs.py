"""The reference index of a checkpoint: zarr paths, dtypes, chunk grids, what is skipped and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metainspect import open_checkpoint
from metainspect.checkpoint.refs import reference_index, zarr_dtype, zarr_paths
from metainspect.errors import WrongKindError

from helpers.bundle import write_big_endian_dtypes
from helpers.cli import Cli
from helpers.paths import SAMPLES


def test_names_that_cannot_be_zarr_paths_are_escaped_and_kept_apart() -> None:
    paths = zarr_paths(["w", "w/adam_m", "a/.ATTRIBUTES/VARIABLE_VALUE", "__init__/x", "with space/é", "x//y", "50%"])
    assert paths == {
        "w": "w%",  # also the group of w/adam_m
        "w/adam_m": "w/adam_m",
        "a/.ATTRIBUTES/VARIABLE_VALUE": "a/%2EATTRIBUTES/VARIABLE_VALUE",
        "__init__/x": "%5F_init__/x",
        "with space/é": "with%20space/%C3%A9",
        "x//y": "x/%/y",
        "50%": "50%25",
    }
    assert len(set(paths.values())) == len(paths)


@pytest.mark.parametrize(("tf", "order", "expected"), [
    ("float32", "little", ("<f4", False)), ("float32", "big", (">f4", False)), ("bool", "big", ("|b1", False)),
    ("int8", "little", ("|i1", False)), ("complex128", "big", (">c16", False)), ("qint16", "little", ("<i2", False)),
    ("bfloat16", "little", ("<u2", True)), ("bfloat16", "big", (">u2", True)), ("float8_e4m3fn", "little", ("|u1", True)),
    ("int4", "little", ("|u1", True)),
])
def test_zarr_dtypes_name_the_byte_order_and_stand_in_for_extended_types(tf: str, order: str,
                                                                          expected: tuple[str, bool]) -> None:
    assert zarr_dtype(tf, order) == expected


def test_every_tensor_is_one_array_over_its_byte_range() -> None:
    with open_checkpoint(SAMPLES / "ckpt_tf2") as ckpt:
        index = reference_index(ckpt)
        infos = {info.name: info for info in ckpt.infos()}
    assert index["version"] == 1 and list(index["templates"].values()) == [str(SAMPLES / "ckpt_tf2/ckpt-2.data-00000-of-00001")]
    tensors = json.loads(index["refs"][".zattrs"])["tf_tensors"]
    assert set(tensors) == set(infos) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert index["skipped"] == {"_CHECKPOINTABLE_OBJECT_GRAPH": "string tensors have a variable-length layout, "
                                                                 "not a plain array of numbers"}
    name = "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"
    path = tensors[name]
    assert path == "optimizer/_trainable_variables/0/%2EATTRIBUTES/VARIABLE_VALUE"
    assert json.loads(index["refs"][f"{path}/.zarray"]) == {
        "zarr_format": 2, "shape": [3, 4], "chunks": [3, 4], "dtype": "<f4", "compressor": None, "filters": None,
        "order": "C", "fill_value": None, "dimension_separator": ".",
    }
    assert json.loads(index["refs"][f"{path}/.zattrs"]) == {
        "tf_name": name, "tf_dtype": "float32", "_ARRAY_DIMENSIONS": ["VARIABLE_VALUE_0", "VARIABLE_VALUE_1"]}
    location = infos[name].locations[0]
    assert index["refs"][f"{path}/0.0"] == ["{{d0}}", location.offset, location.size]
    scalar = tensors["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]
    assert f"{scalar}/0" in index["refs"]
    metadata = json.loads(index["refs"][".zmetadata"])["metadata"]
    assert metadata[f"{path}/.zarray"]["shape"] == [3, 4] and ".zgroup" in metadata


def test_regular_partitions_are_chunks_and_others_are_skipped() -> None:
    with open_checkpoint(SAMPLES / "ckpt_partitioned") as ckpt:
        index = reference_index(ckpt)
        pieces = ckpt.pieces("min_max")
    assert json.loads(index["refs"]["min_max/.zarray"])["chunks"] == [2, 5]
    assert [index["refs"][f"min_max/{i}.0"][1:] for i in range(4)] == [[p.offset, p.size] for p in pieces]
    assert set(index["skipped"]) == {"axis_sized", "cols", "rows"}
    assert all("not a regular grid" in reason for reason in index["skipped"].values())


def test_big_endian_bundles_keep_their_byte_order(tmp_path: Path) -> None:
    with open_checkpoint(write_big_endian_dtypes(tmp_path / "big")) as ckpt:
        index = reference_index(ckpt)
    assert json.loads(index["refs"]["big_float32_64x64/.zarray"])["dtype"] == ">f4"
    attrs = json.loads(index["refs"]["dt_bfloat16/.zattrs"])
    assert attrs["raw"] is True and attrs["tf_dtype"] == "bfloat16"


def test_v1_checkpoints_are_refused() -> None:
    with open_checkpoint(SAMPLES / "ckpt_v1") as ckpt, pytest.raises(WrongKindError, match="V1 checkpoint"):
        reference_index(ckpt)


def test_refs_command_writes_the_index(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "refs.json"
    result = cli("refs", str(SAMPLES / "ckpt_partitioned"), "-o", str(out), "--json")
    assert result.code == 0, result.stderr
    assert result.json()["arrays"] == 2 and set(result.json()["skipped"]) == {"axis_sized", "cols", "rows"}
    with open_checkpoint(SAMPLES / "ckpt_partitioned") as ckpt:
        assert json.loads(out.read_text()) == json.loads(json.dumps(reference_index(ckpt)))
    assert cli("refs", str(SAMPLES / "ckpt_v1"), "-o", str(tmp_path / "v1.json")).code == 2
    assert not (tmp_path / "v1.json").exists()
    assert json.loads(cli("refs", str(SAMPLES / "ckpt_tf2"), "-o", "-").stdout)["version"] == 1
