"""`metainspect graph --tensorboard`: event files TensorBoard reads back, and a real TensorBoard serving them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.graph_pb2 import GraphDef

from metainspect.graph.model import load_model
from metainspect.picture.function_graph import ARG_OP, RETVAL_OP
from metainspect.picture.tensorboard import CHECKPOINT_ATTR, FINDINGS_ATTR, LARGE_VALUE_BYTES, SUMMARY_TAG

from helpers.paths import SAMPLES
from helpers.picture import graph_cli, scoped_graph, write_meta_graph

MLP = SAMPLES / "mlp" / "model.ckpt-3"


def event_files(logdir: Path) -> list[Path]:
    return sorted(p for p in logdir.rglob("*") if "tfevents" in p.name)


def read_events(path: Path) -> tuple[GraphDef, dict[str, str]]:
    """The graph and the text summaries (tag -> text) of one event file, read by TensorBoard's loader."""
    graphs, texts = [], {}
    for event in EventFileLoader(str(path)).Load():
        if event.HasField("graph_def"):
            graphs.append(GraphDef.FromString(event.graph_def))
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "text":
                texts[value.tag] = value.tensor.string_val[0].decode()
    assert len(graphs) == 1
    return graphs[0], texts


def test_event_file_holds_every_node_with_checkpoint_shapes(tmp_path: Path) -> None:
    code, out, _ = graph_cli(str(MLP), "--tensorboard", str(tmp_path / "logs"), "--json")
    assert code == 0
    report = json.loads(out)
    [path] = event_files(tmp_path / "logs")
    assert report["tensorboard"] == {"logdir": str(tmp_path / "logs"), "run": ".", "event_file": str(path)}
    graph, texts = read_events(path)
    model = load_model(MLP)
    assert [n.name for n in graph.node] == [n.name for n in model.nodes()]
    assert [n.op for n in graph.node] == [n.op for n in model.nodes()]
    by_name = {n.name: n for n in graph.node}
    assert by_name["dense1/kernel"].attr[CHECKPOINT_ATTR].s == b"dense1/kernel: float32 [4, 8]"
    assert report["variables_shown"] == sum(CHECKPOINT_ATTR in n.attr for n in graph.node) == 15
    assert "15 variables found" in texts[SUMMARY_TAG]
    assert report["checkpoint"] == str(MLP)


def test_findings_attach_to_the_nodes_they_name(tmp_path: Path) -> None:
    model = SAMPLES / "check" / "shape_changed" / "model.meta"
    code, out, _ = graph_cli(str(model), "--tensorboard", str(tmp_path), "--check", "--json")
    assert code == 0
    assert json.loads(out)["check"]["verdict"].startswith("NOT READY")
    graph, texts = read_events(event_files(tmp_path)[0])
    marked = {n.name: [s.decode() for s in n.attr[FINDINGS_ATTR].list.s] for n in graph.node if FINDINGS_ATTR in n.attr}
    assert any(f.startswith("error restore.shape-mismatch") for f in marked["dense1/kernel"])
    assert "restore.shape-mismatch" in texts[SUMMARY_TAG]
    assert "NOT READY" in texts[SUMMARY_TAG]


def test_saved_model_meta_graph_chosen_by_tags(tmp_path: Path) -> None:
    saved = SAMPLES / "savedmodel_tf1"
    for tags in ("serve", "train"):
        code, _, _ = graph_cli(str(saved), "--tensorboard", str(tmp_path), "--run", tags, "--tags", tags)
        assert code == 0
        graph, texts = read_events(event_files(tmp_path / tags)[0])
        assert [n.name for n in graph.node] == [n.name for n in load_model(saved, [tags]).nodes()]
        assert f"| meta graph tags | {tags} |" in texts[SUMMARY_TAG]
    code, _, err = graph_cli(str(saved), "--tensorboard", str(tmp_path), "--tags", "gpu")
    assert code == 2 and "no meta graph tagged gpu" in err


def test_function_becomes_a_graph_with_argument_and_result_nodes(tmp_path: Path) -> None:
    functions = SAMPLES / "functions" / "functions.meta"
    code, _, _ = graph_cli(str(functions), "--tensorboard", str(tmp_path), "--function", "__inference_outer_20")
    assert code == 0
    graph, texts = read_events(event_files(tmp_path)[0])
    nodes = {n.name: n for n in graph.node}
    assert {n for n, node in nodes.items() if node.op == ARG_OP} == {"t", "add_readvariableop_scale"}
    assert [n for n, node in nodes.items() if node.op == RETVAL_OP] == ["identity", "add/ReadVariableOp/control_ret"]
    # function-body references (node:output_arg:index) are graph references now
    assert list(nodes["add"].input) == ["PartitionedCall", "add/ReadVariableOp"]
    assert list(nodes["identity"].input) == ["Identity"]
    assert list(nodes["Identity"].input) == ["add", "^NoOp"]
    assert "function __inference_outer_20" in texts[SUMMARY_TAG]
    code, _, err = graph_cli(str(functions), "--tensorboard", str(tmp_path), "--function", "nope")
    assert code == 2 and "no function 'nope'" in err and "MyAdd" in err


