"""`export` judged by TensorFlow: exported SavedModels and frozen graphs compute what the original
graph + checkpoint compute, bit for bit (TF stage: `pytest -m tf tests/test_tf_export.py`).

Exportable TF1 samples (graph + checkpoint + at least one input to serve): `mlp`,
`check/io_unambiguous`, `check/io_ambiguous` (with flags), `check/device_pinned` (with
--clear-devices), `savedmodel_tf1` (re-export, assets and lookup table), `frozen/frozen.pb` (no
variables). Built here with TF because no sample has them: partitioned resource and ref variables
read through `ResourceGather` and a concat of parts, a string variable, a V1 checkpoint, one
variable per numeric dtype. Not exportable, by design: `functions` and `control_flow` (no
checkpoint and no SaverDef), the variable-only samples `ckpt_partitioned`, `ckpt_tf1_sharded`,
`ckpt_v1*` (no placeholder to serve; their values are frozen in the default tests),
`check/partitioned_mismatch` (no outputs), and the `check/*` samples whose restore fails
(`renamed_scope`, `shape_changed*`, `slot_missing`) or that put PyFunc, file and tf.data ops on the
serving path (`unsafe_ops`): export refuses them, as `check` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.cli import run_cli
from helpers.paths import SAMPLES

pytestmark = pytest.mark.tf

ENGINES = ("pure", "tf")


@dataclass
class Case:
    """One model to export: where it is, the flags naming its signature, inputs to feed."""

    model: str
    feeds: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    clear_devices: bool = False
    checkpoint: str | None = None


def _tf() -> tuple[Any, Any]:
    """TensorFlow and its compat.v1, imported by the tests only (the default run deselects them)."""
    import tensorflow

    return tensorflow, tensorflow.compat.v1


def _x(rows: int, cols: int, salt: int = 0) -> np.ndarray:
    return (np.random.RandomState(salt).standard_normal((rows, cols)) * 2).astype(np.float32)


def sample_cases() -> dict[str, Case]:
    return {
        "mlp": Case(str(SAMPLES / "mlp"), {"x": _x(5, 4)},
                    {"x": "x:0"}, {"probs": "probs:0", "prediction": "prediction:0", "logits": "logits:0"}),
        "io_unambiguous": Case(str(SAMPLES / "check/io_unambiguous"), {"input": _x(3, 4, 1)}),
        "io_ambiguous": Case(str(SAMPLES / "check/io_ambiguous"), {"a": _x(3, 4, 2), "b": _x(3, 4, 3)},
                             {"a": "a:0", "b": "b:0"},
                             {"probs": "probs:0", "label": "label:0", "similarity": "similarity:0"}),
        "device_pinned": Case(str(SAMPLES / "check/device_pinned"), {"x": _x(2, 3, 4)}, clear_devices=True),
        "savedmodel_tf1": Case(str(SAMPLES / "savedmodel_tf1"), {"x": _x(4, 4, 5)}),
        "frozen_pb": Case(str(SAMPLES / "frozen/frozen.pb"), {"x": _x(4, 4, 6)},
                          {"x": "x:0"}, {"probs": "probs:0", "prediction": "prediction:0"}),
    }


# -- fixtures TF builds here -----------------------------------------------------------------------

def _session() -> Any:
    v1 = _tf()[1]
    return v1.Session(config=v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))


def sliced(full: np.ndarray) -> Any:
    """Initializer giving each partition its slice of ``full``."""
    def init(shape: Any, dtype: Any = None, partition_info: Any = None) -> Any:
        tf = _tf()[0]
        offset = partition_info.var_offset if partition_info is not None else [0] * full.ndim
        return tf.constant(full[tuple(slice(o, o + s) for o, s in zip(offset, shape))], dtype=dtype)

    return init


def build_partitioned(directory: Path) -> Case:
    """Partitioned resource embedding (ResourceGather per part), partitioned ref kernel (concat of
    parts) and a string variable, saved with a TF1 Saver."""
    tf, v1 = _tf()
    directory.mkdir()
    with tf.Graph().as_default():
        ids = v1.placeholder(tf.int64, [None], name="ids")
        x = v1.placeholder(tf.float32, [None, 6], name="x")
        table = np.arange(40, dtype=np.float32).reshape(10, 4) / 7
        emb = v1.get_variable("emb", [10, 4], initializer=sliced(table),
                              partitioner=v1.fixed_size_partitioner(3), use_resource=True)
        kernel = v1.get_variable("kernel", [6, 4], initializer=v1.random_normal_initializer(seed=1),
                                 partitioner=v1.fixed_size_partitioner(2), use_resource=False)
        words = v1.get_variable("words", initializer=tf.constant([b"zero", b"one", b"", b"\xc3\xa9t\xc3\xa9"]),
                                use_resource=False)
        looked = tf.identity(tf.nn.embedding_lookup(emb, ids), name="looked")
        tf.identity(tf.matmul(x, kernel) + tf.reduce_sum(looked), name="y")
        tf.identity(tf.gather(words, tf.math.floormod(ids, 4)), name="word")
        saver = v1.train.Saver()
        with _session() as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(directory / "model.ckpt"))
    return Case(str(directory / "model.ckpt"), {"ids": np.array([0, 3, 4, 9, 7], dtype=np.int64), "x": _x(2, 6, 7)},
                {"ids": "ids:0", "x": "x:0"}, {"looked": "looked:0", "y": "y:0", "word": "word:0"})


def build_v1_checkpoint(directory: Path) -> Case:
    """A graph saved as a legacy V1 checkpoint (the pure engine converts it to a V2 bundle)."""
    tf, v1 = _tf()
    directory.mkdir()
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 3], name="x")
        w = v1.get_variable("w", [3, 2], initializer=v1.random_normal_initializer(seed=2), use_resource=True)
        b = v1.get_variable("b", [2], initializer=v1.constant_initializer([0.5, -1.5]), use_resource=False)
        tf.nn.softmax(tf.matmul(x, w) + b, name="probs")
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with _session() as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(directory / "model.ckpt"))
    return Case(str(directory / "model.ckpt.meta"), {"x": _x(4, 3, 8)})


#: variable dtypes TF's CPU kernels can create, assign and save
DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
          "bool", "complex64", "complex128")


def build_dtypes(directory: Path) -> Case:
    """One variable per dtype (ref and resource alternating), each served as an output."""
    tf, v1 = _tf()
    directory.mkdir()
    outputs = {}
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        tf.identity(x * 2.0, name="doubled")
        outputs["doubled"] = "doubled:0"
        for i, name in enumerate(DTYPES):
            values = (np.arange(6).reshape(2, 3) - 2.5) * 1.75
            value = values > 0 if name == "bool" else values.astype(tf.as_dtype(name).as_numpy_dtype)
            var = v1.get_variable(f"v_{name}", initializer=tf.constant(value, dtype=tf.as_dtype(name)),
                                  use_resource=bool(i % 2))
            tf.identity(var, name=f"out_{name}")
            outputs[f"out_{name}"] = f"out_{name}:0"
        saver = v1.train.Saver()
        with _session() as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(directory / "model.ckpt"))
    return Case(str(directory / "model.ckpt"), {"x": np.array([1.5, -2.0], dtype=np.float32)},
                {"x": "x:0"}, outputs)


BUILT = {"partitioned": build_partitioned, "v1_checkpoint": build_v1_checkpoint, "dtypes": build_dtypes}


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    root = tmp_path_factory.mktemp("built")
    found = sample_cases()
    found.update({name: build(root / name) for name, build in BUILT.items()})
    return found


# -- running things ---------------------------------------------------------------------------------

def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical: dtype, shape and bytes (strings element by element)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return bool(a.tolist() == b.tolist())
    return a.tobytes() == b.tobytes()


def reference(case: Case, outputs: list[str]) -> list[np.ndarray]:
    """The original graph with its checkpoint restored, run in a session."""
    tf, v1 = _tf()
    feeds = {f"{k}:0": v for k, v in case.feeds.items()}
    with tf.Graph().as_default(), _session() as sess:
        if case.model.endswith("frozen.pb"):
            graph_def = v1.GraphDef.FromString(Path(case.model).read_bytes())
            tf.import_graph_def(graph_def, name="")
        elif os.path.isdir(case.model) and os.path.exists(os.path.join(case.model, "saved_model.pb")):
            v1.saved_model.loader.load(sess, ["serve"], case.model)
        else:
            from metainspect.check.runner import default_checkpoint
            from metainspect.graph.model import load_model

            model = load_model(case.model)
            ckpt, _ = default_checkpoint(case.model, model)
            assert ckpt is not None
            saver = v1.train.import_meta_graph(model.path, clear_devices=True)
            saver.restore(sess, ckpt.prefix)
        return sess.run(outputs, feeds)


def export_case(case: Case, engine: str, out: Path, frozen: Path) -> Any:
    from metainspect.export import ExportOptions, export

    options = ExportOptions(inputs=case.inputs, outputs=case.outputs, clear_devices=case.clear_devices)
    return export(case.model, out=str(out), frozen=str(frozen), options=options, engine=engine)


def serve_v1(directory: Path, feeds: dict[str, Any], signature: str = "serving_default") -> dict[str, np.ndarray]:
    """Load the way TF Serving does (TF1 loader, tag serve) and run one signature."""
    tf, v1 = _tf()
    with tf.Graph().as_default(), _session() as sess:
        meta_graph = v1.saved_model.loader.load(sess, ["serve"], str(directory))
        sig = meta_graph.signature_def[signature]
        keys = sorted(sig.outputs)
        values = sess.run([sig.outputs[k].name for k in keys],
                          {sig.inputs[k].name: v for k, v in feeds.items()})
        return dict(zip(keys, values))


def serve_v2(directory: Path, feeds: dict[str, Any], signature: str = "serving_default") -> dict[str, np.ndarray]:
    """Load with tf.saved_model.load and call the signature function."""
    tf = _tf()[0]
    loaded = tf.saved_model.load(str(directory), tags=["serve"])
    result = loaded.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in result.items()}


def run_frozen(path: Path, feeds: dict[str, Any], outputs: list[str]) -> list[np.ndarray]:
    tf, v1 = _tf()
    graph_def = v1.GraphDef.FromString(path.read_bytes())
    assert not {n.op for n in graph_def.node} & {"VariableV2", "VarHandleOp", "ReadVariableOp", "Assign",
                                                "AssignVariableOp", "RestoreV2", "SaveV2"}
    with tf.Graph().as_default():
        tf.import_graph_def(graph_def, name="")
        with _session() as sess:
            return sess.run(outputs, {f"{k}:0": v for k, v in feeds.items()})


# -- the proof --------------------------------------------------------------------------------------

CASE_NAMES = [*sample_cases(), *BUILT]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_export_serves_what_the_checkpoint_computes(cases: dict[str, Case], name: str, engine: str,
                                                     tmp_path: Path) -> None:
    case = cases[name]
    out, frozen = tmp_path / "export" / "1", tmp_path / "frozen.pb"
    result = export_case(case, engine, out, frozen)
    keys = sorted(result.outputs)
    tensors = [result.outputs[k]["tensor"] for k in keys]
    expected = dict(zip(keys, reference(case, tensors)))
    input_keys = {k: v["tensor"].split(":")[0] for k, v in result.inputs.items()}
    feeds = {key: case.feeds[op] for key, op in input_keys.items()}

    served = serve_v1(out, feeds)
    assert sorted(served) == keys
    for key in keys:
        assert same(served[key], expected[key]), f"{name}/{engine}: TF1 loader, output {key}"
    served2 = serve_v2(out, feeds)
    for key in keys:
        assert same(served2[key], expected[key]), f"{name}/{engine}: tf.saved_model.load, output {key}"
    frozen_values = run_frozen(frozen, case.feeds, tensors)
    for key, value in zip(keys, frozen_values):
        assert same(value, expected[key]), f"{name}/{engine}: frozen graph, output {key}"


@pytest.mark.parametrize("engine", ENGINES)
def test_assets_and_table_initializer_survive_reexport(tmp_path: Path, engine: str) -> None:
    """savedmodel_tf1's classify signature maps scores to labels through a vocab asset."""
    tf = _tf()[0]
    source = SAMPLES / "savedmodel_tf1"
    from metainspect.export import export_saved_model

    out = tmp_path / "sm"
    export_saved_model(str(source), str(out), engine=engine)
    assert (out / "assets" / "vocab.txt").read_bytes() == (source / "assets" / "vocab.txt").read_bytes()
    example = tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, -1.0, 2.0, 0.25]))}))
    feeds = {"inputs": np.array([example.SerializeToString()] * 2, dtype=object)}
    ours, theirs = serve_v1(out, feeds, "classify"), serve_v1(source, feeds, "classify")
    assert sorted(ours) == ["classes", "scores"]
    for key in ours:
        assert same(ours[key], theirs[key]), key
    assert ours["classes"].tolist()[0] == [b"setosa", b"versicolor", b"virginica"]


