"""Write ``metainspect/data/tf_op_outputs.json``: the output signature of every registered TF op.

For each op: its output args (a fixed dtype, or the attr that gives the dtype, how many copies
``number_attr`` makes, or the ``type_list_attr`` giving a list of dtypes) and the defaults of
those attrs. ``metainspect.graph.outputs`` uses it to tell the dtype and arity of ``op:index``
in graphs whose MetaGraphDef carries no ``stripped_op_list`` (bare GraphDefs, frozen graphs).

Needs TensorFlow 2.21; run from the repo root with the TF virtualenv::

    .venv-tf/bin/python tools/dump_op_outputs.py
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

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "metainspect" / "data" / "tf_op_outputs.json"


def all_op_defs() -> list[op_def_pb2.OpDef]:
    buffer = pywrap_tf_session.TF_GetAllOpList()
    try:
        return list(op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer)).op)
    finally:
        pywrap_tf_session.TF_DeleteBuffer(buffer)


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
    ops = {op.name: describe(op) for op in sorted(all_op_defs(), key=lambda o: o.name)}
    payload = {"tf_version": tf.__version__, "source": "TF_GetAllOpList", "count": len(ops), "ops": ops}
    args.out.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote the output signatures of {len(ops)} ops to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
