"""Restore check: will the graph's saver find every variable in the checkpoint, as it stands?

The keys come from the saver's real mapping (:func:`metainspect.graph.saver.restore_plan`:
the saver's restore ops, else a TF2 SavedModel's object graph, else the keys
``tf.compat.v1.train.Saver()`` would build from the graph's variables).

TF1 savers fail on any missing key, dtype or (for ref variables) shape, so those are errors;
when the checkpoint is object-based (TF2) and keys are missing, TF's name-based Saver falls
back to the object graph's ``full_name`` attributes, and so does this check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.check.key_matching import KeyMatcher, Suggestion, rename_rule, scope_move, shapes_match
from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.checkpoint.roles import BOOKKEEPING, MODEL, OPTIMIZER, classify
from metainspect.graph.ops import VARIABLE_OPS
from metainspect.graph.saver import OBJECT_GRAPH, SAVER, RestoreItem, RestorePlan, restore_plan
from metainspect.progress import silent
from metainspect.remedy import Remedy

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint, CorruptTensor, TensorInfo
    from metainspect.graph.model import Model
    from metainspect.progress import Progress

#: dtypes `metainspect rewrite --cast` converts between
_FLOATS = frozenset({"float16", "bfloat16", "float32", "float64"})
#: missing or unused keys listed by name in one aggregated message
_LISTED = 5
_LAYOUT = "restore.partition-layout"


def check_restore(ctx: CheckContext) -> list[Finding]:
    """Findings ``restore.*``: missing keys, dtype/shape mismatches, unused keys, layout notes."""
    plan = restore_plan(ctx.model)
    if not plan.items:
        nothing = Finding(
            "restore.nothing-to-restore", INFO,
            "the graph has no variables to restore (constants only)", None,
            "nothing to do: no checkpoint is needed to serve this graph",
        )
        return [nothing] + (corrupt_tensors(ctx.checkpoint, set(), ctx.progress)
                            if ctx.checkpoint is not None and ctx.verify else [])
    out = _unsaved(ctx.model, plan)
    if ctx.checkpoint is None:
        why = ctx.checkpoint_problem or "no checkpoint was given"
        remedy = Remedy("check", ctx.model.path, (("checkpoint", "PREFIX"),))
        return out + [Finding(
            "restore.no-checkpoint", WARNING,
            f"restore not checked: {why}; the graph restores {len(plan.items)} tensors", None,
            f"pass the checkpoint to check against: {remedy.text}",
            {"problem": why, "restored_tensors": len(plan.items)}, remedy,
        )]
    comparison = _Comparison(plan, ctx.checkpoint, ctx.model.path)
    out += comparison.findings()
    if ctx.verify:
        out += corrupt_tensors(ctx.checkpoint, comparison.restored, ctx.progress)
    return out


def corrupt_tensors(ckpt: Checkpoint, restored: set[str],
                    progress: Progress | None = None) -> list[Finding]:
    """``restore.corrupt-tensor``: tensors whose stored bytes fail their checksum (or cannot be read).

    An error for a tensor the graph restores (TensorFlow's restore reads it and fails), a warning
    for one it does not; more than a few in one data file become one finding with the count.
    """
    by_file: dict[tuple[str, bool], list[CorruptTensor]] = {}
    for tensor in ckpt.verify(progress or silent):
        by_file.setdefault((tensor.file, tensor.name in restored), []).append(tensor)
    remedy = Remedy("verify", ckpt.prefix)
    fix = f"the checkpoint's data is damaged: use an intact copy (download or save it again); {remedy.text} " \
        "lists every damaged tensor"
    out = []
    for (file, is_restored), bad in by_file.items():
        severity = ERROR if is_restored else WARNING
        if len(bad) <= _LISTED:
            consequence = ("the graph restores it: TensorFlow's restore fails on it" if is_restored else
                           "the graph does not restore it, but anything else reading this checkpoint fails on it")
            out += [Finding("restore.corrupt-tensor", severity, f"{_naming(b)} ({b.file}); {consequence}", b.name, fix,
                            {"key": b.name, "file": b.file, "offset": b.offset, "problem": b.message,
                             "restored": is_restored}, remedy) for b in bad]
            continue
        listed = ", ".join(b.name for b in bad[:_LISTED]) + f" and {len(bad) - _LISTED} more"
        consequence = ("the graph restores them: TensorFlow's restore fails on the first" if is_restored else
                       "the graph does not restore them, but anything else reading this checkpoint fails on them")
        out.append(Finding(
            "restore.corrupt-tensor", severity,
            f"{len(bad)} checkpoint tensors in {file} cannot be read back ({listed}); the first: {_naming(bad[0])}; "
            f"{consequence}", bad[0].name, fix,
            {"key": bad[0].name, "file": file, "count": len(bad), "restored": is_restored,
             "tensors": [{"key": b.name, "offset": b.offset, "problem": b.message} for b in bad]}, remedy,
        ))
    return out


def _unsaved(model: Model, plan: RestorePlan) -> list[Finding]:
    """Variables the saver leaves out: they keep their initial values after a restore."""
    if plan.source != SAVER:
        return []
    restored = {item.variable for item in plan.items}
    names = [node.name for node in model.nodes() if node.op in VARIABLE_OPS and node.name not in restored]
    if not names:
        return []
    listed = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
    return [Finding(
        "restore.unsaved-variables", INFO,
        f"{len(names)} variables are not in the saver and keep their initial values after a restore ({listed})",
        names[0],
        "nothing to do if they are initialized by design (counters, asset paths); otherwise add them to the "
        "Saver's var_list and save again",
        {"variables": names},
    )]


class _Comparison:
    """The plan laid against one checkpoint."""

    def __init__(self, plan: RestorePlan, ckpt: Checkpoint, model_path: str) -> None:
        self.plan = plan
        self.ckpt = ckpt
        self.model_path = model_path
        self.infos: dict[str, TensorInfo] = {i.name: i for i in ckpt.infos() if i.name != OBJECT_GRAPH_KEY}
        self.by_key: dict[str, list[RestoreItem]] = {}
        for item in plan.items:
            self.by_key.setdefault(item.key, []).append(item)
        self.resolved = self._resolve()
        consumed = set(self.resolved.values())
        #: checkpoint keys TensorFlow's restore reads (a TF2 restore reads the object graph too)
        self.restored = consumed | ({OBJECT_GRAPH_KEY} if plan.source == OBJECT_GRAPH or self.object_based else set())
        self.unused = [name for name in self.infos if name not in consumed]
        self._matcher: KeyMatcher | None = None
        #: checkpoint key -> the first missing graph key it was suggested for
        self.suggested_for: dict[str, str] = {}

    def _resolve(self) -> dict[str, str]:
        """Graph key -> checkpoint key; object-based checkpoints map through ``full_name``."""
        direct = {key: key for key in self.by_key if key in self.infos}
        if len(direct) == len(self.by_key) or self.plan.source == OBJECT_GRAPH:
            return direct
        graph = self.ckpt.object_graph()
        if graph is None:
            return direct
        by_full_name = {a.full_name: a.checkpoint_key for node in graph.nodes for a in node.attributes
                        if a.full_name and a.checkpoint_key in self.infos}
        return {key: by_full_name[key] for key in self.by_key if key in by_full_name} or direct

    @property
    def object_based(self) -> bool:
        return any(key != found for key, found in self.resolved.items())

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        if self.object_based:
            out.append(self._object_based())
        # findings follow the saver's key order, so the first error names the key TF names
        missing_slots = [key for key in self.by_key if key not in self.resolved and classify(key) == OPTIMIZER]
        slot_set = set(missing_slots)
        for key, items in self.by_key.items():
            found = self.resolved.get(key)
            if found is not None:
                out.extend(self._compare(key, found, items))
            elif missing_slots and key == missing_slots[0]:
                out.append(self._missing_slots(missing_slots))
            elif key not in slot_set:
                out.append(self._missing(key, items))
        out.extend(self._unused())
        return _fold_layouts(out)

    # -- one key -----------------------------------------------------------------------------
    def _compare(self, key: str, found: str, items: list[RestoreItem]) -> list[Finding]:
        info = self.infos[found]
        item = items[0]
        expected = item.full_shape
        wanted_dtype = item.dtype if item.dtype and item.dtype != info.dtype else None
        wrong_shape = expected if expected is not None and not shapes_match(expected, info.shape) else None
        other_layout = bool(item.spec) != info.partitioned
        if wanted_dtype is None and wrong_shape is None and not other_layout:  # the common case, kept cheap
            return []
        details = {"key": key, "checkpoint_key": found, "variables": [i.variable for i in items if i.variable],
                   "checkpoint": {"dtype": info.dtype, "shape": list(info.shape)}}
        out = []
        if wanted_dtype is not None:
            fix, remedy = self._dtype_fix(key, wanted_dtype, info.dtype)
            out.append(Finding(
                "restore.dtype-mismatch", ERROR,
                f"the graph restores {key} as {wanted_dtype}, the checkpoint holds {info.dtype}", key, fix,
                {**details, "graph": {"dtype": wanted_dtype}}, remedy,
            ))
        if wrong_shape is not None:
            out.append(self._shape_mismatch(key, item, wrong_shape, info, details))
        if other_layout:
            out.append(self._layout(key, items, info, details))
        return out

    def _dtype_fix(self, key: str, wanted: str, have: str) -> tuple[str, Remedy | None]:
        if wanted in _FLOATS and have in _FLOATS:
            remedy = Remedy("rewrite", self.ckpt.prefix, (("cast", (have, wanted)),))
            return f"cast in the checkpoint (every {have} tensor): {remedy.text}; or rebuild the graph with {key} " \
                f"as {have}", remedy
        return f"rebuild the graph with {key} as {have}, or use a checkpoint written by this graph", None

    def _shape_mismatch(self, key: str, item: RestoreItem, expected: list[int | None],
                        info: TensorInfo, details: dict[str, Any]) -> Finding:
        what = f"partitioned variable {key}" if item.spec else f"variable {item.variable or key}"
        consequence = ("TF restores it without an error (a resource variable takes any shape), but the ops "
                       "built for the graph's shape then fail") if item.resource and not item.spec else \
            "TF's restore fails (Assign requires shapes of both tensors to match)"
        return Finding(
            "restore.shape-mismatch", ERROR,
            f"the graph's {what} is {_shape(expected)}, the checkpoint's {key} is {_shape(info.shape)}: "
            f"{consequence}", key,
            f"the checkpoint comes from a different model configuration: rebuild the graph with {key} "
            f"{_shape(info.shape)}, or use a checkpoint written by this graph",
            {**details, "graph": {"shape": expected, "spec": item.spec or None}},
        )

    def _layout(self, key: str, items: list[RestoreItem], info: TensorInfo, details: dict[str, Any]) -> Finding:
        if info.partitioned:
            message = (f"the checkpoint stores {key} in {len(info.locations)} slices, the graph restores it whole; "
                       f"TF reassembles the slices")
        else:
            message = (f"the checkpoint stores {key} whole, the graph restores it as {len(items)} partitions; "
                       f"TF reads each partition out of the whole tensor")
        return Finding(
            _LAYOUT, INFO, message, key, "nothing to do: TF restores across layouts",
            {**details, "graph_partitions": [i.spec for i in items if i.spec],
             "checkpoint_slices": [loc.slice for loc in info.locations if loc.slice]},
        )

    def _missing(self, key: str, items: list[RestoreItem]) -> Finding:
        item = items[0]
        expected = item.full_shape
        suggestions = self.matcher.suggest(key, item.dtype, expected)
        for suggestion in suggestions:
            self.suggested_for.setdefault(suggestion.key, key)
        want = " ".join(x for x in (item.dtype or "", _shape(expected) if expected is not None else "") if x)
        message = f"the graph restores {key}{f' ({want})' if want else ''} but the checkpoint has no such key"
        if suggestions:
            message += "; closest: " + ", ".join(s.text for s in suggestions)
        fix, remedy = self._missing_fix(key, suggestions)
        return Finding(
            "restore.missing-key", ERROR, message, key, fix,
            {"key": key, "variables": [i.variable for i in items if i.variable], "dtype": item.dtype,
             "shape": expected, "role": classify(key), "suggestions": [s.to_json() for s in suggestions]}, remedy,
        )

    def _missing_fix(self, key: str, suggestions: list[Suggestion]) -> tuple[str, Remedy | None]:
        best = next((s for s in suggestions if s.same_spec), None)
        if best is None:
            what = "a training counter" if classify(key) == BOOKKEEPING else "not in this checkpoint"
            return (f"{key} is {what}: restore from a checkpoint written by this graph, or build the Saver with a "
                    f"var_list that leaves {key} out (it then keeps its initial value)"), None
        if self.plan.source == OBJECT_GRAPH:
            return self._object_path_fix(key, best.key), None
        remedy = Remedy("rewrite", self.ckpt.prefix, (("renames", (self._rename_rule(key, best.key),)),))
        return f"rename in the checkpoint: {remedy.text}", remedy

    def _object_path_fix(self, key: str, found: str) -> str:
        """TF2 matches objects by their path from the root, so renaming keys does not help."""
        move = scope_move(key, found)
        if move is not None and not move[0] and move[1].count("/") == 1:
            attribute = move[1].rstrip("/")
            return (f"TF2 restores by object path, not by key: the checkpoint holds this object under {attribute}/, "
                    f"so restore through it: tf.train.Checkpoint({attribute}=obj).restore('{self.ckpt.prefix}')")
        return (f"TF2 restores by object path, not by key: {found} sits elsewhere in the checkpoint's object tree; "
                "save a checkpoint of this object structure (tf.train.Checkpoint(obj).write(...))")

    @staticmethod
    def _rename_rule(key: str, found: str) -> str:
        """A scope rule when only the leading scope differs, else a rule for this one key."""
        move = scope_move(key, found)
        if move is not None:
            graph_scope, checkpoint_scope = move
            if key.startswith(graph_scope) and found.startswith(checkpoint_scope) \
                    and key[len(graph_scope):] == found[len(checkpoint_scope):]:
                return rename_rule(graph_scope, checkpoint_scope)
        return f"re:^{re.escape(found)}$={key}"

    def _missing_slots(self, keys: list[str]) -> Finding:
        bases = [k.rsplit("/", 1)[0] for k in keys]
        held = [b for b in bases if b in self.infos]
        listed = ", ".join(keys[:_LISTED]) + (f" and {len(keys) - _LISTED} more" if len(keys) > _LISTED else "")
        if self.plan.source == OBJECT_GRAPH:
            severity, consequence = WARNING, "inference is unaffected; resuming training restarts the optimizer"
            fix = "nothing to do for serving; to resume training, restore a checkpoint written with the optimizer"
            remedy = None
        else:
            severity, consequence = ERROR, "TF's Saver.restore fails on the first of them"
            remedy = Remedy("export", self.model_path)
            fix = (f"for serving, export the graph without the optimizer ({remedy.text}) or restore with "
                   "tf.compat.v1.train.Saver(var_list=<the model variables>); to resume training, use a "
                   "checkpoint written with the optimizer")
        return Finding(
            "restore.missing-slot", severity,
            f"the graph restores {len(keys)} optimizer tensors the checkpoint lacks ({listed})"
            f"{'; it holds the model variables they belong to' if held else ''}: {consequence}",
            keys[0], fix, {"keys": keys, "variables_held": held}, remedy,
        )

    def _object_based(self) -> Finding:
        mapped = {key: found for key, found in self.resolved.items() if key != found}
        first = next(iter(mapped))
        return Finding(
            "restore.object-based", INFO,
            f"the checkpoint is object-based (TF2): TF's name-based Saver maps {len(mapped)} graph names to its "
            f"keys by the objects' full names (e.g. {first} -> {mapped[first]})", None,
            "nothing to do: Saver.restore does this mapping itself",
            {"mapping": mapped},
        )

    # -- keys nothing restores -------------------------------------------------------------
    def _unused(self) -> list[Finding]:
        graph = self.ckpt.object_graph() if self.unused else None
        model_keys: list[str] = []
        other: list[str] = []
        for name in self.unused:
            (model_keys if classify(name, graph) == MODEL else other).append(name)
        out = []
        for name in model_keys:
            info = self.infos[name]
            wanted = self.suggested_for.get(name)
            remedy = Remedy("rewrite", self.ckpt.prefix, (("drop", (f"^{re.escape(name)}$",)),))
            out.append(Finding(
                "restore.unused-key", WARNING,
                f"checkpoint tensor {name} ({info.dtype} {_shape(info.shape)}) is restored into no variable "
                f"of this graph{f' (it looks like {wanted}, see restore.missing-key)' if wanted else ''}", name,
                f"if a graph variable should get it, rename it (see restore.missing-key); if not, drop it: {remedy.text}",
                {"key": name, "dtype": info.dtype, "shape": list(info.shape), "closest_graph_key": wanted}, remedy,
            ))
        if other:
            listed = ", ".join(other[:_LISTED]) + (f" and {len(other) - _LISTED} more" if len(other) > _LISTED else "")
            remedy = Remedy("rewrite", self.ckpt.prefix, (("drop_optimizer", True),))
            out.append(Finding(
                "restore.unused-optimizer-state", INFO,
                f"{len(other)} optimizer and bookkeeping tensors of the checkpoint are not restored by this graph "
                f"({listed}); normal for an inference graph", None,
                f"nothing to do; to shrink the checkpoint: {remedy.text}", {"keys": other}, remedy,
            ))
        return out

    # -- helpers -----------------------------------------------------------------------------
    @property
    def matcher(self) -> KeyMatcher:
        if self._matcher is None:
            specs = {name: (info.dtype, info.shape) for name, info in self.infos.items()}
            self._matcher = KeyMatcher(specs, self.unused)
        return self._matcher


def _naming(bad: CorruptTensor) -> str:
    """The reader's message, with the tensor named when it does not name it (a missing data file)."""
    return bad.message if repr(bad.name) in bad.message else f"tensor {bad.name!r}: {bad.message}"


def _fold_layouts(findings: list[Finding]) -> list[Finding]:
    """More than a few ``restore.partition-layout`` notes (one per key) become one, with the count."""
    layouts = [f for f in findings if f.id == _LAYOUT]
    if len(layouts) <= _LISTED:
        return findings
    keys = [f.subject for f in layouts]
    listed = ", ".join(str(k) for k in keys[:_LISTED]) + f" and {len(keys) - _LISTED} more"
    sliced = sum(1 for f in layouts if f.details["checkpoint_slices"])
    folded = Finding(
        _LAYOUT, INFO,
        f"{len(layouts)} tensors are stored in another partition layout than the graph restores them ({listed}): "
        f"{sliced} stored in slices and restored whole, {len(layouts) - sliced} stored whole and restored as "
        "partitions; TF restores across layouts", None, "nothing to do: TF restores across layouts",
        {"count": len(layouts), "keys": keys, "tensors": [f.details for f in layouts]},
    )
    first = findings.index(layouts[0])
    rest = [f for f in findings if f.id != _LAYOUT]
    return rest[:first] + [folded] + rest[first:]


def _shape(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
