"""`export` without TensorFlow: the pure engine's SavedModels and frozen graphs read back with
metainspect, hold the checkpoint's values, and every refusal is one clear line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from metainspect import open_checkpoint
from metainspect.errors import MetainspectError
from metainspect.export import ExportOptions, export, export_frozen, export_saved_model
from metainspect.graph.model import load_model

from helpers.cli import Cli
from helpers.paths import SAMPLES

VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp", "ReadVariableOp", "ResourceGather", "Assign",
                "AssignVariableOp", "RestoreV2", "SaveV2"}
MLP_SIGNATURE = ExportOptions(inputs={"x": "x:0"}, outputs={"probs": "probs:0", "prediction": "prediction:0"})


def same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.tolist() == b.tolist() if a.dtype == object else a.tobytes() == b.tobytes()


# -- SavedModel --------------------------------------------------------------------------------------

def test_pure_saved_model_reads_back(tmp_path: Path) -> None:
    source = SAMPLES / "check" / "io_unambiguous"
    out = tmp_path / "export" / "1"
    result = export_saved_model(str(source), str(out), engine="pure")
    assert result.engine == "pure" and result.signature_source == "inferred"
    model = load_model(out)
    assert model.kind == "saved_model" and model.all_tags == [["serve"]]
    signature = model.signatures()["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert {k: (v.name, v.dtype, v.shape) for k, v in signature.inputs.items()} == {"input": ("input:0", "float32", [None, 4])}
    assert {k: (v.name, v.dtype, v.shape) for k, v in signature.outputs.items()} == {"output": ("output:0", "float32", [None, 2])}
    original = load_model(source)
    assert model.meta_graph.saver_def == original.meta_graph.saver_def
    assert model.graph_def == original.graph_def
    with open_checkpoint(out) as exported, open_checkpoint(source / "model.ckpt") as ckpt:
        assert exported.prefix == str(out / "variables" / "variables")
        assert exported.keys() == ckpt.keys()
        for key in ckpt.keys():
            assert same(exported.get(key), ckpt.get(key)), key


def test_saved_model_reexport_keeps_assets_signatures_and_main_op(tmp_path: Path) -> None:
    source = SAMPLES / "savedmodel_tf1"
    out = tmp_path / "sm"
    result = export_saved_model(str(source), str(out), ExportOptions(signature_name="serving_default"), engine="pure")
    assert result.signature_source == "signature" and result.assets == ["vocab.txt"]
    assert (out / "assets" / "vocab.txt").read_bytes() == (source / "assets" / "vocab.txt").read_bytes()
    model = load_model(out)
    assert sorted(model.signatures()) == ["classify", "serving_default"]
    assert [(a.tensor_info.name, a.filename) for a in model.meta_graph.asset_file_def] == [("asset_path:0", "vocab.txt")]
    assert model.collection("saved_model_main_op").items == ["main_op"]


def test_given_signature_replaces_and_clear_devices_clears(tmp_path: Path) -> None:
    out = tmp_path / "e"
    options = ExportOptions(inputs={"x": "x"}, outputs={"probs": "probs"}, signature_name="predict",
                            tags=("serve", "gpu"), clear_devices=True)
    result = export_saved_model(str(SAMPLES / "check" / "device_pinned"), str(out), options, engine="pure")
    assert any("device-pin" in note for note in result.notes)
    model = load_model(out, ["serve", "gpu"])
    assert sorted(model.signatures()) == ["predict"]
    assert model.signatures()["predict"].inputs["x"].name == "x:0"
    assert not [n.name for n in model.nodes() if n.device]


def test_v1_checkpoint_becomes_a_v2_bundle(tmp_path: Path) -> None:
    from metainspect.export.pure_engine import write_variables

    prefix = tmp_path / "variables"
    with open_checkpoint(SAMPLES / "ckpt_v1") as ckpt:
        assert ckpt.format == "v1"
        write_variables(ckpt, str(prefix))
        with open_checkpoint(prefix) as written:
            assert written.format == "v2" and written.keys() == ckpt.keys()
            for key in ckpt.keys():
                assert same(written.get(key), ckpt.get(key)), key


def test_sharded_bundle_is_copied_under_the_new_prefix(tmp_path: Path) -> None:
    from metainspect.export.pure_engine import write_variables

    prefix = tmp_path / "variables"
    with open_checkpoint(SAMPLES / "ckpt_tf1_sharded") as ckpt:
        assert ckpt.num_shards == 3
        write_variables(ckpt, str(prefix))
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "variables.data-00000-of-00003", "variables.data-00001-of-00003", "variables.data-00002-of-00003",
            "variables.index"]
        for source, copy in zip(ckpt.data_files, sorted(tmp_path.glob("variables.data-*"))):
            assert Path(source).read_bytes() == copy.read_bytes()
        with open_checkpoint(prefix) as written:
            for key in ckpt.keys():
                assert same(written.get(key), ckpt.get(key)), key


def test_graph_def_without_variables_exports(tmp_path: Path) -> None:
    out = tmp_path / "e"
    result = export_saved_model(str(SAMPLES / "frozen" / "frozen.pb"), str(out),
                                ExportOptions(inputs={"x": "x:0"}, outputs={"probs": "probs:0"}), engine="pure")
    assert result.checkpoint is None
    assert load_model(out).signatures()["serving_default"].outputs["probs"].name == "probs:0"
    assert not (out / "variables" / "variables.index").exists()


def test_main_op_added_for_table_initializers() -> None:
    from metainspect.export.plan import MAIN_OP_KEY, ensure_main_op

    meta_graph = load_model(SAMPLES / "savedmodel_tf1").meta_graph
    assert ensure_main_op(meta_graph) is None  # it has one
    del meta_graph.collection_def[MAIN_OP_KEY]
    taken = {n.name for n in meta_graph.graph_def.node}
    name = ensure_main_op(meta_graph)
    assert name == "init_all_tables_1" and "init_all_tables" in taken  # TF's own tables_initializer is there
    node = meta_graph.graph_def.node[-1]
    assert (node.name, node.op, list(node.input)) == (name, "NoOp", ["^text_file_init/InitializeTableFromTextFileV2"])
    assert list(meta_graph.collection_def[MAIN_OP_KEY].node_list.value) == [name]


def test_assets_of_a_training_graph_are_found_beside_it(tmp_path: Path) -> None:
    from metainspect.export.assets import find_assets

    meta_graph = load_model(SAMPLES / "savedmodel_tf1").meta_graph
    (tmp_path / "model.meta").write_bytes(meta_graph.SerializeToString())
    with pytest.raises(MetainspectError, match=r"vocab.txt"):
        find_assets(load_model(tmp_path / "model.meta"))
    (tmp_path / "vocab.txt").write_text("a\nb\n")
    assets = find_assets(load_model(tmp_path / "model.meta"))
    assert [(a.tensor, a.filename, a.source) for a in assets] == [("asset_path:0", "vocab.txt", str(tmp_path / "vocab.txt"))]


# -- frozen graphs -----------------------------------------------------------------------------------

def _consts(graph_def) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    from metainspect.formats.tensor_proto import to_numpy

    return {n.name: to_numpy(n.attr["value"].tensor) for n in graph_def.node if n.op == "Const"}


def _read_graph(path: Path):  # type: ignore[no-untyped-def]
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    return GraphDef.FromString(path.read_bytes())


@pytest.mark.parametrize(("sample", "options", "variables", "inputs"), [
    ("mlp", MLP_SIGNATURE, ["dense1/kernel", "dense1/bias", "dense2/kernel", "dense2/bias"], {"x", "keep_prob"}),
    ("check/io_unambiguous", ExportOptions(), ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"], {"input"}),
])
def test_frozen_graph_has_checkpoint_values_and_no_variables(tmp_path: Path, sample: str, options: ExportOptions,
                                                             variables: list[str], inputs: set[str]) -> None:
    out = tmp_path / "frozen.pb"
    result = export_frozen(str(SAMPLES / sample), str(out), options, engine="pure")
    graph_def = _read_graph(out)
    assert not {n.op for n in graph_def.node} & VARIABLE_OPS
    assert set(result.frozen_inputs) == inputs and result.constants == len(variables)
    consts = _consts(graph_def)
    with open_checkpoint(result.checkpoint) as ckpt:  # type: ignore[arg-type]
        for name in variables:
            assert same(consts[name], ckpt.get(name)), name
    names = {n.name for n in graph_def.node}
    for node in graph_def.node:  # every input resolves inside the pruned graph
        assert all(i.lstrip("^").split(":")[0] in names for i in node.input), node.name


def test_frozen_partitions_hold_their_slice(tmp_path: Path) -> None:
    out = tmp_path / "frozen.pb"
    options = ExportOptions(outputs={"r": "rows/part_1/Read/ReadVariableOp:0", "c": "cols/part_2/Read/ReadVariableOp:0",
                                     "m": "min_max/part_0/Read/ReadVariableOp:0"})
    export_frozen(str(SAMPLES / "ckpt_partitioned"), str(out), options, engine="pure")
    graph_def = _read_graph(out)
    consts = _consts(graph_def)
    reads = {n.name: n for n in graph_def.node if n.name.endswith("ReadVariableOp")}
    assert {n.op for n in reads.values()} == {"Identity"}
    with open_checkpoint(SAMPLES / "ckpt_partitioned") as ckpt:
        rows, cols, min_max = ckpt.get("rows"), ckpt.get("cols"), ckpt.get("min_max")
    model = load_model(SAMPLES / "ckpt_partitioned")
    parts = {v.name: v.partition for v in model.variables()}
    for name, full in (("rows/part_1", rows), ("cols/part_2", cols), ("min_max/part_0", min_max)):
        part = parts[name]
        index = tuple(slice(o, o + s) for o, s in zip(part.offset, part.shape))
        assert same(consts[name], full[index]), name


def test_frozen_v1_checkpoint_and_strings(tmp_path: Path) -> None:
    out = tmp_path / "frozen.pb"
    export_frozen(str(SAMPLES / "ckpt_v1"), str(out), ExportOptions(outputs={"w": "words:0", "e": "emb/part_1/Read/ReadVariableOp:0"}),
                  engine="pure")
    consts = _consts(_read_graph(out))
    with open_checkpoint(SAMPLES / "ckpt_v1") as ckpt:
        assert same(consts["words"], ckpt.get("words"))
        assert same(consts["emb/part_1"], ckpt.get("emb")[3:])


def test_freezing_a_variable_update_is_refused() -> None:
    from metainspect.checkpoint import open_checkpoint as open_ckpt
    from metainspect.export.freeze import FreezeError, freeze

    model = load_model(SAMPLES / "mlp")
    with open_ckpt(SAMPLES / "mlp") as ckpt, pytest.raises(FreezeError, match="writes variable"):
        freeze(model, ckpt, ["train"])
    with open_ckpt(SAMPLES / "mlp") as ckpt, pytest.raises(FreezeError, match="did you mean"):
        freeze(model, ckpt, ["prob"])


# -- encoder -------------------------------------------------------------------------------------

def test_tensor_encoding_round_trips_every_checkpoint_dtype() -> None:
    from metainspect.formats import dtypes
    from metainspect.formats.tensor_proto import encode, to_numpy

    with open_checkpoint(SAMPLES / "ckpt_dtypes") as ckpt:
        for key in ckpt.keys():
            value, dtype = ckpt.get(key), ckpt.dtype(key)
            proto = encode(value, dtype)
            assert proto.dtype == dtypes.from_name(dtype).enum, key
            back = to_numpy(proto)
            if dtype == "variant":
                assert [v.SerializeToString() for v in back.flat] == [v.SerializeToString() for v in value.flat]
            else:
                assert same(back, value), key


def test_tensor_encoding_refuses_lossy_casts() -> None:
    from metainspect.formats.tensor_proto import encode

    assert encode(np.array([1, 2]), "int32").tensor_content == np.array([1, 2], "<i4").tobytes()
    with pytest.raises(ValueError, match="do not fit int32"):
        encode(np.array([2**40]), "int32")
    with pytest.raises(ValueError, match="resource"):
        encode(np.zeros(1), "resource")


# -- refusals (CLI) ------------------------------------------------------------------------------------

def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("metainspect: "), stderr
    return lines[-1]


def test_existing_directory_is_refused(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "out").mkdir()
    result = cli("export", str(SAMPLES / "check" / "io_unambiguous"), "--out", str(tmp_path / "out"), "--engine", "pure")
    assert result.code == 2 and result.stderr.count("\n") == 1
    assert "already exists" in _one_line(result.stderr)
    assert list((tmp_path / "out").iterdir()) == []


def test_ambiguous_signature_lists_candidates_and_flags(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    result = cli("export", str(SAMPLES / "check" / "io_ambiguous"), "--out", str(out), "--engine", "pure")
    assert result.code == 2 and not out.exists()
    line = _one_line(result.stderr)
    assert "cannot choose the serving signature" in line and "--input a=a:0 --input b=b:0 --output probs=probs:0" in line
    for candidate in ("probs=probs:0", "label=label:0", "similarity=similarity:0", "b_copy=b_copy:0"):
        assert candidate in result.stderr
    flags = line.split("add for example: ", 1)[1].split()
    again = cli("export", str(SAMPLES / "check" / "io_ambiguous"), "--out", str(out), "--engine", "pure", *flags)
    assert again.code == 0, again.stderr
    assert sorted(load_model(out).signatures()["serving_default"].outputs) == ["b_copy", "label", "probs", "similarity"]


def test_check_errors_refuse_unless_forced(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    result = cli("export", str(SAMPLES / "check" / "shape_changed"), "--out", str(out), "--engine", "pure")
    assert result.code == 1 and not out.exists() and result.stderr.count("\n") == 1
    line = _one_line(result.stderr)
    assert "restore.shape-mismatch: the graph's variable dense1/kernel is [4, 8]" in line and "--force" in line
    forced = cli("export", str(SAMPLES / "check" / "shape_changed"), "--out", str(out), "--engine", "pure",
                     "--force", "--json")
    assert forced.code == 0, forced.stderr
    assert forced.json()["verdict"].startswith("NOT READY")
    assert (out / "saved_model.pb").is_file()


def test_tf_engine_without_tensorflow_says_what_to_install(tmp_path: Path, cli: Cli) -> None:
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed here")
    out = tmp_path / "out"
    result = cli("export", str(SAMPLES / "check" / "io_unambiguous"), "--out", str(out), "--engine", "tf")
    assert result.code == 2 and not out.exists()
    assert "pip install 'metainspect[tf]'" in _one_line(result.stderr)
    default = cli("export", str(SAMPLES / "check" / "io_unambiguous"), "--out", str(out), "--json")
    assert default.code == 0 and default.json()["engine"] == "pure"


def test_missing_output_tensor_is_one_line(tmp_path: Path, cli: Cli) -> None:
    result = cli("export", str(SAMPLES / "mlp"), "--frozen", str(tmp_path / "f.pb"), "--engine", "pure",
                     "--input", "x=x:0", "--output", "p=probz:0")
    assert result.code == 1 and not (tmp_path / "f.pb").exists() and result.stderr.count("\n") == 1
    assert "signature.missing-tensor" in result.stderr and "'probz'" in result.stderr


def test_cli_json_summary(tmp_path: Path, cli: Cli) -> None:
    out, frozen = tmp_path / "sm", tmp_path / "f.pb"
    result = cli("export", str(SAMPLES / "mlp"), "--out", str(out), "--frozen", str(frozen), "--engine", "pure",
                     "--input", "x=x:0", "--output", "probs=probs:0", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["saved_model"] == str(out) and data["frozen"] == str(frozen)
    assert data["inputs"] == {"x": {"tensor": "x:0", "dtype": "float32", "shape": [None, 4]}}
    assert data["outputs"]["probs"]["dtype"] == "float32" and data["signature_source"] == "given"
    assert data["frozen_inputs"] == ["x", "keep_prob"] and data["constants"] == 4
    json.dumps(data)


def test_api_needs_an_output_path() -> None:
    with pytest.raises(MetainspectError, match="nothing to write"):
        export(str(SAMPLES / "mlp"))


def test_progress_reports_steps_and_bytes(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    export_saved_model(str(SAMPLES / "mlp"), str(tmp_path / "e"), MLP_SIGNATURE, engine="pure",
                       progress=lambda step, done, total: seen.append((step, done, total)))
    total = sum(p.stat().st_size for p in (SAMPLES / "mlp").glob("model.ckpt-3.*") if p.suffix != ".meta")
    copying = [(done, all_) for step, done, all_ in seen if step == "copying variables"]
    assert copying[0] == (0, total) and copying[-1] == (total, total)
    assert seen[:2] == [("checking", 0, 1), ("checking", 1, 1)]


def test_progress_bars_draw_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from metainspect.cli.progress import progress_bars

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bars() as progress:
        progress("copying variables", 0, 100)
        progress("copying variables", 100, 100)
    assert "copying variables" in terminal.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_bars() as progress:
        progress("copying variables", 1, 2)
    assert sys.stderr.getvalue() == ""


def test_tf2_checkpoint_without_a_factory_says_how(tmp_path: Path, cli: Cli) -> None:
    result = cli("export", str(SAMPLES / "ckpt_tf2"), "--out", str(tmp_path / "e"), "--engine", "pure")
    assert result.code == 2
    assert "TF2 object-based checkpoint" in _one_line(result.stderr) and "--model-factory" in result.stderr


def test_model_factory_needs_tensorflow(tmp_path: Path, cli: Cli) -> None:
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed here")
    result = cli("export", str(SAMPLES / "ckpt_tf2"), "--out", str(tmp_path / "e"),
                     "--model-factory", "my_model:build", "--input-spec", "x:float32:?,3")
    assert result.code == 2 and result.stderr.count("\n") == 1
    assert "pip install 'metainspect[tf]'" in result.stderr and "--engine pure" not in result.stderr


def test_input_spec_parsing() -> None:
    from metainspect.cli.options import parse_input_spec
    from metainspect.export.tf2_factory import InputSpec

    assert parse_input_spec("x:float32:?,3") == InputSpec("x", "float32", [None, 3])
    assert parse_input_spec("ids:int64:-1") == InputSpec("ids", "int64", [None])
    assert parse_input_spec("scale:half:") == InputSpec("scale", "float16", [])
    assert parse_input_spec("any:string:*") == InputSpec("any", "string", None)
    for bad in ("x:float32", "x:floaty:3", "x:float32:3,a", ":float32:3"):
        with pytest.raises(MetainspectError, match=r"^--input-spec "):
            parse_input_spec(bad)


def test_factory_loading_errors_are_one_line(tmp_path: Path) -> None:
    from metainspect.export.tf2_factory import load_factory

    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "ok.py").write_text("def build():\n    return 42\n")
    assert load_factory(f"{tmp_path / 'ok.py'}:build")() == 42
    with pytest.raises(MetainspectError, match="RuntimeError: boom"):
        load_factory(f"{tmp_path / 'broken.py'}:build")
    with pytest.raises(MetainspectError, match="has no function 'make'"):
        load_factory(f"{tmp_path / 'ok.py'}:make")
    with pytest.raises(MetainspectError, match="expected module:function"):
        load_factory("just_a_module")


def test_refused_freeze_writes_nothing(tmp_path: Path) -> None:
    out, frozen = tmp_path / "sm", tmp_path / "f.pb"
    options = ExportOptions(inputs={"x": "x:0", "labels": "labels:0"}, outputs={"train": "train"}, force=True)
    with pytest.raises(MetainspectError, match="writes variable"):
        export(str(SAMPLES / "mlp"), out=str(out), frozen=str(frozen), options=options, engine="pure")
    assert list(tmp_path.iterdir()) == []
