"""Generate the TensorFlow sample files and golden JSON used by metainspect's tests.

This script needs **TensorFlow 2.21** (``tensorflow-cpu==2.21.0``, Keras 3) and is NOT part of
the ``metainspect`` runtime package, which never imports TensorFlow.  Run it from the repo root
with a separate TF virtualenv::

    /work/tfenv/bin/python sample_meta/generate.py              # every sample
    /work/tfenv/bin/python sample_meta/generate.py --only mlp   # one sample (repeatable)
    /work/tfenv/bin/python sample_meta/generate.py --list       # sample names

Each sample is generated in its own fresh Python process so that TensorFlow's global state
(op/function uid counters, Keras name counters, control-flow v1/v2 switch, device config) is the
same whether a sample is generated alone or together with the others.  Every sample directory is
deleted and rewritten.  All ``golden*.json`` files hold only what TensorFlow itself reports (its
protos, ``tf.train.list_variables``, ``CheckpointReader``, ``import_meta_graph`` + graph queries,
``Saver.restore``); nothing in them is computed independently of TF.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
warnings.filterwarnings("ignore")

import ml_dtypes  # noqa: E402  (ships with TensorFlow)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import json_format, text_format  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2, tensor_bundle_pb2, trackable_object_graph_pb2  # noqa: E402
from tensorflow.python.framework import function as tf1_function  # noqa: E402
from tensorflow.python.ops import resource_variable_ops  # noqa: E402

tf.get_logger().setLevel("ERROR")

ROOT = Path(__file__).resolve().parent
v1 = tf.compat.v1
JSON = dict[str, Any]

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
NUM_VIRTUAL_CPUS = 3


# --------------------------------------------------------------------------------------------
# process / filesystem helpers
# --------------------------------------------------------------------------------------------


def configure_tf() -> None:
    """Deterministic single-threaded runtime with 3 virtual CPUs (before any op runs)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * NUM_VIRTUAL_CPUS
    )
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.random.set_seed(0)
    np.random.seed(0)
    tf.config.experimental.enable_op_determinism()


def session_config() -> v1.ConfigProto:
    """Graph-mode session: 3 CPU devices, single threaded."""
    return v1.ConfigProto(
        device_count={"CPU": NUM_VIRTUAL_CPUS},
        intra_op_parallelism_threads=1,
        inter_op_parallelism_threads=1,
    )


def fresh_dir(rel: str) -> Path:
    """Delete and recreate ``sample_meta/<rel>``."""
    path = ROOT / rel
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _is_scalar(obj: Any) -> bool:
    return not isinstance(obj, (list, dict))


def _is_flat(obj: Any) -> bool:
    """A container of scalars and scalar lists: printed on one line."""
    items = obj.values() if isinstance(obj, dict) else obj
    return all(_is_scalar(i) or (isinstance(i, list) and all(map(_is_scalar, i))) for i in items)


def to_json(obj: Any, indent: int = 0) -> str:
    """Readable, stable JSON: small flat containers on one line, the rest one item per line."""
    dump = lambda o: json.dumps(o, allow_nan=False, ensure_ascii=False)  # noqa: E731
    if _is_scalar(obj) or not obj or _is_flat(obj):
        return dump(obj)
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        body = [f"{pad}{dump(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(body) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(pad + to_json(v, indent + 1) for v in obj) + "\n" + " " * indent + "]"


def write_json(path: Path, obj: Any) -> None:
    text = to_json(obj)
    assert json.loads(text) == obj
    path.write_text(text + "\n")


def fixed_values(shape: Sequence[int], salt: int = 0, dtype: Any = np.float32) -> np.ndarray:
    """Deterministic, exactly representable, non-trivial values (multiples of 1/16, with negatives)."""
    n = int(np.prod(shape)) if len(shape) else 1
    idx = np.arange(n, dtype=np.int64)
    vals = ((idx * 37 + salt * 11) % 17 - 8) / 16.0
    return vals.reshape(shape).astype(dtype)


# --------------------------------------------------------------------------------------------
# golden data: graphs
# --------------------------------------------------------------------------------------------


def dtype_name(dtype: Any) -> str | None:
    if isinstance(dtype, int) and dtype == 0:
        return None
    return tf.as_dtype(dtype).name


def shape_json(shape: Any) -> list[int | None] | None:
    """TensorShape/TensorShapeProto -> list with null for unknown dims, null for unknown rank."""
    ts = tf.TensorShape(shape)
    return None if ts.rank is None else ts.as_list()


def node_entries(nodes: Any) -> list[JSON]:
    return [
        {
            "name": n.name,
            "op": n.op,
            "inputs": [i for i in n.input if not i.startswith("^")],
            "control_inputs": [i[1:] for i in n.input if i.startswith("^")],
            "device": n.device,
        }
        for n in nodes
    ]


def op_counts(nodes: Any) -> dict[str, int]:
    return dict(sorted(Counter(n.op for n in nodes).items()))


def placeholder_entries(graph_def: Any, graph: tf.Graph) -> list[JSON]:
    """Placeholders in file order; dtype/shape as the imported TF graph reports them."""
    out = []
    for n in graph_def.node:
        if n.op not in ("Placeholder", "PlaceholderWithDefault"):
            continue
        op = graph.get_operation_by_name(n.name)
        out.append(
            {
                "name": n.name,
                "op": n.op,
                "dtype": dtype_name(op.get_attr("dtype")),
                "shape": shape_json(op.outputs[0].shape),
            }
        )
    return out


def variable_entries(graph: tf.Graph) -> list[JSON]:
    with graph.as_default():
        trainable = {v.name for v in v1.trainable_variables()}
        return [
            {
                "name": v.name,
                "dtype": v.dtype.base_dtype.name,
                "shape": shape_json(v.shape),
                "trainable": v.name in trainable,
                "resource": bool(resource_variable_ops.is_resource_variable(v)),
            }
            for v in v1.global_variables()
        ]


def collection_entries(meta_graph: Any) -> list[JSON]:
    out = []
    for name in sorted(meta_graph.collection_def):
        cd = meta_graph.collection_def[name]
        kind = cd.WhichOneof("kind")
        out.append({"name": name, "kind": kind, "size": len(getattr(cd, kind).value) if kind else 0})
    return out


