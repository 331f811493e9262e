"""`check`'s restore and saver verdicts against TensorFlow's own restore (`pytest -m tf`).

Each test builds or picks a graph/checkpoint pair, asks TensorFlow 2.21 to restore it with the
graph's own saver (``import_meta_graph`` + ``Saver.restore``), and compares with the findings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metainspect.check.findings import CheckContext, Finding
from metainspect.check.restore import check_restore
from metainspect.check.saver import check_saver
from metainspect.checkpoint import open_checkpoint
from metainspect.graph.model import load_model

from helpers.paths import REAL_MODELS, SAMPLES

pytestmark = pytest.mark.tf
CHECK = SAMPLES / "check"


def tf_restore(meta: str | Path, prefix: str | Path) -> str | None:
    """None when TF restores ``prefix`` with the saver of ``meta``, else TF's error text."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
        with tf.compat.v1.Session(graph=graph) as session:
            try:
                saver.restore(session, str(prefix))
            except (tf.errors.OpError, ValueError) as exc:
                return str(exc)
    return None


def findings(meta: str | Path, prefix: str | Path) -> list[Finding]:
    model = load_model(meta)
    with open_checkpoint(prefix) as ckpt:
        ctx = CheckContext(model, ckpt)
        return check_saver(ctx) + check_restore(ctx)


def errors(found: list[Finding]) -> list[str]:
    return [f.id for f in found if f.severity == "error"]


def build(directory: Path, name: str, *, shape: list[int], dtype: str = "float32", resource: bool = False,
          write_version: int = 2, save: bool = True) -> str:
    """A one-variable graph ``v`` saved as ``directory/name`` (.meta, and a checkpoint when ``save``)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("v", shape=shape, dtype=dtype, use_resource=resource,
                                  initializer=tf.compat.v1.zeros_initializer())
        saver = tf.compat.v1.train.Saver(write_version=write_version)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            prefix = str(directory / name)
            saver.export_meta_graph(prefix + ".meta")
            if save:
                saver.save(session, prefix, write_meta_graph=False)
    return prefix


def test_the_suggested_rename_makes_tensorflow_restore(tmp_path: Path) -> None:
    from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

    meta, ckpt = CHECK / "renamed_scope" / "model.meta", CHECK / "renamed_scope" / "model.ckpt"
    assert "net/dense1/bias not found" in tf_restore(meta, ckpt)
    missing = next(f for f in findings(meta, ckpt) if f.id == "restore.missing-key")
    assert missing.remedy is not None and missing.remedy.action == "rewrite"
    # the remedy as the API runs it: rewrite_checkpoint(target, OUT, RewriteOptions(**options))
    rewrite_checkpoint(missing.remedy.target, str(tmp_path / "fixed"), RewriteOptions(**dict(missing.remedy.options)))
    assert tf_restore(meta, tmp_path / "fixed") is None
    assert errors(findings(meta, tmp_path / "fixed")) == []


def test_dtype_mismatch(tmp_path: Path) -> None:
    saved = build(tmp_path, "saved", shape=[4, 6])
    wanted = build(tmp_path, "wanted", shape=[4, 6], dtype="float64", save=False)
    assert "expected dtype double does not equal original dtype float" in tf_restore(wanted + ".meta", saved)
    assert errors(findings(wanted + ".meta", saved)) == ["restore.dtype-mismatch"]


@pytest.mark.parametrize("resource", [False, True])
def test_shape_mismatch(tmp_path: Path, resource: bool) -> None:
    """Ref variables fail the restore; resource variables silently take the checkpoint's shape."""
    saved = build(tmp_path, "saved", shape=[4, 6], resource=resource)
    wanted = build(tmp_path, "wanted", shape=[4, 8], resource=resource, save=False)
    error = tf_restore(wanted + ".meta", saved)
    assert (error is None) == resource
    (finding,) = [f for f in findings(wanted + ".meta", saved) if f.severity == "error"]
    assert finding.id == "restore.shape-mismatch"
    assert ("without an error" in finding.message) == resource


def test_v2_saver_reads_a_v1_checkpoint(tmp_path: Path) -> None:
    saved = build(tmp_path, "saved", shape=[3], write_version=1)
    wanted = build(tmp_path, "wanted", shape=[3], save=False)
    assert tf_restore(wanted + ".meta", saved) is None
    found = findings(wanted + ".meta", saved)
    assert [f.id for f in found] == ["saver.version-mismatch"] and not errors(found)


