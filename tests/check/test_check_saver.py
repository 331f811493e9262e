"""The saver check on graphs TensorFlow wrote: SaverDef names, restore-op formats, collections."""

from __future__ import annotations

from pathlib import Path

import pytest

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.saver import check_saver
from metainspect.checkpoint import open_checkpoint
from metainspect.graph.model import Model, load_model
from metainspect.graph.saver import SAVER, VARIABLES, restore_plan

from helpers.paths import SAMPLES

CHECK = SAMPLES / "check"


def saver_findings(model: Model | str | Path, checkpoint: str | Path | None = None) -> list[Finding]:
    if not isinstance(model, Model):
        model = load_model(model)
    if checkpoint is None:
        return check_saver(CheckContext(model))
    with open_checkpoint(checkpoint) as ckpt:
        return check_saver(CheckContext(model, ckpt))


def ids(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings]


@pytest.mark.parametrize(("graph", "checkpoint"), [
    ("mlp/model.ckpt-3", "mlp/model.ckpt-3"), ("ckpt_v1/model.ckpt.meta", "ckpt_v1/model.ckpt"),
    ("ckpt_tf1_sharded/model.ckpt", "ckpt_tf1_sharded/model.ckpt"), ("ckpt_partitioned/model.ckpt", "ckpt_partitioned/model.ckpt"),
    ("savedmodel_tf1", "savedmodel_tf1"), ("savedmodel_tf2", "savedmodel_tf2"), ("check/renamed_scope/model.meta", "check/renamed_scope/model.ckpt"),
])
def test_savers_tensorflow_wrote_are_clean(graph: str, checkpoint: str) -> None:
    assert saver_findings(SAMPLES / graph, SAMPLES / checkpoint) == []


def test_graph_without_saver_def() -> None:
    (finding,) = saver_findings(SAMPLES / "functions" / "functions.meta")
    assert finding.id == "saver.no-saver" and finding.severity == INFO
    assert "tf.compat.v1.train.Saver()" in finding.fix
    assert saver_findings(SAMPLES / "frozen" / "frozen.pb") == []  # nothing to save, nothing to say


@pytest.mark.parametrize("field", ["filename_tensor_name", "save_tensor_name", "restore_op_name"])
def test_saver_def_naming_a_missing_node(field: str) -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    setattr(model.meta_graph.saver_def, field, "gone/Const:0")
    findings = saver_findings(model, CHECK / "io_unambiguous" / "model.ckpt")
    (finding,) = [f for f in findings if f.severity == ERROR]
    assert finding.id == "saver.missing-tensor" and findings[0] == finding
    assert finding.subject == "gone/Const:0" and finding.details["field"] == field


def test_restore_op_that_restores_nothing_falls_back_to_variable_names() -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    model.meta_graph.saver_def.restore_op_name = "input"
    finding, others = saver_findings(model, CHECK / "io_unambiguous" / "model.ckpt")
    assert finding.id == "saver.no-restore-ops" and finding.severity == WARNING
    assert restore_plan(model).source == VARIABLES
    # the restore ops the SaverDef no longer runs show up as another saver's
    assert others.id == "saver.several-savers" and others.details["other_scopes"] == ["save/"]


def test_saver_writing_other_keys_than_it_restores() -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    names = next(n for n in model.graph_def.node if n.name == "save/SaveV2/tensor_names")
    names.attr["value"].tensor.string_val[0] = b"hidden/bias_v2"
    (finding,) = saver_findings(model, CHECK / "io_unambiguous" / "model.ckpt")
    assert finding.id == "saver.save-restore-mismatch" and finding.severity == WARNING
    assert finding.details == {"written_not_restored": ["hidden/bias_v2"], "restored_not_written": ["hidden/bias"]}


def test_v2_saver_reading_a_v1_checkpoint_is_only_a_note() -> None:
    """RestoreV2 falls back to V1 files (TF 2.21 restores them), the next save writes V2."""
    findings = saver_findings(SAMPLES / "mlp" / "model.ckpt-3", SAMPLES / "ckpt_v1" / "model.ckpt")
    (finding,) = findings
    assert finding.id == "saver.version-mismatch" and finding.severity == INFO
    assert finding.details == {"saver_version": "V2", "checkpoint_format": "V1"}


def test_v1_saver_with_restore_v2_ops_reads_a_v2_checkpoint() -> None:
    model = load_model(SAMPLES / "ckpt_v1" / "model.ckpt.meta")
    assert {n.op for n in restore_plan(model).restore_ops} == {"RestoreV2"}
    (finding,) = saver_findings(model, SAMPLES / "mlp" / "model.ckpt-3")
    assert finding.id == "saver.version-mismatch" and finding.details["saver_version"] == "V1"


def test_dangling_collection_entry_blocks_import_meta_graph() -> None:
    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    model.meta_graph.collection_def["my_outputs"].node_list.value.extend(["output", "train/Adam"])
    (finding,) = saver_findings(model, CHECK / "io_unambiguous" / "model.ckpt")
    assert finding.id == "saver.dangling-collection" and finding.severity == ERROR
    assert finding.subject == "my_outputs" and finding.details["missing"] == ["train/Adam"]


def test_variable_def_naming_a_missing_variable() -> None:
    from tensorboard.compat.proto.variable_pb2 import VariableDef

    model = load_model(CHECK / "io_unambiguous" / "model.meta")
    model.meta_graph.collection_def["variables"].bytes_list.value.append(
        VariableDef(variable_name="ghost:0", initializer_name="ghost/Assign", snapshot_name="ghost/read:0").SerializeToString())
    (finding,) = saver_findings(model)
    assert finding.id == "saver.dangling-collection" and finding.details["missing"] == ["ghost:0", "ghost/Assign", "ghost/read:0"]


# -- third-party graphs --------------------------------------------------------------------------


def test_legacy_restore_slice_ops_cannot_read_a_v2_checkpoint(real_models: Path) -> None:
    """TF 2.21 on this pair: "Unsuccessful TensorSliceReader constructor: Failed to find any matching files"."""
    model = load_model(real_models / "255BITS_vocal-autoencoder" / "model.ckpt.meta")
    plan = restore_plan(model)
    assert plan.source == SAVER and {n.op for n in plan.restore_ops} == {"RestoreSlice"}
    assert saver_findings(model, real_models / "255BITS_vocal-autoencoder" / "model.ckpt") == []
    (finding,) = saver_findings(model, SAMPLES / "mlp" / "model.ckpt-3")
    assert finding.id == "saver.cannot-read-format" and finding.severity == ERROR
    assert finding.subject == "save/restore_slice"


def test_tflearn_graph_with_four_savers_and_a_dangling_train_op(real_models: Path) -> None:
    """TF 2.21's import_meta_graph on it: KeyError "The name 'Adam' refers to an Operation not in the graph"."""
    base = real_models / "Adiprogrammer7_intent_based_chatbot" / "chatbot_model.tflearn"
    findings = saver_findings(f"{base}.meta", base)
    assert ids(findings) == ["saver.dangling-collection", "saver.several-savers"]
    assert findings[0].subject == "trainops" and findings[0].details["missing"] == ["Adam"]
    assert findings[1].details["other_scopes"] == ["save_1/", "save_2/", "save_3/"]
