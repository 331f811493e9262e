"""The diff command: what changed between two checkpoints or two graphs."""

import math
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.cli.app import app
from metainspect.cli.options import EXIT_FINDINGS, JsonOpt, NoVerifyOpt, TagsOpt, matcher, parse_tags
from metainspect.cli.progress import BAR_DELAY, progress_bars
from metainspect.cli.render import emit_json, emit_lines, emit_table, format_bytes, format_shape

if TYPE_CHECKING:
    from metainspect.diff import CheckpointDiff, GraphDiff, TensorChange
    from metainspect.diff.results import FieldChange

InputArg = Annotated[str, typer.Argument(
    help="A checkpoint (prefix, .index, V1 file, directory) or a graph (.meta, .pb, .pbtxt, SavedModel dir).",
    show_default=False)]


@app.command("diff")
def diff(
    a: InputArg,
    b: InputArg,
    match: Annotated[str | None, typer.Option(
        "--match", metavar="RE", show_default=False,
        help="Only names this regular expression finds (searched; A's names after --rename).")] = None,
    rename: Annotated[list[str] | None, typer.Option(
        "--rename", metavar="OLD=NEW", show_default=False,
        help="Pair A's names renamed by this rule (rewrite's rules: net=model scopes, re:PATTERN=REPL). "
             "Repeatable; first match wins.")] = None,
    no_values: Annotated[bool, typer.Option(
        "--no-values", help="Checkpoints: compare names, dtypes and shapes only (reads the indexes alone).")] = False,
    atol: Annotated[float, typer.Option(
        "--atol", min=0.0, metavar="X", help="Absolute tolerance: equal when |a-b| <= atol + rtol*|b|.")] = 0.0,
    rtol: Annotated[float, typer.Option(
        "--rtol", min=0.0, metavar="X", help="Relative tolerance (numpy.isclose; NaN equals NaN).")] = 0.0,
    top: Annotated[int, typer.Option(
        "--top", min=0, metavar="N", help="Show the N largest changes of each kind (0: all).")] = 20,
    kind: Annotated[str | None, typer.Option(
        "--kind", metavar="KIND", show_default=False,
        help="graph or checkpoint: how to read two inputs that are both (SavedModel dirs; default graph).")] = None,
    tags: TagsOpt = None,
    no_verify: NoVerifyOpt = False,
    json: JsonOpt = False,
) -> None:
    """Show what changed between two checkpoints or two graphs.

    Checkpoints (V1, V2, TF1, TF2, in any pairing): tensors added, removed,
    renamed (by --rename) and changed: dtype, shape, and values by
    max_abs_diff, mean_abs_diff, rel_l2 = ||a-b||/||a||, cosine and the
    fraction of elements outside the tolerances (mismatched). Values are
    compared exactly unless --atol/--rtol are given; NaN and Inf are
    counted on each side. Tensors are read one pair at a time.

    Graphs (.meta, GraphDef, SavedModel): nodes added, removed, renamed
    (paired by op, attrs and inputs) and changed (op, inputs, device,
    each attr; constants by digest); library functions, collections,
    signatures, saver and versions.

    Exit codes: 0 identical (within tolerances), 1 different, 2 unusable
    input (or a graph compared with a checkpoint).

    Examples:

      metainspect diff run/ckpt-1000 export/variables/variables

      metainspect diff old.ckpt new.ckpt --rename net=model --atol 1e-6

      metainspect diff model.meta renamed.meta --json

    JSON: {a, b, kind, identical, counts, added, removed, renamed:
    [{from, to}], changed: [{name, ...}], notes}; full schema in
    docs/diff.md.
    """
    from metainspect.diff import CHECKPOINT, diff_checkpoints, diff_graphs, pair_kind

    if kind is not None and kind not in ("graph", "checkpoint"):
        raise typer.BadParameter("must be graph or checkpoint", param_hint="--kind")
    matcher(match)  # refuses an invalid expression as a usage error
    for value, flag in ((atol, "--atol"), (rtol, "--rtol")):
        if not value >= 0:  # NaN passes the range check
            raise typer.BadParameter("must be a number >= 0", param_hint=flag)
    renames = tuple(rename or ())
    result: CheckpointDiff | GraphDiff
    if pair_kind(a, b, kind) == CHECKPOINT:
        with progress_bars(after=BAR_DELAY, enabled=not json) as progress:
            result = diff_checkpoints(a, b, match=match, renames=renames, values=not no_values, atol=atol,
                                      rtol=rtol, verify=not no_verify, progress=progress)
    else:
        result = diff_graphs(a, b, tags=parse_tags(tags), match=match,
                             renames=renames)
    for note in result.notes:
        print(f"metainspect: note: {note}", file=sys.stderr)
    if json:
        emit_json(result.to_json())
    elif result.kind == CHECKPOINT:
        _print_checkpoints(result, top)  # type: ignore[arg-type]
    else:
        _print_graphs(result, top)  # type: ignore[arg-type]
    if not result.identical:
        raise typer.Exit(EXIT_FINDINGS)


