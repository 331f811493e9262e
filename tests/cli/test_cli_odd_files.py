"""Odd real files named for what they are (../shared/real_models_2, see its SOURCES.md).

Git LFS pointers committed in place of a TF-Hub SavedModel, an OpenCV .pb damaged by a text
re-encoding, a tf2onnx SavedModel with no variables/ directory, a 2016 GraphDef of producer 9.
What TensorFlow 2.21 itself said of each file is in sample_meta/real_models_2_tf/golden.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metainspect import CorruptError, load_model, open_checkpoint
from metainspect.errors import LfsPointerError

from helpers.cli import Cli
from helpers.paths import REAL_MODELS_2, SAMPLES

#: what TensorFlow 2.21 did with each file (sample_meta/gen_real_models.py)
TF = json.loads((SAMPLES / "real_models_2_tf" / "golden.json").read_text())["files"]

LFS = "zack-carideo_tfhub_embeddings"
GRAPH_OID = "sha256:cc69f9580add8e784a7af0d87b8504c8a9299945132f51e885fb03977de967dc"
INDEX_OID = "sha256:073771469b9271f262b35c2f55acc0afbbb7cd393b2494f4f9df9a51cee2fc59"
DAMAGED = "gdscjec_AGE-Gender-Recognition/opencv_face_detector_uint8.pb"
NO_VARIABLES = "onnx_tensorflow-onnx/saved_model_with_redundant_inputs"


@pytest.fixture
def real2() -> Path:
    if not REAL_MODELS_2.is_dir():
        pytest.skip("../shared/real_models_2 not present (third-party models live beside the repo, not in it)")
    return REAL_MODELS_2


def _lfs_line(path: Path, oid: str, size: int) -> str:
    return f"metainspect: {path}: is a Git LFS pointer (oid {oid}, {size} bytes): fetch it with `git lfs pull`\n"


def _tf_attempts(path: str) -> list[dict[str, object]]:
    return TF[path]["attempts"]  # type: ignore[no-any-return]


def test_lfs_pointers_raise_an_error_carrying_oid_and_size(real2: Path) -> None:
    # TensorFlow only says "Wire format was corrupt" / "bad magic number"
    assert not any(a["ok"] for a in _tf_attempts(f"{LFS}/saved_model.pb") + _tf_attempts(f"{LFS}/variables/variables.index"))
    with pytest.raises(LfsPointerError) as graph:
        load_model(real2 / LFS)
    assert (graph.value.path, graph.value.oid, graph.value.size) == (str(real2 / LFS / "saved_model.pb"), GRAPH_OID, 4594782)
    assert "lfs pull" not in str(graph.value)  # the library names no command; the CLI does
    with pytest.raises(LfsPointerError) as index:
        open_checkpoint(real2 / LFS)
    assert (index.value.path, index.value.oid, index.value.size) == (
        str(real2 / LFS / "variables" / "variables.index"), INDEX_OID, 1903)


@pytest.mark.parametrize(("command", "argument", "named", "oid", "size"), [
    ("info", "", "saved_model.pb", GRAPH_OID, 4594782),
    ("check", "", "saved_model.pb", GRAPH_OID, 4594782),
    ("vars", "", "variables/variables.index", INDEX_OID, 1903),
    ("vars", "saved_model.pb", "saved_model.pb", GRAPH_OID, 4594782),
    ("info", "variables/variables.index", "variables/variables.index", INDEX_OID, 1903),
    ("vars", "variables/variables.data-00000-of-00001", "variables/variables.index", INDEX_OID, 1903),
])
def test_every_command_names_the_lfs_pointer(real2: Path, cli: Cli, command: str, argument: str, named: str,
                                             oid: str, size: int) -> None:
    result = cli(command, str(real2 / LFS / argument) if argument else str(real2 / LFS))
    assert result.code == 2
    assert result.stderr == _lfs_line(real2 / LFS / named, oid, size)


def test_a_damaged_pb_is_corrupt_never_a_graph(real2: Path, cli: Cli) -> None:
    assert [a["error"] for a in _tf_attempts(DAMAGED)] == [
        "DecodeError: Error parsing message with type 'tensorflow.GraphDef': Wire format was corrupt"]
    with pytest.raises(CorruptError, match=r"truncated or corrupt protobuf \(GraphDef does not decode\)"):
        load_model(real2 / DAMAGED)
    with pytest.raises(CorruptError, match="truncated or corrupt protobuf"):
        open_checkpoint(real2 / DAMAGED)
    for command in ("info", "vars", "check"):
        result = cli(command, str(real2 / DAMAGED))
        assert result.code == 2
        assert result.stderr == f"metainspect: {real2 / DAMAGED}: truncated or corrupt protobuf (GraphDef does not decode)\n"


def test_a_savedmodel_without_variables_lists_zero_tensors(real2: Path, cli: Cli) -> None:
    assert all(a["ok"] for a in _tf_attempts(f"{NO_VARIABLES}/saved_model.pb"))  # TensorFlow loads it
    with open_checkpoint(real2 / NO_VARIABLES) as ckpt:
        assert (len(ckpt), ckpt.infos(), ckpt.verify()) == (0, [], [])
    listed = cli("vars", str(real2 / NO_VARIABLES), "--json")
    assert (listed.code, listed.json()) == (0, [])
    assert "has no variables" in listed.stderr
    checked = cli("check", str(real2 / NO_VARIABLES), "--json")
    assert checked.code == 0 and checked.json()["ready"]


def test_producer_9_placeholders_with_an_empty_shape_have_unknown_shape(real2: Path, cli: Cli) -> None:
    (imported,) = _tf_attempts("tensorflow_rust/multiplication/multiplication.pb")
    model = load_model(real2 / "tensorflow_rust/multiplication/multiplication.pb")
    assert model.graph_producer == imported["producer"] == 9
    assert [(p.name, p.shape) for p in model.placeholders()] == [
        (p["node"], p["tf_shape"]) for p in imported["empty_shape_placeholders"]] == [("a", None), ("b", None)]
    listed = cli("placeholders", str(real2 / "tensorflow_rust/multiplication/multiplication.pb"), "--json")
    assert [p["shape"] for p in listed.json()] == [None, None]
