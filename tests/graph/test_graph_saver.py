"""What a graph saves and restores, read once for check, edit and export."""

from __future__ import annotations

from metainspect.edit import rename
from metainspect.graph.model import load_model
from metainspect.graph.saver import (
    SAVER,
    checkpoint_keys,
    const_strings,
    key_constants,
    restore_plan,
    saved_keys,
    saver_keys,
)

from helpers.graph import GraphBuilder
from helpers.paths import SAMPLES


def _saver_behind_snapshot() -> GraphBuilder:
    """A SaveV2 whose key constant reaches it through a Snapshot (as some graph rewrites leave it)."""
    graph = GraphBuilder().add("w", "VariableV2").add("save/filename", "Placeholder", dtype=7)
    graph.strings("save/names", "w").add("save/names/snapshot", "Snapshot", "save/names", dtype=7)
    graph.strings("save/slices", "")
    graph.add("save/SaveV2", "SaveV2", "save/filename", "save/names/snapshot", "save/slices", "w")
    return graph


def test_key_constants_are_seen_through_identities_and_snapshots() -> None:
    model = _saver_behind_snapshot().model()
    assert [node.name for node in key_constants(model)] == ["save/names"]
    assert checkpoint_keys(model) == ["w"]
    assert saver_keys(model) == {"w": [("w", "")]}
    assert const_strings(model.nodes_by_name(), "save/names/snapshot:0") == ["w"]


def test_rename_rewrites_keys_behind_a_snapshot() -> None:
    """edit's copy of the key-constant rule followed Identity only: the keys stayed, the node moved."""
    meta_graph = _saver_behind_snapshot().meta_graph
    renamed = rename(meta_graph, ["w=v"])
    assert renamed.keys == {"w": "v"}
    graph = GraphBuilder()
    graph.meta_graph = meta_graph
    assert checkpoint_keys(graph.model()) == ["v"]


def test_save_and_restore_agree_on_the_tf_written_sample() -> None:
    model = load_model(SAMPLES / "mlp")
    plan = restore_plan(model)
    written = {key for entries in saver_keys(model).values() for key, _ in entries}
    save_ops, saved = saved_keys(model)
    assert plan.source == SAVER and [op.op for op in plan.restore_ops] == ["RestoreV2"]
    assert {item.key for item in plan.items} == written == saved
    assert [op.op for op in save_ops] == ["SaveV2"]
    assert restore_plan(model) is plan  # computed once per model
