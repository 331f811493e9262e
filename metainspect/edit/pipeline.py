"""Run a set of edits on one graph file in a fixed order, in memory, collecting every change.

Order: remove-signature, drop-collection, strip-training, prune-to, set-shape, clear-devices,
add-signature, set-tags, rename. Every option names things as they are in the *input* file;
the rename comes last and carries everything else (a signature just added included) along.
Nothing is written here: :mod:`metainspect.edit.target` writes the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from metainspect.checkpoint.renames import Rename, Renamer
from metainspect.edit.changes import ChangeLog
from metainspect.edit.target import EditTarget
from metainspect.errors import Hint, MetainspectError
from metainspect.graph.attrs import Shape
from metainspect.remedy import Remedy


@dataclass(frozen=True)
class NewSignature:
    """A SignatureDef to add: its key, input and output keys -> tensor names, and method."""

    name: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    method: str = "predict"


@dataclass
class EditSpec:
    """Every edit requested for one file."""

    remove_signatures: list[str] = field(default_factory=list)
    drop_collections: list[str] = field(default_factory=list)
    strip_training: bool = False
    prune_to: list[str] = field(default_factory=list)
    set_shapes: list[tuple[str, Shape]] = field(default_factory=list)
    clear_devices: bool = False
    add_signature: NewSignature | None = None
    set_tags: list[str] | None = None
    renames: list[str | Rename] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.remove_signatures or self.drop_collections or self.strip_training or self.prune_to
                    or self.set_shapes or self.clear_devices or self.add_signature or self.set_tags is not None
                    or self.renames)


#: operations that need a MetaGraphDef (a bare GraphDef has no signatures, tags or collections)
_META_ONLY = ("remove_signatures", "drop_collections", "add_signature", "set_tags")


def apply_edits(target: EditTarget, spec: EditSpec) -> ChangeLog:
    """Apply ``spec`` to ``target``'s meta graph; return the log of changes.

    Raises MetainspectError (naming the graph file) for any edit that cannot be done; the
    target is then half-edited in memory and must not be written.
    """
    try:
        return _apply(target, spec)
    except MetainspectError as exc:
        if exc.path is None:
            raise exc.with_path(target.path) from None
        raise


def _apply(target: EditTarget, spec: EditSpec) -> ChangeLog:
    from metainspect.edit import collection_ops, devices, prune, shapes, signatures
    from metainspect.edit.rename import rename
    from metainspect.formats.graph_file import GRAPH_DEF, SAVED_MODEL

    if target.kind == GRAPH_DEF:
        asked = [name for name, wanted in zip(_META_ONLY, (spec.remove_signatures, spec.drop_collections,
                                                           spec.add_signature, spec.set_tags is not None)) if wanted]
        if asked:
            hint = Hint(asked[0])  # type: ignore[arg-type]
            raise MetainspectError(None, f"{hint.text}: a bare GraphDef has no signatures, tags or collections "
                                   "(edit a .meta or SavedModel)", hint)
    renamer = Renamer(spec.renames)  # parse the rules before anything runs
    meta_graph = target.meta_graph
    log = ChangeLog()
    for name in spec.remove_signatures:
        signatures.remove_signature(meta_graph, name, log)
    for name in spec.drop_collections:
        collection_ops.drop_collection(meta_graph, name, log)
    if spec.strip_training and prune.strip_training(meta_graph, log) == 0:
        log.notes.append("strip-training: no optimizer, gradient or summary ops found; nothing removed")
    if spec.prune_to:
        prune.prune_to(meta_graph, spec.prune_to, log)
    for name, shape in spec.set_shapes:
        shapes.set_shape(meta_graph, name, shape, log)
    if spec.clear_devices:
        devices.clear_devices(meta_graph, log)
    if spec.add_signature is not None:
        new = spec.add_signature
        signatures.add_signature(meta_graph, new.name, new.inputs, new.outputs, new.method, log=log)
    if spec.set_tags is not None:
        if target.kind == SAVED_MODEL:
            _check_tags(target, spec.set_tags)
        signatures.set_tags(meta_graph, spec.set_tags, log)
    if renamer:
        renamed = rename(meta_graph, renamer, log)
        key_rules = renamed.key_rules
        if target.kind == SAVED_MODEL:
            key_rules = _rename_other_meta_graphs(target, spec.renames, key_rules, log)
        if key_rules:
            _follow_key_renames(target, key_rules, len(renamed.keys), log)
    return log


def _rename_other_meta_graphs(target: EditTarget, rules: list[str | Rename], key_rules: tuple[str, ...],
                              log: ChangeLog) -> tuple[str, ...]:
    """A SavedModel's meta graphs share variables/: rename them all, so their savers agree.

    Returns the rules that renamed checkpoint keys in any meta graph, in command-line order.
    """
    from metainspect.edit.changes import Change
    from metainspect.edit.rename import rename

    used = set(key_rules)
    for i, meta_graph in enumerate(target.graph.meta_graphs):
        if i == target.index:
            continue
        other = ChangeLog()
        used |= set(rename(meta_graph, rules, other, every_rule_used=False).key_rules)
        tags = ",".join(meta_graph.meta_info_def.tags) or f"#{i}"
        log.changes += [Change(c.operation, f"meta graph {tags}: {c.subject}", c.detail) for c in other.changes]
    order = [Renamer([rule]).rules[0].text for rule in rules]
    return tuple(text for text in order if text in used)


def _follow_key_renames(target: EditTarget, rules: tuple[str, ...], count: int, log: ChangeLog) -> None:
    """The saver now reads renamed keys: plan a SavedModel's variables rewrite, or tell the user."""
    prefix = target.variables_prefix
    if prefix is None:
        remedy = Remedy("rewrite", "CKPT", (("renames", tuple(rules)),))
        log.notes.append(f"{count} checkpoint keys the saver reads were renamed; a checkpoint written with the old "
                         f"names needs the same rules: {remedy.text}")
        log.remedies.append(remedy)
        return
    from metainspect.rewrite import RewriteOptions, plan_rewrite

    plan = plan_rewrite(prefix, RewriteOptions(renames=rules))
    target.checkpoint_renames = rules
    log.operation = "rename"
    log.add("variables/variables", f"rewritten with the same rules ({len(plan.renamed)} keys renamed)")


def _check_tags(target: EditTarget, tags: list[str]) -> None:
    hint = Hint("set_tags")
    if not tags:
        raise MetainspectError(None, f"{hint.text}: a SavedModel meta graph needs at least one tag", hint)
    for i, other in enumerate(target.graph.meta_graphs):
        if i != target.index and set(other.meta_info_def.tags) == set(tags):
            raise MetainspectError(None, f"{hint.text}: another meta graph is already tagged {','.join(tags)}", hint)
