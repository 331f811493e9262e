"""The security scan against the TF-built corpus (sample_meta/security, golden.json): every payload is
found where TensorFlow put it, with its capability, the severity of when it runs and what it touches;
nothing else is flagged; the benign controls get no security finding at all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from metainspect.check import run_checks
from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.security import check_security
from metainspect.graph.model import load_model

from helpers.paths import SAMPLES

GOLDEN = json.loads((SAMPLES / "security" / "golden.json").read_text())
CASES = {c["name"]: c for c in GOLDEN["cases"]}
BENIGN = {b["name"]: b for b in GOLDEN["benign"]}
#: what a capability weighs when something served or loaded runs it (off path: info)
RUNNING = {"python": ERROR, "native": ERROR, "network": ERROR, "file_write": WARNING, "file_read": WARNING}
#: where the generator stored a nested GraphDef -> how the scan says it found it
ENCODING = {"plain": "plain", "long_string": "plain", "library_first": "plain", "base64": "base64"}


def scan(path: str) -> list[Finding]:
    return check_security(CheckContext(load_model(SAMPLES / path)))


def located(finding: Finding, payload: dict[str, Any]) -> bool:
    nested = finding.details["nested_in"]
    return (finding.subject == payload["node"] and finding.details["function"] == payload["function"]
            and (nested is None) == (payload["nested_in"] is None))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_payload_is_found_where_it_hides(name: str) -> None:
    case = CASES[name]
    findings = scan(case["path"])
    for payload in case["payload"]:
        (found,) = [f for f in findings if located(f, payload)]
        assert found.details["capability"] == case["capability"], found.message
        assert found.details["when"] == case["when"], found.message
        assert found.severity == (INFO if case["when"] == "off_path" else RUNNING[case["capability"]])
        assert found.id == {"python": "security.python-op", "native": "security.native-code",
                            "network": "security.network", "file_write": "security.file-write",
                            "file_read": "security.file-read"}[case["capability"]]
        if case["capability"] == "python":  # the callback's token
            assert found.details["targets"] == [f"token {payload['target']}"], found.details
        elif case["capability"] != "native":
            assert payload["target"] in found.details["targets"], found.details
        if payload["nested_in"]:
            nested = found.details["nested_in"]
            assert nested["node"] == payload["nested_in"]["node"] and nested["depth"] == 1
            assert nested["element"] == payload["nested_in"]["element"]
            assert nested["encoding"] == ENCODING[payload["nested_in"]["encoding"]]
        phrase = {"serving": "it runs on a served path (", "load_time": "it runs at load time (",
                  "off_path": "it runs only off the served path ("}
        assert phrase[case["when"]] in found.message
    # the payload and nothing else
    assert sorted(f.subject for f in findings) == sorted(p["node"] for p in case["payload"])


@pytest.mark.parametrize("name", ["fw_tf1_main_op", "net_tf1_legacy_init_op", "py_tf1_restore_hook",
                                  "fr_tf2_init_op", "nat_tf2_restore_fn", "fw_saved_method", "fr_off_path"])
def test_the_message_names_what_runs_it(name: str) -> None:
    hooks = {
        "fw_tf1_main_op": "collection saved_model_main_op",
        "net_tf1_legacy_init_op": "collection legacy_init_op",
        "py_tf1_restore_hook": "the SaverDef's restore op save/restore_all",
        "fr_tf2_init_op": "the loader's init op, signature __saved_model_init_op",
        "nat_tf2_restore_fn": "restore function of object 'state'",
        "fw_saved_method": "saved function 'calibrate', callable on the loaded model",
        "fr_off_path": "collection saved_model_train_op: training",
    }
    findings = scan(CASES[name]["path"])
    assert any(f.details["hook"] == hooks[name] and hooks[name] in f.message for f in findings), \
        [f.message for f in findings]


def test_a_decoy_save_scope_is_not_the_savers() -> None:
    """save_1/SaveV2 writing a constant path is flagged; a Saver of its own named save_1 is not."""
    (decoy,) = scan(CASES["fw_graph_decoy_save_1"]["path"])
    assert decoy.subject == "save_1/SaveV2" and decoy.severity == WARNING
    assert scan(BENIGN["benign_tf1_saver_save_1"]["path"]) == []


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_controls_have_no_security_finding(name: str) -> None:
    entry = BENIGN[name]
    path = SAMPLES / entry["path"]
    report = run_checks(str(path / "model.meta") if (path / "model.meta").exists() else str(path))
    assert [f.id for f in report.findings if f.category == "security"] == [] == scan(
        entry["path"] + ("/model.meta" if (path / "model.meta").exists() else ""))


def test_check_is_not_ready_when_served_or_loaded_code_can_run() -> None:
    """Python, native code and the network served or at load time fail the check; files warn;
    off-path payloads inform."""
    for name, ready in [("py_graph", False), ("nat_tf1_main_op", False), ("net_tf2_init_op", False),
                        ("fw_graph", True), ("fr_tf1_restore_hook", True), ("py_off_path", True)]:
        report = run_checks(str(SAMPLES / CASES[name]["path"]))
        security = {f.severity for f in report.findings if f.category == "security"}
        assert (ERROR not in security) is ready, name
        if not ready:
            assert not report.ready()
