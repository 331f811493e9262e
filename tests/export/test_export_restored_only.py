"""The pure engine copies only what the exported graph's saver restores; repeated warnings fold."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from metainspect import open_checkpoint
from metainspect.export import ExportOptions, _folded, export_saved_model
from metainspect.formats.bundle_writer import BundleWriter

from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp"


def test_tensors_the_saver_never_restores_are_left_out(tmp_path: Path) -> None:
    """A checkpoint holding one tensor more than the graph's saver restores: the SavedModel has
    exactly the restored ones, with their values."""
    model = tmp_path / "model.ckpt-3"
    with open_checkpoint(MLP / "model.ckpt-3") as source, BundleWriter(str(model)) as writer:
        names = source.keys()
        for name in names:
            writer.add(name, np.asarray(source.get(name)))
        writer.add("unrelated/extra", np.zeros(1000, dtype=np.float32))
    shutil.copy(MLP / "model.ckpt-3.meta", tmp_path / "model.ckpt-3.meta")
    out = tmp_path / "sm"
    export_saved_model(str(tmp_path / "model.ckpt-3.meta"), str(out), ExportOptions(
        inputs={"x": "x:0"}, outputs={"probs": "probs:0"}), engine="pure")
    with open_checkpoint(out) as exported, open_checkpoint(MLP / "model.ckpt-3") as original:
        assert exported.keys() == names
        for name in names:
            assert np.array_equal(exported.get(name), original.get(name))


def test_warnings_of_one_kind_fold_into_one_line_with_a_count() -> None:
    findings = [SimpleNamespace(id="W-SHAPE", message=f"tensor t{i} is odd") for i in range(30)]
    findings.append(SimpleNamespace(id="W-OTHER", message="something else"))
    assert _folded(findings) == ["W-SHAPE: tensor t0 is odd (and 29 more like it)", "W-OTHER: something else"]
    assert _folded(findings[:3]) == [f"W-SHAPE: tensor t{i} is odd" for i in range(3)]
