"""Benchmark: ``metainspect rewrite`` (a no-op copy) against TensorFlow reading the same checkpoint.

Run from the repo root with the no-TensorFlow venv::

    /work/venv/bin/python bench/rewrite.py [--tf-python PATH] [--big-mib M] [--repeat K] [--keep DIR]

The input is written here with metainspect's own bundle writer (no TensorFlow needed), tensor
by tensor: M (512) MiB of 8 MiB float32 tensors plus one 64 MiB embedding, a 2-slice
partitioned tensor, float16/int64 tensors and a string tensor, in 128 MiB data shards.

Measured, each in fresh processes, after one untimed warm-up run per side (page cache warm;
each earlier output is deleted and the file system synced before the next run starts):

(a) rewriting it with no operation, CRC32C of every tensor checked, with ``sync=False``
    (``--no-sync``: files closed and renamed without fsync, as TensorFlow's own BundleWriter
    does) vs TensorFlow reading every tensor, CRC32C checked
    (``tf.train.load_checkpoint(P).get_tensor(k)``): each child's own loop time, as throughput
    over the input's tensor bytes. This is the streaming target: ours >= TF's;
(b) the default, durable rewrite (every file fsynced before it is renamed), against the same
    TF loop and, as its ceiling, against this disk: the same number of bytes written from a
    warm memory buffer into a new file and fsynced (handed to writeback every 64 MiB, as the
    writer does). Both children load their libraries before the clock starts (TensorFlow's
    import loads numpy; ours imports numpy, which metainspect loads lazily for strings);
(c) the whole ``rewrite`` process (default, durable) vs TensorFlow's whole reading process;
    ``--no-verify`` (kernel copies only), ``--cast float32:float16``, and (a) again on the same
    tensors in a single data shard (``rewrite --shard-size`` of the input: copies into one file
    cannot run side by side), for context;
(d) peak RSS of ``metainspect rewrite P -o OUT`` (target: < largest tensor + 100 MB), read
    with ``getrusage(RUSAGE_CHILDREN)`` in a small ``python -S`` probe that starts only that
    command (see bench/checkpoint.py for why);
(e) that the copy is byte-identical to the input (.index and every .data file).

A bench is not a test: the exit status is 0 whatever the results; misses are printed as FAIL.
"""

from __future__ import annotations

import argparse
import filecmp
import glob
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NO_TF_MESSAGE, BenchError, Row, add_common_args, child_json, find_tf_python, fmt, load_average,
    metainspect_command, peak_rss_kib, print_header, print_table, ratio_row, run, summarize, tf_env, tf_version,
    workdir,
)

READ_RATIO_TARGET = 1.0
RSS_MARGIN_MB = 100.0
MB = 1e6
GB = 1e9
SHARD = 128 << 20
EMBEDDING_ROWS = 32768  # x 512 float32 = 64 MiB, the largest tensor

OURS_REWRITE = """\
import json, sys, time
import numpy  # loaded before the clock starts, as TensorFlow's import loads it on the other side
from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

source, out, mode = sys.argv[1:4]
options = {"durable": RewriteOptions(), "no-sync": RewriteOptions(sync=False),
           "no-verify": RewriteOptions(verify=False), "cast": RewriteOptions(cast=("float32", "float16"))}[mode]
start = time.perf_counter()
plan = rewrite_checkpoint(source, out, options)
loop = time.perf_counter() - start
print(json.dumps({"loop": loop, "bytes": plan.input_bytes, "tensors": len(plan.tensors)}))
"""

TF_READ = """\
import json, sys, time
import numpy as np
import tensorflow as tf

r = tf.train.load_checkpoint(sys.argv[1])
names = sorted(r.get_variable_to_shape_map())
start = time.perf_counter()
nbytes = 0
for name in names:
    a = r.get_tensor(name)
    nbytes += a.nbytes if a.dtype != object else 0
loop = time.perf_counter() - start
print(json.dumps({"loop": loop, "bytes": nbytes, "tensors": len(names)}))
"""

