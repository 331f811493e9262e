"""Summary statistics of a numeric tensor, computed in bounded-memory chunks."""

from __future__ import annotations

from collections.abc import Iterator
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
    """Statistics of a real numeric array (None for strings, variants and complex numbers).

    Two passes over bounded chunks: the first finds the range and counts NaN/Inf, the second
    sums values divided by the largest magnitude, so neither the sum nor the squares overflow
    (float64 values near 1e308 give a finite mean and std, as they should).
    """
    import numpy as np

    if array.dtype == object or np.issubdtype(array.dtype, np.complexfloating):
        return None
    count = nan = inf = 0
    low = high = None
    for values, chunk in _finite_chunks(array):
        nan += int(np.isnan(chunk).sum())
        inf += int(np.isinf(chunk).sum())
        if values.size:
            count += values.size
            chunk_min, chunk_max = float(values.min()), float(values.max())
            low = chunk_min if low is None else min(low, chunk_min)
            high = chunk_max if high is None else max(high, chunk_max)
    if low is None or high is None:
        return TensorStats(None, None, None, None, nan, inf)
    scale = max(abs(low), abs(high)) or 1.0
    total = total_sq = 0.0
    for values, _ in _finite_chunks(array):
        scaled = values / scale
        total += float(scaled.sum())
        total_sq += float(np.square(scaled).sum())
    mean = total / count
    variance = max(total_sq / count - mean * mean, 0.0)
    return TensorStats(low, high, mean * scale, variance**0.5 * scale, nan, inf)


def _finite_chunks(array: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(finite values, chunk)`` of every chunk of the flattened array, as float64."""
    import numpy as np

    flat = array.reshape(-1)
    for start in range(0, flat.size, CHUNK_ELEMENTS):
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and Inf of narrow floats carry over as such
            chunk = flat[start : start + CHUNK_ELEMENTS].astype(np.float64)
        finite = np.isfinite(chunk)
        yield (chunk if finite.all() else chunk[finite]), chunk
