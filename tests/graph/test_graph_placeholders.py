"""Placeholder shapes as TensorFlow reads them, including its rule for graphs of producer <= 21.

TensorFlow's Placeholder shape function (array_ops.cc) cannot tell a scalar ``shape`` attr from
an unknown one in graphs older than producer 22: there, a rank-0 or unknown-rank attr means
unknown shape. The rule is the Placeholder op's alone.
"""

from __future__ import annotations

import pytest

from helpers.graph import GraphBuilder


def _placeholder_shape(op: str, producer: int, *, dims: list[int] | None, unknown_rank: bool = False,
                       output_shape: list[int] | None = None, deprecated_version: bool = False) -> object:
    graph = GraphBuilder().add("x", op)
    node = graph.meta_graph.graph_def.node[0]
    if dims is not None or unknown_rank:
        shape = node.attr["shape"].shape
        shape.SetInParent()
        shape.unknown_rank = unknown_rank
        for size in dims or []:
            shape.dim.add(size=size)
    if output_shape is not None:
        recorded = node.attr["_output_shapes"].list.shape.add()
        for size in output_shape:
            recorded.dim.add(size=size)
    if deprecated_version:
        graph.meta_graph.graph_def.version = producer
    else:
        graph.meta_graph.graph_def.versions.producer = producer
    (placeholder,) = graph.model().placeholders()
    return placeholder.shape


@pytest.mark.parametrize(("producer", "expected"), [(0, None), (8, None), (21, None), (22, []), (2474, [])])
def test_an_empty_shape_attr_is_unknown_up_to_producer_21(producer: int, expected: object) -> None:
    assert _placeholder_shape("Placeholder", producer, dims=[]) == expected


def test_the_deprecated_version_field_counts_as_the_producer() -> None:
    assert _placeholder_shape("Placeholder", 9, dims=[], deprecated_version=True) is None
    assert _placeholder_shape("Placeholder", 22, dims=[], deprecated_version=True) == []


def test_the_legacy_rule_leaves_known_shapes_and_other_ops_alone() -> None:
    assert _placeholder_shape("Placeholder", 8, dims=[-1, 4]) == [None, 4]
    assert _placeholder_shape("Placeholder", 8, dims=None, unknown_rank=True) is None
    assert _placeholder_shape("PlaceholderWithDefault", 8, dims=[]) == []
    assert _placeholder_shape("PlaceholderV2", 8, dims=[]) == []


def test_output_shapes_refine_an_unknown_legacy_shape_but_not_a_scalar() -> None:
    assert _placeholder_shape("Placeholder", 8, dims=[], output_shape=[-1, 784]) == [None, 784]
    assert _placeholder_shape("Placeholder", 22, dims=[], output_shape=[-1, 784]) == []
    assert _placeholder_shape("Placeholder", 22, dims=None, output_shape=[-1, 784]) == [None, 784]
