"""No false positives: the security scan over every graph in sample_meta/ (the security corpus aside)
and in ../shared/real_models*/. Ordinary TF1/TF2 models, their savers, asset tables, ``tf.print`` to
stderr and in-memory ``tf.data`` get no security finding; the few models that do are pinned here,
each with what it really does."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from metainspect.check.findings import CheckContext
from metainspect.check.security import check_security
from metainspect.errors import MetainspectError
from metainspect.formats.detect import find_graph_file
from metainspect.graph.model import load_model

from helpers.paths import REAL_MODELS, REAL_MODELS_2, SAMPLES

SYNTAXNET = "SyntaxNet's own ops (LexiconBuilder, FeatureSize, *ParseReader, UnpackSparseFeatures…): TF refuses the " \
    "graph ('Op type not registered'); it runs native code from SyntaxNet's library, on the proposed outputs"
ESTIMATOR = "an Estimator's training graph: its input_fn globs and reads the training TFRecords from the author's " \
    "machine, and the proposal (ambiguous: no signature) serves outputs behind them; the warm-start " \
    "RestoreV2 ops (init_from_checkpoint) read another checkpoint only in a fresh start's init_op"
#: graph file (relative to its root) -> ({(id, severity, when): count}, why)
PINNED: dict[str, tuple[dict[tuple[str, str, str], int], str]] = {
    "samples/check/unsafe_ops/model.meta": (
        {("security.file-read", "warning", "serving"): 2, ("security.file-write", "info", "off_path"): 1,
         ("security.python-op", "info", "off_path"): 1},
        "built to hold them: the proposed output reads /etc/hostname and files a dataset maps over; a py_func and a "
        "WriteFile nothing served runs"),
    **{f"real_models_2/dsindex_syntaxnet/{name}": (counts, SYNTAXNET) for name, counts in [
        ("brain_parser_greedy/graph", {("security.native-code", "error", "serving"): 5}),
        ("brain_parser_greedy/latest-model.meta", {("security.native-code", "error", "serving"): 4,
                                                   ("security.native-code", "info", "off_path"): 1}),
        ("brain_parser_greedy/model.meta", {("security.native-code", "error", "serving"): 4,
                                            ("security.native-code", "info", "off_path"): 1}),
        ("parsey_universal_English/tokenizer-params.meta", {("security.native-code", "error", "serving"): 5}),
    ]},
    "real_models_2/supby_faced_test/opencv_face_detector.pbtxt": (
        {("security.native-code", "error", "serving"): 4},
        "OpenCV's own layer types (PriorBox, Flatten, DetectionOutput, L2Normalize), which no TensorFlow has"),
    **{f"real_models_2/lcferrara4_IPOpredictor/data_model/{name}": (
        {("security.file-read", "info", "off_path"): 1},
        "a DNNLinearCombinedClassifier's training graph: its input_fn reads ./data/ipo_data.csv, off the proposed path")
       for name in ("graph.pbtxt", "model.ckpt-3760.meta")},
    "real_models_2/tensorflow_tfx/estimator_model_dir/graph.pbtxt": (
        {("security.file-read", "warning", "serving"): 2, ("security.file-read", "info", "off_path"): 3}, ESTIMATOR),
    "real_models_2/tensorflow_tfx/estimator_model_dir/model.ckpt-1000.meta": (
        {("security.file-read", "warning", "serving"): 2, ("security.file-read", "info", "off_path"): 2}, ESTIMATOR),
}


def graph_files(root: Path, label: str) -> list[str]:
    """Every file of ``root`` that loads as a graph, as ``label/relative path`` (once per graph file)."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or (label == "samples" and "security" in path.relative_to(root).parts[:1]):
            continue
        try:
            graph = find_graph_file(str(path))
            load_model(graph)
        except MetainspectError:
            continue
        found.setdefault(str(Path(graph).resolve()), f"{label}/{Path(graph).relative_to(root)}")
    return sorted(found.values())


ROOTS = {"samples": SAMPLES, "real_models": REAL_MODELS, "real_models_2": REAL_MODELS_2}


@pytest.mark.parametrize("label", sorted(ROOTS))
def test_every_graph_is_clean_or_pinned(label: str) -> None:
    root = ROOTS[label]
    if not root.is_dir():
        pytest.skip(f"{root} not present (third-party models live beside the repo, not in it)")
    files = graph_files(root, label)
    assert files
    for name in files:
        findings = check_security(CheckContext(load_model(root / name.partition("/")[2])))
        counts = Counter((f.id, f.severity, f.details["when"]) for f in findings)
        expected, why = PINNED.get(name, ({}, "an ordinary model: nothing to report"))
        assert dict(counts) == expected, (name, why, [f.message for f in findings])
    assert {name for name in PINNED if name.startswith(f"{label}/")} <= set(files)
