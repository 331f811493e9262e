"""Write ``metainspect/data/tf_ops.json``: every op stock TensorFlow registers, with its outputs.

The op names are the registry ``check``'s serving rule compares graphs against
(``metainspect.graph.ops.stock_registry``); each op's output args (a fixed dtype, or the attr
giving the dtype, how many copies ``number_attr`` makes, or the ``type_list_attr`` giving a list
of dtypes) and the defaults of those attrs tell ``metainspect.graph.outputs`` the dtype and arity
of ``op:index`` in graphs that carry no ``stripped_op_list`` (bare GraphDefs, frozen graphs).

The list comes from the C++ op registry as TensorFlow itself exposes it (``TF_GetAllOpList``),
so it includes internal ops that ``tf.raw_ops`` does not export (``_Arg``, ``_Retval``,
``_Send``, test ops registered in the wheel…).

Needs TensorFlow 2.21 (never imported by the package itself); run from the repo root with the
TF virtualenv::

    .venv-tf/bin/python tools/dump_tf_ops.py
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

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "metainspect" / "data" / "tf_ops.json"


def all_op_defs() -> list[op_def_pb2.OpDef]:
    """Every OpDef registered in this TensorFlow process, sorted by name, cross-checked."""
    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        op_list = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer))
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)
    ops = sorted(op_list.op, key=lambda op: op.name)
    names = {op.name for op in ops}
    # the Python-side registry and the public raw_ops agree with the C++ list
    missing = [name for name in names if op_def_registry.get(name) is None]
    assert not missing, f"op_def_registry.get() cannot find {missing[:5]}"
    public = {name for name in dir(tf.raw_ops) if not name.startswith("_")}
    assert public <= names, sorted(public - names)[:5]
    return ops


def describe(op: op_def_pb2.OpDef) -> dict[str, object]:
    """``{"out": [[type, type_attr, number_attr, type_list_attr], ...], "defaults": {...}}``."""
    outputs = [[arg.type, arg.type_attr, arg.number_attr, arg.type_list_attr] for arg in op.output_arg]
    wanted = {name for arg in op.output_arg for name in (arg.type_attr, arg.number_attr, arg.type_list_attr) if name}
    defaults: dict[str, object] = {}
    for attr in op.attr:
        if attr.name not in wanted or not attr.HasField("default_value"):
            continue
        value = attr.default_value
        kind = value.WhichOneof("value")
        if kind == "type":
            defaults[attr.name] = value.type
        elif kind == "i":
            defaults[attr.name] = value.i
        elif kind == "list":
            defaults[attr.name] = list(value.list.type)
    return {"out": outputs, "defaults": defaults} if defaults else {"out": outputs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    ops = {op.name: describe(op) for op in all_op_defs()}
    payload = {"tf_version": tf.__version__, "source": "TF_GetAllOpList", "count": len(ops), "ops": ops}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {len(ops)} ops with their output signatures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
