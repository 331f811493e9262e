"""The security check: ops that run Python, load code, or touch files, wherever they hide.

Nodes are searched in the graph, in every library function body (``tf.data`` map functions,
``dataset_factory`` functions…) and in GraphDefs serialized inside attributes. Severity:
running Python or loading code is an error anywhere; file and checkpoint I/O is a warning on
the inference path (every request does it) and informational elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding
from metainspect.graph.endpoints import served_endpoints
from metainspect.graph.names import op_name
from metainspect.graph.ops import CHECKPOINT_OPS, CODE_LOADING_OPS, CONST_OPS, FILE_READ_OPS, FILE_WRITE_OPS, PYTHON_OPS
from metainspect.graph.saver import saver_owns
from metainspect.graph.walk import GRAPH, GraphIndex, Site, index_of, inference_path

if TYPE_CHECKING:
    from metainspect.graph.model import Node

#: what a flagged node does
Kind = Literal["python", "code", "read", "write", "checkpoint"]

#: PrintV2 ``output_stream`` values that do not name a file
_CONSOLE_STREAMS = frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"})


def check_security(ctx: CheckContext) -> list[Finding]:
    """Python calls, code loading, file and checkpoint I/O, in graph, functions and nested graphs."""
    index = index_of(ctx.model)
    flagged: list[tuple[Site, Kind]] = index.scan(_kind)
    flagged = [(site, kind) for site, kind in flagged if not (kind == "checkpoint" and saver_owns(index, site))]
    if not flagged:
        return []
    served = served_endpoints(ctx.model, ctx.inputs, ctx.outputs)
    paths = [inference_path(index, outputs, fed) for _, outputs, fed in served]
    prune = ",".join(dict.fromkeys(op_name(t) for _, outputs, _ in served for t in outputs))
    fix_off_path = (f"the served outputs do not need it: metainspect edit {ctx.model.path} -o OUT --prune-to {prune}"
                    if prune else "name the served outputs (--output KEY=TENSOR) to see whether they need it")
    return [_finding(index, site, kind, any(site in path for path in paths), fix_off_path) for site, kind in flagged]


def _kind(node: Node) -> Kind | None:
    op = node.op
    if op in PYTHON_OPS:
        return "python"
    if op in CODE_LOADING_OPS:
        return "code"
    if op in FILE_READ_OPS:
        return "read"
    if op in FILE_WRITE_OPS or (op == "PrintV2" and _print_target(node) is not None):
        return "write"
    if op in CHECKPOINT_OPS:
        return "checkpoint"
    return None


def _print_target(node: Node) -> str | None:
    """The file a PrintV2 node writes to (``output_stream: "file://…"``), None for the console."""
    attr = node.proto.attr
    stream = attr["output_stream"].s.decode("utf-8", "replace") if "output_stream" in attr else "stderr"
    return None if stream in _CONSOLE_STREAMS else stream


_TEXT: dict[Kind, tuple[str, str]] = {
    "python": ("security.python-op", "calls a Python function by token; it runs only in the Python process "
               "that built the graph (elsewhere it fails, TF Serving cannot run it) and executes whatever "
               "Python is registered under that token"),
    "code": ("security.load-library", "loads native code into the process that runs the graph"),
    "read": ("security.file-read", "reads files from the machine that runs the graph"),
    "write": ("security.file-write", "writes files on the machine that runs the graph"),
    "checkpoint": ("security.checkpoint-io", "reads or writes checkpoint files outside the graph's saver"),
}


def _finding(index: GraphIndex, site: Site, kind: Kind, served: bool, fix_off_path: str) -> Finding:
    finding_id, consequence = _TEXT[kind]
    node = site.node
    if kind in ("python", "code"):
        severity = ERROR
    else:
        severity = WARNING if served else INFO
    where = "" if site.where == GRAPH else f" in {site.where}"
    target = _target(index, site)
    detail = f" ({target})" if target else ""
    scope = "on the inference path, so every request does it" if served else "not on the inference path"
    message = f"{node.op} node {node.name!r}{where}{detail} {consequence}; {scope}"
    return Finding(finding_id, severity, message, node.name, _fix(kind, served, fix_off_path),
                   {"op": node.op, "where": site.where, "on_inference_path": served, "target": target})


def _target(index: GraphIndex, site: Site) -> str | None:
    """What the node touches when the graph says so: a Python token, a file name constant."""
    node = site.node
    attr = node.proto.attr
    if site.where == GRAPH and node.inputs and node.op in FILE_READ_OPS | FILE_WRITE_OPS:
        source = index.nodes.get(op_name(node.inputs[0]))
        values = source.proto.attr["value"].tensor.string_val \
            if source is not None and source.op in CONST_OPS and "value" in source.proto.attr else []
        if len(values) == 1:
            return values[0].decode("utf-8", "replace")
    if node.op in PYTHON_OPS and "token" in attr:
        return f"token {attr['token'].s.decode('utf-8', 'replace')}"
    if node.op == "PrintV2":
        return _print_target(node)
    if node.op == "ImmutableConst" and "memory_region_name" in attr:
        return attr["memory_region_name"].s.decode("utf-8", "replace")
    return None


def _fix(kind: Kind, served: bool, fix_off_path: str) -> str:
    if kind == "python":
        return "re-implement the function with TensorFlow ops (a py_func cannot be exported), then re-export"
    if kind == "code":
        return "do not load this graph unless you trust its author and the library it loads"
    if served:
        return "make the served outputs independent of it (choose other --output tensors or rebuild the model)"
    return fix_off_path