# -- checkpoints ----------------------------------------------------------------------------------


def _print_checkpoints(result: "CheckpointDiff", top: int) -> None:
    tolerance = "exact" if not (result.atol or result.rtol) else f"atol {result.atol:g}, rtol {result.rtol:g}"
    if not result.values_compared:
        tolerance = "values not compared"
    emit_lines([
        f"A: {result.a} ({result.format_a}, {result.tensors_a} tensors)",
        f"B: {result.b} ({result.format_b}, {result.tensors_b} tensors)",
        (f"{result.compared} compared: {result.equal} equal, {result.within_tolerance} within tolerance, "
         f"{len(result.changed)} changed; {len(result.added)} added, {len(result.removed)} removed, "
         f"{len(result.renamed)} renamed ({tolerance})"),
    ])
    changed = sorted(result.changed, key=_magnitude, reverse=True)
    if changed:
        shown = _limit(changed, top)
        _table(
            ["tensor", "dtype", "shape", "max_abs_diff", "mean_abs_diff", "rel_l2", "cosine", "mismatched"],
            (_change_row(c) for c in shown), title=_title("changed", len(shown), len(changed), "largest"),
            right=["max_abs_diff", "mean_abs_diff", "rel_l2", "cosine", "mismatched"])
    appeared = [c.name for c in result.changed if c.nan_appeared or c.inf_appeared]
    if appeared:
        emit_lines([f"NaN or Inf appeared in {len(appeared)} tensor(s): " + ", ".join(_limit(appeared, top))])
    for label, entries in (("added", result.added), ("removed", result.removed)):
        if entries:
            shown_entries = _limit(list(entries), top)
            _table(["tensor", "dtype", "shape", "size"],
                       ([e.name, e.dtype, format_shape(list(e.shape)), format_bytes(e.nbytes)] for e in shown_entries),
                       title=_title(label, len(shown_entries), len(entries)), right=["size"])
    if result.renamed:
        shown_pairs = _limit(list(result.renamed), top)
        _table(["A", "B"], ([r.old, r.new] for r in shown_pairs),
                   title=_title("renamed", len(shown_pairs), len(result.renamed)))
    emit_lines(["identical" if result.identical else "different"])


def _magnitude(change: "TensorChange") -> tuple[bool, bool, float]:
    """Sort key, largest first: NaN/Inf appearing, then no comparable values, then rel_l2 or mismatched."""
    v = change.values
    size = 0.0
    if v is not None:
        size = v.rel_l2 if v.rel_l2 is not None else (v.mismatched or 0.0)
    return change.nan_appeared or change.inf_appeared, v is None, size


def _change_row(change: "TensorChange") -> list[str]:
    dtype = change.dtype_b if not change.dtype_changed else f"{change.dtype_a} -> {change.dtype_b}"
    shape = format_shape(list(change.shape_b))
    if change.shape_changed:
        shape = f"{format_shape(list(change.shape_a))} -> {shape}"
    v = change.values
    if v is None:
        return [change.name, dtype, shape, "", "", "", "", ""]
    mismatched = "" if v.mismatched is None else f"{100 * v.mismatched:.3g}%"
    nonfinite = [f"{label} {a}->{b}" for label, a, b in (("NaN", v.nan_a, v.nan_b), ("Inf", v.inf_a, v.inf_b))
                 if a is not None and b is not None and a != b]
    if nonfinite:
        mismatched += " (" + ", ".join(nonfinite) + ")"
    return [change.name, dtype, shape, _num(v.max_abs_diff), _num(v.mean_abs_diff), _num(v.rel_l2),
            _num(v.cosine), mismatched]


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if math.isfinite(value) else str(value)


# -- graphs ---------------------------------------------------------------------------------------


