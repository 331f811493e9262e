"""Benchmark: ``metainspect diff`` of two large checkpoints against TensorFlow's reader + a numpy loop.

Run from the repo root with the no-TensorFlow venv::

    .venv/bin/python bench/diff.py [--tf-python PATH] [--big-mib M] [--repeat K] [--keep DIR]

Two checkpoints of M (512) MiB of float32 tensors each, plus a 64 MiB embedding, a partitioned
tensor, float16/int64 tensors and a string vocabulary, are written here with metainspect's own
bundle writer (no TensorFlow needed; nothing is committed). B is A "fine-tuned": three kernels in
four and one row in 64 of the embedding moved by small noise, one vocabulary entry changed, one
tensor dropped and one added.

Measured in fresh processes, after one untimed warm-up run per side (page cache warm):

(a) ``diff_checkpoints(A, B)`` (CRC32C checked, values compared, float64 metrics) vs a
    TensorFlow child doing what an ad-hoc script does: ``tf.train.load_checkpoint`` on both,
    ``get_tensor`` for every common name and numpy computing the same metrics (max/mean
    |a-b|, ||a-b||/||a||, cosine, fraction differing) in float64 on whole arrays. Each child's
    own loop time, as throughput over the tensor bytes of both checkpoints;
(b) the whole ``metainspect diff A B --json`` process vs the whole TensorFlow process;
(c) for context: TensorFlow's reads alone (``get_tensor`` of both, no numpy); ours with
    ``--no-verify``, ``--no-values`` (indexes only) and A against itself (every chunk bit-equal);
(d) peak RSS of ``metainspect diff`` (target: < 2 x largest tensor + 100 MB) and of the
    TensorFlow child, read with ``getrusage(RUSAGE_CHILDREN)`` in a ``python -S`` probe;
(e) that our metrics equal numpy's on TensorFlow's arrays (relative 1e-9) for every changed tensor.

A bench is not a test: the exit status is 0 whatever the results; misses are printed as FAIL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NO_TF_MESSAGE, BenchError, Row, add_common_args, child_json, find_tf_python, fmt, load_average,
    metainspect_command, peak_rss_kib, print_header, print_table, ratio_row, summarize, tf_env, tf_version,
    workdir,
)

RSS_MARGIN_MB = 100.0
MB = 1e6
GB = 1e9
SHARD = 128 << 20
EMBEDDING_ROWS = 32768  # x 512 float32 = 64 MiB, the largest tensor
METRICS = ("max_abs_diff", "mean_abs_diff", "rel_l2", "cosine", "mismatched")

OURS_DIFF = """\
import json, sys, time
import numpy  # loaded before the clock starts, as TensorFlow's import loads it on the other side
from metainspect.diff import diff_checkpoints

a, b, mode = sys.argv[1:4]
options = {"values": {}, "no-verify": {"verify": False}, "no-values": {"values": False}}[mode]
start = time.perf_counter()
found = diff_checkpoints(a, b, **options)
loop = time.perf_counter() - start
print(json.dumps({"loop": loop, "changed": len(found.changed), "compared": found.compared,
                  "metrics": {c.name: c.to_json() for c in found.changed}}))
"""

TF_DIFF = """\
import json, sys, time
import numpy as np
import tensorflow as tf

a, b, numpy_too = sys.argv[1], sys.argv[2], sys.argv[3] == "numpy"
start = time.perf_counter()
ra, rb = tf.train.load_checkpoint(a), tf.train.load_checkpoint(b)
common = sorted(set(ra.get_variable_to_shape_map()) & set(rb.get_variable_to_shape_map()))
nbytes, metrics = 0, {}
for name in common:
    x, y = ra.get_tensor(name), rb.get_tensor(name)
    nbytes += x.nbytes + y.nbytes if x.dtype != object else 0
    if not numpy_too or x.shape != y.shape:
        continue
    if x.dtype == object:
        metrics[name] = {"mismatched": float(np.mean(x != y)) if x.size else None}
        continue
    x64, y64 = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    d = np.abs(x64 - y64)
    nx, ny = np.linalg.norm(x64), np.linalg.norm(y64)
    metrics[name] = {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
                     "rel_l2": float(np.linalg.norm(x64 - y64) / nx) if nx else None,
                     "cosine": float(x64 @ y64 / (nx * ny)) if nx and ny else None,
                     "mismatched": float(np.count_nonzero(x64 != y64) / x64.size)}
loop = time.perf_counter() - start
print(json.dumps({"loop": loop, "bytes": nbytes, "compared": len(common), "metrics": metrics}))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=512, metavar="M",
                        help="MiB of 8 MiB float32 kernels in each checkpoint (default 512)")
    add_common_args(parser, default_repeat=3)
    return parser.parse_args()


# --- input ----------------------------------------------------------------------------------------


