"""The security corpus and TF's verdicts (sample_meta/security, real_models_2_tf, tf_kernel_registry)
are what they claim: every case exists, every capability x place is covered, the payload sits where
the golden says (read with protobuf only), and the TF-derived data files are complete.

These tests pin the data the security scan and ``check``'s hardening are tested against; they do not
run the scan. The golden facts themselves come from TensorFlow (sample_meta/gen_security.py,
gen_real_models.py, tools/dump_kernel_registry.py) and are re-verified in tests/tf.
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from metainspect.graph.ops import stock_registry
from metainspect.proto import saved_model_pb2

from helpers.paths import ROOT, SAMPLES

GOLDEN = json.loads((SAMPLES / "security" / "golden.json").read_text())
CASES = {c["name"]: c for c in GOLDEN["cases"]}
# the generator's own rule: beside the repo, or $METAINSPECT_SHARED
REAL_MODELS_2 = Path(os.environ.get("METAINSPECT_SHARED", ROOT.parent / "shared")) / "real_models_2"
REAL_GOLDEN = json.loads((SAMPLES / "real_models_2_tf" / "golden.json").read_text())
KERNELS = json.loads(resources.files("metainspect").joinpath("data/tf_kernel_registry.json").read_text())
OPS = stock_registry().ops


def meta_graph(case: dict[str, Any]) -> Any:
    sm = saved_model_pb2.SavedModel.FromString((SAMPLES / case["path"] / "saved_model.pb").read_bytes())
    assert len(sm.meta_graphs) == 1
    return sm.meta_graphs[0]


def string_values(node: Any) -> list[bytes]:
    return list(node.attr["value"].tensor.string_val)


def inner_graph(mg: Any, nested: dict[str, Any]) -> Any:
    """The GraphDef hidden in the Const, decoded as the golden says it is stored."""
    (node,) = [n for n in mg.graph_def.node if n.name == nested["node"]]
    values = string_values(node)
    raw = values[nested["element"]] if nested["element"] is not None else values[0]
    if nested["encoding"] == "base64":
        raw = base64.b64decode(raw)
    graph_def = type(mg.graph_def)()
    graph_def.ParseFromString(raw)
    return graph_def


def test_corpus_is_tf_2_21_and_small() -> None:
    assert GOLDEN["tf_version"] == "2.21.0"
    size = sum(p.stat().st_size for p in (SAMPLES / "security").rglob("*") if p.is_file())
    assert size < 4 * 2**20, size


def test_every_capability_in_every_place() -> None:
    covered = Counter((c["capability"], c["place"]) for c in GOLDEN["cases"])
    expected = {(cap, place) for cap in GOLDEN["capabilities"] for place in GOLDEN["places"]}
    assert expected <= set(covered), sorted(expected - set(covered))
    assert set(covered) <= expected
    assert set(GOLDEN["capabilities"]) == {"file_write", "file_read", "network", "python", "native"}
    assert {p["when"] for p in GOLDEN["places"].values()} == {"serving", "load_time", "off_path"}


def test_every_variant_is_used() -> None:
    used = {c["variant"] for c in GOLDEN["cases"]}
    assert used == set(GOLDEN["variants"])
    for case in GOLDEN["cases"]:
        variant = GOLDEN["variants"][case["variant"]]
        assert variant["capability"] == case["capability"] and variant["ops"] == case["ops"]
        assert case["when"] == GOLDEN["places"][case["place"]]["when"]


def test_payloads_fired_in_tensorflow_except_network() -> None:
    for case in GOLDEN["cases"]:
        assert case["fired"] is (case["capability"] != "network"), case["name"]
        assert case["proof"]
        if case["capability"] == "native":  # what import_meta_graph says in a process without the library
            said = case["without_library"]
            assert said == "imported" or said.startswith("NotFoundError: Op type not registered 'MetainspectNativeProbe'")
    # TF refuses the graph up front only sometimes: a scan cannot count on TF to flag native code
    assert CASES["nat_graph"]["without_library"] != "imported" and CASES["nat_cond_branch"]["without_library"] == "imported"


@pytest.mark.parametrize("name", sorted(CASES))
def test_payload_sits_where_the_golden_says(name: str) -> None:
    case = CASES[name]
    assert case["format"] in ("tf1_saved_model", "tf2_saved_model")
    mg = meta_graph(case)
    for found in case["payload"]:
        assert found["op"] in case["ops"]
        graph_def = inner_graph(mg, found["nested_in"]) if found["nested_in"] else mg.graph_def
        if found["function"] is None:
            nodes = graph_def.node
        else:
            (fn,) = [f for f in graph_def.library.function if f.signature.name == found["function"]]
            nodes = fn.node_def
        assert any(n.name == found["node"] and n.op == found["op"] for n in nodes), found
        # ops of the stock registry, except the custom op the native cases need a library for
        assert (found["op"] in OPS) is (case["capability"] != "native")


def test_nested_encodings_are_what_they_say() -> None:
    for case in GOLDEN["cases"]:
        if not case["place"].startswith("nested_"):
            continue
        mg = meta_graph(case)
        (node,) = [n for n in mg.graph_def.node if n.name == "model_blob"]
        values = string_values(node)
        encoding = case["place"].removeprefix("nested_")
        assert len(values) == (64 if encoding == "long_string" else 1)
        if encoding == "library_first":
            assert values[0][:1] == b"\x12"  # GraphDef.library (field 2) before node (field 1)
        if encoding == "base64":
            base64.b64decode(values[0], validate=True)


def test_load_hooks_are_in_the_saved_protos() -> None:
    for case in GOLDEN["cases"]:
        mg = meta_graph(case)
        place = case["place"]
        if place == "tf1_main_op":
            assert "saved_model_main_op" in mg.collection_def
        elif place == "tf1_legacy_init_op":
            assert "legacy_init_op" in mg.collection_def and "saved_model_main_op" not in mg.collection_def
        elif place == "off_path":
            assert "saved_model_train_op" in mg.collection_def
        elif place == "tf1_restore_hook":
            (restore,) = [n for n in mg.graph_def.node if n.name == mg.saver_def.restore_op_name]
            assert any(i.startswith("^") and not i.startswith("^save/") for i in restore.input)
        elif place == "tf2_init_op":
            assert "__saved_model_init_op" in mg.signature_def
        elif place == "saved_method":
            assert set(mg.signature_def) - {"__saved_model_init_op"} == {"serving_default"}


def test_decoy_save_is_not_the_savers_own() -> None:
    decoy = CASES["fw_graph_decoy_save_1"]
    assert [p["node"] for p in decoy["payload"]] == ["save_1/SaveV2"]
    assert meta_graph(decoy).saver_def.save_tensor_name.startswith("save/")
    (benign,) = [b for b in GOLDEN["benign"] if b["name"] == "benign_tf1_saver_save_1"]
    assert meta_graph(benign).saver_def.save_tensor_name.startswith("save_1/")


def test_benign_controls_exist() -> None:
    names = {b["name"] for b in GOLDEN["benign"]}
    assert {"benign_tf1_asset_table", "benign_tf2_asset_table", "benign_tf1_print_stderr",
            "benign_tf1_in_memory_dataset", "benign_tf1_saver_save_1"} <= names
    for entry in GOLDEN["benign"]:
        assert entry["expected_findings"] == 0 and entry["fired"] is False
        path = SAMPLES / entry["path"]
        assert (path / "saved_model.pb").is_file() or (path / "model.meta").is_file()
    assert (SAMPLES / "security" / "benign_tf2_asset_table" / "assets" / "vocab.txt").is_file()


def test_kernel_registry() -> None:
    assert KERNELS["tf_version"] == "2.21.0"
    no_cpu = KERNELS["no_cpu_kernel"]
    assert no_cpu["BoostedTreesBucketize"] == []  # registered op, no kernel on any device
    assert "MatMul" not in no_cpu and "NoOp" not in no_cpu  # CPU / DEFAULT kernels
    assert set(no_cpu) <= OPS and list(no_cpu) == sorted(no_cpu)
    assert KERNELS["rewritten_in_graphs"] == ["AccumulateNV2"]
    size = len(resources.files("metainspect").joinpath("data/tf_kernel_registry.json").read_bytes())
    assert size < 100_000


def stored_as(sources: Path) -> set[str]:
    """The "stored as" column of SOURCES.md."""
    rows = [ln.split("|") for ln in sources.read_text().splitlines() if ln.startswith("| ") and "`" in ln]
    return {row[4].strip().strip("`") for row in rows}


def test_real_models_2_verdicts_cover_every_file() -> None:
    assert REAL_GOLDEN["tf_version"] == "2.21.0"
    files = REAL_GOLDEN["files"]
    if not REAL_MODELS_2.is_dir():
        pytest.skip("../shared/real_models_2 not present (third-party models live beside the repo)")
    assert stored_as(REAL_MODELS_2 / "SOURCES.md") <= set(files)
    on_disk = {str(p.relative_to(REAL_MODELS_2)) for p in REAL_MODELS_2.rglob("*") if p.is_file()}
    assert set(files) == on_disk


def verdict(path: str, api: str) -> dict[str, Any]:
    (found,) = [a for a in REAL_GOLDEN["files"][path]["attempts"] if a["api"] == api]
    return found


def test_real_models_2_key_verdicts() -> None:
    """The facts issue #12 turns on, as TF 2.21 stated them."""
    bucketize = verdict("tensorflow_tfx/trained_saved_model_2020_02/saved_model.pb", "tf.compat.v1.saved_model.load")
    assert not bucketize["ok"] and "No OpKernel was registered to support Op 'BoostedTreesBucketize'" in bucketize["cause"]
    missing = verdict("supby_faced_test/opencv_face_detector.pbtxt", "GraphDef parse + import_graph_def")
    assert missing["error"] == "ValueError: Node 'data_bn/FusedBatchNorm': Unknown input node 'data_bn/gamma'"
    damaged = verdict("gdscjec_AGE-Gender-Recognition/opencv_face_detector_uint8.pb", "GraphDef parse + import_graph_def")
    assert damaged["error"].startswith("DecodeError:")
    lfs = verdict("zack-carideo_tfhub_embeddings/variables/variables.index", "tf.train.load_checkpoint + get_tensor (all)")
    assert lfs["error"] == "OpError: not an sstable (bad magic number)"
    no_vars = REAL_GOLDEN["files"]["onnx_tensorflow-onnx/saved_model_with_redundant_inputs/saved_model.pb"]
    assert all(a["ok"] for a in no_vars["attempts"])  # a SavedModel without variables/ loads
    legacy = verdict("tensorflow_rust/multiplication/multiplication.pb", "GraphDef parse + import_graph_def")
    assert legacy["producer"] == 9 and {p["tf_shape"] for p in legacy["empty_shape_placeholders"]} == {None}
