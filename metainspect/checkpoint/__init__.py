"""Checkpoints as TensorFlow writes them: open any of them, list, read and verify tensors."""

from metainspect.checkpoint.reader import (
    Checkpoint,
    CheckpointFormat,
    CorruptTensor,
    StoredPiece,
    TensorInfo,
    TensorLocation,
    open_checkpoint,
)
from metainspect.checkpoint.tensor import StoredTensor

__all__ = [
    "Checkpoint", "CheckpointFormat", "CorruptTensor", "StoredPiece", "StoredTensor", "TensorInfo", "TensorLocation",
    "open_checkpoint",
]
