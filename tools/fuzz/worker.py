"""The child process that runs inputs: ``python -m tools.fuzz.worker`` (started by the runner).

It imports and warms up metainspect (every target once on a TensorFlow-written sample), then
caps its own address space (``RLIMIT_AS``: what it uses after warm-up plus ``--memory-mb``), so a
decoder that tries to allocate what the input cannot justify fails with MemoryError instead of
taking the machine down. Requests arrive on stdin and results leave on a private copy of
stdout (the real stdout goes to /dev/null, so nothing a library prints can garble them). Python
warnings are errors here, as in the test suite. ``faulthandler`` writes the stack to
``<scratch>/stack.txt`` on SIGUSR1 (the runner asks before killing a hung worker) and on a fatal
signal.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import pickle
import resource
import signal
import struct
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import metainspect
from metainspect.errors import MetainspectError

PACKAGE_DIR = str(Path(metainspect.__file__).resolve().parent)
STACK_FILE = "stack.txt"
WARMUP = Path(__file__).resolve().parents[2] / "sample_meta" / "mlp"


def send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError
    (size,) = struct.unpack("<I", head)
    return pickle.loads(stream.read(size))


def where(frames: list[tuple[str, str]]) -> str:
    """``metainspect/x.py:function`` of the innermost project frame (else the innermost frame)."""
    project = [f for f in frames if f[0].startswith(PACKAGE_DIR)]
    filename, function = (project or frames or [("?", "?")])[-1]
    if filename.startswith(PACKAGE_DIR):
        filename = "metainspect" + filename[len(PACKAGE_DIR) :]
    else:
        filename = Path(filename).name
    return f"{filename}:{function}"


def classify(exc: BaseException) -> dict[str, Any]:
    """A crash: its class is the exception type and the innermost project frame."""
    frames = [(f.filename, f.name) for f in traceback.extract_tb(exc.__traceback__)]
    kind = "alloc" if isinstance(exc, MemoryError) else "crash"
    return {"kind": kind, "class": f"{type(exc).__name__} in {where(frames)}", "message": _short(str(exc)),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:]}


def judge(errors: list[MetainspectError], root: Path) -> dict[str, Any] | None:
    """An error that names no file, or spans lines, is a finding too (the CLI prints one line)."""
    for exc in errors:
        if not exc.path:
            return {"kind": "unnamed", "class": f"{type(exc).__name__} without a path", "message": _short(str(exc))}
        if "\n" in str(exc) or "\r" in str(exc):
            return {"kind": "multiline", "class": f"{type(exc).__name__} over several lines",
                    "message": _short(str(exc))}
    return None


def _short(text: str) -> str:
    return text if len(text) <= 500 else text[:500] + "…"


def run_case(case: Any, targets: tuple[str, ...], registry: dict[str, Any], root: Path) -> dict[str, Any]:
    entry = case.write(root)
    started = time.perf_counter()
    errors: list[MetainspectError] = []
    refused = []
    try:
        for name in targets:
            found = registry[name](entry)
            errors += found
            refused.append(found.refused)
    except Exception as exc:  # noqa: BLE001  (classifying what escapes is this process's job)
        result = classify(exc)
    else:
        result = judge(errors, root) or {"kind": "error" if errors else "ok",
                                         "message": _short(str(errors[0])) if errors else ""}
        result["opened"] = not all(refused)
    result["seconds"] = time.perf_counter() - started
    result["address_space"] = _address_space()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scratch", required=True, type=Path)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--targets", default="tools.fuzz.targets", help="module holding TARGETS")
    args = parser.parse_args()

    channel = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    requests = sys.stdin.buffer
    args.scratch.mkdir(parents=True, exist_ok=True)
    stack = open(args.scratch / STACK_FILE, "w")  # noqa: SIM115  (open for the process's lifetime)
    faulthandler.enable(stack)
    faulthandler.register(signal.SIGUSR1, file=stack, all_threads=False)

    registry = importlib.import_module(args.targets).TARGETS
    for target in registry.values():  # warm up: import everything lazily imported, load data files
        target(WARMUP)
    used = _address_space()
    limit = used + args.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    warnings.simplefilter("error")
    sys.setrecursionlimit(1000)
    send(channel, {"ready": True, "address_space": used, "limit": limit})
    root = args.scratch / "case"
    while True:
        try:
            case, targets = receive(requests)
        except EOFError:
            return
        try:
            result = run_case(case, targets, registry, root)
        except BaseException as exc:  # noqa: BLE001  (writing the case or judging it failed: still answer)
            result = classify(exc)
            result["kind"] = "alloc" if isinstance(exc, MemoryError) else "died"
        send(channel, result)


def _address_space() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


if __name__ == "__main__":
    main()
