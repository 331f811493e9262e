"""Graph diffs: the samples against their own ``edit --rename`` / ``--clear-devices`` outputs,
and small graphs built here to pin down pairing, attrs, constants and functions."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef

from metainspect.diff import diff_graphs
from metainspect.edit import EditSpec, apply_edits, open_target, write_output
from metainspect.formats.tensor_proto import encode
from metainspect.graph.model import Model, load_model

from helpers.cli import Cli, CliResult
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp" / "model.ckpt-3.meta"
CONTROL_FLOW = SAMPLES / "control_flow" / "control_flow.meta"
FUNCTIONS = SAMPLES / "functions" / "functions.meta"


def _run(cli: Cli, *args: object) -> CliResult:
    """``metainspect ARGS`` in this process (paths given as Path objects too)."""
    return cli(*map(str, args))


def _edited(source: Path, out: Path, spec: EditSpec) -> Path:
    target = open_target(source)
    apply_edits(target, spec)
    write_output(target, out, changed=True)
    return out


def _under(model: Model, *scopes: str) -> set[str]:
    return {n.name for n in model.nodes() if any(n.name == s or n.name.startswith(s + "/") for s in scopes)}


def test_rename_gives_renamed_nodes_only(tmp_path: Path) -> None:
    out = _edited(MLP, tmp_path / "renamed.meta", EditSpec(renames=["dense1=layer1"]))
    original = load_model(MLP)
    found = diff_graphs(MLP, out)
    expected = _under(original, "dense1")
    assert len(expected) > 10
    assert {r.old for r in found.renamed} == expected
    assert all(r.new == "layer1" + r.old[len("dense1"):] for r in found.renamed)
    assert not found.added and not found.removed
    # the checkpoint keys the saver reads changed: nothing else did
    assert {c.name for c in found.changed} == {"save/SaveV2/tensor_names", "save/RestoreV2/tensor_names"}
    assert all([(f.field, f.key) for f in c.changes] == [("attr", "value")] for c in found.changed)
    assert found.collections.identical and found.signatures.identical and not found.saver and not found.versions
    assert [(r.old, r.new, n) for r, n in found.rename_rules] == [("dense1", "layer1", len(expected))]


def test_clear_devices_changes_devices_only(tmp_path: Path) -> None:
    out = _edited(CONTROL_FLOW, tmp_path / "nodev.meta", EditSpec(clear_devices=True))
    with_device = {n.name: n.device for n in load_model(CONTROL_FLOW).nodes() if n.device}
    assert with_device
    found = diff_graphs(CONTROL_FLOW, out)
    assert not found.renamed and not found.added and not found.removed
    assert {c.name: [(f.field, f.a, f.b) for f in c.changes] for c in found.changed} == {
        name: [("device", device, "")] for name, device in with_device.items()}


def test_rename_and_clear_devices_in_control_flow(tmp_path: Path, cli: Cli) -> None:
    out = _edited(CONTROL_FLOW, tmp_path / "both.meta",
                  EditSpec(renames=["loop=body", "cond=branch"], clear_devices=True))
    found = diff_graphs(CONTROL_FLOW, out)
    assert {r.old for r in found.renamed} == _under(load_model(CONTROL_FLOW), "loop", "cond")
    assert not found.added and not found.removed
    assert all(f.field == "device" for c in found.changed for f in c.changes)
    # while-loop frame names, cond/while contexts: carried by the scope renames the pairs imply
    assert found.collections.identical
    result = _run(cli, "diff", CONTROL_FLOW, out, "--json")
    assert result.code == 1 and result.json()["counts"]["renamed"] == len(found.renamed)


def test_regex_rename_of_every_node_with_functions(tmp_path: Path) -> None:
    out = _edited(FUNCTIONS, tmp_path / "top.meta", EditSpec(renames=[r"re:^(.*)$=top/\1"]))
    found = diff_graphs(FUNCTIONS, out)
    assert len(found.renamed) == len(load_model(FUNCTIONS).nodes())
    assert not found.added and not found.removed and not found.changed
    assert found.functions.identical and found.functions.functions_a == 3


def test_saved_model_directory_rename(tmp_path: Path, cli: Cli) -> None:
    source = SAMPLES / "savedmodel_tf1"
    out = _edited(source, tmp_path / "export", EditSpec(renames=["dense1=fc1"]))
    found = diff_graphs(source, out)
    renamed = _under(load_model(source), "dense1")
    assert {r.old for r in found.renamed} == renamed and renamed
    assert not found.added and not found.removed
    # both directories hold a graph and a checkpoint: graphs by default, values on request
    assert _run(cli, "diff", source, out).code == 1
    by_rule = _run(cli, "diff", source, out, "--kind", "checkpoint", "--rename", "dense1=fc1", "--json")
    assert by_rule.code == 0, by_rule.stdout + by_rule.stderr
    assert by_rule.json()["counts"]["renamed"] > 0


def test_frozen_binary_and_text_are_identical(cli: Cli) -> None:
    found = diff_graphs(SAMPLES / "frozen" / "frozen.pb", SAMPLES / "frozen" / "frozen.pbtxt")
    assert found.identical
    result = _run(cli, "diff", SAMPLES / "frozen" / "frozen.pb", SAMPLES / "frozen" / "frozen.pbtxt")
    assert result.code == 0 and result.stdout.rstrip().endswith("identical")


def _graph_samples() -> list[str]:
    found = sorted(glob.glob(str(SAMPLES / "**" / "*.meta"), recursive=True))
    found += sorted(glob.glob(str(SAMPLES / "**" / "saved_model.pb"), recursive=True))
    return found + [str(SAMPLES / "frozen" / "frozen.pb")]


@pytest.mark.parametrize("path", _graph_samples(), ids=lambda p: os.path.relpath(p, SAMPLES))
def test_every_graph_sample_equals_itself(path: str) -> None:
    assert diff_graphs(path, path).identical


def test_graph_against_checkpoint_is_refused(cli: Cli) -> None:
    result = _run(cli, "diff", MLP, SAMPLES / "mlp" / "model.ckpt-3")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert "is a checkpoint and" in result.stderr and "diff compares two checkpoints or two graphs" in result.stderr


# -- graphs built here ----------------------------------------------------------------------------


def _node(name: str, op: str, inputs: tuple[str, ...] = (), device: str = "", **attrs: Any) -> NodeDef:
    node = NodeDef(name=name, op=op, input=list(inputs), device=device)
    for key, value in attrs.items():
        node.attr[key].CopyFrom(value)
    return node


def _const(value: Any, content: bool = True) -> AttrValue:
    proto = encode(np.asarray(value, np.float32))
    if not content:  # the same values as float_val instead of tensor_content
        values = proto.tensor_content
        proto.ClearField("tensor_content")
        proto.float_val.extend(np.frombuffer(values, np.float32).tolist())
    return AttrValue(tensor=proto)


def _model(*nodes: NodeDef, meta: MetaGraphDef | None = None) -> Model:
    meta = meta or MetaGraphDef()
    meta.graph_def.node.extend(nodes)
    return Model("mem", "meta_graph", "binary", meta, [[]])


F32 = AttrValue(type=1)


def _mlp(prefix: str, names: dict[str, str] | None = None) -> list[NodeDef]:
    """x -> matmul(w1) -> relu -> matmul(w2); both weights the same shape and value."""
    n = {k: f"{prefix}{names.get(k, k) if names else k}" for k in ("x", "w1", "w2", "m1", "r", "m2")}
    n["x"] = "x"
    w = _const(np.ones((3, 3)))
    return [
        _node("x", "Placeholder", dtype=F32),
        _node(n["w1"], "Const", dtype=F32, value=w),
        _node(n["w2"], "Const", dtype=F32, value=w),
        _node(n["m1"], "MatMul", ("x", n["w1"]), T=F32),
        _node(n["r"], "Relu", (n["m1"],), T=F32),
        _node(n["m2"], "MatMul", (n["r"], n["w2"]), T=F32),
    ]


def test_structure_pairs_identical_constants_by_their_consumers() -> None:
    a = _model(*_mlp("net/"))
    # not a scope rename: every name changes differently; w1 and w2 are equal constants
    b = _model(*_mlp("", {"w1": "first_w", "w2": "second_w", "m1": "mm_a", "r": "act", "m2": "mm_b"}))
    found = diff_graphs(a, b)
    assert {(r.old, r.new) for r in found.renamed} == {
        ("net/w1", "first_w"), ("net/w2", "second_w"), ("net/m1", "mm_a"), ("net/r", "act"), ("net/m2", "mm_b")}
    assert not found.added and not found.removed and not found.changed


def test_a_renamed_node_whose_inputs_changed_is_not_renamed() -> None:
    a = _model(_node("x", "Placeholder", dtype=F32), _node("y", "Placeholder", dtype=F32),
               _node("old", "Relu", ("x",), T=F32))
    b = _model(_node("x", "Placeholder", dtype=F32), _node("y", "Placeholder", dtype=F32),
               _node("new", "Relu", ("y",), T=F32))
    found = diff_graphs(a, b)
    assert not found.renamed
    assert [n.name for n in found.removed] == ["old"] and [n.name for n in found.added] == ["new"]


def test_rename_rules_pair_nodes_that_also_changed() -> None:
    a = _model(_node("x", "Placeholder", dtype=F32), _node("net/y", "Relu", ("x",), T=F32))
    b = _model(_node("x", "Placeholder", dtype=F32), _node("model/y", "Relu6", ("x",), T=F32))
    assert not diff_graphs(a, b).renamed
    found = diff_graphs(a, b, renames=["net=model"])
    assert [(r.old, r.new) for r in found.renamed] == [("net/y", "model/y")]
    (change,) = found.changed
    assert change.renamed_from == "net/y" and [(f.field, f.a, f.b) for f in change.changes] == [("op", "Relu", "Relu6")]


def test_changes_listed_field_by_field() -> None:
    a = _model(_node("x", "Placeholder", dtype=F32), _node("c", "Const", dtype=F32, value=_const([1.0, 2.0])),
               _node("y", "Add", ("x", "c"), "/device:CPU:0", T=F32), _node("z", "NoOp", ("^y",)))
    b = _model(_node("x", "Placeholder", dtype=F32), _node("c", "Const", dtype=F32, value=_const([1.0, 3.0])),
               _node("y", "AddV2", ("c", "x"), "/device:GPU:0", T=AttrValue(type=2)), _node("z", "NoOp", ("^x",)))
    changed = {c.name: c.changes for c in diff_graphs(a, b).changed}
    assert [(f.field, f.key) for f in changed["y"]] == [("op", None), ("inputs", None), ("device", None), ("attr", "T")]
    assert [(f.a, f.b) for f in changed["y"]][3] == ("float32", "float64")
    assert [(f.field, f.a, f.b) for f in changed["z"]] == [("control_inputs", "y", "x")]
    (value,) = changed["c"]
    assert value.key == "value" and value.a is not None and value.b is not None
    assert value.a.startswith("float32 [2] sha256:") and value.a.endswith("= [1.0, 2.0]")


def test_constants_compare_by_value_not_encoding() -> None:
    a = _model(_node("c", "Const", dtype=F32, value=_const([[1.0, 2.0], [3.0, 4.0]])))
    b = _model(_node("c", "Const", dtype=F32, value=_const([[1.0, 2.0], [3.0, 4.0]], content=False)))
    assert a.nodes()[0].proto != b.nodes()[0].proto
    assert diff_graphs(a, b).identical


def _with_matmul_defaults() -> MetaGraphDef:
    meta = MetaGraphDef()
    op = meta.meta_info_def.stripped_op_list.op.add(name="MatMul")
    attr = op.attr.add(name="transpose_a", type="bool")
    attr.default_value.b = False
    return meta


def test_attr_equal_to_its_op_default_is_not_a_change() -> None:
    a = _model(_node("m", "MatMul", T=F32, transpose_a=AttrValue(b=False)), meta=_with_matmul_defaults())
    b = _model(_node("m", "MatMul", T=F32))
    found = diff_graphs(a, b)
    assert not found.changed
    c = _model(_node("m", "MatMul", T=F32, transpose_a=AttrValue(b=True)), meta=_with_matmul_defaults())
    assert [f.key for ch in diff_graphs(c, b).changed for f in ch.changes] == ["transpose_a"]


def _library(meta: MetaGraphDef, name: str) -> None:
    fn = meta.graph_def.library.function.add()
    fn.signature.name = name
    fn.signature.input_arg.add(name="a", type=1)
    fn.signature.output_arg.add(name="out", type=1)
    fn.node_def.add().CopyFrom(_node("neg", "Neg", ("a",), T=F32))
    fn.ret["out"] = "neg:y:0"


def test_function_renamed_by_content_and_its_callers_unchanged() -> None:
    meta_a, meta_b = MetaGraphDef(), MetaGraphDef()
    _library(meta_a, "__inference_f_12")
    _library(meta_b, "__inference_f_98")
    call = AttrValue()
    call.func.name = "__inference_f_12"
    a = _model(_node("x", "Placeholder", dtype=F32), _node("call", "PartitionedCall", ("x",), f=call), meta=meta_a)
    call_b = AttrValue()
    call_b.func.name = "__inference_f_98"
    b = _model(_node("x", "Placeholder", dtype=F32), _node("call", "PartitionedCall", ("x",), f=call_b), meta=meta_b)
    found = diff_graphs(a, b)
    assert [(r.old, r.new) for r in found.functions.renamed] == [("__inference_f_12", "__inference_f_98")]
    assert not found.changed and not found.functions.changed and not found.functions.added


def test_function_body_changes() -> None:
    meta_a, meta_b = MetaGraphDef(), MetaGraphDef()
    _library(meta_a, "f")
    _library(meta_b, "f")
    body = meta_b.graph_def.library.function[0]
    body.node_def[0].op = "Abs"
    body.node_def.add().CopyFrom(_node("extra", "Identity", ("neg:y:0",), T=F32))
    found = diff_graphs(_model(meta=meta_a), _model(meta=meta_b))
    (change,) = found.functions.changed
    assert change.name == "f" and not change.signature
    assert [n.name for n in change.body.added] == ["extra"]
    assert [(c.name, [f.field for f in c.changes]) for c in change.body.changed] == [("neg", ["op"])]


def test_match_restricts_to_names() -> None:
    a = _model(*_mlp("net/"))
    b = _model(*_mlp("net/"), _node("extra", "NoOp"), _node("net/more", "NoOp"))
    found = diff_graphs(a, b, match="^net/")
    assert [n.name for n in found.added] == ["net/more"]
    assert diff_graphs(a, b, match="^x$").identical


def _chain(blocks: int, name: Any) -> list[NodeDef]:
    """x -> blocks x (MatMul by an equal constant, Relu): nodes told apart by position only."""
    weight = _const(np.full((2, 2), 0.5))
    nodes, last = [_node("x", "Placeholder", dtype=F32)], "x"
    for i in range(blocks):
        nodes += [_node(name(i, "w"), "Const", dtype=F32, value=weight),
                  _node(name(i, "mm"), "MatMul", (last, name(i, "w")), T=F32),
                  _node(name(i, "act"), "Relu", (name(i, "mm"),), T=F32)]
        last = name(i, "act")
    return nodes


def test_long_chain_of_equal_blocks_renamed_irregularly() -> None:
    a = _model(*_chain(300, lambda i, part: f"block_{i}/{part}"))
    b = _model(*_chain(300, lambda i, part: f"{part}_{299 - i}_of_chain"))  # no scope rule explains it
    found = diff_graphs(a, b)
    assert not found.added and not found.removed and not found.changed
    pairs = {r.old: r.new for r in found.renamed}
    assert len(pairs) == 900
    assert all(pairs[f"block_{i}/{part}"] == f"{part}_{299 - i}_of_chain" for i in range(300) for part in ("w", "mm", "act"))


def test_empty_constants_with_a_huge_dimension_compare_without_building_lists() -> None:
    """[2**40, 0] holds nothing: its digest is computed, its (nested, empty) values are not listed."""
    def empty(rows: int) -> AttrValue:
        proto = encode(np.zeros((0,), np.float32))
        proto.tensor_shape.dim[0].size = rows
        proto.tensor_shape.dim.add().size = 0
        return AttrValue(tensor=proto)

    a = _model(_node("c", "Const", dtype=F32, value=empty(2**40)))
    b = _model(_node("c", "Const", dtype=F32, value=empty(2**41)))
    (change,) = diff_graphs(a, b).changed
    (value,) = change.changes
    assert value.a is not None and value.a.startswith("float32 [1099511627776, 0] sha256:") and "=" not in value.a
    assert diff_graphs(a, a).identical
