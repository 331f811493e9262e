"""TensorFlow 2.21 re-checks the security corpus, the kernel registry and the real_models_2 verdicts
(`pytest -m tf`): the corpus models import and hold the recorded op types where the golden says, a
few payloads fire again (a file appears, a load fails once its input is gone), the benign controls
touch nothing, the kernel data equals a fresh dump, and TF still says what real_models_2_tf records.
Network payloads are never run.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.paths import ROOT, SAMPLES

pytestmark = pytest.mark.tf
GOLDEN = json.loads((SAMPLES / "security" / "golden.json").read_text())
CASES = {c["name"]: c for c in GOLDEN["cases"]}
BENIGN = {b["name"]: b for b in GOLDEN["benign"]}
PROOF = Path(GOLDEN["proof_root"])
X = np.array([[1.0, 2.0]], np.float32)
# the generator's own rule: beside the repo, or $METAINSPECT_SHARED
REAL_MODELS_2 = Path(os.environ.get("METAINSPECT_SHARED", ROOT.parent / "shared")) / "real_models_2"


@pytest.fixture
def proof() -> Iterator[Path]:
    """An empty proof root (the absolute folder the corpus' payloads write to and read from)."""
    shutil.rmtree(PROOF, ignore_errors=True)
    PROOF.mkdir(parents=True)
    yield PROOF
    shutil.rmtree(PROOF, ignore_errors=True)


def meta_graph(path: str) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2

    return saved_model_pb2.SavedModel.FromString((SAMPLES / path / "saved_model.pb").read_bytes()).meta_graphs[0]


def tf1_serve(path: str, fetch: str = "y") -> Any:
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as sess:
        meta = v1.saved_model.load(sess, ["serve"], str(SAMPLES / path))
        sig = meta.signature_def["serving_default"]
        return sess.run(sig.outputs[fetch].name, {sig.inputs["x"].name: X})


def op_types(graph_def: Any) -> set[tuple[str | None, str, str]]:
    """(function or None, node, op) of every node, top level and in the library."""
    found = {(None, n.name, n.op) for n in graph_def.node}
    for fn in graph_def.library.function:
        found |= {(fn.signature.name, n.name, n.op) for n in fn.node_def}
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_imports_and_holds_its_payload(name: str) -> None:
    import tensorflow as tf

    case = CASES[name]
    mg = meta_graph(case["path"])
    try:
        with tf.Graph().as_default():
            tf.compat.v1.train.import_meta_graph(mg)
        said = "imported"
    except tf.errors.NotFoundError as exc:
        said = f"NotFoundError: {str(exc).splitlines()[0]}"
    if case["capability"] == "native":  # this process never loaded the probe library
        assert said.split(" in binary")[0] == case["without_library"].split(" in binary")[0]
    else:
        assert said == "imported"
    for found in case["payload"]:
        graph_def = mg.graph_def
        if found["nested_in"]:
            (node,) = [n for n in mg.graph_def.node if n.name == found["nested_in"]["node"]]
            value = tf.make_ndarray(node.attr["value"].tensor)
            raw = value[found["nested_in"]["element"]] if value.ndim else value.item()
            if found["nested_in"]["encoding"] == "base64":
                raw = base64.b64decode(raw)
            graph_def = tf.compat.v1.GraphDef.FromString(raw)
        assert (found["function"], found["node"], found["op"]) in op_types(graph_def)


def test_file_write_fires_when_served(proof: Path) -> None:
    tf1_serve(CASES["fw_graph"]["path"])
    assert (proof / "fw_graph" / "out.txt").read_bytes() == b"payload"


def test_file_read_in_the_main_op_fires_on_load(proof: Path) -> None:
    import tensorflow as tf

    case = CASES["fr_tf1_main_op"]
    with pytest.raises(tf.errors.NotFoundError, match=str(proof / "fr_tf1_main_op" / "vocab.txt")):
        tf1_serve(case["path"])
    (proof / "fr_tf1_main_op").mkdir()
    (proof / "fr_tf1_main_op" / "vocab.txt").write_text("a\nb\n")
    tf1_serve(case["path"])


def test_tf2_initializer_writes_on_load(proof: Path) -> None:
    import tensorflow as tf

    tf.saved_model.load(str(SAMPLES / CASES["fw_tf2_init_op"]["path"]))
    assert any((proof / "fw_tf2_init_op" / "saved").rglob("*"))


def test_nested_base64_graph_fires_when_decoded_and_run(proof: Path) -> None:
    import tensorflow as tf

    blob = tf1_serve(CASES["fw_nested_base64"]["path"], fetch="blob")
    graph_def = tf.compat.v1.GraphDef.FromString(base64.b64decode(blob))
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as sess:
        tf.graph_util.import_graph_def(graph_def, name="")
        sess.run("result:0")
    assert (proof / "fw_nested_base64" / "out.txt").is_file()


def test_off_path_payload_does_not_run_when_served(proof: Path) -> None:
    tf1_serve(CASES["fw_off_path"]["path"])
    assert not any(proof.rglob("*"))


@pytest.mark.parametrize("name", ["benign_tf1_print_stderr", "benign_tf1_asset_table", "benign_tf2_asset_table",
                                  "benign_tf1_in_memory_dataset", "benign_tf1_saver_save_1"])
def test_benign_controls_touch_nothing(name: str, proof: Path) -> None:
    import tensorflow as tf

    path = BENIGN[name]["path"]
    if BENIGN[name]["format"] == "tf2_saved_model":
        loaded = tf.saved_model.load(str(SAMPLES / path))
        loaded.serve(X)
        if name == "benign_tf2_asset_table":
            assert loaded.lookup(tf.constant(["b", "z"])).numpy().tolist() == [1, -1]
    else:
        tf1_serve(path)
    assert not any(proof.rglob("*"))


def load_module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kernel_registry_equals_a_fresh_dump(tmp_path: Path) -> None:
    """In a fresh process: XLA registers more kernels (XLA_CPU_JIT) once a process has used it."""
    out = tmp_path / "kernels.json"
    subprocess.run([sys.executable, str(ROOT / "tools" / "dump_kernel_registry.py"), "--out", str(out)],
                   check=True, capture_output=True)
    fresh = json.loads(out.read_text())
    shipped = json.loads((ROOT / "metainspect" / "data" / "tf_kernel_registry.json").read_text())
    # a 2.21 patch release may differ in tf_version only
    assert fresh.pop("tf_version").rsplit(".", 1)[0] == shipped.pop("tf_version").rsplit(".", 1)[0] == "2.21"
    assert fresh == shipped


@pytest.mark.parametrize("rel", [
    "tensorflow_rust/multiplication/multiplication.pb",
    "supby_faced_test/opencv_face_detector.pbtxt",
    "zack-carideo_tfhub_embeddings/variables/variables.index",
    "tensorflow_tfx/trained_saved_model_2020_02/saved_model.pb",
    "dsindex_syntaxnet/brain_parser_greedy/graph",
])
def test_real_models_2_verdicts_still_hold(rel: str) -> None:
    if not REAL_MODELS_2.is_dir():
        pytest.skip("../shared/real_models_2 not present (third-party models live beside the repo)")
    sys.path.insert(0, str(SAMPLES))
    try:
        survey = load_module(SAMPLES / "gen_real_models.py", "gen_real_models")
    finally:
        sys.path.remove(str(SAMPLES))
    golden = json.loads((SAMPLES / "real_models_2_tf" / "golden.json").read_text())
    assert survey.survey_file(REAL_MODELS_2 / rel) == golden["files"][rel]
