"""Checkpoint commands: vars, show, verify, objects."""

import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.cli.app import app
from metainspect.cli.options import EXIT_FINDINGS, CkptArg, JsonOpt, MatchOpt, NoVerifyOpt, matcher
from metainspect.cli.progress import BAR_DELAY, progress_bars
from metainspect.cli.render import (
    JsonTexts,
    emit_json,
    emit_lines,
    emit_table,
    format_bytes,
    format_shape,
    is_terminal,
    json_string,
    write_json_array,
)

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint, TensorInfo


def _open(path: str, verify: bool = True) -> "Checkpoint":
    from metainspect.checkpoint import open_checkpoint

    ckpt = open_checkpoint(path, verify=verify)
    for note in ckpt.notes:
        print(f"metainspect: note: {note}", file=sys.stderr)
    return ckpt


@app.command("vars")
def vars_(
    path: CkptArg,
    match: MatchOpt = None,
    sort: Annotated[str, typer.Option("--sort", help="Order rows by name or by size (largest first).")] = "name",
    stats: Annotated[bool, typer.Option(
        "--stats", help="Add min, max, mean, std, NaN and Inf counts (reads every tensor).")] = False,
    no_verify: NoVerifyOpt = False,
    json: JsonOpt = False,
) -> None:
    """List the tensors a checkpoint holds: name, dtype, shape, size, role.

    Roles: model (parameters), optimizer (slots and optimizer state), bookkeeping (global_step,
    save_counter, the TF2 object graph). JSON: a list of {name, dtype, shape, nbytes,
    stored_nbytes, role, partitioned} (+ stats {min, max, mean, std, nan, inf} with
    --stats). nbytes: the tensor's bytes; stored_nbytes: what the file holds for it.
    """
    from metainspect.checkpoint.roles import classify

    if sort not in ("name", "size"):
        raise typer.BadParameter("must be name or size", param_hint="--sort")
    with _open(path, verify=not no_verify) as ckpt:
        graph = ckpt.object_graph()
        infos = ckpt.infos()
        if match is not None:
            keep = matcher(match)
            infos = [i for i in infos if keep(i.name)]
        if sort == "size":
            infos.sort(key=lambda i: -i.nbytes)
        if json and not stats and not is_terminal():
            write_json_array(_var_rows(infos, [classify(i.name, graph) for i in infos]))
            return
        rows: list[dict[str, Any]] = []
        with progress_bars(after=BAR_DELAY, enabled=stats and not json) as report:
            total = sum(i.nbytes for i in infos)
            done = 0
            for info in infos:
                row: dict[str, Any] = {"name": info.name, "dtype": info.dtype, "shape": info.shape,
                                       "nbytes": info.nbytes, "stored_nbytes": info.stored_nbytes,
                                       "role": classify(info.name, graph), "partitioned": info.partitioned}
                if stats:
                    row["stats"] = _stats(ckpt, info)
                    done += info.nbytes
                    report("statistics", done, total)
                rows.append(row)
        if json:
            emit_json(rows)
            return
        _print_vars(ckpt, rows, stats)


def _var_rows(infos: "Iterable[TensorInfo]", roles: Iterable[str]) -> Iterator[str]:
    """Each tensor as the JSON text ``emit_json`` writes for ``{name, dtype, shape, nbytes, stored_nbytes, role,
    partitioned}``.

    The same bytes, faster on 10^4 tensors: no dict per tensor, and the few distinct dtypes,
    shapes and roles are encoded once.
    """
    texts = JsonTexts()
    for (name, dtype, shape, nbytes, locations, partitioned), role in zip(infos, roles):
        stored = locations[0].size if len(locations) == 1 else sum(loc.size for loc in locations)
        yield (f'{{"name": {json_string(name)}, "dtype": {texts[dtype]}, "shape": {texts[shape]}, "nbytes": {nbytes}, '
               f'"stored_nbytes": {stored}, "role": {texts[role]}, "partitioned": {"true" if partitioned else "false"}}}')


def _stats(ckpt: "Checkpoint", info: Any) -> dict[str, Any] | None:
    from dataclasses import asdict

    from metainspect.checkpoint.stats import tensor_stats

    if info.dtype in ("string", "variant"):
        return None
    found = tensor_stats(ckpt.get(info.name))
    return asdict(found) if found else None


