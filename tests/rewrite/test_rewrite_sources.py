"""A rewrite reads its input through byte sources: one that is not a local file (no kernel copy)
gives the same output, checked the same way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from metainspect.errors import CorruptError
from metainspect.formats import bundle as bundle_module
from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

from helpers.paths import SAMPLES
from helpers.sources import count_reads

MLP = SAMPLES / "mlp" / "model.ckpt-3"
DATA = ".data-00000-of-00001"


def test_a_rewrite_through_another_source_is_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = count_reads(monkeypatch, bundle_module)
    plan = rewrite_checkpoint(str(MLP), str(tmp_path / "copy"))
    for suffix in (".index", DATA):
        assert Path(f"{tmp_path / 'copy'}{suffix}").read_bytes() == Path(f"{MLP}{suffix}").read_bytes()
    (shard,) = sources
    covered = set()
    for offset, length in shard.reads:
        covered.update(range(offset, offset + length))
    assert covered == set(range(Path(f"{MLP}{DATA}").stat().st_size))  # every byte came through the source
    cast = rewrite_checkpoint(str(MLP), str(tmp_path / "half"), RewriteOptions(cast=("float32", "float16")))
    assert cast.output_bytes < plan.output_bytes


def test_a_corrupt_byte_is_caught_through_another_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for suffix in (".index", DATA):
        shutil.copy(f"{MLP}{suffix}", tmp_path / f"in{suffix}")
    raw = bytearray((tmp_path / f"in{DATA}").read_bytes())
    raw[110] ^= 0x01  # inside dense1/kernel (offset 104)
    (tmp_path / f"in{DATA}").write_bytes(bytes(raw))
    count_reads(monkeypatch, bundle_module)
    with pytest.raises(CorruptError, match=r"'dense1/kernel'.*checksum mismatch at offset 104"):
        rewrite_checkpoint(str(tmp_path / "in"), str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.data-00000-of-00001", "in.index"]
