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

from conftest import SAMPLES
from metainspect.formats import dtypes
from metainspect import open_checkpoint
from test_bundle import string_bytes, write_bundle

GOLDEN = json.loads((SAMPLES / "ckpt_dtypes" / "golden.json").read_text())


def _digest(value: np.ndarray) -> str:
    if value.dtype == object:
        return hashlib.sha256(b"".join(len(s).to_bytes(8, "little") + s for s in value.reshape(-1))).hexdigest()
    return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()


def _big_endian_bytes(value: np.ndarray) -> bytes:
    """Each element (each component of a complex number) in big-endian order."""
    if value.dtype.kind == "c":
        value = value.view(np.float32 if value.dtype.itemsize == 8 else np.float64)
    unit = value.dtype.itemsize
    raw = np.frombuffer(np.ascontiguousarray(value).tobytes(), dtype=np.uint8)
    return raw.reshape(-1, unit)[:, ::-1].tobytes() if unit > 1 and raw.size else raw.tobytes()


def write_big_endian_dtypes(path: Path) -> Path:
    """A big-endian bundle at ``path`` holding every value TF wrote to ckpt_dtypes (no variants)."""
    tensors = {}
    with open_checkpoint(SAMPLES / "ckpt_dtypes") as source:
        for name in source.keys():
            dtype = dtypes.from_name(source.dtype(name))
            if dtype.name == "variant":  # TF itself cannot byte-swap variants (§2.6)
                continue
            value = source.get(name)
            if dtype.name == "string":
                tensors[name] = (dtype.enum, value.shape, *string_bytes(list(value.reshape(-1)), "big"))
            else:
                tensors[name] = (dtype.enum, value.shape, _big_endian_bytes(value), None)
    return write_bundle(path, tensors, big_endian=True)


def test_big_endian_copy_of_tensorflow_values(tmp_path: Path) -> None:
    prefix = write_big_endian_dtypes(tmp_path / "big")
    with open_checkpoint(prefix) as ckpt:
        assert ckpt.endianness == "big"
        assert sorted(ckpt.keys()) == sorted(n for n, d in GOLDEN["dtypes"].items() if d != "variant")
        for name in ckpt.keys():
            assert _digest(ckpt.get(name)) == GOLDEN["sha256"][name], name
            assert ckpt.dtype(name) == GOLDEN["dtypes"][name]
        assert ckpt.verify() == []
