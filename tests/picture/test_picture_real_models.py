"""Both pictures of every shipped sample and every third-party graph in ../shared/real_models*/:
no traceback, every node kept; files that are no graph give one line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.graph_pb2 import GraphDef

from metainspect.errors import MetainspectError
from metainspect.graph.model import load_model

from helpers.paths import SAMPLES
from helpers.picture import REAL_DIRS, graph_cli, real_graph_files

SAMPLE_FILES = sorted({p for pattern in ("*.meta", "*.pb", "*.pbtxt") for p in SAMPLES.rglob(pattern)})
FILES = real_graph_files()


def _id(path: Path) -> str:
    return "/".join(path.parts[-3:])


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[_id(p) for p in SAMPLE_FILES])
def test_tensorboard_and_dot_of_a_shipped_sample(tmp_path: Path, path: Path) -> None:
    both_pictures(tmp_path, path)


@pytest.mark.skipif(not REAL_DIRS, reason="../shared/real_models* not present (third-party files live beside the repo)")
@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_tensorboard_and_dot_of_a_real_graph(tmp_path: Path, path: Path) -> None:
    both_pictures(tmp_path, path)


def both_pictures(tmp_path: Path, path: Path) -> None:
    """``graph --tensorboard --dot [--svg] --check`` on ``path``: every node in both, or one error line."""
    try:
        nodes = [n.name for n in load_model(path).nodes()]
    except MetainspectError:
        nodes = []
    args = [str(path), "--tensorboard", str(tmp_path / "logs"), "--dot", str(tmp_path / "g.dot"), "--check", "--json"]
    if shutil.which("dot"):
        args += ["--svg", str(tmp_path / "g.svg")]
    code, out, err = graph_cli(*args)
    assert "Traceback" not in err
    if not nodes:  # not a graph (a fingerprint, a config, a damaged file): one line, exit 2
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        return
    assert code == 0, err
    report = json.loads(out)
    [event_file] = (tmp_path / "logs").glob("events.out.tfevents.*")
    graphs = [GraphDef.FromString(e.graph_def) for e in EventFileLoader(str(event_file)).Load() if e.HasField("graph_def")]
    assert [n.name for n in graphs[0].node] == nodes
    assert report["dot"]["selected_nodes"] == len(nodes)
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
