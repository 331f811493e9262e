"""Samples for ``metainspect convert`` and ``metainspect.tf_compat``: checkpoints named and laid
out like Google's BERT and Mesh TensorFlow's T5 releases, small enough to commit.

Registered in ``generate.py``'s sample list (run it with ``--only convert/bert`` or
``--only convert/t5``); needs TensorFlow 2.21 like the rest of the generator. Both models are
tiny but complete: Hugging Face transformers 4.x's own ``load_tf_weights_in_bert`` (with
``BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
intermediate_size=16, max_position_embeddings=16)``) and ``load_tf_weights_in_t5`` (with
``T5Config(vocab_size=32, d_model=8, d_kv=4, num_heads=2, d_ff=16, num_layers=2,
relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", tie_word_embeddings=False)``)
load every weight of them. The configurations are written beside the checkpoints as
``config.json``.

- ``convert/bert/``: ``bert_model.ckpt`` (one data shard), float32 weights under Google's
  names (``bert/encoder/layer_0/attention/self/query/kernel``…), the pretraining heads
  (``cls/predictions``, ``cls/seq_relationship``), ``AdamWeightDecayOptimizer``'s ``…/adam_m``
  and ``…/adam_v`` for every weight, ``global_step``.
- ``convert/t5/``: ``model.ckpt-10``, T5 v1.1 naming (``shared/embedding``,
  ``encoder/block_000/layer_000/SelfAttention/q``, ``…/rms_norm/scale``, ``decoder/logits/kernel``)
  with bfloat16 weights, float32 Adafactor slots (``…_slot_vr`` and ``…_slot_vc`` for matrices,
  ``…_slot_v`` for vectors) and ``global_step``, saved by a sharded ``Saver`` from three
  devices: encoder, decoder, and ``global_step`` alone (an 8-byte data shard).

``golden.json`` holds what TensorFlow reports (``generate.checkpoint_golden``: variables,
dtypes, SHA-256 of every value, shards) plus, under ``load_variable``, the Python type and
numpy dtype of what ``tf.train.load_variable`` returns for each variable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import tensorflow as tf

v1 = tf.compat.v1
JSON = dict[str, Any]

BERT_CONFIG = {"vocab_size": 32, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
               "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2}
T5_CONFIG = {"vocab_size": 32, "d_model": 8, "d_kv": 4, "num_heads": 2, "d_ff": 16, "num_layers": 2,
             "num_decoder_layers": 2, "relative_attention_num_buckets": 8, "feed_forward_proj": "gated-gelu",
             "tie_word_embeddings": False}


def weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Deterministic normal(0, 0.02) float32 values, as an initializer would give."""
    return (np.random.default_rng(seed).standard_normal(shape) * 0.02).astype(np.float32)


def variable(name: str, value: np.ndarray, dtype: tf.DType) -> None:
    v1.get_variable(name, value.shape, dtype, initializer=v1.constant_initializer(value), use_resource=False)


def bert_weights() -> dict[str, tuple[int, ...]]:
    """Google BERT's pretraining checkpoint names and shapes for :data:`BERT_CONFIG`."""
    c = BERT_CONFIG
    h, inter = c["hidden_size"], c["intermediate_size"]
    shapes: dict[str, tuple[int, ...]] = {
        "bert/embeddings/word_embeddings": (c["vocab_size"], h),
        "bert/embeddings/token_type_embeddings": (c["type_vocab_size"], h),
        "bert/embeddings/position_embeddings": (c["max_position_embeddings"], h),
        "bert/embeddings/LayerNorm/beta": (h,), "bert/embeddings/LayerNorm/gamma": (h,),
    }
    for i in range(c["num_hidden_layers"]):
        layer = f"bert/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            shapes[f"{layer}/attention/self/{part}/kernel"] = (h, h)
            shapes[f"{layer}/attention/self/{part}/bias"] = (h,)
        shapes[f"{layer}/attention/output/dense/kernel"] = (h, h)
        shapes[f"{layer}/attention/output/dense/bias"] = (h,)
        shapes[f"{layer}/attention/output/LayerNorm/beta"] = (h,)
        shapes[f"{layer}/attention/output/LayerNorm/gamma"] = (h,)
        shapes[f"{layer}/intermediate/dense/kernel"] = (h, inter)
        shapes[f"{layer}/intermediate/dense/bias"] = (inter,)
        shapes[f"{layer}/output/dense/kernel"] = (inter, h)
        shapes[f"{layer}/output/dense/bias"] = (h,)
        shapes[f"{layer}/output/LayerNorm/beta"] = (h,)
        shapes[f"{layer}/output/LayerNorm/gamma"] = (h,)
    shapes.update({
        "bert/pooler/dense/kernel": (h, h), "bert/pooler/dense/bias": (h,),
        "cls/predictions/transform/dense/kernel": (h, h), "cls/predictions/transform/dense/bias": (h,),
        "cls/predictions/transform/LayerNorm/beta": (h,), "cls/predictions/transform/LayerNorm/gamma": (h,),
        "cls/predictions/output_bias": (c["vocab_size"],),
        "cls/seq_relationship/output_weights": (2, h), "cls/seq_relationship/output_bias": (2,),
    })
    return shapes