def tensor_info_json(info: Any) -> JSON:
    return {"name": info.name, "dtype": dtype_name(info.dtype), "shape": shape_json(info.tensor_shape)}


def signature_entries(meta_graph: Any) -> JSON:
    sigs: JSON = {}
    for key in sorted(meta_graph.signature_def):
        sd = meta_graph.signature_def[key]
        sigs[key] = {
            "method_name": sd.method_name,
            "inputs": {k: tensor_info_json(sd.inputs[k]) for k in sorted(sd.inputs)},
            "outputs": {k: tensor_info_json(sd.outputs[k]) for k in sorted(sd.outputs)},
        }
    return sigs


def function_entries(graph_def: Any) -> list[JSON]:
    funcs = sorted(graph_def.library.function, key=lambda f: f.signature.name)
    return [
        {"name": f.signature.name, "nodes": [{"name": n.name, "op": n.op} for n in f.node_def]}
        for f in funcs
    ]


def colocation_entries(graph_def: Any, graph: tf.Graph) -> JSON:
    """``_class`` colocation constraints of top-level nodes, as the imported graph reports them."""
    out: JSON = {}
    for n in graph_def.node:
        if "_class" in n.attr:
            groups = graph.get_operation_by_name(n.name).get_attr("_class")
            out[n.name] = [g.decode() for g in groups]
    return out


def meta_graph_body(meta_graph: Any) -> JSON:
    """Golden for one MetaGraphDef (without tf_version/file/kind)."""
    with tf.Graph().as_default() as graph:
        v1.train.import_meta_graph(meta_graph, clear_devices=False)
        placeholders = placeholder_entries(meta_graph.graph_def, graph)
        variables = variable_entries(graph)
        colocation = colocation_entries(meta_graph.graph_def, graph)
    return {
        "nodes": node_entries(meta_graph.graph_def.node),
        "op_counts": op_counts(meta_graph.graph_def.node),
        "placeholders": placeholders,
        "variables": variables,
        "collections": collection_entries(meta_graph),
        "saver_def": (
            json_format.MessageToDict(meta_graph.saver_def, preserving_proto_field_name=True)
            if meta_graph.HasField("saver_def")
            else None
        ),
        "signature_defs": signature_entries(meta_graph),
        "tags": list(meta_graph.meta_info_def.tags),
        "tensorflow_version": meta_graph.meta_info_def.tensorflow_version,
        "functions": function_entries(meta_graph.graph_def),
        "colocation": colocation,
    }


def meta_graph_golden(meta_path: Path) -> JSON:
    meta_graph = meta_graph_pb2.MetaGraphDef.FromString(meta_path.read_bytes())
    return {
        "tf_version": tf.__version__,
        "file": meta_path.name,
        "kind": "meta_graph",
        **meta_graph_body(meta_graph),
    }


def graph_def_golden(pb_path: Path) -> JSON:
    graph_def = v1.GraphDef.FromString(pb_path.read_bytes())
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        placeholders = placeholder_entries(graph_def, graph)
        colocation = colocation_entries(graph_def, graph)
    return {
        "tf_version": tf.__version__,
        "file": pb_path.name,
        "kind": "graph_def",
        "nodes": node_entries(graph_def.node),
        "op_counts": op_counts(graph_def.node),
        "placeholders": placeholders,
        "collections": [],
        "saver_def": None,
        "signature_defs": {},
        "tags": [],
        "tensorflow_version": None,
        "functions": function_entries(graph_def),
        "colocation": colocation,
    }


def saved_model_golden(export_dir: Path) -> JSON:
    saved_model = saved_model_pb2.SavedModel.FromString((export_dir / "saved_model.pb").read_bytes())
    return {
        "tf_version": tf.__version__,
        "file": "saved_model.pb",
        "kind": "saved_model",
        "saved_model_schema_version": saved_model.saved_model_schema_version,
        "meta_graphs": [meta_graph_body(mg) for mg in saved_model.meta_graphs],
    }


# --------------------------------------------------------------------------------------------
# golden data: checkpoints
# --------------------------------------------------------------------------------------------


def tensor_sha256(value: Any) -> str:
    """numeric -> raw C-order bytes; strings -> len(s) as u64 LE + s, per element in C order."""
    h = hashlib.sha256()
    if isinstance(value, bytes):
        h.update(len(value).to_bytes(8, "little") + value)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        for item in value.ravel(order="C"):
            h.update(len(item).to_bytes(8, "little") + item)
    else:
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def index_num_shards(index_path: Path) -> int:
    """num_shards of the BundleHeaderProto, which is always the first table entry (key "")."""
    data = index_path.read_bytes()
    shared, pos = _read_varint(data, 0)
    non_shared, pos = _read_varint(data, pos)
    value_len, pos = _read_varint(data, pos)
    assert shared == 0 and non_shared == 0, "first .index entry is not the header"
    header = tensor_bundle_pb2.BundleHeaderProto.FromString(data[pos : pos + value_len])
    return header.num_shards


def object_graph_json(serialized: bytes) -> list[JSON]:
    graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(serialized)
    return [
        {
            "node_id": i,
            "children": [[c.local_name, c.node_id] for c in node.children],
            "attributes": [[a.name, a.checkpoint_key] for a in node.attributes],
            "slot_variables": [
                [s.original_variable_node_id, s.slot_name, s.slot_variable_node_id]
                for s in node.slot_variables
            ],
        }
        for i, node in enumerate(graph.nodes)
    ]


def latest_basename(directory: Path) -> str | None:
    latest = tf.train.latest_checkpoint(str(directory))
    return None if latest is None else os.path.basename(latest)


def read_tensor(reader: Any, prefix: str, name: str, dtype: tf.DType) -> tuple[Any, bool]:
    """(numpy value, came_from_restore_v2). CheckpointReader.get_tensor refuses sliced tensors
    of V1 files ("Sliced checkpoints are not supported"); RestoreV2 assembles them. Raises if TF
    has no numpy form for the tensor (DT_VARIANT)."""
    try:
        return reader.get_tensor(name), False
    except Exception:  # noqa: BLE001
        (restored,) = tf.raw_ops.RestoreV2(
            prefix=prefix, tensor_names=[name], shape_and_slices=[""], dtypes=[dtype]
        )
        return restored.numpy(), True


