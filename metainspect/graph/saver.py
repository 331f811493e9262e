"""What a graph saves and restores: the TF1 saver's ops, key constants, scope and restore plan.

``SaveV2``/``SaveSlices``/``Save`` take the checkpoint keys they write from a string ``Const``
(input 1, seen through Identity/Snapshot ops), the slice specs from input 2 (not ``Save``) and
the tensors after those; ``RestoreV2`` reads the keys of its key constant into outputs 0..n-1,
with the dtypes of its ``dtypes`` attr; the V1 ``Restore``/``RestoreSlice`` ops read one key
each. ``Saver.restore`` feeds the checkpoint path to the SaverDef's ``filename_tensor_name`` and
runs ``restore_op_name``; ``Saver.save`` fetches ``save_tensor_name``.

:func:`restore_plan` says what the graph restores, in this order of preference:

* ``"saver"``: the restore ops reached from ``restore_op_name``, their keys, slice specs and
  dtypes, and the variable each output is assigned to (what ``Saver.restore`` runs, so custom
  ``var_list`` names and partitions are honoured);
* ``"object_graph"``: a TF2 SavedModel's object graph variables, keyed like its checkpoint;
* ``"variables"``: no usable saver: the keys ``tf.compat.v1.train.Saver()`` would build from the
  graph's variables (names, or ``save_slice_info`` for partitions).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from metainspect.formats import dtypes
from metainspect.formats.tensor_proto import TensorProtoError, element_count, shape_of, to_numpy
from metainspect.graph.attrs import shape_to_list
from metainspect.graph.names import op_name, output_index
from metainspect.graph.ops import (
    ASSIGN_OPS,
    CONST_OPS,
    IDENTITY_OPS,
    RESOURCE_VARIABLE_OPS,
    RESTORE_OPS,
    SAVE_OPS,
    VARIABLE_OPS,
    VARIABLE_READ_OPS,
)

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

    from metainspect.graph.model import Model, Node
    from metainspect.graph.walk import GraphIndex, Region, Scope, Site

SAVER_VERSIONS = {0: "LEGACY", 1: "V1", 2: "V2"}
#: save op -> the attr listing the dtypes of the tensors it saves
SAVED_DTYPES_ATTR: Mapping[str, str] = {"SaveV2": "dtypes", "SaveSlices": "T", "Save": "T"}
#: where a restore plan's keys come from (see the module docstring)
PlanSource = Literal["saver", "object_graph", "variables"]
SAVER: PlanSource = "saver"
OBJECT_GRAPH: PlanSource = "object_graph"
VARIABLES: PlanSource = "variables"
#: name scopes of TF1 savers (``save/``, ``save_1/``…: one per Saver object)
_SAVER_SCOPE = re.compile(r"^save(_\d+)?/")
_STRING_ENUM = dtypes.from_name("string").enum


# -- the saver's scope and constants ------------------------------------------------------------

def saver_scope(meta_graph: MetaGraphDef) -> str | None:
    """Name scope of the TF1 saver's own ops (e.g. ``save/``), from its SaverDef; None without one."""
    name = op_name(meta_graph.saver_def.filename_tensor_name) if meta_graph.HasField("saver_def") else ""
    return name.rpartition("/")[0] + "/" if "/" in name else None


def saver_owned(meta_graph: MetaGraphDef, node_name: str) -> bool:
    """True for the saver's own nodes: its scope, and its filename tensor wherever it is."""
    scope = saver_scope(meta_graph)
    return bool(scope and node_name.startswith(scope)) or \
        node_name == op_name(meta_graph.saver_def.filename_tensor_name)


def key_constant(nodes: Mapping[str, Node], ref: str) -> Node | None:
    """The string constant behind tensor ``ref`` (seen through Identity/Snapshot ops), else None."""
    from metainspect.graph.walk import follow

    node = nodes.get(op_name(follow(nodes, ref, IDENTITY_OPS)))
    if node is None or node.op not in CONST_OPS or "value" not in node.proto.attr:
        return None
    return node if node.proto.attr["value"].tensor.dtype == _STRING_ENUM else None


