"""Freeze a TF1 graph without TensorFlow: variables become constants, the graph is pruned.

The result is a ``GraphDef`` that ``tf.import_graph_def`` loads: only the nodes the outputs
need (placeholders included), every variable read replaced by checkpoint values:

* ref variables (``VariableV2``/``Variable``): the variable node becomes a ``Const`` of the same
  name, so its ``Identity`` reads and ``loc:@`` colocations stay valid;
* resource variables (``VarHandleOp``): the handle becomes a ``Const`` holding the value,
  ``ReadVariableOp`` reads become ``Identity`` and ``ResourceGather`` becomes ``GatherV2``;
* partitioned variables: each part holds its slice of the full checkpoint tensor (the graph's
  own ``ConcatV2`` of the parts, if any, stays).

A variable consumed any other way (assigned, updated, passed into a function call) cannot be
frozen; :class:`FreezeError` names the node.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.errors import Hint, MetainspectError
from metainspect.formats import dtypes
from metainspect.formats.graph_file import PROTOBUF_LIMIT
from metainspect.graph.model import Node
from metainspect.graph.names import op_name
from metainspect.graph.ops import IDENTITY_OPS, REF_VARIABLE_OPS, RESOURCE_VARIABLE_OPS, VARIABLE_OPS
from metainspect.graph.walk import function_refs, index_of, upstream
from metainspect.progress import Progress, silent

if TYPE_CHECKING:
    import numpy as np
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef
    from tensorboard.compat.proto.op_def_pb2 import OpDef

    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Model, Variable


class FreezeError(MetainspectError):
    """The graph cannot be frozen to the requested outputs."""


@dataclass(frozen=True)
class FrozenGraph:
    """A frozen graph and what went into it."""

    graph_def: GraphDef
    #: constant node name -> checkpoint key it was read from (``key[slice]`` for a partition)
    constants: dict[str, str]
    #: placeholders the outputs still need (the frozen graph's inputs)
    placeholders: list[str]
    outputs: list[str]
    #: nodes of the original graph left out
    pruned: int


def freeze(model: Model, checkpoint: Checkpoint | None, outputs: list[str], *,
           clear_devices: bool = False, progress: Progress = silent) -> FrozenGraph:
    """Freeze ``model`` to ``outputs`` (tensor or node names) with values from ``checkpoint``."""
    roots = [_existing_node(model, name) for name in outputs]
    kept = _reachable(model, roots)
    nodes = model.nodes_by_name()
    variables = {name for name in kept if nodes[name].op in VARIABLE_OPS}
    if variables and checkpoint is None:
        hint = Hint("give_checkpoint")
        raise FreezeError(model.path, f"outputs read {len(variables)} variables but there is no checkpoint; {hint.text}",
                          hint)
    opdefs = {op.name: op for op in model.meta_graph.meta_info_def.stripped_op_list.op}
    for name in kept:
        _check_variable_inputs(model, nodes[name], opdefs)
    values = _VariableValues(model, checkpoint) if checkpoint is not None else None
    graph_def = _new_graph_def(model)
    constants: dict[str, str] = {}
    taken = {n.name for n in model.nodes()}
    for node in (n for n in model.nodes() if n.name in kept):
        out = graph_def.node.add()
        if node.name in variables:
            assert values is not None
            value, source = values.read(node.name)
            try:
                _make_const(out, node.proto, value)
            except ValueError as exc:
                raise FreezeError(model.path, f"variable {node.name!r}: {exc}") from None
            constants[node.name] = source
            progress("reading variables", len(constants), len(variables))
        else:
            out.CopyFrom(node.proto)
            _rewire_resource_read(out, variables, graph_def, taken)
        _drop_dangling_colocation(out, kept)
        if clear_devices:
            out.device = ""
    _keep_functions(graph_def, model.graph_def.library)
    if clear_devices:
        for function in graph_def.library.function:
            for body_node in function.node_def:
                body_node.device = ""
    size = graph_def.ByteSize()
    if size > PROTOBUF_LIMIT:
        raise FreezeError(model.path, f"the frozen graph would be {size / 2**30:.1f} GiB; protobuf cannot hold 2 GiB or more")
    placeholders = [n.name for n in model.placeholders(include_saver=True) if n.name in kept]
    return FrozenGraph(graph_def, constants, placeholders, [op_name(o) for o in outputs],
                       len(model.nodes()) - len(kept))


# -- which nodes -----------------------------------------------------------------------------

def _existing_node(model: Model, name: str) -> str:
    node = model.node(name)
    if node is None:
        close = difflib.get_close_matches(op_name(name), [n.name for n in model.nodes()], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise FreezeError(model.path, f"output {name!r}: no such node in the graph{hint}")
    return node.name


def _reachable(model: Model, roots: list[str]) -> set[str]:
    """Nodes the roots depend on (data and control inputs), not looking behind variables.

    A resource variable's ReadVariableOp needs only the handle: the constant replacing the
    variable needs no ordering against updates, so its control inputs are not followed.
    """
    def inputs(node: Node) -> tuple[str, ...]:
        if node.op == "ReadVariableOp" and _is_variable(model, node.inputs[0], RESOURCE_VARIABLE_OPS):
            return node.inputs[:1]
        return (*node.inputs, *node.control_inputs)

    kept = upstream(index_of(model), roots, stop_ops=VARIABLE_OPS, inputs=inputs)
    for node in model.nodes():
        if node.name in kept and node.op not in VARIABLE_OPS:
            for source in inputs(node):
                if model.node(source) is None:
                    raise FreezeError(model.path, f"node {node.name!r} takes input {source!r}, which is not in the graph")
    return kept


def _is_variable(model: Model, tensor: str, ops: frozenset[str]) -> bool:
    node = model.node(tensor)
    return node is not None and node.op in ops


def _check_variable_inputs(model: Model, node: Node, opdefs: dict[str, OpDef]) -> None:
    """Refuse a kept node that uses a variable other than by reading it."""
    for position, tensor in enumerate(node.inputs):
        source = model.node(tensor)
        if source is None:
            continue
        if source.op in RESOURCE_VARIABLE_OPS:
            if node.op == "ReadVariableOp" or (node.op == "ResourceGather" and position == 0):
                continue
            raise FreezeError(model.path, f"node {node.name!r} ({node.op}) uses resource variable {source.name!r} "
                              "other than by reading it (update, function call or handle copy); cannot freeze it")
        if source.op in REF_VARIABLE_OPS and _takes_ref(node.proto, position, opdefs.get(node.op)):
            raise FreezeError(model.path, f"node {node.name!r} ({node.op}) writes variable {source.name!r}; "
                              "freeze to outputs that do not update variables")


def _takes_ref(node: NodeDef, position: int, opdef: OpDef | None) -> bool:
    """Whether input ``position`` of ``node`` is a ref input (unknown ops count as writers)."""
    if opdef is None:
        return node.op not in IDENTITY_OPS
    refs: list[bool] = []
    for arg in opdef.input_arg:
        if arg.number_attr:
            count = node.attr[arg.number_attr].i if arg.number_attr in node.attr else _default_int(opdef, arg.number_attr)
        elif arg.type_list_attr:
            count = len(node.attr[arg.type_list_attr].list.type) if arg.type_list_attr in node.attr else 0
        else:
            count = 1
        refs.extend([arg.is_ref] * count)
    return refs[position] if position < len(refs) else True


def _default_int(opdef: OpDef, attr: str) -> int:
    return next((a.default_value.i for a in opdef.attr if a.name == attr), 1)


# -- values ----------------------------------------------------------------------------------

class _VariableValues:
    """Checkpoint values for graph variables, partitions cut from their full tensor."""

    def __init__(self, model: Model, checkpoint: Checkpoint) -> None:
        self.model = model
        self.checkpoint = checkpoint
        self.by_name: dict[str, Variable] = {v.name: v for v in model.variables()}
        self._full: dict[str, np.ndarray] = {}

    def read(self, name: str) -> tuple[np.ndarray, str]:
        """The value of variable op ``name`` and where it came from (``key`` or ``key[spec]``)."""
        variable = self.by_name.get(name)
        key = variable.checkpoint_key if variable else name
        partition = variable.partition if variable else None
        full = self._tensor(name, key)
        if partition is None:
            self._expect(name, key, full.shape, variable.shape if variable else None)
            return full, key
        self._expect(name, key, full.shape, list(partition.full_shape))
        index = tuple(slice(o, o + s) for o, s in zip(partition.offset, partition.shape))
        return full[index], f"{key}[{partition.spec}]"

    def _tensor(self, name: str, key: str) -> np.ndarray:
        if key not in self._full:
            if key not in self.checkpoint:
                close = difflib.get_close_matches(key, self.checkpoint.keys(), n=3)
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise FreezeError(self.checkpoint.prefix, f"no tensor {key!r} for variable {name!r}{hint}")
            self._full[key] = self.checkpoint.get(key)
        return self._full[key]

    def _expect(self, name: str, key: str, found: tuple[int, ...], wanted: list[int | None] | None) -> None:
        if wanted is None or (len(wanted) == len(found) and all(w is None or w == f for w, f in zip(wanted, found))):
            return
        raise FreezeError(self.checkpoint.prefix, f"tensor {key!r} has shape {list(found)}, "
                          f"variable {name!r} needs {wanted}")


def _make_const(out: NodeDef, variable: NodeDef, value: np.ndarray) -> None:
    from metainspect.formats.tensor_proto import encode

    dtype = dtypes.from_enum(variable.attr["dtype"].type)
    out.name = variable.name
    out.op = "Const"
    out.device = variable.device
    out.attr["dtype"].type = dtype.enum
    out.attr["value"].tensor.CopyFrom(encode(value, dtype.name))


# -- rewiring --------------------------------------------------------------------------------

def _rewire_resource_read(node: NodeDef, variables: set[str], graph_def: GraphDef, taken: set[str]) -> None:
    """Turn reads of a frozen resource variable into reads of its constant."""
    if not node.input or op_name(node.input[0]) not in variables:
        return
    if node.op == "ReadVariableOp":
        dtype = node.attr["dtype"].type
        node.op = "Identity"
        del node.attr["dtype"]
        node.attr["T"].type = dtype
        del node.input[1:]  # a constant needs no control dependencies
    elif node.op == "ResourceGather":
        axis = graph_def.node.add()
        axis.name = _unique(f"{node.name}/axis", taken)
        axis.op = "Const"
        axis.attr["dtype"].type = dtypes.from_name("int32").enum
        axis.attr["value"].tensor.CopyFrom(_int32_scalar(0))
        dtype = node.attr["dtype"].type
        node.op = "GatherV2"
        node.input.insert(2, axis.name)
        node.attr["Tparams"].type = dtype
        node.attr["Taxis"].type = dtypes.from_name("int32").enum
        for name in ("dtype", "validate_indices"):
            if name in node.attr:
                del node.attr[name]


def _int32_scalar(value: int):  # type: ignore[no-untyped-def]
    import numpy as np

    from metainspect.formats.tensor_proto import encode

    return encode(np.array(value, dtype=np.int32))


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    taken.add(candidate)
    return candidate


def _drop_dangling_colocation(node: NodeDef, kept: set[str]) -> None:
    """Keep only ``loc:@`` colocations with nodes that are still in the graph."""
    if "_class" not in node.attr:
        return
    values = [v for v in node.attr["_class"].list.s if not v.startswith(b"loc:@") or v[5:].decode() in kept]
    if values:
        del node.attr["_class"].list.s[:]
        node.attr["_class"].list.s.extend(values)
    else:
        del node.attr["_class"]


# -- graph-level pieces ----------------------------------------------------------------------

def _new_graph_def(model: Model) -> GraphDef:
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    graph_def = GraphDef()
    source = model.graph_def
    if source.HasField("versions"):
        graph_def.versions.CopyFrom(source.versions)
    return graph_def


def _keep_functions(graph_def: GraphDef, library) -> None:  # type: ignore[no-untyped-def]
    """Copy the library functions (and their gradients) the kept nodes call, transitively."""
    by_name = {f.signature.name: f for f in library.function}
    if not by_name:
        return
    gradients = {g.function_name: g.gradient_func for g in library.gradient}
    used: set[str] = set()
    stack: list[NodeDef] = list(graph_def.node)
    while stack:
        node = stack.pop()
        for name in (node.op, *function_refs(Node.from_proto(node))):
            for fn in (name, gradients.get(name, "")):
                if fn in by_name and fn not in used:
                    used.add(fn)
                    stack.extend(by_name[fn].node_def)
    for name in sorted(used):
        graph_def.library.function.add().CopyFrom(by_name[name])
    for gradient in library.gradient:
        if gradient.function_name in used:
            graph_def.library.gradient.add().CopyFrom(gradient)
