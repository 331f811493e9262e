"""Benchmark: reading checkpoints, metainspect vs TensorFlow (targets from issues #3 and #11).

Run from the repo root with the no-TensorFlow venv::

    /work/venv/bin/python bench/checkpoint.py [--tf-python PATH] [--vars N] [--big-mib M] [--repeat K] [--keep DIR]

The inputs are written by TensorFlow itself, in a child process run with the TensorFlow
interpreter (TF is both the reference and the writer; without TF there is nothing to read
unless ``--keep DIR`` already holds inputs from an earlier run):

* a checkpoint of N (20,000) small tensors of mixed shapes and dtypes named like
  ``layer_0123/dense/kernel``, written with one ``tf.raw_ops.SaveV2`` call;
* a checkpoint of at least M (512) MiB: M/8 float32 tensors of 8 MiB plus a few smaller ones
  of other dtypes, written in 64 MiB chunks (one SaveV2 per chunk, then
  ``MergeV2Checkpoints``) so the writer never holds more than one chunk, hence several data
  shards.

Measured, each in fresh processes:

(a) ``metainspect vars --json PREFIX`` vs ``tf.train.list_variables(PREFIX)`` on the small-tensor
    checkpoint (target: TF/ours >= 15, #11; #3 asked for 10);
(b) reading every tensor of the big checkpoint, CRC32C verified on both sides
    (``open_checkpoint(P).get(k)`` vs ``tf.train.load_checkpoint(P).get_tensor(k)``), touching one
    byte per 4 KiB of each array; each child reports the time of its reading loop, the parent
    the time of the whole process (target: our throughput / TF's >= 1). Each side runs once
    untimed first, so the page cache is warm for both. Beside them: CRC32C alone over the
    same data files (``metainspect.formats.crc.crc32c`` on a memoryview of an mmap), in this process;
(c) peak RSS of ``metainspect vars PREFIX`` on the big checkpoint (target: < 100 MB), read with
    ``getrusage(RUSAGE_CHILDREN)`` in a small ``python -S`` probe that starts only that command
    (not in this process: Linux keeps the RSS peak of the image a child replaces at exec, so a
    child of a big parent would inherit the parent's peak); TensorFlow's ``list_variables`` and
    ``vars`` on the small-tensor checkpoint for context.

A bench is not a test: the exit status is 0 whatever the results; misses are printed as FAIL.
"""

from __future__ import annotations

import argparse
import glob
import json
import mmap
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NO_TF_MESSAGE, BenchError, Row, add_common_args, child_json, cpu_row, find_tf_python, fmt, load_average,
    metainspect_command, peak_rss_kib, print_header, print_table, ratio_row, run, summarize, tf_env, tf_version,
    time_runs_cpu, workdir,
)

#: issue #11 (start-up pays only for what a command uses); #3 asked for 10
VARS_RATIO_TARGET = 15.0
READ_RATIO_TARGET = 1.0
RSS_TARGET_MB = 100.0
GB = 1e9
MB = 1e6

# --- TensorFlow children: they write the inputs and are the reference readers ----------------

TF_WRITE_SMALL = """\
import sys
import numpy as np
import tensorflow as tf

prefix, count = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
values = {"global_step": np.array(123456, np.int64)}
layer = 0
while len(values) < count:
    scope = f"layer_{layer:04d}"
    fan_in, fan_out = (int(d) for d in rng.integers(2, 33, size=2))
    candidates = {
        f"{scope}/dense/kernel": rng.standard_normal((fan_in, fan_out)).astype(np.float32),
        f"{scope}/dense/bias": np.zeros(fan_out, np.float32),
        f"{scope}/norm/gamma": rng.standard_normal(fan_out).astype(np.float16),
        f"{scope}/norm/count": np.array(layer, np.int64),
        f"{scope}/conv/kernel": rng.standard_normal((3, 3, 2, fan_out % 4 + 1)).astype(np.float32),
        f"{scope}/embedding/ids": rng.integers(0, 1000, size=fan_in, dtype=np.int32),
    }
    for name, value in candidates.items():
        if len(values) < count:
            values[name] = value
    layer += 1
names = sorted(values)
tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                  tensors=[tf.constant(values[n]) for n in names])
print(len(names))
"""

