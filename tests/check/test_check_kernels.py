"""serving.no-cpu-kernel: ops stock TensorFlow 2.21 registers without a CPU kernel (data/tf_kernel_registry.json)."""

from __future__ import annotations

from pathlib import Path

from metainspect.check import run_checks
from metainspect.check.findings import CheckContext
from metainspect.check.serving import no_cpu_kernel
from metainspect.graph.model import Function
from metainspect.graph.ops import kernel_registry, stock_registry
from metainspect.graph.walk import index_of

from helpers.graph import GraphBuilder


def test_the_registry() -> None:
    registry = kernel_registry()
    assert registry.tf_version == "2.21.0" and registry.no_cpu_kernel["BoostedTreesBucketize"] == ()
    assert "AccumulateNV2" not in registry.no_cpu_kernel  # a graph pass replaces it before it runs
    assert "MatMul" not in registry.no_cpu_kernel and set(registry.no_cpu_kernel) <= stock_registry().ops


def test_in_the_graph_an_error_wherever_it_is() -> None:
    graph = GraphBuilder().add("x", "Placeholder").add("y", "Relu", "x").add("b", "BoostedTreesBucketize", "x")
    model = graph.model()
    (found,) = no_cpu_kernel(CheckContext(model, outputs={"y": "y:0"}), index_of(model))
    assert found.id == "serving.no-cpu-kernel" and found.severity == "error" and found.subject == "BoostedTreesBucketize"
    assert "cannot run this graph at all" in found.message and found.details["kernel_devices"] == []


def test_in_a_function_by_when_it_runs() -> None:
    graph = GraphBuilder().add("x", "Placeholder").add("y", "Relu", "x")
    fn = graph.meta_graph.graph_def.library.function.add()
    fn.signature.name = "bucketize"
    fn.node_def.add(name="b", op="BoostedTreesBucketize")
    model = graph.model()
    (unused,) = no_cpu_kernel(CheckContext(model, outputs={"y": "y:0"}), index_of(model))
    assert unused.severity == "warning" and "nothing served or loaded calls it" in unused.message
    call = graph.meta_graph.graph_def.node.add(name="call", op="StatefulPartitionedCall", input=["x"])
    call.attr["f"].func.name = "bucketize"
    model = graph.model()
    (served,) = no_cpu_kernel(CheckContext(model, outputs={"out": "call:0"}), index_of(model))
    assert served.severity == "error" and "on a served path (the given outputs)" in served.message
    assert isinstance(index_of(model).functions["bucketize"], Function)


def test_tfx_models_tensorflow_cannot_run(real_models_2: Path) -> None:
    """TF 2.21's SavedModel loader: "No OpKernel was registered to support Op 'BoostedTreesBucketize'"."""
    for name in ("trained_saved_model_2020_02", "tfma_benchmark_saved_model", "tft_tf2_saved_model"):
        report = run_checks(str(real_models_2 / "tensorflow_tfx" / name))
        (found,) = [f for f in report.findings if f.id == "serving.no-cpu-kernel"]
        assert found.severity == "error" and found.details["count"] == 4 and not report.ready(), name
