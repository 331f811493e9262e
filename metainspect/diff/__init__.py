"""Compare two checkpoints or two graphs: what was added, removed, renamed and changed.

::

    from metainspect.diff import diff_checkpoints, diff_graphs
    found = diff_checkpoints("run/ckpt-1000", "export/variables/variables", atol=1e-6)
    found.identical, found.changed[0].values.max_abs_diff
    diff_graphs("model.meta", "renamed.meta").renamed   # [Renamed(old, new), ...]

Both accept paths or opened objects (:class:`~metainspect.checkpoint.Checkpoint`,
:class:`~metainspect.graph.model.Model`) and return frozen dataclasses with ``to_json()``;
:func:`diff` decides the kind from the inputs. Nothing here prints.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from metainspect.diff.checkpoints import CheckpointDiff, TensorChange, TensorEntry, diff_checkpoints
from metainspect.diff.graphs import (
    CollectionChange,
    FunctionChange,
    FunctionsDiff,
    GraphDiff,
    KeyedDiff,
    NodeChange,
    NodeEntry,
    NodesDiff,
    SignatureChange,
    diff_graphs,
)
from metainspect.diff.inputs import CHECKPOINT, GRAPH, kinds_of, pair_kind
from metainspect.diff.results import FieldChange, Renamed
from metainspect.diff.values import ValueDiff

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Model

__all__ = [
    "CHECKPOINT", "GRAPH", "CheckpointDiff", "CollectionChange", "FieldChange", "FunctionChange", "FunctionsDiff",
    "GraphDiff", "KeyedDiff", "NodeChange", "NodeEntry", "NodesDiff", "Renamed", "SignatureChange",
    "TensorChange", "TensorEntry", "ValueDiff", "diff", "diff_checkpoints", "diff_graphs", "kinds_of", "pair_kind",
]



def diff(a: str | os.PathLike[str] | Checkpoint | Model, b: str | os.PathLike[str] | Checkpoint | Model, *,
         kind: str | None = None, **options: Any) -> CheckpointDiff | GraphDiff:
    """Compare ``a`` and ``b`` as the kind both are (see :func:`pair_kind`; ``kind`` forces one).

    ``options`` go to :func:`diff_checkpoints` or :func:`diff_graphs`.
    """
    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Model

    given = {CHECKPOINT if isinstance(x, Checkpoint) else GRAPH for x in (a, b) if isinstance(x, (Checkpoint, Model))}
    if len(given) > 1:
        raise TypeError("diff compares two checkpoints or two graphs, not a Checkpoint with a Model")
    chosen = given.pop() if given else pair_kind(a, b, kind)  # type: ignore[arg-type]
    if chosen == CHECKPOINT:
        return diff_checkpoints(a, b, **options)  # type: ignore[arg-type]
    return diff_graphs(a, b, **options)  # type: ignore[arg-type]
