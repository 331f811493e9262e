"""Benchmark: `metainspect check` on a big graph and checkpoint, vs TensorFlow (target from issue #4).

Run from the repo root with the no-TensorFlow venv::

    /work/venv/bin/python bench/check.py [--tf-python PATH] [--vars N] [--repeat K] [--keep DIR]

Both inputs are written in pure Python, no TensorFlow involved:

* ``big.ckpt.meta``: a MetaGraphDef built with protobuf, N/2 (10,000) dense blocks in series, each a
  ``kernel`` [8,8] and ``bias`` [8] ref variable (``VariableV2`` + ``read`` Identity + zero
  initializer + Assign) and MatMul/AddV2/Relu, the variables listed as VariableDefs in the
  ``variables`` and ``trainable_variables`` collections, and a TF1 saver: one SaveV2 and one
  RestoreV2 over all N variables, one Assign per restored tensor, ``restore_all`` depending on
  them, and the SaverDef naming them. 13 nodes per block: 130,011 nodes for 20,000 variables;
* ``big.ckpt``: the matching V2 checkpoint of N (20,000) float32 tensors, written with
  :class:`metainspect.formats.bundle_writer.BundleWriter`.

With TensorFlow available (a child process of ``--tf-python``), an untimed run first checks the
pair is real: TF's ``import_meta_graph`` accepts the graph and its ``Saver.restore`` restores the
checkpoint. Then, in fresh processes:

* ``metainspect check --json big.ckpt.meta``, its checkpoint found beside it (target: < 3 s on
  this 2-core CPU; the warm-up run asserts it finds the restore clean), with the CPU time of the
  same runs for context (the wall time on a busy machine includes waiting for the CPU);
* for comparison, a TF process doing what a hand-written check would do: ``import_meta_graph`` of
  the graph plus ``tf.train.list_variables`` of the checkpoint.

A bench is not a test: the exit status is 0 whatever the results; misses are printed as FAIL.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NO_TF_MESSAGE, BenchError, Row, add_common_args, find_tf_python, fmt, load_average, metainspect_command,
    print_header, print_table, ratio_row, run, summarize, tf_env, tf_version, workdir,
)

WIDTH = 8
NODES_PER_BLOCK = 13
PRODUCER = 1882
DT_FLOAT, DT_STRING = 1, 7
TARGET_S = 3.0

TF_RESTORE = """\
import sys
import tensorflow as tf
graph = tf.Graph()
with graph.as_default():
    saver = tf.compat.v1.train.import_meta_graph(sys.argv[1])
    with tf.compat.v1.Session(graph=graph) as session:
        saver.restore(session, sys.argv[2])
    print(len(graph.get_operations()), len(tf.compat.v1.global_variables()))
"""
TF_IMPORT_AND_LIST = """\
import sys
import tensorflow as tf
graph = tf.Graph()
with graph.as_default():
    tf.compat.v1.train.import_meta_graph(sys.argv[1])
print(len(graph.get_operations()), len(tf.train.list_variables(sys.argv[2])))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vars", type=int, default=20_000, metavar="N", help="variables (even; default 20000)")
    add_common_args(parser, default_repeat=3)
    return parser.parse_args()


# --- building the inputs ------------------------------------------------------------------------


