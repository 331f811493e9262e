"""The top-level API: one handle per artefact, a path or the object in memory, typed options."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import metainspect
from metainspect import ExportOptions, RewriteOptions, TensorNotFoundError
from metainspect.errors import MetainspectError

from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp"
PINNED = SAMPLES / "check" / "device_pinned"


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.rglob("*"))}


def test_check_sees_an_edit_made_in_memory_without_writing_it(tmp_path: Path) -> None:
    shutil.copytree(PINNED, tmp_path / "pinned")
    before = _snapshot(tmp_path)
    model = metainspect.load_model(tmp_path / "pinned" / "model.meta")
    pinned = metainspect.check(model)
    assert any(f.id.startswith("serving.device-pin") for f in pinned.findings)
    edited = model.edit().clear_devices().model()
    report = metainspect.check(edited)  # the checkpoint beside the file it came from
    assert not any(f.id.startswith("serving.device-pin") for f in report.findings)
    assert report.checkpoint_path == pinned.checkpoint_path is not None
    assert _snapshot(tmp_path) == before  # nothing written, nothing touched
    assert any(n.device for n in model.nodes())  # the loaded model itself is unchanged
    assert metainspect.check(model).verdict == pinned.verdict


def test_check_takes_an_open_checkpoint_and_leaves_it_open() -> None:
    model = metainspect.load_model(MLP)
    with metainspect.open_checkpoint(MLP) as ckpt:
        report = metainspect.check(model, ckpt)
        assert report.checkpoint_path == ckpt.prefix and len(ckpt.keys()) == 15
        assert ckpt.get("global_step").shape == ()  # still open
    assert metainspect.load_model(model) is model and metainspect.open_checkpoint(ckpt) is ckpt


def test_edit_save_roundtrip_keeps_the_original(tmp_path: Path) -> None:
    model = metainspect.load_model(MLP)
    nodes_before = [n.name for n in model.nodes()]
    editor = (model.edit().rename("dense1=encoder").set_tags(["serve"])
              .add_signature("serving_default", {"x": "x:0"}, {"probs": "probs:0"}))
    result = editor.save(tmp_path / "serve.meta")
    assert result.output == str(tmp_path / "serve.meta") and editor.path == model.path
    counts = editor.changes.counts()
    assert counts["rename"] > 0 and counts["set-tags"] == 1 and counts["add-signature"] == 3
    saved = metainspect.load_model(tmp_path / "serve.meta")
    assert saved.tags == ["serve"] and saved.node("encoder/kernel") is not None and saved.node("dense1/kernel") is None
    assert {k: v.name for k, v in saved.signatures()["serving_default"].outputs.items()} == {"probs": "probs:0"}
    assert [n.name for n in model.nodes()] == nodes_before and model.tags == []
    assert saved.meta_graph == editor.model().meta_graph


def test_edit_without_a_copy_changes_the_model_own_protos() -> None:
    model = metainspect.load_model(PINNED / "model.meta")
    editor = model.edit(copy=False).clear_devices()
    assert len(editor.changes) > 0 and editor.model().meta_graph is model.meta_graph
    assert not any(node.device for node in model.meta_graph.graph_def.node)


def test_edits_run_in_the_command_order_and_later_calls_start_a_new_run() -> None:
    model = metainspect.load_model(MLP)
    # one run: the shape is set on the placeholder as named in the input, then the rename carries it
    first = model.edit().rename("x=features").set_shape("x", [None, 4]).model()
    assert first.node("features") is not None and first.node("x") is None
    editor = model.edit().rename("x=features")
    editor.model()
    with pytest.raises(TensorNotFoundError, match="no node 'x'"):
        editor.set_shape("x", [None, 4]).model()  # the second run sees the renamed graph
    with pytest.raises(MetainspectError, match="an earlier edit failed"):
        editor.save("never-written.meta")
    assert not os.path.exists("never-written.meta")


def test_saved_model_directory_is_written_as_a_new_directory(tmp_path: Path) -> None:
    model = metainspect.load_model(SAMPLES / "savedmodel_tf1")
    model.edit().clear_devices().save(tmp_path / "copy")
    assert sorted(os.listdir(tmp_path / "copy")) == sorted(os.listdir(SAMPLES / "savedmodel_tf1"))
    assert metainspect.load_model(tmp_path / "copy").signatures().keys() == model.signatures().keys()


def test_rewrite_takes_typed_options_and_an_open_checkpoint(tmp_path: Path) -> None:
    with metainspect.open_checkpoint(MLP) as ckpt:
        plan = metainspect.rewrite_checkpoint(
            ckpt, tmp_path / "half", RewriteOptions(cast=("float32", "float16"), drop=("Adam",), shard_size=512))
    reasons = {t.name: t.drop_reason for t in plan.dropped}
    assert reasons["dense1/kernel/Adam"] is not None and reasons["dense1/kernel/Adam"].rule == "drop"
    assert reasons["dense1/kernel/Adam"].pattern == "Adam"
    assert {t.new_dtype for t in plan.kept if t.dtype == "float32"} == {"float16"}
    assert plan.written is not None and all(os.path.getsize(f) <= 512 for f in plan.written.data_files)
    with metainspect.open_checkpoint(tmp_path / "half") as out:
        assert out.dtype("dense1/kernel") == "float16"
    with pytest.raises(MetainspectError) as refused:
        metainspect.rewrite_checkpoint(MLP, tmp_path / "x", RewriteOptions(cast=("float32", "int8")))
    assert refused.value.hint == metainspect.Hint("cast", ("float32", "int8"))
    assert str(refused.value) == "cast float32->int8: int8 is not a floating-point type; only float tensors can be cast"


def test_export_takes_a_model_in_memory(tmp_path: Path) -> None:
    edited = metainspect.load_model(PINNED / "model.meta").edit().clear_devices().model()
    result = metainspect.export_saved_model(edited, tmp_path / "export", ExportOptions(), engine="pure")
    assert result.saved_model == str(tmp_path / "export")
    exported = metainspect.load_model(tmp_path / "export")
    assert not any(n.device for n in exported.nodes()) and "serving_default" in exported.signatures()


def test_missing_names_are_tensor_not_found_errors_and_key_errors() -> None:
    with metainspect.open_checkpoint(MLP) as ckpt, pytest.raises(TensorNotFoundError) as missing:
        ckpt.get("dense1/kernl")
    assert isinstance(missing.value, KeyError) and isinstance(missing.value, MetainspectError)
    assert missing.value.name == "dense1/kernl" and "did you mean 'dense1/kernel'" in str(missing.value)
    model = metainspect.load_model(MLP)
    for edit, name in [(lambda e: e.drop_collection("nope"), "nope"), (lambda e: e.remove_signature("sig"), "sig"),
                       (lambda e: e.prune_to("nowhere"), "nowhere")]:
        with pytest.raises(KeyError) as caught:
            edit(model.edit()).model()
        assert isinstance(caught.value, TensorNotFoundError) and caught.value.name == name


def test_convert_takes_an_open_checkpoint(tmp_path: Path) -> None:
    with metainspect.open_checkpoint(MLP) as ckpt:
        plan = metainspect.convert(ckpt, tmp_path / "m.safetensors", metainspect.ConvertOptions(drop_optimizer=True))
    assert plan.written and plan.format == "safetensors" and len(plan.kept) == 5


def test_lazy_names_resolve_and_check_stays_the_function() -> None:
    import metainspect.check.runner
    import metainspect.convert.writers
    from metainspect.check import run_checks
    from metainspect.convert import plan_conversion

    assert callable(metainspect.check) and metainspect.check.__module__ == "metainspect.api"
    assert callable(metainspect.convert) and metainspect.convert.__module__ == "metainspect.api"
    assert run_checks.__module__ == "metainspect.check.runner" and callable(plan_conversion)
    for name in metainspect.__all__:
        assert getattr(metainspect, name) is not None
    with pytest.raises(AttributeError):
        metainspect.no_such_name  # noqa: B018
