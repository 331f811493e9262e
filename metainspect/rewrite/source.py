"""The input of a rewrite: an opened checkpoint, its tensors with their stored pieces, and the
byte sources of its data files, all from :mod:`metainspect.checkpoint`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.checkpoint import Checkpoint, CheckpointFormat, StoredPiece, open_checkpoint
from metainspect.formats import dtypes, slices
from metainspect.formats.bundle_codec import encode_strings, string_values

if TYPE_CHECKING:
    import numpy as np

    from metainspect.formats.source import ByteSource

__all__ = ["RewriteSource", "SourceTensor"]


@dataclass(frozen=True)
class SourceTensor:
    """One tensor of the input and its stored pieces (one, or one per slice)."""

    name: str
    dtype: dtypes.DType
    shape: tuple[int, ...]
    pieces: tuple[StoredPiece, ...]

    @property
    def nbytes(self) -> int:
        """Bytes stored (V1: bytes of the records)."""
        return sum(p.size for p in self.pieces)

    @property
    def partitioned(self) -> bool:
        first = self.pieces[0].extents if self.pieces else None
        return len(self.pieces) > 1 or (first is not None and not slices.is_full(first, self.shape))


class RewriteSource:
    """An opened input checkpoint (every CRC checked when its tensors are decoded)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.prefix = checkpoint.prefix
        self.format: CheckpointFormat = checkpoint.format
        self.notes = checkpoint.notes
        #: data shards (V2) or table files (V1), by shard index
        self.files = checkpoint.data_files
        self.big_endian = checkpoint.endianness == "big"
        self.tensors = []
        for name in checkpoint:
            pieces = checkpoint.pieces(name)  # checked against the index first
            tensor = checkpoint[name]
            self.tensors.append(SourceTensor(name, dtypes.from_name(tensor.dtype), tensor.shape, pieces))
        self._last: tuple[str, np.ndarray] | None = None

    @classmethod
    def open(cls, path: str) -> RewriteSource:
        """Open any checkpoint :func:`~metainspect.checkpoint.open_checkpoint` accepts."""
        checkpoint = open_checkpoint(path)
        try:
            return cls(checkpoint)
        except BaseException:
            checkpoint.close()
            raise

    def shard(self, index: int) -> ByteSource:
        """The bytes of data file ``index``."""
        return self.checkpoint.data_source(index)

    def values(self, name: str) -> np.ndarray:
        """A whole tensor decoded and checked (the last one is kept: its slices are read in turn)."""
        if self._last is None or self._last[0] != name:
            self._last = (name, self.checkpoint.get(name))
        return self._last[1]

    def string_sizes(self, tensor: SourceTensor) -> list[int]:
        """Size in a V2 bundle of each piece of a string tensor read from V1 (read to find out)."""
        values = self.values(tensor.name)
        parts = [values if p.extents is None else values[slices.bounds(p.extents, tensor.shape)] for p in tensor.pieces]
        return [encode_strings(string_values(part))[0] for part in parts]

    def input_files(self) -> list[str]:
        """Every file of the input (the index first)."""
        if self.checkpoint.index_file is not None:
            return [self.checkpoint.index_file, *self.files]
        return list(self.files)

    def close(self) -> None:
        self._last = None
        self.checkpoint.close()

    def __enter__(self) -> RewriteSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def numeric_size(piece: StoredPiece, dtype: dtypes.DType) -> int:
    """Bytes of a numeric piece in a V2 bundle."""
    return math.prod(piece.shape) * dtype.itemsize
