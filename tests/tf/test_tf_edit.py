"""edit, judged by TensorFlow: edited graphs import, restore bit-identical values and serve."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import run_cli
from helpers.paths import SAMPLES

pytestmark = pytest.mark.tf

MLP_META = SAMPLES / "mlp" / "model.ckpt-3.meta"
MLP_CKPT = str(SAMPLES / "mlp" / "model.ckpt-3")
PINNED = SAMPLES / "check" / "device_pinned"
X = np.arange(8, dtype=np.float32).reshape(2, 4) / 8


def edit(*args: str) -> None:
    result = run_cli("edit", *args)
    assert result.code == 0, result.stderr


def restore(meta: Path | str, ckpt: str, fetch: str | None = None,
            feed: dict[str, object] | None = None) -> tuple[dict[str, bytes], object]:
    """import_meta_graph + Saver.restore; each variable's bytes compared with the checkpoint's own."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(str(meta))
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, ckpt)
            reader = tf.train.load_checkpoint(ckpt)
            values = {}
            for var in tf.compat.v1.global_variables():
                value = sess.run(var)
                expected = reader.get_tensor(var.op.name)
                assert value.dtype == expected.dtype and value.tobytes() == expected.tobytes(), var.op.name
                values[var.op.name] = value.tobytes()
            fetched = sess.run(fetch, feed) if fetch else None
    return values, fetched


def original_probs() -> object:
    return restore(MLP_META, MLP_CKPT, fetch="probs:0", feed={"x:0": X, "keep_prob:0": 1.0})[1]


def test_clear_devices_makes_a_pinned_graph_restorable(tmp_path: Path) -> None:
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match="Cannot assign a device"):
        restore(PINNED / "model.meta", str(PINNED / "model.ckpt"))
    out = tmp_path / "model.meta"
    edit(str(PINNED / "model.meta"), "-o", str(out), "--clear-devices")
    values, _ = restore(out, str(PINNED / "model.ckpt"))
    assert list(values) == ["w"]


def test_strip_training_restores_the_model_from_the_original_checkpoint(tmp_path: Path) -> None:
    import tensorflow as tf

    out = tmp_path / "serve.meta"
    edit(str(MLP_META), "-o", str(out), "--strip-training")
    values, probs = restore(out, MLP_CKPT, fetch="probs:0", feed={"x:0": X, "keep_prob:0": 1.0})
    assert sorted(values) == ["dense1/bias", "dense1/kernel", "dense2/bias", "dense2/kernel", "global_step"]
    assert np.array_equal(probs, original_probs())
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(str(out))
        assert not [op for op in graph.get_operations() if op.type == "ApplyAdam" or "gradients" in op.name]
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, MLP_CKPT)
            saved = saver.save(sess, str(tmp_path / "again"))
    assert sorted(name for name, _ in tf.train.list_variables(saved)) == sorted(values)


def test_strip_training_graph_restores_a_checkpoint_rewritten_without_the_optimizer(tmp_path: Path) -> None:
    out = tmp_path / "serve.meta"
    edit(str(MLP_META), "-o", str(out), "--strip-training")
    result = run_cli("rewrite", MLP_CKPT, "-o", str(tmp_path / "lean"), "--drop-optimizer")
    assert result.code == 0, result.stderr
    values, _ = restore(out, str(tmp_path / "lean"))
    assert len(values) == 5


def test_prune_to_keeps_the_graph_restorable(tmp_path: Path) -> None:
    import tensorflow as tf

    out = tmp_path / "probs.meta"
    edit(str(MLP_META), "-o", str(out), "--prune-to", "probs")
    values, probs = restore(out, MLP_CKPT, fetch="probs:0", feed={"x:0": X, "keep_prob:0": 1.0})
    assert len(values) == 15
    assert np.array_equal(probs, original_probs())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(out))
        names = {op.name for op in graph.get_operations()}
    assert "labels" not in names and "loss" not in names


def test_set_shape_is_what_tensorflow_enforces(tmp_path: Path) -> None:
    import tensorflow as tf

    out = tmp_path / "fixed.meta"
    edit(str(MLP_META), "-o", str(out), "--set-shape", "x=2,4")
    _, probs = restore(out, MLP_CKPT, fetch="probs:0", feed={"x:0": X, "keep_prob:0": 1.0})
    assert np.array_equal(probs, original_probs())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(out))
        assert graph.get_tensor_by_name("x:0").shape.as_list() == [2, 4]
        assert graph.get_tensor_by_name("probs:0").shape.as_list() == [2, 3]
        with tf.compat.v1.Session(graph=graph) as sess, pytest.raises(ValueError, match="shape"):
            sess.run("probs:0", {"x:0": np.zeros((3, 4), np.float32)})


