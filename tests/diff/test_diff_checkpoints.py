"""Checkpoint diffs on checkpoints written with metainspect's own bundle writer (values checked
against numpy computed independently) and on the TensorFlow-written samples."""

from __future__ import annotations

import glob
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from metainspect.checkpoint import open_checkpoint
from metainspect.diff import diff_checkpoints
from metainspect.errors import CorruptError, MetainspectError
from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

from helpers.cli import Cli, CliResult
from helpers.diff import write_checkpoint
from helpers.paths import SAMPLES

RNG = np.random.default_rng(42)
W = RNG.normal(size=(6, 5)).astype(np.float32)
B = RNG.normal(size=5).astype(np.float32)


def _run(cli: Cli, *args: object) -> CliResult:
    """``metainspect ARGS`` in this process (paths given as Path objects too)."""
    return cli(*map(str, args))


def _pair(tmp_path: Path) -> tuple[str, str]:
    """A: w, b, step, vocab, old/x.  B: w moved, b equal, step+1, vocab with one word changed, new/y."""
    a = write_checkpoint(tmp_path / "a" / "ckpt", {
        "net/w": W, "net/b": B, "step": np.int64(7),
        "vocab": np.array([b"the", b"cat", b"sat"], dtype=object), "old/x": np.zeros(3, np.float32),
    })
    w2 = W.copy()
    w2[1, 2] += 0.5
    w2[4] -= 1e-3
    b = write_checkpoint(tmp_path / "b" / "ckpt", {
        "net/w": w2, "net/b": B, "step": np.int64(8),
        "vocab": np.array([b"the", b"dog", b"sat"], dtype=object), "new/y": np.ones((2, 2), np.float64),
    })
    return a, b


