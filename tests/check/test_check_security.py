"""The security check: Python calls, native code, network and file I/O in graphs, functions and nested
graphs, with the severity of when they run (the TF-built corpus is tests/check/test_check_security_corpus.py)."""

from __future__ import annotations

from pathlib import Path

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.security import check_security
from metainspect.graph.model import Model, Node, load_model
from metainspect.graph.walk import nested_graph_defs, parse_graph_def

from helpers.paths import SAMPLES

CHECK = SAMPLES / "check"
UNSAFE = CHECK / "unsafe_ops" / "model.meta"
MAP_FUNCTION = "__inference_Dataset_map_lambda_25"


def secure(model: Model | Path, inputs: dict[str, str] | None = None,
           outputs: dict[str, str] | None = None) -> dict[str, Finding]:
    """Findings by subject node name."""
    if not isinstance(model, Model):
        model = load_model(model)
    findings = check_security(CheckContext(model, inputs=inputs or {}, outputs=outputs or {}))
    assert all(f.id.startswith("security.") and f.fix for f in findings)
    return {f"{f.subject}@{f.details['where']}": f for f in findings}


def test_unsafe_ops_fixture() -> None:
    found = secure(UNSAFE)
    assert set(found) == {"py_double@graph", "write_file@graph", "read_file@graph",
                          f"ReadFile@function {MAP_FUNCTION}"}
    pyfunc = found["py_double@graph"]
    # nothing served or loaded runs the py_func: off path, so information only
    assert pyfunc.id == "security.python-op" and pyfunc.severity == INFO and pyfunc.details["when"] == "off_path"
    assert pyfunc.details["target"] == "token pyfunc_0"
    write = found["write_file@graph"]
    assert write.id == "security.file-write" and write.details["target"] == "/tmp/metainspect_unsafe_out.txt"
    # total_len (the proposed output) reads /etc/hostname and the files the dataset maps over
    read = found["read_file@graph"]
    assert read.id == "security.file-read" and read.severity == WARNING and read.details["target"] == "/etc/hostname"
    mapped = found[f"ReadFile@function {MAP_FUNCTION}"]
    assert mapped.id == "security.file-read" and mapped.severity == WARNING
    assert mapped.details["on_inference_path"] and write.severity == INFO


def test_severity_follows_when_the_node_runs() -> None:
    """Off the served path everything is information, Python included; served, Python is an error."""
    off = secure(UNSAFE, inputs={"x": "x:0"}, outputs={"y": "mul:0"})
    assert {f.severity for f in off.values()} == {INFO} and {f.details["when"] for f in off.values()} == {"off_path"}
    served = secure(UNSAFE, outputs={"y": "py_double:0"})
    assert served["py_double@graph"].severity == ERROR and served["py_double@graph"].details["when"] == "serving"
    assert "signature" not in served["py_double@graph"].message and "the given outputs" in served["py_double@graph"].message


def test_savers_are_not_reported() -> None:
    for path in [SAMPLES / "mlp", SAMPLES / "savedmodel_tf2", SAMPLES / "functions" / "functions.meta",
                 CHECK / "io_unambiguous" / "model.meta", CHECK / "device_pinned" / "model.meta"]:
        assert secure(path) == {}, path


def _string_const(model: Model, name: str, value: bytes) -> None:
    const = model.graph_def.node.add(name=name, op="Const")
    const.attr["dtype"].type = 7
    const.attr["value"].tensor.dtype = 7
    const.attr["value"].tensor.string_val.append(value)


def test_checkpoint_ops_outside_the_saver() -> None:
    """A checkpoint op is the saver's when its path is the SaverDef's filename tensor, not by its name."""
    model = load_model(SAMPLES / "mlp")
    names = ["save/RestoreV2/tensor_names", "save/RestoreV2/shape_and_slices"]
    model.graph_def.node.add(name="same_file/RestoreV2", op="RestoreV2").input.extend(["save/Const", *names])
    _string_const(model, "save/other_path", b"/data/other.ckpt")
    model.graph_def.node.add(name="save/RestoreV2_9", op="RestoreV2").input.extend(["save/other_path", *names])
    found = secure(model)
    assert set(found) == {"save/RestoreV2_9@graph"}
    foreign = found["save/RestoreV2_9@graph"]
    assert foreign.id == "security.file-read" and foreign.details["target"] == "/data/other.ckpt"


