"""TensorFlow 2.21 builds new hiding models and confirms what `check` says TF trips on (`pytest -m tf`).

* The security scan on models built here, not the committed corpus: every capability in every
  hiding place, each with another payload than the corpus uses there (the corpus generator's
  builders, sample_meta/gen_security.py, with the variants rotated). Nothing is run: the scan
  must find each payload with its capability and when it runs.
* A flipped bit in a tensor the graph restores: TF's restore raises DataLossError, `check` names it.
* A served function using ``BoostedTreesBucketize``: TF raises "No OpKernel", `check` says not ready.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metainspect.check import run_checks
from metainspect.check.findings import CheckContext
from metainspect.check.security import check_security
from metainspect.checkpoint import open_checkpoint
from metainspect.graph.model import load_model

from helpers.paths import REAL_MODELS_2, SAMPLES

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The corpus generator as a module, with its native probe op compiled and loaded."""
    if not shutil.which("g++"):
        pytest.skip("g++ is needed to build the native probe op")
    sys.path.insert(0, str(SAMPLES))
    try:
        import gen_security

        gen_security.v1.enable_control_flow_v2()
        gen_security.load_native(tmp_path_factory.mktemp("native"))
        yield gen_security
    finally:
        sys.path.remove(str(SAMPLES))


def rotated(gen: Any, capability: str, place: str, shift: int) -> list[str]:
    """The capability's variants in an order that starts ``shift`` after the corpus' choice for ``place``."""
    keys = [key for key, variant in gen.VARIANTS.items() if variant.capability == capability]
    start = keys.index(gen.MATRIX[capability][place]) + shift
    return [keys[(start + i) % len(keys)] for i in range(len(keys))]


PLACES = ["graph", "function", "dataset_fn", "cond_branch", "while_body", "cond_v1_branch", "nested_plain",
          "nested_base64", "nested_long_string", "nested_library_first", "tf1_main_op", "tf1_legacy_init_op",
          "tf1_restore_hook", "tf2_init_op", "tf2_restore_fn", "saved_method", "off_path"]


@pytest.mark.parametrize("shift", [1, 2])
@pytest.mark.parametrize("capability", ["file_write", "file_read", "network", "python", "native"])
@pytest.mark.parametrize("place", PLACES)
def test_a_new_payload_is_found_with_when_it_runs(gen: Any, tmp_path: Path, capability: str, place: str,
                                                   shift: int) -> None:
    """The ``shift``-th variant after the corpus' one (the next that TF can build in that place)."""
    assert set(PLACES) == set(gen.PLACES)
    for key in rotated(gen, capability, place, shift):
        variant = gen.VARIANTS[key]
        name = f"heldout_{capability}_{place}_{key}"
        path = tmp_path / name
        builder = gen.build_tf2 if place in gen.TF2_PLACES else gen.build_tf1
        try:
            built = builder(path, place, variant, name)
            payload = gen.locate(built, variant, name)
        except Exception:  # noqa: BLE001 - not every payload can be built in every place; try the next
            shutil.rmtree(path, ignore_errors=True)
            continue
        break
    else:
        pytest.fail(f"no {capability} payload could be built in {place}")
    findings = check_security(CheckContext(load_model(path)))
    when = gen.PLACES[place][0]
    for expected in payload:
        found = [f for f in findings if f.subject == expected["node"] and f.details["function"] == expected["function"]
                 and (f.details["nested_in"] is None) == (expected["nested_in"] is None)]
        assert found, (key, expected, [f.message for f in findings])
        assert found[0].details["capability"] == variant.capability and found[0].details["when"] == when, \
            (key, found[0].message)
        assert (found[0].severity == "info") is (when == "off_path")


def test_a_corrupt_tensor_tensorflow_fails_to_restore(tmp_path: Path) -> None:
    import tensorflow as tf

    shutil.copytree(SAMPLES / "mlp", tmp_path / "mlp")
    prefix = tmp_path / "mlp" / "model.ckpt-3"
    with open_checkpoint(str(prefix)) as ckpt:
        location = ckpt.info("dense1/kernel").locations[0]
    data = bytearray(Path(location.file).read_bytes())
    data[location.offset + 3] ^= 0x10
    Path(location.file).write_bytes(bytes(data))
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        saver = tf.compat.v1.train.import_meta_graph(f"{prefix}.meta")
        with pytest.raises(tf.errors.DataLossError):
            saver.restore(session, str(prefix))
    report = run_checks(str(prefix))
    assert [f.subject for f in report.findings if f.id == "restore.corrupt-tensor"] == ["dense1/kernel"]
    assert not report.ready() and run_checks(str(prefix), verify=False).ready()


def test_serving_a_function_without_a_cpu_kernel_fails() -> None:
    import tensorflow as tf

    path = REAL_MODELS_2 / "tensorflow_tfx" / "tft_tf2_saved_model"
    if not path.is_dir():
        pytest.skip("../shared/real_models_2 not present")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]  # loading works
    specs = serve.structured_input_signature[1]
    feed = {key: tf.zeros([1 if d is None else d for d in spec.shape], spec.dtype) for key, spec in specs.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match="No OpKernel was registered to support Op "
                                                               "'BoostedTreesBucketize'"):
        serve(**feed)
    (found,) = [f for f in run_checks(str(path)).findings if f.id == "serving.no-cpu-kernel"]
    assert found.severity == "error" and "on a served path" in found.message