def string_values(const: NodeDef) -> list[str]:
    """Every value of a string constant node, decoded ([] for any other node).

    However many: a saver of 10^4 variables names them in one constant.
    """
    if "value" not in const.attr or const.attr["value"].tensor.dtype != _STRING_ENUM:
        return []
    proto = const.attr["value"].tensor
    values = list(proto.string_val)
    # the common case, kept fast: one value per element (else TF's fill rules apply)
    if len(values) != element_count(shape_of(proto)):
        # a shape TensorFlow could not fill either leaves the values stored
        with contextlib.suppress(TensorProtoError):
            values = list(to_numpy(proto).flat)
    return [v.decode("utf-8", "replace") for v in values]


def const_strings(nodes: Mapping[str, Node], ref: str) -> list[str]:
    """The values of the string constant behind ``ref`` (see :func:`key_constant`); [] when none."""
    const = key_constant(nodes, ref)
    return string_values(const.proto) if const is not None else []


def key_constants(model: Model) -> Iterator[Node]:
    """Each constant holding checkpoint keys for a save or restore op (once, in graph order)."""
    nodes = model.nodes_by_name()
    seen: set[str] = set()
    for node in model.nodes():
        if (node.op in SAVE_OPS or node.op in RESTORE_OPS) and len(node.inputs) > 1:
            const = key_constant(nodes, node.inputs[1])
            if const is not None and const.name not in seen:
                seen.add(const.name)
                yield const


def checkpoint_keys(model: Model) -> list[str]:
    """Every key the graph's save and restore ops write or read, in first-seen order."""
    return list(dict.fromkeys(key for const in key_constants(model) for key in string_values(const.proto)))


def saver_keys(model: Model) -> dict[str, list[tuple[str, str]]]:
    """What the graph's save ops write: variable op name -> [(checkpoint key, slice spec)].

    Read from the save ops themselves (their key and slice constants, and the tensors wired
    into them), so custom ``var_list`` names are honoured. A saved tensor is attributed to the
    variable it reads (see :func:`metainspect.graph.walk.variable_behind`), else to its own op.
    """
    from metainspect.graph.walk import follow

    nodes = model.nodes_by_name()
    mapping: dict[str, list[tuple[str, str]]] = {}
    for node in model.nodes():
        if node.op not in SAVE_OPS or len(node.inputs) < 3:
            continue
        names = const_strings(nodes, node.inputs[1])
        with_slices = node.op != "Save"
        specs = const_strings(nodes, node.inputs[2]) if with_slices else []
        tensors = node.inputs[3:] if with_slices else node.inputs[2:]
        for i, (key, tensor) in enumerate(zip(names, tensors)):
            spec = specs[i] if i < len(specs) else ""
            mapping.setdefault(op_name(follow(nodes, tensor, VARIABLE_READ_OPS)), []).append((key, spec))
    return mapping


def saved_keys(model: Model) -> tuple[list[Node], set[str]]:
    """The save ops ``save_tensor_name`` runs and the keys they write (nothing without a SaverDef)."""
    from metainspect.graph.walk import index_of, upstream

    index = index_of(model)
    start = model.node(model.meta_graph.saver_def.save_tensor_name) if model.meta_graph.HasField("saver_def") else None
    if start is None:
        return [], set()
    reached = upstream(index, [start.name], stop_ops=SAVE_OPS | RESTORE_OPS | VARIABLE_OPS)
    save_ops = [node for node in model.nodes() if node.name in reached and node.op in SAVE_OPS
                and len(node.inputs) > 1]
    return save_ops, {key for node in save_ops for key in const_strings(index.nodes, node.inputs[1])}


# -- what the saver owns ------------------------------------------------------------------------

