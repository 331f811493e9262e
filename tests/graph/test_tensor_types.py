"""Dtype, shape and arity of ``op:index`` tensors, on TF-written samples."""

from __future__ import annotations

import pytest

from metainspect.graph.model import load_model
from metainspect.graph.outputs import OutputSpec, output_spec, outputs_of, parse_tensor_name, stock_op_outputs

from helpers.paths import SAMPLES


def test_parse_tensor_name() -> None:
    assert parse_tensor_name("x") == ("x", 0)
    assert parse_tensor_name("a/b:3") == ("a/b", 3)
    assert parse_tensor_name("a:b") == ("a:b", 0)
    with pytest.raises(ValueError):
        parse_tensor_name("^x")


def test_mlp_outputs_from_the_graphs_own_op_defs() -> None:
    model = load_model(SAMPLES / "mlp")
    assert output_spec(model, "x") == OutputSpec("x:0", "float32", [None, 4])
    assert output_spec(model, "prediction:0") == OutputSpec("prediction:0", "int64", [None])
    assert output_spec(model, "dense1/kernel").shape == [4, 8]
    # RestoreV2's arity comes from its dtypes list attr: one output per saved tensor
    restored = outputs_of(model, "save/RestoreV2")
    assert restored is not None and len(restored) == len(model.node("save/RestoreV2").proto.attr["dtypes"].list.type)


def test_bad_indices_and_names_say_what_exists() -> None:
    model = load_model(SAMPLES / "mlp")
    with pytest.raises(LookupError, match=r"has 1 output \(x:0\)"):
        output_spec(model, "x:1")
    with pytest.raises(LookupError, match="no node named 'nope'"):
        output_spec(model, "nope:0")


def test_frozen_graph_def_uses_the_stock_registry() -> None:
    model = load_model(SAMPLES / "frozen" / "frozen.pb")
    assert not model.meta_graph.meta_info_def.stripped_op_list.op
    assert output_spec(model, "x").dtype == "float32"
    assert output_spec(model, "dense1/kernel").shape == [4, 8]
    assert "Unique" in stock_op_outputs()
