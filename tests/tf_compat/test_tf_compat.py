"""The TensorFlow stand-in against what TensorFlow reported about the BERT and T5 samples, and its
installation rules (only without TensorFlow; missing pieces named)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from metainspect import tf_compat
from metainspect.tf_compat import errors, train

from helpers.paths import ROOT, SAMPLES

CHECKPOINTS = {"convert/bert": "bert_model.ckpt", "convert/t5": "model.ckpt-10"}


def _sha(value: Any) -> str:
    return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()


@pytest.mark.parametrize("sample", sorted(CHECKPOINTS))
def test_reads_what_tensorflow_read(sample: str) -> None:
    prefix = str(SAMPLES / sample / CHECKPOINTS[sample])
    golden = json.loads((SAMPLES / sample / "golden.json").read_text())
    assert [[n, s] for n, s in train.list_variables(prefix)] == golden["variables"]
    reader = train.load_checkpoint(SAMPLES / sample)  # the directory: its latest checkpoint
    dtypes = reader.get_variable_to_dtype_map()
    assert {n: d.name for n, d in dtypes.items()} == golden["dtypes"]
    for name, (kind, numpy_dtype) in golden["load_variable"].items():
        value = train.load_variable(prefix, name + ":0")
        assert f"{type(value).__module__}.{type(value).__name__}" == kind, name
        assert str(np.asarray(value).dtype) == numpy_dtype
        assert _sha(value) == golden["sha256"][name], name
        if isinstance(value, np.ndarray):
            assert value.flags.writeable  # a fresh array, as TensorFlow returns
    assert dtypes["shared/embedding" if "t5" in sample else "global_step"].as_numpy_dtype.__name__ in (
        "bfloat16", "int64")


def test_readers_are_cached_per_checkpoint(tmp_path: Path) -> None:
    import shutil

    prefix = SAMPLES / "convert" / "bert" / "bert_model.ckpt"
    assert train.load_checkpoint(prefix) is train.load_checkpoint(str(prefix) + ".index")
    shutil.copytree(SAMPLES / "mlp", tmp_path / "mlp")
    first = train.load_checkpoint(tmp_path / "mlp")
    index = tmp_path / "mlp" / "model.ckpt-3.index"
    index.write_bytes(index.read_bytes())  # rewritten: a new reader
    assert train.load_checkpoint(tmp_path / "mlp") is not first


def test_state_files() -> None:
    directory = SAMPLES / "ckpt_tf2"
    assert train.latest_checkpoint(directory) == str(directory / "ckpt-2")
    state = train.get_checkpoint_state(directory)
    assert state is not None and list(state.all_model_checkpoint_paths) == [str(directory / "ckpt-1"),
                                                                            str(directory / "ckpt-2")]
    assert train.latest_checkpoint(SAMPLES / "frozen") is None and train.get_checkpoint_state(SAMPLES / "frozen") is None


def test_errors_are_tensorflows(tmp_path: Path) -> None:
    reader = train.load_checkpoint(SAMPLES / "mlp")
    assert not reader.has_tensor("nope")
    with pytest.raises(errors.NotFoundError, match="Key nope not found in checkpoint"):
        reader.get_tensor("nope")
    with pytest.raises(errors.NotFoundError):
        train.load_checkpoint(tmp_path / "missing")
    (tmp_path / "x.index").write_bytes(b"garbage" * 10)
    with pytest.raises(errors.DataLossError, match=r"x\.index"):
        train.load_checkpoint(tmp_path / "x")


def test_gfile(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\nhello\n")
    from metainspect.tf_compat import gfile

    assert gfile.exists(path) and not gfile.exists(tmp_path / "nope")
    with gfile.GFile(str(path)) as handle:
        assert handle.read().splitlines() == ["[PAD]", "hello"]
    with gfile.GFile(str(path), "rb") as handle:
        assert handle.size() == 12 and handle.read(5) == b"[PAD]"
    with pytest.raises(errors.UnimplementedError, match="local files only"):
        gfile.exists("gs://bucket/model")


def _child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_install_registers_a_proper_module_where_tensorflow_is_hidden() -> None:
    """``sys.modules["tensorflow"] = None`` hides a real TensorFlow as if it were not installed."""
    result = _child("""
        import importlib.util, sys
        sys.modules["tensorflow"] = None
        import metainspect.tf_compat as compat
        module = compat.install()
        import tensorflow as tf
        import tensorflow.compat.v1 as v1
        from tensorflow.io import gfile
        assert tf is module and compat.install() is tf and compat.is_installed()
        spec = importlib.util.find_spec("tensorflow")
        assert spec.name == "tensorflow" and tf.__spec__ is spec and tf.__name__ == "tensorflow"
        assert v1.train.NewCheckpointReader is tf.train.NewCheckpointReader and gfile.GFile
        assert tf.bfloat16.name == "bfloat16" and tf.as_dtype("half") == tf.float16 == "float16"
        for missing in ("tf.Session", "tf.train.Saver", "v1.placeholder"):
            try:
                eval(missing)
            except AttributeError as exc:
                assert "stand-in" in str(exc) and repr(missing.split(".")[-1]) in str(exc), exc
            else:
                raise AssertionError(missing)
        try:
            import tensorflow.python.keras
        except ModuleNotFoundError as exc:
            assert "tensorflow.python" in str(exc) and "stand-in" in str(exc)
        compat.uninstall()
        assert "tensorflow" not in sys.modules and not compat.is_installed()
        print("ok")
    """)
    assert result.stdout.strip() == "ok", result.stderr


def test_install_refuses_when_tensorflow_is_importable(tmp_path: Path) -> None:
    """A ``tensorflow`` package on the path (here a fake one) is never shadowed."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("REAL = True\n")
    result = _child(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import metainspect.tf_compat as compat
        from metainspect.errors import MetainspectError
        try:
            compat.install()
        except MetainspectError as exc:
            print("refused:", exc)
        import tensorflow
        assert tensorflow.REAL
    """)
    assert result.returncode == 0 and "refused:" in result.stdout and "real TensorFlow" in result.stdout, result.stderr
    assert str(tmp_path / "tensorflow" / "__init__.py") in result.stdout


def test_dtype_objects() -> None:
    assert set(tf_compat.dtypes.TYPES) >= {"float32", "bfloat16", "string", "qint8"}
    assert repr(tf_compat.dtypes.TYPES["bfloat16"]) == "tf.bfloat16"
    assert str(tf_compat.dtypes.TYPES["string"]) == "<dtype: 'string'>"
