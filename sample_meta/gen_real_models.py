"""What TensorFlow 2.21 itself says about every file in ``../shared/real_models_2``.

Called from ``generate.py`` (sample ``real_models_2_tf``). The third-party files stay outside the
repo; this only records TF's verdicts in ``real_models_2_tf/golden.json`` so that metainspect's
tests can check that it agrees with TF (loads what TF loads; names the same failure where TF
fails). Each file gets the loaders that apply to its kind: ``tf.saved_model.load`` and the TF1
loader for SavedModels, ``import_meta_graph`` + ``Saver.restore`` for ``.meta`` files,
``tf.train.load_checkpoint`` + reading every tensor for checkpoints, ``get_checkpoint_state`` for
state files, ``GraphDef`` parsing + ``import_graph_def`` for graphs. An error is recorded as its
class and first line. The shared folder is ``<repo>/../shared`` or ``$METAINSPECT_SHARED``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf
from generate import ROOT, fresh_dir, write_json
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

v1 = tf.compat.v1
JSON = dict[str, Any]
OUT = "real_models_2_tf"
GRAPH_NAMES = {"graph", "expected_graph"}
NOT_TF = {".json", ".md"}


def shared_dir() -> Path:
    env = os.environ.get("METAINSPECT_SHARED")
    path = Path(env) if env else ROOT.parent.parent / "shared"
    return path / "real_models_2"


# lines of a TF error message that say what is wrong when the first line is a generic wrapper
CAUSE = re.compile(r"No OpKernel|Op type not registered|Unknown input|Data ?loss|checksum|crc|not found|"
                   r"No such file|appears more than once|Key .* not found|bad magic", re.IGNORECASE)


def portable(text: str) -> str:
    """The message without this machine's folder and host name, and without the tensor TF names
    in "appears more than once" (TF picks one of several duplicates, differently from run to run)."""
    text = text.replace(str(shared_dir()), "real_models_2")
    text = text.replace(f"running on {socket.gethostname()}", "running on <host>")
    return re.sub(r"TF_Output \S+ appears more than once", "TF_Output <tensor> appears more than once", text)


def said(exc: BaseException) -> JSON:
    lines = [portable(ln.strip()) for ln in str(exc).splitlines() if ln.strip()]
    out = {"error": f"{type(exc).__name__}: {lines[0] if lines else ''}"[:400]}
    cause = next((ln for ln in lines[1:] if CAUSE.search(ln)), None)
    if cause:
        out["cause"] = cause[:400]
    return out


def attempt(api: str, action: Callable[[], JSON | None]) -> JSON:
    try:
        facts = action() or {}
    except Exception as exc:  # noqa: BLE001  (TF's error is the fact recorded)
        return {"api": api, "ok": False, **said(exc)}
    return {"api": api, "ok": True, **{k: portable(v) if isinstance(v, str) else v for k, v in facts.items()}}


def placeholder_facts(graph_def: Any, graph: tf.Graph) -> list[JSON]:
    """Placeholders whose ``shape`` attr is present but has no dims: what shape TF gives them."""
    out = []
    for node in graph_def.node:
        if node.op != "Placeholder" or "shape" not in node.attr:
            continue
        shape = node.attr["shape"].shape
        if shape.unknown_rank or shape.dim:
            continue
        tf_shape = graph.get_operation_by_name(node.name).outputs[0].shape
        recorded = None
        if "_output_shapes" in node.attr:  # TF's importer may take the shape from here
            recorded = [tf.TensorShape(s).as_list() if not s.unknown_rank else None
                        for s in node.attr["_output_shapes"].list.shape]
        out.append({"node": node.name, "shape_attr": "[] (no dims, rank not unknown)",
                    "output_shapes_attr": recorded,
                    "tf_shape": None if tf_shape.rank is None else tf_shape.as_list()})
    return out


def import_graph(graph_def: Any) -> JSON:
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        return {"nodes": len(graph_def.node), "producer": graph_def.versions.producer,
                "empty_shape_placeholders": placeholder_facts(graph_def, graph)}


def parse_graph(path: Path) -> Any:
    data = path.read_bytes()
    if path.suffix == ".pbtxt":
        return text_format.Parse(data.decode("utf-8"), v1.GraphDef())
    return v1.GraphDef.FromString(data)


def read_all(prefix: str) -> JSON:
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    for name in names:
        reader.get_tensor(name)
    return {"tensors": len(names)}


def restore_meta(meta: Path, prefix: str) -> JSON:
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as sess:
        saver = v1.train.import_meta_graph(str(meta), clear_devices=True)
        saver.restore(sess, prefix)
    return {}


def import_meta(meta: Path) -> JSON:
    with tf.Graph().as_default():
        v1.train.import_meta_graph(str(meta), clear_devices=True)  # TF's verdict on the file itself
    raw = meta_graph_pb2.MetaGraphDef.FromString(meta.read_bytes())
    with tf.Graph().as_default() as graph:
        v1.train.import_meta_graph(raw, clear_devices=True)
        return {"nodes": len(raw.graph_def.node), "producer": raw.graph_def.versions.producer,
                "empty_shape_placeholders": placeholder_facts(raw.graph_def, graph)}


def load_tf1(export_dir: Path) -> JSON:
    sm = saved_model_pb2.SavedModel.FromString((export_dir / "saved_model.pb").read_bytes())
    tags = list(sm.meta_graphs[0].meta_info_def.tags)
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as sess:
        v1.saved_model.load(sess, tags, str(export_dir))
    return {"tags": tags}


def is_checkpoint_prefix(prefix: Path) -> bool:
    return Path(str(prefix) + ".index").exists() or (prefix.is_file() and not prefix.suffix)


def survey_file(path: Path) -> JSON:
    name = path.name
    attempts: list[JSON] = []
    kind = "other"
    if path.suffix in NOT_TF or "/assets/" in str(path) or name == "SOURCES.md":
        pass
    elif name == "saved_model.pb":
        kind = "saved_model"
        d = path.parent
        attempts.append(attempt("SavedModel.FromString", lambda: {
            "meta_graphs": len(saved_model_pb2.SavedModel.FromString(path.read_bytes()).meta_graphs)}))
        attempts.append(attempt("tf.saved_model.load", lambda: tf.saved_model.load(str(d)) and {}))
        attempts.append(attempt("tf.compat.v1.saved_model.load", lambda: load_tf1(d)))
    elif name == "checkpoint":
        kind = "checkpoint_state"
        attempts.append(attempt("tf.train.get_checkpoint_state", lambda: {
            "model_checkpoint_path": tf.train.get_checkpoint_state(str(path.parent)).model_checkpoint_path}))
        attempts.append(attempt("tf.train.latest_checkpoint", lambda: {
            "latest": tf.train.latest_checkpoint(str(path.parent))}))
    elif path.suffix == ".meta":
        kind = "meta_graph"
        attempts.append(attempt("tf.compat.v1.train.import_meta_graph", lambda: import_meta(path)))
        prefix = path.with_suffix("")
        if is_checkpoint_prefix(prefix):
            attempts.append(attempt("import_meta_graph + Saver.restore", lambda: restore_meta(path, str(prefix))))
    elif path.suffix == ".index":
        kind = "checkpoint_v2"
        prefix = str(path.with_suffix(""))
        attempts.append(attempt("tf.train.load_checkpoint + get_tensor (all)", lambda: read_all(prefix)))
    elif ".data-" in name:
        kind = "checkpoint_data"  # read through its .index
    elif path.suffix in (".pb", ".pbtxt") or name in GRAPH_NAMES:
        kind = "graph_def"
        attempts.append(attempt("GraphDef parse + import_graph_def", lambda: import_graph(parse_graph(path))))
    elif not path.suffix:
        kind = "checkpoint_v1"
        attempts.append(attempt("tf.train.load_checkpoint + get_tensor (all)", lambda: read_all(str(path))))
    return {"kind": kind, "bytes": path.stat().st_size, "attempts": attempts}


def sample_real_models_2_tf() -> None:
    src = shared_dir()
    if not src.is_dir():
        raise SystemExit(f"{src} not found: set METAINSPECT_SHARED to the folder holding real_models_2")
    out = fresh_dir(OUT)
    files = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = str(path.relative_to(src))
        files[rel] = survey_file(path)
        print(rel, [a.get("error", "ok") for a in files[rel]["attempts"]], flush=True)
    write_json(out / "golden.json", {"tf_version": tf.__version__, "source": "../shared/real_models_2",
                                     "paths": "relative to real_models_2; errors: class and first line, "
                                              "cause: the line naming what is wrong when the first does not",
                                     "files": files})