def ensure_inputs(work: Path, big_mib: int) -> tuple[str, str, int]:
    """Prefixes of A and B (written unless already there) and the largest tensor's bytes."""
    import numpy as np

    from metainspect.formats.bundle_writer import BundleWriter

    folder = work / f"pair-{big_mib}mib"
    a, b = folder / "a" / "ckpt", folder / "b" / "ckpt"
    largest = EMBEDDING_ROWS * 512 * 4
    if Path(f"{a}.index").exists() and Path(f"{b}.index").exists():
        print(f"reusing {folder}")
        return str(a), str(b), largest
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    rng = np.random.default_rng(0)

    def moved(value: np.ndarray) -> np.ndarray:
        return value + rng.standard_normal(value.shape, dtype=np.float32) * np.float32(1e-3)

    with BundleWriter(str(a), shard_size=SHARD, sync=False) as wa, \
            BundleWriter(str(b), shard_size=SHARD, sync=False) as wb:
        table = rng.standard_normal((EMBEDDING_ROWS, 512), dtype=np.float32)
        wa.add("embedding/table", table)
        table[::64] = moved(table[::64])
        wb.add("embedding/table", table)
        for i in range(max(1, big_mib // 8)):
            kernel = rng.standard_normal((1024, 2048), dtype=np.float32)
            wa.add(f"layer_{i:03d}/kernel", kernel)
            wb.add(f"layer_{i:03d}/kernel", moved(kernel) if i % 4 else kernel)
            for writer in (wa, wb):
                writer.add(f"layer_{i:03d}/bias", np.zeros(2048, np.float32))
        rows = rng.standard_normal((2048, 256), dtype=np.float32)
        for writer in (wa, wb):
            writer.add_slice("partitioned/emb", [2048, 256], [(0, 1024), (0, -1)], rows[:1024])
            writer.add_slice("partitioned/emb", [2048, 256], [(1024, 1024), (0, -1)], rows[1024:])
            writer.add("extra/gamma_f16", np.linspace(-1, 1, 1 << 20, dtype=np.float16))
            writer.add("extra/ids_i64", np.arange(1 << 18, dtype=np.int64))
        vocab = np.array([f"token_{i}".encode() for i in range(20000)], dtype=object)
        wa.add("extra/vocab", vocab)
        vocab[7] = b"changed"
        wb.add("extra/vocab", vocab)
        wa.add("global_step", np.array(1000, np.int64))
        wb.add("global_step", np.array(2000, np.int64))
        wa.add("only_in_a/adam_m", np.zeros(1 << 16, np.float32))
        wb.add("only_in_b/head", np.ones(1 << 16, np.float32))
    os.sync()
    sizes = [sum(os.path.getsize(f) for f in Path(p).parent.glob("ckpt.data-*")) for p in (a, b)]
    print(f"wrote A and B with metainspect's BundleWriter in {time.perf_counter() - started:.1f} s: "
          f"{sizes[0] / 2**20:.1f} MiB and {sizes[1] / 2**20:.1f} MiB of data")
    return str(a), str(b), largest


# --- measurements ---------------------------------------------------------------------------------


def measure(sides: dict[str, tuple[list[str], dict[str, str] | None]], args: argparse.Namespace) -> dict[str, dict]:
    """Loop and whole-process seconds per side (best/median of K after one warm-up), plus its report."""
    results: dict[str, dict] = {}
    for side, (cmd, env) in sides.items():
        report, _ = child_json(cmd, env)
        loops, processes = [], []
        for _ in range(args.repeat):
            found, elapsed = child_json(cmd, env)
            loops.append(found["loop"])
            processes.append(elapsed)
        results[side] = {**report, "loop": summarize(loops, args.stat), "process": summarize(processes, args.stat)}
    return results


def time_process(cmd: list[str], args: argparse.Namespace) -> float:
    """Whole-process wall time of a command whose exit status 1 means "different"."""
    import subprocess

    times = []
    for i in range(args.repeat + 1):
        start = time.perf_counter()
        code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False).returncode
        if code not in (0, 1):
            raise BenchError(f"{' '.join(cmd)} exited with {code}")
        if i:
            times.append(time.perf_counter() - start)
    return summarize(times, args.stat)


def different_is_success(cmd: list[str]) -> list[str]:
    """``cmd`` run by a shell that exits 0 when it exits 1 ("different"), for the RSS probe."""
    return ["sh", "-c", '"$@"; [ $? -le 1 ]', "sh", *cmd]


def metrics_agree(ours: dict[str, dict], tf: dict[str, dict]) -> tuple[bool, int]:
    """Whether every metric we report equals numpy's on TensorFlow's arrays; how many were checked."""
    checked = 0
    for name, theirs in tf.items():
        mine = ours.get(name)
        if mine is None:
            if any(theirs.get(k) for k in ("max_abs_diff", "mismatched")):
                return False, checked
            continue
        for key in METRICS:
            want, got = theirs.get(key), mine.get(key)
            if want is None:
                continue
            checked += 1
            if got is None or abs(got - want) > 1e-9 * max(abs(want), 1e-300):
                return False, checked
    return True, checked


def tensor_bytes(prefixes: tuple[str, str]) -> int:
    return sum(os.path.getsize(f) for p in prefixes for f in Path(p).parent.glob("ckpt.data-*"))


def main() -> None:
    args = parse_args()
    tf_python = find_tf_python(args.tf_python)
    ours, ours_desc = metainspect_command()
    print_header("diff bench (issue #16)", tf_python, tf_version(tf_python), ours_desc, args.repeat, args.stat)
    with workdir(args.keep, "metainspect-bench-diff-") as work:
        a, b, largest = ensure_inputs(work, args.big_mib)
        sides = {mode: ([sys.executable, "-c", OURS_DIFF, a, b, mode], None)
                 for mode in ("values", "no-verify", "no-values")}
        sides["self"] = ([sys.executable, "-c", OURS_DIFF, a, a, "values"], None)
        if tf_python:
            sides["tf"] = ([tf_python, "-c", TF_DIFF, a, b, "numpy"], tf_env())
            sides["tf read"] = ([tf_python, "-c", TF_DIFF, a, b, "read"], tf_env())
        try:
            timed = measure(sides, args)
            process = time_process([*ours, "diff", a, b, "--json"], args)
            rss_kib, floor_kib = peak_rss_kib(different_is_success([*ours, "diff", a, b, "--json"]))
            tf_rss_kib = peak_rss_kib([tf_python, "-c", TF_DIFF, a, b, "numpy"], tf_env())[0] if tf_python else None
            nbytes = tensor_bytes((a, b))
        except BenchError as exc:
            print(f"FAIL: bench could not run: {exc}")
            return
    tf_side = timed.get("tf")
    tf_loop = tf_side["loop"] if tf_side else None
    nbytes = tf_side["bytes"] if tf_side else nbytes
    size = f"{nbytes / 2 / 2**20:.0f} MiB x 2"
    rows = [
        ratio_row(f"diff {size}: diff_checkpoints vs TF reader + numpy loop", timed["values"]["loop"], tf_loop, 1.0),
        ratio_row(f"diff {size}: whole process", process, tf_side["process"] if tf_side else None, 1.0),
    ]
    read = timed.get("tf read")
    rows.append(Row("  context: TF reads alone (get_tensor of both, no numpy)", fmt(timed["values"]["loop"], "s"),
                    fmt(read["loop"], "s") if read else "n/a",
                    f"{read['loop'] / timed['values']['loop']:.1f}x" if read else "", "", None))
    for mode, label in (("no-verify", "--no-verify"), ("no-values", "--no-values (indexes only)"),
                        ("self", "A against itself (bit-equal chunks)")):
        rows.append(Row(f"  context: ours {label}", fmt(timed[mode]["loop"], "s"), "", "", "", None))
    rss_mb = rss_kib * 1024 / MB
    limit = 2 * largest / MB + RSS_MARGIN_MB
    rows.append(Row("diff peak RSS", fmt(rss_mb, "MB"), fmt(tf_rss_kib * 1024 / MB, "MB") if tf_rss_kib else "n/a",
                    "", f"< {limit:.0f} MB", rss_mb < limit))
    if tf_side:
        agree, checked = metrics_agree(timed["values"]["metrics"], tf_side["metrics"])
        rows.append(Row(f"metrics equal numpy's on TF's arrays ({checked} values)", "yes" if agree else "NO", "", "",
                        "equal", agree))
        same_count = timed["values"]["compared"] == tf_side["compared"]
        rows.append(Row("tensors compared", str(timed["values"]["compared"]), str(tf_side["compared"]), "", "equal",
                        same_count))
    print()
    print_table(rows)
    print(f"\nthroughput over {nbytes / GB:.3f} GB of tensor data (both checkpoints), GB = 1e9 bytes:")
    for side, label in (("values", "diff_checkpoints"), ("no-verify", "  --no-verify"), ("self", "  A vs A"),
                        ("tf", "TF reader + numpy"), ("tf read", "TF reader alone")):
        if side in timed:
            print(f"  {label:<20} loop {nbytes / timed[side]['loop'] / GB:6.2f} GB/s   "
                  f"whole process {nbytes / timed[side]['process'] / GB:6.2f} GB/s")
    print(f"  {'metainspect diff':<20} whole process {nbytes / process / GB:6.2f} GB/s")
    print(f"\n{timed['values']['changed']} of {timed['values']['compared']} tensors changed; largest tensor "
          f"{largest / MB:.1f} MB; peak RSS via getrusage(RUSAGE_CHILDREN) in a `python -S` probe (cannot show "
          f"less than the probe's own {floor_kib * 1024 / MB:.1f} MB)")
    print(f"\nload average at end: {load_average()}")
    if tf_python is None:
        print(f"\n{NO_TF_MESSAGE}")


if __name__ == "__main__":
    main()
