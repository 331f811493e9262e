"""Graph commands: nodes, placeholders, variables, collections, signatures, ops, info."""

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metainspect.cli.app import app
from metainspect.cli.options import JsonOpt, MatchOpt, PathArg, TagsOpt, matcher, parse_tags
from metainspect.cli.render import (
    JsonTexts,
    emit_json,
    emit_lines,
    emit_table,
    format_shape,
    is_terminal,
    json_string,
    write_json_array,
)
from metainspect.errors import MetainspectError, TensorNotFoundError
from metainspect.suggest import did_you_mean

if TYPE_CHECKING:
    from metainspect.graph.model import Model, Node

OpOpt = Annotated[str | None, typer.Option("--op", help="Keep nodes of this op type (repeatable as A,B).")]


def _load(path: str, tags: str | None) -> "Model":
    from metainspect.graph.model import load_model

    return load_model(path, parse_tags(tags))


@app.command()
def nodes(
    path: PathArg,
    op: OpOpt = None,
    match: MatchOpt = None,
    function: Annotated[str | None, typer.Option("--function", help="List the body of this library function instead.")] = None,
    tags: TagsOpt = None,
    json: JsonOpt = False,
) -> None:
    """List graph nodes: name, op, data inputs, device.

    JSON: a list of {name, op, inputs, control_inputs, device}.
    """
    model = _load(path, tags)
    if function is None:
        node_list = model.nodes()
    else:
        found = [f for f in model.functions() if f.name == function]
        if not found:
            raise TensorNotFoundError(model.path, f"no function {function!r} in the graph's library", function)
        node_list = found[0].nodes
    ops = set(op.split(",")) if op else None
    if ops is not None:
        present = {n.op for n in node_list}
        for missing in sorted(ops - present):
            raise MetainspectError(model.path, f"no node has op type {missing!r}{did_you_mean(missing, present)}")
    selected = node_list
    if ops is not None or match is not None:
        keep = matcher(match)
        selected = [n for n in node_list if (ops is None or n.op in ops) and keep(n.name)]
    if json:
        if is_terminal():
            emit_json([{"name": n.name, "op": n.op, "inputs": list(n.inputs), "control_inputs": list(n.control_inputs),
                        "device": n.device} for n in selected])
        else:
            write_json_array(_node_rows(selected))
        return
    emit_table(["name", "op", "inputs", "device"],
               ([n.name, n.op, ", ".join([*n.inputs, *("^" + c for c in n.control_inputs)]), n.device] for n in selected),
               title=f"{len(selected)} of {len(node_list)} nodes")


def _node_rows(nodes: "Iterable[Node]") -> Iterator[str]:
    """Each node as the JSON text ``emit_json`` writes for ``{name, op, inputs, control_inputs, device}``.

    The same bytes in a third of the time on 10^5 nodes: no dict per node, and the few distinct
    op and device strings are encoded once.
    """
    texts = JsonTexts()
    for name, op, inputs, control, device, _ in nodes:
        data = ", ".join(map(json_string, inputs)) if inputs else ""
        controls = ", ".join(map(json_string, control)) if control else ""
        yield (f'{{"name": {json_string(name)}, "op": {texts[op]}, "inputs": [{data}], "control_inputs": [{controls}], '
               f'"device": {texts[device]}}}')


@app.command()
def placeholders(
    path: PathArg,
    all_: Annotated[bool, typer.Option("--all", help="Include the saver's own filename placeholders.")] = False,
    tags: TagsOpt = None,
    json: JsonOpt = False,
) -> None:
    """List graph inputs (Placeholder, PlaceholderWithDefault) with dtype and shape.

    JSON: a list of {name, dtype, shape, op, tensor}; shape is a list with null for an unknown
    dimension, or null for unknown rank.
    """
    items = _load(path, tags).placeholders(include_saver=all_)
    if json:
        emit_json([{"name": p.name, "dtype": p.dtype, "shape": p.shape, "op": p.op, "tensor": p.tensor} for p in items])
        return
    emit_table(["tensor", "dtype", "shape", "op"], ([p.tensor, p.dtype, format_shape(p.shape), p.op] for p in items),
               title=f"{len(items)} placeholders")


@app.command()
def variables(
    path: PathArg,
    match: MatchOpt = None,
    tags: TagsOpt = None,
    json: JsonOpt = False,
) -> None:
    """List variables the graph declares, with the checkpoint key its saver uses.

    JSON: a list of {name, dtype, shape, trainable, resource, checkpoint_key, op, device,
    partition (null or {full_name, full_shape, offset, shape}), collections}.
    """
    keep = matcher(match)
    items = [v for v in _load(path, tags).variables() if keep(v.name)]
    if json:
        emit_json(items)
        return
    emit_table(
        ["name", "dtype", "shape", "trainable", "kind", "checkpoint key", "partition"],
        ([v.name, v.dtype, format_shape(v.shape), "?" if v.trainable is None else v.trainable,
          "resource" if v.resource else "ref", v.checkpoint_key, v.partition.spec if v.partition else ""] for v in items),
        title=f"{len(items)} variables",
    )


@app.command()
def collections(
    path: PathArg,
    name: Annotated[str | None, typer.Argument(help="Show this collection's items.", show_default=False)] = None,
    tags: TagsOpt = None,
    json: JsonOpt = False,
) -> None:
    """List collections (name, kind, size), or the items of one.

    JSON: a list of {name, kind, size}; with NAME, {name, kind, size, items}.
    """
    model = _load(path, tags)
    if name is not None:
        found = model.collection(name)
        if found is None:
            known = ", ".join(c.name for c in model.collections()) or "none"
            raise TensorNotFoundError(model.path, f"no collection {name!r} (collections: {known})", name)
        if json:
            emit_json({"name": found.name, "kind": found.kind, "size": found.size, "items": found.items})
            return
        emit_lines(_describe_item(item) for item in found.items)
        return
    items = model.collections()
    if json:
        emit_json([{"name": c.name, "kind": c.kind, "size": c.size} for c in items])
        return
    emit_table(["name", "kind", "size"], ([c.name, c.kind, c.size] for c in items), title=f"{len(items)} collections",
               right=["size"])


