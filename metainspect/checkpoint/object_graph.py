"""The object graph of a TF2 checkpoint (``_CHECKPOINTABLE_OBJECT_GRAPH``) as a tree of paths.

Node ids index ``TrackableObjectGraph.nodes`` (node 0 is the root). Each node's path is the
breadth-first (shortest) path of escaped child names from the root, as TensorFlow builds
checkpoint keys; slot variables, which hang off no parent, are named
``<variable path>/.OPTIMIZER_SLOT/<optimizer path>/<slot name>``. Checkpoint keys are taken
verbatim from the attributes, never rebuilt from paths.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from google.protobuf.message import DecodeError

from metainspect.errors import CorruptError

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def escape(local_name: str) -> str:
    """Escape one path component the way TensorFlow does (``.`` → ``..``, ``/`` → ``.S``)."""
    return local_name.replace(".", "..").replace("/", ".S")


class Attribute(NamedTuple):
    """One saved tensor of an object (NamedTuples here: cheap to define, and listing imports this)."""

    name: str
    full_name: str
    checkpoint_key: str


class SlotVariable(NamedTuple):
    """An optimizer slot (``m``, ``v``, ``momentum``…) of one variable."""

    original_node: int
    original_path: str | None
    slot_name: str
    slot_node: int
    #: checkpoint key of the slot's value (None when the slot node saved nothing)
    checkpoint_key: str | None


class ObjectNode(NamedTuple):
    """One trackable object."""

    id: int
    #: ``layer_with_weights-0/kernel``; ``""`` for the root; None when unreachable
    path: str | None
    children: tuple[tuple[str, int], ...]
    attributes: tuple[Attribute, ...]
    #: slots this node (an optimizer) holds for other variables
    slot_variables: tuple[SlotVariable, ...]
    #: None when the writer did not say
    has_checkpoint_values: bool | None


class ObjectGraph:
    """A decoded ``TrackableObjectGraph`` with paths and a checkpoint-key index."""

    def __init__(self, nodes: tuple[ObjectNode, ...]) -> None:
        self.nodes = nodes
        self._by_key = {a.checkpoint_key: node for node in nodes for a in node.attributes}
        self._by_path = {node.path: node for node in nodes if node.path is not None}
        self.slot_nodes = frozenset(s.slot_node for node in nodes for s in node.slot_variables)

    @classmethod
    def from_bytes(cls, data: bytes, path: str | None = None) -> ObjectGraph:
        """Parse a serialized ``TrackableObjectGraph``; CorruptError naming ``path`` if bad."""
        from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

        try:
            proto = TrackableObjectGraph.FromString(data)
        except DecodeError:
            raise CorruptError(path, f"{OBJECT_GRAPH_KEY} is not a TrackableObjectGraph") from None
        paths = object_paths(proto, path)
        nodes = []
        for node_id, node in enumerate(proto.nodes):
            slots = tuple(
                SlotVariable(
                    s.original_variable_node_id,
                    paths[s.original_variable_node_id],
                    s.slot_name,
                    s.slot_variable_node_id,
                    _first_key(proto.nodes[s.slot_variable_node_id]),
                )
                for s in node.slot_variables
            )
            nodes.append(
                ObjectNode(
                    id=node_id,
                    path=paths[node_id],
                    children=tuple((c.local_name, c.node_id) for c in node.children),
                    attributes=tuple(Attribute(a.name, a.full_name, a.checkpoint_key) for a in node.attributes),
                    slot_variables=slots,
                    has_checkpoint_values=node.has_checkpoint_values.value if node.HasField("has_checkpoint_values") else None,
                )
            )
        return cls(tuple(nodes))

    def node_for_key(self, checkpoint_key: str) -> ObjectNode | None:
        """The object that saved the tensor under ``checkpoint_key``."""
        return self._by_key.get(checkpoint_key)

    def node_at(self, path: str) -> ObjectNode | None:
        """The object at an (escaped) path, ``""`` being the root."""
        return self._by_path.get(path)

    def path_for_key(self, checkpoint_key: str) -> str | None:
        """The object path of the tensor saved under ``checkpoint_key`` (None if not in the graph)."""
        node = self.node_for_key(checkpoint_key)
        return node.path if node else None

    def key_paths(self) -> dict[str, str | None]:
        """Every checkpoint key named in the graph mapped to its object path."""
        return {key: node.path for key, node in self._by_key.items()}


def object_paths(proto: object, path: str | None) -> list[str | None]:
    """BFS paths of every node; then slot-variable nodes that no child edge reaches.

    Works on a checkpoint's ``TrackableObjectGraph`` and on a SavedModel's ``SavedObjectGraph``
    alike (both number nodes from the root and name children by ``local_name``). A node id
    outside the node list raises CorruptError naming ``path`` (the file holding the graph).
    """
    nodes = proto.nodes  # type: ignore[attr-defined]
    count = len(nodes)
    for node_id, node in enumerate(nodes):
        refs = [c.node_id for c in node.children]
        refs += [r for s in node.slot_variables for r in (s.original_variable_node_id, s.slot_variable_node_id)]
        bad = [r for r in refs if not 0 <= r < count]
        if bad:
            raise CorruptError(path, f"object graph node {node_id} refers to node {bad[0]}, the graph has {count}")
    paths: list[str | None] = [None] * len(nodes)
    if not nodes:
        return paths
    paths[0] = ""
    queue = deque([0])
    while queue:
        node_id = queue.popleft()
        for child in nodes[node_id].children:
            if paths[child.node_id] is None:
                prefix = paths[node_id]
                paths[child.node_id] = f"{prefix}/{escape(child.local_name)}" if prefix else escape(child.local_name)
                queue.append(child.node_id)
    for optimizer_id, node in enumerate(nodes):
        for slot in node.slot_variables:
            original, optimizer = paths[slot.original_variable_node_id], paths[optimizer_id]
            if paths[slot.slot_variable_node_id] is None and original is not None and optimizer is not None:
                paths[slot.slot_variable_node_id] = f"{original}/.OPTIMIZER_SLOT/{optimizer}/{escape(slot.slot_name)}"
    return paths


def _first_key(node: object) -> str | None:
    attributes = node.attributes  # type: ignore[attr-defined]
    return attributes[0].checkpoint_key if attributes else None
