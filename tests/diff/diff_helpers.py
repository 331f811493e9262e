"""Shared pieces of the diff tests: sample locations, checkpoints written with metainspect's own
bundle writer, and the command line run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metainspect.formats.bundle_writer import BundleWriter

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_meta"
SHARED = ROOT.parent / "shared"


def write_checkpoint(prefix: Path, tensors: dict[str, Any], dtypes: dict[str, str] | None = None) -> str:
    """A V2 checkpoint holding ``tensors`` (arrays; a list of (full_shape, extents, array) for
    a partitioned tensor); returns the prefix."""
    with BundleWriter(str(prefix)) as writer:
        for name, value in tensors.items():
            if isinstance(value, list):
                for full_shape, extents, part in value:
                    writer.add_slice(name, full_shape, extents, part)
            else:
                writer.add(name, np.asarray(value) if not isinstance(value, np.ndarray) else value,
                           dtype=(dtypes or {}).get(name))
    return str(prefix)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(*args: str | Path) -> CliResult:
    """``python -m metainspect ARGS`` in a fresh process, both streams captured."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "metainspect", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
