"""`check` on every graph/checkpoint pair in ../shared/real_models, each verdict pinned with the reason.

What TensorFlow 2.21 does with each pair was measured with ``import_meta_graph`` +
``Saver.restore`` (graphs with a checkpoint) and ``tf.compat.v1.saved_model.loader.load`` /
``tf.saved_model.load`` (SavedModels) on a CPU-only machine; it is quoted per entry. The
restore and saver findings are pinned exactly; from the other checks only the errors are
pinned, since they alone decide the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from metainspect.check import run_checks
from metainspect.formats.detect import find_graph_file

from helpers.cli import Cli
from helpers.paths import REAL_MODELS


@dataclass(frozen=True)
class Expected:
    model: str
    checkpoint: str | None
    ready: bool
    #: restore.* and saver.* finding ids, in report order
    core: tuple[str, ...]
    #: ids of error findings of every check
    errors: frozenset[str] = frozenset()
    why: str = ""


SERVING = "tensorflow_serving"
EXPECTED = [
    Expected("18375625301_CNN-for-Mnist/tmp", None, True, (),
             why="TF restores it (V2 saver, V2 checkpoint, Windows-made state file); six plain variables match"),
    Expected("255BITS_vocal-autoencoder/model.ckpt", None, True, (),
             why="TF restores it: a LEGACY saver's RestoreSlice ops reading the V1 file they were made for; "
                 "the MODEL argument is the V1 file itself, its .meta is found beside it"),
    Expected("Adiprogrammer7_intent_based_chatbot/chatbot_model.tflearn", None, False,
             ("saver.dangling-collection", "saver.several-savers"), frozenset({"saver.dangling-collection"}),
             why="TF cannot even import it: KeyError \"The name 'Adam' refers to an Operation not in the graph\" "
                 "(TFLearn's trainops collection); the checkpoint itself matches the SaverDef's saver"),
    Expected("Azizimj_POS-RNN/model.ckpt", None, True, (),
             why="TF restores it: 34 variables, ref and resource, Adam slots under model/model/"),
    Expected("Gknoblau_nxt-tensorflow/model.ckpt", None, True, (),
             why="TF restores it: V1 saver, V1 checkpoint file"),
    Expected("Gknoblau_nxt-tensorflow/model.ckpt.meta", "Gknoblau_nxt-tensorflow/video_weights.ckpt", True, (),
             why="TF restores the later V1 checkpoint of the same repository into this graph too"),
    Expected("Gknoblau_nxt-tensorflow/model.ckpt.meta", "Gknoblau_nxt-tensorflow/past_attempts/safe_model.ckpt", True,
             (), why="likewise"),
    Expected(f"{SERVING}/bad_half_plus_two/00000123", None, True, (),
             why="TF restores it (LEGACY saver, V1 file 'export' named by the state file): what is 'bad' about "
                 "this TF Serving test model is not in its graph or checkpoint"),
    Expected(f"{SERVING}/session_bundle/half_plus_two/00000123/export.meta", None, True, ("restore.unsaved-variables",),
             why="the saver restores a and b with RestoreV2 from the sharded V1 files; asset_path, global_step and "
                 "the filename variables are initialized, not restored (TF 2.21's Python import_meta_graph chokes on "
                 "the version string '0.12.head', TF Serving's C++ loader does not parse it)"),
    Expected(f"{SERVING}/saved_model_counter/00000123", None, True, (),
             why="TF1 loader restores it; TF2's load refuses ref-variable Assign outputs, a serving concern"),
    Expected(f"{SERVING}/saved_model_half_plus_three/00000123", None, False, ("restore.unsaved-variables",),
             frozenset({"signature.dtype-mismatch"}),
             why="restores fine (TF1 loader); its regress signature declares float32 for the string tf_example"),
    *[Expected(f"{SERVING}/saved_model_half_plus_two_{name}/00000123", None, True, ("restore.unsaved-variables",),
               why="TF1 and TF2 loaders restore it; filename_tensor is initialized from an asset, not restored")
      for name in ("cpu", "cpu_with_saved_model_config", "gpu_trt", "mkl", "mlmd")],
    Expected(f"{SERVING}/saved_model_half_plus_two_gpu/00000123", None, True, (),
             why="restores fine (TF2 load OK); the TF1 loader fails on a CPU-only host only because nodes are pinned "
                 "to /device:GPU:0, which the serving check reports as a warning"),
    Expected(f"{SERVING}/saved_model_half_plus_two_tf2_cpu/00000123", None, True, (),
             why="TF2 SavedModel: keys from its object graph, all present"),
    Expected(f"{SERVING}/matrix_half_plus_two/1", None, True, ("restore.nothing-to-restore",),
             why="no variables and no variables/ directory: constants only, TF loads it"),
]


@pytest.mark.parametrize("expected", EXPECTED, ids=[f"{e.model}:{e.checkpoint or ''}" for e in EXPECTED])
def test_verdict(real_models: Path, expected: Expected) -> None:
    report = run_checks(str(real_models / expected.model),
                        str(real_models / expected.checkpoint) if expected.checkpoint else None)
    assert report.checkpoint_path is not None or expected.core == ("restore.nothing-to-restore",)
    core = tuple(f.id for f in report.findings if f.category in ("restore", "saver"))
    assert core == expected.core, expected.why
    assert {f.id for f in report.findings if f.severity == "error"} == expected.errors, expected.why
    assert report.ready() == expected.ready and report.ready(strict=False) == expected.ready


def test_every_graph_in_real_models_is_covered(real_models: Path) -> None:
    graphs = {p.resolve() for p in [*real_models.rglob("*.meta"), *real_models.rglob("saved_model.pb")]}
    covered = {Path(find_graph_file(str(real_models / e.model))).resolve() for e in EXPECTED}
    assert graphs == covered


def test_a_checkpoint_without_graph_cannot_be_checked(cli: Cli) -> None:
    """Keras 2 save_weights output: weights only, so there is nothing to check it against (exit 2)."""
    if not REAL_MODELS.is_dir():
        pytest.skip("../shared/real_models not present")
    result = cli("check", str(REAL_MODELS / "AdhamGhoname_SDFApproximation" / "monkj64x8.wgts"))
    assert result.code == 2 and "no .meta graph beside it" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_notes_from_opening_the_checkpoint_are_reported(real_models: Path) -> None:
    """The Windows-made state file names G:/CNN/tmp; the checkpoint beside it is used, and the report says so."""
    base = real_models / "18375625301_CNN-for-Mnist"
    report = run_checks(str(base / "tmp.meta"), str(base))
    assert report.ready() and report.checkpoint_path == str(base / "tmp")
    (note,) = report.checkpoint_notes
    assert '"G:/CNN/tmp"' in note and report.to_json()["checkpoint_notes"] == [note]
