"""Run with TensorFlow installed (`pytest -m tf`, the TF stage of .ci/run): TF is the judge."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.paths import ROOT, SAMPLES

pytestmark = pytest.mark.tf

#: metainspect work that registers every generated proto module it has
USE_METAINSPECT = textwrap.dedent("""
    import metainspect
    from metainspect.proto import (checkpoint_state_pb2, control_flow_pb2, fingerprint_pb2,
        queue_runner_pb2, saved_model_pb2, saved_tensor_slice_pb2, tensor_bundle_pb2, tensor_slice_pb2)
    model = metainspect.load_model("sample_meta/savedmodel_tf1")
    assert model.signatures()
    with metainspect.open_checkpoint("sample_meta/mlp") as ckpt:
        assert ckpt.get(ckpt.keys()[0]) is not None
""")
#: TensorFlow work that loads every proto module that could clash (some are imported lazily)
USE_TENSORFLOW = textwrap.dedent("""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2, meta_graph_pb2, saver_pb2, control_flow_pb2
    from tensorflow.core.protobuf import tensor_bundle_pb2, fingerprint_pb2, queue_runner_pb2
    from tensorflow.core.util import saved_tensor_slice_pb2
    from tensorflow.core.framework import tensor_slice_pb2
    from tensorflow.python.checkpoint import checkpoint_management
    assert tf.train.list_variables("sample_meta/mlp")
""")


def _run(script: str) -> None:
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_metainspect_then_tensorflow_in_one_process() -> None:
    _run(USE_METAINSPECT + USE_TENSORFLOW)


def test_tensorflow_then_metainspect_in_one_process() -> None:
    _run(USE_TENSORFLOW + USE_METAINSPECT)


@pytest.mark.parametrize("sample", ["mlp", "control_flow", "functions"])
def test_import_meta_graph_accepts_reserialized_graph(tmp_path: Path, sample: str) -> None:
    import tensorflow as tf

    from metainspect.graph.model import load_model

    model = load_model(next((SAMPLES / sample).glob("*.meta")))
    out = tmp_path / "copy.meta"
    out.write_bytes(model.meta_graph.SerializeToString())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(out), clear_devices=True)
    imported = {op.name for op in graph.get_operations()}
    ours = {n.name for n in model.nodes()}
    assert ours <= imported
    # without a SaverDef, import_meta_graph builds a fresh Saver: its ops are the only extras
    extra = imported - ours
    assert all(name.startswith("save/") for name in extra)
    assert not extra or not model.meta_graph.HasField("saver_def")


def test_tensorflow_reads_our_checkpoints_like_we_do() -> None:
    import numpy as np
    import tensorflow as tf

    from metainspect import open_checkpoint

    for prefix_dir in ("mlp", "ckpt_partitioned", "ckpt_tf2"):
        directory = SAMPLES / prefix_dir
        if not directory.is_dir():
            continue
        reader = tf.train.load_checkpoint(str(directory))
        with open_checkpoint(directory) as ckpt:
            assert sorted(ckpt.keys()) == sorted(reader.get_variable_to_shape_map())
            for key in ckpt.keys():
                ours = ckpt.get(key)
                theirs = np.asarray(reader.get_tensor(key))
                if ours.dtype == object:
                    assert ours.tolist() == theirs.tolist(), key
                else:
                    assert ours.tobytes() == theirs.tobytes() and ours.shape == theirs.shape, key


@pytest.mark.parametrize("graph", sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*.meta")))
def test_output_dtypes_and_arity_match_tensorflow(graph: str) -> None:
    """Every node's outputs as metainspect.graph.outputs tells them == TF's imported ops' outputs."""
    import tensorflow as tf

    from metainspect.graph.model import load_model
    from metainspect.graph.outputs import outputs_of

    model = load_model(SAMPLES / graph)
    with tf.Graph().as_default() as g:
        tf.compat.v1.train.import_meta_graph(str(SAMPLES / graph), clear_devices=True)
        # without a saver_def TF adds a Saver of its own; only the file's nodes are compared
        ops = [op for op in g.get_operations() if model.node(op.name) is not None]
        assert len(ops) == len(model.nodes())
        for op in ops:
            ours = outputs_of(model, op.name)
            assert ours is not None, op.name
            assert [o.dtype for o in ours] == [t.dtype.base_dtype.name for t in op.outputs], op.name
            for spec, tensor in zip(ours, op.outputs):
                if spec.shape is not None and tensor.shape.rank is not None:
                    assert spec.shape == tensor.shape.as_list(), spec.tensor
