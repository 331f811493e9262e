"""Shared test fixtures: sample and real-model locations, and a CLI runner in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_meta"
REAL_MODELS = ROOT.parent / "shared" / "real_models"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self):  # type: ignore[no-untyped-def]
        return json.loads(self.stdout)


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """Run ``python -m metainspect ARGS`` the way a user would, capturing both streams."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "metainspect", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def real_models() -> Path:
    if not REAL_MODELS.is_dir():
        pytest.skip("../shared/real_models not present (third-party models live beside the repo, not in it)")
    return REAL_MODELS


def golden_files(kind: str) -> list[Path]:
    """Every sample golden.json of a kind: "graph" (has nodes or meta_graphs) or "checkpoint"."""
    found = []
    for path in sorted(SAMPLES.rglob("golden*.json")):
        data = json.loads(path.read_text())
        is_graph = "nodes" in data or "meta_graphs" in data
        if (kind == "graph") == is_graph and (kind == "graph" or "variables" in data or "checkpoints" in data):
            found.append(path)
    return found
