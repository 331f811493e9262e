"""Summary statistics of a numeric tensor, computed in bounded-memory chunks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CHUNK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class TensorStats:
    """min/max/mean/std over finite values, and how many NaN and Inf values there are."""

    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    nan: int
    inf: int


def tensor_stats(array: np.ndarray) -> TensorStats | None:
    """Statistics of a real numeric array (None for strings, variants and complex numbers)."""
    import numpy as np

    if array.dtype == object or np.issubdtype(array.dtype, np.complexfloating):
        return None
    flat = array.reshape(-1)
    count = nan = inf = 0
    total = total_sq = 0.0
    low = high = None
    for start in range(0, flat.size, CHUNK_ELEMENTS):
        chunk = flat[start : start + CHUNK_ELEMENTS].astype(np.float64)
        finite = np.isfinite(chunk)
        nan += int(np.isnan(chunk).sum())
        inf += int(np.isinf(chunk).sum())
        values = chunk[finite] if not finite.all() else chunk
        if values.size:
            count += values.size
            total += float(values.sum())
            total_sq += float(np.square(values).sum())
            chunk_min, chunk_max = float(values.min()), float(values.max())
            low = chunk_min if low is None else min(low, chunk_min)
            high = chunk_max if high is None else max(high, chunk_max)
    if not count:
        return TensorStats(None, None, None, None, nan, inf)
    mean = total / count
    variance = max(total_sq / count - mean * mean, 0.0)
    return TensorStats(low, high, mean, variance**0.5, nan, inf)
