"""The typer application, its global options, and the entry point that turns errors into one line.

Exit codes: 0 ok, 1 findings (``verify``/``check``), 2 unusable input or usage error.
Every failure is one line ``metainspect: <path>: <what is wrong>`` in flag words
(:func:`~metainspect.cli.options.error_line`); ``--debug`` adds the traceback. Anything else
(a bug) is not caught: it shows its traceback.
"""

import gc
import re
import sys
from typing import TYPE_CHECKING

import typer

from metainspect.cli.options import EXIT_UNUSABLE, error_line
from metainspect.errors import MetainspectError

if TYPE_CHECKING:
    import click

app = typer.Typer(
    name="metainspect",
    help=(
        "Inspect TensorFlow graphs (.meta, .pb, .pbtxt, SavedModel) and checkpoints "
        "(.index/.data, V1, TF2) without TensorFlow.\n\n"
        "PATH may be a file, a checkpoint prefix (model.ckpt-1000), a SavedModel directory or a "
        "directory with a `checkpoint` state file, local or a URL (s3://, gs://, https://; needs "
        "the remote extra). Tables go to the terminal; add --json for scripts.\n\n"
        "Exit codes: 0 ok, 1 findings, 2 unusable input."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click already says "Did you mean ...?" for a mistyped command; typer would say it again
    suggest_commands=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False, "json": False}


def _version(value: bool) -> None:
    if value:
        from metainspect import __version__

        print(f"metainspect {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    _state["debug"] = debug


def reflow_help() -> None:
    """Let each command's help wrap at the terminal's width instead of the docstring's.

    typer keeps a docstring's single line breaks, so text wrapped for the source wraps again,
    raggedly, on a narrower terminal. Each paragraph becomes one line (rich wraps it to fit);
    indented lines (examples) keep their breaks; RST literals (````x:0````) print as `x:0`.
    """
    import inspect

    for info in app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = _reflow(inspect.cleandoc(info.callback.__doc__))


#: a line that starts a topic of its own ("JSON: ...", "Exit codes: ...") keeps its line break
_LABEL = re.compile(r"^[A-Z][A-Za-z ]{0,20}: ")


def _reflow(text: str) -> str:
    paragraphs = []
    for paragraph in text.replace("``", "`").split("\n\n"):
        lines = paragraph.split("\n")
        if any(line.startswith(" ") for line in lines):  # an indented block: as written
            paragraphs.append(paragraph)
            continue
        joined = lines[0].strip()
        for line in lines[1:]:
            joined += ("\n" if _LABEL.match(line) else " ") + line.strip()
        paragraphs.append(joined)
    return "\n\n".join(paragraphs)


def _json_requested(args: list[str]) -> bool:
    """Whether the command line asks for JSON (``--json`` before any ``--``)."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def fail(message: str, code: int = EXIT_UNUSABLE, *, path: str | None = None, kind: str = "unusable") -> None:
    """Print one error line and exit (by default with the "unusable input" code).

    With ``--json``, stdout also gets the error as JSON (see :func:`error_document`), so a
    script reading stdout never gets nothing.
    """
    if _state["json"]:
        from metainspect.cli.render import emit_json

        emit_json(error_document(message, path=path, kind=kind))
    print(f"metainspect: {message}", file=sys.stderr)
    raise SystemExit(code)


def error_document(message: str, *, path: str | None, kind: str) -> dict[str, object]:
    """The JSON every ``--json`` command prints on stdout instead of its result when it fails.

    ``{"error": {"path": str | null, "message": str, "kind": str}}``: ``message`` is the line
    printed on stderr (path included), ``kind`` one of ``not_found``, ``wrong_kind``,
    ``corrupt``, ``unusable`` (anything else the input or arguments make impossible),
    ``usage`` (the command line itself is wrong) or ``findings`` (``export`` refused: check
    found errors).
    """
    return {"error": {"path": path, "message": message, "kind": kind}}


def _kind(exc: MetainspectError) -> str:
    from metainspect.errors import CorruptError, NotFoundError, TensorNotFoundError, WrongKindError

    for cls, kind in ((TensorNotFoundError, "not_found"), (NotFoundError, "not_found"),
                      (WrongKindError, "wrong_kind"), (CorruptError, "corrupt")):
        if isinstance(exc, cls):
            return kind
    return "unusable"


def usage_line(exc: "click.UsageError") -> str:
    """A click usage error as one line: ``<command>: <what is wrong> (see --help)``.

    The command is the one the user typed (``nodes``, ``vars``); at the top level there is none.
    """
    command = exc.ctx.command_path.split(" ", 1)[1] if exc.ctx and " " in exc.ctx.command_path else ""
    message = " ".join(exc.format_message().split())
    return f"{command}: {message} (see --help)" if command else f"{message} (see --help)"


def main() -> None:
    """Console-script entry point."""
    # A short-lived process building ~10^5 small objects: cyclic GC passes only cost time
    # (measured 0.8 s of 2.2 s on a 100k-node `nodes --json`); reference counting still frees.
    gc.disable()
    run()


def _quiet_closed_pipe() -> None:
    """The reader of stdout went away (``metainspect nodes ... | head -1``): stop quietly.

    Further writes (and the interpreter's last flush) go to /dev/null, so Python prints no
    "Exception ignored" line on the way out.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor behind stdout (in-process tests)
        pass


def run(args: list[str] | None = None, prog_name: str | None = None) -> None:
    """Run the command line on ``args`` (default ``sys.argv[1:]``) with the error handling users see.

    Always ends in ``SystemExit`` carrying the exit code; the tests call this in-process. A
    library error or a usage error becomes one line (in flag words) and exit code 2; with
    ``--debug`` the traceback comes first, the exit code stays. Any other exception is a bug and
    propagates. A closed stdout ends the command quietly with exit code 0.
    """
    import click

    from metainspect.cli.remote import remote_command

    argv = list(sys.argv[1:] if args is None else args)
    _state["json"] = _json_requested(argv)
    _state["debug"] = False  # set by the global option's callback
    try:
        with remote_command(app) as command:  # every command takes --storage-option and -v
            result = command(argv, prog_name=prog_name or "metainspect", standalone_mode=False)
    except MetainspectError as exc:
        if _state["debug"]:
            import traceback

            traceback.print_exc()
        fail(error_line(exc), path=exc.path, kind=_kind(exc))
    except click.exceptions.NoArgsIsHelpError:  # the help was printed: nothing to add
        raise SystemExit(EXIT_UNUSABLE) from None
    except click.UsageError as exc:
        if _state["debug"]:
            import traceback

            traceback.print_exc()
        fail(usage_line(exc), kind="usage")
    except click.ClickException as exc:  # e.g. a file option click could not open
        fail(" ".join(exc.format_message().split()), exc.exit_code)
    except BrokenPipeError:
        _quiet_closed_pipe()
        raise SystemExit(0) from None
    except SystemExit as exc:
        # click ends a command whose stdout closed with status 1, the findings code: a closed
        # pipe is how `| head` says "enough", not a finding
        if isinstance(exc.__context__, BrokenPipeError):
            _quiet_closed_pipe()
            raise SystemExit(0) from None
        raise
    except (KeyboardInterrupt, click.Abort):
        raise SystemExit(130) from None
    raise SystemExit(result if isinstance(result, int) else 0)
