"""edit: each operation on the TF-written samples, without TensorFlow (TF is the judge in test_tf_edit.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format

from metainspect.cli.options import parse_shape_assignment
from metainspect.edit import (
    ChangeLog,
    EditSpec,
    NewSignature,
    add_signature,
    apply_edits,
    clear_devices,
    drop_collection,
    open_target,
    prune_to,
    remove_signature,
    rename,
    set_shape,
    set_tags,
    strip_training,
    write_output,
)
from metainspect.edit.references import NAME, collect
from metainspect.errors import MetainspectError
from metainspect.formats.graph_file import read_graph_file
from metainspect.graph.model import load_model
from metainspect.graph.names import split_reference
from metainspect.graph.saver import string_values

from helpers.cli import Cli
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp" / "model.ckpt-3.meta"
PINNED = SAMPLES / "check" / "device_pinned" / "model.meta"
CONTROL_FLOW = SAMPLES / "control_flow" / "control_flow.meta"


def meta_of(path: Path):  # type: ignore[no-untyped-def]
    return open_target(path).meta_graph


def dangling(meta_graph) -> list[str]:  # type: ignore[no-untyped-def]
    """Every reference (inputs, colocations, collections, saver, signatures) naming no node."""
    names = {node.name for node in meta_graph.graph_def.node}
    refs = [split_reference(ref)[1] for node in meta_graph.graph_def.node for ref in node.input]
    refs += [v.decode()[5:] for node in meta_graph.graph_def.node if "_class" in node.attr
             for v in node.attr["_class"].list.s if v.startswith(b"loc:@")]
    refs += [split_reference(ref)[1] for ref in collect(meta_graph, NAME)]
    return sorted({ref for ref in refs if ref not in names})


# -- clear-devices ---------------------------------------------------------------------------

def test_clear_devices_counts_and_clears_every_node() -> None:
    meta_graph = meta_of(PINNED)
    pinned = [n.name for n in meta_graph.graph_def.node if n.device]
    log = ChangeLog()
    assert clear_devices(meta_graph, log) == len(pinned) == 10
    assert not [n for n in meta_graph.graph_def.node if n.device]
    assert [c.subject for c in log.changes] == [f"node {name}" for name in pinned]
    assert all(c.operation == "clear-devices" for c in log.changes)


def test_clear_devices_reaches_function_bodies_and_saved_variables() -> None:
    meta_graph = meta_of(SAMPLES / "savedmodel_tf2")
    fn = meta_graph.graph_def.library.function[0]
    fn.node_def[0].device = "/device:GPU:0"
    var = next(n.variable for n in meta_graph.object_graph_def.nodes if n.WhichOneof("kind") == "variable")
    var.device = "/job:ps"
    count = clear_devices(meta_graph)
    assert count >= 3  # the Const pinned by TF, the function node, the saved variable
    assert not fn.node_def[0].device and not var.device


# -- files: kind, encoding, safety -----------------------------------------------------------

@pytest.mark.parametrize(("source", "edit"), [
    (MLP, ["--set-tags", ""]),
    (SAMPLES / "frozen" / "frozen.pb", ["--clear-devices"]),
    (SAMPLES / "frozen" / "frozen.pbtxt", ["--clear-devices"]),
])
def test_no_op_edit_is_proto_equal_in_the_same_encoding(tmp_path: Path, source: Path, edit: list[str], cli: Cli) -> None:
    out = tmp_path / source.name
    result = cli("edit", str(source), "-o", str(out), *edit)
    assert result.code == 0, result.stderr
    assert "0 changes" in result.stdout
    before, after = read_graph_file(source), read_graph_file(out)
    assert (after.kind, after.encoding) == (before.kind, before.encoding)
    assert after.meta_graphs == before.meta_graphs
    if before.encoding == "text":
        text_format.Parse(out.read_text(), type(before.meta_graphs[0].graph_def)())


def test_saved_model_directory_becomes_a_new_directory(tmp_path: Path, cli: Cli) -> None:
    source = SAMPLES / "savedmodel_tf2"
    out = tmp_path / "copy"
    assert cli("edit", str(source), "-o", str(out), "--set-tags", "serve").code == 0
    assert sorted(os.listdir(out)) == sorted(os.listdir(source))  # unchanged graph: fingerprint kept
    for rel in ("variables/variables.index", "variables/variables.data-00000-of-00001", "fingerprint.pb"):
        assert (out / rel).read_bytes() == (source / rel).read_bytes()
    assert read_graph_file(out / "saved_model.pb").meta_graphs == read_graph_file(source / "saved_model.pb").meta_graphs

    changed = tmp_path / "changed"
    result = cli("edit", str(source), "-o", str(changed), "--clear-devices")
    assert result.code == 0, result.stderr
    assert not (changed / "fingerprint.pb").exists() and "fingerprint.pb not copied" in result.stdout
    assert (changed / "variables" / "variables.index").read_bytes() == (source / "variables" / "variables.index").read_bytes()
    refused = cli("edit", str(source), "-o", str(changed), "--clear-devices")
    assert refused.code == 2 and "already exists" in refused.stderr


def test_saved_model_output_inside_the_input_is_refused(tmp_path: Path, cli: Cli) -> None:
    source = tmp_path / "sm"
    shutil.copytree(SAMPLES / "savedmodel_tf2", source)
    result = cli("edit", str(source), "-o", str(source / "inner"), "--clear-devices")
    assert result.code == 2 and "inside the input" in result.stderr
    assert not (source / "inner").exists()


def test_never_over_the_input_without_in_place(tmp_path: Path, cli: Cli) -> None:
    model = tmp_path / "model.meta"
    shutil.copy(PINNED, model)
    original = model.read_bytes()
    result = cli("edit", str(model), "-o", str(model), "--clear-devices")
    assert result.code == 2 and "--in-place" in result.stderr
    assert model.read_bytes() == original
    result = cli("edit", str(model), "--clear-devices")
    assert result.code == 2 and model.read_bytes() == original


def test_in_place_keeps_numbered_backups(tmp_path: Path, cli: Cli) -> None:
    model = tmp_path / "model.meta"
    shutil.copy(PINNED, model)
    original = model.read_bytes()
    result = cli("edit", str(model), "--in-place", "--clear-devices")
    assert result.code == 0, result.stderr
    assert (tmp_path / "model.meta.bak").read_bytes() == original
    assert not [n for n in load_model(model).nodes() if n.device]
    again = cli("edit", str(model), "--in-place", "--clear-devices")  # nothing left to change
    assert again.code == 0 and "nothing to change" in again.stdout
    assert not (tmp_path / "model.meta.bak.1").exists()
    cli("edit", str(model), "--in-place", "--set-tags", "serve")
    assert (tmp_path / "model.meta.bak.1").exists()
    assert (tmp_path / "model.meta.bak").read_bytes() == original


def test_in_place_on_a_saved_model_moves_the_stale_fingerprint_aside(tmp_path: Path, cli: Cli) -> None:
    directory = tmp_path / "sm"
    shutil.copytree(SAMPLES / "savedmodel_tf2", directory)
    assert cli("edit", str(directory), "--in-place", "--clear-devices").code == 0
    assert (directory / "saved_model.pb.bak").exists() and (directory / "fingerprint.pb.bak").exists()
    assert not (directory / "fingerprint.pb").exists()


def test_plan_writes_nothing_and_lists_every_change(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out.meta"
    result = cli("edit", str(PINNED), "-o", str(out), "--clear-devices", "--plan", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert not out.exists() and data["written"] is False
    assert len(data["changes"]) == 10 and data["counts"] == {"clear-devices": 10}
    assert data["changes"][0] == {"operation": "clear-devices", "subject": "node w", "detail": "device /job:ps/task:0 cleared"}


def test_usage_errors_are_one_line(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "a_file").write_bytes(b"")  # a directory cannot be made under a file
    for args, message in [
        ((str(MLP), "-o", str(tmp_path / "x.meta")), "no edit given"),
        ((str(MLP), "--plan", "--input", "x=x:0"), "belong to --add-signature"),
        ((str(MLP), "--plan", "--set-shape", "x=?,a"), "not a size"),
        ((str(MLP), "--plan", "--rename", "noequals"), "expected OLD=NEW"),
        ((str(SAMPLES / "frozen" / "frozen.pb"), "--plan", "--set-tags", "serve"), "bare GraphDef"),
        ((str(MLP), "-o", str(tmp_path / "a_file" / "x.meta"), "--set-tags", "a"), "cannot write"),
    ]:
        result = cli("edit", *args)
        assert result.code == 2, (args, result.stdout)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


# -- rename ----------------------------------------------------------------------------------

def test_rename_scope_updates_every_reference_and_the_checkpoint_keys() -> None:
    meta_graph = meta_of(MLP)
    log = ChangeLog()
    renamed = rename(meta_graph, ["dense1=net/dense1"], log)
    assert renamed.nodes["dense1/kernel"] == "net/dense1/kernel" and "dense2/kernel" not in renamed.nodes
    assert renamed.keys["dense1/kernel/Adam"] == "net/dense1/kernel/Adam" and "global_step" not in renamed.keys
    names = [n.name for n in meta_graph.graph_def.node]
    assert not [n for n in names if n.startswith("dense1")]
    assert dangling(meta_graph) == []
    model = load_model(MLP)
    model.meta_graph.CopyFrom(meta_graph)
    keys = {v.name: v.checkpoint_key for v in model.variables()}
    assert keys["net/dense1/kernel"] == "net/dense1/kernel" and keys["net/dense1/kernel/Adam_1"] == "net/dense1/kernel/Adam_1"
    assert keys["dense2/kernel"] == "dense2/kernel"
    variable_names = [v.variable_name for v in model.collection("variables").items]
    assert "net/dense1/bias:0" in variable_names and "dense1/bias:0" not in variable_names
    text = text_format.MessageToString(meta_graph)
    assert "loc:@net/dense1/bias" in text and '"dense1/' not in text and "loc:@dense1" not in text
    assert any("checkpoint key dense1/kernel -> net/dense1/kernel" in c.detail for c in log.changes)


def test_rename_by_regex_and_the_saver_scope() -> None:
    meta_graph = meta_of(MLP)
    rename(meta_graph, [r"re:^save/(.*)$=saver/\1"], None)
    assert meta_graph.saver_def.filename_tensor_name == "saver/Const:0"
    assert meta_graph.saver_def.restore_op_name == "saver/restore_all"
    assert dangling(meta_graph) == []


def test_rename_control_flow_contexts_and_frames() -> None:
    meta_graph = meta_of(CONTROL_FLOW)
    rename(meta_graph, ["loop=L", "cond=C"])
    assert dangling(meta_graph) == []
    model = load_model(CONTROL_FLOW)
    model.meta_graph.CopyFrom(meta_graph)
    (ctx,) = model.collection("while_context").items
    assert ctx.context_name == "L/while_context" and ctx.values_def.external_values["C/Merge:0"] == "L/add_1/Enter:0"
    frames = {n.proto.attr["frame_name"].s for n in model.nodes() if n.op == "Enter"}
    assert frames == {b"L/while_context"}
    assert {c.context_name for c in model.collection("cond_context").items} == {"C/cond_text", "C/cond_text_1"}


def test_rename_signature_and_asset_tensors() -> None:
    target = open_target(SAMPLES / "savedmodel_tf1")
    rename(target.meta_graph, [r"re:^(.*)$=m/\1"])
    assert dangling(target.meta_graph) == []
    sig = target.meta_graph.signature_def["serving_default"]
    assert sig.inputs["x"].name == "m/x:0"
    assert all(a.tensor_info.name.startswith("m/") for a in target.meta_graph.asset_file_def)


def test_renamed_text_graph_def_stays_text(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "frozen.pbtxt"
    result = cli("edit", str(SAMPLES / "frozen" / "frozen.pbtxt"), "-o", str(out), "--rename", "dense1=d1")
    assert result.code == 0, result.stderr
    graph = read_graph_file(out)
    assert (graph.kind, graph.encoding) == ("graph_def", "text")
    assert "d1/MatMul" in {n.name for n in graph.meta_graphs[0].graph_def.node}
    assert "dense1/" not in out.read_text() and dangling(graph.meta_graphs[0]) == []


def test_renaming_a_saved_model_renames_every_meta_graph_and_its_variables(tmp_path: Path, cli: Cli) -> None:
    from metainspect import open_checkpoint

    out = tmp_path / "sm"
    result = cli("edit", str(SAMPLES / "savedmodel_tf1"), "-o", str(out), "--rename", "dense1=net")
    assert result.code == 0, result.stderr
    assert "variables/ rewritten" in result.stdout and "meta graph train: node dense1/kernel" in result.stdout
    with open_checkpoint(out / "variables" / "variables") as ckpt:
        assert "net/kernel/Adam" in ckpt.keys() and "dense1/kernel" not in ckpt.keys()
    for tags in (["serve"], ["train"]):
        keys = {key for entries in load_model(out, tags).saver_keys().values() for key, _ in entries}
        assert "net/kernel" in keys and "dense1/kernel" not in keys
    in_place = tmp_path / "in_place"
    shutil.copytree(SAMPLES / "savedmodel_tf1", in_place)
    refused = cli("edit", str(in_place), "--in-place", "--rename", "dense1=net")
    assert refused.code == 2 and "write a new SavedModel with -o" in refused.stderr
    assert not (in_place / "saved_model.pb.bak").exists()


@pytest.mark.parametrize(("rules", "message"), [
    (["dense1=dense2"], "would both become"),
    (["nothere=x"], "matches no node"),
    (["dense1=ok", "dense1=again"], "matches no node"),  # shadowed by the first rule
    (["re:^x$=bad name"], "TensorFlow refuses"),
])
def test_bad_renames_are_refused_before_any_change(rules: list[str], message: str) -> None:
    meta_graph = meta_of(MLP)
    before = meta_graph.SerializeToString()
    with pytest.raises(MetainspectError, match=message):
        rename(meta_graph, rules)
    assert meta_graph.SerializeToString() == before


def test_refused_rename_writes_nothing(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out.meta"
    result = cli("edit", str(MLP), "-o", str(out), "--clear-devices", "--rename", "dense1=dense2")
    assert result.code == 2 and "would both become" in result.stderr and str(MLP) in result.stderr
    assert not out.exists()


# -- prune-to and strip-training --------------------------------------------------------------

def test_strip_training_keeps_model_variables_and_a_consistent_saver() -> None:
    meta_graph = meta_of(MLP)
    removed = strip_training(meta_graph)
    model = load_model(MLP)
    model.meta_graph.CopyFrom(meta_graph)
    names = {n.name for n in model.nodes()}
    assert removed == len(meta_of(MLP).graph_def.node) - len(names) > 250
    assert not [n for n in model.nodes() if n.op == "ApplyAdam" or n.name.startswith(("gradients/", "train"))]
    assert not [n for n in model.nodes() if "Summary" in n.op]
    assert {"probs", "prediction", "x", "init", "save/restore_all"} <= names
    assert sorted(v.name for v in model.variables()) == [
        "dense1/bias", "dense1/kernel", "dense2/bias", "dense2/kernel", "global_step"]
    assert sorted(k for keys in model.saver_keys().values() for k, _ in keys) == [
        "dense1/bias", "dense1/kernel", "dense2/bias", "dense2/kernel", "global_step"]
    assert model.collection("train_op") is None and model.collection("summaries") is None
    assert model.collection("my_outputs").items == ["probs:0"]
    assert dangling(meta_graph) == []
    # every restore assign reads the output whose key names the variable it assigns
    restore = model.node("save/RestoreV2")
    keys = string_values(model.node(restore.inputs[1]).proto)
    assert len(restore.proto.attr["dtypes"].list.type) == len(keys) == 5
    for node in model.nodes():
        if node.op == "Assign" and node.inputs[1].startswith("save/RestoreV2"):
            index = int(node.inputs[1].partition(":")[2] or 0)
            assert keys[index] == node.inputs[0]


def test_strip_training_without_training_ops_changes_nothing() -> None:
    meta_graph = meta_of(PINNED)
    before = meta_graph.SerializeToString()
    assert strip_training(meta_graph) == 0
    assert meta_graph.SerializeToString() == before


def test_prune_to_keeps_outputs_saver_and_initialisers() -> None:
    meta_graph = meta_of(MLP)
    log = ChangeLog()
    removed = prune_to(meta_graph, ["probs:0"], log)
    model = load_model(MLP)
    model.meta_graph.CopyFrom(meta_graph)
    names = {n.name for n in model.nodes()}
    assert removed == sum(1 for c in log.changes if c.detail.startswith("removed (")) > 200
    assert {"x", "probs", "dense1/kernel/Initializer/Const", "save/restore_all", "dense1/kernel/Adam"} <= names
    assert not {"labels", "loss", "prediction", "train", "init"} & names
    assert not [n for n in names if n.startswith("gradients/")]
    assert len(model.variables()) == 15  # the saver keeps every variable restorable
    assert dangling(meta_graph) == []


def test_prune_to_unknown_output_is_refused() -> None:
    with pytest.raises(MetainspectError, match="no node 'nope:0'"):
        prune_to(meta_of(MLP), ["nope:0"])


def test_prune_to_drops_signatures_naming_removed_tensors() -> None:
    target = open_target(SAMPLES / "savedmodel_tf1")
    log = ChangeLog()
    prune_to(target.meta_graph, ["probs"], log)
    assert set(target.meta_graph.signature_def) == set()
    assert "signature serving_default" in [c.subject for c in log.changes]
    assert "table_initializer" in target.meta_graph.collection_def  # init machinery kept
    assert dangling(target.meta_graph) == []


# -- shapes, signatures, tags, collections ---------------------------------------------------

def test_parse_shape_assignment() -> None:
    assert parse_shape_assignment("x=?,784") == ("x", [None, 784])
    assert parse_shape_assignment("x=[-1, 3]") == ("x", [None, 3])
    assert parse_shape_assignment("x=") == ("x", [])
    assert parse_shape_assignment("x=*") == ("x", None)


def test_set_shape_updates_attr_and_signatures() -> None:
    target = open_target(SAMPLES / "savedmodel_tf1")
    set_shape(target.meta_graph, "x", [2, 4])
    model = target.model()
    assert [p.shape for p in model.placeholders() if p.name == "x"] == [[2, 4]]
    assert model.signatures()["serving_default"].inputs["x"].shape == [2, 4]


def test_set_shape_refuses_non_placeholders_and_bad_defaults() -> None:
    with pytest.raises(MetainspectError, match="not a placeholder"):
        set_shape(meta_of(MLP), "probs", [None])
    with pytest.raises(MetainspectError, match="default value has shape"):
        set_shape(meta_of(MLP), "keep_prob", [2])
    with pytest.raises(MetainspectError, match="placeholders: x, labels, keep_prob"):
        set_shape(meta_of(MLP), "nope", [2])


def test_add_signature_reads_dtype_and_shape_from_the_graph() -> None:
    meta_graph = meta_of(MLP)
    add_signature(meta_graph, "serving_default", {"x": "x"}, {"probs": "probs:0", "class": "prediction"})
    sig = meta_graph.signature_def["serving_default"]
    assert sig.method_name == "tensorflow/serving/predict"
    assert sig.inputs["x"].name == "x:0" and sig.inputs["x"].dtype == 1
    assert [d.size for d in sig.inputs["x"].tensor_shape.dim] == [-1, 4]
    assert sig.outputs["class"].dtype == 9  # int64


def test_add_signature_refusals() -> None:
    meta_graph = meta_of(SAMPLES / "savedmodel_tf1")
    with pytest.raises(MetainspectError, match="exists"):
        add_signature(meta_graph, "serving_default", {"x": "x"}, {"p": "probs"})
    with pytest.raises(MetainspectError, match="no node named 'nope'"):
        add_signature(meta_graph, "s", {"x": "nope:0"}, {"p": "probs"})
    with pytest.raises(MetainspectError, match="exactly one input 'inputs'"):
        add_signature(meta_graph, "s", {"x": "x"}, {"scores": "probs"}, method="classify")
    with pytest.raises(MetainspectError, match="'classes' must be a string"):
        add_signature(meta_graph, "s", {"inputs": "tf_example"}, {"classes": "prediction"}, method="classify")
    add_signature(meta_graph, "s", {"inputs": "tf_example"}, {"scores": "probs"}, method="classify")
    assert meta_graph.signature_def["s"].method_name == "tensorflow/serving/classify"


def test_remove_signature_drop_collection_set_tags() -> None:
    meta_graph = meta_of(SAMPLES / "savedmodel_tf1")
    remove_signature(meta_graph, "classify")
    assert set(meta_graph.signature_def) == {"serving_default"}
    with pytest.raises(MetainspectError, match="signatures: serving_default"):
        remove_signature(meta_graph, "classify")
    drop_collection(meta_graph, "train_op")
    assert "train_op" not in meta_graph.collection_def
    with pytest.raises(MetainspectError, match="no collection 'train_op'"):
        drop_collection(meta_graph, "train_op")
    set_tags(meta_graph, ["serve", "gpu"])
    assert list(meta_graph.meta_info_def.tags) == ["serve", "gpu"]


def test_set_tags_refuses_a_tag_set_another_meta_graph_has() -> None:
    target = open_target(SAMPLES / "savedmodel_tf1")
    with pytest.raises(MetainspectError, match="already tagged train"):
        apply_edits(target, EditSpec(set_tags=["train"]))


def test_pipeline_renames_last_so_other_options_use_input_names(tmp_path: Path) -> None:
    target = open_target(MLP)
    spec = EditSpec(renames=["dense2=out"], prune_to=["probs"], set_shapes=[("x", [None, 4])],
                    add_signature=NewSignature("serving_default", {"x": "x"}, {"logits": "dense2/BiasAdd"}))
    log = apply_edits(target, spec)
    assert target.meta_graph.signature_def["serving_default"].outputs["logits"].name == "out/BiasAdd:0"
    assert list(log.counts()) == ["prune-to", "add-signature", "rename"]
    out = write_output(target, tmp_path, changed=True).output
    assert Path(out) == tmp_path / MLP.name
    assert load_model(out).signatures()["serving_default"].outputs["logits"].name == "out/BiasAdd:0"


def test_every_real_model_can_be_edited(real_models: Path) -> None:
    """No edit leaves a reference to a missing node that the original did not have."""
    graphs = sorted(p for p in real_models.rglob("*") if p.suffix == ".meta" or p.name == "saved_model.pb")
    assert len(graphs) > 10
    for graph in graphs:
        before = set(dangling(open_target(graph).meta_graph))
        for spec in (EditSpec(clear_devices=True), EditSpec(strip_training=True), EditSpec(renames=[r"re:^(.*)$=m/\1"])):
            target = open_target(graph)
            apply_edits(target, spec)
            assert set(dangling(target.meta_graph)) <= before, (graph, spec)
            assert target.serialize()
