"""The rewrite command: a new checkpoint with tensors renamed, dropped, cast or resharded."""

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.cli.app import app
from metainspect.cli.options import CkptArg, JsonOpt, NoVerifyOpt, dropped_by, parse_cast, parse_size, with_dropped_by
from metainspect.cli.progress import progress_bars
from metainspect.cli.render import emit_json, emit_lines, emit_table, format_bytes, format_shape

if TYPE_CHECKING:
    from metainspect.rewrite import RewritePlan, TensorPlan

ListOpt = list[str] | None


@app.command("rewrite")
def rewrite(
    path: CkptArg,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="OUT_PREFIX", show_default=False,
        help="Prefix of the new checkpoint: writes OUT_PREFIX.index and OUT_PREFIX.data-*. Must not exist.")] = None,
    rename: Annotated[ListOpt, typer.Option(
        "--rename", metavar="OLD=NEW", show_default=False,
        help="Rename a scope (net=model: net/x -> model/x) or by regex (re:PATTERN=REPL). Repeatable; first match wins.")] = None,
    drop: Annotated[ListOpt, typer.Option(
        "--drop", metavar="PATTERN", show_default=False,
        help="Drop tensors whose name matches this regular expression (searched). Repeatable.")] = None,
    keep: Annotated[ListOpt, typer.Option(
        "--keep", metavar="PATTERN", show_default=False,
        help="Keep only tensors whose name matches (searched); --drop then applies to those. Repeatable.")] = None,
    drop_optimizer: Annotated[bool, typer.Option(
        "--drop-optimizer", help="Drop optimizer state (Adam moments, slots, optimizer step); keep the model, "
                                 "global_step and save_counter.")] = False,
    cast: Annotated[str | None, typer.Option(
        "--cast", metavar="SRC:DST", show_default=False,
        help="Cast every SRC tensor to DST, both floating types: float32:float16, float32:bfloat16.")] = None,
    shard_size: Annotated[str | None, typer.Option(
        "--shard-size", metavar="SIZE", show_default=False,
        help="Split the data into shards of at most SIZE (512M, 1G, bytes; binary units). Default: the input's shards.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print every change and the resulting size; write nothing.")] = False,
    in_place: Annotated[bool, typer.Option(
        "--in-place", help="Rewrite the input itself; the original is kept under the prefix PREFIX.bak.")] = False,
    no_verify: NoVerifyOpt = False,
    no_sync: Annotated[bool, typer.Option(
        "--no-sync", help="Do not fsync the output before renaming it into place, as TensorFlow's own writer: "
                          "faster on slow disks, but a power cut soon after can leave a named checkpoint "
                          "with missing data.")] = False,
    json: JsonOpt = False,
) -> None:
    """Write a new checkpoint with tensors renamed, dropped, cast or resharded.

    The output is a V2 checkpoint laid out exactly as TensorFlow writes one,
    from any input (V2, V1, big-endian, Snappy). Without operations it is a
    faithful copy: for a checkpoint TensorFlow wrote, the .index and .data
    files come out byte-identical. Tensors are streamed, so memory stays
    small; every CRC32C is checked on the way (--no-verify copies inside the
    kernel). Partitioned variables stay partitioned; a TF2 object graph is
    updated to the renamed and dropped keys. Patterns are matched against the
    input's names; sizes are tensor bytes as a V2 bundle stores them.

    Refused before anything is written: an existing output file, a rename
    collision, a pattern or rename that matches nothing, a --cast of a
    non-float type. Files are written under temporary names, fsynced (unless
    --no-sync) and renamed at the end, the index last.

    Examples:

      metainspect rewrite model.ckpt-1000 -o slim/model.ckpt --drop-optimizer

      metainspect rewrite model.ckpt -o new/model.ckpt --rename net=model --plan

      metainspect rewrite ckpt-5 -o half/ckpt --cast float32:bfloat16

      metainspect rewrite model.ckpt --in-place --drop 'Adam|beta[12]_power'

    JSON (--json): {source, source_format, source_shards, output, in_place,
    backup, tensors: [{name, new_name (null: dropped), dtype, new_dtype,
    shape, nbytes, new_nbytes, partitioned, role, drop_reason: {rule: keep |
    drop | drop_optimizer, pattern} | null, dropped_by}],
    object_graph: {attributes_removed, slot_variables_removed, keys_renamed,
    full_names_renamed} | null, summary: {tensors, kept, dropped, renamed,
    cast, input_bytes, output_bytes, dropped_bytes, output_shards},
    shard_size, verify, sync, notes, warnings,
    written: {index_file, data_files, data_bytes, bytes} | null}.

    Exit codes: 0 written (or planned), 2 refused or unusable input.
    """
    from metainspect.api import rewrite_checkpoint
    from metainspect.errors import MetainspectError
    from metainspect.rewrite import RewriteOptions, plan_rewrite

    if output is None and not in_place:
        raise MetainspectError(None, "rewrite needs -o OUT_PREFIX (or --in-place to rewrite the input itself)")
    options = RewriteOptions(
        renames=tuple(rename or ()), drop=tuple(drop or ()), keep=tuple(keep or ()), drop_optimizer=drop_optimizer,
        cast=parse_cast(cast) if cast is not None else None,
        shard_size=parse_size(shard_size) if shard_size is not None else None, verify=not no_verify,
        sync=not no_sync,
    )
    if plan:
        result = plan_rewrite(path, options, out_prefix=output, in_place=in_place)
    else:
        with progress_bars(enabled=not json) as progress:
            result = rewrite_checkpoint(path, output, options, in_place=in_place, progress=progress)
    for note in result.notes:
        print(f"metainspect: note: {note}", file=sys.stderr)
    if json:
        emit_json(rewrite_document(result))
        return
    _print(result)