def load_saved_model(directory: Path, tags: list[str], signature: str, feed: dict[str, object]) -> dict[str, object]:
    """tf.compat.v1 loader: load, then run one signature by its keys."""
    import tensorflow as tf

    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as sess:
        meta_graph = tf.compat.v1.saved_model.loader.load(sess, tags, str(directory))
        sig = meta_graph.signature_def[signature]
        assert tf.compat.v1.saved_model.is_valid_signature(sig)
        return sess.run({k: v.name for k, v in sig.outputs.items()}, {sig.inputs[k].name: v for k, v in feed.items()})


def test_added_signatures_serve_from_the_edited_saved_model(tmp_path: Path) -> None:
    source = SAMPLES / "savedmodel_tf1"
    out = tmp_path / "export"
    edit(str(source), "-o", str(out), "--remove-signature", "serving_default", "--add-signature", "serving_default",
         "--input", "features=x", "--output", "p=probs:0", "--output", "label=prediction")
    served = load_saved_model(out, ["serve"], "serving_default", {"features": X})
    original = load_saved_model(source, ["serve"], "serving_default", {"x": X})
    assert np.array_equal(served["p"], original["probs"]) and np.array_equal(served["label"], original["prediction"])
    assert (out / "variables" / "variables.index").read_bytes() == (source / "variables" / "variables.index").read_bytes()


def test_classify_signature_added_by_edit_is_valid_for_serving(tmp_path: Path) -> None:
    out = tmp_path / "export"
    edit(str(SAMPLES / "savedmodel_tf1"), "-o", str(out), "--add-signature", "scores_only", "--method", "classify",
         "--input", "inputs=tf_example:0", "--output", "scores=scores:0")
    import tensorflow as tf

    example = tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=list(X[0])))})).SerializeToString()
    scores = load_saved_model(out, ["serve"], "scores_only", {"inputs": [example]})["scores"]
    assert scores.shape == (1, 3)


def test_stripped_and_renamed_saved_model_serves_the_same(tmp_path: Path) -> None:
    source = SAMPLES / "savedmodel_tf1"
    out = tmp_path / "export"
    edit(str(source), "-o", str(out), "--strip-training", "--clear-devices", "--rename", r"re:^(.*)$=m/\1")
    served = load_saved_model(out, ["serve"], "serving_default", {"x": X})
    original = load_saved_model(source, ["serve"], "serving_default", {"x": X})
    assert served.keys() == original.keys()
    assert all(np.array_equal(served[k], original[k]) for k in served)
    import tensorflow as tf

    with tf.compat.v1.Session(graph=tf.Graph()) as sess:  # the train meta graph was left as it was
        train = tf.compat.v1.saved_model.loader.load(sess, ["train"], str(out))
    assert "train" in train.signature_def and "saved_model_train_op" in train.collection_def


def test_edited_tf2_saved_model_loads_in_tf2_and_tf1(tmp_path: Path) -> None:
    import tensorflow as tf

    source = SAMPLES / "savedmodel_tf2"
    out = tmp_path / "export"
    edit(str(source), "-o", str(out), "--clear-devices")
    assert not (out / "fingerprint.pb").exists()
    x = np.ones((2, 3), np.float32)
    loaded = tf.saved_model.load(str(out))
    original = tf.saved_model.load(str(source))
    got = loaded.signatures["serving_default"](x=tf.constant(x))
    want = original.signatures["serving_default"](x=tf.constant(x))
    assert all(np.array_equal(got[k].numpy(), want[k].numpy()) for k in want)
    served = load_saved_model(out, ["serve"], "serving_default", {"x": x})
    assert all(np.array_equal(served[k], want[k].numpy()) for k in want)


def _renamed_key(name: str) -> str:
    return "net/dense1" + name[len("dense1"):] if name == "dense1" or name.startswith("dense1/") else name


