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

from collections.abc import Iterable
from typing import TYPE_CHECKING

from metainspect.edit.changes import ChangeLog, log_for
from metainspect.errors import Hint, MetainspectError, TensorNotFoundError
from metainspect.graph.collections import INIT_COLLECTIONS, TRAINING_COLLECTIONS, VARIABLE_COLLECTIONS
from metainspect.graph.endpoints import INIT_OP_SIGNATURE
from metainspect.graph.names import op_name, split_reference
from metainspect.graph.ops import ASSIGN_OPS, INIT_CHECK_OPS, SUMMARY_OPS, VARIABLE_OPS, is_training_op
from metainspect.graph.roles import in_gradient_scope
from metainspect.graph.saver import saver_scope
from metainspect.graph.walk import GraphIndex, downstream, index_of, reads_of, upstream

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef

#: collections of training-only items that are not reasons to keep a node
TRAINING_ONLY_COLLECTIONS = frozenset({*TRAINING_COLLECTIONS, "update_ops", "losses", "regularization_losses"})
#: ops through which a variable is written or checked rather than used
_VARIABLE_WRITES = ASSIGN_OPS | INIT_CHECK_OPS


def prune_to(meta_graph: MetaGraphDef, outputs: list[str], log: ChangeLog | None = None) -> int:
    """Keep what ``outputs`` (op or tensor names) need plus the saver and initialisers.

    Returns how many nodes were removed. Raises TensorNotFoundError for an unknown output.
    """
    log = log_for(log, "prune-to")
    names = {node.name for node in meta_graph.graph_def.node}
    wanted = [split_reference(output)[1] for output in outputs]
    missing = [output for output, op in zip(outputs, wanted) if op not in names]
    hint = Hint("prune_to")
    if missing:
        raise TensorNotFoundError(None, f"{hint.text}: no node {missing[0]!r} in the graph", missing[0], hint)
    if not wanted:
        raise MetainspectError(None, f"{hint.text} needs at least one output", hint)
    index = _index(meta_graph)
    keep = _keep(index, meta_graph, [*wanted, *_restore_roots(meta_graph)])
    removed = index.nodes.keys() - keep
    remove_nodes(meta_graph, removed, log)
    return len(removed)


def strip_training(meta_graph: MetaGraphDef, log: ChangeLog | None = None) -> int:
    """Remove optimizer, gradient and summary subgraphs and optimizer-only variables.

    Returns how many nodes were removed (0 when the graph holds no training machinery).
    """
    from metainspect.edit import saver_graph
    from metainspect.edit.target import model_of

    log = log_for(log, "strip-training")
    index = _index(meta_graph)
    seeds = _training_seeds(meta_graph, index)
    if not seeds:
        return 0
    training = downstream(index, seeds, control=True)
    optimizer_variables = _optimizer_variables(meta_graph, index, training)
    sinks = {name for name in index.nodes if not index.consumers.get(name)}
    doomed = saver_graph.drop_saved_variables(model_of(meta_graph), optimizer_variables, log)
    index = _index(meta_graph)  # the saver's inputs changed
    blocked = training | downstream(index, optimizer_variables | doomed, control=False)
    roots = [*sinks, *_restore_roots(meta_graph), *_collection_roots(meta_graph)]
    for key, signature in meta_graph.signature_def.items():
        if key != INIT_OP_SIGNATURE:
            roots += _names_in(signature)
    keep = _keep(index, meta_graph, roots, blocked)
    removed = index.nodes.keys() - keep
    remove_nodes(meta_graph, removed, log)
    return len(removed)


def _index(meta_graph: MetaGraphDef) -> GraphIndex:
    """The walkable index of the meta graph as it is now."""
    from metainspect.edit.target import model_of

    return index_of(model_of(meta_graph))


