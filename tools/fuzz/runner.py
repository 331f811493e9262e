"""Run inputs in a worker process with a time limit, classify what happens, keep the crashes.

Outcomes: ``ok`` (no error), ``error`` (a MetainspectError: a fine answer to a hostile file),
and the findings: ``crash`` (any other exception), ``alloc`` (MemoryError under the worker's
address-space cap), ``hang`` (no answer within the time limit), ``died`` (the worker process
ended, e.g. on a signal), ``unnamed``/``multiline`` (a MetainspectError naming no file, or not
fitting one line). A finding's class is its kind, exception type and innermost project frame
(for hangs and deaths, the frame faulthandler saw), so one bug counts once however many
inputs hit it.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.fuzz.case import Case
from tools.fuzz.families import Family
from tools.fuzz.worker import STACK_FILE, receive, send, where

REPO = Path(__file__).resolve().parents[2]
REGRESSIONS = REPO / "tests" / "fuzz" / "regressions"
LOG_FILE = "worker.log"
FINDINGS = ("crash", "alloc", "hang", "died", "unnamed", "multiline")
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line \d+ in (?P<function>\S+)')


class Worker:
    """One worker process; restarted after a hang or a death."""

    def __init__(self, *, memory_mb: int = 1024, targets: str = "tools.fuzz.targets",
                 env: dict[str, str] | None = None) -> None:
        self.memory_mb = memory_mb
        self.targets = targets
        self.env = env
        self.scratch = Path(tempfile.mkdtemp(prefix="metainspect-fuzz-", dir=_scratch_parent()))
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        env = {**os.environ, **(self.env or {}), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        with open(self.scratch / LOG_FILE, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.fuzz.worker", "--scratch", str(self.scratch),
                 "--memory-mb", str(self.memory_mb), "--targets", self.targets],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=REPO, env=env)
        ready = self._reply(timeout=120)
        if not isinstance(ready, dict) or not ready.get("ready"):
            raise RuntimeError(f"fuzz worker did not start: {ready!r}")

    def run(self, case: Case, targets: tuple[str, ...], timeout: float) -> dict[str, Any]:
        """Run one case; the result dict has ``kind`` and, for findings, ``class``."""
        if self.process is None:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        try:
            send(self.process.stdin, (case, targets))  # type: ignore[arg-type]
        except BrokenPipeError:
            return self._died()
        started = time.perf_counter()
        reply = self._reply(timeout)
        if reply is None:
            return self._hung(time.perf_counter() - started)
        if reply is EOFError:
            return self._died()
        return reply  # type: ignore[no-any-return]

    def close(self) -> None:
        self._stop()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _stop(self) -> None:
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.process = None

    def _reply(self, timeout: float) -> Any:
        assert self.process is not None and self.process.stdout is not None
        stream = self.process.stdout
        ready, _, _ = select.select([stream], [], [], timeout)
        if not ready:
            return None
        try:
            return receive(stream)  # type: ignore[arg-type]
        except (EOFError, struct.error):
            return EOFError

    def _stack_where(self) -> str:
        text = (self.scratch / STACK_FILE).read_text(errors="replace") if (self.scratch / STACK_FILE).exists() else ""
        frames = [(m["file"], m["function"]) for m in _FRAME.finditer(text)]
        frames.reverse()  # faulthandler prints the innermost call first
        return where(frames) if frames else "an unknown place"

    def _restart_clean(self) -> None:
        self._stop()
        self.restarts += 1
        (self.scratch / STACK_FILE).unlink(missing_ok=True)
        (self.scratch / LOG_FILE).unlink(missing_ok=True)

    def _hung(self, seconds: float) -> dict[str, Any]:
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        place = self._stack_where()
        self._restart_clean()
        return {"kind": "hang", "class": f"hang in {place}", "message": f"no answer after {seconds:.1f} s",
                "seconds": seconds}

    def _died(self) -> dict[str, Any]:
        assert self.process is not None
        code = self.process.wait()
        place = self._stack_where()
        log = self.scratch / LOG_FILE
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        self._restart_clean()
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        return {"kind": "died", "class": f"worker died ({how}) in {place}", "message": how, "traceback": tail,
                "seconds": 0.0}


def _scratch_parent() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@dataclass
class FamilyReport:
    """What one family's run did."""

    family: str
    inputs: int = 0
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)
    opened: int = 0
    #: finding class -> (count, saved regression file or None)
    classes: dict[str, list[Any]] = field(default_factory=dict)
    slowest: float = 0.0
    #: the worker's largest address space after an input (bytes): growth would mean a leak
    address_space: int = 0
    generator_failures: int = 0
    first_generator_failure: str = ""
    steps: Counter[str] = field(default_factory=Counter)

    @property
    def findings(self) -> int:
        return sum(self.kinds[k] for k in FINDINGS)

    def line(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        share = (lambda n: f"{100 * n / self.inputs:.0f}%") if self.inputs else (lambda n: "-")
        text = (f"{self.family:<13} {self.inputs:>8} inputs {self.seconds:7.1f} s ({rate:5.0f}/s)  "
                f"opened {share(self.opened)}, clean {share(self.kinds['ok'])}, refused {share(self.kinds['error'])}  "
                f"crash classes {len(self.classes)}, hangs {self.kinds['hang']}, slowest {self.slowest:.2f} s, "
                f"worker {self.address_space >> 20} MiB")
        if self.generator_failures:
            text += f", generator failures {self.generator_failures}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "inputs": self.inputs, "seconds": round(self.seconds, 1),
                "kinds": dict(self.kinds), "opened": self.opened, "slowest": round(self.slowest, 3),
                "address_space_mb": self.address_space >> 20,
                "classes": {k: {"count": v[0], "saved": v[1]} for k, v in self.classes.items()},
                "generator_failures": self.generator_failures}


