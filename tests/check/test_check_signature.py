"""The signature check and proposal, on TF-written samples and real third-party models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.signature import check_signature
from metainspect.cli.options import fix_line
from metainspect.graph.attrs import shapes_compatible
from metainspect.graph.model import load_model
from metainspect.graph.proposal import Proposal, keyed_tensors, propose

from helpers.paths import SAMPLES

IO = SAMPLES / "check"
SERVING = "tensorflow_serving"


def run(path: Path | str, inputs: dict[str, str] | None = None,
        outputs: dict[str, str] | None = None) -> tuple[list[Finding], Proposal]:
    return check_signature(CheckContext(load_model(path), inputs=inputs or {}, outputs=outputs or {}))


def ids(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings]


def only(findings: list[Finding], finding_id: str) -> Finding:
    found = [f for f in findings if f.id == finding_id]
    assert len(found) == 1, ids(findings)
    return found[0]


# -- proposals ----------------------------------------------------------------------------------

def test_one_placeholder_one_output_is_unambiguous() -> None:
    findings, proposal = run(IO / "io_unambiguous" / "model.meta")
    assert proposal.inputs == {"input": "input:0"}
    assert proposal.outputs == {"output": "output:0"}
    assert proposal.unambiguous and proposal.confidence == "high" and proposal.source == "inferred"
    assert only(findings, "signature.proposed").severity == INFO
    spec = proposal.to_json()
    assert spec["inputs"]["input"] == {"tensor": "input:0", "dtype": "float32", "shape": [None, 4]}
    assert spec["outputs"]["output"]["dtype"] == "float32"


def test_outputs_needing_different_inputs_are_ambiguous() -> None:
    findings, proposal = run(IO / "io_ambiguous" / "model.meta")
    assert not proposal.unambiguous and proposal.confidence == "low"
    assert set(proposal.outputs.values()) == {"probs:0", "label:0", "similarity:0", "b_copy:0"}
    assert proposal.inputs == {"a": "a:0", "b": "b:0"}
    assert proposal.explain().endswith("choose the outputs")
    finding = only(findings, "signature.ambiguous")
    ranked = [c["tensor"] for c in finding.details["candidates"] if c["role"] == "output"]
    assert ranked[0] == "probs:0"  # output-named sink ranks first
    assert set(ranked) == {"probs:0", "label:0", "similarity:0", "b_copy:0"}


def test_given_input_narrows_the_outputs_to_what_it_feeds() -> None:
    findings, proposal = run(IO / "io_ambiguous" / "model.meta", inputs={"b": "b:0"})
    assert proposal.inputs == {"b": "b:0"}
    assert proposal.outputs == {"b_copy": "b_copy:0"}
    assert ERROR not in {f.severity for f in findings}


def test_mlp_proposes_x_to_prediction_probs_logits_leaving_out_the_loss() -> None:
    _, proposal = run(SAMPLES / "mlp")
    assert proposal.inputs == {"x": "x:0"}
    assert proposal.optional_inputs == {"keep_prob": "keep_prob:0"}
    assert set(proposal.outputs) == {"prediction", "probs", "logits"}
    assert next(iter(proposal.outputs)) == "prediction"
    assert proposal.unambiguous and proposal.confidence == "medium"  # something (the loss) was left out
    by_tensor = {c.tensor: c for c in proposal.candidates}
    assert by_tensor["loss:0"].score < 0 and "labels" in " ".join(by_tensor["loss:0"].reasons)
    assert by_tensor["labels:0"].role == "unused-input"
    assert by_tensor["keep_prob:0"].role == "optional-input"


def test_frozen_graph_has_nothing_to_leave_out() -> None:
    _, proposal = run(SAMPLES / "frozen" / "frozen.pb")
    assert proposal.inputs == {"x": "x:0"}
    assert set(proposal.outputs) == {"prediction", "probs", "logits"}
    assert proposal.confidence == "high"


def test_savedmodel_serving_default_is_the_proposal() -> None:
    findings, proposal = run(SAMPLES / "savedmodel_tf2")
    assert proposal.source == "signature" and proposal.unambiguous
    assert proposal.inputs == {"x": "serving_default_x:0"}
    assert proposal.outputs == {"y": "StatefulPartitionedCall:0"}
    assert not [f for f in findings if f.severity != INFO]


def test_the_only_signature_is_proposed_when_serving_default_is_missing() -> None:
    model = load_model(SAMPLES / "savedmodel_tf1")
    del model.meta_graph.signature_def["serving_default"]
    findings, proposal = check_signature(CheckContext(model))
    assert proposal.source == "signature" and proposal.confidence == "medium"
    assert proposal.inputs == {"inputs": "tf_example:0"} and set(proposal.outputs) == {"classes", "scores"}
    assert "signature.no-serving-default" in ids(findings)


def test_control_flow_plumbing_is_not_an_output() -> None:
    _, proposal = run(SAMPLES / "control_flow" / "control_flow.meta")
    assert proposal.outputs == {"result": "result:0"}
    assert proposal.inputs == {"x": "x:0"}


def test_no_candidates_says_so() -> None:
    _, proposal = run(IO / "partitioned_mismatch" / "model.meta")
    assert proposal.outputs == {} and not proposal.unambiguous
    assert proposal.explain().endswith("no output candidates found: name the outputs")


def test_proposal_is_memoised_per_model() -> None:
    model = load_model(IO / "io_unambiguous" / "model.meta")
    assert propose(model) is propose(model)


def test_unnamed_real_graph_is_not_unambiguous(real_models: Path) -> None:
    # CNN for MNIST: placeholders without names; the label placeholder feeds the cross-entropy
    _, proposal = run(real_models / "18375625301_CNN-for-Mnist" / "tmp.meta")
    assert proposal.inputs == {"Placeholder": "mnist_data/Placeholder:0"}
    assert proposal.outputs == {"ArgMax_1": "ArgMax_1:0"}
    assert not proposal.unambiguous


# -- given endpoints ----------------------------------------------------------------------------

def test_given_outputs_get_the_placeholders_they_need_as_inputs() -> None:
    findings, proposal = run(SAMPLES / "mlp", outputs={"probs": "probs:0"})
    assert not [f for f in findings if f.severity == ERROR]
    assert proposal.source == "given" and proposal.unambiguous
    assert proposal.inputs == {"x": "x:0"} and proposal.optional_inputs == {"keep_prob": "keep_prob:0"}


def test_missing_feed_lists_the_placeholder() -> None:
    findings, proposal = run(SAMPLES / "mlp", inputs={"x": "x:0"}, outputs={"loss": "loss:0"})
    finding = only(findings, "signature.missing-feed")
    assert finding.severity == ERROR and finding.subject == "labels"
    assert finding.details["needed_by"] == ["loss:0"] and finding.details["dtype"] == "int64"
    assert "--input labels=labels:0" in fix_line(finding) and "inputs={'labels': 'labels:0'}" in finding.fix
    assert not proposal.unambiguous


def test_missing_tensor_suggests_close_names() -> None:
    findings, _ = run(SAMPLES / "mlp", outputs={"p": "prob:0"})
    finding = only(findings, "signature.missing-tensor")
    assert finding.severity == ERROR and finding.details["suggestions"][0] == "probs:0"


def test_index_beyond_the_ops_outputs() -> None:
    findings, _ = run(SAMPLES / "mlp", outputs={"p": "probs:3"})
    finding = only(findings, "signature.bad-index")
    assert finding.severity == ERROR and finding.details["outputs"] == ["probs:0"]


def test_unused_and_non_placeholder_inputs() -> None:
    findings, _ = run(SAMPLES / "mlp", inputs={"x": "x:0", "labels": "labels:0"}, outputs={"p": "probs:0"})
    assert only(findings, "signature.unused-input").subject == "labels:0"
    findings, _ = run(SAMPLES / "mlp", inputs={"h": "Relu:0"}, outputs={"p": "probs:0"})
    assert only(findings, "signature.input-not-placeholder").severity == INFO
    assert "signature.missing-feed" not in ids(findings)  # feeding Relu cuts x off


def test_a_variable_handle_is_no_output() -> None:
    findings, _ = run(IO / "io_unambiguous" / "model.meta", outputs={"k": "hidden/kernel:0"})
    assert only(findings, "signature.unservable-output").details["dtype"] == "resource"


# -- stored SignatureDefs -----------------------------------------------------------------------

def _broken_savedmodel() -> CheckContext:
    model = load_model(SAMPLES / "savedmodel_tf1")
    sig = model.meta_graph.signature_def["serving_default"]
    sig.inputs["x"].dtype = 3  # int32, the placeholder is float32
    sig.outputs["probs"].name = "probz:0"
    del sig.inputs["x"]
    sig.inputs["keep"].name = "keep_prob:0"
    sig.inputs["keep"].dtype = 1
    return CheckContext(model)


def test_signature_defs_are_checked_against_the_graph() -> None:
    findings, _ = check_signature(_broken_savedmodel())
    missing = only(findings, "signature.missing-tensor")
    assert missing.subject == "probz:0" and "probs:0" in missing.details["suggestions"]
    feed = only(findings, "signature.missing-feed")
    assert feed.subject == "x" and "serving_default" in feed.message


def test_signature_dtype_mismatch() -> None:
    model = load_model(SAMPLES / "savedmodel_tf1")
    model.meta_graph.signature_def["serving_default"].inputs["x"].dtype = 3
    findings, _ = check_signature(CheckContext(model))
    finding = only(findings, "signature.dtype-mismatch")
    assert finding.details == {"declared": "int32", "graph": "float32"}


def test_good_savedmodel_signatures_pass() -> None:
    findings, proposal = run(SAMPLES / "savedmodel_tf1")
    assert ids(findings) == ["signature.proposed"]
    assert proposal.outputs == {"prediction": "prediction:0", "probs": "probs:0"}


def test_missing_serving_default_is_reported(real_models: Path) -> None:
    findings, _ = run(real_models / SERVING / "saved_model_counter" / "00000123")
    finding = only(findings, "signature.no-serving-default")
    assert finding.severity == WARNING and "incr_counter" in finding.details["signatures"]


def test_real_serving_signatures_with_wrong_types(real_models: Path) -> None:
    findings, _ = run(real_models / SERVING / "saved_model_half_plus_three" / "00000123")
    finding = only(findings, "signature.dtype-mismatch")
    assert finding.subject == "tf_example:0"
    assert only(findings, "signature.method-keys").subject == "tensorflow/serving/regress"
    # serving_default declares no shape: nothing to compare, no shape finding
    assert "signature.shape-mismatch" not in ids(findings)


# -- helpers and robustness ---------------------------------------------------------------------

def test_keys_are_last_components_made_unique() -> None:
    keys = keyed_tensors(["a/output:0", "b/output:0", "top_k:0", "top_k:1", "x:0"])
    assert keys == {"a_output": "a/output:0", "b_output": "b/output:0", "top_k": "top_k:0",
                    "top_k_1": "top_k:1", "x": "x:0"}


def test_shape_compatibility() -> None:
    assert shapes_compatible([None, 4], [8, 4]) and shapes_compatible(None, [1])
    assert not shapes_compatible([None, 4], [None, 5]) and not shapes_compatible([], [None, 1])


def _all_graphs(root: Path) -> list[Path]:
    metas = sorted(root.rglob("*.meta")) + sorted(root.rglob("saved_model.pb"))
    return metas + sorted(root.rglob("*.pb"))


@pytest.mark.parametrize("name", ["sample_meta", "real_models"])
def test_every_graph_gets_a_json_ready_proposal(name: str, request: pytest.FixtureRequest) -> None:
    root = SAMPLES if name == "sample_meta" else request.getfixturevalue("real_models")
    seen = 0
    for path in _all_graphs(root):
        if path.name in ("fingerprint.pb", "saved_model_config.pb"):
            continue
        findings, proposal = run(path)
        json.dumps(proposal.to_json())
        json.dumps([f.to_json() for f in findings])
        assert proposal.explain()
        seen += 1
    assert seen >= 10
