"""npz in both directions: numpy reads our archives (bfloat16 as raw |V2 bits, strings as fixed-width
bytes, metadata), and archives numpy wrote convert into checkpoints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from metainspect.checkpoint import open_checkpoint
from metainspect.convert import ConvertOptions, convert

from helpers.paths import SAMPLES


def test_checkpoint_to_npz_as_numpy_reads_it(tmp_path: Path) -> None:
    out = tmp_path / "t5.npz"
    plan = convert(str(SAMPLES / "convert" / "t5"), str(out))
    expected = json.loads((SAMPLES / "convert" / "t5" / "golden.json").read_text())
    with np.load(out) as archive:
        metadata = json.loads(str(archive["__metadata__"]))
        dtypes = json.loads(metadata["dtypes"])
        for name, sha in expected["sha256"].items():
            array = archive[name]
            assert hashlib.sha256(array.tobytes()).hexdigest() == sha, name
            assert dtypes[name] == expected["dtypes"][name]
            if dtypes[name] == "bfloat16":
                assert array.dtype == np.dtype("V2")
                assert array.view(ml_dtypes.bfloat16).dtype == ml_dtypes.bfloat16
    assert metadata == plan.metadata
    row = next(t for t in plan.tensors if t.name == "shared/embedding")
    assert row.stored_dtype == "|V2" and row.new_dtype == "bfloat16"


def test_strings_become_fixed_width_bytes(tmp_path: Path) -> None:
    out = tmp_path / "d.npz"
    plan = convert(str(SAMPLES / "ckpt_dtypes"), str(out), ConvertOptions(drop=("dt_variant",)))
    with open_checkpoint(SAMPLES / "ckpt_dtypes") as ckpt, np.load(out) as archive:
        words = archive["str_2d"]
        stripped = [[v.rstrip(b"\0") for v in row] for row in ckpt.get("str_2d").tolist()]  # numpy's S type
        assert words.dtype == np.dtype("S4") and words.tolist() == stripped
        assert archive["str_scalar"].shape == () and archive["str_scalar"][()] == ckpt.get("str_scalar")[()]
        assert archive["dt_qint8"].dtype == np.int8
    assert any("NUL" in w for w in plan.warnings)  # b"\xff\x00" in str_2d cannot keep its last byte


@pytest.mark.parametrize("compressed", [False, True])
def test_numpy_archive_to_checkpoint(tmp_path: Path, compressed: bool) -> None:
    arrays: dict[str, Any] = {
        "net/w": np.arange(12, dtype=">f4").reshape(3, 4),  # big-endian
        "net/f": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "net/bf": np.array([1.5, -2], dtype=ml_dtypes.bfloat16),
        "net/names": np.array(["ü", "b"]),
        "net/flag": np.array(True),
    }
    source = tmp_path / "in.npz"
    (np.savez_compressed if compressed else np.savez)(source, **arrays)
    plan = convert(str(source), str(tmp_path / "ckpt" / "model.ckpt"))
    assert plan.format == "checkpoint" and any("read as bfloat16" in n for n in plan.notes)
    with open_checkpoint(tmp_path / "ckpt" / "model.ckpt") as ckpt:
        assert ckpt.dtype("net/w") == "float32" and ckpt.get("net/w").tolist() == arrays["net/w"].tolist()
        assert ckpt.get("net/f").tolist() == arrays["net/f"].tolist()
        assert ckpt.dtype("net/bf") == "bfloat16" and ckpt.get("net/bf").tobytes() == arrays["net/bf"].tobytes()
        assert ckpt.get("net/names").tolist() == ["ü".encode(), b"b"]
        assert ckpt.dtype("net/flag") == "bool" and ckpt.get("net/flag")[()]
        assert ckpt.verify() == []


def test_round_trip_through_npz(tmp_path: Path) -> None:
    """checkpoint -> npz -> checkpoint keeps every value and dtype (the metadata names them)."""
    convert(str(SAMPLES / "convert" / "t5"), str(tmp_path / "t5.npz"))
    convert(str(tmp_path / "t5.npz"), str(tmp_path / "back") + "/")
    assert (tmp_path / "back" / "checkpoint").exists()
    with open_checkpoint(SAMPLES / "convert" / "t5") as a, open_checkpoint(tmp_path / "back") as b:
        assert a.keys() == b.keys()
        for name in a.keys():
            assert a.dtype(name) == b.dtype(name) and a.get(name).tobytes() == b.get(name).tobytes()


def test_npz_refuses_max_shard_size(tmp_path: Path, cli: Any) -> None:
    result = cli("convert", str(SAMPLES / "mlp"), "-o", str(tmp_path / "x.npz"), "--max-shard-size", "1K")
    assert result.code == 2 and "one file" in result.stderr and not list(tmp_path.iterdir())
