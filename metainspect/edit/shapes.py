"""Change what shape a placeholder accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metainspect.edit.changes import ChangeLog, log_for
from metainspect.errors import Hint, MetainspectError, TensorNotFoundError
from metainspect.graph.attrs import Shape

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto


def format_shape(shape: Shape) -> str:
    if shape is None:
        return "<unknown rank>"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def set_shape(meta_graph: MetaGraphDef, name: str, shape: Shape, log: ChangeLog | None = None) -> None:
    """Set placeholder ``name``'s ``shape`` attr, its ``_output_shapes`` and signature entries.

    Raises MetainspectError when ``name`` is not a Placeholder/PlaceholderWithDefault, or the
    default of a PlaceholderWithDefault does not fit the new shape. Shapes downstream are left
    to TensorFlow, which infers them again when it imports the graph.
    """
    from metainspect.graph.attrs import shape_to_list, shapes_compatible
    from metainspect.graph.names import split_reference
    from metainspect.graph.ops import CONST_OPS, PLACEHOLDER_OPS

    log = log_for(log, "set-shape")
    name = split_reference(name)[1]
    nodes = {node.name: node for node in meta_graph.graph_def.node}
    node = nodes.get(name)
    if node is None or node.op not in PLACEHOLDER_OPS:
        placeholders = ", ".join(n.name for n in meta_graph.graph_def.node if n.op in PLACEHOLDER_OPS) or "none"
        hint = Hint("set_shapes")
        if node is None:
            raise TensorNotFoundError(None, f"{hint.text}: no node {name!r} (placeholders: {placeholders})", name, hint)
        raise MetainspectError(None, f"{hint.text}: {name!r} is a {node.op}, not a placeholder "
                               f"(placeholders: {placeholders})", hint)
    if node.op == "PlaceholderWithDefault" and node.input:
        default = nodes.get(split_reference(node.input[0])[1])
        if default is not None and default.op in CONST_OPS and "value" in default.attr:
            held = shape_to_list(default.attr["value"].tensor.tensor_shape)
            if not shapes_compatible(held, shape):
                hint = Hint("set_shapes", name)
                raise MetainspectError(None, f"{hint.text}: its default value has shape "
                                       f"{format_shape(held)}, which does not fit {format_shape(shape)}", hint)
    old = shape_to_list(node.attr["shape"].shape) if "shape" in node.attr else None
    if "shape" not in node.attr or old != shape:
        _write(node.attr["shape"].shape, shape)
        log.add(f"node {name}", f"shape {format_shape(old)} -> {format_shape(shape)}")
    if "_output_shapes" in node.attr and node.attr["_output_shapes"].list.shape:
        recorded = node.attr["_output_shapes"].list.shape[0]
        if shape_to_list(recorded) != shape:
            _write(recorded, shape)
            log.add(f"node {name}", f"_output_shapes[0] -> {format_shape(shape)}")
    for key in sorted(meta_graph.signature_def):
        signature = meta_graph.signature_def[key]
        for direction, infos in (("input", signature.inputs), ("output", signature.outputs)):
            for info_key in sorted(infos):
                info = infos[info_key]
                if (info.WhichOneof("encoding") == "name" and split_reference(info.name)[1:] in ((name, ""), (name, ":0"))
                        and shape_to_list(info.tensor_shape) != shape):
                    _write(info.tensor_shape, shape)
                    log.add(f"signature {key}", f"{direction} {info_key} shape -> {format_shape(shape)}")


def _write(proto: TensorShapeProto, shape: Shape) -> None:
    proto.Clear()
    if shape is None:
        proto.unknown_rank = True
        return
    for dim in shape:
        proto.dim.add(size=-1 if dim is None else dim)