def _print_graphs(result: "GraphDiff", top: int) -> None:
    nodes, functions = result.nodes, result.functions
    lines = [
        f"A: {result.a} ({result.graph_kind_a}, {nodes.nodes_a} nodes, {functions.functions_a} functions)",
        f"B: {result.b} ({result.graph_kind_b}, {nodes.nodes_b} nodes, {functions.functions_b} functions)",
        _counts("nodes", nodes),
        _counts("functions", functions),
        (f"collections: {_keyed(result.collections)}; signatures: {_keyed(result.signatures)}; "
         f"saver: {_fields(result.saver)}; versions: {_fields(result.versions)}"),
    ]
    if result.rename_rules:
        lines.append("renamed scopes: " + ", ".join(f"{r.old} -> {r.new or '(root)'} ({n} nodes)"
                                                   for r, n in _limit(list(result.rename_rules), top)))
    emit_lines(lines)
    _print_nodes(nodes, "", top)
    for change in _limit(list(functions.changed), top):
        where = f"function {change.name}" + (f" (was {change.renamed_from})" if change.renamed_from else "")
        if change.signature:
            _print_fields(f"{where}: signature", change.signature)
        _print_nodes(change.body, f"{where}: ", top)
    for label, names in (("functions added", functions.added), ("functions removed", functions.removed)):
        if names:
            emit_lines([f"{label} ({len(names)}): " + ", ".join(_limit(list(names), top))])
    if functions.renamed:
        emit_lines([f"functions renamed ({len(functions.renamed)}): "
                    + ", ".join(f"{r.old} -> {r.new}" for r in _limit(list(functions.renamed), top))])
    for label, keyed in (("collection", result.collections), ("signature", result.signatures)):
        for name in keyed.added:
            emit_lines([f"{label} {name}: added"])
        for name in keyed.removed:
            emit_lines([f"{label} {name}: removed"])
    for change in result.collections.changed:
        parts = [f"+{len(change.added)}" if change.added else "", f"-{len(change.removed)}" if change.removed else ""]
        detail = " ".join(p for p in parts if p) or "same items, another order"
        emit_lines([f"collection {change.name}: {detail}"]
                   + [f"  + {item}" for item in _limit(list(change.added), top)]
                   + [f"  - {item}" for item in _limit(list(change.removed), top)])
    for sig in result.signatures.changed:
        _print_fields(f"signature {sig.key}", sig.changes)
    for label, changes in (("saver", result.saver), ("versions", result.versions), ("other", result.other)):
        if changes:
            _print_fields(label, changes)
    emit_lines(["identical" if result.identical else "different"])


def _print_nodes(nodes: Any, where: str, top: int) -> None:
    if nodes.changed:
        shown = _limit(list(nodes.changed), top)
        rows = []
        for change in shown:
            label = change.name + (f" (was {change.renamed_from})" if change.renamed_from else "")
            for i, field in enumerate(change.changes):
                rows.append([label if i == 0 else "", change.op if i == 0 else "", _field_name(field),
                             field.a or "", field.b or ""])
        _table(["node", "op", "what", "A", "B"], rows, title=where + _title("changed nodes", len(shown), len(nodes.changed)))
    for label, entries in (("added nodes", nodes.added), ("removed nodes", nodes.removed)):
        if entries:
            shown_entries = _limit(list(entries), top)
            _table(["node", "op"], ([e.name, e.op] for e in shown_entries),
                       title=where + _title(label, len(shown_entries), len(entries)))
    if nodes.renamed:
        shown_pairs = _limit(list(nodes.renamed), top)
        _table(["A", "B"], ([r.old, r.new] for r in shown_pairs),
                   title=where + _title("renamed nodes", len(shown_pairs), len(nodes.renamed)))


def _table(columns: list[str], rows: Any, title: str, right: list[str] | None = None) -> None:
    """A heading line, then the table (rich on a terminal, plain columns when piped)."""
    emit_lines(["", title + ":"])
    emit_table(columns, rows, right=right or ())


def _print_fields(title: str, changes: "tuple[FieldChange, ...]") -> None:
    _table(["what", "A", "B"], ([_field_name(c), c.a or "", c.b or ""] for c in changes), title=title)


def _field_name(change: "FieldChange") -> str:
    return f"{change.field} {change.key}" if change.key else change.field


def _counts(label: str, diff: Any) -> str:
    return (f"{label}: {len(diff.renamed)} renamed, {len(diff.changed)} changed, {len(diff.added)} added, "
            f"{len(diff.removed)} removed")


def _keyed(keyed: Any) -> str:
    if keyed.identical:
        return "same"
    return ", ".join(f"{len(v)} {k}" for k, v in (("added", keyed.added), ("removed", keyed.removed),
                                                   ("changed", keyed.changed)) if v)


def _fields(changes: "tuple[FieldChange, ...]") -> str:
    return "same" if not changes else f"{len(changes)} field(s) differ"


def _limit(items: list[Any], top: int) -> list[Any]:
    return items if top == 0 else items[:top]


def _title(label: str, shown: int, total: int, which: str = "first") -> str:
    return f"{label} ({total})" if shown == total else f"{label} ({which} {shown} of {total})"
