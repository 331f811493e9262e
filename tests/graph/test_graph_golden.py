"""Every graph sample in sample_meta/ read by metainspect equals what TensorFlow reported."""

from __future__ import annotations

import json
from typing import Any

import pytest

from metainspect.graph.model import Model, load_model

from helpers.cli import Cli
from helpers.paths import SAMPLES, golden_files

GOLDEN = golden_files("graph")


def _cases() -> list[Any]:
    cases = []
    for golden_path in GOLDEN:
        golden = json.loads(golden_path.read_text())
        target = golden_path.parent / golden["file"] if "file" in golden else golden_path.parent
        graphs = golden.get("meta_graphs") or [golden]
        for graph in graphs:
            label = f"{golden_path.parent.relative_to(SAMPLES)}[{','.join(graph.get('tags') or [])}]"
            cases.append(pytest.param((target, graph, golden), id=label))
    return cases


def test_samples_have_graph_goldens() -> None:
    names = {p.parent.name for p in GOLDEN}
    assert {"mlp", "frozen", "savedmodel_tf1", "savedmodel_tf2", "functions", "control_flow"} <= names


@pytest.fixture(params=_cases())
def case(request: pytest.FixtureRequest) -> tuple[Model, dict[str, Any], dict[str, Any]]:
    target, graph, golden = request.param
    model = load_model(target, graph.get("tags") or None if "meta_graphs" in golden else None)
    return model, graph, golden


def test_kind(case) -> None:  # type: ignore[no-untyped-def]
    model, _, golden = case
    assert model.kind == golden["kind"]


def test_nodes(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    ours = [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "control_inputs": list(n.control_inputs),
             "device": n.device} for n in model.nodes()]
    assert ours == graph["nodes"]
    assert dict(model.op_histogram()) == graph["op_counts"]


