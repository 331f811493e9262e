"""The diff command line: deciding the kind, exit codes, bad input, help, output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metainspect.diff import CHECKPOINT, GRAPH, kinds_of, pair_kind
from metainspect.errors import NotFoundError, WrongKindError

from helpers.cli import Cli, CliResult
from helpers.diff import write_checkpoint
from helpers.paths import SAMPLES

BOTH = frozenset({GRAPH, CHECKPOINT})


def _run(cli: Cli, *args: object) -> CliResult:
    """``metainspect ARGS`` in this process (paths given as Path objects too)."""
    return cli(*map(str, args))


@pytest.mark.parametrize(("path", "kinds"), [
    ("mlp/model.ckpt-3.meta", {GRAPH}),
    ("mlp/model.ckpt-3", {CHECKPOINT}),
    ("mlp/model.ckpt-3.index", {CHECKPOINT}),
    ("mlp/model.ckpt-3.data-00000-of-00001", {CHECKPOINT}),
    ("mlp", BOTH),  # a state file and the .meta beside its checkpoint
    ("savedmodel_tf1", BOTH),
    ("savedmodel_tf1/saved_model.pb", {GRAPH}),
    ("savedmodel_tf1/variables/variables", {CHECKPOINT}),
    ("ckpt_tf2", {CHECKPOINT}),
    ("ckpt_v1/model.ckpt", {CHECKPOINT}),
    ("frozen/frozen.pbtxt", {GRAPH}),
    ("functions", {GRAPH}),
])
def test_kinds_of_samples(path: str, kinds: set[str]) -> None:
    assert kinds_of(SAMPLES / path) == kinds


def test_kinds_of_unusable_paths(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file, directory or checkpoint prefix"):
        kinds_of(tmp_path / "nothing")
    with pytest.raises(NotFoundError, match="holds no checkpoint and no graph"):
        kinds_of(tmp_path)
    (tmp_path / "x.data-00000-of-00001").write_bytes(b"")
    assert kinds_of(tmp_path / "x.data-00000-of-00001") == {CHECKPOINT}  # opening it says the index is missing
    (tmp_path / "junk.bin").write_bytes(b"\x01\x02junk")
    assert kinds_of(tmp_path / "junk.bin") == BOTH  # decided by the other input


def test_pair_kind() -> None:
    assert pair_kind(SAMPLES / "savedmodel_tf1", SAMPLES / "savedmodel_tf1") == GRAPH
    assert pair_kind(SAMPLES / "savedmodel_tf1", SAMPLES / "mlp" / "model.ckpt-3") == CHECKPOINT
    assert pair_kind(SAMPLES / "savedmodel_tf1", SAMPLES / "mlp", CHECKPOINT) == CHECKPOINT
    with pytest.raises(WrongKindError, match="is a graph, not a checkpoint"):
        pair_kind(SAMPLES / "frozen" / "frozen.pb", SAMPLES / "mlp", CHECKPOINT)
    with pytest.raises(WrongKindError, match="diff compares two checkpoints or two graphs"):
        pair_kind(SAMPLES / "frozen" / "frozen.pb", SAMPLES / "ckpt_tf2")


def _pair(tmp_path: Path) -> tuple[str, str]:
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    moved = value.copy()
    moved[0, 0] = 100.0
    a = write_checkpoint(tmp_path / "a", {"w": value, "gone": np.zeros(2, np.float32)})
    b = write_checkpoint(tmp_path / "b", {"w": moved, "new": np.ones(2, np.int32)})
    return a, b


def test_exit_codes_and_summary(tmp_path: Path, cli: Cli) -> None:
    a, b = _pair(tmp_path)
    same = _run(cli, "diff", a, a)
    assert same.code == 0 and same.stdout.rstrip().endswith("identical") and not same.stderr
    different = _run(cli, "diff", a, b)
    assert different.code == 1, different.stderr
    lines = different.stdout.splitlines()
    assert lines[2] == "1 compared: 0 equal, 0 within tolerance, 1 changed; 1 added, 1 removed, 0 renamed (exact)"
    assert "changed (1):" in lines and "added (1):" in lines and "removed (1):" in lines
    assert lines[-1] == "different"
    assert _run(cli, "diff", a, b, "--match", "^w$", "--atol", "100").code == 0


def test_json_schema(tmp_path: Path, cli: Cli) -> None:
    a, b = _pair(tmp_path)
    doc = _run(cli, "diff", a, b, "--json").json()
    assert {"a", "b", "kind", "identical", "added", "removed", "renamed", "changed", "counts", "notes"} <= set(doc)
    assert doc["kind"] == "checkpoint" and doc["identical"] is False
    assert doc["added"] == [{"name": "new", "dtype": "int32", "shape": [2], "nbytes": 8}]
    assert doc["removed"][0]["name"] == "gone" and doc["renamed"] == []
    (change,) = doc["changed"]
    assert change["name"] == "w" and change["max_abs_diff"] == 100.0 and change["mismatched"] == pytest.approx(1 / 12)
    graph = _run(cli, "diff", SAMPLES / "mlp" / "model.ckpt-3.meta", SAMPLES / "mlp" / "model.ckpt-3.meta", "--json")
    assert graph.code == 0
    doc = graph.json()
    assert doc["kind"] == "graph" and doc["identical"] is True and doc["renamed"] == []
    assert {"functions", "collections", "signatures", "saver", "versions", "rename_rules"} <= set(doc)


def test_no_values_and_top(tmp_path: Path, cli: Cli) -> None:
    a, b = _pair(tmp_path)
    found = _run(cli, "diff", a, b, "--no-values", "--json").json()
    assert found["values_compared"] is False and found["changed"] == []
    many = {f"t{i}": np.full(2, i, np.float32) for i in range(5)}
    c = write_checkpoint(tmp_path / "c", many)
    d = write_checkpoint(tmp_path / "d", {k: v + 1 for k, v in many.items()})
    out = _run(cli, "diff", c, d, "--top", "2").stdout
    assert "changed (largest 2 of 5):" in out
    assert "changed (5):" in _run(cli, "diff", c, d, "--top", "0").stdout


@pytest.mark.parametrize("args", [
    ["nowhere/ckpt", "nowhere/ckpt2"],
    ["{a}", "{a}", "--match", "("],
    ["{a}", "{a}", "--rename", "oops"],
    ["{a}", "{a}", "--kind", "tensor"],
    ["{a}", "{a}", "--atol", "-1"],
    ["{a}", "{a}", "--rtol", "nan"],
    ["{a}", str(SAMPLES / "frozen" / "frozen.pb")],
])
def test_unusable_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], cli: Cli) -> None:
    a, _ = _pair(tmp_path)
    result = _run(cli, "diff", *[arg.format(a=a) for arg in args])
    assert result.code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_truncated_index(tmp_path: Path, cli: Cli) -> None:
    a, _ = _pair(tmp_path)
    index = Path(a + ".index")
    index.write_bytes(index.read_bytes()[:20])
    result = _run(cli, "diff", a, a)
    assert result.code == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith(f"metainspect: {a}")


def test_help_fits_80_columns() -> None:
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "metainspect", "diff", "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80", "TERM": "dumb"}, timeout=60)
    assert proc.returncode == 0
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    assert "metainspect diff run/ckpt-1000 export/variables/variables" in proc.stdout


def test_progress_bar_only_on_a_terminal_and_only_when_long(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from metainspect.cli.progress import progress_bars
    from metainspect.progress import silent

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with progress_bars(after=1.0) as bar:  # stderr is not a terminal here
        assert bar is silent
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with progress_bars(after=1.0, enabled=False) as bar:  # --json
        assert bar is silent
    with progress_bars(after=3600.0) as bar:
        bar("comparing tensors", 5, 10)  # before the delay: nothing drawn
    assert screen.getvalue() == ""
    with progress_bars(after=0.0) as bar:
        bar("comparing tensors", 6, 10)
        bar("comparing tensors", 10, 10)
    assert "comparing tensors" in screen.getvalue()
