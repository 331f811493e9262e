"""Write ``metainspect/data/tf_kernel_registry.json``: which registered ops stock TF has no CPU kernel for.

Needs TensorFlow 2.21 (not part of the runtime package, which never imports TensorFlow).
Run from the repo root with the TF virtualenv::

    /work/main/.venv-tf/bin/python tools/dump_kernel_registry.py

The kernels come from TensorFlow's kernel registry as the Python API exposes it
(``tensorflow.python.framework.kernels.get_all_registered_kernels``); the op list from the
C++ op registry (``TF_GetAllOpList``), as in ``tools/dump_op_registry.py``. A kernel registered
for device type ``DEFAULT`` runs on every device, CPU included (``NoOp``, ``IdentityN``,
``DebugIdentityV3``...). The file lists, sorted, every registered op that has neither a ``CPU``
nor a ``DEFAULT`` kernel, each with the device types it does have kernels for (empty: none at
all, e.g. ``BoostedTreesBucketize`` in the stock wheel), so a graph using one cannot run on a
CPU-only TensorFlow 2.21 -- except the ops listed in ``rewritten_in_graphs``, which a graph
optimization pass replaces before execution (checked by running one), so they fail only eagerly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session
from tensorflow.python.framework import kernels

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "metainspect" / "data" / "tf_kernel_registry.json"
RUNS_ON_CPU = frozenset({"CPU", "DEFAULT"})


def registered_ops() -> list[str]:
    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        op_list = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer))
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)
    return sorted({op.name for op in op_list.op})


def kernel_devices() -> dict[str, set[str]]:
    """op name -> device types with a registered kernel."""
    devices: dict[str, set[str]] = defaultdict(set)
    for kernel in kernels.get_all_registered_kernels().kernel:
        devices[kernel.op].add(kernel.device_type)
    return devices


def accumulate_n_runs_in_a_cpu_graph() -> bool:
    """Whether a TF1 graph using AccumulateNV2 runs on CPU although the op has no kernel: a graph
    optimization pass (``AccumulateNV2RemovePass``) replaces it before execution."""
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        x = v1.placeholder(tf.float32, [2])
        y = tf.raw_ops.AccumulateNV2(inputs=[x, x], shape=[2])
        with v1.Session(graph=graph) as sess:
            return list(sess.run(y, {x: [1.0, 2.0]})) == [2.0, 4.0]


def registry() -> dict[str, object]:
    ops = registered_ops()
    devices = kernel_devices()
    # cross-check the bulk listing against the per-op query for a few well-known ops
    for name in ("MatMul", "NoOp", "BoostedTreesBucketize"):
        per_op = {k.device_type for k in kernels.get_registered_kernels_for_op(name).kernel}
        assert per_op == devices.get(name, set()), (name, per_op, devices.get(name))
    no_cpu = {name: sorted(devices.get(name, ())) for name in ops if not devices.get(name, set()) & RUNS_ON_CPU}
    return {
        "tf_version": tf.__version__,
        "source": "kernels.get_all_registered_kernels + TF_GetAllOpList",
        "cpu_device_types": sorted(RUNS_ON_CPU),
        "registered_ops": len(ops),
        "ops_with_kernels": sum(1 for name in ops if devices.get(name)),
        "device_types": sorted({d for ds in devices.values() for d in ds}),
        "rewritten_in_graphs": ["AccumulateNV2"] if "AccumulateNV2" in no_cpu and accumulate_n_runs_in_a_cpu_graph()
        else [],
        "no_cpu_kernel": no_cpu,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    payload = registry()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({k: v for k, v in payload.items() if k != "no_cpu_kernel"})[:-1] + ', "no_cpu_kernel": {']
    items = list(payload["no_cpu_kernel"].items())  # type: ignore[union-attr]
    lines += [f"{json.dumps(k)}: {json.dumps(v)}{',' if i < len(items) - 1 else ''}" for i, (k, v) in enumerate(items)]
    lines.append("}}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == payload
    args.out.write_text(text)
    print(f"wrote {len(items)} ops without a CPU kernel (of {payload['registered_ops']}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
