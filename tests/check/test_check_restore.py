"""The restore check against pairs TensorFlow wrote, judged by what TensorFlow's restore said.

Each ``sample_meta/check/*`` pair keeps TF's own verdict in ``golden.json`` (``restore_ok`` and
the error line naming the problem); the restore check must report errors exactly when TF's
``Saver.restore`` failed for a restore reason, naming the key TF named.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.key_matching import KeyMatcher, rename_rule, scope_move
from metainspect.check.restore import check_restore
from metainspect.checkpoint import open_checkpoint
from metainspect.checkpoint.renames import Renamer
from metainspect.cli.options import fix_line
from metainspect.graph.model import load_model
from metainspect.graph.saver import OBJECT_GRAPH, SAVER, VARIABLES, parse_spec, restore_plan

from helpers.paths import SAMPLES

CHECK = SAMPLES / "check"
FIXTURES = sorted(p.parent.name for p in CHECK.glob("*/golden.json"))


def golden(name: str) -> dict:
    return json.loads((CHECK / name / "golden.json").read_text())


def restore_findings(graph: str | Path, checkpoint: str | Path | None = None) -> list[Finding]:
    model = load_model(graph)
    with open_checkpoint(checkpoint) if checkpoint else _none() as ckpt:
        return check_restore(CheckContext(model, ckpt, None if ckpt else "none given"))


class _none:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def pair(name: str) -> list[Finding]:
    return restore_findings(CHECK / name / "model.meta", CHECK / name / "model.ckpt")


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]


def ids(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings]


# -- agreement with TensorFlow on every fixture ---------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_errors_exactly_when_tensorflow_could_not_restore(name: str) -> None:
    data = golden(name)
    # device_pinned fails in TF on device placement, not on the checkpoint: the serving check's concern
    restore_failed = not data["restore_ok"] and "assign a device" not in (data["error_detail"] or "")
    assert bool(errors(pair(name))) == restore_failed, ids(pair(name))


@pytest.mark.parametrize("name", [n for n in FIXTURES if "not found in checkpoint" in (golden(n)["error_detail"] or "")])
def test_first_error_names_the_key_tensorflow_named(name: str) -> None:
    key = re.match(r"Key (\S+) not found in checkpoint", golden(name)["error_detail"])[1]
    assert errors(pair(name))[0].subject == key


def test_shape_mismatch_reports_tensorflows_lhs_and_rhs() -> None:
    detail = golden("shape_changed")["error_detail"]
    lhs, rhs = (json.loads(s) for s in re.findall(r"shape= (\[[\d,]*\])", detail))
    (finding,) = errors(pair("shape_changed"))
    assert finding.id == "restore.shape-mismatch" and finding.subject == "dense1/kernel"
    assert finding.details["graph"]["shape"] == lhs and finding.details["checkpoint"]["shape"] == rhs
    assert "[4, 8]" in finding.message and "[4, 6]" in finding.message


def test_every_changed_shape_is_reported() -> None:
    """TF names whichever failing assign loses the race; the check names all of them."""
    data = golden("shape_changed_hidden")
    graph = {v["name"].removesuffix(":0"): v["shape"] for v in data["meta_graph"]["variables"]}
    ckpt = dict((name, shape) for name, shape in data["checkpoint_contents"]["variables"])
    changed = sorted(name for name, shape in ckpt.items() if graph[name] != shape)
    found = errors(pair("shape_changed_hidden"))
    assert ids(found) == ["restore.shape-mismatch"] * 3
    assert sorted(f.subject for f in found) == changed


def test_renamed_scope_suggests_the_rename_that_fixes_it() -> None:
    findings = pair("renamed_scope")
    missing = [f for f in findings if f.id == "restore.missing-key"]
    assert len(missing) == 4
    for finding in missing:
        best = finding.details["suggestions"][0]
        assert best["key"] == "model/" + finding.subject.removeprefix("net/")
        assert "scope prefix moved: net/ -> model/" in best["reasons"] and best["same_dtype_and_shape"]
        assert finding.remedy is not None and finding.remedy.strings("renames") == ("model=net",)
        assert finding.remedy.text in finding.fix and "--" not in finding.fix  # the library names no flag
        assert "--rename 'model=net'" in fix_line(finding)
    # the suggested rule, applied to the checkpoint's keys, yields every key the graph restores
    assert missing[0].remedy is not None
    (rule,) = missing[0].remedy.strings("renames")
    ckpt_keys = [name for name, _ in golden("renamed_scope")["checkpoint_contents"]["variables"]]
    assert sorted(Renamer([rule]).mapping(ckpt_keys).values()) == sorted(f.subject for f in missing)
    unused = [f for f in findings if f.id == "restore.unused-key"]
    assert sorted(f.subject for f in unused) == sorted(ckpt_keys)
    assert all(f.severity == WARNING and f.details["closest_graph_key"] for f in unused)


def test_missing_optimizer_slots_are_one_error_in_saver_order() -> None:
    data = golden("slot_missing")
    graph_keys = sorted(v["name"].removesuffix(":0") for v in data["meta_graph"]["variables"])
    ckpt_keys = {name for name, _ in data["checkpoint_contents"]["variables"]}
    findings = pair("slot_missing")
    slot = next(f for f in findings if f.id == "restore.missing-slot")
    assert slot.severity == ERROR and slot.subject == "beta1_power"
    absent = [k for k in graph_keys if k not in ckpt_keys]
    assert sorted(slot.details["keys"]) == sorted(k for k in absent if k != "global_step")
    assert "dense1/kernel" in slot.details["variables_held"]
    (counter,) = [f for f in findings if f.id == "restore.missing-key"]
    assert counter.subject == "global_step" and counter.details["role"] == "bookkeeping"


def test_unpartitioned_checkpoint_into_partitioned_graph_is_fine() -> None:
    findings = pair("partitioned_mismatch")
    assert ids(findings) == ["restore.partition-layout"]
    (layout,) = findings
    assert layout.severity == INFO and layout.subject == "emb"
    assert layout.details["graph_partitions"] == ["6 4 0,3:0,4", "6 4 3,3:0,4"]


def test_partitions_are_checked_against_the_full_shape() -> None:
    """Every partition's spec names the full shape; a partition is never compared to the whole."""
    model = load_model(SAMPLES / "ckpt_partitioned" / "model.ckpt")
    plan = restore_plan(model)
    sliced = [item for item in plan.items if item.spec]
    assert plan.source == SAVER and len(sliced) >= 9
    assert all(item.full_shape != item.shape for item in sliced)
    assert restore_findings(SAMPLES / "ckpt_partitioned" / "model.ckpt", SAMPLES / "ckpt_partitioned" / "model.ckpt") == []