def _print_vars(ckpt: "Checkpoint", rows: list[dict[str, Any]], stats: bool) -> None:
    columns = ["name", "dtype", "shape", "size", "role"]
    if stats:
        columns += ["min", "max", "mean", "std", "nan", "inf"]
    table = []
    for row in rows:
        cells = [row["name"], row["dtype"], format_shape(row["shape"]), format_bytes(row["nbytes"]), row["role"]]
        if stats:
            s = row["stats"] or {}
            cells += [_num(s.get(k)) for k in ("min", "max", "mean", "std")] + [s.get("nan", ""), s.get("inf", "")]
        table.append(cells)
    emit_table(columns, table, title=f"{ckpt.prefix} ({ckpt.format}, {ckpt.num_shards} shard(s))",
               right=["size", "min", "max", "mean", "std", "nan", "inf"])
    by_dtype: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_role: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        for bucket in (by_dtype[row["dtype"]], by_role[row["role"]]):
            bucket[0] += 1
            bucket[1] += row["nbytes"]
    total = sum(r["nbytes"] for r in rows)
    lines = [f"{len(rows)} tensors, {format_bytes(total)}"]
    if rows:
        lines += [
            "  by dtype: " + ", ".join(f"{k} {n} ({format_bytes(b)})" for k, (n, b) in sorted(by_dtype.items())),
            "  by role:  " + ", ".join(f"{k} {n} ({format_bytes(b)})" for k, (n, b) in sorted(by_role.items())),
        ]
    emit_lines(lines)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


#: what `show` prints in full without --full (numpy's own summarisation threshold), and of each string
SHOW_ELEMENTS = 1000
SHOW_CHARS = 80
#: values per line when --full streams a long last axis
_STREAM_VALUES = 4096


@app.command()
def show(
    path: CkptArg,
    name: Annotated[str, typer.Argument(help="Tensor name as listed by `metainspect vars`.", show_default=False)],
    full: Annotated[bool, typer.Option(
        "--full", help="Every element (streamed, one row per line) instead of a numpy-style summary.")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=0, metavar="N", help="Only the first N elements (flattened), as a list.")] = None,
    no_verify: NoVerifyOpt = False,
    json: JsonOpt = False,
) -> None:
    """Print one tensor's values, numpy-style: summarised past 1000 elements, long strings cut.

    JSON: {name, dtype, shape, values} (strings as UTF-8 where they decode, else hex); a tensor
    of more than 1000 elements needs --full (all of them) or --limit N (the first N, flattened;
    then "limit": N is added).
    """
    import numpy as np

    with _open(path, verify=not no_verify) as ckpt:
        info = ckpt.info(name)
        if json and limit is None:
            _check_json_size(info, full)
        value = _first(ckpt, info, limit) if limit is not None else ckpt.get(name)
        if json:
            document: dict[str, Any] = {"name": info.name, "dtype": info.dtype, "shape": list(info.shape),
                                        "values": value}
            if limit is not None:
                document["limit"] = limit
            emit_json(document)
            return
        emit_lines([f"{info.name}  {info.dtype}  {format_shape(list(info.shape))}  {format_bytes(info.nbytes)}"])
        if info.dtype == "variant":
            emit_lines(_describe_variant(v) for v in np.asarray(value).reshape(-1))
            return
        if full and value.size > SHOW_ELEMENTS:
            _stream(value)
            return
        cut = not full and value.dtype == object and any(len(v) > SHOW_CHARS for v in value.reshape(-1)[:SHOW_ELEMENTS])
        with np.printoptions(threshold=SHOW_ELEMENTS, linewidth=120,
                             formatter={"object": _short_string} if cut else None):
            emit_lines([np.array2string(value)])
        if cut:
            emit_lines([f"(strings cut at {SHOW_CHARS} characters; --full prints them whole)"])


def _check_json_size(info: "TensorInfo", full: bool) -> None:
    """Refuse JSON too big to build unasked (or at all: nested empty lists the file does not hold)."""
    import click

    from metainspect.formats.tensor_proto import nested_lists

    lists = nested_lists(info.shape)
    if info.size == 0 and lists > SHOW_ELEMENTS:
        raise click.UsageError(f"{info.name!r} has no elements, but its shape {list(info.shape)} nests them in "
                               f"{lists} lists; --limit 0 prints its values as []")
    if info.size > SHOW_ELEMENTS and not full:
        raise click.UsageError(f"{info.name!r} has {info.size} elements; add --full for all of them "
                               f"or --limit N for the first N")


