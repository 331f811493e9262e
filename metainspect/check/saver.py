"""Saver check: does the graph's SaverDef point at real ops, and can its restore ops read the checkpoint?

``Saver.restore`` feeds the checkpoint path to ``filename_tensor_name`` and runs
``restore_op_name``; ``Saver.save`` fetches ``save_tensor_name``. Restore ops decide which formats
can be read: ``RestoreV2`` reads V2 bundles and falls back to V1 files, while the legacy
``Restore``/``RestoreSlice`` ops read V1 files only (TF fails with "Unsuccessful
TensorSliceReader constructor" on a V2 checkpoint). The SaverDef's ``version`` is the format
the next save writes. Before any of that, ``import_meta_graph`` resolves every ``node_list``
collection entry and every VariableDef's names to graph nodes and fails on the first that
names no node, so no saver is ever made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.formats.graph_file import GRAPH_DEF
from metainspect.graph.collections import VARIABLE_COLLECTIONS
from metainspect.graph.ops import RESTORE_OPS, V1_RESTORE_OPS
from metainspect.graph.saver import OBJECT_GRAPH, SAVER, SAVER_VERSIONS, restore_plan, saved_keys

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import CollectionDef

    from metainspect.graph.model import Model, Node

_FIELDS = ("filename_tensor_name", "save_tensor_name", "restore_op_name")
#: node_list collections import_meta_graph skips with a warning (pre-1.0 variable collections)
_SKIPPED_NODE_LISTS = frozenset({"local_variables", "model_variables", "metric_variables"})
_VARIABLE_DEF_NAMES = ("variable_name", "initializer_name", "snapshot_name")


def check_saver(ctx: CheckContext) -> list[Finding]:
    """Findings ``saver.*``: no saver, dangling SaverDef names, format the restore ops cannot read."""
    model = ctx.model
    plan = restore_plan(model)
    dangling = _dangling_collections(model)
    if not model.meta_graph.HasField("saver_def"):
        if not plan.items:
            return dangling
        return dangling + [Finding(
            "saver.no-saver", INFO,
            f"the graph has no SaverDef, so import_meta_graph returns no saver; checked with the keys "
            f"tf.compat.v1.train.Saver() would use for its {len(plan.items)} variables (their names)", None,
            "after import_meta_graph, build the saver yourself: saver = tf.compat.v1.train.Saver()",
        )]
    out = dangling + _missing_tensors(model)
    if plan.source not in (SAVER, OBJECT_GRAPH) and plan.items and not out:
        restore_op = model.meta_graph.saver_def.restore_op_name
        out.append(Finding(
            "saver.no-restore-ops", WARNING,
            f"the SaverDef's restore op {restore_op} runs no RestoreV2/Restore/RestoreSlice op; checked with the "
            f"variables' own names as keys instead", restore_op,
            "re-export the graph with its Saver (tf.compat.v1.train.Saver().export_meta_graph) so the restore "
            "ops are recorded",
        ))
    if plan.source == SAVER and not out:
        out += _round_trip(model, {item.key for item in plan.items})
    out += _other_savers(model, plan.restore_ops)
    if ctx.checkpoint is not None and plan.source == SAVER:
        out += _format(model, plan.restore_ops, ctx.checkpoint.format.upper(), ctx.checkpoint.prefix)
    return out


def _missing_tensors(model: Model) -> list[Finding]:
    saver = model.meta_graph.saver_def
    out = []
    for field in _FIELDS:
        name = getattr(saver, field)
        if name and model.node(name) is not None:
            continue
        what = "is empty" if not name else "names no node of the graph"
        out.append(Finding(
            "saver.missing-tensor", ERROR,
            f"SaverDef.{field} {name!r} {what}: Saver.{'save' if field == 'save_tensor_name' else 'restore'} fails",
            name or field,
            "re-export the graph together with its saver (tf.compat.v1.train.Saver().export_meta_graph), or "
            "after import_meta_graph build a new one: tf.compat.v1.train.Saver()",
            {"field": field, "name": name},
        ))
    return out


def _dangling_collections(model: Model) -> list[Finding]:
    """Collection entries naming no node: ``import_meta_graph`` raises KeyError on them."""
    if model.kind == GRAPH_DEF:
        return []
    out = []
    names_of: dict[bytes, list[str]] = {}  # VariableDef bytes -> names (collections repeat them)
    for name in sorted(model.meta_graph.collection_def):
        refs = _collection_refs(model.meta_graph.collection_def[name], name, names_of)
        missing = list(dict.fromkeys(ref for ref in refs if model.node(ref) is None))
        if not missing:
            continue
        out.append(Finding(
            "saver.dangling-collection", ERROR,
            f"collection {name!r} names {', '.join(repr(m) for m in missing[:5])}, which "
            f"{'is' if len(missing) == 1 else 'are'} not in the graph: tf.compat.v1.train.import_meta_graph "
            f"fails (KeyError) before any saver exists", name,
            f"drop the collection before importing: meta = tf.compat.v1.MetaGraphDef(); "
            f"meta.ParseFromString(open(PATH, 'rb').read()); del meta.collection_def[{name!r}]; "
            f"tf.compat.v1.train.import_meta_graph(meta)",
            {"collection": name, "missing": missing},
        ))
    return out


def _collection_refs(collection: CollectionDef, name: str, names_of: dict[bytes, list[str]]) -> list[str]:
    """Node names a collection refers to, as import_meta_graph resolves them."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto.variable_pb2 import VariableDef

    kind = collection.WhichOneof("kind")
    if kind == "node_list" and name not in _SKIPPED_NODE_LISTS:
        return list(collection.node_list.value)
    if kind != "bytes_list" or name not in VARIABLE_COLLECTIONS:
        return []
    refs = []
    for data in collection.bytes_list.value:
        found = names_of.get(data)
        if found is None:
            try:
                vdef = VariableDef.FromString(data)
            except DecodeError:
                vdef = VariableDef()
            found = names_of[data] = [getattr(vdef, f) for f in _VARIABLE_DEF_NAMES if getattr(vdef, f)]
        refs += found
    return refs


