"""The graph command: pictures of a graph, in TensorBoard or through Graphviz."""

import os
import re
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.cli.app import app
from metainspect.cli.options import JsonOpt, TagsOpt
from metainspect.cli.render import emit_json, emit_lines

if TYPE_CHECKING:
    from metainspect.picture import DotPicture, Knowledge, Subject

#: automatic --depth keeps the drawing within this many boxes
DEFAULT_MAX_NODES = 200


@app.command("graph")
def graph(
    model: Annotated[str, typer.Argument(
        help="A .meta/.pb/.pbtxt file, SavedModel dir, or checkpoint prefix.", show_default=False)],
    tensorboard: Annotated[str | None, typer.Option(
        "--tensorboard", metavar="LOGDIR", show_default=False,
        help="Write a TensorBoard event file holding the graph into LOGDIR.")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", metavar="NAME", show_default=False,
        help="Put the event file in LOGDIR/NAME: TensorBoard shows it as run NAME.")] = None,
    dot_out: Annotated[str | None, typer.Option(
        "--dot", metavar="OUT.dot", show_default=False,
        help="Write a Graphviz DOT picture (- for standard output).")] = None,
    svg_out: Annotated[str | None, typer.Option(
        "--svg", metavar="OUT.svg", show_default=False,
        help="Render the picture to SVG (needs Graphviz's dot program).")] = None,
    depth: Annotated[int | None, typer.Option(
        "--depth", metavar="N", min=0, show_default=False,
        help="Collapse name scopes deeper than N levels into one box each "
             "(default: the deepest within --max-nodes).")] = None,
    max_nodes: Annotated[int, typer.Option(
        "--max-nodes", metavar="N", min=1, help="Box budget of the automatic --depth.")] = DEFAULT_MAX_NODES,
    around: Annotated[str | None, typer.Option(
        "--around", metavar="NODE", show_default=False,
        help="Draw only the neighbourhood of this node.")] = None,
    radius: Annotated[int | None, typer.Option(
        "--radius", metavar="K", min=0, show_default=False,
        help="With --around: nodes up to K edges away, either direction (default 2).")] = None,
    match: Annotated[str | None, typer.Option(
        "--match", metavar="RE", show_default=False,
        help="Draw only nodes whose name matches this regular expression (searched).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Run metainspect check and mark the nodes its findings name.")] = False,
    checkpoint: Annotated[str | None, typer.Option(
        "--checkpoint", "-c", metavar="CKPT", show_default=False,
        help="Checkpoint whose variable shapes to show (default: the one beside the graph).")] = None,
    function: Annotated[str | None, typer.Option(
        "--function", metavar="NAME", show_default=False,
        help="Show the body of this library function instead of the graph.")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", min=1, help="Time Graphviz may take for --svg.")] = 120.0,
    tags: TagsOpt = None,
    json: JsonOpt = False,
) -> None:
    """Picture a graph: a TensorBoard event file, or Graphviz DOT/SVG.

    TensorBoard gets the whole graph, custom ops included, without
    TensorFlow, plus a text summary. Variables carry their checkpoint
    shape; with --check, nodes carry the findings that name them.

    DOT draws name scopes as clusters and collapses scopes deeper than
    --depth into one box with counts; edges between boxes are merged
    (xN). Inputs, variables, outputs, constants, calls and custom ops
    are styled; with --check, nodes with findings are outlined red
    (error), orange (warning) or blue (info).

    Examples:

      metainspect graph model.ckpt-3 --tensorboard logs

      tensorboard --logdir logs      # then open the Graphs tab

      metainspect graph big.meta --svg big.svg --depth 2

      metainspect graph m.meta --dot part.dot --around logits --check

      metainspect graph m.meta --dot - --match '^dense' | dot -Tpng > d.png

      metainspect graph export/1 --function NAME --tensorboard logs

    JSON: {model, kind, function, nodes, checkpoint, checkpoint_problem,
    variables_shown, check, tensorboard, dot, svg} (docs/pictures.md).
    Exit codes: 0 written, 2 unusable input or Graphviz missing (--svg).
    """
    from metainspect.errors import MetainspectError
    from metainspect.graph.model import load_model
    from metainspect.picture import (
        Selection,
        annotate,
        draw,
        gather_knowledge,
        render,
        subject_of,
        summary_markdown,
        write_event_file,
    )
    from metainspect.picture.render import require_dot

    if not (tensorboard or dot_out or svg_out):
        raise MetainspectError(None, "nothing to write: give --tensorboard LOGDIR, --dot OUT.dot or --svg OUT.svg")
    drawing = bool(dot_out or svg_out)
    shaping = [flag for flag, value in (("--depth", depth), ("--around", around), ("--match", match),
                                        ("--radius", radius)) if value is not None]
    if shaping and not drawing:
        raise MetainspectError(None, f"{shaping[0]} shapes the DOT/SVG picture: add --dot or --svg "
                                     f"(TensorBoard always gets the whole graph)")
    if dot_out == "-" and json:
        raise MetainspectError(None, "--dot - writes the picture to standard output: it cannot share it with --json")
    if radius is not None and around is None:
        raise MetainspectError(None, "--radius needs --around NODE")
    if run is not None and not tensorboard:
        raise MetainspectError(None, "--run names a run in the --tensorboard LOGDIR")
    if run is not None and (not run or os.path.isabs(run) or ".." in run.split("/")):
        raise MetainspectError(None, f"--run {run!r}: give a relative name inside LOGDIR")
    pattern = _compile(match)
    if svg_out:
        require_dot()  # before any work: say how to install Graphviz at once

    loaded = load_model(model, [t for t in tags.split(",") if t] if tags else None)
    subject = subject_of(loaded, function)
    knowledge = gather_knowledge(subject, model, checkpoint, check=check)
    result: dict[str, Any] = _facts(subject, knowledge)
    if tensorboard:
        directory = os.path.join(tensorboard, run) if run else tensorboard
        path = write_event_file(directory, annotate(subject.graph_def, knowledge),
                                summary_markdown(subject, knowledge))
        result["tensorboard"] = {"logdir": tensorboard, "run": run or ".", "event_file": path}
    if drawing:
        selection = Selection(depth=depth, budget=max_nodes, around=around,
                              radius=2 if radius is None else radius, match=pattern)
        picture = draw(subject.nodes, subject.roles(), selection, path=loaded.path, knowledge=knowledge,
                       title=_title(subject))
        if dot_out == "-":
            sys.stdout.write(picture.text)
        elif dot_out:
            from metainspect.formats.atomic import write_bytes

            write_bytes(dot_out, picture.text.encode("utf-8"))
        if svg_out:
            render(picture.text, svg_out, "svg", timeout)
        result["dot"] = _dot_json(picture, dot_out)
        result["svg"] = svg_out
    if json:
        emit_json(result)
        return
    if dot_out == "-":  # the picture is on standard output: the summary goes beside it
        sys.stderr.writelines(line + "\n" for line in _report(result, max_nodes))
        return
    emit_lines(_report(result, max_nodes))


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise typer.BadParameter(f"invalid regular expression {pattern!r}: {exc}", param_hint="--match") from None