@pytest.mark.parametrize("engine", ENGINES)
def test_saved_model_cli_lists_the_signature(tmp_path: Path, engine: str) -> None:
    out = tmp_path / "export"
    result = run_cli("export", str(SAMPLES / "check/io_unambiguous"), "--out", str(out), "--engine", engine)
    assert result.code == 0, result.stderr
    assert result.stderr == ""  # TF's start-up noise stays out of the way
    cli = Path(sys.executable).with_name("saved_model_cli")
    shown = subprocess.run([str(cli), "show", "--dir", str(out), "--all"], capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    text = shown.stdout
    assert "MetaGraphDef with tag-set: 'serve'" in text
    assert "signature_def['serving_default']" in text
    assert "inputs['input'] tensor_info:" in text and "name: input:0" in text
    assert "outputs['output'] tensor_info:" in text and "name: output:0" in text
    assert "Method name is: tensorflow/serving/predict" in text


def test_tensor_encoding_decodes_in_tensorflow_for_every_dtype() -> None:
    """Our TensorProto encoding, run by TF's own Const kernel, gives back the checkpoint's bytes."""
    tf, v1 = _tf()
    from metainspect import open_checkpoint
    from metainspect.formats.tensor_proto import encode

    checked = 0
    with open_checkpoint(SAMPLES / "ckpt_dtypes") as ckpt:
        for key in ckpt.keys():
            dtype = ckpt.dtype(key)
            if dtype == "variant":
                continue
            value = ckpt.get(key)
            proto = tf.make_tensor_proto(0)
            proto.ParseFromString(encode(value, dtype).SerializeToString())
            with tf.Graph().as_default() as graph:
                const = graph.create_op("Const", [], [tf.as_dtype(proto.dtype)], name="c", attrs={
                    "value": v1.AttrValue(tensor=proto), "dtype": v1.AttrValue(type=proto.dtype)})
                with _session() as sess:
                    got = np.asarray(sess.run(const.outputs[0]))
            assert got.shape == value.shape, key
            if dtype == "string":
                assert got.tolist() == value.tolist(), key
            else:
                assert got.tobytes() == value.tobytes(), key
            checked += 1
    assert checked >= 35


# -- TF2: model rebuilt by a factory ----------------------------------------------------------------

FACTORY = textwrap.dedent('''
    import tensorflow as tf

    class Scorer(tf.Module):
        def __init__(self, hidden=4):
            super().__init__(name="scorer")
            self.w = tf.Variable(tf.zeros([3, hidden]), name="w")
            self.b = tf.Variable(tf.zeros([hidden]), name="b")
            self.out = tf.Variable(tf.zeros([hidden, 2]), name="out")

        def __call__(self, x):
            return {"scores": tf.nn.softmax(tf.nn.relu(x @ self.w + self.b) @ self.out)}

    def build():
        return Scorer()
''')


def _load_factory_module(path: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_factory_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_tf2_checkpoint_exports_through_a_model_factory(tmp_path: Path) -> None:
    tf = _tf()[0]
    factory = tmp_path / "factory.py"
    factory.write_text(FACTORY)
    module = _load_factory_module(factory)
    trained = module.build()
    rng = np.random.RandomState(3)
    for var in trained.variables:
        var.assign(rng.standard_normal(var.shape).astype(np.float32))
    ckpt = tf.train.Checkpoint(model=trained, global_step=tf.Variable(7, dtype=tf.int64))
    prefix = ckpt.save(str(tmp_path / "ckpt" / "ckpt"))
    out = tmp_path / "export" / "1"
    result = run_cli("export", str(tmp_path / "ckpt"), "--model-factory", f"{factory}:build",
                     "--input-spec", "x:float32:?,3", "--out", str(out), "--json")
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["attached_as"] == "model" and summary["variables"] == 3
    assert summary["checkpoint"] == prefix
    x = rng.standard_normal((5, 3)).astype(np.float32)
    expected = trained(tf.constant(x))["scores"].numpy()
    assert same(serve_v1(out, {"x": x})["scores"], expected)
    assert same(serve_v2(out, {"x": x})["scores"], expected)


def test_tf2_keras_checkpoint_with_optimizer_state(tmp_path: Path) -> None:
    """sample ckpt_tf2: Keras 3 Sequential + Adam; the factory rebuilds the architecture only."""
    tf = _tf()[0]
    import keras

    factory = tmp_path / "keras_factory.py"
    factory.write_text(textwrap.dedent('''
        import keras

        def build():
            return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="d0"),
                                     keras.layers.Dense(2, name="d1")], name="seq")
    '''))
    out = tmp_path / "export"
    result = run_cli("export", str(SAMPLES / "ckpt_tf2"), "--model-factory", f"{factory}:build",
                     "--input-spec", "x:float32:?,3", "--out", str(out), "--json")
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["left_in_checkpoint"].get("optimizer", 0) > 0
    model = _load_factory_module(factory).build()
    tf.train.Checkpoint(model=model).read(str(SAMPLES / "ckpt_tf2" / "ckpt-2")).expect_partial()
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    expected = np.asarray(model(x))
    assert same(serve_v1(out, {"x": x})["output_0"], expected)
    assert same(serve_v2(out, {"x": x})["output_0"], expected)
    assert isinstance(keras.__version__, str)


def test_tf2_factory_building_another_model_is_refused(tmp_path: Path) -> None:
    factory = tmp_path / "small.py"
    factory.write_text(textwrap.dedent('''
        import keras

        def build():
            return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="d0")], name="seq")
    '''))
    out = tmp_path / "export"
    result = run_cli("export", str(SAMPLES / "ckpt_tf2"), "--model-factory", f"{factory}:build",
                     "--input-spec", "x:float32:?,3", "--out", str(out))
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metainspect: ")
    assert "2 model value(s) in the checkpoint have no variable in the built model" in lines[0]
    assert "model/_functional/_operations/2/_kernel float32[4, 2]" in lines[0]
    assert not out.exists()


def test_tf_engine_failure_is_one_line(tmp_path: Path) -> None:
    """Forced past check's error, TF's failing restore comes back as one line; nothing is written."""
    out = tmp_path / "export"
    result = run_cli("export", str(SAMPLES / "check/shape_changed"), "--engine", "tf", "--out", str(out), "--force")
    assert result.code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("metainspect: ") and "TensorFlow could not restore it" in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())
