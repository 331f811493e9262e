"""Long work reports progress through the one callback shape: bars on a terminal, none with --json."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import Cli
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp"


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every progress_bars block the commands open: whether it was enabled, and what it was told."""
    opened: list[dict[str, Any]] = []

    @contextmanager
    def fake(*, after: float = 0.0, enabled: bool = True) -> Iterator[Any]:
        record: dict[str, Any] = {"enabled": enabled, "steps": []}
        opened.append(record)
        yield lambda step, done, total: record["steps"].append((step, done, total))

    from metainspect.cli import checkpoint_commands, convert_command, export_command

    for module in (checkpoint_commands, convert_command, export_command):
        monkeypatch.setattr(module, "progress_bars", fake)
    return opened


def test_verify_and_vars_stats_report_progress(cli: Cli, bars: list[dict[str, Any]]) -> None:
    assert cli("verify", str(MLP)).code == 0
    assert bars[-1]["enabled"] and bars[-1]["steps"][-1] == ("verifying", 15, 15)
    assert cli("vars", str(MLP), "--stats").code == 0
    assert bars[-1]["enabled"] and bars[-1]["steps"][-1] == ("statistics", 820, 820)


@pytest.mark.parametrize("args", [
    ["verify", str(MLP), "--json"],
    ["vars", str(MLP), "--stats", "--json"],
    ["convert", str(MLP), "-o", "{tmp}/out.npz", "--json"],
    ["export", str(MLP), "-o", "{tmp}/sm", "--input", "x=x:0", "--output", "p=probs:0", "--engine", "pure", "--json"],
])
def test_no_bars_with_json(cli: Cli, bars: list[dict[str, Any]], tmp_path: Path, args: list[str]) -> None:
    result = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.code == 0, result.stderr
    assert bars and not any(b["enabled"] for b in bars)
