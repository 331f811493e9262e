"""Dtype, shape and arity of a graph tensor ``op:index``, without TensorFlow.

An op's outputs are described by its OpDef: the MetaGraphDef's own ``stripped_op_list`` when it
has one (custom ops included), else the output signatures of stock TF 2.21 ops shipped in
``data/tf_ops.json`` (see :mod:`metainspect.graph.ops`), or the signature of a
function in the graph's library. Shapes come from ``_output_shapes`` attrs, placeholder ``shape``
attrs and Const values; anything unknown is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metainspect.errors import TensorNotFoundError
from metainspect.formats import dtypes
from metainspect.graph.attrs import Shape, shape_to_list
from metainspect.graph.names import parse_tensor_name
from metainspect.graph.ops import CONST_OPS, PLACEHOLDER_OPS, stock_ops

#: outputs one node may have before its count is treated as unknown: a hostile ``N`` attr
#: (2^62, say) would otherwise build a list that size
MAX_OUTPUTS = 1 << 20

if TYPE_CHECKING:
    from metainspect.graph.model import Model, Node

#: one output arg: (fixed dtype enum or 0, type_attr, number_attr, type_list_attr)
OutputArg = tuple[int, str, str, str]


@dataclass(frozen=True)
class OutputSpec:
    """One output tensor of a node: its name (``op:index``), dtype name and shape (None: unknown)."""

    tensor: str
    dtype: str | None
    shape: Shape


def stock_op_outputs() -> dict[str, dict[str, Any]]:
    """Output signatures of every op registered in stock TensorFlow (see module docstring)."""
    return stock_ops()["ops"]  # type: ignore[no-any-return]


def _graph_op_outputs(model: Model) -> dict[str, tuple[list[OutputArg], dict[str, Any]]]:
    """Output signatures from the graph itself: stripped_op_list OpDefs and library functions."""
    cached = model.__dict__.get("_op_outputs")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    found: dict[str, tuple[list[OutputArg], dict[str, Any]]] = {}
    for op in model.meta_graph.meta_info_def.stripped_op_list.op:
        args: list[OutputArg] = [(a.type, a.type_attr, a.number_attr, a.type_list_attr) for a in op.output_arg]
        defaults = {a.name: _attr_default(a.default_value) for a in op.attr if a.HasField("default_value")}
        found[op.name] = (args, defaults)
    for fn in model.graph_def.library.function:
        found[fn.signature.name] = ([(a.type, a.type_attr, a.number_attr, a.type_list_attr)
                                     for a in fn.signature.output_arg], {})
    model.__dict__["_op_outputs"] = found
    return found


def _attr_default(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "type":
        return value.type
    if kind == "i":
        return value.i
    if kind == "list":
        return list(value.list.type)
    return None


def _signature(model: Model, op: str) -> tuple[list[OutputArg], dict[str, Any]] | None:
    own = _graph_op_outputs(model).get(op)
    if own is not None:
        return own
    stock = stock_op_outputs().get(op)
    if stock is None:
        return None
    return [tuple(arg) for arg in stock["out"]], stock.get("defaults", {})


def _dtypes_of(node: Node, args: list[OutputArg], defaults: dict[str, Any]) -> list[int | None] | None:
    """The dtype enum of each output in order, or None when the count cannot be told."""
    attrs = node.proto.attr

    def attr(name: str, kind: str) -> Any:
        """The attr's value when it is of ``kind`` (a hostile graph may give another), else the default."""
        if name in attrs:
            value = attrs[name]
            if value.WhichOneof("value") != kind:
                return None
            return list(value.list.type) if kind == "list" else getattr(value, kind)
        return defaults.get(name)

    result: list[int | None] = []
    for fixed, type_attr, number_attr, type_list_attr in args:
        if type_list_attr:
            types = attr(type_list_attr, "list")
            if not isinstance(types, list):
                return None
            result.extend(types)
            continue
        dtype = fixed or (attr(type_attr, "type") if type_attr else None)
        count = attr(number_attr, "i") if number_attr else 1
        if not isinstance(count, int) or not 0 <= count <= MAX_OUTPUTS:
            return None
        result.extend([dtype] * count)
    return result


def output_count(model: Model, node_name: str) -> int | None:
    """How many outputs a top-level node has, or None when the node or its op's outputs are unknown."""
    node = model.node(node_name)
    if node is None:
        return None
    signature = _signature(model, node.op)
    enums = _dtypes_of(node, *signature) if signature is not None else None
    if enums is not None:
        return len(enums)
    shapes = node.proto.attr["_output_shapes"].list.shape if "_output_shapes" in node.proto.attr else []
    return len(shapes) if shapes else None


def outputs_of(model: Model, node_name: str) -> list[OutputSpec] | None:
    """Every output of a top-level node, or None when the node or its op's outputs are unknown."""
    node = model.node(node_name)
    if node is None:
        return None
    shapes_attr = node.proto.attr["_output_shapes"].list.shape if "_output_shapes" in node.proto.attr else []
    signature = _signature(model, node.op)
    enums = _dtypes_of(node, *signature) if signature is not None else None
    if enums is None:
        if not shapes_attr:
            return None
        enums = [None] * len(shapes_attr)
    result = []
    for index, enum in enumerate(enums):
        shape = shape_to_list(shapes_attr[index]) if index < len(shapes_attr) else None
        if index == 0 and shape is None:
            shape = _own_shape(model, node)
        dtype = dtypes.name_of(enum) if enum else None
        result.append(OutputSpec(f"{node.name}:{index}", dtype, shape))
    return result


def _own_shape(model: Model, node: Node) -> Shape:
    """The shape a Placeholder declares or a Const holds."""
    if node.op in PLACEHOLDER_OPS:
        return model.placeholder_shape(node)
    if node.op in CONST_OPS and "value" in node.proto.attr:
        return shape_to_list(node.proto.attr["value"].tensor.tensor_shape)
    return None


def output_spec(model: Model, tensor: str) -> OutputSpec:
    """The output ``tensor`` names; LookupError (readable message) when there is no such output."""
    name, index = parse_tensor_name(tensor)
    node = model.node(name)
    if node is None or node.name != name:
        raise TensorNotFoundError(None, f"no node named {name!r} in the graph", name)
    outputs = outputs_of(model, name)
    if outputs is None:
        if index == 0:
            return OutputSpec(f"{name}:0", None, None)
        raise LookupError(f"{tensor!r}: the outputs of op {node.op!r} are unknown, cannot confirm output {index}")
    if index >= len(outputs):
        count = len(outputs)
        valid = "none" if not count else f"{name}:0" if count == 1 else f"{name}:0 .. {name}:{count - 1}"
        raise LookupError(f"{tensor!r}: {name!r} ({node.op}) has {count} output{'s' if count != 1 else ''} ({valid})")
    return outputs[index]