def checkpoint_golden(directory: Path, prefix: str, with_latest: bool = True) -> JSON:
    """Golden for the checkpoint ``directory/prefix`` (prefix relative to directory)."""
    full = str(directory / prefix)
    reader = tf.train.load_checkpoint(full)
    dtype_map = reader.get_variable_to_dtype_map()
    sha: JSON = {}
    unreadable: list[str] = []
    via_restore: list[str] = []
    for name in sorted(dtype_map):
        try:
            value, restored = read_tensor(reader, full, name, dtype_map[name])
        except Exception:  # noqa: BLE001
            unreadable.append(name)
            continue
        sha[name] = tensor_sha256(value)
        if restored:
            via_restore.append(name)
    golden: JSON = {
        "tf_version": tf.__version__,
        "prefix": prefix,
        "variables": [[n, list(s)] for n, s in tf.train.list_variables(full)],
        "dtypes": {n: dtype_map[n].name for n in sorted(dtype_map)},
        "sha256": sha,
    }
    if via_restore:
        golden["sha256_via_restore_v2"] = via_restore
    if unreadable:
        golden["unreadable_by_tf"] = unreadable
    index = directory / (prefix + ".index")
    if index.exists():
        golden["num_shards"] = index_num_shards(index)
        n_data = len(list(directory.glob(prefix + ".data-*-of-*")))
        assert n_data == golden["num_shards"], (n_data, golden["num_shards"])
    if reader.has_tensor(OBJECT_GRAPH_KEY):
        golden["object_graph"] = object_graph_json(reader.get_tensor(OBJECT_GRAPH_KEY))
    if with_latest:
        golden["latest"] = latest_basename(directory)
    return golden


# --------------------------------------------------------------------------------------------
# shared TF1 model
# --------------------------------------------------------------------------------------------


TRAIN_X = fixed_values((6, 4), salt=5)
TRAIN_Y = np.array([0, 1, 2, 1, 0, 2], dtype=np.int64)


@dataclass
class Mlp:
    x: tf.Tensor
    labels: tf.Tensor
    keep_prob: tf.Tensor
    logits: tf.Tensor
    probs: tf.Tensor
    prediction: tf.Tensor
    loss: tf.Tensor
    global_step: tf.Variable | None
    train_op: tf.Operation | None


def dense(inputs: tf.Tensor, units: int, name: str, salt: int, reuse: bool | None = None) -> tf.Tensor:
    in_dim = int(inputs.shape[-1])
    with v1.variable_scope(name, reuse=reuse):
        kernel = v1.get_variable(
            "kernel", [in_dim, units], tf.float32,
            initializer=v1.constant_initializer(fixed_values((in_dim, units), salt)),
        )
        bias = v1.get_variable(
            "bias", [units], tf.float32,
            initializer=v1.constant_initializer(fixed_values((units,), salt + 1)),
        )
        return tf.nn.bias_add(tf.matmul(inputs, kernel), bias)


def mlp_logits(x: tf.Tensor, keep_prob: tf.Tensor, hidden: int = 8, reuse: bool | None = None) -> tf.Tensor:
    h = tf.nn.relu(dense(x, hidden, "dense1", salt=1, reuse=reuse))
    h = v1.nn.dropout(h, rate=1.0 - keep_prob, seed=7)
    return dense(h, 3, "dense2", salt=3, reuse=reuse)


def build_mlp(hidden: int = 8, optimizer: bool = True, summaries: bool = False,
              use_resource: bool = False) -> Mlp:
    """The TF1 MLP of sample ``mlp``, built in the current graph and variable scope.

    Classic TF1 ref variables (``VariableV2``) unless ``use_resource``.
    """
    scope = v1.get_variable_scope()
    with v1.variable_scope(scope, use_resource=use_resource, auxiliary_name_scope=False):
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        labels = v1.placeholder(tf.int64, [None], name="labels")
        keep_prob = v1.placeholder_with_default(1.0, shape=[], name="keep_prob")
        logits = tf.identity(mlp_logits(x, keep_prob, hidden), name="logits")
        probs = tf.nn.softmax(logits, name="probs")
        prediction = tf.argmax(probs, axis=1, name="prediction")
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss"
        )
        global_step = train_op = None
        if optimizer:
            global_step = v1.train.get_or_create_global_step()
            train_op = v1.train.AdamOptimizer(0.01).minimize(loss, global_step=global_step, name="train")
            v1.add_to_collection(v1.GraphKeys.TRAIN_OP, train_op)
        if summaries:
            v1.summary.scalar("loss", loss)
    return Mlp(x, labels, keep_prob, logits, probs, prediction, loss, global_step, train_op)


def train(sess: v1.Session, model: Mlp, steps: int) -> None:
    sess.run(v1.global_variables_initializer())
    for _ in range(steps):
        sess.run(model.train_op, {model.x: TRAIN_X, model.labels: TRAIN_Y})


# --------------------------------------------------------------------------------------------
# phase 1: graph samples
# --------------------------------------------------------------------------------------------


def sample_mlp() -> None:
    out = fresh_dir("mlp")
    with tf.Graph().as_default():
        model = build_mlp(summaries=True)
        v1.add_to_collection("my_outputs", model.probs)
        for item in ("hello", b"raw\x00bytes", "caf\u00e9"):
            v1.add_to_collection("my_strings", item)
        for item in (1, -2, 3_000_000_000):
            v1.add_to_collection("my_ints", item)
        for item in (0.5, -1.25, 3.0):
            v1.add_to_collection("my_floats", item)
        v1.summary.merge_all(name="merged_summaries")
        saver = v1.train.Saver()
        with v1.Session(config=session_config()) as sess, chdir(out):
            train(sess, model, 3)
            saver.save(sess, "model.ckpt", global_step=model.global_step)
    write_json(out / "golden.json", meta_graph_golden(out / "model.ckpt-3.meta"))
    write_json(out / "golden_ckpt.json", checkpoint_golden(out, "model.ckpt-3"))