def test_print_to_a_file_and_python_in_a_function_body() -> None:
    model = load_model(SAMPLES / "functions" / "functions.meta")
    body = model.graph_def.library.function[0].node_def
    body.add(name="to_file", op="PrintV2").attr["output_stream"].s = b"file:///tmp/leak.txt"
    body.add(name="to_stderr", op="PrintV2").attr["output_stream"].s = b"stderr"
    body.add(name="eager", op="EagerPyFunc").attr["token"].s = b"pyfunc_7"
    found = {f.subject: f for f in secure(model).values()}
    assert set(found) == {"to_file", "eager"}
    assert found["to_file"].id == "security.file-write" and found["to_file"].details["target"] == "file:///tmp/leak.txt"
    assert found["eager"].id == "security.python-op" and found["eager"].details["where"].startswith("function ")


def test_loading_a_library_is_native_code() -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    model.graph_def.node.add(name="loader", op="LoadLibrary")
    finding, = secure(model).values()
    assert finding.id == "security.native-code" and finding.severity == INFO and "loads a native library" in finding.message
    finding, = secure(model, outputs={"out": "loader"}).values()
    assert finding.severity == ERROR


def _dataset_graph_bytes() -> bytes:
    """A tf.data graph as DatasetToGraph writes it, built from the TF-written unsafe_ops pieces."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    source = load_model(UNSAFE).graph_def
    graph = GraphDef()
    by_name = {n.name: n for n in source.node}
    for name in ("paths", "TensorSliceDataset", "MapDataset"):
        graph.node.add().CopyFrom(by_name[name])
    graph.library.function.add().CopyFrom(next(f for f in source.library.function if f.signature.name == MAP_FUNCTION))
    return graph.SerializeToString()


def test_read_file_inside_a_serialized_dataset_graph() -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    const = model.graph_def.node.add(name="dataset/graph_def", op="Const")
    const.attr["dtype"].type = 7
    const.attr["value"].tensor.dtype = 7
    const.attr["value"].tensor.string_val.append(_dataset_graph_bytes())
    model.graph_def.node.add(name="dataset", op="DatasetFromGraph").input.append("dataset/graph_def")
    finding, = secure(model).values()
    assert finding.id == "security.file-read" and finding.subject == "ReadFile"
    assert finding.details["where"] == (f"function {MAP_FUNCTION} of GraphDef in attr 'value' "
                                        f"of dataset/graph_def (graph)")


def test_graph_def_attr_of_a_custom_op() -> None:
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    inner = GraphDef()
    inner.node.add(name="leak", op="WriteFile").input.extend(["f", "c"])
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    model.graph_def.node.add(name="engine", op="MyEngineOp").attr["segment_graph_def"].s = inner.SerializeToString()
    found = secure(model)
    assert found["engine@graph"].id == "security.native-code"  # a custom op: native code of its own
    (leak,) = [f for f in found.values() if f.subject == "leak"]
    assert leak.id == "security.file-write" and leak.details["where"].startswith(
        "GraphDef in attr 'segment_graph_def' of engine")
    assert leak.details["nested_in"] == {"node": "engine", "host_where": "graph", "attr": "segment_graph_def",
                                         "element": None, "encoding": "plain", "depth": 1}


def test_garbage_is_not_a_graph() -> None:
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

    assert parse_graph_def(b"\n\x05hello world") is None
    assert parse_graph_def(b"\n\xff\xff\xff\xff\x0f") is None
    assert parse_graph_def(b"plain text") is None
    proto = NodeDef(name="c", op="Const")
    proto.attr["dtype"].type = 7
    proto.attr["value"].tensor.dtype = 7
    proto.attr["value"].tensor.string_val.extend([b"\n\x03abc", b"\n", b"a.txt"])
    assert list(nested_graph_defs(Node.from_proto(proto))) == []


def test_checks_leave_the_model_untouched() -> None:
    from metainspect.check.serving import check_serving
    from metainspect.check.signature import check_signature

    for path in [UNSAFE, SAMPLES / "savedmodel_tf1", SAMPLES / "functions" / "functions.meta"]:
        model = load_model(path)
        before = model.meta_graph.SerializeToString(deterministic=True)
        ctx = CheckContext(model, outputs={"o": "nope:0"})
        check_signature(ctx)
        check_serving(ctx)
        check_security(ctx)
        check_security(CheckContext(model))
        assert model.meta_graph.SerializeToString(deterministic=True) == before, path


def test_functions_of_a_nested_graph_called_as_ops_are_not_native_code() -> None:
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    inner = GraphDef()
    inner.node.add(name="call", op="hidden_fn")
    fn = inner.library.function.add()
    fn.signature.name = "hidden_fn"
    fn.node_def.add(name="leak", op="ReadFile").input.append("path")
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    _string_const(model, "stash", inner.SerializeToString())
    (finding,) = secure(model).values()
    assert finding.subject == "leak" and finding.id == "security.file-read"


def test_graph_def_in_an_underscore_attr_of_a_stock_op() -> None:
    """TensorFlow ignores ``_``-prefixed attrs on stock ops: a GraphDef can ride along in any of them."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    inner = GraphDef()
    inner.node.add(name="leak", op="WriteFile").input.extend(["f", "c"])
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    carrier = next(n for n in model.graph_def.node if n.op == "Identity")
    carrier.attr["_payload"].list.s.extend([b"padding", inner.SerializeToString()])
    (leak,) = secure(model).values()
    assert leak.id == "security.file-write" and leak.subject == "leak"
    assert leak.details["nested_in"] == {"node": carrier.name, "host_where": "graph", "attr": "_payload",
                                         "element": 1, "encoding": "plain", "depth": 1}