def test_renamed_graph_restores_a_checkpoint_tensorflow_wrote_with_renamed_keys(tmp_path: Path) -> None:
    import tensorflow as tf

    out = tmp_path / "renamed.meta"
    edit(str(MLP_META), "-o", str(out), "--rename", "dense1=net/dense1")
    reader = tf.train.load_checkpoint(MLP_CKPT)
    names = sorted(reader.get_variable_to_shape_map())
    prefix = str(tmp_path / "renamed_ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=[_renamed_key(n) for n in names],
                      shape_and_slices=[""] * len(names), tensors=[tf.constant(reader.get_tensor(n)) for n in names])
    inverse = {_renamed_key(n): n for n in names}
    values, probs = restore(out, prefix, fetch="probs:0", feed={"x:0": X, "keep_prob:0": 1.0})
    assert "net/dense1/kernel" in values and "net/dense1/kernel/Adam" in values
    for name, data in values.items():
        assert data == reader.get_tensor(inverse[name]).tobytes(), name
    assert np.array_equal(probs, original_probs())
    _train_one_step_and_save(out, prefix, tmp_path / "after")


def _train_one_step_and_save(meta: Path, ckpt: str, save_to: Path) -> None:
    """The renamed graph still trains (gradients, Adam) and saves under the renamed keys."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(str(meta))
        with tf.compat.v1.Session(graph=graph) as sess:
            saver.restore(sess, ckpt)
            sess.run("train", {"x:0": X, "labels:0": np.array([0, 1], np.int64)})
            saved = saver.save(sess, str(save_to))
    keys = {name for name, _ in tf.train.list_variables(saved)}
    assert "net/dense1/kernel" in keys and "dense1/kernel" not in keys and "dense2/kernel" in keys
    assert tf.train.load_checkpoint(saved).get_tensor("global_step") == 4


def test_edit_rename_plus_rewrite_rename_restore_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "renamed.meta"
    edit(str(MLP_META), "-o", str(out), "--rename", "dense1=net/dense1")
    result = run_cli("rewrite", MLP_CKPT, "-o", str(tmp_path / "renamed"), "--rename", "dense1=net/dense1")
    assert result.code == 0, result.stderr
    import tensorflow as tf

    reader = tf.train.load_checkpoint(MLP_CKPT)
    inverse = {_renamed_key(n): n for n in reader.get_variable_to_shape_map()}
    values, probs = restore(out, str(tmp_path / "renamed"), fetch="probs:0", feed={"x:0": X, "keep_prob:0": 1.0})
    assert len(values) == 15
    for name, data in values.items():
        assert data == reader.get_tensor(inverse[name]).tobytes(), name
    assert np.array_equal(probs, original_probs())


def test_renamed_control_flow_graph_runs(tmp_path: Path) -> None:
    import tensorflow as tf

    source = SAMPLES / "control_flow" / "control_flow.meta"
    out = tmp_path / "cf.meta"
    edit(str(source), "-o", str(out), "--rename", "loop=L", "--rename", "cond=C", "--clear-devices")
    results = []
    for meta in (source, out):
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
            assert len(tf.compat.v1.get_collection("while_context")) == 1
            with tf.compat.v1.Session(graph=graph) as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                results.append([sess.run("result:0", {"x:0": v}) for v in (-1.0, 3.0)])
    assert results[0] == results[1]


def test_check_passes_on_edited_samples(tmp_path: Path) -> None:
    from metainspect.check import run_checks

    pinned = tmp_path / "pinned.meta"
    edit(str(PINNED / "model.meta"), "-o", str(pinned), "--clear-devices")
    before = run_checks(str(PINNED / "model.meta"), str(PINNED / "model.ckpt"))
    after = run_checks(str(pinned), str(PINNED / "model.ckpt"))
    assert [f for f in before.findings if "device" in f.id]
    assert not [f for f in after.findings if "device" in f.id] and after.ready()
    for option in (["--strip-training"], ["--prune-to", "probs"], ["--set-shape", "x=2,4"]):
        out = tmp_path / "edited.meta"
        edit(str(MLP_META), "-o", str(out), *option)
        report = run_checks(str(out), MLP_CKPT)
        assert report.errors == 0 and report.warnings == 0, (option, [f.to_json() for f in report.findings])
        out.unlink()


def test_in_place_saved_model_edit_loads(tmp_path: Path) -> None:
    directory = tmp_path / "sm"
    shutil.copytree(SAMPLES / "savedmodel_tf1", directory)
    edit(str(directory), "--in-place", "--strip-training")
    assert (directory / "saved_model.pb.bak").exists()
    served = load_saved_model(directory, ["serve"], "serving_default", {"x": X})
    assert served["probs"].shape == (2, 3)


@pytest.mark.parametrize("sample", ["ckpt_partitioned", "ckpt_v1", "ckpt_tf1_sharded"])
def test_rename_with_rewrite_on_partitioned_v1_and_sharded_savers(tmp_path: Path, sample: str) -> None:
    """Partition full names and slice keys, SaveSlices savers and sharded savers follow the rename."""
    import tensorflow as tf

    meta = next((SAMPLES / sample).glob("*.meta"))
    prefix = str(meta)[: -len(".meta")]
    rule = r"re:^(.*)$=top/\1"
    edit(str(meta), "-o", str(tmp_path / "renamed.meta"), "--rename", rule)
    result = run_cli("rewrite", prefix, "-o", str(tmp_path / "renamed"), "--rename", rule)
    assert result.code == 0, result.stderr
    restored = []
    for graph_file, checkpoint in ((meta, prefix), (tmp_path / "renamed.meta", str(tmp_path / "renamed"))):
        graph = tf.Graph()
        with graph.as_default():
            saver = tf.compat.v1.train.import_meta_graph(str(graph_file), clear_devices=True)
            with tf.compat.v1.Session(graph=graph) as sess:
                saver.restore(sess, checkpoint)
                restored.append({v.op.name: sess.run(v) for v in tf.compat.v1.global_variables()})
    original, renamed = restored
    assert sorted(renamed) == sorted(f"top/{name}" for name in original)
    for name, value in original.items():
        assert renamed[f"top/{name}"].dtype == value.dtype and np.array_equal(renamed[f"top/{name}"], value), name


RESOURCE_MODEL = '''
import numpy as np, tensorflow as tf
tf.compat.v1.disable_eager_execution()
tf.compat.v1.set_random_seed(1)
x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
y = tf.compat.v1.placeholder(tf.float32, [None, 2], name="y")
w = tf.compat.v1.get_variable("net/w", [3, 2], use_resource=True)
mean = tf.compat.v1.get_variable("net/moving_mean", [2], initializer=tf.zeros_initializer(), trainable=False,
                                 use_resource=True)
out = tf.identity(tf.matmul(x, w), name="out")
serve = tf.identity(out - mean, name="serve")
tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS,
                               mean.assign_sub(0.1 * (mean - tf.reduce_mean(out, 0))).op)
loss = tf.reduce_mean(tf.square(out - y), name="loss")
tf.compat.v1.summary.scalar("loss", loss)
step = tf.compat.v1.train.get_or_create_global_step()
with tf.control_dependencies(tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)):
    train = tf.compat.v1.train.AdamOptimizer(0.1).minimize(loss, global_step=step, name="train")
saver = tf.compat.v1.train.Saver(sharded=True)
with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train, {x: np.ones((2, 3)), y: np.ones((2, 2))})
    saver.save(sess, PREFIX)
'''


def test_strip_training_on_resource_variables_and_a_sharded_saver(tmp_path: Path) -> None:
    """TF-built here: resource variables, Adam slots, an update op, summaries, Saver(sharded=True)."""
    import subprocess
    import sys

    import tensorflow as tf

    prefix = str(tmp_path / "model.ckpt")
    proc = subprocess.run([sys.executable, "-c", f"PREFIX = {prefix!r}\n" + RESOURCE_MODEL], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "serve.meta"
    edit(prefix + ".meta", "-o", str(out), "--strip-training")
    values, served = restore(out, prefix, fetch="serve:0", feed={"x:0": np.ones((1, 3), np.float32)})
    assert sorted(values) == ["global_step", "net/moving_mean", "net/w"]
    reader = tf.train.load_checkpoint(prefix)
    expected = np.ones((1, 3), np.float32) @ reader.get_tensor("net/w") - reader.get_tensor("net/moving_mean")
    assert np.allclose(served, expected)


def test_renaming_the_graph_scope_fixes_a_checkpoint_saved_under_another_scope(tmp_path: Path) -> None:
    """check/renamed_scope: the graph says net/, the checkpoint model/; TF refuses until the graph is renamed."""
    import tensorflow as tf

    sample = SAMPLES / "check" / "renamed_scope"
    with pytest.raises(tf.errors.NotFoundError, match="net/dense1/bias not found"):
        restore(sample / "model.meta", str(sample / "model.ckpt"))
    out = tmp_path / "fixed.meta"
    edit(str(sample / "model.meta"), "-o", str(out), "--rename", "net=model")
    values, _ = restore(out, str(sample / "model.ckpt"))
    assert sorted(values) == ["model/dense1/bias", "model/dense1/kernel", "model/dense2/bias", "model/dense2/kernel"]
