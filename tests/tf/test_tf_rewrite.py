"""TensorFlow judges ``rewrite``: it reads every rewritten checkpoint bit for bit, restores slimmed,
renamed and cast checkpoints, and writes multi-block and multi-shard bundles our copy reproduces.

Run in the TF stage: ``.venv-tf/bin/python -m pytest -m tf tests/test_tf_rewrite.py``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from metainspect.checkpoint import open_checkpoint
from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

from helpers.paths import SAMPLES

pytestmark = pytest.mark.tf

MLP = SAMPLES / "mlp" / "model.ckpt-3"
X = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.0, -0.5, 3.0]], np.float32)


def _sources() -> list[str]:
    prefixes = sorted({p[: -len(".index")] for p in glob.glob(str(SAMPLES / "**" / "*.index"), recursive=True)})
    return prefixes + [str(SAMPLES / "ckpt_v1" / "model.ckpt"), str(SAMPLES / "ckpt_v1_sharded")]


@pytest.fixture(scope="module")
def tf() -> Any:
    """TensorFlow, imported by the tests only (the default run deselects them before they start)."""
    import tensorflow

    return tensorflow


def _tf_values(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every tensor as TensorFlow reads it (variants, which have no numpy form, left out).

    Strings through ``RestoreV2``: ``get_tensor`` gives numpy ``S`` arrays, which drop trailing NULs.
    """
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    dtypes = reader.get_variable_to_dtype_map()
    out = {}
    for name in reader.get_variable_to_shape_map():
        if dtypes[name] == tf.string:
            out[name] = tf.raw_ops.RestoreV2(prefix=str(prefix), tensor_names=[name], shape_and_slices=[""],
                                             dtypes=[tf.string])[0].numpy()
        elif dtypes[name] != tf.variant:
            out[name] = np.asarray(reader.get_tensor(name))
    return out


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=object if isinstance(a, bytes) else None), np.asarray(b)
    if a.dtype == object or b.dtype == object:
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _same_files(ours: str, theirs: str) -> None:
    assert Path(ours + ".index").read_bytes() == Path(theirs + ".index").read_bytes()
    mine = sorted(glob.glob(glob.escape(ours) + ".data-*"))
    original = sorted(glob.glob(glob.escape(theirs) + ".data-*"))
    assert [os.path.basename(f)[len(os.path.basename(ours)):] for f in mine] == \
        [os.path.basename(f)[len(os.path.basename(theirs)):] for f in original]
    for a, b in zip(mine, original):
        assert Path(a).read_bytes() == Path(b).read_bytes()


@pytest.mark.parametrize("source", _sources(), ids=lambda p: os.path.relpath(p, SAMPLES))
def test_tensorflow_reads_every_rewritten_sample_bit_identical(tf: Any, source: str, tmp_path: Path) -> None:
    out = str(tmp_path / "copy")
    plan = rewrite_checkpoint(source, out)
    theirs = _tf_values(out)
    with open_checkpoint(source) as original:  # TF cannot read V1 partitions with get_tensor; we can
        expected = {k: original.get(k) for k in original.keys() if original.dtype(k) != "variant"}
    assert theirs.keys() == expected.keys()
    for name, value in expected.items():
        assert _identical(theirs[name], value), name
    if plan.source_format == "v2":
        _same_files(out, plan.source)


def test_operations_give_checkpoints_tensorflow_reads(tf: Any, tmp_path: Path) -> None:
    options = RewriteOptions(renames=("re:^dense(\\d)=layer\\1",), drop_optimizer=True, cast=("float32", "bfloat16"),
                             shard_size=64)
    plan = rewrite_checkpoint(str(MLP), str(tmp_path / "out"), options)
    assert plan.output_shards > 1
    theirs = _tf_values(tmp_path / "out")
    original = _tf_values(MLP)
    assert sorted(theirs) == ["global_step", "layer1/bias", "layer1/kernel", "layer2/bias", "layer2/kernel"]
    assert theirs["layer1/kernel"].dtype == tf.bfloat16.as_numpy_dtype
    for name in ("bias", "kernel"):
        for layer in (1, 2):
            expected = tf.cast(original[f"dense{layer}/{name}"], tf.bfloat16).numpy()
            assert _identical(theirs[f"layer{layer}/{name}"], expected)  # TF's rounding, bit for bit
    assert theirs["global_step"] == original["global_step"]


def test_multi_block_index_and_an_oversized_key_are_reproduced(tf: Any, tmp_path: Path) -> None:
    """TF's table builder: 256 KiB blocks, a key+value of 512 KiB or more in a block of its own."""
    names = [f"scope_{i // 100:03d}/layer_{i % 100:02d}/some/rather/long/variable/name/{i:06d}" for i in range(9000)]
    names.append("huge/" + "n" * (600 << 10))
    values = [tf.constant(np.full((i % 5,), i, np.int32)) for i in range(len(names))]
    prefix = str(tmp_path / "many")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=values)
    assert os.path.getsize(prefix + ".index") > 3 * (256 << 10)
    rewrite_checkpoint(prefix, str(tmp_path / "copy"))
    _same_files(str(tmp_path / "copy"), prefix)


def test_sharded_and_sliced_tf2_checkpoint_is_reproduced(tf: Any, tmp_path: Path) -> None:
    module = tf.Module()
    module.a = tf.Variable(np.arange(64, dtype=np.float32).reshape(16, 4))
    module.b = tf.Variable(np.arange(100, dtype=np.float64))
    module.c = tf.Variable([b"x", b"yy"])
    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=200)
    prefix = tf.train.Checkpoint(m=module).write(
        str(tmp_path / "ckpt"), options=tf.train.CheckpointOptions(experimental_sharding_callback=policy))
    assert len(glob.glob(prefix + ".data-*")) > 2
    with open_checkpoint(prefix) as ckpt:
        assert ckpt.info("m/b/.ATTRIBUTES/VARIABLE_VALUE").partitioned
    rewrite_checkpoint(prefix, str(tmp_path / "copy"))
    _same_files(str(tmp_path / "copy"), prefix)


