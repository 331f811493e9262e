"""Benchmark: ``metainspect convert`` to safetensors against TensorFlow's reader + ``safetensors.numpy.save_file``.

Run from the repo root with the no-TensorFlow venv::

    .venv/bin/python bench/convert.py [--tf-python PATH] [--big-mib M] [--repeat K] [--keep DIR]

The TensorFlow interpreter also needs the ``safetensors`` package (``pip install safetensors``).
The input is bench/rewrite.py's (written with metainspect's own bundle writer, no TensorFlow
needed): M (512) MiB of 8 MiB float32 tensors, a 64 MiB embedding, a partitioned tensor,
float16/int64 tensors and a string vocabulary (dropped on both sides: safetensors holds numbers
only), in 128 MiB data shards.

Measured in fresh processes, each after one untimed warm-up run (page cache warm; the previous
output deleted and the file system synced before each run):

(a) the conversion itself, every CRC32C checked, ``--no-sync`` (files renamed into place without
    fsync, as ``save_file`` writes them) vs TensorFlow's ``load_checkpoint(P).get_tensor(k)`` for
    every tensor + ``safetensors.numpy.save_file``: each child's own loop time. Target: >= 2x;
(b) the default, durable conversion (fsynced before the rename) against the same TF loop, for
    context: a disk-bound figure;
(c) whole processes (interpreter start and imports included) of the same two;
(d) peak RSS of ``metainspect convert P -o OUT.safetensors`` (target: < 200 MB for 512 MiB) and of
    the TensorFlow side, in the same run;
(e) that both files hold the same tensors, byte for byte (parsed with the safetensors package
    when this interpreter has it, else compared as metainspect reads them).

A bench is not a test: the exit status is 0 whatever the results; misses are printed as FAIL.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NO_TF_MESSAGE, BenchError, Row, add_common_args, find_tf_python, fmt, load_average,
    metainspect_command, peak_rss_kib, print_header, print_table, ratio_row, tf_env, tf_version,
    workdir,
)
from rewrite import ensure_input, measure, remove_output  # the rewrite bench's input and timing loop

RATIO_TARGET = 2.0
RSS_TARGET_MB = 200.0
MB = 1e6
GB = 1e9
DROP = "^extra/vocab$"

OURS = """\
import json, sys, time
import numpy  # loaded before the clock starts, as TensorFlow's import loads it on the other side
from metainspect.convert import ConvertOptions, convert

source, out, mode = sys.argv[1:4]
start = time.perf_counter()
plan = convert(source, out, ConvertOptions(drop=(sys.argv[4],), sync=mode == "durable"))
loop = time.perf_counter() - start
print(json.dumps({"loop": loop, "bytes": plan.output_bytes, "tensors": len(plan.kept)}))
"""

TF_SAVE = """\
import json, sys, time
import numpy as np
import tensorflow as tf
from safetensors.numpy import save_file

