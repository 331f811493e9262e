"""The ``metainspect`` command line: a thin layer over the Python API.

:mod:`.app` holds the typer application, :func:`main` (the console script) and :func:`run` (the
same with its arguments given); :mod:`.options` the flags' parsers, exit codes and wording;
:mod:`.render` tables and JSON; :mod:`.progress` the progress bars. Each command group is a module
of its own, registered below by importing it (``app`` is bound first: command modules may import
it from here). Command modules do not use ``from __future__ import annotations``: typer would
evaluate every string annotation of every command at each start (measured: 12 ms of a 0.19 s
``vars --json``); names imported only for type checking are quoted instead.
"""

from __future__ import annotations

from metainspect.cli.app import app, main, reflow_help, run  # isort: skip  (before the commands that import it)

from metainspect.cli import (  # noqa: F401  (registers commands)
    check_command,
    checkpoint_commands,
    convert_command,
    diff_command,
    edit_command,
    export_command,
    graph_command,
    graph_commands,
    refs_command,
    rewrite_command,
)

reflow_help()

__all__ = ["app", "main", "run"]
