"""Write ``metainspect/data/tf_op_registry.json``: every op name in TensorFlow's op registry.

Needs TensorFlow 2.21 (not part of the runtime package, which never imports TensorFlow).
Run from the repo root with the TF virtualenv::

    /work/tfenv/bin/python tools/dump_op_registry.py

The list comes from the C++ op registry as TensorFlow itself exposes it
(``TF_GetAllOpList``), so it includes internal ops that ``tf.raw_ops`` does not export
(``_Arg``, ``_Retval``, ``_Send``, test ops registered in the wheel, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session
from tensorflow.python.framework import op_def_registry

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "metainspect" / "data" / "tf_op_registry.json"


def registered_op_names() -> list[str]:
    """Sorted names of all ops registered in this TensorFlow process."""
    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        op_list = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer))
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)
    names = sorted({op.name for op in op_list.op})
    # cross-check with the Python-side registry lookup and the public raw_ops
    missing = [n for n in names if op_def_registry.get(n) is None]
    assert not missing, f"op_def_registry.get() cannot find {missing[:5]}"
    public = {n for n in dir(tf.raw_ops) if not n.startswith("_")}
    assert public <= set(names), sorted(public - set(names))[:5]
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    names = registered_op_names()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"tf_version": tf.__version__, "source": "TF_GetAllOpList", "count": len(names), "ops": names}
    args.out.write_text(json.dumps(payload, indent=0) + "\n")
    print(f"wrote {len(names)} op names to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
