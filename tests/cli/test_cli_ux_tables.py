"""Tables: names never split on a terminal, tall tables paged, plain columns not padded to outliers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from metainspect.cli import render

from helpers.cli import CliResult
from helpers.graph import GraphBuilder
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp"


def _on_terminal(monkeypatch: pytest.MonkeyPatch, *args: str, columns: int = 60, lines: int = 200,
                 pager: str | None = None) -> CliResult:
    """``metainspect ARGS`` as if stdout were a terminal COLUMNS x LINES."""
    from click.testing import CliRunner

    from metainspect.cli import run

    monkeypatch.setattr(render, "is_terminal", lambda: True)
    env = {"COLUMNS": str(columns), "LINES": str(lines), "PAGER": pager}
    with CliRunner().isolation(env=env) as (out, err, _):
        with pytest.raises(SystemExit) as exit_info:
            run(list(args), prog_name="metainspect")
        sys.stdout.flush()
        code = exit_info.value.code
        return CliResult(code if isinstance(code, int) else 0, out.getvalue().decode(), err.getvalue().decode())


def test_names_are_never_split_on_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _on_terminal(monkeypatch, "vars", str(MLP), columns=60, pager="")
    assert result.code == 0
    assert max(len(line) for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└") <= 60
    names = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert "dense1/bias/Adam_1" in names and "dense2/kernel/Adam_1" in names
    assert "m" not in names and "1" not in names and "" in names  # only other columns' folds leave the name empty


def test_a_table_taller_than_the_terminal_goes_to_the_pager(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paged = tmp_path / "paged.txt"
    result = _on_terminal(monkeypatch, "nodes", str(MLP), lines=20, pager=f"cat > {paged}")
    assert result.code == 0 and result.stdout == ""
    text = paged.read_text()
    assert text.splitlines()[1].split() == ["name", "op", "inputs", "device"]
    assert "dense1/MatMul" in text


def test_no_pager_for_a_short_table_or_when_pager_is_cat(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paged = tmp_path / "paged.txt"
    short = _on_terminal(monkeypatch, "placeholders", str(MLP), lines=60, pager=f"cat > {paged}")
    assert "keep_prob" in short.stdout and not paged.exists()
    direct = _on_terminal(monkeypatch, "nodes", str(MLP), lines=20, pager="cat")
    assert "dense1/MatMul" in direct.stdout


def test_plain_columns_are_not_padded_to_an_outlier(tmp_path: Path) -> None:
    builder = GraphBuilder()
    for i in range(30):
        builder.add(f"in{i}", "Placeholder")
    builder.add("concat", "ConcatV2", *(f"in{i}" for i in range(30)))
    for i in range(20):
        builder.add(f"relu{i}", "Relu", "concat")
    path = tmp_path / "wide.meta"
    path.write_bytes(builder.meta_graph.SerializeToString())
    from helpers.cli import invoke

    result = invoke("nodes", str(path))
    lines = result.stdout.splitlines()
    widest_input = len(", ".join(f"in{i}" for i in range(30)))
    assert len(next(line for line in lines if line.startswith("concat "))) > widest_input
    assert all(len(line) < 60 for line in lines if line.startswith("relu"))


def test_rewrite_change_table_keeps_tensor_names_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = _on_terminal(monkeypatch, "rewrite", str(MLP), "-o", str(tmp_path / "out"), "--drop-optimizer", "--plan",
                          columns=70, pager="")
    assert result.code == 0, result.stderr
    names = [line.split("│")[2].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert "dense1/kernel/Adam_1" in names and "dense2/kernel/Adam_1" in names
    assert not {"1", "m", "Adam_"} & set(names)
