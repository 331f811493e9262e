"""What a user meets when something is wrong: one line, the right exit code, JSON when asked.

Usage errors are one line naming the command and flag (no boxed panels), a mistyped command is
suggested once, ``--debug`` keeps exit 2, and every ``--json`` command answers unusable input
with an error object on stdout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from helpers.cli import Cli
from helpers.paths import SAMPLES

META = str(SAMPLES / "mlp" / "model.ckpt-3.meta")
CKPT = str(SAMPLES / "mlp" / "model.ckpt-3")


def _json_commands() -> list[str]:
    from metainspect.cli import app

    group = typer.main.get_command(app)
    return [name for name, command in group.commands.items()  # type: ignore[attr-defined]
            if any("--json" in p.opts for p in command.params)]


@pytest.mark.parametrize(("args", "line"), [
    (["nodes", META, "--match", "["],
     "metainspect: nodes: Invalid value for --match: invalid regular expression '[': "
     "unterminated character set at position 0 (see --help)"),
    (["vars", CKPT, "--sort", "bogus"], "metainspect: vars: Invalid value for --sort: must be name or size (see --help)"),
    (["edit", META], "metainspect: edit: no edit given: name at least one, e.g. --clear-devices or "
                     "--rename OLD=NEW (see --help)"),
    (["nodes", META, "--bogus"], "metainspect: nodes: No such option '--bogus'. (Did you mean one of: '--tags', "
                                      "'--verbose'?) (see --help)"),
    (["nodes"], "metainspect: nodes: Missing argument 'PATH'. (see --help)"),
])
def test_usage_errors_are_one_line_naming_the_command_and_flag(cli: Cli, args: list[str], line: str) -> None:
    result = cli(*args)
    assert result.code == 2
    assert result.stderr == line + "\n"
    assert "╭" not in result.stderr and result.stdout == ""


def test_a_mistyped_command_is_suggested_once(cli: Cli) -> None:
    result = cli("vras", CKPT)
    assert result.code == 2
    assert result.stderr == "metainspect: No such command 'vras'. Did you mean 'vars'? (see --help)\n"


def test_debug_keeps_the_exit_code_of_unusable_input(cli: Cli, tmp_path: Path) -> None:
    result = cli("--debug", "info", str(tmp_path / "nope.meta"))
    assert result.code == 2 and "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == f"metainspect: {tmp_path / 'nope.meta'}: no such file or directory"


def test_debug_keeps_the_exit_code_of_a_usage_error(cli: Cli) -> None:
    result = cli("--debug", "vars", CKPT, "--sort", "bogus")
    assert result.code == 2 and result.stderr.splitlines()[-1].startswith("metainspect: vars: Invalid value")


def test_every_command_has_json() -> None:
    """The JSON error contract below covers every command taking --json (the list is read from the app)."""
    assert {"check", "vars", "show", "verify", "info", "nodes", "convert", "export", "graph", "rewrite"} <= set(
        _json_commands())


@pytest.mark.parametrize("command", _json_commands())
def test_json_commands_print_an_error_object_on_unusable_input(cli: Cli, command: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.meta")
    extra = {"show": ["w"], "convert": ["-o", str(tmp_path / "out.npz")], "export": ["-o", str(tmp_path / "sm")],
             "rewrite": ["-o", str(tmp_path / "out")], "refs": ["-o", str(tmp_path / "refs.json")], "edit": ["--clear-devices", "-o", str(tmp_path / "e.meta")],
             "graph": ["--dot", str(tmp_path / "g.dot")], "diff": [str(SAMPLES / "mlp")]}.get(command, [])
    result = cli(command, missing, *extra, "--json")
    assert result.code == 2, result.stderr
    error = result.json()["error"]
    assert error["kind"] == "not_found" and error["path"] == missing
    assert error["message"].startswith(f"{missing}: ")
    assert result.stderr == f"metainspect: {error['message']}\n"


def test_json_usage_errors_are_json_too(cli: Cli) -> None:
    result = cli("vars", CKPT, "--sort", "bogus", "--json")
    assert result.code == 2
    assert result.json() == {"error": {"path": None, "kind": "usage",
                                       "message": "vars: Invalid value for --sort: must be name or size (see --help)"}}


def test_json_error_of_a_wrong_kind_of_file(cli: Cli) -> None:
    result = cli("vars", META, "--json")
    assert result.code == 2
    assert result.json()["error"]["kind"] == "wrong_kind"


def test_export_refusals_are_json_too(cli: Cli, tmp_path: Path) -> None:
    ambiguous = cli("export", str(SAMPLES / "check" / "io_ambiguous"), "-o", str(tmp_path / "a"), "--json")
    assert ambiguous.code == 2
    assert ambiguous.json()["error"]["kind"] == "unusable"
    assert "cannot choose the serving signature" in ambiguous.json()["error"]["message"]
    refused = cli("export", str(SAMPLES / "check" / "shape_changed"), "-o", str(tmp_path / "b"), "--json")
    assert refused.code == 1
    assert refused.json()["error"]["kind"] == "findings"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
