"""For the picture tests: graphs built with protobuf, the third-party graph files, the graph command."""

from __future__ import annotations

from pathlib import Path

from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

from helpers.paths import ROOT

#: every folder of third-party files beside the repository (never copied into it)
REAL_DIRS = sorted(ROOT.parent.glob("shared/real_models*"))
DT_FLOAT = 1


def real_graph_files() -> list[Path]:
    """Every graph file under ../shared/real_models*/ (what `metainspect info` reads as a graph)."""
    found: list[Path] = []
    for directory in REAL_DIRS:
        for pattern in ("*.meta", "saved_model.pb", "*.pbtxt", "frozen.pb", "graph", "*.pb"):
            found += directory.rglob(pattern)
    return sorted(set(found))


def add_node(graph: GraphDef, name: str, op: str, *inputs: str, dtype: int = DT_FLOAT):  # type: ignore[no-untyped-def]
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    node.attr["T" if op not in ("Placeholder", "Const", "VariableV2") else "dtype"].type = dtype
    return node


def scoped_graph(layers: int = 30, units: int = 10) -> GraphDef:
    """A deep, scoped graph in the shape of a transformer encoder:
    ``model/encoder/layer_i/unit_j/{kernel,MatMul,…}`` chained in series, then a custom op:
    ``layers * units * 10 + 4`` nodes."""
    graph = GraphDef()
    add_node(graph, "input", "Placeholder")
    previous = "input"
    for b in range(layers):
        for u in range(units):
            scope = f"model/encoder/layer_{b}/unit_{u}"
            add_node(graph, f"{scope}/kernel", "VariableV2")
            add_node(graph, f"{scope}/kernel/read", "Identity", f"{scope}/kernel")
            add_node(graph, f"{scope}/bias", "VariableV2")
            add_node(graph, f"{scope}/bias/read", "Identity", f"{scope}/bias")
            add_node(graph, f"{scope}/MatMul", "MatMul", previous, f"{scope}/kernel/read")
            add_node(graph, f"{scope}/BiasAdd", "BiasAdd", f"{scope}/MatMul", f"{scope}/bias/read")
            add_node(graph, f"{scope}/norm/mean", "Mean", f"{scope}/BiasAdd")
            add_node(graph, f"{scope}/norm/sub", "Sub", f"{scope}/BiasAdd", f"{scope}/norm/mean")
            add_node(graph, f"{scope}/Relu", "Relu", f"{scope}/norm/sub")
            add_node(graph, f"{scope}/out", "Identity", f"{scope}/Relu", f"^{scope}/kernel")
            previous = f"{scope}/out"
    add_node(graph, "head/logits", "Identity", previous)
    add_node(graph, "head/custom", "MyVendorOp", "head/logits")
    add_node(graph, "output", "Identity", "head/custom")
    return graph


def write_meta_graph(path: Path, graph: GraphDef) -> Path:
    """``graph`` saved as a binary MetaGraphDef at ``path``."""
    meta = MetaGraphDef()
    meta.graph_def.CopyFrom(graph)
    meta.meta_info_def.tensorflow_version = "2.21.0"
    path.write_bytes(meta.SerializeToString())
    return path


def graph_cli(*args: str) -> tuple[int, str, str]:
    """``metainspect graph ARGS`` as the console script runs it (in this process): (code, stdout, stderr)."""
    from helpers.cli import invoke

    result = invoke("graph", *args)
    return result.code, result.stdout, result.stderr