def test_an_unregistered_op_named_like_an_internal_one_is_native_code() -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    model.graph_def.node.add(name="hidden", op="_MyKernel")
    model.graph_def.node.add(name="internal", op="_Retval")  # registered by stock TensorFlow
    (finding,) = secure(model).values()
    assert finding.id == "security.native-code" and finding.subject == "hidden"


def test_a_function_of_a_nested_graph_does_not_excuse_an_op_of_the_model() -> None:
    """Only the model's own library makes an op name a function call: a nested GraphDef that defines a
    function named like the model's custom op does not (stock TF: "Op type not registered")."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    decoy = GraphDef()
    decoy.library.function.add().signature.name = "EvilNativeOp"
    decoy.node.add(name="call", op="EvilNativeOp")
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    _string_const(model, "decoy", decoy.SerializeToString())
    model.graph_def.node.add(name="evil", op="EvilNativeOp")
    (finding,) = secure(model).values()
    assert finding.id == "security.native-code" and finding.subject == "evil"


def _leaky_graph() -> bytes:
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    inner = GraphDef()
    inner.node.add(name="leak", op="ReadFile").input.append("path")
    return inner.SerializeToString()


def test_graph_defs_however_wrapped() -> None:
    """Base64 in any alphabet, padded or not, in lines; zlib and gzip; a serialized string tensor; a
    MetaGraphDef or SavedModel holding the graph; and these inside each other."""
    import base64
    import gzip
    import zlib

    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

    from metainspect.proto.saved_model_pb2 import SavedModel

    raw = _leaky_graph()
    tensor = TensorProto(dtype=7, string_val=[b"vocab", raw]).SerializeToString()
    meta = MetaGraphDef()
    meta.meta_info_def.tags.append("serve")
    meta.graph_def.ParseFromString(raw)
    saved = SavedModel(saved_model_schema_version=1)
    saved.meta_graphs.add().CopyFrom(meta)
    cases = {
        base64.urlsafe_b64encode(raw).rstrip(b"="): "base64",
        base64.encodebytes(raw * 20): None,  # not one graph: 20 copies parse as one graph of 20 nodes
        base64.encodebytes(raw): "base64",
        zlib.compress(raw): "zlib",
        gzip.compress(raw): "gzip",
        tensor: "serialized tensor",
        meta.SerializeToString(): "meta graph",
        saved.SerializeToString(): "saved model",
        base64.b64encode(zlib.compress(tensor)): "base64 of zlib of serialized tensor",
    }
    for blob, encoding in cases.items():
        found = parse_graph_def(blob)
        if encoding is None:
            assert found is not None and len(found[0].node) == 20
            continue
        assert found is not None and found[1] == encoding, (encoding, found)
        assert [n.op for n in found[0].node] == ["ReadFile"]


def test_inflating_is_bounded_for_the_whole_model() -> None:
    import zlib

    bomb = zlib.compress(b"\n" * (8 << 20))
    budget = [10 << 20]
    assert parse_graph_def(bomb, budget) is None and budget[0] == 2 << 20
    assert parse_graph_def(bomb, budget) is None and budget[0] == 0
    assert parse_graph_def(zlib.compress(_leaky_graph()), budget) is None  # nothing left to inflate


def test_a_graph_def_kept_as_a_checkpoint_value_runs_when_its_variable_is_read(tmp_path: Path) -> None:
    """A string value the checkpoint holds for a variable is searched; it runs where the variable is read."""
    import numpy as np

    from metainspect.checkpoint import open_checkpoint
    from metainspect.formats.bundle_writer import BundleWriter

    source = open_checkpoint(SAMPLES / "mlp" / "model.ckpt-3")
    prefix = tmp_path / "model.ckpt-3"
    with BundleWriter(str(prefix)) as writer:
        for name in source:
            value = np.array(_leaky_graph(), dtype=object) if name == "dense1/bias" else source.get(name)
            writer.add(name, value)
    model = load_model(SAMPLES / "mlp" / "model.ckpt-3.meta")
    with open_checkpoint(prefix) as checkpoint:
        findings = check_security(CheckContext(model, checkpoint, outputs={"y": "dense1/BiasAdd:0"}))
    (leak,) = [f for f in findings if f.subject == "leak"]
    assert leak.id == "security.file-read" and leak.details["when"] == "serving"
    assert leak.details["where"].startswith("GraphDef in checkpoint value 'dense1/bias' (used by dense1/bias/read)")
    assert not check_security(CheckContext(model, open_checkpoint(SAMPLES / "mlp" / "model.ckpt-3")))


# -- red-team round 2 --------------------------------------------------------------------------------

SECURITY = SAMPLES / "security"


def _saved_model(tmp_path: Path, source: Path) -> Path:
    import shutil

    copy = tmp_path / source.name
    shutil.copytree(source, copy)
    return copy


def test_a_tf1_asset_tensor_read_by_a_request_is_its_build_machine_path() -> None:
    """The loader feeds asset tensors only to the main op: a served node reading one gets its own constant."""
    assert secure(SECURITY / "benign_tf1_asset_table") == {}  # the main op's table reads the asset copy
    model = load_model(SECURITY / "benign_tf1_asset_table")
    model.graph_def.node.add(name="leak", op="ReadFile").input.append("asset_path")
    (finding,) = secure(model, outputs={"leak": "leak:0"}).values()
    assert finding.subject == "leak" and finding.severity == WARNING and finding.details["when"] == "serving"
    assert finding.details["target"].endswith("vocab.txt") and not finding.details["target"].startswith("asset")


def test_an_asset_that_links_outside_the_model_is_a_path(tmp_path: Path) -> None:
    copy = _saved_model(tmp_path, SECURITY / "benign_tf2_asset_table")
    outside = tmp_path / "outside.txt"
    outside.write_text("a\nb\n")
    (vocab,) = (copy / "assets").iterdir()
    vocab.unlink()
    vocab.symlink_to(outside)
    (finding,) = secure(copy).values()
    assert finding.id == "security.file-read" and finding.details["target"] == f"assets/{vocab.name} -> {outside}"


def test_the_other_meta_graphs_of_a_saved_model_are_scanned(tmp_path: Path) -> None:
    from metainspect.proto.saved_model_pb2 import SavedModel

    copy = _saved_model(tmp_path, SECURITY / "benign_tf1_dense")
    pb = copy / "saved_model.pb"
    saved = SavedModel.FromString(pb.read_bytes())
    gpu = saved.meta_graphs.add()
    gpu.CopyFrom(saved.meta_graphs[0])
    gpu.meta_info_def.tags.append("gpu")
    gpu.graph_def.node.add(name="leak", op="WriteFile").input.extend(["x", "x"])
    output = gpu.signature_def["serving_default"].outputs["leak"]
    output.name, output.dtype = "leak", 7
    pb.write_bytes(saved.SerializeToString())
    (finding,) = secure(copy).values()
    assert finding.subject == "leak" and finding.details["meta_graph"] == "serve,gpu"
    assert finding.severity == WARNING and "in the meta graph tagged serve,gpu" in finding.message


def test_remote_call_to_another_job_is_the_network() -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    for name, target in (("local", b"/job:localhost/replica:0/task:0/device:CPU:0"),
                         ("remote", b"/job:worker/replica:0/task:1/device:CPU:0")):
        _string_const(model, f"{name}_target", target)
        model.graph_def.node.add(name=f"{name}_call", op="RemoteCall").input.append(f"{name}_target")
    (finding,) = secure(model).values()
    assert finding.subject == "remote_call" and finding.id == "security.network"
    assert finding.details["target"] == "/job:worker/replica:0/task:1/device:CPU:0"


def test_a_graph_def_inside_any_message() -> None:
    """An Example's bytes feature (Example > Features > map entry > Feature > BytesList), read as wire format."""
    from metainspect.formats.wire import encode_varint

    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2]) + encode_varint(len(payload)) + payload

    example = field(1, field(1, field(1, b"g") + field(2, field(1, field(1, _leaky_graph())))))
    found = parse_graph_def(example)
    assert found is not None and found[1] == "message" and [n.op for n in found[0].node] == ["ReadFile"]
