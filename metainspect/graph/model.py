"""The query model over one meta graph: nodes, placeholders, variables, collections, signatures.

``load_model(path)`` accepts a ``.meta``, a ``.pb``/``.pbtxt`` GraphDef, a SavedModel (directory
or ``saved_model.pb``) or a checkpoint prefix with a ``.meta`` beside it. Everything is computed
from the protos on demand; nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

from metainspect.errors import WrongKindError
from metainspect.formats import dtypes
from metainspect.formats.detect import find_graph_file
from metainspect.formats.graph_file import GRAPH_DEF, SAVED_MODEL, read_graph_file
from metainspect.graph.attrs import Shape, attr_value, shape_to_list
from metainspect.graph.collections import VARIABLE_COLLECTIONS
from metainspect.graph.names import op_name
from metainspect.graph.ops import PLACEHOLDER_OPS, RESOURCE_VARIABLE_OPS, VARIABLE_OPS

if TYPE_CHECKING:
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef, TensorInfo
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

    from metainspect.edit.editor import Editor
    from metainspect.formats.graph_file import GraphFile

#: what a CollectionDef holds ("empty" when it holds nothing)
CollectionKind = Literal["node_list", "bytes_list", "int64_list", "float_list", "any_list", "empty"]
#: how a TensorInfo names its tensor: by name, as a sparse tensor's parts, or as a composite's components
TensorEncoding = Literal["name", "coo_sparse", "composite_tensor"]

#: graphs up to this producer version write an empty Placeholder ``shape`` attr for "unknown shape"
LEGACY_PLACEHOLDER_PRODUCER = 21

_new_tuple = tuple.__new__


class Node(NamedTuple):
    """One NodeDef with its inputs split into data and control inputs.

    A NamedTuple built with ``tuple.__new__``: graphs hold 10^5 nodes and a frozen dataclass
    costs twice as much to build. Equality and hashing leave the proto out.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    control_inputs: tuple[str, ...]
    device: str
    proto: NodeDef

    @classmethod
    def from_proto(cls, proto: NodeDef) -> Node:
        names = proto.input[:]  # a list in one call: twice as fast as iterating the field
        # TF requires control inputs (``^x``) after the data inputs: the last one tells
        if names and names[-1][:1] == "^":
            control = tuple([name[1:] for name in names if name[:1] == "^"])
            names = [name for name in names if name[:1] != "^"]
        else:
            control = ()
        return _new_tuple(cls, (proto.name, proto.op, tuple(names), control, proto.device, proto))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and self[:5] == other[:5]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self[:5])

    @property
    def attrs(self) -> dict[str, Any]:
        """Attrs decoded to Python values (dtype names, shape lists, small arrays)."""
        return {key: attr_value(value) for key, value in sorted(self.proto.attr.items())}

    @property
    def colocation(self) -> list[str]:
        """Ops this node must be colocated with (``_class: loc:@name`` attrs)."""
        values = self.proto.attr["_class"].list.s if "_class" in self.proto.attr else []
        # node names are UTF-8 (NodeDef.name is a proto3 string); other bytes decode to a name no node has
        return [v[5:].decode("utf-8", "replace") for v in values if v.startswith(b"loc:@")]


@dataclass(frozen=True)
class Placeholder:
    """A graph input: a Placeholder or PlaceholderWithDefault node."""

    name: str
    op: str
    dtype: str
    shape: Shape

    @property
    def tensor(self) -> str:
        return f"{self.name}:0"

    @property
    def has_default(self) -> bool:
        return self.op == "PlaceholderWithDefault"


@dataclass(frozen=True)
class Partition:
    """Where one part of a partitioned variable sits in the full tensor (SaveSliceInfoDef)."""

    full_name: str
    full_shape: tuple[int, ...]
    offset: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def spec(self) -> str:
        """The slice spec TF1 savers write, e.g. ``"10 4 0,5:0,4"``."""
        extents = ":".join(f"{o},{s}" for o, s in zip(self.offset, self.shape))
        return " ".join(str(d) for d in self.full_shape) + " " + extents


