"""``--help`` of every command reads well on an 80-column terminal: nothing wider, no ragged wrap."""

from __future__ import annotations

import itertools
import re
import sys

import pytest
import typer

WIDTH = 80
LABEL = re.compile(r"^ [A-Z][A-Za-z ]{0,20}: ")


def _commands() -> list[str]:
    from metainspect.cli import app

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _help(*args: str) -> str:
    from click.testing import CliRunner

    from metainspect.cli import run

    with CliRunner().isolation(env={"COLUMNS": str(WIDTH)}) as (out, _, _):
        with pytest.raises(SystemExit) as exit_info:
            run([*args, "--help"], prog_name="metainspect")
        sys.stdout.flush()
        assert exit_info.value.code in (0, None)
        return out.getvalue().decode("utf-8")


@pytest.mark.parametrize("command", ["", *_commands()])
def test_help_fits_80_columns_without_ragged_lines(command: str) -> None:
    text = _help(*([command] if command else []))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    # the description (between "Usage:" and the first panel) is wrapped as a whole: no line
    # is followed, in the same paragraph, by a word that would have fit on it
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    body = [line.rstrip() for line in lines[start:end]]
    for line, following in itertools.pairwise(body):
        if not line.strip() or not following.strip() or following.startswith("  ") or LABEL.match(following):
            continue  # a paragraph's end, an indented example, or a line of its own ("Exit codes: ...")
        first_word = following.split()[0]
        assert len(line) + 1 + len(first_word) > WIDTH - 2, f"ragged wrap: {line!r} / {following!r}"
    assert "``" not in text
