"""`check` reads the checkpoint's data back against its checksums, as TensorFlow's restore would;
per-key layout notes are folded into one finding when there are many."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from metainspect.check import run_checks
from metainspect.check.restore import corrupt_tensors
from metainspect.checkpoint import open_checkpoint

from helpers.cli import Cli
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp"
DATA = "model.ckpt-3.data-00000-of-00001"


@pytest.fixture
def mlp(tmp_path: Path) -> Path:
    shutil.copytree(MLP, tmp_path / "mlp")
    return tmp_path / "mlp"


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def data_offset(prefix: Path, key: str) -> int:
    with open_checkpoint(str(prefix)) as ckpt:
        return ckpt.info(key).locations[0].offset


def test_a_flipped_bit_in_a_restored_tensor_is_not_ready(mlp: Path) -> None:
    prefix = mlp / "model.ckpt-3"
    flip(mlp / DATA, data_offset(prefix, "dense2/kernel") + 5)
    report = run_checks(str(prefix))
    (bad,) = [f for f in report.findings if f.id == "restore.corrupt-tensor"]
    assert bad.severity == "error" and bad.subject == "dense2/kernel" and not report.ready()
    assert "'dense2/kernel': checksum mismatch" in bad.message and bad.details["restored"]
    assert bad.details["file"].endswith(DATA)
    skipped = run_checks(str(prefix), verify=False)
    assert skipped.ready() and not [f for f in skipped.findings if f.id == "restore.corrupt-tensor"]


def test_every_bit_of_a_tensor_is_covered(mlp: Path) -> None:
    prefix = mlp / "model.ckpt-3"
    with open_checkpoint(str(prefix)) as ckpt:
        location = ckpt.info("dense1/bias").locations[0]
    original = (mlp / DATA).read_bytes()
    for offset in range(location.offset, location.offset + location.size):
        flip(mlp / DATA, offset)
        with open_checkpoint(str(prefix)) as ckpt:
            (found,) = ckpt.verify()
        assert found.name == "dense1/bias", offset
        (mlp / DATA).write_bytes(original)


def test_a_corrupt_tensor_nothing_restores_is_a_warning(mlp: Path) -> None:
    prefix = mlp / "model.ckpt-3"
    flip(mlp / DATA, data_offset(prefix, "dense1/bias/Adam"))
    with open_checkpoint(str(prefix)) as ckpt:
        (finding,) = corrupt_tensors(ckpt, restored={"dense1/bias"})
    assert finding.severity == "warning" and finding.subject == "dense1/bias/Adam"
    assert not finding.details["restored"]


def test_a_missing_data_file_is_one_finding_with_the_count(mlp: Path) -> None:
    (mlp / DATA).unlink()
    report = run_checks(str(mlp / "model.ckpt-3"))
    (bad,) = [f for f in report.findings if f.id == "restore.corrupt-tensor"]
    with open_checkpoint(str(mlp / "model.ckpt-3")) as ckpt:
        count = len(ckpt)
    assert bad.severity == "error" and bad.details["count"] == count == len(bad.details["tensors"])
    assert f"{count} checkpoint tensors" in bad.message and "is missing" in bad.message


def test_progress_reports_tensor_counts(mlp: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    run_checks(str(mlp / "model.ckpt-3"), progress=lambda step, done, total: seen.append((step, done, total)))
    with open_checkpoint(str(mlp / "model.ckpt-3")) as ckpt:
        total = len(ckpt)
    assert seen[0] == ("verifying", 0, total) and seen[-1] == ("verifying", total, total)


def test_cli_no_verify_and_no_progress_when_piped(cli: Cli, mlp: Path) -> None:
    prefix = mlp / "model.ckpt-3"
    flip(mlp / DATA, data_offset(prefix, "dense2/bias"))
    result = cli("check", str(prefix))
    assert result.code == 1 and "restore.corrupt-tensor: dense2/bias" in result.stdout and result.stderr == ""
    assert cli("check", str(prefix), "--no-verify").code == 0
    found = cli("check", str(prefix), "--json").json()["findings"]
    assert [f["subject"] for f in found if f["id"] == "restore.corrupt-tensor"] == ["dense2/bias"]


def test_many_layout_notes_fold_into_one(real_models_2: Path) -> None:
    """A wide&deep Estimator's 86 partitioned variables, stored whole: one note with the count."""
    report = run_checks(str(real_models_2 / "lcferrara4_IPOpredictor" / "data_model" / "model.ckpt-3760.meta"))
    (layout,) = [f for f in report.findings if f.id == "restore.partition-layout"]
    assert layout.details["count"] == 86 == len(layout.details["keys"]) == len(layout.details["tensors"])
    assert layout.message.startswith("86 tensors are stored in another partition layout")
