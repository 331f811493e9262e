"""Run the command line as a user would: in-process (fast, the ``cli`` fixture) or in a child process.

Both go through :func:`metainspect.cli.run`, the function the console script calls, so errors turn
into the same one-line messages and exit codes. The child process is kept for what only a real
process shows: the console script, ``python -m metainspect``, a closed pipe, start-up imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: wide enough that no table or message is wrapped
ENV = {"COLUMNS": "200"}


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def invoke(*args: str) -> CliResult:
    """``metainspect ARGS`` in this process; an exception that escapes is reported as Python would."""
    from click.testing import CliRunner

    from metainspect.cli import run

    with CliRunner().isolation(env=ENV) as (out, err, _):
        try:
            run(list(args), prog_name="metainspect")
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:  # SystemExit("message"): printed, status 1
                print(exc.code, file=sys.stderr)
                code = 1
        except Exception:  # noqa: BLE001  (reported like an uncaught exception: traceback, status 1)
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        return CliResult(code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8", "backslashreplace"))


def run_cli(*args: str, cwd: Path | None = None) -> CliResult:
    """``python -m metainspect ARGS`` in a child process, capturing both streams."""
    proc = subprocess.run([sys.executable, "-m", "metainspect", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **ENV}, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


#: the type of the ``cli`` fixture
Cli = Callable[..., CliResult]
