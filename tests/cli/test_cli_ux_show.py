"""``show`` bounds what it prints: numpy-style summaries, strings cut, --full streamed, big JSON refused
without --full or --limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metainspect.formats.bundle_writer import BundleWriter

from helpers.cli import Cli


@pytest.fixture
def big(tmp_path: Path) -> str:
    prefix = str(tmp_path / "big")
    with BundleWriter(prefix) as writer:
        writer.add("long", np.arange(40_000, dtype=np.float32).reshape(200, 200))
        writer.add("text", np.array("x" * 7000, dtype=object))
        writer.add("small", np.arange(6, dtype=np.int32).reshape(2, 3))
    return prefix


def test_show_summarises_a_big_tensor(cli: Cli, big: str) -> None:
    result = cli("show", big, "long")
    assert result.code == 0
    assert "..." in result.stdout and len(result.stdout) < 2000


def test_show_cuts_a_long_string(cli: Cli, big: str) -> None:
    result = cli("show", big, "text")
    assert result.code == 0 and len(result.stdout) < 400
    assert "(strings cut at 80 characters; --full prints them whole)" in result.stdout
    assert "x" * 7000 in cli("show", big, "text", "--full").stdout


def test_show_full_streams_every_element_one_row_per_line(cli: Cli, big: str) -> None:
    lines = cli("show", big, "long", "--full").stdout.splitlines()
    assert len(lines) == 1 + 200
    assert lines[1].split()[:3] == ["0.0", "1.0", "2.0"] and lines[-1].split()[-1] == "39999.0"


def test_show_json_of_a_big_tensor_needs_full_or_limit(cli: Cli, big: str) -> None:
    refused = cli("show", big, "long", "--json")
    assert refused.code == 2
    assert refused.json()["error"]["message"] == (
        "show: 'long' has 40000 elements; add --full for all of them or --limit N for the first N (see --help)")
    limited = cli("show", big, "long", "--json", "--limit", "4").json()
    assert limited == {"name": "long", "dtype": "float32", "shape": [200, 200], "values": [0.0, 1.0, 2.0, 3.0],
                       "limit": 4}
    assert len(cli("show", big, "long", "--json", "--full").json()["values"]) == 200
    assert cli("show", big, "small", "--json").json()["values"] == [[0, 1, 2], [3, 4, 5]]
