"""The README's API example runs as printed, on the shipped sample, and prints what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers.paths import ROOT


def _example() -> str:
    """The first ``python`` block of the README's "Python API" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match[1]


def test_readme_api_example_runs_and_prints_its_comments(tmp_path: Path) -> None:
    code = _example()
    os.symlink(ROOT / "sample_meta", tmp_path / "sample_meta")  # the example names paths from the repo root
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    promised = [line.split("# ", 1)[1].split(" (", 1)[0] for line in code.splitlines()
                if line.startswith("print(") and "# " in line]
    assert proc.stdout.splitlines() == promised == ["NOT READY: 2 errors, 2 warnings", "READY: 0 errors, 0 warnings"]
    written = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["out/export/1/saved_model.pb", "out/export/1/variables/variables.data-00000-of-00001",
                       "out/export/1/variables/variables.index", "out/serve.ckpt.data-00000-of-00001",
                       "out/serve.ckpt.index", "out/serve.meta"]
    assert len(code.strip().splitlines()) <= 14  # the "10-line example" stays short