@pytest.mark.parametrize(("graph", "checkpoint"), [
    ("mlp/model.ckpt-3", "mlp/model.ckpt-3"), ("ckpt_v1/model.ckpt.meta", "ckpt_v1/model.ckpt"),
    ("ckpt_v1_sharded/model.ckpt.meta", "ckpt_v1_sharded"), ("ckpt_tf1_sharded/model.ckpt", "ckpt_tf1_sharded/model.ckpt"),
    ("savedmodel_tf1", "savedmodel_tf1"), ("savedmodel_tf2", "savedmodel_tf2"),
])
def test_pairs_tensorflow_wrote_together_restore_cleanly(graph: str, checkpoint: str) -> None:
    assert restore_findings(SAMPLES / graph, SAMPLES / checkpoint) == []


# -- dtypes, object-based checkpoints, TF2 SavedModels --------------------------------------


def test_dtype_mismatch_is_an_error() -> None:
    """io_unambiguous with its RestoreV2 asking for float64 where TF saved float32."""
    path = CHECK / "io_unambiguous" / "model.meta"
    model = load_model(path)
    restore = next(n for n in model.graph_def.node if n.op == "RestoreV2")
    restore.attr["dtypes"].list.type[0] = 2  # DT_DOUBLE
    with open_checkpoint(CHECK / "io_unambiguous" / "model.ckpt") as ckpt:
        findings = check_restore(CheckContext(model, ckpt))
    (finding,) = findings
    assert finding.id == "restore.dtype-mismatch" and finding.severity == ERROR
    assert finding.subject == "hidden/bias"  # the first of the saver's sorted keys
    assert finding.details["graph"]["dtype"] == "float64" and finding.details["checkpoint"]["dtype"] == "float32"
    assert finding.remedy is not None and finding.remedy.strings("cast") == ("float32", "float64")
    assert "RewriteOptions(cast=('float32', 'float64'))" in finding.fix
    assert "--cast float32:float64" in fix_line(finding)


def test_name_based_saver_maps_an_object_based_checkpoint_by_full_name() -> None:
    """device_pinned's variable ``w`` [3,2] against the TF2 SavedModel's checkpoint (``w/.ATTRIBUTES/…``)."""
    findings = restore_findings(CHECK / "device_pinned" / "model.meta", SAMPLES / "savedmodel_tf2" / "variables" / "variables")
    assert not errors(findings)
    based = next(f for f in findings if f.id == "restore.object-based")
    assert based.details["mapping"] == {"w": "w/.ATTRIBUTES/VARIABLE_VALUE"}
    assert [f.subject for f in findings if f.id == "restore.unused-key"] == ["b/.ATTRIBUTES/VARIABLE_VALUE"]


