"""The collections TensorFlow and its loaders know by name, and the decoding of a ``CollectionDef``'s
items by kind and, for bytes lists, by collection name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from tensorboard.compat.proto.meta_graph_pb2 import CollectionDef, MetaGraphDef

    from metainspect.graph.model import Collection, CollectionKind

#: collections whose bytes_list items are serialized VariableDef protos
VARIABLE_COLLECTIONS = frozenset({
    "variables", "trainable_variables", "local_variables", "model_variables",
    "moving_average_variables", "metric_variables", "global_step",
})
#: the op a SavedModel loader runs after restoring variables (TF1's legacy name second)
MAIN_OP_KEY = "saved_model_main_op"
LEGACY_INIT_OP_KEY = "legacy_init_op"
#: lookup-table initializers (what ``tf.compat.v1.tables_initializer`` runs)
TABLE_INITIALIZERS = "table_initializer"
#: a TF1 graph's asset paths (string Consts), and a SavedModel's older record of its assets
ASSET_FILEPATHS = "asset_filepaths"
SAVED_MODEL_ASSETS = "saved_model_assets"
#: collections naming ops a loader runs to initialise a restored model
INIT_COLLECTIONS = frozenset({MAIN_OP_KEY, LEGACY_INIT_OP_KEY, "main_op", "init_op", "local_init_op",
                              TABLE_INITIALIZERS, ASSET_FILEPATHS, SAVED_MODEL_ASSETS})
#: collections whose items start the training subgraph
TRAINING_COLLECTIONS = ("train_op", "summaries", "saved_model_train_op")
#: collections naming ops that run when a model is loaded: what TF1 SavedModel loaders run after the
#: restore (the main op, else the legacy init op), and what a Scaffold runs when it restores a
#: ``.meta`` (its local init op, which holds the table initializers, and its readiness checks).
#: ``init_op`` is not among them: a Scaffold runs it only for a fresh start without a checkpoint.
LOAD_TIME_COLLECTIONS = (MAIN_OP_KEY, LEGACY_INIT_OP_KEY, "main_op", "local_init_op", TABLE_INITIALIZERS,
                         "ready_op", "ready_for_local_init_op")
#: type URL suffix (and bytes_list collection names) -> callable returning the message class
_KNOWN_ANY = {"tensorflow.AssetFileDef": ("tensorboard.compat.proto.meta_graph_pb2", "AssetFileDef")}


def _proto_class(module: str, name: str) -> type[Message]:
    import importlib

    found: type[Message] = getattr(importlib.import_module(module), name)
    return found


def _bytes_item_class(collection_name: str) -> tuple[str, str] | None:
    if collection_name in VARIABLE_COLLECTIONS:
        return ("tensorboard.compat.proto.variable_pb2", "VariableDef")
    return {
        "savers": ("tensorboard.compat.proto.saver_pb2", "SaverDef"),
        "cond_context": ("metainspect.proto.control_flow_pb2", "CondContextDef"),
        "while_context": ("metainspect.proto.control_flow_pb2", "WhileContextDef"),
        "queue_runners": ("metainspect.proto.queue_runner_pb2", "QueueRunnerDef"),
    }.get(collection_name)


def decode_collection(name: str, collection: CollectionDef) -> Collection:
    """A :class:`Collection` with items as node names, protos, strings or numbers."""
    from metainspect.graph.model import Collection

    kind = cast("CollectionKind", collection.WhichOneof("kind") or "empty")
    if kind == "empty":
        return Collection(name, kind, [])
    values = list(getattr(collection, kind).value)
    if kind == "bytes_list":
        return Collection(name, kind, [_decode_bytes(name, v) for v in values])
    if kind == "any_list":
        return Collection(name, kind, [_decode_any(v) for v in values])
    return Collection(name, kind, values)


def _decode_bytes(collection_name: str, value: bytes) -> Any:
    from google.protobuf.message import DecodeError

    known = _bytes_item_class(collection_name)
    if known:
        try:
            return _proto_class(*known).FromString(value)
        except DecodeError:
            pass
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _decode_any(value: Any) -> Any:
    """Unpack an Any by its type name; TF writes ``tensorflow.X`` URLs, parsed by bytes.

    An item of an unknown type, or whose payload does not parse as its type, stays the Any
    (as a bytes item that does not parse stays bytes): only this item is left undecoded.
    """
    from google.protobuf.message import DecodeError

    type_name = value.type_url.rpartition("/")[2]
    known = _KNOWN_ANY.get(type_name)
    if known:
        try:
            return _proto_class(*known).FromString(value.value)
        except DecodeError:
            return value
    return value


def asset_tensors(meta_graph: MetaGraphDef) -> dict[str, str]:
    """Tensor name -> asset file name, for every tensor a SavedModel loader sets to one of its assets.

    TF1 loaders feed each ``asset_file_def`` tensor (and the older ``saved_model_assets``
    collection's) the asset's path inside the SavedModel; a TF1 graph lists its asset path
    constants in ``asset_filepaths`` (those give their own value as the file name).
    """
    from metainspect.graph.names import tensor_name

    found: dict[str, str] = {}
    for asset in meta_graph.asset_file_def:
        found[tensor_name(asset.tensor_info.name)] = asset.filename
    if SAVED_MODEL_ASSETS in meta_graph.collection_def:
        for item in decode_collection(SAVED_MODEL_ASSETS, meta_graph.collection_def[SAVED_MODEL_ASSETS]).items:
            if hasattr(item, "tensor_info"):
                found.setdefault(tensor_name(item.tensor_info.name), item.filename)
    if ASSET_FILEPATHS in meta_graph.collection_def:
        for item in meta_graph.collection_def[ASSET_FILEPATHS].node_list.value:
            found.setdefault(tensor_name(item), "")
    return found
