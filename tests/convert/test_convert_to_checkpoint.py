"""safetensors (one file or Hugging Face shards) to TensorFlow checkpoints written by the pure bundle
writer: every tensor back byte for byte, usable by ``check`` with the model's graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from metainspect.checkpoint import open_checkpoint
from metainspect.convert import ConvertOptions, convert

from helpers.paths import SAMPLES


def _same(a: Path | str, b: Path | str, names: list[str] | None = None) -> None:
    with open_checkpoint(a) as first, open_checkpoint(b) as second:
        keys = names if names is not None else first.keys()
        assert keys == second.keys()
        for name in keys:
            assert first.dtype(name) == second.dtype(name) and first.shape(name) == second.shape(name)
            assert np.ascontiguousarray(first.get(name)).tobytes() == np.ascontiguousarray(second.get(name)).tobytes()
        assert second.verify() == []


def test_safetensors_written_by_the_package(tmp_path: Path) -> None:
    arrays = {"a/kernel": np.arange(12, dtype=np.float32).reshape(3, 4), "a/bias": np.ones(4, np.float16),
              "step": np.array(7, np.int64), "mask": np.array([True, False]), "empty": np.zeros((0, 3), np.uint8)}
    save_file(arrays, str(tmp_path / "in.safetensors"), metadata={"format": "pt"})
    plan = convert(str(tmp_path / "in.safetensors"), str(tmp_path / "out" / "model.ckpt"))
    assert plan.format == "checkpoint" and plan.metadata is None
    assert plan.files == (str(tmp_path / "out" / "model.ckpt.data-00000-of-00001"), str(tmp_path / "out" / "model.ckpt.index"))
    with open_checkpoint(tmp_path / "out" / "model.ckpt") as ckpt:
        assert sorted(ckpt.keys()) == sorted(arrays)
        for name, value in arrays.items():
            assert ckpt.get(name).dtype == value.dtype and ckpt.get(name).tobytes() == value.tobytes()


@pytest.mark.parametrize("sample", ["convert/bert", "convert/t5", "ckpt_partitioned", "ckpt_tf1_sharded"])
def test_round_trip(sample: str, tmp_path: Path) -> None:
    convert(str(SAMPLES / sample), str(tmp_path / "m.safetensors"))
    convert(str(tmp_path / "m.safetensors"), str(tmp_path / "back"), ConvertOptions(to="checkpoint"))
    _same(SAMPLES / sample, tmp_path / "back")


def test_sharded_safetensors_to_sharded_checkpoint(tmp_path: Path) -> None:
    convert(str(SAMPLES / "convert" / "t5"), str(tmp_path / "st") + "/", ConvertOptions(shard_size=3000))
    index = tmp_path / "st" / "model.safetensors.index.json"
    assert index.exists()
    plan = convert(str(index), str(tmp_path / "ck") + "/", ConvertOptions(to="checkpoint", shard_size=10000))
    data = sorted(p.name for p in (tmp_path / "ck").glob("model.ckpt.data-*"))
    assert len(data) > 1 and [f for f in plan.files if ".data-" in f] == [str(tmp_path / "ck" / d) for d in data]
    assert (tmp_path / "ck" / "checkpoint").read_text() == ('model_checkpoint_path: "model.ckpt"\n'
                                                             'all_model_checkpoint_paths: "model.ckpt"\n')
    _same(SAMPLES / "convert" / "t5", tmp_path / "ck")


def test_weights_only_checkpoint_restores_with_the_graph(tmp_path: Path, cli: Any) -> None:
    """The MLP's checkpoint through safetensors and back: ``check`` finds every key the graph's saver
    restores, with the dtype and shape it expects."""
    convert(str(SAMPLES / "mlp"), str(tmp_path / "mlp.safetensors"))
    convert(str(tmp_path / "mlp.safetensors"), str(tmp_path / "w" / "model.ckpt"))
    result = cli("check", str(SAMPLES / "mlp" / "model.ckpt-3.meta"), "-c", str(tmp_path / "w" / "model.ckpt"), "--json")
    report = result.json()
    assert not [f for f in report["findings"] if f["category"] == "restore"], report["findings"]


def test_renamed_on_the_way(tmp_path: Path) -> None:
    convert(str(SAMPLES / "mlp"), str(tmp_path / "m.safetensors"), ConvertOptions(drop_optimizer=True))
    convert(str(tmp_path / "m.safetensors"), str(tmp_path / "r" / "ck"), ConvertOptions(renames=("re:^dense(\\d)=layer\\1",)))
    with open_checkpoint(tmp_path / "r" / "ck") as ckpt:
        assert ckpt.keys() == ["global_step", "layer1/bias", "layer1/kernel", "layer2/bias", "layer2/kernel"]


def test_checkpoint_to_checkpoint_is_rewrites_job(tmp_path: Path, cli: Any) -> None:
    result = cli("convert", str(SAMPLES / "mlp"), "-o", str(tmp_path / "x"), "--to", "checkpoint")
    assert result.code == 2 and "rewrite" in result.stderr and not list(tmp_path.iterdir())
    result = cli("convert", str(SAMPLES / "mlp"), "-o", str(tmp_path / "x"))
    assert result.code == 2 and "does not tell its format" in result.stderr
