"""The convert command: TensorFlow checkpoints to and from safetensors and npz."""

import sys
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from metainspect.cli.app import app
from metainspect.cli.options import JsonOpt, NoVerifyOpt, dropped_by, parse_cast, parse_size, with_dropped_by
from metainspect.cli.progress import progress_bars
from metainspect.cli.render import emit_json, emit_lines, emit_table, format_bytes, format_shape

if TYPE_CHECKING:
    from metainspect.convert import ConvertPlan, TensorConversion

ListOpt = list[str] | None


@app.command("convert")
def convert(
    source: Annotated[str, typer.Argument(
        metavar="SRC", show_default=False,
        help="A TensorFlow checkpoint (prefix, .index, V1 file, directory, SavedModel), a .safetensors "
             "file, a *.safetensors.index.json, or an .npz file.")],
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="OUT", show_default=False,
        help="OUT.safetensors, OUT.npz, or a checkpoint prefix. A directory gets model.safetensors "
             "(from a TF checkpoint) or model.ckpt + a checkpoint state file. Must not exist.")],
    to: Annotated[str | None, typer.Option(
        "--to", metavar="FMT", show_default=False,
        help="Output format when OUT's name does not tell: safetensors, npz or checkpoint.")] = None,
    drop_optimizer: Annotated[bool, typer.Option(
        "--drop-optimizer", help="Leave out optimizer state (Adam/adam_m/adam_v, Adafactor _slot_*, "
                                 "slots, optimizer step).")] = False,
    keep: Annotated[ListOpt, typer.Option(
        "--keep", metavar="RE", show_default=False,
        help="Keep only tensors whose name matches (searched); --drop then applies. Repeatable.")] = None,
    drop: Annotated[ListOpt, typer.Option(
        "--drop", metavar="RE", show_default=False,
        help="Leave out tensors whose name matches this regular expression. Repeatable.")] = None,
    rename: Annotated[ListOpt, typer.Option(
        "--rename", metavar="OLD=NEW", show_default=False,
        help="Rename a scope (bert=encoder) or by regex (re:PATTERN=REPL). Repeatable; first match wins.")] = None,
    cast: Annotated[str | None, typer.Option(
        "--cast", metavar="SRC:DST", show_default=False,
        help="Cast every SRC tensor to DST, both floating types: float32:bfloat16.")] = None,
    max_shard_size: Annotated[str | None, typer.Option(
        "--max-shard-size", metavar="SIZE", show_default=False,
        help="safetensors: Hugging Face shards of at most SIZE (model-00001-of-0000N.safetensors + "
             "index.json); checkpoint: data shards. 512M, 2G (binary units) or bytes.")] = None,
    metadata: Annotated[ListOpt, typer.Option(
        "--metadata", metavar="KEY=VALUE", show_default=False,
        help="Add an entry to the output's metadata (safetensors, npz), e.g. format=pt. Repeatable.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="List every tensor's fate and the files; write nothing.")] = False,
    no_verify: NoVerifyOpt = False,
    no_sync: Annotated[bool, typer.Option(
        "--no-sync", help="Do not fsync the output before renaming it into place (faster; a power cut soon "
                          "after can leave a named file incomplete).")] = False,
    json: JsonOpt = False,
) -> None:
    """Convert a checkpoint to safetensors or npz, or back to a TF checkpoint.

    TensorFlow checkpoint -> .safetensors or .npz: TensorFlow's names are the
    keys (bert/encoder/layer_0/attention/self/query/kernel), every dtype kept
    exactly (bfloat16 stays BF16; npz stores it as raw bits, |V2). Bytes are
    copied by the kernel, each CRC32C checked, partitioned variables joined
    into whole tensors. String tensors cannot go to safetensors: the TF2 object
    graph is left out with a note, any other is refused unless dropped.

    .safetensors / .npz -> TensorFlow checkpoint (a prefix or directory): a V2
    checkpoint TensorFlow reads back byte for byte.

    Selection and renaming follow `rewrite`'s rules. Refused before anything
    is written: an existing output, a type the output cannot hold, names that
    collide, a pattern that matches nothing, a file failing its checks. Files
    appear complete under their names or not at all.

    Examples:

      metainspect convert bert_model.ckpt -o bert.safetensors --drop-optimizer

      metainspect convert model.ckpt-1000000 -o t5/ --max-shard-size 2G

      metainspect convert model.safetensors -o ckpt/ --to checkpoint

    JSON (--json): {source, source_format, output, format, tensors: [{name,
    new_name (null: left out), dtype, new_dtype, stored_dtype, shape, nbytes,
    new_nbytes, role, drop_reason: {rule, pattern} | null, dropped_by, file}],
    metadata, files, summary, notes,
    warnings, written: {files, bytes} | null}; see docs/convert.md.

    Exit codes: 0 written (or planned), 2 refused or unusable input.
    """
    from metainspect.convert import ConvertOptions, plan_conversion
    from metainspect.convert import convert as run_conversion
    from metainspect.errors import MetainspectError

    entries = []
    for text in metadata or ():
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise MetainspectError(None, f"--metadata {text!r}: expected KEY=VALUE")
        entries.append((key, value))
    try:
        shard_size = parse_size(max_shard_size) if max_shard_size is not None else None
    except MetainspectError:
        raise MetainspectError(None, f"--max-shard-size {max_shard_size!r}: expected a size such as 512M, 2G "
                                     "or a byte count") from None
    options = ConvertOptions(
        to=to, renames=tuple(rename or ()), drop=tuple(drop or ()), keep=tuple(keep or ()),
        drop_optimizer=drop_optimizer, cast=parse_cast(cast) if cast is not None else None, shard_size=shard_size,
        metadata=tuple(entries),
        verify=not no_verify, sync=not no_sync,
    )
    if plan:
        result = plan_conversion(source, output, options)
    else:
        with progress_bars(enabled=not json) as progress:
            result = run_conversion(source, output, options, progress=progress)
    for note in result.notes:
        print(f"metainspect: note: {note}", file=sys.stderr)
    if json:
        emit_json(with_dropped_by(result.to_json()))
        return
    _print(result, every=plan)


def _print(plan: "ConvertPlan", every: bool) -> None:
    """--plan: every tensor's fate; otherwise the renamed and cast tensors and a count of the rest."""
    rows = [t for t in plan.tensors if every or (not t.dropped and (t.new_name != t.name or t.new_dtype != t.dtype))]
    if rows:
        emit_table(["tensor", "dtype", "shape", "becomes", "size"], (_row(t) for t in rows), right=["size"])
    lines = [
        f"input:  {plan.source} ({plan.source_format}): {len(plan.tensors)} tensors, {format_bytes(plan.input_bytes)}",
        f"output: {plan.output} ({plan.format}): {len(plan.kept)} tensors, {format_bytes(plan.output_bytes)}",
    ]
    reasons = Counter(dropped_by(t.drop_reason) for t in plan.dropped if t.drop_reason)
    if reasons:
        lines.append("left out: " + ", ".join(f"{count} ({why})" for why, count in sorted(reasons.items(), key=str)))
    lines += [f"warning: {w}" for w in plan.warnings]
    lines += [f"{'wrote' if plan.written else 'would write'} {path}" for path in plan.files]
    if not plan.written:
        lines.append("plan only: nothing written")
    emit_lines(lines)


def _row(tensor: "TensorConversion") -> list[str]:
    """tensor, dtype, shape, what it becomes (new name and stored type, or why left out), size."""
    shape = format_shape(list(tensor.shape))
    if tensor.dropped:
        why = dropped_by(tensor.drop_reason) if tensor.drop_reason else ""
        return [tensor.name, tensor.dtype, shape, f"(left out: {why})", format_bytes(tensor.nbytes)]
    dtype = f"{tensor.dtype} -> {tensor.new_dtype}" if tensor.new_dtype != tensor.dtype else tensor.dtype
    becomes = f"{tensor.new_name} ({tensor.stored_dtype})" if tensor.new_name != tensor.name else f"({tensor.stored_dtype})"
    return [tensor.name, dtype, shape, becomes, format_bytes(tensor.new_nbytes)]
