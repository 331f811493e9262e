"""TensorFlow 2.21 builds new hiding models and confirms what `check` says TF trips on (`pytest -m tf`).

* The security scan on models built here, not the committed corpus: every capability in every
  hiding place, each with two other payloads than the corpus uses there (the corpus generator's
  builders, sample_meta/gen_security.py, with the variants rotated, in a child process). Nothing
  is run: the scan must find each payload with its capability and when it runs.
* A flipped bit in a tensor the graph restores: TF's restore raises DataLossError, `check` names it.
* A served function using ``BoostedTreesBucketize``: TF raises "No OpKernel", `check` says not ready.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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


PLACES = ["graph", "function", "dataset_fn", "cond_branch", "while_body", "cond_v1_branch", "nested_plain",
          "nested_base64", "nested_long_string", "nested_library_first", "tf1_main_op", "tf1_legacy_init_op",
          "tf1_restore_hook", "tf2_init_op", "tf2_restore_fn", "saved_method", "off_path"]
CAPABILITIES = ["file_write", "file_read", "network", "python", "native"]
SHIFTS = [1, 2]
#: run in a child process: the native probe library it loads stays out of the test process's op registry
BUILD = """
import json, shutil, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import gen_security as gen
out = Path(sys.argv[2])
gen.v1.enable_control_flow_v2()
gen.load_native(out)
assert list(gen.PLACES) == json.loads(sys.argv[3]), list(gen.PLACES)
built = {}
for capability in json.loads(sys.argv[4]):
    keys = [key for key, variant in gen.VARIANTS.items() if variant.capability == capability]
    for place in gen.PLACES:
        for shift in json.loads(sys.argv[5]):
            start = keys.index(gen.MATRIX[capability][place]) + shift
            for key in [keys[(start + i) % len(keys)] for i in range(len(keys))]:
                variant = gen.VARIANTS[key]
                name = f"heldout_{capability}_{place}_{shift}"
                path = out / name
                builder = gen.build_tf2 if place in gen.TF2_PLACES else gen.build_tf1
                try:
                    payload = gen.locate(builder(path, place, variant, name), variant, name)
                except Exception:  # not every payload can be built in every place: the next one
                    shutil.rmtree(path, ignore_errors=True)
                    continue
                built[name] = {"key": key, "capability": variant.capability, "when": gen.PLACES[place][0],
                               "path": str(path), "payload": payload}
                break
print(json.dumps(built))
"""


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Models built by the corpus generator's builders with other payloads than the corpus uses in each place."""
    if not shutil.which("g++"):
        pytest.skip("g++ is needed to build the native probe op")
    out = tmp_path_factory.mktemp("heldout")
    proc = subprocess.run([sys.executable, "-c", BUILD, str(SAMPLES), str(out), json.dumps(PLACES),
                           json.dumps(CAPABILITIES), json.dumps(SHIFTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    built: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return built


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("capability", CAPABILITIES)
@pytest.mark.parametrize("place", PLACES)
def test_a_new_payload_is_found_with_when_it_runs(heldout: dict[str, Any], capability: str, place: str,
                                                   shift: int) -> None:
    """The ``shift``-th variant after the corpus' one in that place (the next TF can build there)."""
    case = heldout.get(f"heldout_{capability}_{place}_{shift}")
    assert case is not None, f"no {capability} payload could be built in {place}"
    findings = check_security(CheckContext(load_model(case["path"])))
    for expected in case["payload"]:
        found = [f for f in findings if f.subject == expected["node"] and f.details["function"] == expected["function"]
                 and (f.details["nested_in"] is None) == (expected["nested_in"] is None)]
        assert found, (case["key"], expected, [f.message for f in findings])
        assert found[0].details["capability"] == case["capability"], (case["key"], found[0].message)
        assert found[0].details["when"] == case["when"], (case["key"], found[0].message)
        assert (found[0].severity == "info") is (case["when"] == "off_path")


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
