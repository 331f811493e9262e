"""Checkpoints nobody on this project wrote (../shared/real_models, see its SOURCES.md)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from metainspect.checkpoint import open_checkpoint
from metainspect.checkpoint.roles import classify

from helpers.paths import REAL_MODELS

REAL = REAL_MODELS

# directory -> (format, prefix basename, tensors, {role: count}, note expected)
CASES = {
    "18375625301_CNN-for-Mnist": ("v2", "tmp", 6, {"model": 6}, True),
    "255BITS_vocal-autoencoder": ("v1", "model.ckpt", 39, {"model": 9, "optimizer": 30}, False),
    "AdhamGhoname_SDFApproximation": ("v2", "monkj64x8.wgts", 60, {"model": 18, "optimizer": 41, "bookkeeping": 1}, False),
    "Adiprogrammer7_intent_based_chatbot": ("v2", "chatbot_model.tflearn", 27, {"model": 10, "optimizer": 14, "bookkeeping": 3}, True),
    "Azizimj_POS-RNN": ("v2", "model.ckpt", 34, {"model": 6, "optimizer": 28}, False),
    "Gknoblau_nxt-tensorflow": ("v1", "model.ckpt", 14, {"model": 4, "optimizer": 10}, False),
    "Gknoblau_nxt-tensorflow/past_attempts": ("v1", "safe_model.ckpt", 14, {"model": 4, "optimizer": 10}, False),
    "tensorflow_serving/bad_half_plus_two/00000123": ("v1", "export", 2, {"model": 2}, True),
    "tensorflow_serving/session_bundle/half_plus_two/00000123": ("v1", "export-?????-of-00001", 2, {"model": 2}, False),
    "tensorflow_serving/saved_model_counter/00000123": ("v2", "variables", 1, {"model": 1}, False),
    "tensorflow_serving/saved_model_half_plus_three/00000123": ("v2", "variables", 3, {"model": 3}, False),
    "tensorflow_serving/saved_model_half_plus_two_cpu/00000123": ("v2", "variables", 5, {"model": 5}, False),
    "tensorflow_serving/saved_model_half_plus_two_gpu/00000123": ("v2", "variables", 3, {"model": 3}, False),
    "tensorflow_serving/saved_model_half_plus_two_mkl/00000123": ("v2", "variables", 9, {"model": 9}, False),
    "tensorflow_serving/saved_model_half_plus_two_tf2_cpu/00000123": ("v2", "variables", 4, {"model": 3, "bookkeeping": 1}, False),
}


@pytest.fixture(scope="module")
def real() -> Path:
    if not REAL.is_dir():
        pytest.skip("../shared/real_models not present")
    return REAL


@pytest.mark.parametrize("directory", sorted(CASES))
def test_real_checkpoint_lists_reads_and_verifies(real: Path, directory: str) -> None:
    fmt, base, count, roles, noted = CASES[directory]
    with open_checkpoint(real / directory) as ckpt:
        assert (ckpt.format, Path(ckpt.prefix).name, len(ckpt)) == (fmt, base, count)
        assert bool(ckpt.notes) == noted
        graph = ckpt.object_graph()
        assert Counter(classify(key, graph) for key in ckpt) == roles
        for info in ckpt.infos():
            value = ckpt.get(info.name)
            assert value.shape == info.shape and not value.flags.writeable
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), info.name
        assert ckpt.verify() == []


def test_windows_paths_in_state_files(real: Path) -> None:
    with open_checkpoint(real / "Adiprogrammer7_intent_based_chatbot") as ckpt:
        assert "F:\\ChatBot\\chatbot_model.tflearn" in ckpt.notes[0]
        assert float(ckpt.get("Global_Step")) == 5600.0 and ckpt.get("is_training").dtype == np.bool_
    with open_checkpoint(real / "18375625301_CNN-for-Mnist") as ckpt:
        assert "G:/CNN/tmp" in ckpt.notes[0] and ckpt.shape("fullconnection/Variable") == (3136, 10)


def test_v1_values_and_locations(real: Path) -> None:
    with open_checkpoint(real / "tensorflow_serving/bad_half_plus_two/00000123/export") as ckpt:
        assert float(ckpt.get("Variable")) == 0.5 and float(ckpt.get("Variable_1")) == 2.0
    with open_checkpoint(real / "255BITS_vocal-autoencoder/model.ckpt") as ckpt:
        info = ckpt.info("Variable_3/Adam_2")
        assert info.shape == (256, 64) and not info.partitioned
        assert info.locations[0].offset > 0 and info.nbytes == 256 * 64 * 4 < info.stored_nbytes
    shard = real / "tensorflow_serving/session_bundle/half_plus_two/00000123/export-00000-of-00001"
    with open_checkpoint(shard) as ckpt:
        assert ckpt.keys() == ["a", "b"] and float(ckpt.get("a")) == 0.5 and float(ckpt.get("b")) == 2.0


def test_keras2_object_graph(real: Path) -> None:
    with open_checkpoint(real / "AdhamGhoname_SDFApproximation") as ckpt:
        graph = ckpt.object_graph()
        assert graph is not None
        key = "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
        assert graph.path_for_key(key) == "layer_with_weights-0/kernel"
        slots = {(s.original_path, s.slot_name) for n in graph.nodes for s in n.slot_variables}
        assert ("layer_with_weights-8/bias", "v") in slots and len(slots) == 36
        assert int(ckpt.get("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE")) == 147600


def test_saved_model_without_variables(real: Path) -> None:
    with open_checkpoint(real / "tensorflow_serving/matrix_half_plus_two/1") as ckpt:
        assert len(ckpt) == 0 and "the SavedModel has no variables" in ckpt.notes[0]
