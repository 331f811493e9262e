"""``--prune-to`` and ``--strip-training``: remove nodes while keeping the graph restorable.

Both keep the saver (``saver_def`` and everything it runs), the initialisers of kept variables
(every name a kept ``VariableDef`` mentions), assets, the SavedModel init op and the init/table
collections, then remove every node that none of these need. References to removed nodes are
dropped from collections, signatures and colocation attrs (see :func:`remove_nodes`).

``--strip-training`` starts from training machinery instead: optimizer update ops, the
``gradients`` scopes, summary ops and the ``train_op``/``summaries`` collections, plus everything
depending on them. Variables only training reads (optimizer slots such as ``…/Adam``, Adam's
``beta1_power``) go too, and the saver stops saving and restoring them, so ``Saver.restore``
reads the remaining keys from the original checkpoint (TensorFlow ignores extra keys) or from
one rewritten with ``rewrite --drop-optimizer``. ``global_step`` is kept. Whatever is left
without a consumer (the loss, the labels placeholder…) is removed; nodes that had no consumer
to begin with (outputs, ``init``) and everything signatures and other collections name stay.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from metainspect.edit.changes import ChangeLog, log_for
from metainspect.errors import MetainspectError
from metainspect.graph.names import split_reference

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

#: collections naming ops a loader runs to initialise a restored model (kept by both operations)
INIT_COLLECTIONS = frozenset({"saved_model_main_op", "legacy_init_op", "main_op", "init_op", "local_init_op",
                              "table_initializer", "asset_filepaths", "saved_model_assets"})
INIT_SIGNATURE = "__saved_model_init_op"
#: collections whose items start the training subgraph
TRAINING_COLLECTIONS = ("train_op", "summaries", "saved_model_train_op")
#: collections of training-only items that are not reasons to keep a node
TRAINING_ONLY_COLLECTIONS = frozenset({*TRAINING_COLLECTIONS, "update_ops", "losses", "regularization_losses"})
SUMMARY_OPS = frozenset({
    "ScalarSummary", "HistogramSummary", "ImageSummary", "AudioSummary", "AudioSummaryV2", "TensorSummary",
    "TensorSummaryV2", "MergeSummary", "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary",
    "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary",
    "CreateSummaryFileWriter", "CreateSummaryDbWriter", "SummaryWriter", "FlushSummaryWriter",
    "CloseSummaryWriter", "ImportEvent",
})
#: ops through which a variable is written or checked rather than used
_VARIABLE_WRITES = frozenset({"Assign", "AssignVariableOp", "IsVariableInitialized", "VarIsInitializedOp"})
_VARIABLE_READS = frozenset({"Identity", "ReadVariableOp"})


def prune_to(meta_graph: MetaGraphDef, outputs: list[str], log: ChangeLog | None = None) -> int:
    """Keep what ``outputs`` (op or tensor names) need plus the saver and initialisers.

    Returns how many nodes were removed. Raises MetainspectError for an unknown output.
    """
    log = log_for(log, "prune-to")
    names = {node.name for node in meta_graph.graph_def.node}
    wanted = [split_reference(output)[1] for output in outputs]
    missing = [output for output, op in zip(outputs, wanted) if op not in names]
    if missing:
        raise MetainspectError(None, f"--prune-to: no node {missing[0]!r} in the graph")
    if not wanted:
        raise MetainspectError(None, "--prune-to needs at least one output")
    graph = _Graph(meta_graph)
    keep = graph.keep([*wanted, *_restore_roots(meta_graph)])
    removed = graph.names - keep
    remove_nodes(meta_graph, removed, log)
    return len(removed)


def strip_training(meta_graph: MetaGraphDef, log: ChangeLog | None = None) -> int:
    """Remove optimizer, gradient and summary subgraphs and optimizer-only variables.

    Returns how many nodes were removed (0 when the graph holds no training machinery).
    """
    from metainspect.edit import saver_graph
    from metainspect.edit.target import model_of

    log = log_for(log, "strip-training")
    graph = _Graph(meta_graph)
    seeds = _training_seeds(meta_graph, graph)
    if not seeds:
        return 0
    training = graph.descendants(seeds, control=True)
    optimizer_variables = _optimizer_variables(meta_graph, graph, training)
    sinks = {name for name in graph.names if not graph.consumers.get(name)}
    doomed = saver_graph.drop_saved_variables(model_of(meta_graph), optimizer_variables, log)
    graph = _Graph(meta_graph)  # the saver's inputs changed
    blocked = training | graph.descendants(optimizer_variables | doomed, control=False)
    roots = [*sinks, *_restore_roots(meta_graph), *_collection_roots(meta_graph)]
    for key, signature in meta_graph.signature_def.items():
        if key != INIT_SIGNATURE:
            roots += _names_in(signature)
    keep = graph.keep([r for r in roots if r not in blocked], blocked)
    removed = graph.names - keep
    remove_nodes(meta_graph, removed, log)
    return len(removed)


class _Graph:
    """Adjacency of the top-level nodes: inputs (data and control) and consumers."""

    def __init__(self, meta_graph: MetaGraphDef) -> None:
        self.meta_graph = meta_graph
        self.protos = {node.name: node for node in meta_graph.graph_def.node}
        self.names = set(self.protos)
        self.inputs: dict[str, list[tuple[str, bool]]] = {}
        self.consumers: dict[str, list[tuple[str, bool]]] = {}
        for node in meta_graph.graph_def.node:
            edges = []
            for ref in node.input:
                control, op, _ = split_reference(ref)
                edges.append((op, bool(control)))
                self.consumers.setdefault(op, []).append((node.name, bool(control)))
            self.inputs[node.name] = edges

    def closure(self, roots: Iterable[str], blocked: set[str]) -> set[str]:
        """``roots`` and everything they read, not entering ``blocked``."""
        seen: set[str] = set()
        queue = deque(r for r in roots if r in self.names and r not in blocked)
        while queue:
            name = queue.popleft()
            if name in seen:
                continue
            seen.add(name)
            queue.extend(op for op, _ in self.inputs.get(name, ()) if op not in seen and op not in blocked)
        return seen

    def keep(self, roots: Iterable[str], blocked: set[str] | None = None) -> set[str]:
        """The closure of ``roots`` plus every name the kept variables' VariableDefs mention."""
        blocked = blocked or set()
        keep = self.closure(roots, blocked)
        while True:
            extra = {split_reference(name)[1] for var, names in _variable_defs(self.meta_graph) if var in keep for name in names}
            extra -= keep | blocked
            if not extra:
                return keep
            keep |= self.closure(extra, blocked)

    def descendants(self, start: set[str], control: bool) -> set[str]:
        """``start`` and every node consuming them (through control edges too when ``control``)."""
        seen = set(start)
        queue = deque(start)
        while queue:
            for consumer, is_control in self.consumers.get(queue.popleft(), ()):
                if consumer not in seen and (control or not is_control):
                    seen.add(consumer)
                    queue.append(consumer)
        return seen