def saver_region(index: GraphIndex) -> Region:
    """The saver's nodes: ``save*/`` scopes, the SaverDef's save and restore ops and what they
    depend on (variables and their reads excepted), and the functions those call (a TF2
    SavedModel's traced save/restore functions)."""
    from metainspect.graph.walk import is_variable_read, region, upstream

    memo = index.memo
    if "saver" not in memo:
        model = index.model
        nodes = {name for name in index.nodes if name.startswith("save") and _SAVER_SCOPE.match(name)}
        scope = model.saver_scope()
        if scope:
            nodes |= {name for name in index.nodes if name.startswith(scope)}
        if model.meta_graph.HasField("saver_def"):
            saver = model.meta_graph.saver_def
            roots = [t for t in (saver.save_tensor_name, saver.restore_op_name) if t and op_name(t) in index.nodes]
            nodes |= {name for name in upstream(index, roots)
                      if index.nodes[name].op not in VARIABLE_OPS and not is_variable_read(index.nodes, index.nodes[name])}
        memo["saver"] = region(index, nodes)
    return memo["saver"]  # type: ignore[no-any-return]


def saver_owns(index: GraphIndex, site: Site) -> bool:
    """True when the saver's machinery holds the site (its scope, what its save and restore ops run):
    the device-pin rule. Whether a checkpoint op is a saver's own is :func:`saver_checkpoint_op`."""
    if site.host is None and site.function is None:
        name = site.node.name
        scope = index.model.saver_scope()
        if (name.startswith("save") and _SAVER_SCOPE.match(name)) or (scope and name.startswith(scope)):
            return True
    return site in saver_region(index)


def filename_tensors(meta_graph: MetaGraphDef) -> set[str]:
    """The nodes holding a saver's checkpoint path: ``filename_tensor_name`` of the SaverDef and of
    every SaverDef in the ``savers`` collection."""
    from metainspect.graph.collections import decode_collection

    savers = [meta_graph.saver_def] if meta_graph.HasField("saver_def") else []
    if "savers" in meta_graph.collection_def:
        savers += [item for item in decode_collection("savers", meta_graph.collection_def["savers"]).items
                   if hasattr(item, "filename_tensor_name")]
    return {op_name(saver.filename_tensor_name) for saver in savers if saver.filename_tensor_name}


def saver_checkpoint_op(index: GraphIndex, site: Site) -> bool:
    """True when ``site`` is a checkpoint op of one of the model's savers: its checkpoint path is computed
    from a SaverDef's filename tensor (``save/Const``, ``saver_filename``), directly, through the sharded
    file names, or as the argument of a traced save/restore function called with it.

    Decided by the SaverDef's names, not by name scopes: a ``save_1/SaveV2`` writing a constant
    path is no saver's, and neither is a checkpoint op in a serialized GraphDef.
    """
    from metainspect.graph.ops import CHECKPOINT_OPS, LOCATION_INPUTS
    from metainspect.graph.values import extends_path

    node = site.node
    if node.op not in CHECKPOINT_OPS or node.op not in LOCATION_INPUTS or site.host is not None:
        return False
    if "filename_tensors" not in index.memo:
        index.memo["filename_tensors"] = filename_tensors(index.model.meta_graph)
    targets: set[str] = index.memo["filename_tensors"]
    position = LOCATION_INPUTS[node.op]
    return bool(targets) and position < len(node.inputs) and extends_path(index, site, node.inputs[position], targets)


def unnamed_saver_op(index: GraphIndex, site: Site) -> bool:
    """True for a checkpoint op of a saver no SaverDef names, decided by the ops' wiring, not their names.

    In a graph: a save or restore op whose checkpoint path comes from a filename node (a placeholder
    or constant) that also gives the path of a restore or save op (TF1 builds one such set per
    ``Saver`` object, ``save_1/``, ``save_2/``…; a bare GraphDef has no SaverDef at all). In a
    function: a checkpoint op whose path is computed from the function's arguments (a traced
    save or restore function; who calls it with what is :func:`saver_checkpoint_op`'s question).
    A lone op with a constant path of its own is no saver's.
    """
    from metainspect.graph.ops import CHECKPOINT_OPS, LOCATION_INPUTS

    node = site.node
    position = LOCATION_INPUTS.get(node.op)
    if site.host is not None or node.op not in CHECKPOINT_OPS or position is None or position >= len(node.inputs):
        return False
    if site.function is not None:
        return _reaches_argument(index.scope(site), node.inputs[position])
    if "unnamed_savers" not in index.memo:
        index.memo["unnamed_savers"] = _paired_checkpoint_ops(index)
    return node.name in index.memo["unnamed_savers"]


