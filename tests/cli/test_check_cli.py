"""`metainspect check` as a user (or a CI step) runs it: report, JSON, exit codes, usage errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metainspect.check import Finding, Report, run_checks
from metainspect.check.findings import ERROR, INFO, WARNING
from metainspect.cli.check_command import SHOWN_PER_ID, exit_code, report_lines
from metainspect.cli.options import parse_pairs

from helpers.cli import Cli
from helpers.paths import SAMPLES

CHECK = SAMPLES / "check"
RENAMED = str(CHECK / "renamed_scope" / "model.meta")


def test_report_groups_by_severity_and_ends_with_the_verdict(cli: Cli) -> None:
    result = cli("check", RENAMED)
    assert result.code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("model:      ") and lines[1].endswith("model.ckpt (V2)")
    headings = [line for line in lines if line.split(" (")[0] in ("ERRORS", "WARNINGS", "INFO")]
    assert headings == ["ERRORS (4)", "WARNINGS (4)", headings[2]] and headings[2].startswith("INFO (")
    first = lines.index("ERRORS (4)")
    assert lines[first + 1:first + 4] == [
        "  restore.missing-key: net/dense1/bias",
        "      the graph restores net/dense1/bias (float32 [8]) but the checkpoint has no such key; "
        "closest: model/dense1/bias (scope prefix moved: net/ -> model/)",
        f"      fix: rename in the checkpoint: metainspect rewrite {CHECK / 'renamed_scope' / 'model.ckpt'} "
        "-o OUT --rename 'model=net'",
    ]
    assert lines[-1] == "NOT READY: 4 errors, 4 warnings"


def test_json_document(cli: Cli) -> None:
    result = cli("check", RENAMED, "--json")
    assert result.code == 1
    doc = result.json()
    assert doc["schema_version"] == 1 and doc["ready"] is False and doc["exit_code"] == 1
    assert doc["model"] == RENAMED and doc["checkpoint"].endswith("renamed_scope/model.ckpt")
    assert doc["checkpoint_format"] == "V2" and doc["checkpoint_problem"] is None
    assert doc["counts"]["error"] == 4 and doc["verdict"] == "NOT READY: 4 errors, 4 warnings"
    severities = [f["severity"] for f in doc["findings"]]
    assert severities == sorted(severities, key=[ERROR, WARNING, INFO].index)
    assert set(doc["findings"][0]) == {"id", "category", "severity", "message", "subject", "fix", "details", "remedy"}
    rename = next(f for f in doc["findings"] if f["id"] == "restore.missing-key")
    assert rename["remedy"] == {"action": "rewrite", "target": doc["checkpoint"], "options": {"renames": ["model=net"]}}
    assert rename["fix"].endswith(f"metainspect rewrite {doc['checkpoint']} -o OUT --rename 'model=net'")
    assert doc["proposal"]["outputs"]  # the signature check's proposal rides along


def test_ready_pair_exits_zero(cli: Cli) -> None:
    result = cli("check", str(CHECK / "partitioned_mismatch" / "model.meta"))
    assert result.code == 0 and result.stdout.splitlines()[-1].startswith("READY: 0 errors")


def test_strict_makes_warnings_fail(cli: Cli) -> None:
    """functions.meta has variables but no checkpoint beside it: a warning, not an error."""
    path = str(SAMPLES / "functions" / "functions.meta")
    report = run_checks(path)
    assert report.errors == 0 and any(f.id == "restore.no-checkpoint" for f in report.findings)
    assert cli("check", path).code == 0
    strict = cli("check", path, "--strict", "--json")
    assert strict.code == 1 and strict.json()["ready"] is False and strict.json()["strict"] is True
    assert strict.json()["verdict"].startswith("NOT READY (strict: warnings count)")


def test_checkpoint_option_overrides_the_default(cli: Cli) -> None:
    fixed = cli("check", RENAMED, "--checkpoint", str(CHECK / "io_unambiguous" / "model.ckpt"), "--json").json()
    assert fixed["checkpoint"].endswith("io_unambiguous/model.ckpt")
    assert {f["subject"] for f in fixed["findings"] if f["id"] == "restore.unused-key"} == {
        "hidden/bias", "hidden/kernel", "out/bias", "out/kernel"}


def test_endpoints_are_passed_to_the_signature_check(cli: Cli) -> None:
    doc = cli("check", str(CHECK / "io_ambiguous" / "model.meta"), "--input", "a=a:0", "--input", "b=b:0",
                  "--output", "probs=probs:0", "--json").json()
    assert doc["proposal"]["source"] == "given"
    assert set(doc["proposal"]["inputs"]) == {"a", "b"} and set(doc["proposal"]["outputs"]) == {"probs"}


def test_usage_errors_are_one_line_and_exit_2(cli: Cli) -> None:
    for args in (["--input", "x"], ["--output", "=y:0"], ["--input", "x=a:0", "--input", "x=b:0"]):
        result = cli("check", RENAMED, *args)
        assert result.code == 2 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("metainspect: --")
    for args in ([str(SAMPLES / "nope.meta")], [RENAMED, "--checkpoint", str(SAMPLES / "nope")],
                 [str(SAMPLES / "ckpt_tf2" / "ckpt-1")]):
        result = cli("check", *args)
        assert result.code == 2 and len(result.stderr.splitlines()) == 1, result.stderr


def test_parse_endpoints() -> None:
    assert parse_pairs(["x=input:0", " y = out "], "--input") == {"x": "input:0", "y": "out"}


def test_report_lines_and_verdicts() -> None:
    finding = Finding("restore.unused-key", WARNING, "m", "k", "f")
    report = Report("g.meta", None, [Finding("saver.no-saver", INFO, "i", None, "f"), finding],
                    model_kind="meta_graph", checkpoint_problem="none here")
    assert report.findings[0] is finding and (report.errors, report.warnings, report.infos) == (0, 1, 1)
    assert report.verdict == "READY: 0 errors, 1 warning" and exit_code(report, False) == 0 and exit_code(report, True) == 1
    text = [t for _, t in report_lines(report, strict=False)]
    assert text[1] == "checkpoint: none (none here)"
    assert text[text.index("WARNINGS (1)") + 1] == "  restore.unused-key: k" and text[-1] == report.verdict
    failing = Report("g.meta", None, [Finding("restore.missing-key", ERROR, "m", "k", "f")] * 2)
    assert failing.verdict == "NOT READY: 2 errors, 0 warnings" and exit_code(failing, False) == 1


def test_cli_start_up_does_not_import_the_checks() -> None:
    code = ("import sys, metainspect.cli; "
            "print(sorted(m for m in sys.modules if m.startswith('metainspect.check')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_corrupt_checkpoint_beside_the_graph_cannot_be_checked(tmp_path: Path, cli: Cli) -> None:
    for name in ("model.meta", "model.ckpt.index", "model.ckpt.data-00000-of-00001", "checkpoint"):
        shutil.copy(CHECK / "renamed_scope" / name, tmp_path / name)
    index = tmp_path / "model.ckpt.index"
    index.write_bytes(index.read_bytes()[:-20])
    result = cli("check", str(tmp_path / "model.meta"))
    assert result.code == 2 and result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr


def test_report_shows_a_bounded_number_of_findings_per_id() -> None:
    many = [Finding("restore.missing-key", ERROR, f"m{i}", f"k{i}", "f") for i in range(SHOWN_PER_ID + 5)]
    text = [t for _, t in report_lines(Report("g.meta", "ckpt", many, checkpoint_format="V2"), strict=False)]
    assert sum(t.startswith("  restore.missing-key: ") for t in text) == SHOWN_PER_ID
    assert "  … and 5 more restore.missing-key (all of them with --json)" in text


def test_terminal_report_goes_through_rich(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import metainspect.cli.check_command as command

    monkeypatch.setattr(command, "is_terminal", lambda: True)
    report = Report("g.meta", None, [Finding("restore.missing-key", ERROR, "m [x]", "k", "f")])
    command.emit_report(report, strict=False)
    out = capsys.readouterr().out
    assert "restore.missing-key: k" in out and "m [x]" in out  # names are printed verbatim, not as markup
    assert out.rstrip().endswith("NOT READY: 1 error, 0 warnings")