def sample_frozen() -> None:
    out = fresh_dir("frozen")
    with tf.Graph().as_default() as graph:
        model = build_mlp()
        with v1.Session(config=session_config()) as sess:
            train(sess, model, 3)
            frozen = v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["probs", "prediction"]
            )
    tf.io.write_graph(frozen, str(out), "frozen.pb", as_text=False)
    tf.io.write_graph(frozen, str(out), "frozen.pbtxt", as_text=True)
    from_text = text_format.Parse((out / "frozen.pbtxt").read_text(), v1.GraphDef())
    assert from_text == v1.GraphDef.FromString((out / "frozen.pb").read_bytes())
    write_json(out / "golden.json", graph_def_golden(out / "frozen.pb"))


def sample_savedmodel_tf1() -> None:
    out = ROOT / "savedmodel_tf1"
    if out.exists():
        shutil.rmtree(out)
    sm = v1.saved_model
    with tf.Graph().as_default(), tempfile.TemporaryDirectory() as tmp, chdir(Path(tmp)):
        Path("vocab.txt").write_text("setosa\nversicolor\nvirginica\n")
        model = build_mlp()
        # classify path: serialized tf.Example -> same dense layers -> label strings via the asset
        examples = v1.placeholder(tf.string, [None], name="tf_example")
        features = v1.parse_example(examples, {"x": tf.io.FixedLenFeature([4], tf.float32)})
        cls_probs = tf.nn.softmax(mlp_logits(features["x"], tf.constant(1.0), reuse=True), name="scores")
        table = v1.lookup.StaticHashTable(
            v1.lookup.TextFileInitializer(
                "vocab.txt", tf.int64, v1.lookup.TextFileIndex.LINE_NUMBER,
                tf.string, v1.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="UNKNOWN", name="labels_table",
        )
        classes = table.lookup(
            tf.tile(tf.range(3, dtype=tf.int64)[tf.newaxis], [tf.shape(cls_probs)[0], 1]), name="classes"
        )
        assets = v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS)
        main_op = v1.group(v1.tables_initializer(), name="main_op")
        saver = v1.train.Saver(sharded=True, allow_empty=True)
        serve_sigs = {
            "serving_default": sm.predict_signature_def(
                inputs={"x": model.x}, outputs={"probs": model.probs, "prediction": model.prediction}
            ),
            "classify": sm.classification_signature_def(examples, classes, cls_probs),
        }
        train_sigs = {
            "train": sm.predict_signature_def(
                inputs={"x": model.x, "labels": model.labels}, outputs={"loss": model.loss}
            )
        }
        with v1.Session(config=session_config()) as sess:
            sess.run(v1.global_variables_initializer())
            builder = sm.Builder(str(out))
            builder.add_meta_graph_and_variables(
                sess, ["serve"], signature_def_map=serve_sigs, assets_collection=assets,
                main_op=main_op, saver=saver,
            )
            v1.add_to_collection("saved_model_train_op", model.train_op)  # TRAIN_OP_KEY
            # main_op is already in the graph's saved_model_main_op collection
            builder.add_meta_graph(
                ["train"], signature_def_map=train_sigs, assets_collection=assets, saver=saver
            )
            builder.save()
    write_json(out / "golden.json", saved_model_golden(out))
    write_json(out / "golden_ckpt.json", checkpoint_golden(out / "variables", "variables", with_latest=False))


class Affine(tf.Module):
    def __init__(self) -> None:
        super().__init__(name="affine")
        self.w = tf.Variable(fixed_values((3, 2), 1), name="w")
        self.b = tf.Variable(fixed_values((2,), 2), name="b", trainable=False)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.matmul(x, self.w) + self.b}


def sample_savedmodel_tf2() -> None:
    out = ROOT / "savedmodel_tf2"
    if out.exists():
        shutil.rmtree(out)
    module = Affine()
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.__call__})
    write_json(out / "golden.json", saved_model_golden(out))
    write_json(out / "golden_ckpt.json", checkpoint_golden(out / "variables", "variables", with_latest=False))