def _round_trip(model: Model, restored: set[str]) -> list[Finding]:
    """Keys the save ops behind ``save_tensor_name`` write but the restore ops do not read, or the reverse."""
    save_ops, saved = saved_keys(model)
    if not save_ops:
        return []
    if saved == restored:
        return []
    unread, unsaved = sorted(saved - restored), sorted(restored - saved)
    parts = [f"writes {len(unread)} keys it never restores ({', '.join(unread[:3])})" if unread else "",
             f"restores {len(unsaved)} keys it never writes ({', '.join(unsaved[:3])})" if unsaved else ""]
    return [Finding(
        "saver.save-restore-mismatch", WARNING,
        f"the saver {' and '.join(p for p in parts if p)}: a checkpoint this graph saves does not restore into it",
        save_ops[0].name,
        "re-export the graph with a Saver built once over the variables it should keep "
        "(tf.compat.v1.train.Saver(var_list=...).export_meta_graph)",
        {"written_not_restored": unread, "restored_not_written": unsaved},
    )]


def _other_savers(model: Model, own: tuple[Node, ...]) -> list[Finding]:
    """Restore ops the SaverDef's restore op does not run (TFLearn keeps one saver per trainer)."""
    mine = {node.name for node in own}
    scope = model.saver_scope()
    others = sorted({n.name.rpartition("/")[0] + "/" for n in model.nodes()
                     if n.op in RESTORE_OPS and n.name not in mine})
    if not others:
        return []
    return [Finding(
        "saver.several-savers", INFO,
        f"the graph holds restore ops of {len(others)} other saver(s) ({', '.join(others)}); import_meta_graph "
        f"and this check use the SaverDef's ({scope or 'unscoped'})", scope,
        "nothing to do unless you restore with one of the others",
        {"saver_scope": scope, "other_scopes": others},
    )]


def _format(model: Model, restore_ops: tuple[Node, ...], checkpoint_format: str, prefix: str) -> list[Finding]:
    version = SAVER_VERSIONS.get(model.meta_graph.saver_def.version, str(model.meta_graph.saver_def.version))
    v1_only = [node for node in restore_ops if node.op in V1_RESTORE_OPS]
    if checkpoint_format == "V2" and v1_only:
        return [Finding(
            "saver.cannot-read-format", ERROR,
            f"the saver restores with legacy {v1_only[0].op} ops, which read V1 checkpoints only; "
            f"{prefix} is a V2 bundle, so TF fails (Unsuccessful TensorSliceReader constructor)", v1_only[0].name,
            "restore with a new saver, which uses RestoreV2 and reads both formats: after import_meta_graph, "
            "saver = tf.compat.v1.train.Saver(); saver.restore(sess, PREFIX)",
            {"saver_version": version, "checkpoint_format": checkpoint_format,
             "restore_ops": [node.name for node in v1_only]},
        )]
    writes_v2 = version == "V2"
    if writes_v2 == (checkpoint_format == "V2"):
        return []
    return [Finding(
        "saver.version-mismatch", INFO,
        f"the saver is {version} but {prefix} is a {checkpoint_format} checkpoint: its RestoreV2 ops read it anyway; "
        f"the next save writes {'V2' if writes_v2 else 'V1'}", model.meta_graph.saver_def.restore_op_name,
        "nothing to do for restoring",
        {"saver_version": version, "checkpoint_format": checkpoint_format},
    )]
