"""The one op table: every op it names is stock TF 2.21 or documented, categories nest as they say."""

from __future__ import annotations

import json

from metainspect.check.findings import CheckContext
from metainspect.check.serving import check_serving
from metainspect.graph import ops
from metainspect.graph.endpoints import likely_outputs
from metainspect.graph.outputs import stock_op_outputs
from metainspect.graph.roles import in_auxiliary_scope, in_gradient_scope, serving_role

from helpers.graph import GraphBuilder
from helpers.paths import ROOT


def test_every_category_op_is_stock_or_documented_as_custom() -> None:
    registry = ops.stock_registry()
    named = set().union(*ops.CATEGORIES.values())
    unknown = sorted(op for op in named if op not in registry and op not in ops.NOT_STOCK)
    assert unknown == []
    # every exception is real: listed in the table, and really missing from the registry
    assert set(ops.NOT_STOCK) <= named
    assert not set(ops.NOT_STOCK) & registry.ops
    assert all(reason for reason in ops.NOT_STOCK.values())


def test_categories_nest_as_documented() -> None:
    c = ops.CATEGORIES
    assert c["ref-variable"] | c["resource-variable"] == c["variable"]
    assert not c["ref-variable"] & c["resource-variable"]
    assert c["identity"] < c["variable-read"]
    assert c["assign"] < c["variable-update"]
    assert c["v1-restore"] < c["restore"]
    assert c["save"] | c["restore"] < c["checkpoint-io"]
    assert c["frame-enter"] < c["control-flow-plumbing"]
    # the named constants are views of the table, not copies
    assert ops.VARIABLE_OPS is c["variable"] and ops.SUMMARY_OPS is c["summary"]
    assert ops.PLACEHOLDER_OPS | ops.VARIABLE_OPS | ops.SUMMARY_OPS | ops.CHECKPOINT_OPS <= ops.AUXILIARY_OPS


def test_op_rules() -> None:
    assert ops.is_training_op("ApplyAdam") and ops.is_training_op("ResourceSparseApplyAdagradV2")
    assert not ops.is_training_op("MatMul")
    assert all(ops.is_input_pipeline(op) for op in ("FIFOQueueV2", "TFRecordReaderV2", "IteratorGetNext",
                                                    "TensorSliceDataset", "MapDatasetV2", "RecordInput"))
    assert not ops.is_input_pipeline("MatMul") and not ops.is_input_pipeline("DatasetToGraphV2")


def test_registry_and_output_signatures_come_from_one_file() -> None:
    data = json.loads((ROOT / "metainspect" / "data" / "tf_ops.json").read_text())
    assert data["tf_version"] == ops.stock_registry().tf_version == "2.21.0"
    assert set(stock_op_outputs()) == ops.stock_registry().ops == set(data["ops"])
    assert data["count"] == len(data["ops"])
    assert stock_op_outputs()["MatMul"]["out"] == [[0, "T", "", ""]]


def test_import_event_is_a_summary_op_on_the_serving_path() -> None:
    """Two summary lists disagreed: check's lacked ImportEvent, edit's --strip-training had it."""
    graph = GraphBuilder().add("x", "Placeholder", dtype=7).add("writer", "Placeholder", dtype=20)
    graph.add("import", "ImportEvent", "writer", "x").add("y", "Identity", "x", "^import")
    findings = check_serving(CheckContext(graph.model(), outputs={"y": "y:0"}))
    assert [(f.id, f.details["nodes"][0]["node"]) for f in findings] == [("serving.summary-op", "import")]
    assert serving_role(graph.model().node("import")) == "summary"  # type: ignore[arg-type]


def test_every_summary_and_variable_update_op_is_auxiliary() -> None:
    """info's list of non-outputs held 12 of 21 summary ops and no scatter update."""
    graph = GraphBuilder().add("x", "Placeholder").add("w", "VariableV2")
    graph.add("hist", "WriteHistogramSummary", "x").add("update", "ScatterUpdate", "w", "x", "x")
    graph.add("y", "Relu", "x")
    assert [n.name for n in likely_outputs(graph.model())] == ["y"]


def test_machinery_scopes_are_one_rule() -> None:
    """edit counted ``gradients_foo/`` as a gradient scope, check only ``gradients_N/``."""
    assert in_gradient_scope("gradients/MatMul_grad/MatMul") and in_gradient_scope("tower/gradients_3/x")
    assert not in_gradient_scope("gradients_of_x/y") and not in_gradient_scope("model/gradients")
    assert in_auxiliary_scope("dense/kernel/Initializer/random_uniform") and in_auxiliary_scope("net/Adam_1/x")
    assert in_auxiliary_scope("save_1/RestoreV2") and not in_auxiliary_scope("dense/BiasAdd")
