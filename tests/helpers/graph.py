"""Small graphs written node by node, for the graph-layer tests (no TensorFlow needed)."""

from __future__ import annotations

from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

from metainspect.graph.model import Model

_FLOAT, _STRING = 1, 7


class GraphBuilder:
    """A MetaGraphDef grown with :meth:`add`; :meth:`model` views it as a :class:`Model`."""

    def __init__(self) -> None:
        self.meta_graph = MetaGraphDef()

    def add(self, name: str, op: str, *inputs: str, dtype: int = _FLOAT) -> GraphBuilder:
        node = self.meta_graph.graph_def.node.add(name=name, op=op)
        node.input.extend(inputs)
        node.attr["dtype" if op in ("Placeholder", "VariableV2", "VarHandleOp", "Const") else "T"].type = dtype
        return self

    def strings(self, name: str, *values: str) -> GraphBuilder:
        """A string Const holding ``values`` (a vector)."""
        node = self.meta_graph.graph_def.node.add(name=name, op="Const")
        node.attr["dtype"].type = _STRING
        tensor = node.attr["value"].tensor
        tensor.dtype = _STRING
        tensor.tensor_shape.dim.add(size=len(values))
        tensor.string_val.extend(v.encode() for v in values)
        return self

    def chain(self, start: str, op: str, length: int, prefix: str) -> str:
        """``length`` nodes of ``op``, each reading the previous one; returns the last name."""
        previous = start
        for i in range(length):
            self.add(f"{prefix}{i}", op, previous)
            previous = f"{prefix}{i}"
        return previous

    def model(self) -> Model:
        return Model("<memory>", "meta_graph", "binary", self.meta_graph, [[]])
