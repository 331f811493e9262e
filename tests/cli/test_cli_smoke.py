"""What only a real process shows: the console script, ``python -m metainspect``, a closed pipe, a
traceback under ``--debug``. Everything else runs the CLI in-process (the ``cli`` fixture)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import ENV, run_cli
from helpers.paths import SAMPLES

META = str(SAMPLES / "mlp" / "model.ckpt-3.meta")


def test_python_m_metainspect_prints_the_one_version() -> None:
    result = run_cli("--version")
    assert result.code == 0, result.stderr
    assert result.stdout == f"metainspect {importlib.metadata.version('metainspect')}\n"


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("metainspect")
    if not script.exists():
        pytest.skip("the metainspect console script is not installed beside this Python")
    proc = subprocess.run([str(script), "placeholders", META, "--json"], capture_output=True, text=True,
                          env={**os.environ, **ENV}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(("[", "{")) and proc.stderr == ""


def test_closed_pipe_ends_quietly() -> None:
    """``metainspect nodes x.meta | head -0``: the reader went away; no traceback, no message.

    Status 0, as other Unix tools end (click's own handler would say 1, the findings code).
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "metainspect", "nodes", META, "--json"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV}, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == ""


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli("--debug", "nodes", str(tmp_path / "nope.meta"))
    assert result.code == 2 and "Traceback (most recent call last)" in result.stderr
    assert "nope.meta" in result.stderr.splitlines()[-1]
