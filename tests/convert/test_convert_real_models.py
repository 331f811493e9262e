"""Third-party checkpoints (../shared/real_models*): which convert, which are refused and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors

from metainspect.checkpoint import open_checkpoint
from metainspect.convert import convert

#: (directory under ../shared, checkpoint path in it): every one converts, partitions and V1 included
CONVERTS = [
    ("real_models", "18375625301_CNN-for-Mnist"),
    ("real_models", "255BITS_vocal-autoencoder"),
    ("real_models", "AdhamGhoname_SDFApproximation"),
    ("real_models", "Adiprogrammer7_intent_based_chatbot"),
    ("real_models", "Azizimj_POS-RNN"),
    ("real_models", "Gknoblau_nxt-tensorflow"),
    ("real_models", "tensorflow_serving/bad_half_plus_two/00000123"),
    ("real_models", "tensorflow_serving/session_bundle/half_plus_two/00000123/export-00000-of-00001"),
    ("real_models", "tensorflow_serving/saved_model_half_plus_two_tf2_cpu/00000123"),
    ("real_models_2", "ascherbakov686_guesslang/model_2017"),
    ("real_models_2", "dsindex_syntaxnet/brain_parser_greedy"),
    ("real_models_2", "lcferrara4_IPOpredictor/data_model"),
    ("real_models_2", "tensorflow_rust/keras_multiple_inputs_saved_model"),
    ("real_models_2", "tensorflow_tfx/estimator_model_dir"),
    ("real_models_2", "tensorflow_tfx/trained_saved_model_2020_02"),
    ("real_models_2", "yk_models/lfads_trained_itb"),
]
#: refused, and the words of the one-line reason
REFUSED = [
    ("real_models_2", "yk_models/dragnn_en_segmenter/checkpoint.index", ["data shard 0 of 1 is missing"]),
    ("real_models_2", "zack-carideo_tfhub_embeddings/variables/variables.index", ["is a Git LFS pointer (oid sha256:0737", "1903 bytes", "git lfs pull"]),
    ("real_models_2", "tensorflow_tfx/tft_tf2_saved_model", ["no tensor to convert", "_CHECKPOINTABLE_OBJECT_GRAPH"]),
]


def _path(real_models: Path, folder: str, rel: str) -> Path:
    path = real_models.parent / folder / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.parametrize(("folder", "rel"), CONVERTS)
def test_converts(real_models: Path, folder: str, rel: str, tmp_path: Path) -> None:
    source = _path(real_models, folder, rel)
    out = tmp_path / "m.safetensors"
    plan = convert(str(source), str(out))
    tensors = dict(safetensors.deserialize(out.read_bytes()))
    with open_checkpoint(source) as ckpt:
        for name, tensor in tensors.items():
            assert bytes(tensor["data"]) == np.ascontiguousarray(ckpt.get(name)).tobytes(), name
    assert len(tensors) == len(plan.kept) > 0


@pytest.mark.parametrize(("folder", "rel", "words"), REFUSED)
def test_refused(real_models: Path, folder: str, rel: str, words: list[str], tmp_path: Path, cli: Any) -> None:
    source = _path(real_models, folder, rel)
    result = cli("convert", str(source), "-o", str(tmp_path / "m.safetensors"))
    assert result.code == 2 and result.stderr.count("\n") == 1 and not list(tmp_path.iterdir())
    assert all(word in result.stderr for word in words), result.stderr
