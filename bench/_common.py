"""Shared helpers for the benchmark scripts: finding TensorFlow, timing fresh processes, the table.

Everything here is stdlib only, so it runs in the no-TensorFlow venv. TensorFlow is only ever
imported inside child processes started with the TensorFlow interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: interpreters tried, in order, when --tf-python is not given and this one lacks TensorFlow
TF_PYTHON_CANDIDATES = (REPO_ROOT / ".venv-tf" / "bin" / "python", Path("/work/tfenv/bin/python"))
NO_TF_MESSAGE = "TensorFlow not available: ratios not measured"
_HAS_TF_CHECK = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"


class BenchError(RuntimeError):
    """A child process failed; the message carries the tail of its stderr."""


def add_common_args(parser: argparse.ArgumentParser, default_repeat: int) -> None:
    """Add --tf-python, --repeat, --stat and --keep to ``parser``."""
    parser.add_argument("--tf-python", metavar="PATH",
                        help="a Python with TensorFlow (default: this one if it has TF, else "
                             ".venv-tf/bin/python, else /work/tfenv/bin/python)")
    parser.add_argument("--repeat", "-k", type=int, default=default_repeat, metavar="K",
                        help=f"timed runs per measurement (default {default_repeat})")
    parser.add_argument("--stat", choices=("best", "median"), default="best",
                        help="how K timings are summarised (default best: the minimum, the figure least "
                             "skewed by other load on the machine)")
    parser.add_argument("--keep", metavar="DIR",
                        help="write inputs to DIR and keep them (reused on the next run if present)")


def has_tensorflow(python: str) -> bool:
    """Whether ``python`` can import tensorflow (checked with find_spec, without importing it)."""
    if python == sys.executable:  # not resolve(): venvs symlink to one base interpreter
        import importlib.util

        return importlib.util.find_spec("tensorflow") is not None
    try:
        return subprocess.run([python, "-c", _HAS_TF_CHECK], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_tf_python(explicit: str | None) -> str | None:
    """The interpreter to run TensorFlow children with, or None when there is none."""
    if explicit:
        if has_tensorflow(explicit):
            return explicit
        print(f"warning: --tf-python {explicit} cannot import tensorflow", file=sys.stderr)
        return None
    for candidate in (Path(sys.executable), *TF_PYTHON_CANDIDATES):
        if candidate.exists() and has_tensorflow(str(candidate)):
            return str(candidate)
    return None


def metainspect_command() -> tuple[list[str], str]:
    """How metainspect is run: the venv's console script if it exists, else ``python -m``.

    The package's bytecode is compiled first, as ``pip install`` does for a regular install
    (an editable install, or ``PYTHONDONTWRITEBYTECODE=1``, would otherwise recompile every
    module on every run and time the compiler; TensorFlow's own modules are precompiled).
    """
    import compileall

    import metainspect

    compileall.compile_dir(str(Path(metainspect.__file__).parent), quiet=1)
    script = Path(sys.executable).parent / "metainspect"
    if script.exists():
        return [str(script)], f"console script {script}"
    return [sys.executable, "-m", "metainspect"], f"{sys.executable} -m metainspect"


def tf_env() -> dict[str, str]:
    """Environment for TensorFlow children: C++ info logs off (they only go to stderr anyway)."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def run(cmd: Sequence[str], env: dict[str, str] | None = None, capture: bool = False) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion; stdout piped if ``capture`` else discarded; raise on failure."""
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=env, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise BenchError(f"{_short(cmd)} exited with {proc.returncode}:\n{tail}")
    return proc


def time_once(cmd: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of one fresh process running ``cmd`` (stdout to /dev/null)."""
    start = time.perf_counter()
    run(cmd, env)
    return time.perf_counter() - start


def time_runs(cmd: Sequence[str], repeat: int, env: dict[str, str] | None = None) -> list[float]:
    """``repeat`` wall-clock timings of fresh processes running ``cmd``."""
    return [time_once(cmd, env) for _ in range(repeat)]


def time_runs_cpu(cmd: Sequence[str], repeat: int, env: dict[str, str] | None = None) -> tuple[list[float], list[float]]:
    """``repeat`` fresh processes running ``cmd``: their wall-clock times and their CPU times (user +
    system). On a busy machine the wall time includes waiting for a CPU; the CPU time does not."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(time_once(cmd, env))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return walls, cpus


def cpu_row(what: str, ours: float, tf: float | None) -> Row:
    """The CPU times of the runs a ratio row timed, for context (no target)."""
    ratio = f"{tf / ours:.1f}x" if tf is not None else "not measured"
    return Row(what, fmt(ours, "s"), fmt(tf, "s"), ratio, "", None)


def child_json(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[dict, float]:
    """Run a child that prints one JSON object as its last stdout line; return it and the wall time."""
    start = time.perf_counter()
    proc = run(cmd, env, capture=True)
    elapsed = time.perf_counter() - start
    return json.loads(proc.stdout.strip().splitlines()[-1]), elapsed


#: Runs argv[1:] and prints its peak RSS (KiB) and this probe's own. A separate small process,
#: because Linux keeps the RSS peak of the image a child replaces at exec: a child started by
#: this (big) process would report this process's peak. The probe's own ru_maxrss has that
#: problem too, so its own peak is taken from its memory map (VmHWM).
_RSS_PROBE = """\
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
own = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, own[0] if own else 0)
sys.exit(code)
"""


def peak_rss_kib(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, int]:
    """Peak resident set size (KiB) of one fresh process running ``cmd``, and the floor it can show.

    ``cmd`` is started by a small ``python -S`` probe process and its ``RUSAGE_CHILDREN`` peak is
    read there; the result can never be below the probe's own peak (the floor, about 10 MB).
    """
    proc = run([sys.executable, "-S", "-c", _RSS_PROBE, *cmd], env, capture=True)
    child, probe = (int(x) for x in proc.stdout.split()[-2:])
    return child, probe


def summarize(times: Sequence[float], stat: str) -> float:
    """Median or best (minimum) of ``times``."""
    return min(times) if stat == "best" else statistics.median(times)


@contextmanager
def workdir(keep: str | None, prefix: str) -> Iterator[Path]:
    """A directory for synthetic inputs: ``keep`` (created, kept) or a temp dir deleted afterwards."""
    if keep:
        path = Path(keep).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Row:
    """One line of the result table. Values are preformatted; ``passed`` None means no verdict."""

    what: str
    ours: str
    tf: str
    ratio: str
    target: str
    passed: bool | None

    @property
    def result(self) -> str:
        return "-" if self.passed is None else ("PASS" if self.passed else "FAIL")


def ratio_row(what: str, ours: float, tf: float | None, min_ratio: float, unit: str = "s") -> Row:
    """A row whose target is ``TF / ours >= min_ratio`` (time-like values, lower is better)."""
    if tf is None:
        return Row(what, fmt(ours, unit), "n/a", "not measured", f"TF/ours >= {min_ratio:g}", None)
    ratio = tf / ours
    return Row(what, fmt(ours, unit), fmt(tf, unit), f"{ratio:.1f}x", f"TF/ours >= {min_ratio:g}", ratio >= min_ratio)


def fmt(value: float | None, unit: str) -> str:
    """``0.123 s``, ``41 MB``; ``n/a`` for None."""
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"


def print_table(rows: Sequence[Row]) -> None:
    """Print ``rows`` as an aligned plain-text table."""
    header = ("what", "metainspect", "TensorFlow", "TF/ours", "target", "result")
    cells = [header, *[(r.what, r.ours, r.tf, r.ratio, r.target, r.result) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    right = {1, 2, 3}
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print(verdict(rows))


def verdict(rows: Sequence[Row]) -> str:
    """One line: the rows that miss their targets, or how many targets were met and not measured."""
    targets = [r for r in rows if r.target]
    failed = [r.what for r in targets if r.passed is False]
    unmeasured = sum(r.passed is None for r in targets)
    tail = f" ({unmeasured} not measured)" if unmeasured else ""
    if failed:
        return f"FAIL: {'; '.join(failed)}{tail}"
    return f"PASS: {len(targets) - unmeasured} of {len(targets)} targets met{tail}"


def print_header(title: str, tf_python: str | None, tf_version: str | None, ours: str, repeat: int, stat: str) -> None:
    """Describe the run: machine, interpreters, how timings are taken."""
    print(f"== {title} ==")
    print(f"machine:     {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")
    print(f"metainspect: {ours} (no-TF venv)")
    if tf_python:
        print(f"TensorFlow:  {tf_version} via {tf_python} (children run with TF_CPP_MIN_LOG_LEVEL=3)")
    else:
        print(f"TensorFlow:  not found -- {NO_TF_MESSAGE}")
    print(f"timings:     fresh process each, wall clock, {stat} of {repeat} runs, after one untimed warm-up run")
    print(f"load:        {load_average()} at start (other processes on this machine skew wall-clock times)")
    print()


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``0.52 0.40 0.31``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tf_version(tf_python: str | None) -> str | None:
    """``tf.__version__`` from a child; also warms the page cache for TensorFlow's libraries."""
    if tf_python is None:
        return None
    proc = run([tf_python, "-c", "import tensorflow as tf; print(tf.__version__)"], tf_env(), capture=True)
    return proc.stdout.strip().splitlines()[-1]


def _short(cmd: Sequence[str]) -> str:
    parts = [p if len(p) < 60 else p[:57] + "..." for p in cmd]
    return " ".join(p.replace("\n", "; ") for p in parts)