def _mlp_outputs(meta: Path, checkpoint: str, var_names: list[str] | None, scope: str = "") -> np.ndarray:
    """``probs`` of the MLP graph restored from ``checkpoint`` (a Saver over ``var_names`` if given)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session() as sess:
        saver = v1.train.import_meta_graph(str(meta), clear_devices=True)
        if var_names is not None:
            by_name = {v.op.name: v for v in v1.global_variables()}
            saver = v1.train.Saver(var_list={name: by_name[name] for name in var_names})
        saver.restore(sess, checkpoint)
        return sess.run(graph.get_tensor_by_name(f"{scope}probs:0"), {f"{scope}x:0": X})


def test_drop_optimizer_checkpoint_restores_for_inference(tf: Any, tmp_path: Path) -> None:
    out = str(tmp_path / "slim")
    plan = rewrite_checkpoint(str(MLP), out, RewriteOptions(drop_optimizer=True))
    slots = sum(t.nbytes for t in plan.tensors if t.role == "optimizer")
    full_size = os.path.getsize(f"{MLP}.data-00000-of-00001")
    assert os.path.getsize(out + ".data-00000-of-00001") == full_size - slots
    model_vars = sorted(tf.train.load_checkpoint(out).get_variable_to_shape_map())
    assert model_vars == ["dense1/bias", "dense1/kernel", "dense2/bias", "dense2/kernel", "global_step"]
    meta = SAMPLES / "mlp" / "model.ckpt-3.meta"
    np.testing.assert_array_equal(_mlp_outputs(meta, out, model_vars), _mlp_outputs(meta, str(MLP), None))
    with pytest.raises(tf.errors.NotFoundError):  # the training graph's own saver wants the slots
        _mlp_outputs(meta, out, None)


def test_renamed_checkpoint_restores_into_the_renamed_graph(tf: Any, tmp_path: Path) -> None:
    """check/renamed_scope: the graph says net/, the checkpoint model/; TF's restore fails until renamed."""
    directory = SAMPLES / "check" / "renamed_scope"
    meta, source = directory / "model.meta", str(directory / "model.ckpt")
    with pytest.raises(tf.errors.NotFoundError):
        _mlp_outputs(meta, source, None, "net/")
    out = str(tmp_path / "renamed")
    rewrite_checkpoint(source, out, RewriteOptions(renames=("model=net",)))
    probs = _mlp_outputs(meta, out, None, "net/")
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:
        v1.train.import_meta_graph(str(meta), clear_devices=True).restore(sess, out)
        restored = {v.op.name: sess.run(v) for v in v1.global_variables()}
    original = _tf_values(source)
    assert all(name.startswith("model/") for name in original)
    assert restored.keys() == {"net/" + k[len("model/"):] for k in original}
    for name, value in original.items():
        assert _identical(restored["net/" + name[len("model/"):]], value)
    assert probs.shape == (2, 3)


def test_cast_checkpoint_loads_with_the_new_dtype(tf: Any, tmp_path: Path) -> None:
    out = str(tmp_path / "half")
    rewrite_checkpoint(str(MLP), out, RewriteOptions(cast=("float32", "float16"), drop_optimizer=True))
    reader = tf.train.load_checkpoint(out)
    assert reader.get_variable_to_dtype_map()["dense1/kernel"] == tf.float16
    assert reader.get_variable_to_dtype_map()["global_step"] == tf.int64
    expected = tf.cast(tf.train.load_checkpoint(str(MLP)).get_tensor("dense1/kernel"), tf.float16).numpy()
    assert _identical(reader.get_tensor("dense1/kernel"), expected)
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:  # a float16 variable restores from it
        kernel = v1.get_variable("dense1/kernel", [4, 8], tf.float16)
        v1.train.Saver([kernel]).restore(sess, out)
        assert _identical(sess.run(kernel), expected)


def _slot_model(tf: Any) -> Any:
    """An object shaped like sample ckpt_tf2_slots' model (values come from the checkpoint)."""
    model = tf.Module()
    model.w = tf.Variable(tf.zeros([3, 2]))
    model.b = tf.Variable(tf.zeros([2]))
    return model


@pytest.mark.parametrize("options", [RewriteOptions(drop_optimizer=True), RewriteOptions(renames=("model=net",)),
                                     RewriteOptions(drop_optimizer=True, renames=("re:^model/=weights/",))],
                         ids=["drop-optimizer", "rename", "both"])
def test_tf2_checkpoints_restore_through_their_rewritten_object_graph(tf: Any, options: RewriteOptions, tmp_path: Path) -> None:
    source = str(SAMPLES / "ckpt_tf2_slots" / "ckpt-1")
    out = str(tmp_path / "ckpt")
    rewrite_checkpoint(source, out, options)
    expected = _slot_model(tf)
    tf.train.Checkpoint(model=expected).restore(source).expect_partial()
    restored = _slot_model(tf)
    status = tf.train.Checkpoint(model=restored).restore(out)
    status.assert_existing_objects_matched()
    np.testing.assert_array_equal(restored.w.numpy(), expected.w.numpy())
    np.testing.assert_array_equal(restored.b.numpy(), expected.b.numpy())
    assert not np.all(restored.w.numpy() == 0)
    if options.drop_optimizer:  # nothing is left that the model does not consume
        status.assert_consumed()
