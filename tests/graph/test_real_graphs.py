"""Every graph under ../shared/real_models reads, and every graph command works on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metainspect.cli import app
from metainspect.graph.model import load_model

from helpers.paths import REAL_MODELS

GRAPHS = sorted(REAL_MODELS.rglob("*.meta")) + sorted(REAL_MODELS.rglob("saved_model.pb")) if REAL_MODELS.is_dir() else []

#: what each third-party graph is, as metainspect reads it (TF 2.21 itself refuses some of these)
EXPECTED = {
    "255BITS_vocal-autoencoder/model.ckpt.meta": {"kind": "meta_graph", "nodes": 653, "saver": "LEGACY", "tf": ""},
    "Gknoblau_nxt-tensorflow/model.ckpt.meta": {"kind": "meta_graph", "nodes": 216, "saver": "V1", "tf": ""},
    "tensorflow_serving/session_bundle/half_plus_two/00000123/export.meta":
        {"kind": "meta_graph", "nodes": 57, "saver": "V1", "tf": "0.12.head"},
    "tensorflow_serving/bad_half_plus_two/00000123/export.meta": {"kind": "meta_graph", "nodes": 26, "saver": "LEGACY", "tf": ""},
    "Adiprogrammer7_intent_based_chatbot/chatbot_model.tflearn.meta":
        {"kind": "meta_graph", "nodes": 488, "saver": "V2", "tf": "2.4.1", "collections": 19},
    "Azizimj_POS-RNN/model.ckpt.meta": {"kind": "meta_graph", "nodes": 6906, "saver": "V2", "tf": "1.13.1"},
    "18375625301_CNN-for-Mnist/tmp.meta": {"kind": "meta_graph", "nodes": 228, "saver": "V2", "tf": "1.9.0"},
    "tensorflow_serving/matrix_half_plus_two/1/saved_model.pb": {"kind": "saved_model", "nodes": 6, "saver": None, "tf": "1.2.0-rc2"},
    "tensorflow_serving/saved_model_half_plus_two_tf2_cpu/00000123/saved_model.pb":
        {"kind": "saved_model", "nodes": 29, "saver": "V2", "tf": "2.14.0", "functions": 14},
}


def _id(path: Path) -> str:
    return str(path.relative_to(REAL_MODELS))


@pytest.mark.parametrize("path", GRAPHS, ids=[_id(p) for p in GRAPHS])
def test_reads(real_models: Path, path: Path) -> None:
    model = load_model(path)
    assert model.nodes()
    model.placeholders(), model.variables(), model.collections(), model.signatures(), model.functions()
    facts = EXPECTED.get(_id(path))
    if facts:
        saver = model.saver_def()
        assert model.kind == facts["kind"]
        assert len(model.nodes()) == facts["nodes"]
        assert (saver["version"] if saver else None) == facts["saver"]
        assert model.meta_info()["tensorflow_version"] == facts["tf"]
        assert len(model.collections()) == facts.get("collections", len(model.collections()))
        assert len(model.functions()) == facts.get("functions", len(model.functions()))


@pytest.mark.parametrize("command", ["nodes", "placeholders", "variables", "collections", "signatures", "ops", "info"])
def test_every_graph_command_on_every_graph(real_models: Path, command: str) -> None:
    runner = CliRunner()
    for path in GRAPHS:
        result = runner.invoke(app, [command, str(path), "--json"])
        assert result.exit_code == 0, f"{command} {path}: {result.output} {result.exception!r}"
        json.loads(result.stdout)


def test_tf2_savedmodel_variables_use_object_graph_keys(real_models: Path) -> None:
    model = load_model(real_models / "tensorflow_serving/saved_model_half_plus_two_tf2_cpu/00000123")
    keys = sorted(v.checkpoint_key for v in model.variables())
    assert keys and all(k.endswith("/.ATTRIBUTES/VARIABLE_VALUE") for k in keys)


def test_old_placeholder_shapes_fall_back_to_output_shapes(real_models: Path) -> None:
    model = load_model(real_models / "Azizimj_POS-RNN/model.ckpt.meta")
    shapes = {p.name: p.shape for p in model.placeholders()}
    assert shapes["X"] == [None, 90]
