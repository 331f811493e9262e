"""The serving check: device pins, training-only ops on the served path, unregistered ops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.security import check_security
from metainspect.check.serving import check_serving, device_kind
from metainspect.check.signature import check_signature
from metainspect.cli.options import fix_line
from metainspect.graph.model import Model, load_model
from metainspect.graph.ops import stock_registry

from helpers.paths import SAMPLES

CHECK = SAMPLES / "check"


def serve(model: Model | Path, inputs: dict[str, str] | None = None,
          outputs: dict[str, str] | None = None) -> list[Finding]:
    if not isinstance(model, Model):
        model = load_model(model)
    return check_serving(CheckContext(model, inputs=inputs or {}, outputs=outputs or {}))


def by_id(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.id, []).append(finding)
    return grouped


# -- device pins --------------------------------------------------------------------------------

def test_device_pins_of_the_tf_written_fixture() -> None:
    found = by_id(serve(CHECK / "device_pinned" / "model.meta"))
    cluster, = found["serving.device-pin-cluster"]
    assert cluster.severity == ERROR and cluster.subject == "/job:ps/task:0"
    assert {"w", "w/Assign", "w/read"} <= {n["node"] for n in cluster.details["nodes"]}
    gpu, = found["serving.device-pin-accelerator"]
    assert gpu.severity == WARNING and [n["node"] for n in gpu.details["nodes"]] == ["y"]
    cpu, = found["serving.device-pin-cpu"]
    assert cpu.severity == INFO and [n["node"] for n in cpu.details["nodes"]] == ["probs"]
    assert all(".clear_devices()" in f.fix and "--clear-devices" in fix_line(f) for f in (cluster, gpu, cpu))


def test_the_savers_own_cpu_pins_are_not_reported() -> None:
    # TF pins every saver's RestoreV2 to /device:CPU:0; that is not the user's doing
    model = load_model(SAMPLES / "mlp")
    assert any(n.device == "/device:CPU:0" for n in model.nodes() if n.name.startswith("save/"))
    assert not [f for f in serve(model) if f.id.startswith("serving.device-pin")]


def test_device_pins_inside_function_bodies() -> None:
    model = load_model(SAMPLES / "functions" / "functions.meta")
    model.graph_def.library.function[0].node_def[0].device = "/device:GPU:1"
    gpu, = by_id(serve(model))["serving.device-pin-accelerator"]
    assert gpu.details["nodes"][0]["where"].startswith("function ")


def test_device_kinds() -> None:
    assert device_kind("/job:ps/task:0") == "cluster"
    assert device_kind("/job:worker/replica:0/task:1/device:CPU:0") == "cluster"
    assert device_kind("/job:localhost/replica:0/task:0/device:CPU:0") == "cpu"
    assert device_kind("/device:GPU:0") == "accelerator"
    assert device_kind("/gpu:0") == "accelerator"
    assert device_kind("/device:CPU:*") == "cpu"
    assert device_kind("/device:TPU:3") == "accelerator"


# -- training-only ops on the path --------------------------------------------------------------

def test_clean_inference_path_has_no_training_findings() -> None:
    assert serve(SAMPLES / "mlp") == []
    assert serve(SAMPLES / "mlp", outputs={"p": "probs:0"}) == []


def test_optimizer_on_the_path_is_an_error() -> None:
    # the global-step increment waits for the Adam updates (control dependency)
    found = by_id(serve(SAMPLES / "mlp", outputs={"t": "train:0"}))
    training, = found["serving.training-op"]
    assert training.severity == ERROR
    assert training.details["nodes"][0]["op"] == "ApplyAdam"
    update, = found["serving.variable-update"]
    assert update.severity == WARNING and "train" in {n["node"] for n in update.details["nodes"]}


def test_summaries_on_the_path() -> None:
    summary, = by_id(serve(SAMPLES / "mlp", outputs={"s": "merged_summaries/merged_summaries:0"}))["serving.summary-op"]
    assert {n["node"] for n in summary.details["nodes"]} == {"loss_1", "merged_summaries/merged_summaries"}


def test_dataset_iterator_on_the_path_and_feeding_it_away() -> None:
    model = load_model(CHECK / "unsafe_ops" / "model.meta")
    pipeline, = by_id(serve(model, outputs={"n": "total_len:0"}))["serving.input-pipeline"]
    assert pipeline.severity == ERROR and "--input KEY=next_file:0" in fix_line(pipeline)
    assert pipeline.remedy is not None and pipeline.remedy.mapping("inputs") == {"KEY": "next_file:0"}
    wheres = {n["where"] for n in pipeline.details["nodes"]}
    assert "function _make_dataset_ARMz4GGBoKs" in wheres  # through the iterator's dataset_factory
    assert "serving.input-pipeline" not in by_id(serve(model, inputs={"f": "next_file:0"},
                                                       outputs={"n": "total_len:0"}))


def test_signatures_that_update_variables(real_models: Path) -> None:
    found = by_id(serve(real_models / "tensorflow_serving" / "saved_model_counter" / "00000123"))
    updates = found["serving.variable-update"]
    assert {f.details["endpoint"] for f in updates} == {
        "signature 'incr_counter'", "signature 'incr_counter_by'", "signature 'reset_counter'"}


# -- unregistered ops ---------------------------------------------------------------------------

def test_unregistered_ops_in_graph_and_function_bodies() -> None:
    model = load_model(SAMPLES / "functions" / "functions.meta")
    custom = model.graph_def.node.add(name="custom", op="SentencepieceOp")
    assert custom.op not in stock_registry().ops
    model.graph_def.library.function[0].node_def.add(name="inner", op="SentencepieceOp")
    model.graph_def.node.add(name="fused", op="_MklFusedMatMulX")
    found = by_id(serve(model))
    unknown = {f.subject: f for f in found["serving.unknown-op"]}
    assert set(unknown) == {"SentencepieceOp", "_MklFusedMatMulX"}  # MyAdd (a Defun call) is no op
    sentencepiece = unknown["SentencepieceOp"]
    assert sentencepiece.severity == ERROR and stock_registry().tf_version in sentencepiece.message
    assert {n["where"].split(" ")[0] for n in sentencepiece.details["nodes"]} == {"graph", "function"}
    assert unknown["_MklFusedMatMulX"].severity == WARNING


def test_stock_samples_have_only_registered_ops() -> None:
    for path in [SAMPLES / "mlp", SAMPLES / "savedmodel_tf2", SAMPLES / "functions" / "functions.meta",
                 CHECK / "unsafe_ops" / "model.meta"]:
        assert "serving.unknown-op" not in by_id(serve(path)), path


def test_registry_version_is_recorded() -> None:
    registry = stock_registry()
    assert registry.tf_version == "2.21.0" and "MatMul" in registry and "_Arg" in registry
    assert stock_registry() is registry  # loaded once


# -- scale --------------------------------------------------------------------------------------

def _chain_graph(path: Path, layers: int) -> None:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    meta = MetaGraphDef()
    graph = meta.graph_def

    def add(name: str, op: str, *inputs: str) -> None:
        node = graph.node.add(name=name, op=op)
        node.input.extend(inputs)
        node.attr["T"].type = 1

    add("x", "Placeholder")
    previous = "x"
    for i in range(layers):
        add(f"l{i}/w", "VariableV2")
        add(f"l{i}/w/read", "Identity", f"l{i}/w")
        add(f"l{i}/MatMul", "MatMul", previous, f"l{i}/w/read")
        add(f"l{i}/Relu", "Relu", f"l{i}/MatMul")
        add(f"l{i}/loss", "L2Loss", f"l{i}/Relu")
        previous = f"l{i}/Relu"
    add("probs", "Softmax", previous)
    path.write_bytes(meta.SerializeToString())


def test_checks_are_linear_in_the_graph(tmp_path: Path) -> None:
    path = tmp_path / "chain.meta"
    _chain_graph(path, 8000)  # 40k nodes: anything quadratic takes minutes
    model = load_model(path)
    model.nodes()
    start = time.process_time()
    ctx = CheckContext(model)
    findings, proposal = check_signature(ctx)
    findings += check_serving(ctx) + check_security(ctx)
    elapsed = time.process_time() - start
    assert proposal.outputs == {"probs": "probs:0"} and proposal.inputs == {"x": "x:0"}
    assert elapsed < 4.0, elapsed


@pytest.mark.parametrize("name", ["sample_meta", "real_models"])
def test_every_graph_is_checked_without_errors_from_the_checker(name: str, request: pytest.FixtureRequest) -> None:
    root = SAMPLES if name == "sample_meta" else request.getfixturevalue("real_models")
    paths = sorted(root.rglob("*.meta")) + sorted(root.rglob("saved_model.pb")) + sorted(root.rglob("frozen.pb"))
    for path in paths:
        for finding in serve(path):
            assert finding.id.startswith("serving.") and finding.fix