def sample_functions() -> None:
    out = fresh_dir("functions")
    with tf.Graph().as_default() as graph:
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        scale = v1.get_variable(
            "scale", [3], initializer=v1.constant_initializer(fixed_values((3,), 4)), use_resource=True
        )

        @tf.function
        def inner(t: tf.Tensor) -> tf.Tensor:
            return tf.nn.relu(t) * 2.0

        @tf.function
        def outer(t: tf.Tensor) -> tf.Tensor:  # captures a variable -> StatefulPartitionedCall
            return inner(t) + scale

        @tf1_function.Defun(tf.float32, tf.float32, func_name="MyAdd")
        def my_add(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
            return a + b

        y = tf.identity(outer(x), name="y")
        y_pure = tf.identity(inner(x), name="y_pure")  # stateless -> PartitionedCall
        tf.identity(my_add(y, y_pure), name="z")
        with chdir(out):
            v1.train.export_meta_graph(filename="functions.meta", graph=graph)
    write_json(out / "golden.json", meta_graph_golden(out / "functions.meta"))


def sample_control_flow() -> None:
    out = fresh_dir("control_flow")
    v1.disable_control_flow_v2()
    try:
        with tf.Graph().as_default() as graph:
            x = v1.placeholder(tf.float32, [], name="x")
            with tf.device("/job:ps/task:0"):
                v = v1.get_variable("v", [], initializer=v1.constant_initializer(1.5), use_resource=False)
            with tf.device("/device:GPU:0"):
                y = tf.square(x, name="y_gpu")
            with v1.colocate_with(v):
                v_read = tf.identity(v, name="v_read")
            c = v1.cond(tf.greater(x, 0.0), lambda: y * 2.0, lambda: v_read - 1.0, name="cond")
            _, total = v1.while_loop(
                lambda i, acc: i < 5, lambda i, acc: (i + 1, acc + c), [tf.constant(0), 0.0], name="loop"
            )
            tf.identity(total, name="result")
            with chdir(out):
                v1.train.export_meta_graph(filename="control_flow.meta", graph=graph, clear_devices=False)
        write_json(out / "golden.json", meta_graph_golden(out / "control_flow.meta"))
    finally:
        v1.enable_control_flow_v2()


# --------------------------------------------------------------------------------------------
# phase 2: checkpoint samples
# --------------------------------------------------------------------------------------------


def sample_ckpt_tf1_sharded() -> None:
    out = fresh_dir("ckpt_tf1_sharded")
    dtypes = [tf.float32, tf.int32, tf.float64]
    with tf.Graph().as_default():
        for i in range(NUM_VIRTUAL_CPUS):
            with tf.device(f"/device:CPU:{i}"):
                dt = dtypes[i]
                v1.get_variable(
                    f"ref_{i}", [3, i + 2], dt, use_resource=False,
                    initializer=v1.constant_initializer(fixed_values((3, i + 2), i, dt.as_numpy_dtype)),
                )
                v1.get_variable(
                    f"res_{i}", [i + 4], dt, use_resource=True,
                    initializer=v1.constant_initializer(fixed_values((i + 4,), i + 10, dt.as_numpy_dtype)),
                )
        saver = v1.train.Saver(sharded=True)
        with v1.Session(config=session_config()) as sess, chdir(out):
            sess.run(v1.global_variables_initializer())
            saver.save(sess, "model.ckpt")
    write_json(out / "golden.json", checkpoint_golden(out, "model.ckpt"))
    write_json(out / "golden_meta.json", meta_graph_golden(out / "model.ckpt.meta"))


def sliced_initializer(full: np.ndarray) -> Callable[..., tf.Tensor]:
    """Initializer giving each partition its slice of ``full``."""

    def init(shape: Any, dtype: Any = None, partition_info: Any = None) -> tf.Tensor:
        offset = partition_info.var_offset if partition_info is not None else [0] * full.ndim
        index = tuple(slice(o, o + s) for o, s in zip(offset, shape))
        return tf.constant(full[index], dtype=dtype)

    return init


def sample_ckpt_partitioned() -> None:
    out = fresh_dir("ckpt_partitioned")
    rows = fixed_values((7, 4), 1)
    cols = fixed_values((3, 10), 2)
    axis_sized = fixed_values((20, 5), 3, np.float64)
    min_max = (np.arange(40, dtype=np.int64) * 7 - 100).reshape(8, 5)
    with tf.Graph().as_default():
        v1.get_variable("rows", [7, 4], tf.float32, initializer=sliced_initializer(rows),
                        partitioner=v1.fixed_size_partitioner(3, axis=0))
        v1.get_variable("cols", [3, 10], tf.float32, initializer=sliced_initializer(cols),
                        partitioner=v1.fixed_size_partitioner(3, axis=1))
        v1.get_variable("axis_sized", [20, 5], tf.float64, initializer=sliced_initializer(axis_sized),
                        partitioner=v1.variable_axis_size_partitioner(max_shard_bytes=300))
        v1.get_variable("min_max", [8, 5], tf.int64, initializer=sliced_initializer(min_max),
                        partitioner=v1.min_max_variable_partitioner(max_partitions=4, min_slice_size=64))
        v1.get_variable("plain", [2], tf.float32, initializer=v1.constant_initializer([0.25, -0.5]))
        saver = v1.train.Saver()
        with v1.Session(config=session_config()) as sess, chdir(out):
            sess.run(v1.global_variables_initializer())
            saver.save(sess, "model.ckpt")
    write_json(out / "golden.json", checkpoint_golden(out, "model.ckpt"))
    write_json(out / "golden_meta.json", meta_graph_golden(out / "model.ckpt.meta"))


def dtype_tensors() -> dict[str, tf.Tensor]:
    """One small tensor per savable dtype (all of 1-19 and 21-33) plus edge cases."""
    small = np.array([[-3, -1, 0], [1, 2, 5]])
    ints = {
        "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
        "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    }
    t: dict[str, tf.Tensor] = {}
    t["dt_float32"] = tf.constant(
        np.array([1.5, -2.25, np.nan, np.inf, -np.inf, -0.0, 0.0, 3.4e38, 1e-45], dtype=np.float32)
    )
    t["dt_float64"] = tf.constant(np.array([[np.pi, -1e300], [np.nan, -0.0]], dtype=np.float64))
    t["dt_half"] = tf.constant(np.array([0.5, -1.5, 65504.0, np.inf], dtype=np.float16))
    t["dt_bfloat16"] = tf.constant(np.array([1.0, -2.5, 3.0e38, np.nan], dtype=ml_dtypes.bfloat16))
    for name, npdt in ints.items():
        vals = small if np.issubdtype(npdt, np.signedinteger) else np.abs(small) * 50
        t[f"dt_{name}"] = tf.constant(vals.astype(npdt))
    t["dt_int64"] = tf.constant(np.array([-(2**62), -1, 0, 2**62], dtype=np.int64))
    t["dt_uint64"] = tf.constant(np.array([0, 1, 2**64 - 1], dtype=np.uint64))
    t["dt_bool"] = tf.constant(np.array([[True, False], [False, True]]))
    t["dt_complex64"] = tf.constant(np.array([1 + 2j, -3.5 - 0.25j], dtype=np.complex64))
    t["dt_complex128"] = tf.constant(np.array([[1e-3 - 1j], [np.inf + 0j]], dtype=np.complex128))
    t["dt_qint8"] = tf.constant(np.array([-128, -1, 0, 127]), dtype=tf.qint8)
    t["dt_quint8"] = tf.constant(np.array([0, 1, 128, 255]), dtype=tf.quint8)
    t["dt_qint16"] = tf.constant(np.array([-32768, -2, 3, 32767]), dtype=tf.qint16)
    t["dt_quint16"] = tf.constant(np.array([0, 2, 40000, 65535]), dtype=tf.quint16)
    t["dt_qint32"] = tf.constant(np.array([[-(2**31), -7], [7, 2**31 - 1]]), dtype=tf.qint32)
    float8 = [-1.5, 0.5, 2.0, -0.0, 0.125, 3.0]
    for name in ("float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz"):
        t[f"dt_{name}"] = tf.constant(np.array(float8, dtype=getattr(ml_dtypes, name)))
    t["dt_int4"] = tf.constant(np.array([-8, -1, 0, 3, 7], dtype=ml_dtypes.int4))
    t["dt_uint4"] = tf.constant(np.array([0, 1, 9, 15], dtype=ml_dtypes.uint4))
    t["dt_int2"] = tf.constant(np.array([-2, -1, 0, 1], dtype=ml_dtypes.int2))
    t["dt_uint2"] = tf.constant(np.array([0, 1, 2, 3], dtype=ml_dtypes.uint2))
    t["dt_float4_e2m1fn"] = tf.constant(np.array([-6.0, -0.5, 0.0, 1.5, 4.0], dtype=ml_dtypes.float4_e2m1fn))
    t["dt_string"] = tf.constant([b"a", b"bc"])
    t["str_mixed"] = tf.constant(
        np.array([b"", "h\u00e9llo w\u00f6rld".encode(), bytes(range(256)), b"x" * 300], dtype=object)
    )
    t["str_2d"] = tf.constant([[b"r0c0", b""], [b"r1c0", b"\xff\x00"], [b"r2c0", b"last"]])
    t["str_empty"] = tf.constant(np.zeros([0], dtype=object), dtype=tf.string)
    t["str_scalar"] = tf.constant(b"scalar string")
    t["empty_float_0x3"] = tf.zeros([0, 3], tf.float32)
    t["scalar_float"] = tf.constant(np.float32(-42.5))
    t["scalar_int64"] = tf.constant(np.int64(-7))
    t["big_float32_64x64"] = tf.constant(fixed_values((64, 64), 9))
    t["dt_variant"] = tf.raw_ops.TensorListFromTensor(
        tensor=tf.constant(fixed_values((3, 2), 6)), element_shape=tf.constant([2], tf.int32)
    )
    return t


def sample_ckpt_dtypes() -> None:
    out = fresh_dir("ckpt_dtypes")
    tensors = dtype_tensors()
    names = list(tensors)
    with chdir(out):
        tf.raw_ops.SaveV2(
            prefix=tf.constant("model.ckpt"), tensor_names=tf.constant(names),
            shape_and_slices=tf.constant([""] * len(names)), tensors=[tensors[n] for n in names],
        )
        # SaveV2 writes no state file; let TF's own helper write one so latest_checkpoint works.
        v1.train.update_checkpoint_state(".", "model.ckpt")
    golden = checkpoint_golden(out, "model.ckpt")
    # What the DT_VARIANT TensorList holds, as TF reports it after RestoreV2 + TensorListStack.
    (handle,) = tf.raw_ops.RestoreV2(
        prefix=str(out / "model.ckpt"), tensor_names=["dt_variant"], shape_and_slices=[""],
        dtypes=[tf.variant],
    )
    stacked = tf.raw_ops.TensorListStack(
        input_handle=handle, element_shape=tf.constant([2], tf.int32), element_dtype=tf.float32
    ).numpy()
    golden["variant_tensor_lists"] = {
        "dt_variant": {"element_dtype": "float32", "stacked_shape": list(stacked.shape),
                       "stacked_sha256": tensor_sha256(stacked)}
    }
    write_json(out / "golden.json", golden)


def v1_saver_sample(name: str, sharded: bool) -> None:
    out = fresh_dir(name)
    with tf.Graph().as_default():
        devices = [f"/device:CPU:{i}" for i in range(NUM_VIRTUAL_CPUS)] if sharded else ["/device:CPU:0"] * 3
        with tf.device(devices[0]):
            v1.get_variable("weights", [2, 3], tf.float32,
                            initializer=v1.constant_initializer(fixed_values((2, 3), 1)))
            v1.get_variable("counts", [4], tf.int32,
                            initializer=v1.constant_initializer([-5, 0, 7, 2**31 - 1]))
        with tf.device(devices[1]):
            v1.get_variable("step", [], tf.int64, initializer=v1.constant_initializer(-(2**40)))
            v1.Variable([b"alpha", b"", b"\xc3\xa9t\xc3\xa9"], name="words", use_resource=False)
        with tf.device(devices[2]):
            v1.get_variable("emb", [6, 2], tf.float32,
                            initializer=sliced_initializer(fixed_values((6, 2), 2)),
                            partitioner=v1.fixed_size_partitioner(2, axis=0))
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1, sharded=sharded)
        with v1.Session(config=session_config()) as sess, chdir(out):
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, "model.ckpt")
    write_json(out / "golden.json", checkpoint_golden(out, prefix))
    write_json(out / "golden_meta.json", meta_graph_golden(out / "model.ckpt.meta"))