def _title(subject: "Subject") -> str:
    what = f"function {subject.function}" if subject.function else subject.model.kind
    return f"{os.path.basename(subject.model.path.rstrip('/'))} ({what}, {len(subject.nodes)} nodes)"


def _facts(subject: "Subject", knowledge: "Knowledge") -> dict[str, Any]:
    return {
        "model": subject.model.path, "kind": subject.model.kind, "function": subject.function,
        "nodes": len(subject.nodes), "checkpoint": knowledge.checkpoint_path,
        "checkpoint_problem": knowledge.checkpoint_problem, "variables_shown": len(knowledge.stored),
        "check": None if knowledge.verdict is None else {
            "verdict": knowledge.verdict, "findings": len(knowledge.all_findings),
            "nodes_with_findings": len(knowledge.findings)},
        "tensorboard": None, "dot": None, "svg": None,
    }


def _dot_json(picture: "DotPicture", path: str | None) -> dict[str, Any]:
    return {"path": path, "depth": picture.depth, "selected_nodes": picture.selected_nodes,
            "drawn_nodes": picture.drawn_nodes, "drawn_edges": picture.drawn_edges,
            "collapsed_scopes": picture.collapsed_scopes, "series_merged": picture.series_merged,
            "highlighted": picture.highlighted}


def _report(result: dict[str, Any], max_nodes: int) -> list[str]:
    what = f"function {result['function']}" if result["function"] else result["kind"]
    lines = [f"{result['model']} ({what}, {result['nodes']} nodes)"]
    if result["checkpoint"]:
        shown = result["variables_shown"]
        lines.append(f"  checkpoint   {result['checkpoint']} ({shown} variable{'' if shown == 1 else 's'} shown)")
    if result["check"]:
        check = result["check"]
        lines.append(f"  check        {check['verdict']} ({check['nodes_with_findings']} nodes marked)")
    board = result["tensorboard"]
    if board:
        lines.append(f"  tensorboard  {board['event_file']}")
        lines.append(f"               view: tensorboard --logdir {board['logdir']}  (Graphs tab, run {board['run']})")
    dot = result["dot"]
    if dot:
        collapsed = "nothing collapsed" if dot["depth"] is None else \
            f"depth {dot['depth']}, {dot['collapsed_scopes']} scopes collapsed"
        drawn = (f"{dot['drawn_nodes']} boxes for {dot['selected_nodes']} nodes ({collapsed}), "
                 f"{dot['drawn_edges']} edges")
        for key in ("path", "svg"):
            target = dot["path"] if key == "path" else result["svg"]
            if target:
                lines.append(f"  {'dot' if key == 'path' else 'svg':<12} {target}: {drawn}")
        if dot["series_merged"]:
            lines.append("  note         runs of like-named nodes (add, add_1, …) merged into one box each")
        if dot["drawn_nodes"] > max_nodes:
            lines.append(f"  note         still more than {max_nodes} boxes: narrow the picture with --match or --around")
    return lines
