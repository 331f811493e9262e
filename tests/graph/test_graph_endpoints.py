"""One serving-endpoint rule for info, check, export and edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from metainspect.check.findings import CheckContext
from metainspect.check.signature import check_signature
from metainspect.edit import add_signature
from metainspect.errors import MetainspectError
from metainspect.graph.endpoints import (
    CLASSIFY,
    REGRESS,
    SERVING_DEFAULT,
    method_problems,
    served_endpoints,
    serving_signature,
    summary_endpoints,
)
from metainspect.graph.model import load_model
from metainspect.graph.proposal import propose

from helpers.cli import Cli
from helpers.graph import GraphBuilder
from helpers.paths import SAMPLES


def info_json(cli: Cli, path: Path) -> dict[str, object]:
    result = cli("info", str(path), "--json")
    assert result.code == 0, result.stderr
    return result.json()  # type: ignore[no-any-return]


def test_info_shows_serving_default_of_a_model_with_several_signatures(cli: Cli) -> None:
    """info took the first signature by name (classify: tf_example:0), check serving_default."""
    summary = info_json(cli, SAMPLES / "savedmodel_tf1")
    assert summary["signatures"] == ["classify", SERVING_DEFAULT]
    assert summary["inputs"] == [{"name": "x:0", "dtype": "float32", "shape": [None, 4]}]
    assert summary["outputs"] == ["prediction:0", "probs:0"]


def test_info_on_tf_servings_half_plus_two(cli: Cli, real_models: Path) -> None:
    summary = info_json(cli, real_models / "tensorflow_serving" / "saved_model_half_plus_two_cpu" / "00000123")
    assert len(summary["signatures"]) == 5  # type: ignore[arg-type]
    assert summary["inputs"] == [{"name": "x:0", "dtype": "float32", "shape": [None, 1]}]
    assert summary["outputs"] == ["y:0"]


@pytest.mark.parametrize("sample", ["savedmodel_tf1", "savedmodel_tf2"])
def test_info_and_check_choose_the_same_signature(sample: str) -> None:
    model = load_model(SAMPLES / sample)
    inputs, outputs = summary_endpoints(model)
    proposal = propose(model)
    assert proposal.source == "signature"
    assert [name for name, _, _ in inputs] == list(proposal.inputs.values())
    assert outputs == list(proposal.outputs.values())


def _two_heads() -> GraphBuilder:
    graph = GraphBuilder().add("x", "Placeholder").add("a", "Relu", "x").add("b", "Sigmoid", "x")
    for key, output in (("first", "a"), ("second", "b")):
        signature = graph.meta_graph.signature_def[key]
        signature.method_name = "tensorflow/serving/predict"
        signature.inputs["x"].name = "x:0"
        signature.outputs["y"].name = f"{output}:0"
    return graph


def test_the_serving_signature_rule() -> None:
    graph = _two_heads()
    model = graph.model()
    assert serving_signature(model) is None  # several, none the default: a request must name one
    assert summary_endpoints(model) == ([("x:0", "float32", None)], ["a:0", "b:0"])
    assert [e.label for e in served_endpoints(model)] == ["signature 'first'", "signature 'second'"]
    del graph.meta_graph.signature_def["second"]
    graph.meta_graph.signature_def["__saved_model_init_op"].outputs["init"].name = "x:0"
    only = graph.model()
    assert serving_signature(only).key == "first"  # type: ignore[union-attr]
    assert summary_endpoints(only) == ([("x:0", None, [])], ["a:0"])
    assert served_endpoints(only, outputs={"out": "b:0"})[0] == ("the given outputs", ["b:0"], [])


def test_method_rules_report_only_known_dtypes() -> None:
    assert method_problems("tensorflow/serving/predict", {}, {}) == []
    assert method_problems(CLASSIFY, {"inputs": None}, {"scores": None}) == []
    assert method_problems(CLASSIFY, {"inputs": "string"}, {"classes": "string", "scores": "float32"}) == []
    assert method_problems(CLASSIFY, {"inputs": "float32"}, {"classes": "int64"}) == [
        "needs exactly one input 'inputs', a string tensor of serialized tf.Examples (is float32)",
        "output 'classes' must be a string tensor (is int64)",
    ]
    assert method_problems(REGRESS, {"x": "string"}, {"outputs": "float32", "extra": "float32"}) == [
        "needs exactly one input 'inputs', a string tensor of serialized tf.Examples (has ['x'])",
        "outputs must be 'outputs' (float32) (has ['extra', 'outputs'])",
    ]


def test_edit_and_check_apply_the_same_method_rule() -> None:
    """edit refused a classify input whose dtype the graph does not tell; check let it pass."""
    graph = GraphBuilder().add("raw", "Placeholder", dtype=7).add("examples", "MyDecodeOp", "raw")
    graph.add("logits", "MatMul", "raw", "raw").add("scores", "Softmax", "logits")
    add_signature(graph.meta_graph, "c", {"inputs": "examples"}, {"scores": "scores"}, method="classify")
    findings, _ = check_signature(CheckContext(graph.model()))
    assert "signature.method-keys" not in [f.id for f in findings]
    with pytest.raises(MetainspectError, match=r"classify\): output 'scores' must be a float32 tensor \(is int64\)"):
        graph.add("ids", "ArgMax", "scores", "raw")
        add_signature(graph.meta_graph, "d", {"inputs": "examples"}, {"scores": "ids"}, method="classify")
