"""The edit command: a changed copy of a graph (.meta, GraphDef, SavedModel)."""

from typing import TYPE_CHECKING, Annotated

import typer

from metainspect.cli.app import app
from metainspect.cli.options import command_line, parse_pairs, parse_shape_assignment, parse_tags
from metainspect.cli.render import emit_json, emit_lines

if TYPE_CHECKING:
    from metainspect.edit import ChangeLog, EditSpec, WriteResult

ListOpt = list[str] | None


@app.command("edit")
def edit(
    path: Annotated[str, typer.Argument(
        help="A .meta/.pb/.pbtxt file, SavedModel directory or saved_model.pb, or checkpoint prefix.",
        show_default=False)],
    out: Annotated[str | None, typer.Option(
        "-o", "--out", metavar="OUT", show_default=False,
        help="Where to write: a file (same kind and encoding as the input), or a new directory when "
             "MODEL is a SavedModel directory.")] = None,
    clear_devices: Annotated[bool, typer.Option(
        "--clear-devices", help="Clear every node's device (function bodies included).")] = False,
    add_signature: Annotated[str | None, typer.Option(
        "--add-signature", metavar="NAME", show_default=False,
        help="Add a SignatureDef NAME from --input/--output; dtypes and shapes come from the graph.")] = None,
    inputs: Annotated[ListOpt, typer.Option(
        "--input", metavar="KEY=TENSOR", show_default=False,
        help="A signature input, e.g. x=x:0 (repeatable; with --add-signature).")] = None,
    outputs: Annotated[ListOpt, typer.Option(
        "--output", metavar="KEY=TENSOR", show_default=False,
        help="A signature output, e.g. probs=probs:0 (repeatable; with --add-signature).")] = None,
    method: Annotated[str, typer.Option(
        "--method", metavar="METHOD",
        help="Signature method: predict, classify, regress, or a full method name.")] = "predict",
    remove_signature: Annotated[ListOpt, typer.Option(
        "--remove-signature", metavar="NAME", show_default=False, help="Remove a SignatureDef (repeatable).")] = None,
    set_tags: Annotated[str | None, typer.Option(
        "--set-tags", metavar="TAGS", show_default=False,
        help="Replace the meta graph's tags, e.g. serve or serve,gpu.")] = None,
    rename: Annotated[ListOpt, typer.Option(
        "--rename", metavar="OLD=NEW", show_default=False,
        help="Rename a scope (net=model: net/x -> model/x) or by regex (re:PATTERN=REPL), with every "
             "reference and the saver's checkpoint keys. Repeatable; first match wins.")] = None,
    set_shape: Annotated[ListOpt, typer.Option(
        "--set-shape", metavar="NAME=DIMS", show_default=False,
        help="Set a placeholder's shape: x=?,784 (? unknown, x= scalar, x=* unknown rank). Repeatable.")] = None,
    drop_collection: Annotated[ListOpt, typer.Option(
        "--drop-collection", metavar="NAME", show_default=False, help="Remove a collection (repeatable).")] = None,
    prune_to: Annotated[str | None, typer.Option(
        "--prune-to", metavar="OUTPUTS", show_default=False,
        help="Keep only what these comma-separated ops/tensors need, plus the saver and initialisers.")] = None,
    strip_training: Annotated[bool, typer.Option(
        "--strip-training", help="Remove optimizer, gradient and summary subgraphs and optimizer-only "
                                 "variables (the saver stops saving them).")] = False,
    tags: Annotated[str | None, typer.Option(
        "--tags", help="SavedModel meta graph to edit, by tag set (default: the only one, else serve).")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print every change; write nothing.")] = False,
    in_place: Annotated[bool, typer.Option(
        "--in-place", help="Replace the input graph file; the original is kept as FILE.bak (or FILE.bak.N).")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """Write an edited copy of a graph: devices, signatures, tags, renames, shapes, pruning.

    Operations run in this order, whatever the order on the command line:
    --remove-signature, --drop-collection, --strip-training, --prune-to,
    --set-shape, --clear-devices, --add-signature, --set-tags, --rename.
    Every option names nodes as they are in the INPUT; --rename runs last and
    carries everything else along.

    \b
    Examples:
      metainspect edit model.ckpt-3.meta -o serve.meta --strip-training
      metainspect edit export_dir -o export_v2 --set-tags serve \\
          --add-signature serving_default --input x=x:0 --output probs=probs:0
      metainspect edit model.meta -o renamed.meta --rename net=model --plan
      metainspect edit model.meta -o fixed.meta --set-shape x=?,784

    --rename renames nodes, inputs, colocations, collections, saver and
    signature tensors and the saver's checkpoint keys; rename the checkpoint
    with the same rules (metainspect rewrite CKPT -o NEW --rename OLD=NEW).
    Renames merging two names and rules matching nothing are refused before
    anything is written.

    The output keeps the input's kind and encoding (binary or text). A
    SavedModel directory becomes a new directory (-o must not exist) with
    variables/ and assets/ copied; fingerprint.pb is left out when the graph
    changed. Nothing is written over the input without --in-place, which
    first copies it to FILE.bak.

    JSON: {input, output, written, backups, changes: [{operation, subject,
    detail}], counts: {operation: n}, notes}. Exit codes: 0 done (or planned);
    2 unusable input or an edit that cannot be made (nothing written).
    """
    from metainspect.graph.model import load_model

    spec = _spec(add_signature, inputs, outputs, method, remove_signature, set_tags, rename, set_shape,
                 drop_collection, prune_to, strip_training, clear_devices)
    if out is not None and in_place:
        raise typer.BadParameter("give either -o OUT or --in-place, not both", param_hint="--in-place")
    if out is None and not in_place and not plan:
        raise typer.BadParameter("say where to write: -o OUT, --in-place, or --plan to only look", param_hint="-o")
    editor = load_model(path, parse_tags(tags)).edit(copy=False).apply(spec)  # the model is not used again
    log = editor.changes
    result: WriteResult | None = None
    if not plan and (len(log) or not in_place):
        result = editor.save_in_place() if in_place else editor.save(out or "")
    _report(editor.path, log, result, plan, json)


def _spec(add_signature: str | None, inputs: list[str] | None, outputs: list[str] | None, method: str,
          remove_signature: list[str] | None, set_tags: str | None, rename: list[str] | None,
          set_shape: list[str] | None, drop_collection: list[str] | None, prune_to: str | None,
          strip_training: bool, clear_devices: bool) -> "EditSpec":
    """The requested edits, every argument parsed (bad ones refused before any file is read)."""
    from metainspect.checkpoint.renames import parse_rename
    from metainspect.edit import EditSpec, NewSignature
    from metainspect.edit.signatures import method_name

    if (inputs or outputs) and add_signature is None:
        raise typer.BadParameter("--input/--output belong to --add-signature NAME", param_hint="--input")
    new_signature = None
    if add_signature is not None:
        new_signature = NewSignature(add_signature, parse_pairs(inputs or [], "--input"),
                                     parse_pairs(outputs or [], "--output"), method_name(method))
    for rule in rename or []:
        parse_rename(rule)
    spec = EditSpec(
        remove_signatures=remove_signature or [], drop_collections=drop_collection or [],
        strip_training=strip_training, prune_to=[o for o in (prune_to or "").split(",") if o],
        set_shapes=[parse_shape_assignment(s) for s in set_shape or []], clear_devices=clear_devices,
        add_signature=new_signature, set_tags=None if set_tags is None else [t for t in set_tags.split(",") if t],
        renames=list(rename or []),
    )
    if prune_to is not None and not spec.prune_to:
        raise typer.BadParameter("name at least one output, e.g. --prune-to probs", param_hint="--prune-to")
    if spec.is_empty():
        import click

        raise click.UsageError("no edit given: name at least one, e.g. --clear-devices or --rename OLD=NEW")
    return spec


def _report(path: str, log: "ChangeLog", result: "WriteResult | None", plan: bool, json: bool) -> None:
    written = result is not None
    if json:
        emit_json({
            "input": path, "output": result.output if result else None, "written": written,
            "backups": result.backups if result else [], "changes": [c.to_json() for c in log.changes],
            "counts": log.counts(), "notes": _notes(log, result),
        })
        return
    lines = [str(change) for change in log.changes]
    lines += [f"note: {note}" for note in _notes(log, result)]
    summary = ", ".join(f"{operation} {n}" for operation, n in log.counts().items()) or "no changes"
    if plan:
        lines.append(f"plan: {len(log)} changes ({summary}); nothing written")
    elif result is None:
        lines.append(f"{path}: nothing to change; file left as it was")
    else:
        backups = f" (backup: {', '.join(result.backups)})" if result.backups else ""
        lines.append(f"wrote {result.output}: {len(log)} changes ({summary}){backups}")
    emit_lines(lines)


def _notes(log: "ChangeLog", result: "WriteResult | None") -> list[str]:
    """The notes of an edit, the operations they propose worded as commands."""
    notes = []
    for note in log.notes + (result.notes if result else []):
        for remedy in log.remedies:
            note = note.replace(remedy.text, command_line(remedy))
        notes.append(note)
    return notes
