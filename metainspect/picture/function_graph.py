"""A library function as a GraphDef: its body nodes plus one node per argument and per result.

Inside a FunctionDef, a data input reads ``node:output_arg:index`` (or names a function argument)
and the results are a map from output argument to such a reference. The GraphDef built here is
what a graph viewer expects instead: each argument becomes an ``_Arg`` node and each result a
``_Retval`` node (the ops TensorFlow itself instantiates functions with), and every reference
becomes ``node:K`` with K the flat output index. K is counted from the OpDef when the graph
carries one (``stripped_op_list``) or the callee is a library function; otherwise the index
within the output argument is kept, which is exact for ops with one output argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metainspect.errors import MetainspectError
from metainspect.graph.names import split_reference

if TYPE_CHECKING:
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

    from metainspect.graph.model import Model

#: op of the node standing for a function argument / result
ARG_OP = "_Arg"
RETVAL_OP = "_Retval"


class NoSuchFunctionError(MetainspectError):
    """The graph's function library has no function of that name."""


def function_graph_def(model: Model, name: str) -> GraphDef:
    """The body of library function ``name`` as a GraphDef (the library kept for nested calls)."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    library = model.graph_def.library
    found = [fn for fn in library.function if fn.signature.name == name]
    if not found:
        known = sorted(fn.signature.name for fn in library.function)
        listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise NoSuchFunctionError(model.path, f"no function {name!r} in the graph's library"
                                  + (f" (functions: {listed})" if known else " (the library is empty)"))
    fn = found[0]
    graph = GraphDef()
    graph.versions.CopyFrom(model.graph_def.versions)
    graph.library.CopyFrom(library)
    args = {arg.name for arg in fn.signature.input_arg}
    offsets = _OutputOffsets(model)
    for index, arg in enumerate(fn.signature.input_arg):
        node = graph.node.add(name=arg.name, op=ARG_OP)
        node.attr["index"].i = index
        _set_type(node, arg)
    bodies = {proto.name: proto for proto in fn.node_def}
    for proto in fn.node_def:
        node = graph.node.add()
        node.CopyFrom(proto)
        del node.input[:]
        node.input.extend(_graph_reference(ref, args, bodies, offsets) for ref in proto.input)
    taken = args | set(bodies)
    for index, arg in enumerate(fn.signature.output_arg):
        node = graph.node.add(name=_unique(arg.name, taken), op=RETVAL_OP)
        node.attr["index"].i = index
        _set_type(node, arg)
        if arg.name in fn.ret:
            node.input.append(_graph_reference(fn.ret[arg.name], args, bodies, offsets))
    for control in sorted(fn.control_ret.values()):
        if control in bodies:
            node = graph.node.add(name=_unique(f"{control}/control_ret", taken), op=RETVAL_OP)
            node.input.append("^" + control)
    return graph


def _set_type(node: NodeDef, arg: Any) -> None:
    if arg.type:
        node.attr["T"].type = arg.type
    elif arg.type_attr:
        node.attr["T"].placeholder = arg.type_attr


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def _graph_reference(ref: str, args: set[str], bodies: dict[str, NodeDef], offsets: _OutputOffsets) -> str:
    """``node:out:2`` -> ``node:K``; an argument name or ``^node`` is kept."""
    control, head, suffix = split_reference(ref)
    if control or head in args:
        return ref
    node, sep, output = head.partition(":")
    if not sep:  # a plain node name (some writers use it for output 0)
        return ref
    index = int(suffix[1:]) if suffix else 0
    body = bodies.get(node)
    flat = offsets.offset(body, output) + index if body is not None else index
    return node if flat == 0 else f"{node}:{flat}"


class _OutputOffsets:
    """Where each named output argument of an op starts among its flat outputs."""

    def __init__(self, model: Model) -> None:
        self._defs: dict[str, list[Any]] = {op.name: list(op.output_arg)
                                            for op in model.meta_graph.meta_info_def.stripped_op_list.op}
        self._defaults: dict[str, dict[str, Any]] = {
            op.name: {a.name: a.default_value for a in op.attr if a.HasField("default_value")}
            for op in model.meta_graph.meta_info_def.stripped_op_list.op}
        for fn in model.graph_def.library.function:
            self._defs[fn.signature.name] = list(fn.signature.output_arg)

    def offset(self, node: NodeDef, output: str) -> int:
        args = self._defs.get(node.op)
        if args is None:
            return 0
        start = 0
        for arg in args:
            if arg.name == output:
                return start
            start += self._count(node, arg)
        return 0

    def _count(self, node: NodeDef, arg: Any) -> int:
        defaults = self._defaults.get(node.op, {})
        if arg.number_attr:
            value = node.attr[arg.number_attr] if arg.number_attr in node.attr else defaults.get(arg.number_attr)
            return int(value.i) if value is not None else 1
        if arg.type_list_attr:
            value = node.attr[arg.type_list_attr] if arg.type_list_attr in node.attr else defaults.get(arg.type_list_attr)
            return len(value.list.type) if value is not None else 1
        return 1
