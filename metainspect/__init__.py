"""metainspect: read TensorFlow graphs and checkpoints with protobuf and numpy, no TensorFlow.

Public API::

    import metainspect
    model = metainspect.load_model("model.ckpt-1000.meta")   # .meta, .pb, .pbtxt, SavedModel dir
    model.placeholders(); model.variables(); model.signatures()
    with metainspect.open_checkpoint("model.ckpt-1000") as ckpt:
        ckpt.keys(); ckpt.shape("dense/kernel"); ckpt.get("dense/kernel")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metainspect.errors import CorruptError, MetainspectError, NotFoundError, WrongKindError

__version__ = "0.1.0"
__all__ = [
    "CorruptError",
    "MetainspectError",
    "NotFoundError",
    "WrongKindError",
    "load_model",
    "open_checkpoint",
]

if TYPE_CHECKING:
    from metainspect.checkpoint import open_checkpoint
    from metainspect.graph.model import load_model


def __getattr__(name: str) -> Any:
    """Import the graph and checkpoint layers only when they are first used."""
    if name == "load_model":
        from metainspect.graph.model import load_model

        return load_model
    if name == "open_checkpoint":
        from metainspect.checkpoint import open_checkpoint

        return open_checkpoint
    raise AttributeError(f"module 'metainspect' has no attribute {name!r}")