DISK_WRITE = """\
import json, os, sys, time

out, nbytes = sys.argv[1], int(sys.argv[2])
block = bytearray(os.urandom(1 << 20)) * 64  # 64 MiB, in memory before the clock starts
view = memoryview(block)
start = time.perf_counter()
fd = os.open(out + ".data-00000-of-00001", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
done = 0
while done < nbytes:
    n = os.write(fd, view[: min(len(block), nbytes - done)])
    os.posix_fadvise(fd, done, n, os.POSIX_FADV_DONTNEED)
    done += n
os.fsync(fd)
os.close(fd)
print(json.dumps({"loop": time.perf_counter() - start, "bytes": nbytes, "tensors": 0}))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=512, metavar="M",
                        help="MiB of 8 MiB float32 tensors in the input (default 512)")
    add_common_args(parser, default_repeat=5)
    return parser.parse_args()


# --- input ----------------------------------------------------------------------------------------


def ensure_input(work: Path, big_mib: int) -> tuple[str, int]:
    """The input prefix (written with BundleWriter unless already there) and its largest tensor's bytes."""
    import numpy as np

    from metainspect.formats.bundle_writer import BundleWriter

    prefix = work / f"input-{big_mib}mib" / "ckpt"
    largest = EMBEDDING_ROWS * 512 * 4
    if Path(f"{prefix}.index").exists():
        print(f"reusing {prefix}")
        return str(prefix), largest
    shutil.rmtree(prefix.parent, ignore_errors=True)
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    with BundleWriter(str(prefix), shard_size=SHARD) as writer:
        writer.add("embedding/table", rng.standard_normal((EMBEDDING_ROWS, 512), dtype=np.float32))
        for i in range(max(1, big_mib // 8)):
            writer.add(f"layer_{i:03d}/kernel", rng.standard_normal((1024, 2048), dtype=np.float32))
            writer.add(f"layer_{i:03d}/bias", np.zeros(2048, np.float32))
        rows = rng.standard_normal((2048, 256), dtype=np.float32)
        writer.add_slice("partitioned/emb", [2048, 256], [(0, 1024), (0, -1)], rows[:1024])
        writer.add_slice("partitioned/emb", [2048, 256], [(1024, 1024), (0, -1)], rows[1024:])
        writer.add("extra/gamma_f16", rng.standard_normal(1 << 20).astype(np.float16))
        writer.add("extra/ids_i64", np.arange(1 << 18, dtype=np.int64))
        writer.add("extra/vocab", np.array([f"token_{i}".encode() for i in range(20000)], dtype=object))
        writer.add("global_step", np.array(1000, np.int64))
    files = data_files(str(prefix))
    size = sum(os.path.getsize(f) for f in files)
    print(f"wrote {prefix} with metainspect's BundleWriter in {time.perf_counter() - started:.1f} s: "
          f"{size / 2**20:.1f} MiB in {len(files)} data files")
    return str(prefix), largest


def single_shard_copy(source: str) -> str:
    """The input rewritten into one data shard (made once, next to the input)."""
    from metainspect.rewrite import RewriteOptions, rewrite_checkpoint

    folder = Path(source).parent
    prefix = folder.with_name(f"{folder.name}-one-shard") / "ckpt"
    index = Path(f"{prefix}.index")
    if index.exists() and index.stat().st_mtime < Path(f"{source}.index").stat().st_mtime:
        shutil.rmtree(prefix.parent)  # made from an earlier input
    if not index.exists():
        rewrite_checkpoint(source, str(prefix), RewriteOptions(shard_size=1 << 40))
    return str(prefix)


def data_files(prefix: str) -> list[str]:
    return sorted(glob.glob(glob.escape(prefix) + ".data-*-of-*"))


def remove_output(prefix: str) -> None:
    """Delete an earlier run's output and let the file system settle (``sync``), so freeing it
    (journal commits, discards) does not land inside the next timed run."""
    for path in glob.glob(glob.escape(prefix) + ".*"):
        os.unlink(path)
    os.sync()


# --- measurements ---------------------------------------------------------------------------------


def measure(cmd_for: dict[str, tuple[list[str], dict[str, str] | None]], out: str,
            args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Loop and whole-process seconds per side (best/median of K after one warm-up), plus bytes."""
    results: dict[str, dict[str, float]] = {}
    for side, (cmd, env) in cmd_for.items():
        remove_output(out)
        warm, _ = child_json(cmd, env)
        loops, processes = [], []
        for _ in range(args.repeat):
            remove_output(out)
            report, elapsed = child_json(cmd, env)
            loops.append(report["loop"])
            processes.append(elapsed)
        results[side] = {"loop": summarize(loops, args.stat), "process": summarize(processes, args.stat),
                         "bytes": warm["bytes"], "tensors": warm["tensors"]}
    return results


def tensor_bytes(prefix: str) -> int:
    """Bytes of tensor data in the input's shards."""
    return sum(os.path.getsize(f) for f in data_files(prefix))


def context_row(what: str, ours: float, tf: float | None) -> Row:
    """A ratio against TensorFlow shown without a verdict."""
    return Row(what, fmt(ours, "s"), fmt(tf, "s"), f"{tf / ours:.1f}x" if tf else "", "", None)


def identical(source: str, copy: str) -> bool:
    """Whether the copy's index and data files equal the input's, byte for byte."""
    pairs = [(source + ".index", copy + ".index")]
    pairs += list(zip(data_files(source), data_files(copy)))
    return len(data_files(source)) == len(data_files(copy)) and all(
        filecmp.cmp(a, b, shallow=False) for a, b in pairs)


def main() -> None:
    args = parse_args()
    tf_python = find_tf_python(args.tf_python)
    ours, ours_desc = metainspect_command()
    print_header("rewrite bench (issue #5)", tf_python, tf_version(tf_python), ours_desc, args.repeat, args.stat)
    with workdir(args.keep, "metainspect-bench-rewrite-") as work:
        source, largest = ensure_input(work, args.big_mib)
        out = str(work / "out" / "ckpt")
        sides = {mode: ([sys.executable, "-c", OURS_REWRITE, source, out, mode], None)
                 for mode in ("no-sync", "durable", "no-verify", "cast")}
        sides["disk"] = ([sys.executable, "-c", DISK_WRITE, out, str(tensor_bytes(source))], None)
        single = single_shard_copy(source)
        sides["single no-sync"] = ([sys.executable, "-c", OURS_REWRITE, single, out, "no-sync"], None)
        if tf_python:
            sides["tf"] = ([tf_python, "-c", TF_READ, source], tf_env())
            sides["tf single"] = ([tf_python, "-c", TF_READ, single], tf_env())
        try:
            timed = measure(sides, out, args)
            remove_output(out)
            run([*ours, "rewrite", source, "-o", out])
            same = identical(source, out)
            remove_output(out)
            rss_kib, floor_kib = peak_rss_kib([*ours, "rewrite", source, "-o", out])
            remove_output(out)
        except BenchError as exc:
            print(f"FAIL: bench could not run: {exc}")
            return
    nbytes = timed["durable"]["bytes"]
    tf_side = timed.get("tf")
    tf_loop = tf_side["loop"] if tf_side else None
    mib = f"{nbytes / 2**20:.0f} MiB"
    durable, disk = timed["durable"]["loop"], timed["disk"]["loop"]
    rows = [
        ratio_row(f"no-op rewrite {mib} --no-sync (streaming) vs TF read loop", timed["no-sync"]["loop"], tf_loop,
                  READ_RATIO_TARGET),
        context_row(f"no-op rewrite {mib}, durable (default) vs TF read loop (context)", durable, tf_loop),
        Row(f"  same, vs this disk: {mib} from memory + fsync (ceiling)", fmt(durable, "s"), fmt(disk, "s"),
            f"{disk / durable:.1f}x", "", None),
        ratio_row(f"no-op rewrite {mib}, durable, whole process", timed["durable"]["process"],
                  tf_side["process"] if tf_side else None, READ_RATIO_TARGET),
    ]
    for mode, label in (("no-verify", "--no-verify (context)"), ("cast", "--cast float32:float16 (context)")):
        rows.append(Row(f"rewrite {label}, call", fmt(timed[mode]["loop"], "s"), "", "", "", None))
    single_tf = timed.get("tf single")
    rows.append(context_row("same tensors in one data shard, --no-sync vs TF read loop (context)",
                            timed["single no-sync"]["loop"], single_tf["loop"] if single_tf else None))
    rss_mb = rss_kib * 1024 / MB
    limit = largest / MB + RSS_MARGIN_MB
    rows.append(Row("rewrite peak RSS", fmt(rss_mb, "MB"), "", "", f"< {limit:.0f} MB", rss_mb < limit))
    rows.append(Row("copy byte-identical to the input", "yes" if same else "NO", "", "", "identical", same))
    print()
    print_table(rows)
    print(f"\nthroughput over {nbytes / GB:.3f} GB of tensor data ({timed['durable']['tensors']} tensors), GB = 1e9 bytes:")
    for side, label in (("no-sync", "rewrite --no-sync"), ("durable", "rewrite (durable)"),
                        ("no-verify", "rewrite --no-verify"), ("cast", "rewrite --cast"),
                        ("disk", "disk write + fsync"), ("tf", "TensorFlow read")):
        if side in timed:
            print(f"  {label:<20} call/loop {nbytes / timed[side]['loop'] / GB:6.2f} GB/s   "
                  f"whole process {nbytes / timed[side]['process'] / GB:6.2f} GB/s")
    print(f"\nlargest tensor {largest / MB:.1f} MB; peak RSS via getrusage(RUSAGE_CHILDREN) in a `python -S` probe "
          f"(cannot show less than the probe's own {floor_kib * 1024 / MB:.1f} MB)")
    print(f"\nload average at end: {load_average()}")
    if tf_python is None:
        print(f"\n{NO_TF_MESSAGE}")


if __name__ == "__main__":
    main()