def test_name_based_saver_restores_an_object_based_checkpoint() -> None:
    meta, ckpt = CHECK / "device_pinned" / "model.meta", SAMPLES / "savedmodel_tf2" / "variables" / "variables"
    assert tf_restore(meta, ckpt) is None
    found = findings(meta, ckpt)
    assert "restore.object-based" in [f.id for f in found] and not errors(found)


def test_legacy_restore_ops_cannot_read_a_v2_checkpoint(tmp_path: Path) -> None:
    import tensorflow as tf

    if not REAL_MODELS.is_dir():
        pytest.skip("../shared/real_models not present")
    base = REAL_MODELS / "tensorflow_serving" / "bad_half_plus_two" / "00000123" / "export"
    reader = tf.train.load_checkpoint(str(base))
    names = sorted(reader.get_variable_to_shape_map())
    tf.raw_ops.SaveV2(prefix=str(tmp_path / "v2"), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[reader.get_tensor(n) for n in names])
    assert "Unsuccessful TensorSliceReader constructor" in tf_restore(f"{base}.meta", tmp_path / "v2")
    assert errors(findings(f"{base}.meta", tmp_path / "v2")) == ["saver.cannot-read-format"]
    assert tf_restore(f"{base}.meta", base) is None and errors(findings(f"{base}.meta", base)) == []


def test_tf2_object_path_fix_restores_the_savedmodel_variables() -> None:
    """The fix named for a TF2 SavedModel whose variables sit under model/ in another checkpoint."""
    import numpy as np
    import tensorflow as tf

    from metainspect.check import run_checks

    prefix = SAMPLES / "ckpt_tf2_slots" / "ckpt-1"
    report = run_checks(str(SAMPLES / "savedmodel_tf2"), str(prefix))
    missing = next(f for f in report.findings if f.id == "restore.missing-key")
    assert "tf.train.Checkpoint(model=obj)" in missing.fix
    obj = tf.saved_model.load(str(SAMPLES / "savedmodel_tf2"))
    tf.train.Checkpoint(model=obj).restore(str(prefix)).expect_partial()
    expected = tf.train.load_checkpoint(str(prefix)).get_tensor("model/w/.ATTRIBUTES/VARIABLE_VALUE")
    assert np.array_equal(obj.w.numpy(), expected)


def test_a_function_body_naming_an_absent_node_fails_to_load(tmp_path: Path) -> None:
    """TF instantiates a SavedModel's functions when it loads them: a body input naming no body node
    (or a result naming no argument) makes the load fail, and check says so as an error."""
    import tensorflow as tf

    from metainspect.check import run_checks
    from metainspect.proto.saved_model_pb2 import SavedModel

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return tf.nn.relu(x) * 2.0

    directory = tmp_path / "model"
    tf.saved_model.save(Doubler(), str(directory))
    assert tf.saved_model.load(str(directory))(tf.constant([1.0, -1.0])).numpy().tolist() == [2.0, 0.0]
    assert not [f for f in run_checks(str(directory)).findings if f.id == "graph.missing-input"]
    pb = directory / "saved_model.pb"
    saved = SavedModel.FromString(pb.read_bytes())
    body = next(f for f in saved.meta_graphs[0].graph_def.library.function
                if any(n.op == "Relu" for n in f.node_def))
    relu = next(n for n in body.node_def if n.op == "Relu")
    consumer = next(n for n in body.node_def if any(ref.startswith(f"{relu.name}:") for ref in n.input))
    consumer.input[next(i for i, ref in enumerate(consumer.input) if ref.startswith(f"{relu.name}:"))] = \
        "ghost:activations:0"
    pb.write_bytes(saved.SerializeToString())
    with pytest.raises(KeyError) as raised:  # function_def_to_graph: the input names nothing it built
        tf.saved_model.load(str(directory))
    assert "ghost" in str(raised.value)
    (finding,) = [f for f in run_checks(str(directory)).findings if f.id == "graph.missing-input"]
    assert finding.severity == "error" and finding.subject == body.signature.name
    assert "'ghost:activations:0'" in finding.message
