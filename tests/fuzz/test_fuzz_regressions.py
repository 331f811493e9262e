"""Every input the fuzz harness ever found a crash with, replayed: refused cleanly or read, nothing else.

The cases live in ``regressions/<family>/*.zip`` (written by ``python -m tools.fuzz``); each runs
in the harness's worker process, under its address-space cap and a time limit, through the same
public API calls as when it was found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.fuzz.case import Case
from tools.fuzz.families import FAMILIES
from tools.fuzz.runner import Worker, replay

CASES = sorted((Path(__file__).parent / "regressions").glob("*/*.zip"))


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    started = Worker()
    yield started
    started.close()


def test_the_corpus_covers_every_family_it_names() -> None:
    assert CASES, "the regression corpus is empty"
    assert {path.parent.name for path in CASES} <= set(FAMILIES)


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_regression_is_read_or_refused_with_a_metainspect_error(path: Path, worker: Worker) -> None:
    case, found = Case.from_zip(path)
    assert case.family == path.parent.name
    [(_, result)] = replay([path], worker)
    assert result["kind"] in ("ok", "error"), (
        f"once {found['class']}, now {result['kind']}: {result.get('class')}\n"
        f"{result.get('traceback') or result.get('message')}"
    )