TF_WRITE_BIG = """\
import os, sys
import tensorflow as tf

prefix, big_tensors = sys.argv[1], int(sys.argv[2])
parts_dir = prefix + "_parts"
chunk = 8  # 8 tensors of 8 MiB: 64 MiB held at a time
tf.random.set_seed(0)
specs = [(f"big/tensor_{i:03d}", lambda: tf.random.uniform([1024, 2048], dtype=tf.float32))
         for i in range(big_tensors)]
specs += [
    ("extra/embedding_f16", lambda: tf.cast(tf.random.uniform([4096, 256]), tf.float16)),
    ("extra/kernel_bf16", lambda: tf.cast(tf.random.uniform([1024, 1024]), tf.bfloat16)),
    ("extra/ids_int32", lambda: tf.random.uniform([262144], maxval=1000, dtype=tf.int32)),
    ("extra/table_f64", lambda: tf.random.uniform([512, 512], dtype=tf.float64)),
    ("global_step", lambda: tf.constant(1000, tf.int64)),
]
parts = []
for start in range(0, len(specs), chunk):
    group = specs[start:start + chunk]
    part = os.path.join(parts_dir, f"part-{len(parts):05d}")
    tf.raw_ops.SaveV2(prefix=part, tensor_names=[n for n, _ in group], shape_and_slices=[""] * len(group),
                      tensors=[make() for _, make in group])
    parts.append(part)
tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=prefix, delete_old_dirs=True)
print(len(specs))
"""

TF_LIST = """\
import sys
import tensorflow as tf
print(len(tf.train.list_variables(sys.argv[1])))
"""

# The two reading children share one loop body; only how a tensor is fetched differs.
_READ_LOOP = """\
start = time.perf_counter()
nbytes = touched = 0
for name in names:
    a = GET(name)
    if a.dtype != object:
        nbytes += a.nbytes
        touched += int(a.reshape(-1).view(np.uint8)[::4096].sum())
loop = time.perf_counter() - start
print(json.dumps({"loop": loop, "bytes": nbytes, "tensors": len(names), "touched": touched}))
"""

OURS_READ = """\
import json, sys, time
import numpy as np
from metainspect import open_checkpoint

with open_checkpoint(sys.argv[1]) as c:
    names = c.keys()
    GET = c.get
""" + "".join("    " + line + "\n" for line in _READ_LOOP.splitlines())

TF_READ = """\
import json, sys, time
import numpy as np
import tensorflow as tf

r = tf.train.load_checkpoint(sys.argv[1])
names = sorted(r.get_variable_to_shape_map())
GET = r.get_tensor
""" + _READ_LOOP


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vars", type=int, default=20_000, metavar="N",
                        help="tensors in the small-tensor checkpoint (default 20000)")
    parser.add_argument("--big-mib", type=int, default=512, metavar="M",
                        help="MiB of 8 MiB float32 tensors in the big checkpoint (default 512)")
    add_common_args(parser, default_repeat=3)
    return parser.parse_args()


# --- inputs -------------------------------------------------------------------------------------