def sample_ckpt_v1() -> None:
    v1_saver_sample("ckpt_v1", sharded=False)


def sample_ckpt_v1_sharded() -> None:
    v1_saver_sample("ckpt_v1_sharded", sharded=True)


def sample_ckpt_tf2() -> None:
    import keras

    out = fresh_dir("ckpt_tf2")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="d0"), keras.layers.Dense(2, name="d1")], name="seq"
    )
    for i, layer in enumerate(model.layers):
        layer.set_weights([fixed_values(w.shape, 10 * i + j) for j, w in enumerate(layer.get_weights())])
    optimizer = keras.optimizers.Adam(0.01)
    x = tf.constant(fixed_values((5, 3), 20))
    y = tf.constant(fixed_values((5, 2), 21))
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    with chdir(out):
        manager = tf.train.CheckpointManager(ckpt, ".", max_to_keep=3)
        prefixes = []
        for _ in range(2):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            prefixes.append(os.path.basename(manager.save()))
    golden = {
        "tf_version": tf.__version__,
        "checkpoints": {p: checkpoint_golden(out, p, with_latest=False) for p in prefixes},
        "latest": latest_basename(out),
    }
    write_json(out / "golden.json", golden)


class SlotModel(tf.Module):
    def __init__(self) -> None:
        super().__init__(name="slot_model")
        self.w = tf.Variable(fixed_values((3, 2), 1), name="w")
        self.b = tf.Variable(fixed_values((2,), 2), name="b")


def sample_ckpt_tf2_slots() -> None:
    out = fresh_dir("ckpt_tf2_slots")
    model = SlotModel()
    optimizer = v1.train.AdamOptimizer(0.1)
    x = tf.constant(fixed_values((4, 3), 3))
    for _ in range(2):
        optimizer.minimize(lambda: tf.reduce_sum(tf.square(tf.matmul(x, model.w) + model.b)),
                           var_list=[model.w, model.b])
    with chdir(out):
        prefix = tf.train.Checkpoint(model=model, optimizer=optimizer).save("ckpt")
    write_json(out / "golden.json", checkpoint_golden(out, os.path.basename(prefix)))


