"""Checkpoints as TensorFlow writes them: open any of them, list, read and verify tensors."""

from metainspect.checkpoint.reader import Checkpoint, CorruptTensor, TensorInfo, TensorLocation, open_checkpoint

__all__ = ["Checkpoint", "CorruptTensor", "TensorInfo", "TensorLocation", "open_checkpoint"]