def rng_for(seed: str, family: str, index: int) -> random.Random:
    """The generator of input ``index``: every input is reproducible on its own."""
    return random.Random(f"{seed}:{family}:{index}")


def fuzz_family(family: Family, worker: Worker, *, seed: str, start: int = 0, inputs: int | None = None,
                deadline: float | None = None, timeout: float = 10.0, save: Path | None = None) -> FamilyReport:
    """Generate and run inputs until ``inputs`` ran or ``deadline`` (a perf_counter time) passed."""
    report = FamilyReport(family.name)
    began = time.perf_counter()
    index = start
    while (inputs is None or report.inputs < inputs) and (deadline is None or time.perf_counter() < deadline):
        try:
            case, targets = family.generate(rng_for(seed, family.name, index))
        except Exception:  # noqa: BLE001  (a mutator bug is reported, not fatal to a long campaign)
            report.generator_failures += 1
            report.first_generator_failure = report.first_generator_failure or traceback.format_exc()
            index += 1
            continue
        case.steps.insert(0, f"seed={seed} index={index}")
        result = worker.run(case, targets, timeout)
        index += 1
        report.inputs += 1
        report.kinds[result["kind"]] += 1
        report.opened += bool(result.get("opened"))
        report.slowest = max(report.slowest, result.get("seconds", 0.0))
        report.address_space = max(report.address_space, result.get("address_space", 0))
        for step in case.steps[1:]:
            report.steps[step.split(":")[0]] += 1
        if result["kind"] in FINDINGS:
            known = report.classes.setdefault(result["class"], [0, None])
            known[0] += 1
            if known[1] is None and save is not None:
                known[1] = str(save_case(case, result, save))
    report.seconds = time.perf_counter() - began
    return report


def save_case(case: Case, result: dict[str, Any], directory: Path) -> Path:
    """Keep a finding as ``<directory>/<family>/<class slug>-<hash>.zip`` (one file per class)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", result["class"]).strip("-").lower()[:60]
    digest = hashlib.sha256(result["class"].encode()).hexdigest()[:8]
    path = directory / case.family / f"{slug}-{digest}.zip"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        found = {k: str(result.get(k, "")) for k in ("kind", "class", "message")}
        path.write_bytes(case.to_zip(found))
    return path


def replay(paths: list[Path], worker: Worker, timeout: float = 20.0) -> list[tuple[Path, dict[str, Any]]]:
    """Run stored cases again; each with the targets of its family's seeds."""
    from tools.fuzz.families import FAMILIES

    out = []
    for path in paths:
        case, _ = Case.from_zip(path)
        family = FAMILIES[case.family]()
        seed = next((s for s in family.seeds() if s.name == case.seed), None)
        targets = seed.targets if seed else ("checkpoint", "graph", "check")
        out.append((path, worker.run(case, targets, timeout)))
    return out