def ensure_inputs(work: Path, args: argparse.Namespace, tf_python: str | None) -> tuple[str, str] | None:
    """Prefixes of the small and big checkpoints, written by TensorFlow unless already in ``work``."""
    small = work / f"vars-{args.vars}" / "ckpt"
    big = work / f"big-{args.big_mib}mib" / "ckpt"
    for prefix, script, extra, label in (
        (small, TF_WRITE_SMALL, str(args.vars), f"{args.vars} small tensors"),
        (big, TF_WRITE_BIG, str(max(1, args.big_mib // 8)), f"{args.big_mib} MiB"),
    ):
        if Path(f"{prefix}.index").exists():
            print(f"reusing {prefix} ({label})")
            continue
        if tf_python is None:
            print(f"{NO_TF_MESSAGE}; the inputs are written by TensorFlow, so nothing is measured "
                  f"(or pass --keep DIR holding inputs from an earlier run)")
            return None
        shutil.rmtree(prefix.parent, ignore_errors=True)
        prefix.parent.mkdir(parents=True)
        started = time.perf_counter()
        run([tf_python, "-c", script, str(prefix), extra], tf_env(), capture=True)
        print(f"TensorFlow wrote {prefix} ({label}) in {time.perf_counter() - started:.1f} s")
    return str(small), str(big)


def data_files(prefix: str) -> list[str]:
    """The data shards of a V2 checkpoint."""
    return sorted(glob.glob(glob.escape(prefix) + ".data-*-of-*"))


# --- measurements -------------------------------------------------------------------------------


def measure_vars(ours: list[str], tf_python: str | None, prefix: str, args: argparse.Namespace) -> list[Row]:
    """(a) listing the small-tensor checkpoint; the warm-up runs check both sides count alike."""
    listed = len(json.loads(run([*ours, "vars", "--json", prefix], capture=True).stdout))
    tf_time = tf_cpu = None
    if tf_python:
        tf_count = int(run([tf_python, "-c", TF_LIST, prefix], tf_env(), capture=True).stdout.split()[-1])
        if tf_count != listed:
            raise BenchError(f"metainspect lists {listed} tensors, TensorFlow {tf_count}")
        tf_walls, tf_cpus = time_runs_cpu([tf_python, "-c", TF_LIST, prefix], args.repeat, tf_env())
        tf_time, tf_cpu = summarize(tf_walls, args.stat), summarize(tf_cpus, args.stat)
    ours_walls, ours_cpus = time_runs_cpu([*ours, "vars", "--json", prefix], args.repeat)
    ours_time, ours_cpu = summarize(ours_walls, args.stat), summarize(ours_cpus, args.stat)
    return [ratio_row(f"vars --json, {listed} tensors", ours_time, tf_time, VARS_RATIO_TARGET),
            cpu_row("same runs, CPU time user+sys (context)", ours_cpu, tf_cpu)]


def measure_read(tf_python: str | None, prefix: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """(b) every tensor of the big checkpoint: loop and whole-process seconds per side, and bytes read."""
    sides = {"ours": ([sys.executable, "-c", OURS_READ, prefix], None)}
    if tf_python:
        sides["tf"] = ([tf_python, "-c", TF_READ, prefix], tf_env())
    warm = {side: child_json(cmd, env)[0] for side, (cmd, env) in sides.items()}  # untimed: warms the page cache
    if "tf" in warm and (warm["tf"]["touched"], warm["tf"]["bytes"]) != (warm["ours"]["touched"], warm["ours"]["bytes"]):
        raise BenchError(f"the two readers disagree on the data: {warm}")
    runs: dict[str, dict[str, list[float]]] = {side: {"loop": [], "process": []} for side in sides}
    for _ in range(args.repeat):
        for side, (cmd, env) in sides.items():
            report, elapsed = child_json(cmd, env)
            runs[side]["loop"].append(report["loop"])
            runs[side]["process"].append(elapsed)
    result = {side: {kind: summarize(times, args.stat) for kind, times in kinds.items()} for side, kinds in runs.items()}
    result["data"] = {"bytes": warm["ours"]["bytes"], "tensors": warm["ours"]["tensors"]}
    return result


def measure_crc(files: list[str], args: argparse.Namespace) -> tuple[float, int]:
    """Seconds for CRC32C alone over every data file (mmap + memoryview, no copy), and bytes."""
    from metainspect.formats.crc import crc32c

    crc32c(b"")  # the implementation is imported on first use
    total = 0
    times = []
    for _ in range(args.repeat + 1):  # the first pass is untimed
        start = time.perf_counter()
        total = 0
        for path in files:
            with (open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
                  memoryview(mapped) as view):
                crc32c(view)
                total += len(view)
        times.append(time.perf_counter() - start)
    return summarize(times[1:], args.stat), total


def measure_rss(ours: list[str], tf_python: str | None, big: str, small: str) -> tuple[list[Row], str]:
    """(c) peak RSS of ``metainspect vars`` on the big checkpoint; the small one and TF for context.

    Returns the rows and a note on how the figures were taken.
    """
    ours_kib, floor_kib = peak_rss_kib([*ours, "vars", big])
    ours_mb = ours_kib * 1024 / MB
    tf_mb = peak_rss_kib([tf_python, "-c", TF_LIST, big], tf_env())[0] * 1024 / MB if tf_python else None
    row = ratio_row("vars peak RSS, big checkpoint", ours_mb, tf_mb, 0, unit="MB")
    row.target, row.passed = f"< {RSS_TARGET_MB:g} MB", ours_mb < RSS_TARGET_MB
    small_mb = peak_rss_kib([*ours, "vars", small])[0] * 1024 / MB
    context = Row("vars peak RSS, small-tensor ckpt (context)", fmt(small_mb, "MB"), "", "", "", None)
    note = (f"peak RSS: getrusage(RUSAGE_CHILDREN) in a `python -S` probe process that starts only the "
            f"command; it cannot show less than the probe's own {floor_kib * 1024 / MB:.1f} MB")
    return [row, context], note


def read_rows(read: dict[str, dict[str, float]], crc_seconds: float) -> list[Row]:
    """Table rows for (b): throughput ratios via seconds (TF/ours seconds == ours/TF GB/s)."""
    mib = read["data"]["bytes"] / 2**20
    rows = []
    for kind in ("loop", "process"):
        what = f"read all {mib:.0f} MiB, {'read loop' if kind == 'loop' else 'whole process'}"
        rows.append(ratio_row(what, read["ours"][kind], read["tf"][kind] if "tf" in read else None, READ_RATIO_TARGET))
    rows.append(Row("CRC32C alone, same data files (context)", fmt(crc_seconds, "s"), "", "", "", None))
    return rows


def print_throughput(read: dict[str, dict[str, float]], crc: tuple[float, int], files: int) -> None:
    """GB/s of each reader and of CRC32C alone."""
    nbytes = read["data"]["bytes"]
    print(f"\nthroughput, GB = 1e9 bytes ({nbytes / GB:.3f} GB of tensor data in {read['data']['tensors']} "
          f"tensors, {files} data files):")
    for side, label in (("ours", "metainspect"), ("tf", "TensorFlow")):
        if side in read:
            print(f"  {label:<12} read loop {nbytes / read[side]['loop'] / GB:6.2f} GB/s   "
                  f"whole process {nbytes / read[side]['process'] / GB:6.2f} GB/s")
    crc_seconds, crc_bytes = crc
    print(f"  CRC32C alone (metainspect.formats.crc.crc32c, mmap'd data files, {crc_bytes / GB:.3f} GB): "
          f"{crc_bytes / crc_seconds / GB:.2f} GB/s")


def main() -> None:
    args = parse_args()
    tf_python = find_tf_python(args.tf_python)
    ours, ours_desc = metainspect_command()
    print_header("checkpoint bench (issues #3, #11)", tf_python, tf_version(tf_python), ours_desc, args.repeat, args.stat)
    with workdir(args.keep, "metainspect-bench-ckpt-") as work:
        prefixes = ensure_inputs(work, args, tf_python)
        if prefixes is None:
            return
        small, big = prefixes
        files = data_files(big)
        print(f"big checkpoint: {sum(Path(f).stat().st_size for f in files) / 2**20:.1f} MiB in {len(files)} data files\n")
        try:
            rows = measure_vars(ours, tf_python, small, args)
            read = measure_read(tf_python, big, args)
            crc = measure_crc(files, args)
            rows += read_rows(read, crc[0])
            rss_rows, rss_note = measure_rss(ours, tf_python, big, small)
            rows += rss_rows
        except BenchError as exc:
            print(f"FAIL: bench could not run: {exc}")
            return
    print_table(rows)
    print_throughput(read, crc, len(files))
    print(f"\n{rss_note}")
    print(f"\nload average at end: {load_average()}")
    if tf_python is None:
        print(f"\n{NO_TF_MESSAGE}")


if __name__ == "__main__":
    main()
