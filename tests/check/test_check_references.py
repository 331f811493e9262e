"""graph.missing-input: inputs naming absent nodes or outputs, one finding per node, the first with the count."""

from __future__ import annotations

from pathlib import Path

from tensorboard.compat.proto.function_pb2 import FunctionDef

from metainspect.check import run_checks
from metainspect.check.findings import CheckContext
from metainspect.check.references import check_references

from helpers.cli import Cli
from helpers.graph import GraphBuilder


def test_absent_nodes_absent_outputs_and_control_inputs() -> None:
    graph = GraphBuilder().add("x", "Placeholder").add("relu", "Relu", "x")
    graph.add("ok", "Add", "x", "relu:0").add("ghost_in", "Add", "x", "ghost").add("bad_index", "Relu", "relu:5")
    graph.add("ghost_ctl", "Relu", "x", "^nobody")
    found = check_references(CheckContext(graph.model()))
    assert [f.subject for f in found] == ["ghost_in", "bad_index", "ghost_ctl"]
    first, index, control = found
    assert first.id == "graph.missing-input" and first.severity == "error" and first.details["missing"] == ["ghost"]
    assert "Unknown input node 'ghost'" in first.message and "the first of 3 such nodes" in first.message
    assert index.details["invalid_outputs"] == [{"input": "relu:5", "op": "Relu", "outputs": 1}]
    assert "'relu' (Relu), which has 1 output" in index.message and "(2 of 3)" in index.message
    assert control.details["missing"] == ["^nobody"]


def test_ops_of_unknown_arity_are_not_second_guessed() -> None:
    graph = GraphBuilder().add("custom", "MyOp").add("y", "Relu", "custom:3").add("z", "Relu", "custom")
    assert check_references(CheckContext(graph.model())) == []


def test_a_text_graph_naming_109_absent_nodes(real_models_2: Path, cli: Cli) -> None:
    """OpenCV's text graph: TF's import fails on the first ('Unknown input node 'data_bn/gamma'')."""
    path = real_models_2 / "supby_faced_test" / "opencv_face_detector.pbtxt"
    report = run_checks(str(path))
    found = [f for f in report.findings if f.id == "graph.missing-input"]
    assert found[0].subject == "data_bn/FusedBatchNorm" and found[0].details["missing"][0] == "data_bn/gamma"
    assert len({ref for f in found for ref in f.details["missing"]}) == 109
    assert {f.details["count"] for f in found} == {len(found)} and not report.ready()
    out = cli("check", str(path)).stdout
    assert f"… and {len(found) - 20} more graph.missing-input (all of them with --json)" in out


def test_a_stray_control_marker_among_data_inputs_is_read_by_name() -> None:
    """Found by fuzzing: a data input '^:0' (a control marker before data inputs) named a node '^'."""
    graph = GraphBuilder().add("x", "Placeholder").add("y", "Add", "^gone:0", "x").add("z", "Relu", "^x", "x")
    (found,) = check_references(CheckContext(graph.model()))
    assert found.subject == "y" and found.details["missing"] == ["^gone:0"]


def _break_body(fn: FunctionDef, ghost: str) -> str:
    """Point the first node-output input of ``fn``'s body at ``ghost``; the input as written."""
    node = next(n for n in fn.node_def if any(":" in ref for ref in n.input))
    position = next(i for i, ref in enumerate(node.input) if ":" in ref)
    node.input[position] = f"{ghost}:output:0"
    return node.input[position]


def test_function_bodies_naming_absent_nodes_or_arguments() -> None:
    """In a body, ``node:out:0`` names a body node and a plain ``x`` an argument: anything else is refused."""
    from metainspect.graph.model import load_model
    from metainspect.graph.phases import OFF_PATH, phases
    from metainspect.graph.walk import index_of

    from helpers.paths import SAMPLES

    model = load_model(SAMPLES / "savedmodel_tf2")
    when = phases(index_of(model), {}, {})
    library = model.graph_def.library.function
    running = next(f for f in library if when.of_function(f.signature.name)[0] != OFF_PATH
                   and any(":" in ref for n in f.node_def for ref in n.input))
    written = _break_body(running, "ghost")
    running.ret[next(iter(running.ret))] = "no_such_argument"
    (finding,) = check_references(CheckContext(model))
    assert finding.id == "graph.missing-input" and finding.severity == "error"
    assert finding.subject == running.signature.name and finding.details["count"] == 2
    assert f"input {written!r}" in finding.details["problems"][0]
    assert finding.details["problems"][1].endswith("= 'no_such_argument'")
    assert "TensorFlow cannot instantiate the function" in finding.message


def test_a_broken_function_nothing_calls_is_a_warning() -> None:
    graph = GraphBuilder().add("x", "Placeholder").add("y", "Relu", "x")
    model = graph.model()
    fn = FunctionDef()
    fn.signature.name = "unused"
    fn.signature.input_arg.add(name="a")
    fn.node_def.add(name="r", op="Relu").input.append("a")
    fn.node_def.add(name="s", op="Relu").input.append("r:activations:0")
    fn.node_def.add(name="t", op="Relu").input.append("b")  # no argument b
    fn.node_def.add(name="u", op="NoOp").input.append("^a")  # a control input on an argument is allowed
    fn.ret["out"] = "t:activations:0"
    model.graph_def.library.function.append(fn)
    (finding,) = check_references(CheckContext(model))
    assert finding.severity == "warning" and finding.details["problems"] == ["node 't' (Relu) input 'b'"]
    assert "nothing served or loaded calls it" in finding.message
