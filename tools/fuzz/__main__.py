"""``python -m tools.fuzz``: fuzz metainspect's readers; exit 1 when anything but a clean refusal happens.

Examples::

    python -m tools.fuzz --all-families --seconds 150            # the bounded CI run
    python -m tools.fuzz --all-families --inputs 100000 --seed campaign-1 --json fuzz.json
    python -m tools.fuzz --family bundle --inputs 1 --start 4711 --seed campaign-1 --show
    python -m tools.fuzz --replay tests/fuzz/regressions/*/*.zip
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tools.fuzz.families import FAMILIES
from tools.fuzz.runner import FINDINGS, REGRESSIONS, Worker, fuzz_family, replay, rng_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES), help="a family to fuzz (repeatable)")
    parser.add_argument("--all-families", action="store_true", help="fuzz every family in turn")
    parser.add_argument("--seconds", type=float, help="wall-time budget, shared evenly by the families")
    parser.add_argument("--inputs", type=int, help="inputs per family")
    parser.add_argument("--seed", default="ci", help="campaign seed: input i of a family depends on (seed, family, i) only")
    parser.add_argument("--start", type=int, default=0, help="first input index")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds an input may take before it is a hang")
    parser.add_argument("--memory-mb", type=int, default=1024, help="address space an input may add before MemoryError")
    parser.add_argument("--save", type=Path, default=REGRESSIONS,
                        help="where findings are kept, one zip per class (default: the regression corpus)")
    parser.add_argument("--json", type=Path, help="write the per-family report here")
    parser.add_argument("--show", action="store_true", help="print each input's mutations and outcome")
    parser.add_argument("--replay", nargs="+", type=Path, help="run stored cases (regression zips) again")
    args = parser.parse_args(argv)

    worker = Worker(memory_mb=args.memory_mb)
    try:
        if args.replay:
            return _replay(args.replay, worker, args.timeout)
        names = sorted(FAMILIES) if args.all_families else args.family
        if not names:
            parser.error("name a --family or give --all-families (or --replay)")
        if args.seconds is None and args.inputs is None:
            parser.error("give --seconds, --inputs or both")
        if args.show:
            return _show(names, args, worker)
        return _campaign(names, args, worker)
    finally:
        worker.close()


def _campaign(names: list[str], args: argparse.Namespace, worker: Worker) -> int:
    reports = []
    began = time.perf_counter()
    share = args.seconds / len(names) if args.seconds is not None else None
    for position, name in enumerate(names):
        deadline = None
        if share is not None:  # time a family leaves unused goes to the ones after it
            deadline = began + share * (position + 1)
        report = fuzz_family(FAMILIES[name](), worker, seed=args.seed, start=args.start, inputs=args.inputs,
                             deadline=deadline, timeout=args.timeout, save=args.save)
        reports.append(report)
        print(report.line(), flush=True)
        for cls, (count, saved) in report.classes.items():
            print(f"    {count:>6} x {cls}  ->  {saved}", flush=True)
        if report.first_generator_failure:
            print(report.first_generator_failure, file=sys.stderr)
    total = sum(r.inputs for r in reports)
    findings = sum(r.findings for r in reports)
    classes = sum(len(r.classes) for r in reports)
    print(f"total: {total} inputs in {time.perf_counter() - began:.0f} s, {classes} finding classes "
          f"({findings} inputs), worker restarts {worker.restarts}")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "start": args.start, "timeout": args.timeout,
                                         "memory_mb": args.memory_mb,
                                         "families": [r.to_json() for r in reports]}, indent=1))
    return 1 if classes or any(r.generator_failures for r in reports) else 0


def _show(names: list[str], args: argparse.Namespace, worker: Worker) -> int:
    bad = 0
    for name in names:
        family = FAMILIES[name]()
        for index in range(args.start, args.start + (args.inputs or 1)):
            case, targets = family.generate(rng_for(args.seed, name, index))
            result = worker.run(case, targets, args.timeout)
            bad += result["kind"] in FINDINGS
            print(f"{name} #{index} seed={case.seed} {' '.join(case.steps)} -> {result['kind']} "
                  f"{result.get('class', '')} {result.get('message', '')[:200]}")
            if result.get("traceback"):
                print(result["traceback"])
    return 1 if bad else 0


def _replay(paths: list[Path], worker: Worker, timeout: float) -> int:
    bad = 0
    for path, result in replay(paths, worker, timeout):
        bad += result["kind"] in FINDINGS
        print(f"{path}: {result['kind']} {result.get('class', '')} {result.get('message', '')[:200]}")
        if result.get("traceback"):
            print(result["traceback"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