def _paired_checkpoint_ops(index: GraphIndex) -> set[str]:
    """Graph-level checkpoint ops whose path comes from a filename node that feeds both a save and a restore."""
    from metainspect.graph.ops import CHECKPOINT_OPS, LOCATION_INPUTS, PLACEHOLDER_OPS
    from metainspect.graph.walk import upstream

    roots_of: dict[str, set[str]] = {}
    saving: set[str] = set()
    restoring: set[str] = set()
    for node in index.model.nodes():
        position = LOCATION_INPUTS.get(node.op)
        if node.op not in CHECKPOINT_OPS or position is None or position >= len(node.inputs):
            continue
        reached = upstream(index, [node.inputs[position]], inputs=lambda n: n.inputs)
        roots = roots_of[node.name] = {name for name in reached if index.nodes[name].op in PLACEHOLDER_OPS | CONST_OPS}
        (restoring if node.op in RESTORE_OPS else saving).update(roots)
    paired = saving & restoring
    return {name for name, roots in roots_of.items() if roots & paired}


def _reaches_argument(scope: Scope, ref: str) -> bool:
    """True when tensor ``ref`` of a function body is computed from one of the function's arguments."""
    from metainspect.graph.names import function_input

    pending, seen = [ref], set()
    while pending:
        parsed = function_input(pending.pop())
        if not parsed.output:
            if parsed.node in scope.args:
                return True
            continue
        if parsed.node in seen or parsed.node not in scope.nodes:
            continue
        seen.add(parsed.node)
        pending.extend(scope.nodes[parsed.node].inputs)
    return False


# -- the restore plan ---------------------------------------------------------------------------

class RestoreItem(NamedTuple):
    """One tensor the graph restores: the checkpoint key and what it must look like.

    (A NamedTuple: a saver of 10^4-10^5 variables builds one per variable.)
    """

    key: str
    #: TF1 slice spec of a partition (``"6 4 0,3:0,4"``), ``""`` for a whole tensor
    spec: str
    #: dtype the restore op asks for (None: unknown)
    dtype: str | None
    #: variable node the value is assigned to (None: not assigned to a variable)
    variable: str | None
    #: that variable's shape (None: unknown)
    shape: list[int | None] | None
    #: True when the variable is a resource variable (TF assigns any shape to it)
    resource: bool = False

    @property
    def full_shape(self) -> list[int | None] | None:
        """Shape of the whole checkpoint tensor this item expects (None: unknown)."""
        if not self.spec:
            return self.shape
        parsed = parse_spec(self.spec)
        return list(parsed[0]) if parsed else None


@dataclass(frozen=True)
class RestorePlan:
    """What the graph restores and where that list came from."""

    items: tuple[RestoreItem, ...]
    source: PlanSource
    #: the saver's restore ops, in graph order (empty unless source is "saver")
    restore_ops: tuple[Node, ...] = ()


def restore_plan(model: Model) -> RestorePlan:
    """The restore plan of ``model`` (computed once per model; see the module docstring)."""
    from metainspect.graph.walk import index_of

    memo = index_of(model).memo
    if "restore_plan" not in memo:
        memo["restore_plan"] = _build_plan(model)
    return memo["restore_plan"]  # type: ignore[no-any-return]


def _build_plan(model: Model) -> RestorePlan:
    if model.meta_graph.object_graph_def.nodes:
        items = tuple(RestoreItem(v.checkpoint_key, "", v.dtype, v.name, v.shape, True) for v in model.variables())
        return RestorePlan(items, OBJECT_GRAPH)
    if model.meta_graph.HasField("saver_def"):
        restore_ops, restored = _saver_items(model)
        if restore_ops:
            return RestorePlan(tuple(restored), SAVER, tuple(restore_ops))
    return RestorePlan(tuple(RestoreItem(v.checkpoint_key, v.partition.spec if v.partition else "", v.dtype, v.name,
                                         v.shape, v.resource) for v in model.variables()), VARIABLES)


