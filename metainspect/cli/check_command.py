"""The check command: is a graph ready to restore its checkpoint and to serve?"""

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.cli.app import app
from metainspect.cli.options import (
    EXIT_FINDINGS,
    EXIT_OK,
    InputOpt,
    JsonOpt,
    OutputOpt,
    TagsOpt,
    fix_line,
    parse_pairs,
    parse_tags,
)
from metainspect.cli.render import emit_json, emit_lines, is_terminal

if TYPE_CHECKING:
    from metainspect.check.runner import Report

#: findings of one id printed in the human report; --json has them all
SHOWN_PER_ID = 20
_HEADINGS = {"error": "ERRORS", "warning": "WARNINGS", "info": "INFO"}
_STYLES = {"error": "bold red", "warning": "bold yellow", "info": "bold blue"}


@app.command("check")
def check(
    model: Annotated[str, typer.Argument(
        help="A .meta, a checkpoint prefix with its .meta beside it, or a SavedModel directory.",
        show_default=False)],
    checkpoint: Annotated[str | None, typer.Option(
        "--checkpoint", "-c", metavar="CKPT", show_default=False,
        help="Checkpoint to check against (default: the one beside the .meta, a SavedModel's own variables).")] = None,
    input_: InputOpt = None,
    output: OutputOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the check too (exit 1).")] = False,
    no_verify: Annotated[bool, typer.Option(
        "--no-verify", help="Skip reading the checkpoint's data back against its CRC32C checksums.")] = False,
    tags: TagsOpt = None,
    json: JsonOpt = False,
) -> None:
    """Check that a graph restores its checkpoint and can be served: a report and a verdict.

    Checks: the saver (SaverDef names exist; restore ops read the
    checkpoint's format); the restore (every key restored exists with the
    same dtype and shape, partitions included; closest keys for each missing
    one; keys nothing restores; the data matches its checksums); the graph
    (inputs name existing nodes and outputs); the signature (--input and
    --output, or proposed); serving (devices, ops stock TensorFlow lacks or
    has no CPU kernel for); security (Python, native code, network and file
    access, by when they run: serving, load time, off path).

    Examples:

      metainspect check model.ckpt-1000                 # its .meta and checkpoint

      metainspect check model.meta -c other/model.ckpt --strict

      metainspect check export/1 --input x=input:0 --output probs=probs:0 --json

    Every finding has an id (restore.missing-key), a severity, the node or
    key concerned and a fix. JSON: {schema_version, model, checkpoint, ready,
    exit_code, verdict, counts, findings: [{id, category, severity, message,
    subject, fix, details, remedy}], proposal}.

    Exit codes: 0 ready, 1 errors (or warnings with --strict), 2 could not check.
    """
    from metainspect.api import check as check_model
    from metainspect.cli.progress import progress_bars

    inputs = parse_pairs(input_ or [], "--input")
    outputs = parse_pairs(output or [], "--output")
    with progress_bars(enabled=not json) as progress:
        report = check_model(model, checkpoint, inputs=inputs, outputs=outputs, tags=parse_tags(tags),
                             verify=not no_verify, progress=progress)
    if json:
        emit_json(check_document(report, strict))
    else:
        emit_report(report, strict)
    raise typer.Exit(exit_code(report, strict))


def exit_code(report: "Report", strict: bool) -> int:
    """0 ready, 1 errors (or warnings with ``--strict``)."""
    return EXIT_OK if report.ready(strict) else EXIT_FINDINGS


def check_document(report: "Report", strict: bool) -> dict[str, Any]:
    """``check --json``: the report's data with the exit code after ``strict``."""
    document: dict[str, Any] = {}
    for key, value in report.to_json(strict).items():
        document[key] = value
        if key == "strict":
            document["exit_code"] = exit_code(report, strict)
    for finding, data in zip(report.findings, document["findings"], strict=True):
        data["fix"] = fix_line(finding)
    return document


def report_lines(report: "Report", strict: bool) -> list[tuple[str, str]]:
    """The human report as (style, text) lines: header, findings by severity, verdict."""
    ckpt = f"{report.checkpoint_path} ({report.checkpoint_format})" if report.checkpoint_path else \
        f"none ({report.checkpoint_problem})"
    lines = [("bold", f"model:      {report.model_path} ({report.model_kind})"), ("bold", f"checkpoint: {ckpt}")]
    lines += [("dim", f"note:       {note}") for note in report.checkpoint_notes]
    for severity, heading in _HEADINGS.items():
        group = [f for f in report.findings if f.severity == severity]
        if not group:
            continue
        lines += [("", ""), (_STYLES[severity], f"{heading} ({len(group)})")]
        shown: dict[str, int] = {}
        for finding in group:
            shown[finding.id] = shown.get(finding.id, 0) + 1
            if shown[finding.id] > SHOWN_PER_ID:
                continue
            lines.append(("bold", f"  {finding.id}" + (f": {finding.subject}" if finding.subject else "")))
            lines.append(("", f"      {finding.message}"))
            lines.append(("dim", f"      fix: {fix_line(finding)}"))
        for finding_id, count in shown.items():
            if count > SHOWN_PER_ID:
                lines.append(("dim", f"  … and {count - SHOWN_PER_ID} more {finding_id} (all of them with --json)"))
    verdict_style = "bold green" if report.ready(strict) else "bold red"
    lines += [("", ""), (verdict_style, report.verdict_line(strict))]
    return lines


def emit_report(report: "Report", strict: bool) -> None:
    """Print the human report: rich styles on a terminal, plain text when piped."""
    lines = report_lines(report, strict)
    if not is_terminal():
        emit_lines(text for _, text in lines)
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=sys.stdout)
    for style, text in lines:
        console.print(Text(text, style=style or ""), soft_wrap=False)
