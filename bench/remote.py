"""Benchmark: metainspect reading checkpoints over HTTP against TensorFlow reading the same files locally.

Run from the repo root with the no-TensorFlow venv (it needs the ``remote`` extra)::

    .venv/bin/python bench/remote.py [--tf-python PATH] [--repeat K] [--keep DIR]

Inputs, written with metainspect's own bundle writer (TensorFlow's layout): a checkpoint of
20,000 small tensors, and one of 64 MiB in a single data file holding a 32 KiB tensor and a
4 MiB tensor among 4 MiB others. They are served by the suite's loopback HTTP server
(``tests/helpers/servers.py``: 127.0.0.1, ``Range`` support, every request and byte counted)
running in this process; metainspect runs in fresh processes against ``http://127.0.0.1:PORT``.

Measured (fresh processes, best of K after one untimed warm-up run):

(a) listing: ``metainspect vars --json URL`` vs ``tf.train.list_variables(local prefix)``;
(b) one tensor: ``metainspect show --json URL NAME`` (32 KiB and 4 MiB) vs
    ``tf.train.load_checkpoint(local prefix).get_tensor(NAME)``;

with the bytes and requests the server answered for each metainspect run printed beside the
file sizes. Targets: the byte budgets of issue #14 (listing <= index + 128 KiB; one tensor <=
index + tensor + 256 KiB). Times have no target: TensorFlow reads local files, so the ratio
says what fetching over loopback HTTP costs next to TensorFlow's local start-up and read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NO_TF_MESSAGE, BenchError, Row, add_common_args, find_tf_python, fmt, load_average, metainspect_command,
    print_header, print_table, run, summarize, tf_env, tf_version, time_runs, workdir,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))
from helpers.servers import HttpFiles  # noqa: E402  (the suite's counting server, on loopback)

TF_LIST = "import sys, tensorflow as tf; print(len(tf.train.list_variables(sys.argv[1])))"
TF_GET = ("import sys, tensorflow as tf; r = tf.train.load_checkpoint(sys.argv[1]); "
          "print(r.get_tensor(sys.argv[2]).nbytes)")
SMALL, MEDIUM = "target_32k", "target_4m"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, default_repeat=5)
    return parser.parse_args()


def ensure_inputs(work: Path) -> None:
    import numpy as np

    from metainspect.formats.bundle_writer import BundleWriter

    rng = np.random.default_rng(0)
    if not (work / "many" / "model.ckpt.index").exists():
        with BundleWriter(work / "many" / "model.ckpt", sync=False) as writer:
            for i in range(20_000):
                writer.add(f"layer_{i // 100:03d}/unit_{i % 100:02d}/kernel", rng.standard_normal(4).astype(np.float32))
    if not (work / "big" / "model.ckpt.index").exists():
        with BundleWriter(work / "big" / "model.ckpt", sync=False) as writer:
            for i in range(15):
                writer.add(f"block_{i:02d}/weights", rng.standard_normal(1 << 20).astype(np.float32))
                if i == 7:
                    writer.add(SMALL, rng.standard_normal(8192).astype(np.float32))
                    writer.add(MEDIUM, rng.standard_normal(1 << 20).astype(np.float32))


def sizes(prefix: Path) -> tuple[int, int]:
    index = prefix.with_name(prefix.name + ".index").stat().st_size
    data = sum(p.stat().st_size for p in prefix.parent.glob(prefix.name + ".data-*"))
    return index, data


def measure(ours: list[str], tf_python: str | None, server: HttpFiles, work: Path, label: str, prefix: Path,
            args_ours: list[str], tf_code: str, tf_args: list[str], budget: int, args: argparse.Namespace,
            ) -> tuple[list[Row], str]:
    url = f"{server.url}/{prefix.relative_to(work).as_posix()}"
    command = [*ours, *args_ours[:1], url, *args_ours[1:], "--json"]
    local = json.loads(run([*ours, *args_ours[:1], str(prefix), *args_ours[1:], "--json"], capture=True).stdout)
    server.reset()
    remote = json.loads(run(command, capture=True).stdout)
    if remote != local:
        raise BenchError(f"{label}: the output over HTTP differs from the local one")
    requests, received = server.served.requests, server.served.bytes  # this one run (timed runs add more)
    ours_time = summarize(time_runs(command, args.repeat), args.stat)
    tf_time = None
    if tf_python:
        run([tf_python, "-c", tf_code, str(prefix), *tf_args], tf_env())
        tf_time = summarize(time_runs([tf_python, "-c", tf_code, str(prefix), *tf_args], args.repeat, tf_env()),
                            args.stat)
    ratio = "not measured" if tf_time is None else f"{tf_time / ours_time:.1f}x"
    index, data = sizes(prefix)
    rows = [
        Row(f"{label} (ours over HTTP, TF local)", fmt(ours_time, "s"), fmt(tf_time, "s"), ratio, "", None),
        Row(f"{label}: bytes over HTTP", f"{received:,} B", "-", "-", f"<= {budget:,} B", received <= budget),
    ]
    note = (f"{label}: {requests} requests, {received:,} bytes received; index {index:,} B, "
            f"data {data:,} B ({received / (index + data):.2%} of the checkpoint)")
    return rows, note


def main() -> None:
    args = parse_args()
    tf_python = find_tf_python(args.tf_python)
    ours, ours_desc = metainspect_command()
    print_header("remote bench (issue #14)", tf_python, tf_version(tf_python), ours_desc, args.repeat, args.stat)
    rows: list[Row] = []
    notes: list[str] = []
    with workdir(args.keep, "metainspect-bench-remote-") as work:
        ensure_inputs(work)
        many, big = work / "many" / "model.ckpt", work / "big" / "model.ckpt"
        with HttpFiles(work) as server:
            try:
                for label, prefix, ours_args, tf_code, tf_args, tensor in (
                    ("vars, 20,000 tensors", many, ["vars"], TF_LIST, [], 0),
                    ("show, 32 KiB tensor of 64 MiB", big, ["show", SMALL], TF_GET, [SMALL], 32 * 1024),
                    ("show, 4 MiB tensor of 64 MiB", big, ["show", MEDIUM], TF_GET, [MEDIUM], 4 << 20),
                ):
                    index = sizes(prefix)[0]
                    budget = index + (128 * 1024 if not tensor else tensor + 256 * 1024)
                    found, note = measure(ours, tf_python, server, work, label, prefix, ours_args, tf_code, tf_args,
                                          budget, args)
                    rows += found
                    notes.append(note)
            except BenchError as exc:
                print(f"FAIL: bench could not run: {exc}")
                return
    print_table(rows)
    print()
    print("\n".join(notes))
    print(f"\nload average at end: {load_average()}")
    if tf_python is None:
        print(f"\n{NO_TF_MESSAGE}")


if __name__ == "__main__":
    main()