# --------------------------------------------------------------------------------------------
# phase 3: fixtures for the `check` command (meta graph vs. checkpoint)
# --------------------------------------------------------------------------------------------

META = "model.meta"
CKPT = "model.ckpt"


def export_meta(directory: Path, graph: tf.Graph, clear_devices: bool = False) -> None:
    """Write ``model.meta`` (with a SaverDef) for the variables of ``graph``."""
    with graph.as_default(), chdir(directory):
        saver = v1.train.Saver()
        saver.export_meta_graph(META, clear_devices=clear_devices)


def save_checkpoint(directory: Path, graph: tf.Graph, var_list: Any = None) -> None:
    """Initialize ``graph``'s variables and write checkpoint ``model.ckpt`` (+ state file)."""
    with graph.as_default():
        saver = v1.train.Saver(var_list=var_list)
        config = session_config()
        config.allow_soft_placement = True
        with v1.Session(config=config) as sess, chdir(directory):
            sess.run(v1.global_variables_initializer())
            saver.save(sess, CKPT, write_meta_graph=False)


def restore_report(directory: Path, allow_soft_placement: bool = False) -> JSON:
    """What TF says when restoring model.ckpt into the graph of model.meta."""
    config = session_config()
    config.allow_soft_placement = allow_soft_placement
    with tf.Graph().as_default(), chdir(directory):
        try:
            saver = v1.train.import_meta_graph(META, clear_devices=False)
            with v1.Session(config=config) as sess:
                saver.restore(sess, CKPT)
        except Exception as exc:  # noqa: BLE001 - recording TF's verdict is the point
            message = getattr(exc, "message", str(exc))
            lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
            boilerplate = ("Original error", "Graph execution error", "Detected at node", "Node:", "[[")
            detail = next((ln for ln in lines[1:] if not ln.startswith(boilerplate)), None)
            return {"restore_ok": False, "error": lines[0] if lines else "",
                    "error_detail": detail, "error_type": type(exc).__name__}
    return {"restore_ok": True, "error": None, "error_detail": None, "error_type": None}


def sink_ops(graph: tf.Graph) -> list[str]:
    """Ops whose outputs feed nothing and that are no op's control input (graph order)."""
    control_used = {c.name for op in graph.get_operations() for c in op.control_inputs}
    return [
        op.name for op in graph.get_operations()
        if op.name not in control_used and not any(out.consumers() for out in op.outputs)
    ]


def check_golden(directory: Path, detail_is_racy: bool = False, **extra: Any) -> None:
    """Write golden.json; ``detail_is_racy``: several restore ops fail and TF reports whichever
    fails first, so ``error_detail`` varies between runs and is recorded as null."""
    golden: JSON = {"tf_version": tf.__version__, "meta": META, "checkpoint": CKPT}
    golden.update(restore_report(directory))
    if detail_is_racy:
        golden["error_detail"] = None
        golden["error_detail_varies"] = True
    golden.update(extra)
    with tf.Graph().as_default() as graph:
        v1.train.import_meta_graph(str(directory / META), clear_devices=False)
        golden["sinks"] = sink_ops(graph)
    golden["meta_graph"] = meta_graph_golden(directory / META)
    golden["checkpoint_contents"] = checkpoint_golden(directory, CKPT)
    write_json(directory / "golden.json", golden)


def mlp_graph(scope: str = "", hidden: int = 8, optimizer: bool = False) -> tf.Graph:
    graph = tf.Graph()
    with graph.as_default(), v1.variable_scope(scope or v1.get_variable_scope()):
        build_mlp(hidden=hidden, optimizer=optimizer)
    return graph


def sample_check_renamed_scope() -> None:
    out = fresh_dir("check/renamed_scope")
    export_meta(out, mlp_graph("net"))
    save_checkpoint(out, mlp_graph("model"))
    check_golden(out)


def variables_graph(shapes: dict[str, list[int]]) -> tf.Graph:
    """A graph holding only float32 ref variables with the given names and shapes."""
    graph = tf.Graph()
    with graph.as_default():
        for i, (name, shape) in enumerate(shapes.items()):
            v1.get_variable(name, shape, tf.float32, use_resource=False,
                            initializer=v1.constant_initializer(fixed_values(shape, i)))
    return graph


def sample_check_shape_changed() -> None:
    """Only dense1/kernel differs ([4,8] in the graph, [4,6] in the checkpoint).

    With a single mismatching variable TF's error message is deterministic (see
    ``check/shape_changed_hidden`` for the multi-variable case).
    """
    out = fresh_dir("check/shape_changed")
    export_meta(out, mlp_graph(hidden=8))
    save_checkpoint(out, variables_graph(
        {"dense1/kernel": [4, 6], "dense1/bias": [8], "dense2/kernel": [8, 3], "dense2/bias": [3]}
    ))
    check_golden(out)


def sample_check_shape_changed_hidden() -> None:
    """Hidden size 8 -> 6: three variables mismatch; TF reports whichever Assign fails first."""
    out = fresh_dir("check/shape_changed_hidden")
    export_meta(out, mlp_graph(hidden=8))
    save_checkpoint(out, mlp_graph(hidden=6))
    check_golden(out, detail_is_racy=True)


def sample_check_slot_missing() -> None:
    out = fresh_dir("check/slot_missing")
    export_meta(out, mlp_graph(optimizer=True))
    graph = mlp_graph(optimizer=True)
    with graph.as_default():
        model_vars = [v for v in v1.global_variables() if v.op.name.startswith(("dense1/", "dense2/"))
                      and "Adam" not in v.op.name]
    save_checkpoint(out, graph, var_list=model_vars)
    check_golden(out)


def partitioned_graph(partitioned: bool) -> tf.Graph:
    graph = tf.Graph()
    full = fixed_values((6, 4), 8)
    with graph.as_default():
        v1.get_variable("emb", [6, 4], tf.float32, initializer=sliced_initializer(full),
                        partitioner=v1.fixed_size_partitioner(2, axis=0) if partitioned else None,
                        use_resource=False)
        v1.get_variable("bias", [4], tf.float32, initializer=v1.zeros_initializer(), use_resource=False)
    return graph


