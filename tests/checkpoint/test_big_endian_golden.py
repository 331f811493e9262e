"""A big-endian bundle holding TensorFlow's own all-dtype values reads back bit-identical.

TensorFlow only writes bundles in the host's byte order, so this bundle is assembled here per
FORMAT_NOTES §2.4/§2.5/§2.8 from the values TF wrote to sample_meta/ckpt_dtypes; every value
read back must hash to the sha256 TensorFlow reported for the little-endian original.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from metainspect import open_checkpoint

from helpers.bundle import write_big_endian_dtypes
from helpers.paths import SAMPLES

GOLDEN = json.loads((SAMPLES / "ckpt_dtypes" / "golden.json").read_text())


def _digest(value: np.ndarray) -> str:
    if value.dtype == object:
        return hashlib.sha256(b"".join(len(s).to_bytes(8, "little") + s for s in value.reshape(-1))).hexdigest()
    return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()


def test_big_endian_copy_of_tensorflow_values(tmp_path: Path) -> None:
    prefix = write_big_endian_dtypes(tmp_path / "big")
    with open_checkpoint(prefix) as ckpt:
        assert ckpt.endianness == "big"
        assert sorted(ckpt.keys()) == sorted(n for n, d in GOLDEN["dtypes"].items() if d != "variant")
        for name in ckpt.keys():
            assert _digest(ckpt.get(name)) == GOLDEN["sha256"][name], name
            assert ckpt.dtype(name) == GOLDEN["dtypes"][name]
        assert ckpt.verify() == []
