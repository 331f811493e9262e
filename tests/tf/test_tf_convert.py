"""TensorFlow judges ``convert``: safetensors it writes hold exactly what TensorFlow's reader +
``safetensors.numpy.save_file`` would; checkpoints it writes from safetensors and npz read back in
TensorFlow byte for byte.

Run in the TF stage: ``.venv-tf/bin/python -m pytest -m tf tests/tf/test_tf_convert.py``.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from metainspect.convert import ConvertOptions, convert
from metainspect.errors import MetainspectError

from helpers.paths import REAL_MODELS, SAMPLES

pytestmark = pytest.mark.tf
safetensors = pytest.importorskip("safetensors")

#: types safetensors has no counterpart for, and strings/variants
UNSTORABLE = "dt_(complex128|qu?int(8|16|32)|float8_e4m3b11fnuz|u?int[24]|float4_e2m1fn|variant|string)$|^str_"


@pytest.fixture(scope="module")
def tf() -> Any:
    import tensorflow

    return tensorflow


def _sources() -> list[str]:
    prefixes = sorted({p[: -len(".index")] for p in glob.glob(str(SAMPLES / "**" / "*.index"), recursive=True)
                       if "/check/" not in p})
    real = sorted({p[: -len(".index")] for p in glob.glob(str(REAL_MODELS.parent / "real_models*" / "**" / "*.index"),
                                                          recursive=True)})
    return prefixes + real


def _reference(tf: Any, prefix: str, path: Path, names: set[str]) -> dict[str, dict[str, Any]]:
    """What TensorFlow's reader + safetensors.numpy.save_file give for the same tensors."""
    from safetensors.numpy import save_file

    reader = tf.train.load_checkpoint(prefix)
    arrays = {name: np.asarray(reader.get_tensor(name)) for name in names}
    save_file(arrays, str(path))
    return dict(safetensors.deserialize(path.read_bytes()))


@pytest.mark.parametrize("prefix", _sources(), ids=lambda p: str(Path(p).relative_to(Path(p).parents[2])))
def test_safetensors_equal_tensorflow_plus_save_file(tf: Any, prefix: str, tmp_path: Path) -> None:
    from metainspect.checkpoint import open_checkpoint

    try:
        with open_checkpoint(prefix) as ckpt:
            strings = [n for n in ckpt.keys() if ckpt.dtype(n) in ("string", "variant")]
    except Exception as exc:  # noqa: BLE001  (third-party files metainspect refuses: not this test's subject)
        pytest.skip(f"not a readable checkpoint: {exc}")
    drop = tuple(f"^{n}$" for n in strings if n != "_CHECKPOINTABLE_OBJECT_GRAPH")
    if "ckpt_dtypes" in prefix:
        drop = (UNSTORABLE,)
    ours = tmp_path / "ours.safetensors"
    try:
        plan = convert(prefix, str(ours), ConvertOptions(drop=drop))
    except MetainspectError as exc:  # the refusals of tests/convert/test_convert_real_models.py
        if "is missing" in exc.message or "no tensor to convert" in exc.message:
            pytest.skip(f"refused, as it should be: {exc}")
        raise
    mine = dict(safetensors.deserialize(ours.read_bytes()))
    reference = _reference(tf, prefix, tmp_path / "tf.safetensors", set(mine))
    assert set(mine) == {t.name for t in plan.kept}
    for name, tensor in mine.items():
        expected = reference[name]
        assert (tensor["dtype"], tensor["shape"], bytes(tensor["data"])) == \
            (expected["dtype"], expected["shape"], bytes(expected["data"])), name


def _tf_bytes(tf: Any, prefix: str | Path) -> dict[str, tuple[str, list[int], bytes]]:
    reader = tf.train.load_checkpoint(str(prefix))
    types = reader.get_variable_to_dtype_map()
    out = {}
    for name, dtype in types.items():
        if dtype == tf.variant:  # no numpy form in TensorFlow either
            continue
        if dtype == tf.string:
            value = tf.raw_ops.RestoreV2(prefix=str(prefix), tensor_names=[name], shape_and_slices=[""],
                                         dtypes=[tf.string])[0].numpy()
            data = b"".join(len(v).to_bytes(8, "little") + v for v in np.asarray(value, dtype=object).reshape(-1))
        else:
            data = np.ascontiguousarray(reader.get_tensor(name)).tobytes()
        out[name] = (dtype.name, list(reader.get_variable_to_shape_map()[name]), data)
    return out


def test_safetensors_back_to_a_checkpoint_tensorflow_reads(tf: Any, tmp_path: Path) -> None:
    """Every type safetensors has, through safetensors, into a checkpoint TensorFlow reads byte for byte."""
    convert(str(SAMPLES / "ckpt_dtypes"), str(tmp_path / "d.safetensors"), ConvertOptions(drop=(UNSTORABLE,)))
    convert(str(tmp_path / "d.safetensors"), str(tmp_path / "ck" / "model.ckpt"))
    original = _tf_bytes(tf, SAMPLES / "ckpt_dtypes" / "model.ckpt")
    written = _tf_bytes(tf, tmp_path / "ck" / "model.ckpt")
    assert written == {name: original[name] for name in written} and len(written) == 22


@pytest.mark.parametrize("sample", ["convert/bert", "convert/t5", "ckpt_partitioned", "mlp"])
def test_round_trips_tensorflow_reads(tf: Any, sample: str, tmp_path: Path) -> None:
    convert(str(SAMPLES / sample), str(tmp_path / "m.safetensors"), ConvertOptions(shard_size=4096))
    source = tmp_path / "m.safetensors.index.json"
    convert(str(source if source.exists() else tmp_path / "m.safetensors"), str(tmp_path / "ck") + "/",
            ConvertOptions(to="checkpoint", shard_size=8192))
    back = _tf_bytes(tf, tf.train.latest_checkpoint(str(tmp_path / "ck")))
    original = _tf_bytes(tf, tf.train.latest_checkpoint(str(SAMPLES / sample)))
    assert back == original


def test_npz_strings_and_every_type_to_a_checkpoint(tf: Any, tmp_path: Path) -> None:
    """ckpt_dtypes through npz (strings, quantized and 4-bit types included) into a checkpoint."""
    convert(str(SAMPLES / "ckpt_dtypes"), str(tmp_path / "d.npz"), ConvertOptions(drop=("dt_variant", "str_2d")))
    convert(str(tmp_path / "d.npz"), str(tmp_path / "ck" / "model.ckpt"))
    original = _tf_bytes(tf, SAMPLES / "ckpt_dtypes" / "model.ckpt")
    written = _tf_bytes(tf, tmp_path / "ck" / "model.ckpt")
    assert written == {name: original[name] for name in written} and len(written) == len(original) - 1
