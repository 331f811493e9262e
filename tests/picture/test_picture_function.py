"""Library functions turned into GraphDefs: argument/result nodes and flat output indices."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

from metainspect.graph.model import load_model
from metainspect.picture import NoSuchFunctionError, function_graph_def
from metainspect.picture.function_graph import ARG_OP, RETVAL_OP


def _model(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A graph whose function ``f`` uses a multi-output op described by the graph's own OpDef."""
    meta = MetaGraphDef()
    op = meta.meta_info_def.stripped_op_list.op.add(name="Multi")
    op.output_arg.add(name="parts", number_attr="N", type=1)
    op.output_arg.add(name="rest", type_list_attr="Tout")
    op.output_arg.add(name="last", type=3)
    attr = op.attr.add(name="N", type="int")
    attr.default_value.i = 2
    fn = meta.graph_def.library.function.add()
    fn.signature.name = "f"
    fn.signature.input_arg.add(name="x", type=1)
    fn.signature.output_arg.add(name="out", type=3)
    fn.signature.output_arg.add(name="passthrough", type=1)
    multi = fn.node_def.add(name="m", op="Multi")
    multi.input.append("x")
    multi.attr["N"].i = 3
    multi.attr["Tout"].list.type.extend([1, 1])
    default = fn.node_def.add(name="d", op="Multi")
    default.input.append("x")
    default.attr["Tout"].list.type.extend([1])
    use = fn.node_def.add(name="use", op="AddV2")
    use.input.extend(["m:rest:1", "d:last:0", "^m"])
    fn.ret["out"] = "m:last:0"
    fn.ret["passthrough"] = "x"
    meta.graph_def.node.add(name="call", op="f")
    path = tmp_path / "f.meta"
    path.write_bytes(meta.SerializeToString())
    return load_model(path)


def test_references_become_flat_output_indices(tmp_path: Path) -> None:
    graph = function_graph_def(_model(tmp_path), "f")
    nodes = {n.name: n for n in graph.node}
    assert [(n.name, n.op) for n in graph.node] == [
        ("x", ARG_OP), ("m", "Multi"), ("d", "Multi"), ("use", "AddV2"), ("out", RETVAL_OP), ("passthrough", RETVAL_OP)]
    # m: parts 0..2 (N=3), rest 3..4, last 5; d: parts 0..1 (default N=2), rest 2, last 3
    assert list(nodes["use"].input) == ["m:4", "d:3", "^m"]
    assert list(nodes["out"].input) == ["m:5"]
    assert list(nodes["passthrough"].input) == ["x"]
    assert nodes["x"].attr["T"].type == 1 and nodes["out"].attr["index"].i == 0
    assert graph.library.function[0].signature.name == "f"


def test_unknown_function(tmp_path: Path) -> None:
    with pytest.raises(NoSuchFunctionError, match=r"no function 'g' in the graph's library \(functions: f\)"):
        function_graph_def(_model(tmp_path), "g")
