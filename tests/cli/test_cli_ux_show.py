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


def test_show_json_of_an_empty_tensor_with_a_huge_dimension_builds_no_lists(cli: Cli, tmp_path: Path) -> None:
    """A shape like [2**40, 0] holds no element, but its nested JSON would be 2**40 empty lists."""
    prefix = str(tmp_path / "empty")
    with BundleWriter(prefix) as writer:
        writer.add_bytes("wide", "float", (2**40, 0), 0, [])
        writer.add_bytes("deep", "float", (0, 2**40), 0, [])
        writer.add_bytes("few", "float", (3, 0), 0, [])
    for extra in ((), ("--full",)):
        refused = cli("show", prefix, "wide", "--json", *extra)
        assert refused.code == 2
        assert refused.json()["error"]["message"] == (
            "show: 'wide' has no elements, but its shape [1099511627776, 0] nests them in 1099511627777 lists; "
            "--limit 0 prints its values as [] (see --help)")
    assert cli("show", prefix, "wide", "--json", "--limit", "0").json()["values"] == []
    assert cli("show", prefix, "deep", "--json").json()["values"] == []
    assert cli("show", prefix, "few", "--json").json()["values"] == [[], [], []]
    shown = cli("show", prefix, "wide")
    assert shown.code == 0 and shown.stdout.splitlines()[1] == "[]"