def _variable_defs(meta_graph: MetaGraphDef, collections: Iterable[str] | None = None) -> list[tuple[str, list[str]]]:
    """(variable op, names its VariableDef mentions) for every entry of the variable collections."""
    from metainspect.edit.references import referenced_names
    from metainspect.graph.collections import decode_collection
    from metainspect.graph.model import VARIABLE_COLLECTIONS

    result = []
    for name in sorted(set(VARIABLE_COLLECTIONS if collections is None else collections) & set(meta_graph.collection_def)):
        for item in decode_collection(name, meta_graph.collection_def[name]).items:
            if hasattr(item, "variable_name"):
                result.append((split_reference(item.variable_name)[1], referenced_names(item)))
    return result


def _names_in(message: Message) -> list[str]:
    from metainspect.edit.references import referenced_names

    return [split_reference(name)[1] for name in referenced_names(message)]


def _restore_roots(meta_graph: MetaGraphDef) -> list[str]:
    """What restoring and initialising need: the saver, init collections, init signature, assets."""
    roots = _names_in(meta_graph.saver_def) if meta_graph.HasField("saver_def") else []
    roots += _collection_names(meta_graph, INIT_COLLECTIONS & set(meta_graph.collection_def))
    if INIT_SIGNATURE in meta_graph.signature_def:
        roots += _names_in(meta_graph.signature_def[INIT_SIGNATURE])
    for asset in meta_graph.asset_file_def:
        roots += _names_in(asset)
    return roots


def _collection_roots(meta_graph: MetaGraphDef) -> list[str]:
    """Nodes named by collections other than the training ones (variables come via their defs)."""
    from metainspect.graph.model import VARIABLE_COLLECTIONS

    return _collection_names(meta_graph, set(meta_graph.collection_def) - TRAINING_ONLY_COLLECTIONS
                             - VARIABLE_COLLECTIONS)


def _collection_names(meta_graph: MetaGraphDef, names: Iterable[str]) -> list[str]:
    """Op names the items of collections ``names`` refer to."""
    from metainspect.graph.collections import decode_collection

    found: list[str] = []
    for name in sorted(names):
        collection = decode_collection(name, meta_graph.collection_def[name])
        for item in collection.items:
            if collection.kind == "node_list":
                found.append(split_reference(item)[1])
            elif hasattr(item, "DESCRIPTOR"):
                found += _names_in(item)
    return found


def _training_seeds(meta_graph: MetaGraphDef, graph: _Graph) -> set[str]:
    from metainspect.graph.roles import is_training_op

    seeds = {node.name for node in meta_graph.graph_def.node
             if is_training_op(node.op) or node.op in SUMMARY_OPS or _in_gradients_scope(node.name)}
    for name in TRAINING_COLLECTIONS:
        collection = meta_graph.collection_def.get(name)
        if collection is not None and collection.WhichOneof("kind") == "node_list":
            seeds |= {split_reference(item)[1] for item in collection.node_list.value} & graph.names
    return seeds


