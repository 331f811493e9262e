"""The options every command takes for URLs: ``--storage-option KEY=VALUE`` and ``-v``.

They are added to every command of the application when it runs (:func:`remote_command`), so
each command reads URLs the same way without declaring them. ``--storage-option`` values go to
the URL's fsspec backend for the whole command (``anon=true``, ``endpoint_url=…``, ``profile=…``;
``true``/``false``/``none`` and numbers are converted, JSON objects and lists parsed). ``-v``
prints what remote reads cost to stderr when the command ends: requests and bytes received
per object, beside the object's size. Standard output (tables, ``--json``) is unchanged.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import click
import typer
from typer.core import TyperOption

from metainspect.errors import MetainspectError

STORAGE_HELP = "fsspec option for URLs (s3://, gs://…): anon=true, endpoint_url=URL… Repeatable."
VERBOSE_HELP = "Print the requests and bytes read from URLs (to stderr)."


def parse_storage_option(text: str) -> tuple[str, Any]:
    """``"anon=true"`` -> ``("anon", True)``; numbers, ``true``/``false``/``none`` and JSON
    objects/lists become values, anything else stays a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise MetainspectError(None, f"--storage-option {text!r}: expected KEY=VALUE, e.g. --storage-option anon=true")
    value = value.strip()
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    if value[:1] in "{[" or value.lstrip("-").replace(".", "", 1).isdigit():
        try:
            return key, json.loads(value)
        except json.JSONDecodeError:
            pass
    return key, value


class _Run:
    """What this run's options set up, undone when the command ends."""

    def __init__(self) -> None:
        self.stack = ExitStack()
        self.log: Any = None


_current: list[_Run] = []


def _storage_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    if not values or not _current:
        return
    from metainspect.formats.filesystem import storage_options

    options = dict(parse_storage_option(value) for value in values)
    _current[-1].stack.enter_context(storage_options(options))


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or not _current:
        return
    from metainspect.formats.remote import recording

    _current[-1].log = _current[-1].stack.enter_context(recording())


def _add_options(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_options(sub)
        return
    if any(param.name == "storage_option" for param in command.params):
        return
    command.params += [
        TyperOption(param_decls=["--storage-option"], multiple=True, metavar="KEY=VALUE", expose_value=False,
                    callback=_storage_options, help=STORAGE_HELP, show_default=False),
        TyperOption(param_decls=["-v", "--verbose"], is_flag=True, expose_value=False, callback=_verbose,
                    help=VERBOSE_HELP, show_default=False),
    ]


@contextmanager
def remote_command(app: typer.Typer) -> Iterator[click.Command]:
    """The application as a click command whose commands take the URL options; when the block
    ends (normally or not) the transfer is reported (``-v``) and the options are dropped."""
    command = typer.main.get_command(app)
    _add_options(command)
    run = _Run()
    _current.append(run)
    try:
        with run.stack:
            try:
                yield command
            finally:
                if run.log is not None:
                    _report(run.log)
    finally:
        _current.remove(run)


def _report(log: Any) -> None:
    from metainspect.cli.render import format_bytes

    if not log.objects:
        print("metainspect: transfer: nothing read remotely", file=sys.stderr)
        return
    print(f"metainspect: transfer: {_requests(log.requests)}, {format_bytes(log.bytes)} received "
          f"({log.bytes} bytes)", file=sys.stderr)
    for item in log.objects.values():
        size = "" if item.size is None else f" of {format_bytes(item.size)}"
        print(f"  {item.url}: {_requests(item.requests)}, {format_bytes(item.bytes)}{size}", file=sys.stderr)


def _requests(count: int) -> str:
    return f"{count} request{'' if count == 1 else 's'}"