def _first(ckpt: "Checkpoint", info: "TensorInfo", count: int) -> Any:
    """The first ``count`` elements, flattened, reading only the rows that hold them when it can."""
    import math

    if not info.shape:
        return ckpt.get(info.name).reshape(-1)[:count]
    row = math.prod(info.shape[1:])
    rows = -(-count // row) if row else 0
    return ckpt[info.name][:rows].reshape(-1)[:count]


def _short_string(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOW_CHARS else text[: SHOW_CHARS - 1] + "…"


def _stream(value: Any) -> None:
    """Every element, one row of the last axis per line (long rows over several), as they are
    formatted: the text never sits in memory whole."""
    rows = value.reshape(-1, value.shape[-1]) if value.ndim else value.reshape(1, 1)
    out = sys.stdout
    for row in rows:
        for start in range(0, max(len(row), 1), _STREAM_VALUES):
            items = row[start : start + _STREAM_VALUES].tolist()
            out.write(" ".join(map(repr if value.dtype == object else str, items)) + "\n")


def _describe_variant(value: Any) -> str:
    type_name = getattr(value, "type_name", "") or "unknown type"
    tensors = getattr(value, "tensors", [])
    return f"variant {type_name} holding {len(tensors)} tensor(s), {len(getattr(value, 'metadata', b''))} bytes of metadata"


@app.command()
def verify(path: CkptArg, json: JsonOpt = False) -> None:
    """Check every table block and every tensor's CRC32C. Exit 1 if anything is corrupt.

    JSON: {prefix, tensors, corrupt: [{name, file, offset, message}]}.
    """
    with _open(path) as ckpt:
        with progress_bars(after=BAR_DELAY, enabled=not json) as report:
            findings = ckpt.verify(report)
        if json:
            emit_json({"prefix": ckpt.prefix, "tensors": len(ckpt), "corrupt": findings})
        elif findings:
            emit_table(["tensor", "file", "offset", "problem"],
                       ([f.name, f.file, f.offset, f.message] for f in findings),
                       title=f"{len(findings)} corrupt tensor(s) in {ckpt.prefix}", right=["offset"])
        else:
            emit_lines([f"{ckpt.prefix}: {len(ckpt)} tensors, every checksum matches"])
    if findings:
        raise typer.Exit(EXIT_FINDINGS)


@app.command()
def objects(path: CkptArg, json: JsonOpt = False) -> None:
    """Show a TF2 checkpoint's object graph: object paths, saved attributes, optimizer slots.

    JSON: a list of {id, path, children [{name, id}], attributes [{name, full_name,
    checkpoint_key, dtype, shape}], slot_variables [{variable, slot_name, slot_node,
    checkpoint_key}], has_checkpoint_values}.
    """
    with _open(path) as ckpt:
        graph = ckpt.object_graph()
        if graph is None:
            from metainspect.errors import WrongKindError

            raise WrongKindError(ckpt.prefix, "is a name-based (TF1) checkpoint: it has no object graph; "
                                              "use `metainspect vars`")
        known = set(ckpt.keys())

        def tensor(key: str | None) -> dict[str, Any]:
            if key is None or key not in known:
                return {"dtype": None, "shape": None}
            info = ckpt.info(key)
            return {"dtype": info.dtype, "shape": list(info.shape)}

        nodes = [{
            "id": node.id, "path": node.path,
            "children": [{"name": name, "id": child} for name, child in node.children],
            "attributes": [{"name": a.name, "full_name": a.full_name, "checkpoint_key": a.checkpoint_key,
                            **tensor(a.checkpoint_key)} for a in node.attributes],
            "slot_variables": [{"variable": s.original_path, "slot_name": s.slot_name, "slot_node": s.slot_node,
                                "checkpoint_key": s.checkpoint_key} for s in node.slot_variables],
            "has_checkpoint_values": node.has_checkpoint_values,
        } for node in graph.nodes]
        if json:
            emit_json(nodes)
            return
        emit_lines(_object_tree(nodes))


def _object_tree(nodes: list[dict[str, Any]]) -> list[str]:
    """Indented tree along each object's primary (shortest) path; other edges are references."""
    lines: list[str] = []

    def describe(node: dict[str, Any]) -> list[str]:
        out = []
        for attr in node["attributes"]:
            shape = format_shape(attr["shape"]) if attr["dtype"] else ""
            out.append(f"= {attr['name']}: {attr['dtype'] or '?'}{shape}  [{attr['checkpoint_key']}]")
        for slot in node["slot_variables"]:
            out.append(f"~ slot {slot['slot_name']!r} of {slot['variable']}  [{slot['checkpoint_key']}]")
        return out

    def walk(node: dict[str, Any], depth: int) -> None:
        pad = "  " * depth
        for text in describe(node):
            lines.append(f"{pad}  {text}")
        for child in node["children"]:
            target = nodes[child["id"]]
            prefix = f"{node['path']}/" if node["path"] else ""
            primary = target["path"] is not None and target["path"] == prefix + _escape(child["name"])
            if primary:
                lines.append(f"{pad}  {child['name']}/  (node {target['id']})")
                walk(target, depth + 1)
            else:
                lines.append(f"{pad}  {child['name']} -> {target['path'] or '(unreachable)'}  (node {target['id']})")

    lines.append("(root)")
    walk(nodes[0], 0)
    orphans = [n for n in nodes if n["path"] and ".OPTIMIZER_SLOT" in n["path"]]
    if orphans:
        lines.append("slot variables:")
        for node in orphans:
            lines.append(f"  {node['path']}  (node {node['id']})")
            lines.extend(f"    {text}" for text in describe(node))
    return lines


def _escape(name: str) -> str:
    from metainspect.checkpoint.object_graph import escape

    return escape(name)