def test_tf2_savedmodel_against_a_foreign_checkpoint() -> None:
    """The SavedModel's ``w``/``b`` against a checkpoint holding them under ``model/`` plus Adam slots."""
    model = load_model(SAMPLES / "savedmodel_tf2")
    assert restore_plan(model).source == OBJECT_GRAPH
    findings = restore_findings(SAMPLES / "savedmodel_tf2", SAMPLES / "ckpt_tf2_slots" / "ckpt-1")
    missing = {f.subject: f for f in findings if f.id == "restore.missing-key"}
    assert set(missing) == {"w/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE"}
    best = missing["w/.ATTRIBUTES/VARIABLE_VALUE"].details["suggestions"][0]
    assert best["key"] == "model/w/.ATTRIBUTES/VARIABLE_VALUE"
    assert best["reasons"] == ["scope prefix moved: (none) -> model/"]
    # TF2 matches objects by path, so the fix restores through the extra level instead of renaming
    assert "tf.train.Checkpoint(model=obj).restore(" in missing["w/.ATTRIBUTES/VARIABLE_VALUE"].fix
    state = next(f for f in findings if f.id == "restore.unused-optimizer-state")
    assert state.severity == INFO and any(".OPTIMIZER_SLOT" in k for k in state.details["keys"])


def test_no_checkpoint_is_a_warning_and_a_frozen_graph_needs_none() -> None:
    (finding,) = restore_findings(SAMPLES / "functions" / "functions.meta")
    assert finding.id == "restore.no-checkpoint" and finding.severity == WARNING
    assert restore_plan(load_model(SAMPLES / "functions" / "functions.meta")).source == VARIABLES
    assert ids(restore_findings(SAMPLES / "frozen" / "frozen.pb")) == ["restore.nothing-to-restore"]


# -- key matching (pure functions) -----------------------------------------------------------


def specs(*keys: str, shape: tuple[int, ...] = (4, 8)) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {k: ("float32", shape) for k in keys}


@pytest.mark.parametrize(("wanted", "have", "reason"), [
    ("net/dense/kernel", "dense/kernel", "scope prefix moved: net/ -> (none)"),
    ("dense/kernel", "net/dense/kernel", "scope prefix moved: (none) -> net/"),
    ("dense/kernel", "dense/kernel:0", "':0' suffix"),
    ("dense/kernel", "layer/kernel/.ATTRIBUTES/VARIABLE_VALUE", "TF2 naming: layer/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
    ("w/.ATTRIBUTES/VARIABLE_VALUE", "w", "TF1 naming: w"),
    ("fc/weights", "fc/kernel", "weights <-> kernel rename"),
    ("fc/bias", "fc/biases", "bias <-> biases rename"),
])
def test_suggestion_reasons(wanted: str, have: str, reason: str) -> None:
    (suggestion,) = KeyMatcher(specs(have, "other/thing"), {have}).suggest(wanted, "float32", [4, 8])
    assert suggestion.key == have and reason in suggestion.reasons


def test_same_dtype_and_shape_rank_first_and_bare_last_names_need_them() -> None:
    matcher = KeyMatcher({**specs("a/kernel", shape=(2, 2)), **specs("b/kernel")}, {"a/kernel", "b/kernel"})
    assert [s.key for s in matcher.suggest("x/kernel", "float32", [4, 8])] == ["b/kernel"]
    assert [s.key for s in matcher.suggest("kernel", "float32", [4, 8])] == ["b/kernel", "a/kernel"]
    mismatched = KeyMatcher(specs("net/w", shape=(2,)), {"net/w"}).suggest("w", "float32", [4, 8])
    assert "but it is float32 [2]" in mismatched[0].reasons and not mismatched[0].same_spec


def test_similar_names_of_the_same_spec_when_no_tail_is_shared() -> None:
    matcher = KeyMatcher(specs("dense_1/kernl", "zzz"), {"dense_1/kernl", "zzz"})
    assert [s.key for s in matcher.suggest("dense_1/kernel_x", "float32", [4, 8])] == ["dense_1/kernl"]


def test_rename_rules_turn_the_checkpoint_scope_into_the_graphs() -> None:
    for graph_key, ckpt_key in [("net/a/b", "model/a/b"), ("a/b", "net/a/b"), ("net/a/b", "a/b")]:
        rule = rename_rule(*scope_move(graph_key, ckpt_key))
        assert Renamer([rule])(ckpt_key) == graph_key


def test_parse_spec() -> None:
    assert parse_spec("6 4 0,3:0,4") == ((6, 4), [(0, 3), (0, 4)])
    assert parse_spec("10 3 -:0,1") == ((10, 3), [(0, 10), (0, 1)])
    assert parse_spec("garbage") is None