source, out = sys.argv[1:3]
start = time.perf_counter()
reader = tf.train.load_checkpoint(source)
types = reader.get_variable_to_dtype_map()
arrays = {name: np.asarray(reader.get_tensor(name)) for name in sorted(types) if types[name] != tf.string}
save_file(arrays, out)
loop = time.perf_counter() - start
print(json.dumps({"loop": loop, "bytes": sum(a.nbytes for a in arrays.values()), "tensors": len(arrays)}))
"""

HAS_SAFETENSORS = "import importlib.util, sys; sys.exit(importlib.util.find_spec('safetensors') is None)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=512, metavar="M",
                        help="MiB of 8 MiB float32 tensors in the input (default 512)")
    add_common_args(parser, default_repeat=5)
    return parser.parse_args()


def same_tensors(ours: str, theirs: str) -> bool:
    """Whether two safetensors files hold the same tensors (names, dtypes, shapes, bytes)."""
    from metainspect.convert.safetensors import read_header

    a, b = read_header(ours), read_header(theirs)
    if {e.name: (e.dtype, e.shape) for e in a.entries} != {e.name: (e.dtype, e.shape) for e in b.entries}:
        return False
    spans = {e.name: e for e in b.entries}
    with open(ours, "rb") as first, open(theirs, "rb") as second:
        for entry in a.entries:
            other = spans[entry.name]
            first.seek(a.data_start + entry.begin)
            second.seek(b.data_start + other.begin)
            if first.read(entry.nbytes) != second.read(other.nbytes):
                return False
    return True


def main() -> None:
    args = parse_args()
    tf_python = find_tf_python(args.tf_python)
    if tf_python and subprocess.run([tf_python, "-c", HAS_SAFETENSORS]).returncode != 0:
        print(f"warning: {tf_python} has no safetensors package (pip install safetensors)", file=sys.stderr)
        tf_python = None
    ours, ours_desc = metainspect_command()
    print_header("convert bench (issue #13)", tf_python, tf_version(tf_python), ours_desc, args.repeat, args.stat)
    with workdir(args.keep, "metainspect-bench-convert-") as work:
        source, largest = ensure_input(work, args.big_mib)
        prefix = str(work / "out" / "model")  # both outputs are PREFIX.*: removed before every run
        out, tf_out = prefix + ".safetensors", prefix + ".tf.safetensors"
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        sides = {mode: ([sys.executable, "-c", OURS, source, out, mode, DROP], None) for mode in ("no-sync", "durable")}
        if tf_python:
            sides["tf"] = ([tf_python, "-c", TF_SAVE, source, tf_out], tf_env())
        try:
            timed = measure(sides, prefix, args)
            remove_output(prefix)
            rss_kib, floor_kib = peak_rss_kib([*ours, "convert", source, "-o", out, "--drop", DROP])
            tf_rss_kib = peak_rss_kib([tf_python, "-c", TF_SAVE, source, tf_out], tf_env())[0] if tf_python else None
            same = same_tensors(out, tf_out) if tf_python else None
            remove_output(prefix)
        except BenchError as exc:
            print(f"FAIL: bench could not run: {exc}")
            return
    nbytes = timed["durable"]["bytes"]
    tf_side = timed.get("tf")
    tf_loop = tf_side["loop"] if tf_side else None
    mib = f"{nbytes / 2**20:.0f} MiB"
    rows = [
        ratio_row(f"convert {mib} -> safetensors --no-sync vs TF read + save_file", timed["no-sync"]["loop"], tf_loop,
                  RATIO_TARGET),
        Row(f"convert {mib}, durable (default, fsynced) vs the same (context)", fmt(timed["durable"]["loop"], "s"),
            fmt(tf_loop, "s"), f"{tf_loop / timed['durable']['loop']:.1f}x" if tf_loop else "", "", None),
        Row("whole process, --no-sync (context)", fmt(timed["no-sync"]["process"], "s"),
            fmt(tf_side["process"] if tf_side else None, "s"),
            f"{tf_side['process'] / timed['no-sync']['process']:.1f}x" if tf_side else "", "", None),
    ]
    rss_mb = rss_kib * 1024 / MB
    rows.append(Row("convert peak RSS (TF side for comparison)", fmt(rss_mb, "MB"),
                    fmt(tf_rss_kib * 1024 / MB if tf_rss_kib else None, "MB"), "", f"< {RSS_TARGET_MB:.0f} MB",
                    rss_mb < RSS_TARGET_MB))
    if same is not None:
        rows.append(Row("same tensors as TF + save_file, byte for byte", "yes" if same else "NO", "", "", "identical",
                        same))
    print()
    print_table(rows)
    print(f"\nthroughput over {nbytes / GB:.3f} GB of tensor data ({timed['durable']['tensors']} tensors), GB = 1e9 bytes:")
    for side, label in (("no-sync", "convert --no-sync"), ("durable", "convert (durable)"),
                        ("tf", "TF read + save_file")):
        if side in timed:
            print(f"  {label:<22} loop {nbytes / timed[side]['loop'] / GB:6.2f} GB/s   "
                  f"whole process {nbytes / timed[side]['process'] / GB:6.2f} GB/s")
    print(f"\ninput {mib} in {largest / MB:.0f} MB largest tensor; peak RSS via getrusage(RUSAGE_CHILDREN) in a "
          f"`python -S` probe (cannot show less than the probe's own {floor_kib * 1024 / MB:.1f} MB)")
    print(f"\nload average at end: {load_average()}")
    if tf_python is None:
        print(f"\n{NO_TF_MESSAGE} (a TensorFlow interpreter with the safetensors package is needed)")


if __name__ == "__main__":
    main()