def sample_check_partitioned_mismatch() -> None:
    out = fresh_dir("check/partitioned_mismatch")
    export_meta(out, partitioned_graph(True))
    save_checkpoint(out, partitioned_graph(False))
    check_golden(out)


def pinned_graph(pinned: bool) -> tf.Graph:
    graph = tf.Graph()

    def device(name: str) -> Any:
        return tf.device(name if pinned else None)

    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        with device("/job:ps/task:0"):
            w = v1.get_variable("w", [3, 2], initializer=v1.constant_initializer(fixed_values((3, 2))),
                                use_resource=False)
        with device("/device:GPU:0"):
            y = tf.matmul(x, w, name="y")
        with device("/device:CPU:0"):
            tf.nn.softmax(y, name="probs")
    return graph


def sample_check_device_pinned() -> None:
    out = fresh_dir("check/device_pinned")
    export_meta(out, pinned_graph(True))
    # /job:ps does not exist locally (not even with soft placement): write the checkpoint from
    # the identical graph without device pins.
    save_checkpoint(out, pinned_graph(False))
    check_golden(out, soft_placement=restore_report(out, allow_soft_placement=True))


def sample_check_unsafe_ops() -> None:
    out = fresh_dir("check/unsafe_ops")
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)  # make_one_shot_iterator needs a seed under op determinism
        x = v1.placeholder(tf.float32, [None], name="x")
        w = v1.get_variable("w", [], initializer=v1.constant_initializer(2.0), use_resource=False)
        doubled = v1.py_func(lambda a: a * 2, [x * w], tf.float32, name="py_double")
        summary = tf.strings.reduce_join(tf.strings.as_string(doubled))
        tf.io.write_file("/tmp/metainspect_unsafe_out.txt", summary, name="write_file")
        contents = tf.io.read_file("/etc/hostname", name="read_file")
        paths = tf.data.Dataset.from_tensor_slices(tf.constant(["a.txt", "b.txt"], name="paths"))
        files = paths.map(lambda path: tf.io.read_file(path))
        next_file = v1.data.make_one_shot_iterator(files).get_next(name="next_file")
        tf.identity(tf.strings.length(contents) + tf.strings.length(next_file), name="total_len")
    export_meta(out, graph)
    save_checkpoint(out, graph)
    check_golden(out)


def sample_check_io_unambiguous() -> None:
    out = fresh_dir("check/io_unambiguous")
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="input")
        h = tf.nn.relu(dense(x, 5, "hidden", salt=1))
        tf.nn.softmax(dense(h, 2, "out", salt=2), name="output")
    export_meta(out, graph)
    save_checkpoint(out, graph)
    check_golden(out)


def sample_check_io_ambiguous() -> None:
    out = fresh_dir("check/io_ambiguous")
    graph = tf.Graph()
    with graph.as_default():
        a = v1.placeholder(tf.float32, [None, 4], name="a")
        b = v1.placeholder(tf.float32, [None, 4], name="b")
        h = dense(a + b, 3, "shared", salt=1)
        tf.nn.softmax(h, name="probs")
        tf.argmax(h, axis=1, name="label")
        tf.reduce_sum(a * b, axis=1, name="similarity")
        tf.identity(b, name="b_copy")
    export_meta(out, graph)
    save_checkpoint(out, graph)
    check_golden(out)


# --------------------------------------------------------------------------------------------
# registry / CLI
# --------------------------------------------------------------------------------------------

SAMPLES: dict[str, Callable[[], None]] = {
    "mlp": sample_mlp,
    "frozen": sample_frozen,
    "savedmodel_tf1": sample_savedmodel_tf1,
    "savedmodel_tf2": sample_savedmodel_tf2,
    "functions": sample_functions,
    "control_flow": sample_control_flow,
    "ckpt_tf1_sharded": sample_ckpt_tf1_sharded,
    "ckpt_partitioned": sample_ckpt_partitioned,
    "ckpt_dtypes": sample_ckpt_dtypes,
    "ckpt_v1": sample_ckpt_v1,
    "ckpt_v1_sharded": sample_ckpt_v1_sharded,
    "ckpt_tf2": sample_ckpt_tf2,
    "ckpt_tf2_slots": sample_ckpt_tf2_slots,
    "check/renamed_scope": sample_check_renamed_scope,
    "check/shape_changed": sample_check_shape_changed,
    "check/shape_changed_hidden": sample_check_shape_changed_hidden,
    "check/slot_missing": sample_check_slot_missing,
    "check/partitioned_mismatch": sample_check_partitioned_mismatch,
    "check/device_pinned": sample_check_device_pinned,
    "check/unsafe_ops": sample_check_unsafe_ops,
    "check/io_unambiguous": sample_check_io_unambiguous,
    "check/io_ambiguous": sample_check_io_ambiguous,
    "security": lambda: __import__("gen_security").sample_security(),  # sample_meta/gen_security.py
    "real_models_2_tf": lambda: __import__("gen_real_models").sample_real_models_2_tf(),  # gen_real_models.py
}
SAMPLES.update(__import__("gen_convert").SAMPLES)  # convert/bert, convert/t5 (BERT- and T5-style checkpoints)


def run_worker(name: str) -> None:
    configure_tf()
    SAMPLES[name]()


def run_subprocess(name: str) -> tuple[str, int, float, str]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", name],
        capture_output=True, text=True, cwd=ROOT.parent,
    )
    return name, proc.returncode, time.monotonic() - start, proc.stdout + proc.stderr


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", choices=list(SAMPLES),
                        help="generate only this sample (repeatable); default: all")
    parser.add_argument("--list", action="store_true", help="list sample names and exit")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="parallel worker processes (default 2)")
    parser.add_argument("--worker", metavar="NAME", choices=list(SAMPLES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SAMPLES))
        return 0
    if args.worker:
        run_worker(args.worker)
        return 0
    names = args.only or list(SAMPLES)
    start = time.monotonic()
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, rc, secs, output in pool.map(run_subprocess, names):
            print(f"{'ok  ' if rc == 0 else 'FAIL'} {name:28s} {secs:6.1f}s", flush=True)
            if rc != 0:
                failed.append(name)
                print(output, file=sys.stderr)
    print(f"{len(names) - len(failed)}/{len(names)} samples in {time.monotonic() - start:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
