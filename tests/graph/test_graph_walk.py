"""The one upstream walk, the forward walk, and the one variable-read rule."""

from __future__ import annotations

from metainspect.graph.proposal import propose
from metainspect.graph.walk import (
    MAX_CHAIN,
    downstream,
    follow,
    index_of,
    is_variable_read,
    reads_of,
    upstream,
    variable_behind,
)

from helpers.graph import GraphBuilder


def _diamond() -> GraphBuilder:
    graph = GraphBuilder().add("x", "Placeholder").add("w", "VariableV2").add("w/read", "Identity", "w")
    graph.add("init", "NoOp").add("mm", "MatMul", "x", "w/read", "^init").add("out", "Relu", "mm")
    return graph.add("side", "Relu", "x")


def test_upstream_follows_data_and_control_inputs() -> None:
    index = index_of(_diamond().model())
    assert upstream(index, ["out:0"]) == {"out", "mm", "x", "w/read", "w", "init"}
    # a fed tensor is a boundary, a stop op is reached but not looked behind, excluded nodes never entered
    assert upstream(index, ["out"], fed=["mm:0"]) == {"out"}
    assert upstream(index, ["out"], stop_ops={"MatMul"}) == {"out", "mm"}
    assert upstream(index, ["out"], exclude={"w/read"}) == {"out", "mm", "x", "init"}
    assert upstream(index, ["out"], inputs=lambda node: node.inputs) == {"out", "mm", "x", "w/read", "w"}
    assert upstream(index, ["nope:0"]) == set()


def test_downstream_with_and_without_control_edges() -> None:
    index = index_of(_diamond().model())
    assert downstream(index, {"init"}) == {"init", "mm", "out"}
    assert downstream(index, {"init"}, control=False) == {"init"}
    assert downstream(index, {"x"}, control=False) == {"x", "mm", "out", "side"}


def test_a_long_read_chain_is_still_a_read() -> None:
    """The proposal followed reads 16 deep, the saver 64: one rule, MAX_CHAIN (64) deep."""
    graph = GraphBuilder().add("w", "VariableV2")
    last = graph.chain("w", "Identity", 20, "read")
    model = graph.model()
    nodes = model.nodes_by_name()
    assert MAX_CHAIN == 64
    assert is_variable_read(nodes, nodes[last])
    assert variable_behind(nodes, f"{last}:0") is nodes["w"]
    assert reads_of(index_of(model), "w") == {f"read{i}" for i in range(20)}


def test_the_chain_bound_and_cycles() -> None:
    graph = GraphBuilder().add("w", "VarHandleOp")
    last = graph.chain("w", "ReadVariableOp", MAX_CHAIN + 1, "r")
    graph.add("a", "Identity", "b").add("b", "Identity", "a")
    nodes = graph.model().nodes_by_name()
    assert variable_behind(nodes, f"r{MAX_CHAIN - 1}") is nodes["w"]
    assert variable_behind(nodes, last) is None
    assert not is_variable_read(nodes, nodes["a"])  # a cycle ends at the bound
    assert follow(nodes, "a:0") in ("a", "b")


def test_a_deep_variable_read_is_no_output_candidate() -> None:
    """With the proposal's 16-deep rule the end of a 20-deep read chain was ranked as an output."""
    graph = GraphBuilder().add("x", "Placeholder").add("w", "VariableV2")
    graph.chain("w", "Identity", 20, "w/read")
    graph.add("probs", "Softmax", "x")
    proposal = propose(graph.model())
    assert proposal.outputs == {"probs": "probs:0"} and proposal.unambiguous
    assert [c.tensor for c in proposal.candidates] == ["probs:0", "x:0"]