def _in_gradients_scope(name: str) -> bool:
    return any(part == "gradients" or part.startswith("gradients_") for part in name.split("/")[:-1])


def _optimizer_variables(meta_graph: MetaGraphDef, graph: _Graph, training: set[str]) -> set[str]:
    """Variables that only training uses: every real use of them (or of their reads) is training.

    Writes (initialisers, restores, Adam's power updates), initialisation checks and the saver
    are not uses; ``global_step`` is never an optimizer variable.
    """
    from metainspect.graph.model import VARIABLE_OPS

    scope = _saver_scope(meta_graph)
    protected = {var for var, _ in _variable_defs(meta_graph, ["global_step"])}
    found = set()
    for node in meta_graph.graph_def.node:
        if node.op not in VARIABLE_OPS or node.name in training or node.name in protected:
            continue
        uses = _uses(graph, node.name, scope)
        if uses and uses <= training:
            found.add(node.name)
    return found


def _saver_scope(meta_graph: MetaGraphDef) -> str | None:
    """The name scope of the saver's ops (``save/``), from its SaverDef."""
    name = split_reference(meta_graph.saver_def.filename_tensor_name)[1] if meta_graph.HasField("saver_def") else ""
    return name.rpartition("/")[0] + "/" if "/" in name else None


def _uses(graph: _Graph, variable: str, saver_scope: str | None) -> set[str]:
    uses: set[str] = set()
    queue = deque([variable])
    seen = {variable}
    while queue:
        source = queue.popleft()
        for name, _ in graph.consumers.get(source, []):
            node = graph.protos[name]
            if name in seen or (saver_scope and name.startswith(saver_scope)):
                continue
            reads_source = bool(node.input) and split_reference(node.input[0])[1] == source
            if node.op in _VARIABLE_WRITES and reads_source:
                continue
            if node.op in _VARIABLE_READS and reads_source:
                seen.add(name)
                queue.append(name)
                continue
            uses.add(name)
    return uses


def remove_nodes(meta_graph: MetaGraphDef, removed: set[str], log: ChangeLog) -> None:
    """Delete ``removed`` nodes and every reference to them.

    Kept nodes lose control inputs and ``loc:@`` colocations naming removed nodes; collection
    items, signatures, asset defs naming them are dropped; ``stripped_op_list`` forgets ops no
    longer used. Raises MetainspectError when a kept node reads a removed one (a caller bug).
    """
    from metainspect.edit.references import NAME, rewrite_meta_graph

    if not removed:
        return
    graph_def = meta_graph.graph_def
    kept = []
    for node in graph_def.node:
        if node.name in removed:
            log.add(f"node {node.name}", f"removed ({node.op})")
            continue
        _unlink(node, removed, log)
        kept.append(node.SerializeToString())
    del graph_def.node[:]
    for data in kept:
        graph_def.node.add().ParseFromString(data)

    def visit(role: str, value: str, where: str) -> str | None:
        return None if role == NAME and split_reference(value)[1] in removed else value

    rewrite_meta_graph(meta_graph, visit, log)
    _forget_unused_ops(meta_graph, log)


def _unlink(node: NodeDef, removed: set[str], log: ChangeLog) -> None:
    inputs = []
    for ref in node.input:
        control, op, _ = split_reference(ref)
        if op not in removed:
            inputs.append(ref)
        elif control:
            log.add(f"node {node.name}", f"control input {ref} dropped")
        else:
            raise MetainspectError(None, f"cannot remove {op!r}: {node.name!r} reads it")
    if len(inputs) != len(node.input):
        node.input[:] = inputs
    if "_class" in node.attr:
        values = list(node.attr["_class"].list.s)
        left = [v for v in values if not (v.startswith(b"loc:@") and v[5:].decode("utf-8", "replace") in removed)]
        if left != values:
            log.add(f"node {node.name}", "colocation with removed nodes dropped")
            if left:
                node.attr["_class"].list.s[:] = left
            else:
                del node.attr["_class"]


def _forget_unused_ops(meta_graph: MetaGraphDef, log: ChangeLog) -> None:
    op_list = meta_graph.meta_info_def.stripped_op_list
    if not op_list.op:
        return
    used = {node.op for node in meta_graph.graph_def.node}
    used |= {node.op for fn in meta_graph.graph_def.library.function for node in fn.node_def}
    unused = [op.name for op in op_list.op if op.name not in used]
    if not unused:
        return
    kept = [op.SerializeToString() for op in op_list.op if op.name in used]
    del op_list.op[:]
    for data in kept:
        op_list.op.add().ParseFromString(data)
    log.add("meta_info_def.stripped_op_list", f"unused ops dropped: {', '.join(sorted(unused))}")
