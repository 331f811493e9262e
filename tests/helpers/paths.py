"""Where the test inputs live."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_meta"
#: third-party models beside the repository (never copied into it); tests skip when absent
REAL_MODELS = ROOT.parent / "shared" / "real_models"
#: the second batch (LFS pointers, a damaged .pb, a SavedModel without variables, producer-9 graphs…)
REAL_MODELS_2 = ROOT.parent / "shared" / "real_models_2"


def golden_files(kind: str) -> list[Path]:
    """Every sample golden.json of a kind: "graph" (has nodes or meta_graphs) or "checkpoint"."""
    found = []
    for path in sorted(SAMPLES.rglob("golden*.json")):
        data = json.loads(path.read_text())
        is_graph = "nodes" in data or "meta_graphs" in data
        if (kind == "graph") == is_graph and (kind == "graph" or "variables" in data or "checkpoints" in data):
            found.append(path)
    return found
