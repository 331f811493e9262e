"""Findings name no flag: a fix that is a metainspect operation carries it as a Remedy, worded as the
Python API by the library and as a command by the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from metainspect.check import run_checks
from metainspect.cli.options import command_line, fix_line
from metainspect.remedy import KEY_TENSOR, Remedy

from helpers.paths import SAMPLES

MODELS = sorted(p for p in (SAMPLES / "check").iterdir() if p.is_dir()) + \
    sorted(p for p in (SAMPLES / "security").iterdir() if p.is_dir())[:30] + [SAMPLES / "mlp", SAMPLES / "savedmodel_tf2"]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_library_findings_name_no_flag(path: Path) -> None:
    model = path / "model.meta" if (path / "model.meta").exists() else path
    for finding in run_checks(str(model)).findings:
        assert " --" not in finding.fix and "metainspect " not in finding.fix, finding
        assert " --" not in finding.message, finding
        if finding.remedy is not None:
            assert finding.remedy.text in finding.fix
            assert fix_line(finding).count("metainspect ") == 1


REMEDIES = [
    (Remedy("check", "m.meta", (("checkpoint", "PREFIX"),)),
     "check('m.meta', 'PREFIX')", "metainspect check m.meta --checkpoint PREFIX"),
    (Remedy("check", "m.meta", (("inputs", KEY_TENSOR), ("outputs", {"probs": "probs:0"}))),
     "check('m.meta', inputs={'KEY': 'TENSOR'}, outputs={'probs': 'probs:0'})",
     "metainspect check m.meta --input KEY=TENSOR --output probs=probs:0"),
    (Remedy("edit", "sm", (("remove_signature", "s"), ("add_signature", "s"), ("inputs", {"x": "x:0"}),
                           ("outputs", {"y": "y:0"}))),
     "load_model('sm').edit().remove_signature('s').add_signature('s', {'x': 'x:0'}, {'y': 'y:0'}).save(OUT)",
     "metainspect edit sm -o OUT --remove-signature s --add-signature s --input x=x:0 --output y=y:0"),
    (Remedy("edit", "m.meta", (("prune_to", ("a", "b")),)),
     "load_model('m.meta').edit().prune_to('a', 'b').save(OUT)", "metainspect edit m.meta -o OUT --prune-to a,b"),
    (Remedy("edit", "m.meta", (("clear_devices", True),)),
     "load_model('m.meta').edit().clear_devices().save(OUT)", "metainspect edit m.meta -o OUT --clear-devices"),
    (Remedy("rewrite", "ck", (("renames", ("a=b", "re:x=y")),)),
     "rewrite_checkpoint('ck', OUT, RewriteOptions(renames=('a=b', 're:x=y')))",
     "metainspect rewrite ck -o OUT --rename 'a=b' --rename 're:x=y'"),
    (Remedy("rewrite", "ck", (("cast", ("float16", "float32")),)),
     "rewrite_checkpoint('ck', OUT, RewriteOptions(cast=('float16', 'float32')))",
     "metainspect rewrite ck -o OUT --cast float16:float32"),
    (Remedy("rewrite", "ck", (("drop", ("^x$",)),)), "rewrite_checkpoint('ck', OUT, RewriteOptions(drop=('^x$',)))",
     "metainspect rewrite ck -o OUT --drop '^x$'"),
    (Remedy("rewrite", "ck", (("drop_optimizer", True),)),
     "rewrite_checkpoint('ck', OUT, RewriteOptions(drop_optimizer=True))", "metainspect rewrite ck -o OUT --drop-optimizer"),
    (Remedy("verify", "ck"), "open_checkpoint('ck').verify()", "metainspect verify ck"),
    (Remedy("nodes", "m.pb"), "load_model('m.pb').nodes()", "metainspect nodes m.pb"),
    (Remedy("export", "m.meta"), "export_saved_model('m.meta', OUT)", "metainspect export m.meta -o OUT"),
]


@pytest.mark.parametrize(("remedy", "api", "command"), REMEDIES, ids=lambda v: getattr(v, "action", ""))
def test_each_remedy_in_api_and_command_words(remedy: Remedy, api: str, command: str) -> None:
    assert remedy.text == api
    assert command_line(remedy) == command


def test_remedy_json_is_plain_data() -> None:
    remedy = Remedy("edit", "sm", (("prune_to", ("a",)), ("inputs", {"x": "x:0"}), ("clear_devices", True)))
    assert remedy.to_json() == {"action": "edit", "target": "sm",
                                "options": {"prune_to": ["a"], "inputs": {"x": "x:0"}, "clear_devices": True}}