def sample_bert() -> None:
    from generate import chdir, fresh_dir, session_config  # generate.py imports this module first

    out = fresh_dir("convert/bert")
    with tf.Graph().as_default():
        for seed, (name, shape) in enumerate(bert_weights().items()):
            variable(name, weights(shape, seed), tf.float32)
            variable(f"{name}/adam_m", weights(shape, 1000 + seed) / 10, tf.float32)
            variable(f"{name}/adam_v", np.abs(weights(shape, 2000 + seed)) / 100, tf.float32)
        variable("global_step", np.array(1000, dtype=np.int64), tf.int64)
        saver = v1.train.Saver()
        with v1.Session(config=session_config()) as sess, chdir(out):
            sess.run(v1.global_variables_initializer())
            saver.save(sess, "bert_model.ckpt", write_meta_graph=False)
    _finish(out, "bert_model.ckpt", BERT_CONFIG)


def t5_weights() -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Mesh TensorFlow T5 v1.1 names and shapes for :data:`T5_CONFIG`: (encoder + shared, decoder)."""
    c = T5_CONFIG
    d, inner, ff = c["d_model"], c["d_kv"] * c["num_heads"], c["d_ff"]

    def attention(prefix: str, relative: bool) -> dict[str, tuple[int, ...]]:
        shapes = {f"{prefix}/{w}": (d, inner) for w in ("q", "k", "v")}
        shapes[f"{prefix}/o"] = (inner, d)
        if relative:
            shapes[f"{prefix}/relative_attention_bias"] = (c["num_heads"], c["relative_attention_num_buckets"])
        return shapes

    def feed_forward(prefix: str) -> dict[str, tuple[int, ...]]:
        return {f"{prefix}/DenseReluDense/wi_0/kernel": (d, ff), f"{prefix}/DenseReluDense/wi_1/kernel": (d, ff),
                f"{prefix}/DenseReluDense/wo/kernel": (ff, d), f"{prefix}/rms_norm/scale": (d,)}

    encoder: dict[str, tuple[int, ...]] = {"shared/embedding": (c["vocab_size"], d)}
    decoder: dict[str, tuple[int, ...]] = {}
    for i in range(c["num_layers"]):
        block = f"encoder/block_{i:03d}"
        encoder.update(attention(f"{block}/layer_000/SelfAttention", i == 0))
        encoder[f"{block}/layer_000/rms_norm/scale"] = (d,)
        encoder.update(feed_forward(f"{block}/layer_001"))
    encoder["encoder/rms_norm/scale"] = (d,)
    for i in range(c["num_decoder_layers"]):
        block = f"decoder/block_{i:03d}"
        decoder.update(attention(f"{block}/layer_000/SelfAttention", i == 0))
        decoder[f"{block}/layer_000/rms_norm/scale"] = (d,)
        decoder.update(attention(f"{block}/layer_001/EncDecAttention", False))
        decoder[f"{block}/layer_001/rms_norm/scale"] = (d,)
        decoder.update(feed_forward(f"{block}/layer_002"))
    decoder["decoder/rms_norm/scale"] = (d,)
    decoder["decoder/logits/kernel"] = (d, c["vocab_size"])
    return encoder, decoder


def adafactor_slots(name: str, shape: tuple[int, ...], seed: int) -> None:
    """Adafactor's second-moment slots: factored (row and column) for matrices, full for vectors."""
    if len(shape) >= 2:
        variable(f"{name}_slot_vr", np.abs(weights(shape[:-1], seed)), tf.float32)
        variable(f"{name}_slot_vc", np.abs(weights(shape[:-2] + shape[-1:], seed + 1)), tf.float32)
    else:
        variable(f"{name}_slot_v", np.abs(weights(shape, seed)), tf.float32)


def sample_t5() -> None:
    from generate import chdir, fresh_dir, session_config

    out = fresh_dir("convert/t5")
    seed = 0
    with tf.Graph().as_default():
        for device, group in enumerate(t5_weights()):
            with tf.device(f"/device:CPU:{device}"):
                for name, shape in group.items():
                    variable(name, weights(shape, seed).astype(ml_dtypes.bfloat16), tf.bfloat16)
                    adafactor_slots(name, shape, 5000 + 2 * seed)
                    seed += 1
        with tf.device("/device:CPU:2"):
            variable("global_step", np.array(10, dtype=np.int64), tf.int64)
        saver = v1.train.Saver(sharded=True)
        with v1.Session(config=session_config()) as sess, chdir(out):
            sess.run(v1.global_variables_initializer())
            saver.save(sess, "model.ckpt", global_step=10, write_meta_graph=False)
    _finish(out, "model.ckpt-10", T5_CONFIG)


def _finish(out: Path, prefix: str, config: JSON) -> None:
    """Golden JSON from TensorFlow's own reader, and the model configuration."""
    from generate import checkpoint_golden, write_json

    golden = checkpoint_golden(out, prefix)
    golden["load_variable"] = load_variable_types(str(out / prefix))
    write_json(out / "golden.json", golden)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_variable_types(prefix: str) -> JSON:
    """What ``tf.train.load_variable`` returns for each variable: Python type and numpy dtype."""
    result: JSON = {}
    for name, _ in tf.train.list_variables(prefix):
        value: Any = tf.train.load_variable(prefix, name)
        result[name] = [type(value).__module__ + "." + type(value).__name__, str(np.asarray(value).dtype)]
    return result


SAMPLES: dict[str, Callable[[], None]] = {"convert/bert": sample_bert, "convert/t5": sample_t5}
