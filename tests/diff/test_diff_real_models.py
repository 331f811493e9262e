"""Every diff on the third-party files under ../shared/real_models*: no traceback, exit codes
0/1 for readable pairs, a one-line error (exit 2) for unusable input or a graph/checkpoint pair."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from helpers.cli import invoke
from helpers.paths import ROOT

SHARED = ROOT.parent / "shared"
ROOTS = sorted(SHARED.glob("real_models*"))
SERVING = SHARED / "real_models" / "tensorflow_serving"


def _inputs() -> list[Path]:
    """Graph files and checkpoint prefixes (V2 by their .index, V1 files by their .meta)."""
    found: set[Path] = set()
    for root in ROOTS:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            if path.suffix in (".meta", ".pbtxt", ".pb"):
                found.add(path)
                if path.suffix == ".meta" and path.with_suffix("").is_file():
                    found.add(path.with_suffix(""))  # a V1 checkpoint file beside its graph
            elif path.suffix == ".index":
                found.add(path.with_suffix(""))
    return sorted(found)


INPUTS = _inputs()


def _run(*args: Path | str) -> tuple[int, str]:
    """Exit code and output of ``metainspect diff ARGS --json``; an error must be one line, no traceback."""
    result = invoke("diff", *map(str, args), "--json")
    if result.code == 2:
        assert result.stderr.startswith("metainspect: ") and result.stderr.count("\n") == 1, result.stderr
        return 2, result.stderr
    assert not result.stderr or "Traceback" not in result.stderr, result.stderr
    return result.code, result.stdout


@pytest.fixture(autouse=True)
def _need_real_models() -> None:
    if not ROOTS:
        pytest.skip("../shared/real_models* not present (third-party models live beside the repo, not in it)")


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: str(p.relative_to(SHARED)))
def test_every_input_against_itself(path: Path) -> None:
    code, output = _run(path, path)
    assert code in (0, 2), output
    if code == 0:
        assert '"identical":true' in output.replace(" ", "")


def _neighbour_pairs() -> list[tuple[Path, Path]]:
    by_dir: dict[Path, list[Path]] = {}
    for path in INPUTS:
        by_dir.setdefault(path.parent, []).append(path)
    return [pair for group in by_dir.values() for pair in itertools.combinations(group, 2)]


@pytest.mark.parametrize(("a", "b"), _neighbour_pairs(),
                         ids=lambda p: str(p.relative_to(SHARED)) if isinstance(p, Path) else str(p))
def test_files_side_by_side(a: Path, b: Path) -> None:
    code, output = _run(a, b)
    assert code in (0, 1, 2), output


def test_serving_exports_pairwise_as_graphs_and_as_checkpoints() -> None:
    if not SERVING.is_dir():
        pytest.skip("tensorflow_serving test models not present")
    exports = sorted(p.parent for p in SERVING.glob("*/00000123/saved_model.pb"))
    assert len(exports) >= 5
    codes = []
    for a, b in itertools.combinations(exports, 2):
        for kind in ("graph", "checkpoint"):
            code, output = _run(a, b, "--kind", kind)
            assert code in (0, 1), f"{a} {b} {kind}: {output}"
            codes.append(code)
    assert 1 in codes and 0 in codes  # some exports share their variables exactly
    code, output = _run(SERVING / "saved_model_half_plus_two_cpu" / "00000123",
                        SERVING / "saved_model_half_plus_two_gpu" / "00000123")
    assert code == 1 and '"field":"device"' in output.replace(" ", "")
