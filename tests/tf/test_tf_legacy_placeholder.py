"""TensorFlow itself reads a Placeholder's empty shape attr as unknown in graphs of producer <= 21."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.compat.proto.graph_pb2 import GraphDef

from metainspect.graph.model import LEGACY_PLACEHOLDER_PRODUCER, load_model

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("producer", [9, LEGACY_PLACEHOLDER_PRODUCER, LEGACY_PLACEHOLDER_PRODUCER + 1, 1000])
def test_placeholder_shape_agrees_with_tensorflow(producer: int, tmp_path: Path) -> None:
    import tensorflow as tf

    graph_def = GraphDef()
    node = graph_def.node.add(name="x", op="Placeholder")
    node.attr["dtype"].type = 1
    node.attr["shape"].shape.SetInParent()
    graph_def.versions.producer = producer
    path = tmp_path / "graph.pb"
    path.write_bytes(graph_def.SerializeToString())
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(tf.compat.v1.GraphDef.FromString(path.read_bytes()), name="")
        theirs = graph.get_tensor_by_name("x:0").shape
    (ours,) = load_model(path).placeholders()
    assert ours.shape == (None if theirs.rank is None else theirs.as_list())
    assert (ours.shape is None) == (producer <= LEGACY_PLACEHOLDER_PRODUCER)