def build(work: Path, variables: int) -> tuple[Path, Path, int]:
    """Write ``big.ckpt.meta`` and the ``big.ckpt`` checkpoint into ``work``; return their paths and node count."""
    from metainspect.formats.bundle_writer import BundleWriter

    blocks = max(1, variables // 2)
    meta_path, prefix = work / f"big-{variables}.ckpt.meta", work / f"big-{variables}.ckpt"
    rng = np.random.default_rng(0)
    names = [f"block_{i:05d}/{part}" for i in range(blocks) for part in ("kernel", "bias")]
    with BundleWriter(str(prefix)) as writer:
        for name in sorted(names):  # TF writes keys sorted; the writer wants them in order too
            shape = (WIDTH, WIDTH) if name.endswith("kernel") else (WIDTH,)
            writer.add(name, rng.standard_normal(shape).astype(np.float32))
    meta = meta_graph(blocks)
    meta_path.write_bytes(meta.SerializeToString())
    return meta_path, prefix, len(meta.graph_def.node)


def meta_graph(blocks: int):  # type: ignore[no-untyped-def]
    """A MetaGraphDef: input -> ``blocks`` dense blocks -> output, with variables and a V2 saver."""
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.variable_pb2 import VariableDef

    meta = MetaGraphDef()
    meta.meta_info_def.tensorflow_version = "2.21.0"
    meta.meta_info_def.tags.append("serve")
    graph = meta.graph_def
    graph.versions.producer = PRODUCER
    node = graph.node.add(name="input", op="Placeholder")
    node.attr["dtype"].type = DT_FLOAT
    node.attr["shape"].shape.dim.add().size = -1
    node.attr["shape"].shape.dim.add().size = WIDTH
    variables: list[tuple[str, list[int]]] = []
    previous = "input"
    for i in range(blocks):
        scope = f"block_{i:05d}"
        for part, shape in (("kernel", [WIDTH, WIDTH]), ("bias", [WIDTH])):
            _variable(graph, f"{scope}/{part}", shape)
            variables.append((f"{scope}/{part}", shape))
        _op(graph, f"{scope}/MatMul", "MatMul", [previous, f"{scope}/kernel/read"], transpose_a=False, transpose_b=False)
        _op(graph, f"{scope}/add", "AddV2", [f"{scope}/MatMul", f"{scope}/bias/read"])
        _op(graph, f"{scope}/Relu", "Relu", [f"{scope}/add"])
        previous = f"{scope}/Relu"
    _op(graph, "output", "Identity", [previous])
    for name, _ in variables:
        vdef = VariableDef(variable_name=f"{name}:0", initializer_name=f"{name}/Assign",
                           snapshot_name=f"{name}/read:0", trainable=True)
        data = vdef.SerializeToString()
        meta.collection_def["variables"].bytes_list.value.append(data)
        meta.collection_def["trainable_variables"].bytes_list.value.append(data)
    _saver(meta, sorted(variables))
    return meta


def _variable(graph, name: str, shape: list[int]) -> None:  # type: ignore[no-untyped-def]
    var = graph.node.add(name=name, op="VariableV2")
    var.attr["dtype"].type = DT_FLOAT
    for size in shape:
        var.attr["shape"].shape.dim.add().size = size
    var.attr["container"].s = b""
    var.attr["shared_name"].s = b""
    init = graph.node.add(name=f"{name}/Initializer/zeros", op="Const")
    init.attr["dtype"].type = DT_FLOAT
    tensor = init.attr["value"].tensor
    tensor.dtype = DT_FLOAT
    for size in shape:
        tensor.tensor_shape.dim.add().size = size
    tensor.float_val.append(0.0)
    _op(graph, f"{name}/Assign", "Assign", [name, f"{name}/Initializer/zeros"], validate_shape=True, use_locking=True)
    _op(graph, f"{name}/read", "Identity", [name])


def _saver(meta, variables: list[tuple[str, list[int]]]) -> None:  # type: ignore[no-untyped-def]
    """save/Const, SaveV2, control_dependency, RestoreV2, one Assign per variable, restore_all."""
    graph = meta.graph_def
    _strings(graph, "save/Const", [b"model"])
    names = [name.encode() for name, _ in variables]
    _strings(graph, "save/SaveV2/tensor_names", names)
    _strings(graph, "save/SaveV2/shape_and_slices", [b""] * len(names))
    _strings(graph, "save/RestoreV2/tensor_names", names)
    _strings(graph, "save/RestoreV2/shape_and_slices", [b""] * len(names))
    save = _op(graph, "save/SaveV2", "SaveV2", ["save/Const", "save/SaveV2/tensor_names", "save/SaveV2/shape_and_slices",
                                                 *(name for name, _ in variables)])
    save.attr["dtypes"].list.type.extend([DT_FLOAT] * len(variables))
    _op(graph, "save/control_dependency", "Identity", ["save/Const", "^save/SaveV2"], t=DT_STRING)
    restore = _op(graph, "save/RestoreV2", "RestoreV2",
                  ["save/Const", "save/RestoreV2/tensor_names", "save/RestoreV2/shape_and_slices"])
    restore.attr["dtypes"].list.type.extend([DT_FLOAT] * len(variables))
    assigns = []
    for i, (name, _) in enumerate(variables):
        assign = f"save/Assign_{i}" if i else "save/Assign"
        _op(graph, assign, "Assign", [name, f"save/RestoreV2:{i}" if i else "save/RestoreV2"],
            validate_shape=True, use_locking=True)
        assigns.append(assign)
    graph.node.add(name="save/restore_all", op="NoOp").input.extend(f"^{a}" for a in assigns)
    saver = meta.saver_def
    saver.filename_tensor_name, saver.save_tensor_name = "save/Const:0", "save/control_dependency:0"
    saver.restore_op_name, saver.max_to_keep, saver.version = "save/restore_all", 5, 2
    saver.keep_checkpoint_every_n_hours = 10000.0


def _op(graph, name: str, op: str, inputs: list[str], t: int = DT_FLOAT, **bools: bool):  # type: ignore[no-untyped-def]
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    if op not in ("SaveV2", "RestoreV2"):
        node.attr["T"].type = t
    for key, value in bools.items():
        node.attr[key].b = value
    return node


def _strings(graph, name: str, values: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    node = graph.node.add(name=name, op="Const")
    node.attr["dtype"].type = DT_STRING
    tensor = node.attr["value"].tensor
    tensor.dtype = DT_STRING
    if len(values) != 1:
        tensor.tensor_shape.dim.add().size = len(values)
    tensor.string_val.extend(values)


# --- measurements -------------------------------------------------------------------------------


def check_once(ours: list[str], meta: Path) -> tuple[dict, float, float]:
    """One `check --json` run: the report, the wall time and the CPU time (user + system).

    Exit 1 is a verdict, not a failure. CPU time is what the run would take on an idle machine
    (the check is single-threaded); wall time also counts waiting for other processes' turn.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([*ours, "check", "--json", str(meta)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        report = json.loads(proc.stdout) if proc.returncode in (0, 1) else None
    except json.JSONDecodeError:
        report = None
    if report is None:
        raise BenchError(f"check exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return report, elapsed, cpu


def warm_up(ours: list[str], tf_python: str | None, meta: Path, prefix: Path, variables: int) -> str:
    """Untimed: TF restores the pair (when available) and our check finds the restore clean."""
    report = check_once(ours, meta)[0]
    restore = [f for f in report["findings"] if f["category"] in ("restore", "saver") and f["severity"] != "info"]
    if restore or report["checkpoint"] is None:
        raise BenchError(f"check did not find the pair clean: {restore[:3] or report['checkpoint_problem']}")
    summary = f"check: {report['verdict']} (restore and saver clean)"
    if tf_python:
        ops, restored = (int(x) for x in run([tf_python, "-c", TF_RESTORE, str(meta), str(prefix)], tf_env(),
                                             capture=True).stdout.split()[-2:])
        if restored != variables:
            raise BenchError(f"TF restored {restored} variables, expected {variables}")
        summary += f"; TensorFlow imported {ops} ops and restored all {restored} variables"
    return summary


def measure(args: argparse.Namespace, tf_python: str | None, ours: list[str]) -> list[Row]:
    with workdir(args.keep, "metainspect-bench-check-") as work:
        meta, prefix = work / f"big-{args.vars}.ckpt.meta", work / f"big-{args.vars}.ckpt"
        if meta.exists() and Path(f"{prefix}.index").exists():
            from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

            nodes = len(MetaGraphDef.FromString(meta.read_bytes()).graph_def.node)
            print(f"reusing {meta} and {prefix}", end="; ")
        else:
            start = time.perf_counter()
            meta, prefix, nodes = build(work, args.vars)
            print(f"built {meta.name} and {prefix.name} in pure Python in {time.perf_counter() - start:.1f} s", end="; ")
        print(f"{nodes} nodes ({meta.stat().st_size / 2**20:.1f} MiB), {args.vars} variables")
        print(warm_up(ours, tf_python, meta, prefix, args.vars) + "\n")
        runs = [check_once(ours, meta)[1:] for _ in range(args.repeat)]
        ours_time = summarize([wall for wall, _ in runs], args.stat)
        ours_cpu = summarize([cpu for _, cpu in runs], args.stat)
        tf_time = None
        if tf_python:
            cmd = [tf_python, "-c", TF_IMPORT_AND_LIST, str(meta), str(prefix)]
            run(cmd, tf_env())  # warm-up
            tf_time = summarize([_timed(cmd) for _ in range(args.repeat)], args.stat)
    row = ratio_row(f"check --json, {nodes} nodes, {args.vars} vars", ours_time, tf_time, 0)
    row.target, row.passed = f"< {TARGET_S:g} s", ours_time < TARGET_S
    cpu_row = Row("same runs, CPU time user+sys (context)", fmt(ours_cpu, "s"), "", "", "", None)
    return [row, cpu_row]


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    run(cmd, tf_env())
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    tf_python = find_tf_python(args.tf_python)
    ours, ours_desc = metainspect_command()
    print_header("check bench (issue #4)", tf_python, tf_version(tf_python), ours_desc, args.repeat, args.stat)
    try:
        rows = measure(args, tf_python, ours)
    except BenchError as exc:
        print(f"FAIL: bench could not run: {exc}")
        return
    print("TensorFlow column: a fresh process running import_meta_graph(big.ckpt.meta) + list_variables(big.ckpt)\n")
    print_table(rows)
    print(f"\nload average at end: {load_average()}")
    if tf_python is None:
        print(f"\n{NO_TF_MESSAGE}")


if __name__ == "__main__":
    main()
