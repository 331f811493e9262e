"""The one tensor-name parser: graph references (TensorFlow's ParseTensorName rule) and function bodies."""

from __future__ import annotations

import pytest

from metainspect.graph.names import (
    FunctionInput,
    function_input,
    is_valid_node_name,
    op_name,
    output_index,
    parse_tensor_name,
    rename_reference,
    split_reference,
    tensor_name,
)

GRAPH_REFERENCES = [
    # reference, (control, op, suffix), output index
    ("x", ("", "x", ""), 0),
    ("x:0", ("", "x", ":0"), 0),
    ("dense/BiasAdd:12", ("", "dense/BiasAdd", ":12"), 12),
    ("^init", ("^", "init", ""), 0),
    # TF: text after the last ':' is an index only when it is all digits
    ("a:b", ("", "a:b", ""), 0),
    ("mm:product:0", ("", "mm:product", ":0"), 0),
]


@pytest.mark.parametrize(("ref", "parts", "index"), GRAPH_REFERENCES)
def test_graph_references(ref: str, parts: tuple[str, str, str], index: int) -> None:
    assert split_reference(ref) == parts
    assert op_name(ref) == parts[1]
    assert output_index(ref) == index
    if not parts[0]:
        assert parse_tensor_name(ref) == (parts[1], index)
        assert tensor_name(ref) == f"{parts[1]}:{index}"


def test_a_control_input_is_not_a_tensor() -> None:
    with pytest.raises(ValueError, match="control input"):
        parse_tensor_name("^x")


def test_rename_keeps_control_marks_and_indices() -> None:
    mapping = {"a": "scope/a"}
    assert [rename_reference(r, mapping) for r in ("a", "^a", "a:3", "b", "a_1:0")] == \
        ["scope/a", "^scope/a", "scope/a:3", "b", "a_1:0"]


def test_function_body_inputs() -> None:
    assert function_input("x") == FunctionInput("x", "", 0, False)
    assert function_input("mm:product:0") == FunctionInput("mm", "product", 0, False)
    assert function_input("split:output:2") == FunctionInput("split", "output", 2, False)
    assert function_input("^mm") == FunctionInput("mm", "", 0, True)
    assert function_input("mm:product") == FunctionInput("mm", "product", 0, False)


def test_node_names_tf_accepts() -> None:
    assert is_valid_node_name("dense/kernel/Adam_1") and is_valid_node_name(".hidden-x")
    assert not is_valid_node_name("a:b") and not is_valid_node_name("/lead") and not is_valid_node_name("")