def test_custom_ops_and_large_values(tmp_path: Path) -> None:
    graph = scoped_graph(layers=1, units=1)
    const = graph.node.add(name="big", op="Const")
    const.attr["dtype"].type = 1
    const.attr["value"].tensor.dtype = 1
    const.attr["value"].tensor.tensor_shape.dim.add(size=1000)
    const.attr["value"].tensor.float_val.extend([0.5] * 1000)
    path = write_meta_graph(tmp_path / "custom.meta", graph)
    assert graph_cli(str(path), "--tensorboard", str(tmp_path / "logs"))[0] == 0
    written, _ = read_events(event_files(tmp_path / "logs")[0])
    assert [n.name for n in written.node] == [n.name for n in graph.node]
    assert {n.name: n.op for n in written.node}["head/custom"] == "MyVendorOp"
    value = {n.name: n for n in written.node}["big"].attr["value"].tensor
    assert value.ByteSize() < LARGE_VALUE_BYTES and not value.float_val
    assert [d.size for d in value.tensor_shape.dim] == [1000]


def test_a_new_file_replaces_the_one_written_before_and_leaves_others(tmp_path: Path) -> None:
    foreign = tmp_path / "events.out.tfevents.1.trainer"
    foreign.write_bytes(b"")
    assert graph_cli(str(MLP), "--tensorboard", str(tmp_path))[0] == 0
    first = [p for p in event_files(tmp_path) if p != foreign]
    time.sleep(1.1)  # the file name holds the time in seconds
    assert graph_cli(str(MLP), "--tensorboard", str(tmp_path))[0] == 0
    second = [p for p in event_files(tmp_path) if p != foreign]
    assert len(first) == len(second) == 1 and first != second
    assert foreign.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("args, message", [
    ([], "nothing to write"),
    (["--tensorboard", "{tmp}", "--depth", "2"], "--depth shapes the DOT/SVG picture"),
    (["--tensorboard", "{tmp}", "--run", "../up"], "relative name inside LOGDIR"),
    (["--dot", "{tmp}/x.dot", "--radius", "2"], "--radius needs --around"),
    (["--tensorboard", "{tmp}/file"], "is not a directory"),
])
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = graph_cli(str(MLP), *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*tfevents*"))


# -- a real TensorBoard --------------------------------------------------------------------------

def _start_tensorboard(logdir: Path, load_fast: str) -> tuple[subprocess.Popen[str], str, threading.Thread]:
    """TensorBoard on 127.0.0.1 with a port the OS picks, within 90 s: (process, base URL, output reader)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0",
         f"--load_fast={load_fast}", "--reload_interval", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    found: list[str] = []
    seen: list[str] = []

    def watch() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            seen.append(line)
            match = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if match and not found:
                found.append(match.group(0))

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while not found and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not found:
        _stop(proc, reader)
        pytest.fail("TensorBoard did not start within 90 s:\n" + "".join(seen[-20:]))
    return proc, found[0], reader


def _stop(proc: subprocess.Popen[str], reader: threading.Thread) -> None:
    """Stop TensorBoard and what it started (its data server) by their process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    reader.join(timeout=15)  # the pipe ends with the process group
    if proc.stdout is not None:
        proc.stdout.close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
        return response.read()  # type: ignore[no-any-return]


@pytest.mark.parametrize("load_fast", ["false", "auto"])
def test_a_real_tensorboard_serves_every_node(tmp_path: Path, load_fast: str) -> None:
    graph = scoped_graph(layers=2, units=2)
    meta = write_meta_graph(tmp_path / "custom.meta", graph)
    logdir = tmp_path / "logs"
    assert graph_cli(str(meta), "--tensorboard", str(logdir), "--run", "custom")[0] == 0
    assert graph_cli(str(MLP), "--tensorboard", str(logdir), "--run", "mlp")[0] == 0
    proc, base, reader = _start_tensorboard(logdir, load_fast)
    try:
        deadline = time.monotonic() + 60
        info: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline:
            info = json.loads(_get(base + "data/plugin/graphs/info"))
            if all(info.get(run, {}).get("run_graph") for run in ("custom", "mlp")):
                break
            time.sleep(0.5)
        assert info["custom"]["run_graph"] and info["mlp"]["run_graph"], info
        for run, expected in (("custom", [n.name for n in graph.node]),
                              ("mlp", [n.name for n in load_model(MLP).nodes()])):
            query = urllib.parse.urlencode({"run": run, "limit_attr_size": 1024, "large_attrs_key": "_too_large_attrs"})
            served = text_format.Parse(_get(base + "data/plugin/graphs/graph?" + query).decode(), GraphDef())
            assert [n.name for n in served.node] == expected
        served_ops = {n.name: n.op for n in served.node}
        assert served_ops["dense1/kernel"] == "VariableV2"
        texts = json.loads(_get(base + "data/plugin/text/tags"))
        assert texts["mlp"] == [SUMMARY_TAG]
    finally:
        _stop(proc, reader)
    assert proc.poll() is not None