def test_keys_dtypes_shapes_and_values(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    found = diff_checkpoints(a, b)
    assert [e.name for e in found.removed] == ["old/x"]
    assert [(e.name, e.dtype, e.shape) for e in found.added] == [("new/y", "float64", (2, 2))]
    assert not found.renamed and not found.identical
    assert (found.compared, found.equal, found.within_tolerance) == (4, 1, 0)
    changed = {c.name: c for c in found.changed}
    assert set(changed) == {"net/w", "step", "vocab"}
    w = changed["net/w"].values
    assert w is not None
    x, y = W.astype(np.float64), np.asarray(open_checkpoint(b).get("net/w"), np.float64)
    d = np.abs(x - y)
    assert w.max_abs_diff == pytest.approx(d.max(), rel=1e-12)
    assert w.mean_abs_diff == pytest.approx(d.mean(), rel=1e-12)
    assert w.rel_l2 == pytest.approx(np.linalg.norm(x - y) / np.linalg.norm(x), rel=1e-12)
    assert w.cosine == pytest.approx(np.dot(x.ravel(), y.ravel()) / np.linalg.norm(x) / np.linalg.norm(y), rel=1e-12)
    assert w.mismatched_elements == 6 and w.mismatched == pytest.approx(6 / 30)
    assert changed["vocab"].values is not None and changed["vocab"].values.mismatched_elements == 1
    assert changed["step"].values is not None and changed["step"].values.max_abs_diff == 1.0


def test_tolerances_make_small_changes_equal(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    found = diff_checkpoints(a, b, atol=1e-2, match="^net/")
    assert [c.name for c in found.changed] == ["net/w"]
    assert found.changed[0].values is not None and found.changed[0].values.mismatched_elements == 1
    found = diff_checkpoints(a, b, atol=1.0, match="^net/")
    assert found.identical and found.within_tolerance == 1 and found.equal == 1


def test_match_restricts_both_sides(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    found = diff_checkpoints(a, b, match="vocab|new")
    assert (found.tensors_a, found.tensors_b) == (1, 2)
    assert [e.name for e in found.added] == ["new/y"] and not found.removed


def test_rename_rules_pair_scopes_like_rewrite(tmp_path: Path) -> None:
    a = write_checkpoint(tmp_path / "a", {"net/w": W, "net/b": B, "network/z": B})
    b = write_checkpoint(tmp_path / "b", {"model/w": W, "model/b": B, "network/z": B})
    plain = diff_checkpoints(a, b)
    assert len(plain.added) == len(plain.removed) == 2
    found = diff_checkpoints(a, b, renames=["net=model"])
    assert found.identical and found.equal == 3
    assert [(r.old, r.new) for r in found.renamed] == [("net/b", "model/b"), ("net/w", "model/w")]
    # the regex form, and the same result through rewrite's own renaming of A
    assert diff_checkpoints(a, b, renames=[r"re:^net/(.*)$=model/\1"]).identical
    out = str(tmp_path / "renamed")
    rewrite_checkpoint(a, out, RewriteOptions(renames=("net=model",)))
    assert diff_checkpoints(out, b).identical


def test_rename_collision_and_unused_rule(tmp_path: Path) -> None:
    a = write_checkpoint(tmp_path / "a", {"x/w": W, "y/w": W})
    with pytest.raises(MetainspectError, match="would both become"):
        diff_checkpoints(a, a, renames=["x=z", "y=z"])
    assert "rename rule 'q=r' matches no tensor of A" in diff_checkpoints(a, a, renames=["q=r"]).notes


def test_dtype_and_shape_changes(tmp_path: Path) -> None:
    a = write_checkpoint(tmp_path / "a", {"w": W, "s": W, "t": np.array([b"x"], dtype=object)})
    b = write_checkpoint(tmp_path / "b", {"w": W.astype(np.float16), "s": W.T.copy(), "t": np.array([1.0], np.float32)})
    changed = {c.name: c for c in diff_checkpoints(a, b).changed}
    w = changed["w"]
    assert w.dtype_changed and not w.shape_changed and w.values is not None
    assert w.values.max_abs_diff == pytest.approx(np.abs(W.astype(np.float64) - W.astype(np.float16)).max())
    assert changed["s"].shape_changed and changed["s"].values is None
    assert changed["t"].dtype_changed and changed["t"].values is None
    assert changed["s"].to_json()["max_abs_diff"] is None


def test_partitioned_compared_whole(tmp_path: Path) -> None:
    value = np.arange(40, dtype=np.float32).reshape(10, 4)
    parts = [([10, 4], [(0, 3), (0, 4)], value[:3]), ([10, 4], [(3, 7), (0, 4)], value[3:])]
    a = write_checkpoint(tmp_path / "a", {"emb": parts})
    b = write_checkpoint(tmp_path / "b", {"emb": value})
    assert open_checkpoint(a).info("emb").partitioned
    assert diff_checkpoints(a, b).identical
    changed = value.copy()
    changed[9, 3] = -1
    c = write_checkpoint(tmp_path / "c", {"emb": changed})
    found = diff_checkpoints(a, c).changed
    assert found[0].values is not None and found[0].values.mismatched_elements == 1


def test_nan_appearing(tmp_path: Path) -> None:
    bad = W.copy()
    bad[0, 0] = np.nan
    bad[1, 1] = np.inf
    a = write_checkpoint(tmp_path / "a", {"w": W})
    b = write_checkpoint(tmp_path / "b", {"w": bad})
    (change,) = diff_checkpoints(a, b).changed
    assert change.nan_appeared and change.inf_appeared
    assert change.values is not None and (change.values.nan_b, change.values.inf_b) == (1, 1)
    assert change.values.mismatched_elements == 2 and change.values.max_abs_diff == 0.0


def test_no_values_reads_the_indexes_only(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    for prefix in (a, b):
        for data in glob.glob(prefix + ".data-*"):
            Path(data).write_bytes(b"\0" * os.path.getsize(data))  # every CRC now fails
    with pytest.raises(CorruptError):
        diff_checkpoints(a, b)
    found = diff_checkpoints(a, b, values=False)
    assert not found.values_compared and [c.name for c in found.changed] == []
    assert [e.name for e in found.added] == ["new/y"] and found.compared == 4
    assert found.changed == () and not found.identical


def test_corrupt_tensor_is_unusable_input(tmp_path: Path, cli: Cli) -> None:
    a, b = _pair(tmp_path)
    data = glob.glob(b + ".data-*")[0]
    raw = bytearray(Path(data).read_bytes())
    raw[3] ^= 0xFF
    Path(data).write_bytes(bytes(raw))
    result = _run(cli, "diff", a, b)
    assert result.code == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("metainspect: ") and "checksum mismatch" in result.stderr
    assert _run(cli, "diff", a, b, "--no-verify").code == 1


def test_opened_checkpoints_stay_open(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    with open_checkpoint(a) as ckpt_a, open_checkpoint(b) as ckpt_b:
        first = diff_checkpoints(ckpt_a, ckpt_b)
        assert ckpt_a.get("net/b").shape == (5,)
        assert diff_checkpoints(ckpt_a, b).to_json() == first.to_json()


def test_progress_reaches_the_total(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    calls: list[tuple[int, int]] = []
    diff_checkpoints(a, b, progress=lambda step, done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert calls[-1][0] == total > 0
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def _sample_checkpoints() -> list[str]:
    prefixes = sorted({p[: -len(".index")] for p in glob.glob(str(SAMPLES / "**" / "*.index"), recursive=True)})
    return prefixes + [str(SAMPLES / "ckpt_v1" / "model.ckpt"), str(SAMPLES / "ckpt_v1_sharded")]


@pytest.mark.parametrize("prefix", _sample_checkpoints(), ids=lambda p: os.path.relpath(p, SAMPLES))
def test_every_sample_equals_itself_and_its_v2_rewrite(prefix: str, tmp_path: Path) -> None:
    assert diff_checkpoints(prefix, prefix).identical
    out = str(tmp_path / "copy")
    rewrite_checkpoint(prefix, out)
    found = diff_checkpoints(prefix, out)
    assert found.identical and found.equal == found.compared, found.to_json()


def test_tf2_training_steps_differ() -> None:
    found = diff_checkpoints(SAMPLES / "ckpt_tf2" / "ckpt-1", SAMPLES / "ckpt_tf2" / "ckpt-2")
    assert not found.identical and not found.added and not found.removed
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in {c.name for c in found.changed}
    assert {c.name for c in found.changed} >= {"save_counter/.ATTRIBUTES/VARIABLE_VALUE"}


def test_v1_against_v2_sample(tmp_path: Path) -> None:
    out = str(tmp_path / "v2")
    rewrite_checkpoint(SAMPLES / "ckpt_v1" / "model.ckpt", out, RewriteOptions(cast=("float32", "float16")))
    found = diff_checkpoints(SAMPLES / "ckpt_v1" / "model.ckpt", out)
    assert found.format_a == "v1" and found.format_b == "v2"
    assert found.changed and all(c.dtype_b == "float16" for c in found.changed)


def test_json_is_valid_with_non_finite_values(tmp_path: Path, cli: Cli) -> None:
    a = write_checkpoint(tmp_path / "a", {"z": np.zeros(3, np.float32)})
    b = write_checkpoint(tmp_path / "b", {"z": np.array([1.0, np.nan, 0.0], np.float32)})
    result = _run(cli, "diff", a, b, "--json")
    assert result.code == 1, result.stderr
    doc = json.loads(result.stdout)  # strict JSON: no bare NaN or Infinity
    (entry,) = doc["changed"]
    assert entry["rel_l2"] == "inf" and entry["cosine"] is None and entry["nan_b"] == 1
    assert set(entry) >= {"name", "dtype_a", "dtype_b", "shape_a", "shape_b", "max_abs_diff", "mean_abs_diff",
                          "rel_l2", "cosine", "mismatched"}
    assert math.isclose(entry["mismatched"], 2 / 3)


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_pages_of_compared_tensors_leave_the_process(tmp_path: Path) -> None:
    """A file-backed tensor's pages are let go once compared: resident size stays near one pair."""
    from metainspect.diff.checkpoints import _drop_resident_pages

    big = np.arange(8 << 20, dtype=np.float32)  # 32 MiB
    prefix = write_checkpoint(tmp_path / "big", {"t": big})
    del big
    with open_checkpoint(prefix) as ckpt:
        before = _resident_mib()
        value = ckpt.get("t")  # its checksum touches every page
        total = float(value.sum(dtype=np.float64))
        touched = _resident_mib()
        _drop_resident_pages(value)
        dropped = _resident_mib()
        assert touched - before > 24 and touched - dropped > 24
        assert float(value.sum(dtype=np.float64)) == total  # still readable, from the page cache
        copy = np.array(value)
        _drop_resident_pages(copy)  # not a mapping: left alone
        assert np.array_equal(copy, value)
