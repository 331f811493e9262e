"""`metainspect graph --dot/--svg`: clusters, collapsing, aggregated edges, styles, selections, rendering."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tensorboard.compat.proto.graph_pb2 import GraphDef

from metainspect.graph.model import Node
from metainspect.picture.dot import PictureError, Selection, draw

from helpers.paths import SAMPLES
from helpers.picture import add_node, graph_cli, scoped_graph, write_meta_graph

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
STATEMENT = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*\[(.*)\];$')
EDGE = re.compile(r'^\s*("(?:[^"\\]|\\.)*") -> ("(?:[^"\\]|\\.)*") \[(.*)\];$')


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text[1:-1])


def boxes(text: str) -> dict[str, str]:
    """Drawn node id -> its attribute list."""
    return {unquote(m.group(1)): m.group(2) for line in text.splitlines() if (m := STATEMENT.match(line))}


def edges(text: str) -> dict[tuple[str, str], list[str]]:
    """(from, to) -> the attribute lists of the edges drawn between them (data and control apart)."""
    found: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        if m := EDGE.match(line):
            found.setdefault((unquote(m.group(1)), unquote(m.group(2))), []).append(m.group(3))
    return found


def nodes_of(graph: GraphDef) -> list[Node]:
    return [Node.from_proto(p) for p in graph.node]


def render(dot_text: str, tmp_path: Path) -> str:
    """SVG from Graphviz (fails the test on a Graphviz error)."""
    done = subprocess.run([DOT, "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=120, check=False)  # type: ignore[list-item]
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_a_3000_node_graph_at_depth_2_stays_within_200_boxes(tmp_path: Path) -> None:
    graph = scoped_graph()
    assert len(graph.node) >= 3000
    meta = write_meta_graph(tmp_path / "big.meta", graph)
    code, out, err = graph_cli(str(meta), "--dot", str(tmp_path / "big.dot"), "--depth", "2", "--json")
    assert code == 0, err
    report = json.loads(out)["dot"]
    text = (tmp_path / "big.dot").read_text()
    drawn = boxes(text)
    assert report["drawn_nodes"] == len(drawn) <= 200
    assert report["selected_nodes"] == len(graph.node) and report["depth"] == 2 and not report["series_merged"]
    layer = drawn["model/encoder/layer_7/"]
    assert "100 nodes" in layer and "20 variables" in layer and "box3d" in layer
    assert 'subgraph "cluster_model/encoder"' in text
    # layer_6 feeds layer_7 once through data and once... none through control: aggregated into one edge
    assert set(edges(text)) >= {("model/encoder/layer_6/", "model/encoder/layer_7/"), ("head/logits", "head/custom")}


@needs_dot
def test_graphviz_renders_the_3000_node_picture(tmp_path: Path) -> None:
    meta = write_meta_graph(tmp_path / "big.meta", scoped_graph())
    code, out, err = graph_cli(str(meta), "--svg", str(tmp_path / "big.svg"), "--depth", "2")
    assert code == 0, err
    svg = (tmp_path / "big.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "layer_29/" in svg and "MyVendorOp" in svg
    assert f"svg          {tmp_path / 'big.svg'}: " in out


def test_automatic_depth_keeps_within_the_budget() -> None:
    graph = scoped_graph()
    picture = draw(nodes_of(graph), {}, Selection(budget=200), path="big")
    assert picture.drawn_nodes <= 200 and picture.depth == 2
    small = draw(nodes_of(graph), {}, Selection(budget=100_000), path="big")
    assert small.depth is None and small.drawn_nodes == len(graph.node) and small.collapsed_scopes == 0


def test_edges_are_aggregated_with_multiplicities_and_control_edges_dashed() -> None:
    graph = GraphDef()
    add_node(graph, "x", "Placeholder")
    for i in range(3):
        add_node(graph, f"block/op_{i}", "Relu", "x")
    add_node(graph, "block/sum", "AddN", "block/op_0", "block/op_1", "block/op_2", "^x")
    add_node(graph, "y", "Identity", "block/sum", "block/op_1")
    text = draw(nodes_of(graph), {}, Selection(depth=0), path="g").text
    found = edges(text)
    data, control = sorted(found[("x", "block/")], key=lambda attrs: "dashed" in attrs)
    assert 'label="\N{MULTIPLICATION SIGN}3"' in data and "dashed" not in data
    assert "dashed" in control and "label" not in control
    assert found[("block/", "y")] == [next(a for a in found[("block/", "y")] if 'label="\N{MULTIPLICATION SIGN}2"' in a)]
    # edges inside a collapsed scope are not drawn
    assert ("block/", "block/") not in found
    full = edges(draw(nodes_of(graph), {}, Selection(), path="g").text)
    [control] = full[("x", "block/sum")]
    assert "dashed" in control and "label" not in control


def test_roles_are_styled_on_a_shipped_sample(tmp_path: Path) -> None:
    code, _, err = graph_cli(str(SAMPLES / "mlp" / "model.ckpt-3"), "--dot", str(tmp_path / "mlp.dot"), "--depth", "5")
    assert code == 0, err
    drawn = boxes((tmp_path / "mlp.dot").read_text())
    assert "invhouse" in drawn["x"]
    assert "cylinder" in drawn["dense1/kernel"] and "float32[4,8]" in drawn["dense1/kernel"]
    assert "peripheries=2" in drawn["prediction"]
    assert "fontsize=8" in drawn["dense1/kernel/Initializer/Const"]
    # a node named like a scope is drawn inside it, as TensorBoard groups them
    text = (tmp_path / "mlp.dot").read_text()
    cluster = text[text.index('subgraph "cluster_dense1/kernel"'):]
    assert cluster.index('"dense1/kernel" [') < cluster.index("}")


def test_custom_ops_calls_and_absent_inputs() -> None:
    graph = GraphDef()
    add_node(graph, "x", "Placeholder")
    add_node(graph, "vendor", "MyVendorOp", "x", "ghost:1")
    call = add_node(graph, "call", "StatefulPartitionedCall", "vendor")
    call.attr["f"].func.name = "fn"
    roles = {"x": "input", "vendor": "custom", "call": "call"}
    drawn = boxes(draw(nodes_of(graph), roles, Selection(), path="g").text)
    assert "dashed" in drawn["vendor"] and "#8e44ad" in drawn["vendor"]
    assert "component" in drawn["call"]
    assert "(absent)" in drawn["ghost"] and "#d62728" in drawn["ghost"]


@pytest.mark.parametrize("name", ['we"ird', "back\\slash", "ends\\", "new\nline", "<html>", "a//b", "uni/čšž"])
def test_names_are_escaped(tmp_path: Path, name: str) -> None:
    graph = GraphDef()
    add_node(graph, "x", "Placeholder")
    add_node(graph, name, "Relu", "x")
    add_node(graph, "y", "Identity", name)
    text = draw(nodes_of(graph), {}, Selection(), path="g").text
    assert name.rstrip("\\") in {unquote(k).rstrip("\\ ") for k in boxes(text)} | {k.rstrip("\\ ") for k in boxes(text)}
    if DOT:
        svg = render(text, tmp_path)
        assert svg.count("<g id=\"node") == 3 and svg.count("<g id=\"edge") == 2


def test_around_and_match_select_nodes(tmp_path: Path) -> None:
    sample = str(SAMPLES / "frozen" / "frozen.pb")
    code, _, err = graph_cli(sample, "--dot", str(tmp_path / "a.dot"), "--around", "dense2/MatMul", "--radius", "1")
    assert code == 0, err
    assert set(boxes((tmp_path / "a.dot").read_text())) == {
        "dense2/MatMul", "dropout/SelectV2", "dense2/kernel/read", "dense2/BiasAdd"}
    code, _, err = graph_cli(sample, "--dot", str(tmp_path / "m.dot"), "--match", "^dense1/")
    assert code == 0, err
    assert all(name.startswith("dense1/") for name in boxes((tmp_path / "m.dot").read_text()))
    for args, message in ((["--around", "nope"], "no node named 'nope'"),
                          (["--match", "^zzz"], "no node matches"),
                          (["--match", "("], "invalid regular expression")):
        code, _, err = graph_cli(sample, "--dot", str(tmp_path / "e.dot"), *args)
        assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "e.dot").exists()


def test_check_findings_are_outlined(tmp_path: Path) -> None:
    model = SAMPLES / "check" / "unsafe_ops" / "model.meta"
    code, out, err = graph_cli(str(model), "--dot", str(tmp_path / "u.dot"), "--check", "--json")
    assert code == 0, err
    report = json.loads(out)
    drawn = boxes((tmp_path / "u.dot").read_text())
    outlined = {name for name, attrs in drawn.items() if "penwidth=" in attrs}
    assert report["dot"]["highlighted"] == len(outlined) == 5
    assert 'color="#d62728", penwidth=3' in drawn["OneShotIterator"]  # an error is red (serving.input-pipeline)
    assert 'color="#ff7f0e", penwidth=3' in drawn["read_file"]  # a warning orange
    assert 'color="#1f77b4", penwidth=2' in drawn["write_file"]  # info blue
    assert 'color="#1f77b4", penwidth=2' in drawn["py_double"]  # Python nothing served or loaded runs: info
    assert "security.python-op: PyFunc node" in drawn["py_double"]  # the tooltip says why
    plain = graph_cli(str(model), "--dot", str(tmp_path / "p.dot"))
    assert plain[0] == 0 and "penwidth=" not in (tmp_path / "p.dot").read_text()


def test_function_body_as_dot(tmp_path: Path) -> None:
    code, _, err = graph_cli(str(SAMPLES / "functions" / "functions.meta"), "--dot", str(tmp_path / "f.dot"),
                             "--function", "MyAdd")
    assert code == 0, err
    found = edges((tmp_path / "f.dot").read_text())
    assert set(found) == {("a", "add_0"), ("b", "add_0"), ("add_0", "add")}  # args, body, result


def test_series_are_merged_when_a_flat_graph_is_over_budget() -> None:
    graph = GraphDef()
    add_node(graph, "x", "Placeholder")
    for i in range(300):
        add_node(graph, "add" if i == 0 else f"add_{i}", "AddV2", "x", "x")
    picture = draw(nodes_of(graph), {}, Selection(), path="flat")
    assert picture.series_merged and picture.drawn_nodes == 2
    assert "300 nodes" in boxes(picture.text)["add_*"]


def test_svg_without_graphviz_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot there
    code, out, err = graph_cli(str(SAMPLES / "frozen" / "frozen.pb"), "--svg", str(tmp_path / "x.svg"),
                               "--dot", str(tmp_path / "x.dot"))
    assert code == 2 and not out
    assert err.strip().splitlines() == [
        ("metainspect: rendering needs Graphviz's `dot` program, which is not installed "
         "(apt-get install graphviz, or brew install graphviz)")]
    assert not list(tmp_path.iterdir())  # nothing written, the DOT file included


def test_dot_writes_are_atomic_and_replace_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    out.write_text("old")
    assert graph_cli(str(SAMPLES / "frozen" / "frozen.pb"), "--dot", str(out))[0] == 0
    assert out.read_text().startswith("digraph metainspect {")
    assert [p.name for p in tmp_path.iterdir()] == ["g.dot"]


def test_selection_errors_from_the_library() -> None:
    graph = scoped_graph(layers=1, units=1)
    with pytest.raises(PictureError, match="no node named 'x'"):
        draw(nodes_of(graph), {}, Selection(around="x"), path="g")


def test_dot_to_standard_output_with_the_summary_on_stderr(tmp_path: Path) -> None:
    sample = str(SAMPLES / "mlp" / "model.ckpt-3")
    code, out, err = graph_cli(sample, "--dot", "-", "--match", "^dense1/")
    assert code == 0 and out.startswith("digraph metainspect {") and out.rstrip().endswith("}")
    assert err.splitlines()[0].startswith(sample) and "dot          -:" in err
    written = tmp_path / "m.dot"
    assert graph_cli(sample, "--dot", str(written), "--match", "^dense1/")[0] == 0
    assert written.read_text() == out
    code, out, err = graph_cli(sample, "--dot", "-", "--json")
    assert code == 2 and "cannot share it with --json" in out + err


def test_check_reads_the_model_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import metainspect.graph.model as model_module

    loads: list[str] = []
    real = model_module.load_model
    monkeypatch.setattr(model_module, "load_model", lambda *a, **k: loads.append(str(a[0])) or real(*a, **k))
    code, _, _ = graph_cli(str(SAMPLES / "check" / "unsafe_ops" / "model.meta"), "--dot", str(tmp_path / "u.dot"),
                           "--check")
    assert code == 0 and len(loads) == 1