def _describe_item(item: Any) -> str:
    if hasattr(item, "DESCRIPTOR"):
        from google.protobuf import text_format

        return f"{item.DESCRIPTOR.name} {{ " + text_format.MessageToString(item, as_one_line=True) + " }"
    if isinstance(item, bytes):
        return repr(item)
    text = str(item)
    # NUL, ESC and other control characters are shown escaped, never sent to the terminal
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@app.command()
def signatures(path: PathArg, tags: TagsOpt = None, json: JsonOpt = False) -> None:
    """List SignatureDefs: method, inputs and outputs with tensor, dtype and shape.

    JSON: {key: {method_name, inputs: {k: {name, dtype, shape}}, outputs: {...}}}.
    """
    sigs = _load(path, tags).signatures()
    if json:
        emit_json({key: {"method_name": s.method_name,
                         "inputs": {k: _spec_json(v) for k, v in s.inputs.items()},
                         "outputs": {k: _spec_json(v) for k, v in s.outputs.items()}} for key, s in sigs.items()})
        return
    rows = []
    for key, sig in sigs.items():
        for direction, specs in (("input", sig.inputs), ("output", sig.outputs)):
            for k, spec in specs.items():
                rows.append([key, sig.method_name, direction, k, spec.name or spec.encoding, spec.dtype,
                             format_shape(spec.shape)])
    emit_table(["signature", "method", "", "key", "tensor", "dtype", "shape"], rows, title=f"{len(sigs)} signatures")


def _spec_json(spec: Any) -> dict[str, Any]:
    out = {"name": spec.name, "dtype": spec.dtype, "shape": spec.shape}
    if spec.encoding != "name":
        out.update(encoding=spec.encoding, components=list(spec.components))
    return out


@app.command()
def ops(
    path: PathArg,
    functions: Annotated[bool, typer.Option("--functions", help="Count ops inside library functions too.")] = False,
    tags: TagsOpt = None,
    json: JsonOpt = False,
) -> None:
    """Op histogram: how many nodes use each op, most used first.

    JSON: a list of {op, count}.
    """
    model = _load(path, tags)
    histogram = model.op_histogram()
    if functions:
        for fn in model.functions():
            histogram.update(n.op for n in fn.nodes)
    items = sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))
    if json:
        emit_json([{"op": op, "count": count} for op, count in items])
        return
    emit_table(["op", "count"], items, title=f"{len(items)} ops, {sum(histogram.values())} nodes", right=["count"])


@app.command()
def info(path: PathArg, tags: TagsOpt = None, json: JsonOpt = False) -> None:
    """One-screen summary: file kind, versions, counts, op histogram, likely inputs and outputs.

    JSON: {path, kind, encoding, meta_graphs (tag sets), tags, tensorflow_version, graph_producer,
    counts {nodes, functions, placeholders, variables, collections, signatures}, saver_version,
    top_ops [{op, count}], inputs [{name, dtype, shape}], outputs [names]}; input and output names
    are tensor names (``x:0``): the serving signature's (serving_default, else the only one) when
    there is one, else the likely ones.
    """
    summary = _summary(_load(path, tags))
    if json:
        emit_json(summary)
        return
    counts = summary["counts"]
    lines = [
        f"{summary['path']}",
        f"  kind         {summary['kind']} ({summary['encoding']})",
        "  meta graphs  " + "; ".join(",".join(t) or "(no tags)" for t in summary["meta_graphs"]),
        f"  TensorFlow   {summary['tensorflow_version'] or 'unrecorded'} (graph producer {summary['graph_producer']})",
        f"  saver        {summary['saver_version'] or 'none'}",
        "  counts       " + ", ".join(f"{v} {k}" for k, v in counts.items()),
        "  top ops      " + ", ".join(f"{o['op']} {o['count']}" for o in summary["top_ops"]),
        "  inputs       "
        + (", ".join(f"{i['name']} {i['dtype']}{format_shape(i['shape'])}" for i in summary["inputs"]) or "none"),
        "  outputs      " + (", ".join(summary["outputs"]) or "none found"),
    ]
    if summary["signatures"]:
        lines.append("  signatures   " + ", ".join(summary["signatures"]))
    emit_lines(lines)


def _summary(model: "Model") -> dict[str, Any]:
    from metainspect.graph.endpoints import summary_endpoints

    meta = model.meta_info()
    sigs = model.signatures()
    shown_inputs, outputs = summary_endpoints(model)
    inputs = [{"name": name, "dtype": dtype, "shape": shape} for name, dtype, shape in shown_inputs]
    histogram = model.op_histogram()
    saver = model.saver_def()
    return {
        "path": model.path, "kind": model.kind, "encoding": model.encoding,
        "meta_graphs": model.all_tags, "tags": model.tags,
        "tensorflow_version": meta["tensorflow_version"], "graph_producer": meta["graph_producer"],
        "counts": {
            "nodes": len(model.graph_def.node), "functions": len(model.graph_def.library.function),
            "placeholders": len(model.placeholders()), "variables": len(model.variables()),
            "collections": len(model.meta_graph.collection_def), "signatures": len(sigs),
        },
        "saver_version": saver["version"] if saver else None,
        "top_ops": [{"op": op, "count": n} for op, n in sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
        "inputs": inputs, "outputs": outputs[:20], "signatures": list(sigs),
    }
