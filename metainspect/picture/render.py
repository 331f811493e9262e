"""Render DOT through Graphviz's ``dot`` program (run as a child process with a time limit)."""

from __future__ import annotations

import os
import shutil
import subprocess

from metainspect.errors import MetainspectError
from metainspect.formats.atomic import write_bytes

#: seconds ``dot`` may take before it is stopped
DEFAULT_TIMEOUT = 120.0
INSTALL_HINT = "apt-get install graphviz, or brew install graphviz"


class GraphvizMissingError(MetainspectError):
    """Graphviz's ``dot`` program is not installed (not on PATH)."""


def dot_program() -> str | None:
    """Path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def require_dot() -> str:
    """Path of ``dot``; :class:`GraphvizMissingError` saying how to install it when absent."""
    program = dot_program()
    if program is None:
        raise GraphvizMissingError(None, f"rendering needs Graphviz's `dot` program, which is not installed "
                                         f"({INSTALL_HINT})")
    return program


def render(dot_text: str, out: str | os.PathLike[str], fmt: str = "svg", timeout: float = DEFAULT_TIMEOUT) -> None:
    """Render ``dot_text`` to ``out`` in Graphviz format ``fmt`` (written atomically)."""
    program = require_dot()
    out = os.fspath(out)
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise MetainspectError(out, f"Graphviz did not finish within {timeout:g} s: draw fewer nodes "
                                    f"(a smaller collapse depth, a neighbourhood, a name filter)") from None
    except OSError as exc:
        raise MetainspectError(program, f"cannot run Graphviz: {exc.strerror or exc}") from None
    if done.returncode != 0 or not done.stdout:
        problem = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MetainspectError(out, f"Graphviz failed (exit {done.returncode}): "
                                    f"{problem[0] if problem else 'no output'}")
    write_bytes(out, done.stdout)