def rewrite_document(plan: "RewritePlan") -> dict[str, Any]:
    """``rewrite --json``: the plan's data, each tensor with ``dropped_by`` in flag words too."""
    return with_dropped_by(plan.to_json())


def _print(plan: "RewritePlan") -> None:
    changes = [t for t in plan.tensors if t.dropped or t.renamed or t.cast]
    if changes:
        emit_table(["change", "tensor", "dtype", "shape", "result", "size"], (_row(t) for t in changes), right=["size"])
    else:
        emit_lines(["no tensor changes"])
    kept = plan.kept
    lines = [
        f"input:  {plan.source} ({plan.source_format}, {_shards(plan.source_shards)}): "
        f"{len(plan.tensors)} tensors, {format_bytes(plan.input_bytes)}",
        f"output: {plan.output or '(no output named)'} (v2, {_shards(plan.output_shards)}): "
        f"{len(kept)} tensors, {format_bytes(plan.output_bytes)}"
        f"  [{len(plan.dropped)} dropped ({format_bytes(sum(t.nbytes for t in plan.dropped))}), "
        f"{len(plan.renamed)} renamed, {len(plan.cast)} cast]",
    ]
    graph = plan.object_graph
    if graph is not None and graph.changed:
        lines.append(f"object graph: {graph.attributes_removed} attribute(s) and {graph.slot_variables_removed} slot "
                     f"reference(s) removed, {graph.keys_renamed} key(s) and {graph.full_names_renamed} full name(s) renamed")
    lines += [f"warning: {w}" for w in plan.warnings]
    written = plan.written
    if written is None:
        lines.append("plan only: nothing written")
    else:
        from metainspect.formats.filesystem import filesystem

        total = sum(filesystem(f).size(f) for f in (written.index_file, *written.data_files))
        lines.append(f"wrote {written.index_file} and {written.num_shards} data file(s): {format_bytes(total)}")
        if plan.backup:
            lines.append(f"the input was moved to the backup prefix {plan.backup} ({plan.backup}.index, {plan.backup}.data-*)"
                         if plan.source_format == "v2" else f"the input was moved to {plan.backup}")
    emit_lines(lines)


def _row(tensor: "TensorPlan") -> list[str]:
    """change, tensor, dtype, shape, result (new name or why dropped), size."""
    shape = format_shape(list(tensor.shape))
    if tensor.dropped:
        reason = f"({dropped_by(tensor.drop_reason)})" if tensor.drop_reason else ""
        return ["drop", tensor.name, tensor.dtype, shape, reason, format_bytes(tensor.nbytes)]
    kinds = [k for k, on in (("rename", tensor.renamed), ("cast", tensor.cast)) if on]
    dtype = f"{tensor.dtype} -> {tensor.new_dtype}" if tensor.cast else tensor.dtype
    size = format_bytes(tensor.nbytes)
    if tensor.new_nbytes != tensor.nbytes:
        size += f" -> {format_bytes(tensor.new_nbytes)}"
    return [", ".join(kinds), tensor.name, dtype, shape, (tensor.new_name or "") if tensor.renamed else "", size]


def _shards(count: int) -> str:
    return f"{count} shard" + ("" if count == 1 else "s")
