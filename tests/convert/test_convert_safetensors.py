"""TensorFlow checkpoints to safetensors: every byte what TensorFlow reported (golden SHA-256), the
file as the ``safetensors`` package reads it, Hugging Face's sharded layout, plans and JSON."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors

from metainspect.checkpoint import open_checkpoint
from metainspect.checkpoint.selection import Dropped
from metainspect.convert import ConvertOptions, convert, plan_conversion
from metainspect.convert.safetensors import DTYPES, read_header

from helpers.bundle import write_big_endian_dtypes
from helpers.paths import SAMPLES

#: every sample checkpoint safetensors can hold whole (ckpt_dtypes and ckpt_v1 hold strings: below)
WHOLE = ["mlp", "ckpt_tf1_sharded", "ckpt_partitioned", "ckpt_tf2", "ckpt_tf2_slots", "savedmodel_tf1",
         "savedmodel_tf2", "convert/bert", "convert/t5"]


def loaded(path: Path) -> dict[str, dict[str, Any]]:
    """The tensors as the safetensors package reads the file."""
    return dict(safetensors.deserialize(path.read_bytes()))


def golden(sample: str) -> dict[str, Any]:
    directory = SAMPLES / sample
    name = "golden_ckpt.json" if (directory / "golden_ckpt.json").exists() else "golden.json"
    data = json.loads((directory / name).read_text())
    return data["checkpoints"][data["latest"]] if "checkpoints" in data else data


@pytest.mark.parametrize("sample", WHOLE)
def test_every_tensor_is_what_tensorflow_read(sample: str, tmp_path: Path) -> None:
    out = tmp_path / "model.safetensors"
    plan = convert(str(SAMPLES / sample), str(out))
    tensors = loaded(out)
    expected = golden(sample)
    names = {n for n, _ in expected["variables"]} - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert set(tensors) == names
    for name, tensor in tensors.items():
        assert hashlib.sha256(bytes(tensor["data"])).hexdigest() == expected["sha256"][name], name
        assert tensor["dtype"] == DTYPES[expected["dtypes"][name]]
        assert tensor["shape"] == dict(expected["variables"])[name]
    assert plan.written and plan.files == (str(out),)


def test_partitioned_variables_come_out_whole(tmp_path: Path) -> None:
    """Slices along the first axis are copied in place; along another axis they are joined."""
    out = tmp_path / "p.safetensors"
    convert(str(SAMPLES / "ckpt_partitioned"), str(out))
    tensors = loaded(out)
    with open_checkpoint(SAMPLES / "ckpt_partitioned") as ckpt:
        for name in ("rows", "cols", "axis_sized", "min_max"):
            value = ckpt.get(name)
            assert tensors[name]["shape"] == list(value.shape)
            assert bytes(tensors[name]["data"]) == np.ascontiguousarray(value).tobytes()


def test_layout_aligns_every_tensor(tmp_path: Path) -> None:
    out = tmp_path / "t5.safetensors"
    convert(str(SAMPLES / "convert" / "t5"), str(out))
    raw = out.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert (8 + length) % 8 == 0 and raw[8:9] == b"{"
    header = read_header(str(out))
    itemsize = {"bfloat16": 2, "float32": 4, "int64": 8}
    assert all(e.begin % itemsize[e.dtype] == 0 for e in header.entries)
    assert header.entries[-1].end == len(raw) - 8 - length  # no gap, nothing after the data


def test_metadata_records_source_and_what_was_left_out(tmp_path: Path) -> None:
    out = tmp_path / "b.safetensors"
    plan = convert(str(SAMPLES / "convert" / "bert"), str(out),
                   ConvertOptions(drop_optimizer=True, metadata=(("format", "pt"),)))
    with safetensors.safe_open(str(out), framework="numpy") as f:
        metadata = f.metadata()
    assert metadata == plan.metadata
    assert metadata["source"] == "bert_model.ckpt" and metadata["source_format"] == "v2"
    assert metadata["format"] == "pt"
    dropped = json.loads(metadata["dropped"])
    assert len(dropped) == 92 and all(n.endswith(("/adam_m", "/adam_v")) for n in dropped)


def test_object_graph_left_out_with_a_note(tmp_path: Path) -> None:
    plan = convert(str(SAMPLES / "ckpt_tf2"), str(tmp_path / "k.safetensors"))
    row = next(t for t in plan.tensors if t.name == "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert row.dropped and row.drop_reason == Dropped("object_graph")
    assert any("_CHECKPOINTABLE_OBJECT_GRAPH" in note for note in plan.notes)


def test_strings_are_refused_by_name_unless_dropped(tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "v1.safetensors"
    result = cli("convert", str(SAMPLES / "ckpt_v1"), "-o", str(out))
    assert result.code == 2 and not out.exists()
    assert result.stderr.count("\n") == 1 and "tensor 'words'" in result.stderr and "ckpt_v1/model.ckpt" in result.stderr
    assert cli("convert", str(SAMPLES / "ckpt_v1"), "-o", str(out), "--drop", "^words$").code == 0
    with open_checkpoint(SAMPLES / "ckpt_v1") as ckpt:
        assert set(loaded(out)) == set(ckpt.keys()) - {"words"}


def test_all_dtypes_safetensors_has(tmp_path: Path) -> None:
    """ckpt_dtypes: everything but strings, variants, and the types safetensors lacks."""
    lacking = "dt_(complex128|qu?int(8|16|32)|float8_e4m3b11fnuz|u?int[24]|float4_e2m1fn|variant|string)$|^str_"
    out = tmp_path / "d.safetensors"
    convert(str(SAMPLES / "ckpt_dtypes"), str(out), ConvertOptions(drop=(lacking,)))
    tensors = loaded(out)
    expected = golden("ckpt_dtypes")
    assert {tensors[n]["dtype"] for n in tensors} == set(DTYPES.values())
    for name, tensor in tensors.items():
        assert hashlib.sha256(bytes(tensor["data"])).hexdigest() == expected["sha256"][name], name


def test_big_endian_checkpoint(tmp_path: Path) -> None:
    prefix = write_big_endian_dtypes(tmp_path / "be")
    out = tmp_path / "be.safetensors"
    convert(str(prefix), str(out), ConvertOptions(drop=("^str_|dt_string", "complex128|qu?int|b11|int[24]|float4")))
    expected = golden("ckpt_dtypes")
    tensors = loaded(out)
    assert {t["dtype"] for t in tensors.values()} == set(DTYPES.values())
    for name, tensor in tensors.items():
        assert hashlib.sha256(bytes(tensor["data"])).hexdigest() == expected["sha256"][name], name


def test_hugging_face_shards(tmp_path: Path) -> None:
    plan = convert(str(SAMPLES / "convert" / "t5"), str(tmp_path / "model.safetensors"),
                   ConvertOptions(shard_size=4096, drop_optimizer=True))
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert sorted(set(index["weight_map"].values())) == shards
    assert plan.files[-1].endswith("model.safetensors.index.json") and not (tmp_path / "model.safetensors").exists()
    total = 0
    for shard in shards:
        tensors = loaded(tmp_path / shard)
        assert sum(len(t["data"]) for t in tensors.values()) <= 4096
        assert all(index["weight_map"][name] == shard for name in tensors)
        total += sum(len(t["data"]) for t in tensors.values())
    assert index["metadata"]["total_size"] == total == plan.output_bytes
    assert set(index["weight_map"]) == {t.new_name for t in plan.kept}


def test_directory_output_gets_model_safetensors(tmp_path: Path) -> None:
    plan = convert(str(SAMPLES / "convert" / "bert"), str(tmp_path) + "/")
    assert plan.format == "safetensors" and plan.files == (str(tmp_path / "model.safetensors"),)


def test_rename_keep_cast(tmp_path: Path) -> None:
    out = tmp_path / "r.safetensors"
    plan = convert(str(SAMPLES / "convert" / "bert"), str(out),
                   ConvertOptions(keep=("^bert/",), drop_optimizer=True, renames=("bert=encoder",),
                                  cast=("float32", "bfloat16")))
    tensors = loaded(out)
    assert all(name.startswith("encoder/") for name in tensors)
    assert {t["dtype"] for t in tensors.values()} == {"BF16"}
    with open_checkpoint(SAMPLES / "convert" / "bert") as ckpt:
        kernel = ckpt.get("bert/pooler/dense/kernel")
    import ml_dtypes

    assert bytes(tensors["encoder/pooler/dense/kernel"]["data"]) == kernel.astype(ml_dtypes.bfloat16).tobytes()
    assert {t.drop_reason for t in plan.dropped} == {Dropped("keep"), Dropped("drop_optimizer")}


def test_plan_writes_nothing_and_lists_every_tensor(tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "x.safetensors"
    result = cli("convert", str(SAMPLES / "mlp"), "-o", str(out), "--plan", "--drop-optimizer", "--json")
    assert result.code == 0 and not out.exists() and not list(tmp_path.iterdir())
    data = result.json()
    assert set(data) >= {"source", "output", "format", "tensors", "metadata", "written", "files", "summary"}
    assert data["written"] is None and data["format"] == "safetensors" and len(data["tensors"]) == 15
    row = next(t for t in data["tensors"] if t["name"] == "dense1/kernel/Adam")
    assert row["new_name"] is None and row["dropped_by"] == "--drop-optimizer"
    assert row["drop_reason"] == {"rule": "drop_optimizer", "pattern": None}
    kept = next(t for t in data["tensors"] if t["name"] == "dense1/kernel")
    assert kept == {"name": "dense1/kernel", "new_name": "dense1/kernel", "dtype": "float32", "new_dtype": "float32",
                    "stored_dtype": "F32", "shape": [4, 8], "nbytes": 128, "new_nbytes": 128, "role": "model",
                    "drop_reason": None, "dropped_by": None, "file": str(out)}
    text = cli("convert", str(SAMPLES / "mlp"), "-o", str(out), "--plan")
    assert text.code == 0 and "plan only: nothing written" in text.stdout and "dense1/kernel/Adam" in text.stdout


def test_json_after_writing(tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "x.safetensors"
    data = cli("convert", str(SAMPLES / "mlp"), "-o", str(out), "--json").json()
    assert data["written"] == {"files": [str(out)], "bytes": out.stat().st_size}


def test_planning_matches_writing(tmp_path: Path) -> None:
    options = ConvertOptions(drop_optimizer=True, shard_size=2048)
    planned = plan_conversion(str(SAMPLES / "convert" / "t5"), str(tmp_path / "m.safetensors"), options)
    done = convert(str(SAMPLES / "convert" / "t5"), str(tmp_path / "m.safetensors"), options)
    assert planned.tensors == done.tensors and planned.files == done.files and planned.metadata == done.metadata


def test_kernel_copies_carry_the_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole little-endian tensors never pass through Python: the copy lanes move them."""
    from metainspect.formats import bundle_writer

    copied = []
    original = bundle_writer._copy_range

    def counting(source: int, target: int, offset: int, at: int, count: int) -> int:
        moved = original(source, target, offset, at, count)
        copied.append(moved)
        return moved

    monkeypatch.setattr(bundle_writer, "_copy_range", counting)
    plan = convert(str(SAMPLES / "convert" / "bert"), str(tmp_path / "b.safetensors"))
    assert sum(copied) == plan.output_bytes


def test_crc_checked_on_copies(tmp_path: Path, cli: Any) -> None:
    import shutil

    shutil.copytree(SAMPLES / "mlp", tmp_path / "mlp")
    data = tmp_path / "mlp" / "model.ckpt-3.data-00000-of-00001"
    with open_checkpoint(tmp_path / "mlp") as ckpt:
        offset = ckpt.info("dense2/kernel").locations[0].offset
    raw = bytearray(data.read_bytes())
    raw[offset + 5] ^= 0x40
    data.write_bytes(bytes(raw))
    out = tmp_path / "out.safetensors"
    result = cli("convert", str(tmp_path / "mlp"), "-o", str(out))
    assert result.code == 2 and not out.exists() and not list(tmp_path.glob(".out*"))
    assert result.stderr.count("\n") == 1 and "dense2/kernel" in result.stderr and "checksum" in result.stderr
    assert str(data) in result.stderr
    assert cli("convert", str(tmp_path / "mlp"), "-o", str(out), "--no-verify").code == 0
