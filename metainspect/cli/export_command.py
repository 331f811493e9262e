"""The export command: a graph + checkpoint to a SavedModel for TF Serving, or a frozen graph."""

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.cli.app import app, fail
from metainspect.cli.options import (
    EXIT_FINDINGS,
    EXIT_UNUSABLE,
    InputOpt,
    OutputOpt,
    error_line,
    parse_input_spec,
    parse_pairs,
    parse_tags,
)
from metainspect.cli.progress import progress_bars
from metainspect.cli.render import emit_json, emit_lines, format_shape
from metainspect.errors import MetainspectError

if TYPE_CHECKING:
    from metainspect.export import ExportResult

DOCKER_HINT = "docker run -p 8501:8501 -v {path}:/models/model/1 -e MODEL_NAME=model tensorflow/serving"


@app.command("export")
def export_command(
    model: Annotated[str, typer.Argument(
        help="A .meta, a checkpoint prefix with its .meta, a SavedModel or a .pb graph; with --model-factory "
             "a TF2 checkpoint.", show_default=False)],
    out: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="DIR", show_default=False,
        help="SavedModel directory to create (refused if it exists).")] = None,
    frozen: Annotated[str | None, typer.Option(
        "--frozen", metavar="OUT.pb", show_default=False,
        help="Also (or instead) write a frozen GraphDef pruned to the outputs.")] = None,
    checkpoint: Annotated[str | None, typer.Option(
        "--checkpoint", "-c", metavar="CKPT", show_default=False,
        help="Checkpoint to restore (default: the one beside the .meta, a SavedModel's own variables).")] = None,
    input_: InputOpt = None,
    output: OutputOpt = None,
    signature_name: Annotated[str, typer.Option(
        "--signature-name", help="Key of the SignatureDef to write.")] = "serving_default",
    tags: Annotated[str, typer.Option(
        "--tags", help="Tag set of the exported meta graph, comma-separated.")] = "serve",
    model_tags: Annotated[str | None, typer.Option(
        "--model-tags", show_default=False,
        help="Meta graph of a SavedModel MODEL to read, by tag set (default: the serve one).")] = None,
    clear_devices: Annotated[bool, typer.Option(
        "--clear-devices", help="Drop device placements (/job:ps, /device:GPU:0) so the model loads anywhere.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Export even when check reports errors.")] = False,
    engine: Annotated[str, typer.Option(
        "--engine", metavar="tf|pure",
        help="tf: TensorFlow's SavedModelBuilder; pure: no TensorFlow (TF1 graphs). Default: tf when installed.")
    ] = "auto",
    model_factory: Annotated[str | None, typer.Option(
        "--model-factory", metavar="MODULE:FUNCTION", show_default=False,
        help="TF2 checkpoints: function building the model (tf.Module or Keras); module or path/to/file.py.")] = None,
    input_spec: Annotated[list[str] | None, typer.Option(
        "--input-spec", metavar="NAME:DTYPE:SHAPE", show_default=False,
        help="TF2 checkpoints: a serving input, e.g. x:float32:?,3 (? unknown size). Repeatable.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Export a graph + checkpoint as a SavedModel for TF Serving and/or a frozen graph.

    Runs `check` first and refuses on errors (--force overrides). The signature is the
    --input/--output given; else the model's own signature of that name; else the one `check`
    proposes when it is unambiguous. Otherwise nothing is written and the candidates are listed
    with the exact flags to add. Output paths must not exist; they appear complete or not at all.

    Examples:

      metainspect export model.ckpt-1000 --out export/1

      metainspect export model.meta -c ckpts/model.ckpt --input x=x:0 --output probs=probs:0 --out export/1

      metainspect export model.ckpt-1000 --frozen frozen.pb --clear-devices

      metainspect export ckpts/ --model-factory my_model:build --input-spec x:float32:?,3 --out export/1

    Engines: `tf` (TensorFlow installed: pip install 'metainspect\\[tf]') or `pure` (no
    TensorFlow; writes saved_model.pb around the graph and copies the checkpoint to
    variables/). Serve the result with:
    docker run -p 8501:8501 -v $PWD/export:/models/model -e MODEL_NAME=model tensorflow/serving

    JSON: {model, engine, saved_model, frozen, signature_name, inputs: {key: {tensor, dtype,
    shape}}, outputs, signature_source, tags, checkpoint, assets, constants, frozen_inputs,
    frozen_nodes, verdict, warnings, notes}.

    Exit codes: 0 written, 1 check found errors (nothing written), 2 unusable input or refused.
    """
    tag_list = tuple(t for t in tags.split(",") if t)
    if model_factory is not None:
        _export_tf2(model, out, frozen, checkpoint, model_factory, input_spec or [], signature_name, tag_list,
                    engine, json)
        return
    if input_spec:
        raise MetainspectError(None, "--input-spec goes with --model-factory (TF2 checkpoints); "
                               "for a graph use --input KEY=TENSOR")
    from metainspect.export import AmbiguousSignature, CheckFailed, ExportOptions, export

    model_tag_list = parse_tags(model_tags)
    options = ExportOptions(
        checkpoint=checkpoint, inputs=parse_pairs(input_ or [], "--input"),
        outputs=parse_pairs(output or [], "--output"), signature_name=signature_name, tags=tag_list,
        model_tags=tuple(model_tag_list) if model_tag_list else None, clear_devices=clear_devices, force=force,
    )
    try:
        with progress_bars(enabled=not json) as progress:
            result = export(model, out=out, frozen=frozen, options=options, engine=engine, progress=progress)
    except CheckFailed as exc:
        fail(error_line(exc), EXIT_FINDINGS, path=exc.path, kind="findings")
    except AmbiguousSignature as exc:
        _print_candidates(exc)
        fail(error_line(exc), EXIT_UNUSABLE, path=exc.path, kind="unusable")
    if json:
        emit_json(result.to_json())
    else:
        emit_lines(result_lines(result))


def _export_tf2(checkpoint: str, out: str | None, frozen: str | None, other_checkpoint: str | None, factory: str,
                specs: list[str], signature_name: str, tags: tuple[str, ...], engine: str, json: bool) -> None:
    from metainspect.export.tf2_factory import export_from_factory

    if frozen is not None or other_checkpoint is not None:
        raise MetainspectError(None, "with --model-factory, MODEL is the TF2 checkpoint; --frozen and --checkpoint "
                               "do not apply")
    if engine == "pure":
        raise MetainspectError(None, "a TF2 checkpoint has no graph; rebuilding it from --model-factory needs "
                               "TensorFlow (--engine tf)")
    if out is None:
        raise MetainspectError(None, "give --out DIR for the SavedModel")
    parsed = [parse_input_spec(s) for s in specs]
    with progress_bars(enabled=not json) as progress:
        summary = export_from_factory(checkpoint, out, factory, parsed, signature_name=signature_name, tags=tags,
                                      progress=progress)
    if json:
        emit_json(summary)
        return
    lines = [f"exported {summary['checkpoint']} through {factory} (attached as {summary['attached_as']})",
             f"  SavedModel  {summary['saved_model']}  tags serve",
             f"  signature   {summary['signature_name']}"]
    lines += [f"    input   {k}  {v['dtype']} {format_shape(v['shape'])}" for k, v in summary["inputs"].items()]
    lines += [f"    output  {k}  {v['dtype']} {format_shape(v['shape'])}" for k, v in summary["outputs"].items()]
    left = ", ".join(f"{n} {role}" for role, n in summary["left_in_checkpoint"].items()) or "nothing"
    lines += [f"  variables   {summary['variables']} restored; left in the checkpoint: {left}",
              f"  serve with  {DOCKER_HINT.format(path=summary['saved_model'])}"]
    emit_lines(lines)


def result_lines(result: "ExportResult") -> list[str]:
    """The human summary of an export."""
    source = {"given": "as given", "signature": "the model's own", "inferred": "proposed by check"}
    lines = [f"exported {result.model} with the {result.engine} engine",
             f"  checkpoint  {result.checkpoint or '(none: the graph has no variables)'}"]
    if result.saved_model:
        lines.append(f"  SavedModel  {_shown(result.saved_model)}  tags {','.join(result.tags)}")
    if result.frozen:
        counts = f"{result.frozen_nodes} nodes"
        if result.constants is not None:
            counts += f", {result.constants} variables as constants"
        lines.append(f"  frozen      {result.frozen}  ({counts}; inputs {', '.join(result.frozen_inputs) or 'none'})")
    origin = source.get(result.signature_source or "", "")
    lines.append(f"  signature   {result.signature_name} ({origin})" if result.signature_name else f"  endpoints   {origin}")
    for role, entries in (("input ", result.inputs), ("output", result.outputs)):
        for key, spec in entries.items():
            lines.append(f"    {role}  {key} = {spec['tensor']}  {spec['dtype'] or '?'} {format_shape(spec['shape'])}")
    if result.assets:
        lines.append(f"  assets      {', '.join(result.assets)}")
    lines += [f"  note        {note}" for note in result.notes]
    lines.append(f"  check       {result.verdict}")
    lines += [f"    warning   {warning}" for warning in result.warnings]
    if result.saved_model:
        shown = _shown(result.saved_model)
        mount = shown if os.path.isabs(shown) else f'"$PWD/{shown}"'  # docker -v needs an absolute path
        lines.append(f"  serve with  {DOCKER_HINT.format(path=mount)}")
    return lines


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies below it (as the user typed it)."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _print_candidates(exc: Any) -> None:
    proposal = exc.proposal
    if proposal is None:
        return
    print(proposal.explain(), file=sys.stderr)
    for candidate in proposal.candidates:
        reasons = f"  ({'; '.join(candidate.reasons)})" if candidate.reasons else ""
        print(f"  {candidate.role:<14} {candidate.key}={candidate.tensor}  {candidate.dtype or '?'} "
              f"{format_shape(candidate.shape)}  score {candidate.score}{reasons}", file=sys.stderr)