def _keep(index: GraphIndex, meta_graph: MetaGraphDef, roots: Iterable[str], blocked: set[str] | None = None) -> set[str]:
    """What ``roots`` read (not entering ``blocked``) plus every name the kept variables' VariableDefs mention."""
    blocked = blocked or set()
    keep = upstream(index, roots, exclude=blocked)
    while True:
        extra = {op_name(name) for var, names in _variable_defs(meta_graph) if var in keep for name in names}
        extra -= keep | blocked
        if not extra:
            return keep
        keep |= upstream(index, extra, exclude=blocked)


def _variable_defs(meta_graph: MetaGraphDef, collections: Iterable[str] | None = None) -> list[tuple[str, list[str]]]:
    """(variable op, names its VariableDef mentions) for every entry of the variable collections."""
    from metainspect.edit.references import referenced_names
    from metainspect.graph.collections import decode_collection

    result = []
    for name in sorted(set(VARIABLE_COLLECTIONS if collections is None else collections) & set(meta_graph.collection_def)):
        for item in decode_collection(name, meta_graph.collection_def[name]).items:
            if hasattr(item, "variable_name"):
                result.append((op_name(item.variable_name), referenced_names(item)))
    return result


def _names_in(message: Message) -> list[str]:
    from metainspect.edit.references import referenced_names

    return [op_name(name) for name in referenced_names(message)]


def _restore_roots(meta_graph: MetaGraphDef) -> list[str]:
    """What restoring and initialising need: the saver, init collections, init signature, assets."""
    roots = _names_in(meta_graph.saver_def) if meta_graph.HasField("saver_def") else []
    roots += _collection_names(meta_graph, INIT_COLLECTIONS & set(meta_graph.collection_def))
    if INIT_OP_SIGNATURE in meta_graph.signature_def:
        roots += _names_in(meta_graph.signature_def[INIT_OP_SIGNATURE])
    for asset in meta_graph.asset_file_def:
        roots += _names_in(asset)
    return roots


def _collection_roots(meta_graph: MetaGraphDef) -> list[str]:
    """Nodes named by collections other than the training ones (variables come via their defs)."""
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
                found.append(op_name(item))
            elif hasattr(item, "DESCRIPTOR"):
                found += _names_in(item)
    return found


def _training_seeds(meta_graph: MetaGraphDef, index: GraphIndex) -> set[str]:
    seeds = {name for name, node in index.nodes.items()
             if is_training_op(node.op) or node.op in SUMMARY_OPS or in_gradient_scope(name)}
    for name in TRAINING_COLLECTIONS:
        collection = meta_graph.collection_def.get(name)
        if collection is not None and collection.WhichOneof("kind") == "node_list":
            seeds |= {op_name(item) for item in collection.node_list.value} & index.nodes.keys()
    return seeds


def _optimizer_variables(meta_graph: MetaGraphDef, index: GraphIndex, training: set[str]) -> set[str]:
    """Variables that only training uses: every real use of them (or of their reads) is training.

    Writes (initialisers, restores, Adam's power updates), initialisation checks and the saver
    are not uses; ``global_step`` is never an optimizer variable.
    """
    scope = saver_scope(meta_graph)
    protected = {var for var, _ in _variable_defs(meta_graph, ["global_step"])}
    found = set()
    for name, node in index.nodes.items():
        if node.op not in VARIABLE_OPS or name in training or name in protected:
            continue
        uses = _uses(index, name, scope)
        if uses and uses <= training:
            found.add(name)
    return found


def _uses(index: GraphIndex, variable: str, scope: str | None) -> set[str]:
    """The nodes using ``variable`` or its reads (see :func:`metainspect.graph.walk.reads_of`)
    other than to write or check it, outside the saver's scope."""
    sources = reads_of(index, variable) | {variable}
    uses: set[str] = set()
    for source in sources:
        for name in index.consumers.get(source, ()):
            if name in sources or (scope and name.startswith(scope)):
                continue
            node = index.nodes[name]
            if node.op in _VARIABLE_WRITES and node.inputs and op_name(node.inputs[0]) == source:
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