def _saver_items(model: Model) -> tuple[list[Node], list[RestoreItem]]:
    """Restore ops reached from the SaverDef's restore op, and one item per restored tensor."""
    from metainspect.graph.walk import index_of, upstream

    start = model.node(model.meta_graph.saver_def.restore_op_name)
    if start is None:
        return [], []
    index = index_of(model)
    reached = upstream(index, [start.name], stop_ops=RESTORE_OPS | VARIABLE_OPS)
    in_order = [node for node in model.nodes() if node.name in reached]
    restore_ops = [node for node in in_order if node.op in RESTORE_OPS]
    targets = _assignments(index.nodes, in_order)
    items = []
    for node in restore_ops:
        for i, (key, spec, dtype) in enumerate(_restored_tensors(index.nodes, node)):
            variable = targets.get((node.name, i))
            var_node = index.nodes.get(variable) if variable else None
            items.append(RestoreItem(key, spec, dtype, variable, _variable_shape(var_node),
                                     var_node is not None and var_node.op in RESOURCE_VARIABLE_OPS))
    return restore_ops, items


def _assignments(nodes: Mapping[str, Node], reached: list[Node]) -> dict[tuple[str, int], str]:
    """(restore op, output index) -> the variable an Assign/AssignVariableOp writes it to."""
    from metainspect.graph.walk import follow

    targets = {}
    for node in reached:
        if node.op not in ASSIGN_OPS or len(node.inputs) < 2:
            continue
        source = follow(nodes, node.inputs[1], IDENTITY_OPS)
        targets[(op_name(source), output_index(source))] = op_name(node.inputs[0])
    return targets


def _restored_tensors(nodes: Mapping[str, Node], node: Node) -> list[tuple[str, str, str | None]]:
    """(key, slice spec, dtype) of each output of a RestoreV2/Restore/RestoreSlice node."""
    attrs = node.proto.attr
    names = const_strings(nodes, node.inputs[1]) if len(node.inputs) > 1 else []
    if node.op == "RestoreV2":
        specs = const_strings(nodes, node.inputs[2]) if len(node.inputs) > 2 else []
        types = [dtypes.name_of(t) for t in attrs["dtypes"].list.type] if "dtypes" in attrs else []
        return [(key, specs[i] if i < len(specs) else "", types[i] if i < len(types) else None)
                for i, key in enumerate(names)]
    specs = const_strings(nodes, node.inputs[2]) if node.op == "RestoreSlice" and len(node.inputs) > 2 else []
    dtype = dtypes.name_of(attrs["dt"].type) if "dt" in attrs else None
    return [(names[0], specs[0] if specs else "", dtype)] if names else []


def _variable_shape(node: Node | None) -> list[int | None] | None:
    if node is None or node.op not in VARIABLE_OPS:
        return None
    value = node.proto.attr.get("shape")
    return None if value is None else shape_to_list(value.shape)


def parse_spec(spec: str) -> tuple[tuple[int, ...], list[tuple[int, int]]] | None:
    """``"6 4 0,3:0,4"`` -> full shape ``(6, 4)`` and extents ``[(0, 3), (0, 4)]`` (``-`` = full).

    None when ``spec`` is not a slice spec TF would accept.
    """
    *dims, slices = spec.split(" ")
    parts = slices.split(":")
    if not dims or len(parts) != len(dims):
        return None
    try:
        full = tuple(int(d) for d in dims)
        extents = [(0, size) if part == "-" else _extent(part) for part, size in zip(parts, full)]
    except ValueError:
        return None
    return full, extents


def _extent(text: str) -> tuple[int, int]:
    start, length = text.split(",")
    return int(start), int(length)
