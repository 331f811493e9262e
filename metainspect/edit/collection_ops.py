"""``--drop-collection NAME``: remove a collection from the meta graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metainspect.edit.changes import ChangeLog, log_for
from metainspect.errors import TensorNotFoundError

if TYPE_CHECKING:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef


def drop_collection(meta_graph: MetaGraphDef, name: str, log: ChangeLog | None = None) -> None:
    """Delete collection ``name``; TensorNotFoundError (listing the others) when there is none.

    Only the collection goes: the nodes it names stay in the graph.
    """
    log = log_for(log, "drop-collection")
    if name not in meta_graph.collection_def:
        known = ", ".join(sorted(meta_graph.collection_def)) or "none"
        raise TensorNotFoundError(None, f"no collection {name!r} to drop (collections: {known})", name)
    collection = meta_graph.collection_def[name]
    kind = collection.WhichOneof("kind")
    size = len(getattr(collection, kind).value) if kind else 0
    del meta_graph.collection_def[name]
    log.add(f"collection {name}", f"removed ({kind or 'empty'}, {size} item{'s' if size != 1 else ''})")