def test_placeholders(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    ours = [{"name": p.name, "op": p.op, "dtype": p.dtype, "shape": p.shape}
            for p in model.placeholders(include_saver=True)]
    assert ours == graph["placeholders"]


def test_saver_placeholders_are_hidden_by_default(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    visible = {p.name for p in model.placeholders()}
    saver = (graph.get("saver_def") or {}).get("filename_tensor_name", "")
    if saver:
        assert saver.split(":")[0] not in visible
    user = {p["name"] for p in graph["placeholders"] if not p["name"].startswith("save")}
    assert user <= visible


def test_variables(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, golden = case
    if golden["kind"] == "graph_def":  # frozen: TF folded every variable into a Const
        assert model.variables() == []
        return
    ours = {v.name: v for v in model.variables()}
    for expected in graph["variables"]:
        name = expected["name"].removesuffix(":0")
        assert name in ours, f"{name} missing from {sorted(ours)}"
        var = ours[name]
        assert (var.dtype, var.shape, var.resource) == (expected["dtype"], expected["shape"], expected["resource"])
        assert var.trainable == expected["trainable"]


def test_collections(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    assert [{"name": c.name, "kind": c.kind, "size": c.size} for c in model.collections()] == graph["collections"]


def test_saver_def(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    expected = graph.get("saver_def")
    ours = model.saver_def()
    if not expected:
        assert not ours or not any(v for k, v in ours.items() if k != "version")
        return
    defaults = {"sharded": False, "max_to_keep": 0, "keep_checkpoint_every_n_hours": 0.0, "version": "LEGACY"}
    for key, value in ours.items():  # type: ignore[union-attr]
        assert value == expected.get(key, defaults.get(key, "")), key


def test_signatures(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    ours = {
        key: {"method_name": s.method_name,
              "inputs": {k: {"name": v.name, "dtype": v.dtype, "shape": v.shape} for k, v in s.inputs.items()},
              "outputs": {k: {"name": v.name, "dtype": v.dtype, "shape": v.shape} for k, v in s.outputs.items()}}
        for key, s in model.signatures().items()
    }
    assert ours == graph["signature_defs"]


def test_meta_info(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    assert model.tags == graph["tags"]
    assert model.meta_info()["tensorflow_version"] == graph["tensorflow_version"]


def test_functions(case) -> None:  # type: ignore[no-untyped-def]
    model, graph, _ = case
    ours = [{"name": f.name, "nodes": [{"name": n.name, "op": n.op} for n in f.nodes]} for f in model.functions()]
    assert sorted(ours, key=lambda f: f["name"]) == sorted(graph["functions"], key=lambda f: f["name"])


def test_text_and_binary_frozen_graphs_agree() -> None:
    binary = load_model(SAMPLES / "frozen" / "frozen.pb")
    text = load_model(SAMPLES / "frozen" / "frozen.pbtxt")
    assert (binary.encoding, text.encoding) == ("binary", "text")
    assert text.graph_def == binary.graph_def


def test_checkpoint_prefix_finds_its_meta() -> None:
    meta = next((SAMPLES / "mlp").glob("*.meta"))
    assert load_model(str(meta)[: -len(".meta")]).path == str(meta)


def test_directory_with_checkpoint_state_finds_latest_meta() -> None:
    assert load_model(SAMPLES / "mlp").path.endswith(".meta")


def test_savedmodel_tags_select_meta_graph() -> None:
    golden = json.loads((SAMPLES / "savedmodel_tf1" / "golden.json").read_text())
    for graph in golden["meta_graphs"]:
        assert load_model(SAMPLES / "savedmodel_tf1", graph["tags"]).tags == graph["tags"]


def test_variable_checkpoint_keys_come_from_the_saver() -> None:
    model = load_model(SAMPLES / "mlp")
    keys = {v.name: v.checkpoint_key for v in model.variables()}
    assert keys["dense1/kernel"] == "dense1/kernel"
    assert keys["dense1/kernel/Adam"] == "dense1/kernel/Adam"
    assert set(model.saver_keys()) >= set(keys)


def test_attrs_decode_to_python_values() -> None:
    model = load_model(SAMPLES / "mlp")
    x = model.node("x:0")
    assert x is not None and x.attrs["dtype"] == "float32" and x.attrs["shape"] == [None, 4]


def test_colocation_is_reported() -> None:
    model = load_model(next((SAMPLES / "control_flow").glob("*.meta")))
    assert any(node.colocation for node in model.nodes())
    assert any(node.device for node in model.nodes())


def test_text_format_meta_graph_and_saved_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from google.protobuf import text_format

    meta = load_model(next((SAMPLES / "mlp").glob("*.meta")))
    (tmp_path / "model.meta").write_text(text_format.MessageToString(meta.meta_graph))
    text_meta = load_model(tmp_path / "model.meta")
    assert (text_meta.kind, text_meta.encoding) == ("meta_graph", "text")
    assert text_meta.meta_graph == meta.meta_graph

    from metainspect.proto.saved_model_pb2 import SavedModel

    binary = SavedModel.FromString((SAMPLES / "savedmodel_tf1" / "saved_model.pb").read_bytes())
    saved_dir = tmp_path / "exported"
    saved_dir.mkdir()
    (saved_dir / "saved_model.pbtxt").write_text(text_format.MessageToString(binary))
    text_saved = load_model(saved_dir, ["serve"])
    assert (text_saved.kind, text_saved.encoding, text_saved.all_tags) == ("saved_model", "text", [list(m.meta_info_def.tags) for m in binary.meta_graphs])
    assert text_saved.signatures() == load_model(SAMPLES / "savedmodel_tf1", ["serve"]).signatures()


@pytest.mark.parametrize("sample", ["mlp", "savedmodel_tf1"])
def test_info_names_tensors_once(sample: str, cli: Cli) -> None:
    """`info` lists inputs/outputs as tensor names, from a signature or guessed, never `x:0:0`."""
    result = cli("info", str(SAMPLES / sample), "--json")
    assert result.code == 0, result.stderr
    names = [i["name"] for i in result.json()["inputs"]] + result.json()["outputs"]
    assert names and all(n.count(":") == 1 and n.rsplit(":", 1)[1].isdigit() for n in names), names
    text = cli("info", str(SAMPLES / sample)).stdout
    assert ":0:0" not in text and names[0] in text


@pytest.mark.parametrize("given", ["ckpt_v1/model.ckpt", "mlp/model.ckpt-3.index", "mlp/model.ckpt-3.data-00000-of-00001"])
def test_checkpoint_files_lead_to_the_meta_beside_them(given: str) -> None:
    from metainspect.graph.model import load_model

    assert load_model(SAMPLES / given).path.endswith(".meta")


def test_checkpoint_index_without_meta_is_the_wrong_kind() -> None:
    from metainspect.errors import WrongKindError
    from metainspect.graph.model import load_model

    with pytest.raises(WrongKindError, match="open it with open_checkpoint"):
        load_model(SAMPLES / "ckpt_dtypes" / "model.ckpt.index")