@dataclass(frozen=True)
class Variable:
    """A variable the graph declares, with the checkpoint key its saver uses."""

    name: str
    dtype: str
    shape: Shape
    trainable: bool | None
    resource: bool
    checkpoint_key: str
    op: str = ""
    device: str = ""
    partition: Partition | None = None
    collections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Collection:
    """One CollectionDef with its items decoded (node names, VariableDefs, strings, numbers…)."""

    name: str
    kind: CollectionKind
    items: list[Any]

    @property
    def size(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class TensorSpec:
    """A TensorInfo: the tensor a signature key maps to, with dtype and shape."""

    name: str | None
    dtype: str | None  # None when the TensorInfo records no dtype (e.g. an init op)
    shape: Shape
    encoding: TensorEncoding = "name"
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signature:
    """A SignatureDef."""

    key: str
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


@dataclass(frozen=True)
class Function:
    """A function of the graph's FunctionDefLibrary with its body nodes."""

    name: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    nodes: list[Node]


def tensor_spec(info: TensorInfo) -> TensorSpec:
    """Decode a TensorInfo."""
    dtype = dtypes.name_of(info.dtype) if info.dtype else None
    shape = shape_to_list(info.tensor_shape)
    encoding = cast("TensorEncoding", info.WhichOneof("encoding") or "name")
    if encoding == "coo_sparse":
        coo = info.coo_sparse
        parts: tuple[str, ...] = (coo.values_tensor_name, coo.indices_tensor_name, coo.dense_shape_tensor_name)
        return TensorSpec(coo.values_tensor_name, dtype, shape, encoding, parts)
    if encoding == "composite_tensor":
        parts = tuple(c.name for c in info.composite_tensor.components)
        return TensorSpec(None, dtype, shape, encoding, parts)
    return TensorSpec(info.name, dtype, shape)


class Model:
    """One meta graph read from a graph file, with query methods.

    ``source`` is the path the model was loaded from as given (a directory, a checkpoint
    prefix…; ``path`` is the graph file itself) and ``graph_file`` the whole file it is part of
    (every meta graph of a SavedModel): :meth:`edit` writes the file back from them.
    """

    def __init__(self, path: str, kind: str, encoding: str, meta_graph: MetaGraphDef,
                 all_tags: list[list[str]], schema_version: int | None = None, *,
                 source: str | None = None, graph_file: GraphFile | None = None) -> None:
        self.path = path
        self.kind = kind
        self.encoding = encoding
        self.meta_graph = meta_graph
        self.all_tags = all_tags
        self.saved_model_schema_version = schema_version
        self.source = source if source is not None else path
        self.graph_file = graph_file

    def edit(self, *, copy: bool = True) -> Editor:
        """An editor over a copy of this model: chain edits, then ``.model()`` or ``.save(path)``.

        ``copy=False`` edits this model's own protos instead (no copy of a large graph); the
        model must not be used afterwards.
        """
        from metainspect.edit.editor import Editor

        return Editor(self, copy=copy)

    # -- basic facts -------------------------------------------------------------------------
    @property
    def graph_def(self) -> GraphDef:
        return self.meta_graph.graph_def

    @property
    def tags(self) -> list[str]:
        return list(self.meta_graph.meta_info_def.tags)

    def meta_info(self) -> dict[str, Any]:
        """Versions, tags and the stripped op list recorded in MetaInfoDef and GraphDef."""
        info = self.meta_graph.meta_info_def
        versions = self.graph_def.versions
        return {
            "tags": list(info.tags),
            # a bare GraphDef has no MetaInfoDef at all
            "tensorflow_version": None if self.kind == GRAPH_DEF else info.tensorflow_version,
            "tensorflow_git_version": info.tensorflow_git_version,
            "meta_graph_version": info.meta_graph_version,
            "stripped_default_attrs": info.stripped_default_attrs,
            "stripped_op_list": sorted(op.name for op in info.stripped_op_list.op),
            "graph_producer": self.graph_producer,
            "graph_min_consumer": versions.min_consumer,
        }

    @property
    def graph_producer(self) -> int:
        """The GraphDef's producer version (its deprecated ``version`` field in graphs that predate ``versions``)."""
        return self.graph_def.versions.producer or self.graph_def.version

    # -- nodes -------------------------------------------------------------------------------
    @cached_property
    def _nodes(self) -> list[Node]:
        from_proto = Node.from_proto
        return [from_proto(proto) for proto in self.graph_def.node]

    @cached_property
    def _by_name(self) -> dict[str, Node]:
        return {node.name: node for node in self._nodes}

    def nodes(self) -> list[Node]:
        """Top-level graph nodes, in file order (function bodies are in :meth:`functions`)."""
        return self._nodes

    def nodes_by_name(self) -> dict[str, Node]:
        """Top-level nodes by name (shared and cached: do not modify)."""
        return self._by_name

    def node(self, name: str) -> Node | None:
        """The node named ``name`` (a tensor name like ``x:0`` works too)."""
        found = self._by_name.get(name)  # node names never hold ':' or '^': try as given first
        return found if found is not None else self._by_name.get(op_name(name))

    def op_histogram(self) -> Counter[str]:
        """How many top-level nodes use each op."""
        return Counter(proto.op for proto in self.graph_def.node)

    def consumers(self) -> dict[str, list[str]]:
        """For each node name, the nodes taking it as a data or control input."""
        out: dict[str, list[str]] = {}
        for node in self._nodes:
            for name in node.inputs + node.control_inputs:
                out.setdefault(op_name(name), []).append(node.name)
        return out

    def functions(self) -> list[Function]:
        """The function library, each function with its body nodes."""
        result = []
        for fn in self.graph_def.library.function:
            sig = fn.signature
            result.append(Function(
                sig.name,
                [(arg.name, dtypes.name_of(arg.type)) for arg in sig.input_arg],
                [(arg.name, dtypes.name_of(arg.type)) for arg in sig.output_arg],
                [Node.from_proto(proto) for proto in fn.node_def],
            ))
        return result

    # -- inputs ------------------------------------------------------------------------------
    def saver_scope(self) -> str | None:
        """Name scope of the TF1 saver's own ops (e.g. ``save/``), if the graph has one."""
        from metainspect.graph.saver import saver_scope

        return saver_scope(self.meta_graph)

    def placeholders(self, include_saver: bool = False) -> list[Placeholder]:
        """Graph inputs; the saver's own filename placeholders are left out unless asked for."""
        from metainspect.graph.saver import saver_owned

        result = []
        for node in self._nodes:
            if node.op not in PLACEHOLDER_OPS or (not include_saver and saver_owned(self.meta_graph, node.name)):
                continue
            attrs = node.proto.attr
            dtype = dtypes.name_of(attrs["dtype"].type) if "dtype" in attrs else "unknown"
            result.append(Placeholder(node.name, node.op, dtype, self.placeholder_shape(node)))
        return result

    def placeholder_shape(self, node: Node) -> Shape:
        """The shape a Placeholder/PlaceholderWithDefault node declares, as TensorFlow reads it.

        TensorFlow's Placeholder shape function cannot tell a scalar ``shape`` attr from an
        unknown shape in graphs of producer <= 21 (:data:`LEGACY_PLACEHOLDER_PRODUCER`): there a
        rank-0 or unknown-rank attr means unknown shape. Then, and when the attr is missing,
        the ``_output_shapes`` Python recorded (if any) says more.
        """
        attrs = node.proto.attr
        if "shape" in attrs:
            proto = attrs["shape"].shape
            legacy = node.op == "Placeholder" and self.graph_producer <= LEGACY_PLACEHOLDER_PRODUCER
            if not (legacy and (proto.unknown_rank or not proto.dim)):
                return shape_to_list(proto)
        if "_output_shapes" in attrs and attrs["_output_shapes"].list.shape:
            return shape_to_list(attrs["_output_shapes"].list.shape[0])
        return None

    # -- collections -------------------------------------------------------------------------
    def collections(self) -> list[Collection]:
        """Every collection, sorted by name, items decoded."""
        from metainspect.graph.collections import decode_collection

        return [decode_collection(name, self.meta_graph.collection_def[name])
                for name in sorted(self.meta_graph.collection_def)]

    def collection(self, name: str) -> Collection | None:
        from metainspect.graph.collections import decode_collection

        if name not in self.meta_graph.collection_def:
            return None
        return decode_collection(name, self.meta_graph.collection_def[name])

    # -- saver and variables -----------------------------------------------------------------
    def saver_def(self) -> dict[str, Any] | None:
        """The SaverDef as a dict with the version spelled out, or None."""
        from metainspect.graph.saver import SAVER_VERSIONS

        if not self.meta_graph.HasField("saver_def"):
            return None
        s = self.meta_graph.saver_def
        return {
            "filename_tensor_name": s.filename_tensor_name,
            "save_tensor_name": s.save_tensor_name,
            "restore_op_name": s.restore_op_name,
            "max_to_keep": s.max_to_keep,
            "sharded": s.sharded,
            "keep_checkpoint_every_n_hours": s.keep_checkpoint_every_n_hours,
            "version": SAVER_VERSIONS.get(s.version, str(s.version)),
        }

    def saver_keys(self) -> dict[str, list[tuple[str, str]]]:
        """What the graph's save ops write: variable op name -> [(checkpoint key, slice spec)]
        (see :func:`metainspect.graph.saver.saver_keys`)."""
        from metainspect.graph.saver import saver_keys

        return saver_keys(self)

    def variables(self) -> list[Variable]:
        """Variables declared by the graph (variable ops plus VariableDefs in collections).

        A TF2 SavedModel's variables come from its object graph, keyed like its checkpoint.
        """
        if self.meta_graph.object_graph_def.nodes:
            return self._object_graph_variables()
        defs: dict[str, Any] = {}
        member_of: dict[str, list[str]] = {}
        for name in sorted(VARIABLE_COLLECTIONS & set(self.meta_graph.collection_def)):
            for item in self.collection(name).items:  # type: ignore[union-attr]
                if hasattr(item, "variable_name"):
                    var = op_name(item.variable_name)
                    defs.setdefault(var, item)
                    member_of.setdefault(var, []).append(name)
        names = [n.name for n in self._nodes if n.op in VARIABLE_OPS]
        names += [name for name in defs if name not in self._by_name or self._by_name[name].op not in VARIABLE_OPS]
        saved = self.saver_keys()
        return [self._variable(name, defs.get(name), tuple(member_of.get(name, ())), saved) for name in names]

    def _variable(self, name: str, vdef: Any, member_of: tuple[str, ...],
                  saved: dict[str, list[tuple[str, str]]]) -> Variable:
        node = self._by_name.get(name)
        attrs = node.proto.attr if node is not None else {}
        dtype = dtypes.name_of(attrs["dtype"].type) if "dtype" in attrs else "unknown"
        shape = shape_to_list(attrs["shape"].shape) if "shape" in attrs else None
        partition = None
        if vdef is not None and vdef.HasField("save_slice_info_def"):
            info = vdef.save_slice_info_def
            partition = Partition(info.full_name, tuple(info.full_shape), tuple(info.var_offset), tuple(info.var_shape))
        if name in saved:
            key = saved[name][0][0]
        else:
            key = partition.full_name if partition else name
        if vdef is not None:
            trainable: bool | None = "trainable_variables" in member_of or vdef.trainable
            resource = vdef.is_resource or (node is not None and node.op in RESOURCE_VARIABLE_OPS)
        else:
            trainable = None
            resource = node is not None and node.op in RESOURCE_VARIABLE_OPS
        return Variable(
            name=name, dtype=dtype, shape=shape, trainable=trainable, resource=resource,
            checkpoint_key=key, op=node.op if node else "", device=node.device if node else "",
            partition=partition, collections=member_of,
        )

    def _object_graph_variables(self) -> list[Variable]:
        from metainspect.checkpoint.object_graph import object_paths

        graph = self.meta_graph.object_graph_def
        paths = object_paths(graph, self.path)
        result = []
        for node_id, obj in enumerate(graph.nodes):
            path = paths[node_id]
            if obj.WhichOneof("kind") != "variable" or path is None:
                continue
            var = obj.variable
            result.append(Variable(
                name=var.name or path, dtype=dtypes.name_of(var.dtype), shape=shape_to_list(var.shape),
                trainable=var.trainable, resource=True,
                checkpoint_key=f"{path}/.ATTRIBUTES/VARIABLE_VALUE", op="VarHandleOp", device=var.device,
            ))
        return result

    # -- signatures and likely endpoints ----------------------------------------------------
    def signatures(self) -> dict[str, Signature]:
        """SignatureDefs by key, sorted."""
        result = {}
        for key in sorted(self.meta_graph.signature_def):
            sig = self.meta_graph.signature_def[key]
            result[key] = Signature(
                key, sig.method_name,
                {k: tensor_spec(v) for k, v in sorted(sig.inputs.items())},
                {k: tensor_spec(v) for k, v in sorted(sig.outputs.items())},
            )
        return result

    def likely_inputs(self) -> list[Placeholder]:
        """Placeholders a caller would feed (see :func:`metainspect.graph.endpoints.likely_inputs`)."""
        from metainspect.graph.endpoints import likely_inputs

        return likely_inputs(self)

    def likely_outputs(self) -> list[Node]:
        """Sinks that look like model outputs (see :func:`metainspect.graph.endpoints.likely_outputs`)."""
        from metainspect.graph.endpoints import likely_outputs

        return likely_outputs(self)


def load_model(path: str | os.PathLike[str], tags: list[str] | None = None, *,
               storage_options: Mapping[str, Any] | None = None) -> Model:
    """Read a graph file (or find one: SavedModel dir, checkpoint prefix) and pick a meta graph.

    ``tags`` selects a SavedModel meta graph by its exact tag set; by default the only one,
    else the one tagged ``serve``, else the first. ``path`` may be a URL (the graph file is
    read whole); ``storage_options`` go to its fsspec backend.
    """
    if storage_options is not None:
        from metainspect.formats.filesystem import storage_options as using

        with using(storage_options):
            return load_model(path, tags)
    graph_file = read_graph_file(find_graph_file(path))
    all_tags = [list(mg.meta_info_def.tags) for mg in graph_file.meta_graphs]
    chosen = _choose_meta_graph(graph_file.path, all_tags, tags)
    kind = graph_file.kind
    return Model(graph_file.path, kind, graph_file.encoding, graph_file.meta_graphs[chosen], all_tags,
                 graph_file.saved_model_schema_version if kind == SAVED_MODEL else None,
                 source=os.fspath(path), graph_file=graph_file)


def _choose_meta_graph(path: str, all_tags: list[list[str]], tags: list[str] | None) -> int:
    if tags:
        wanted = set(tags)
        for i, have in enumerate(all_tags):
            if set(have) == wanted:
                return i
        available = "; ".join(",".join(t) or "(no tags)" for t in all_tags)
        raise WrongKindError(path, f"no meta graph tagged {','.join(tags)} (available: {available})")
    if len(all_tags) > 1:
        from metainspect.graph.endpoints import SERVE_TAG

        for i, have in enumerate(all_tags):
            if have == [SERVE_TAG]:
                return i
    return 0


__all__ = [
    "Collection", "Function", "Model", "Node", "Partition", "Placeholder",
    "Signature", "TensorSpec", "Variable", "load_model", "op_name",
]
