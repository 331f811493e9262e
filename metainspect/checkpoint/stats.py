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

    Accumulated in float64 over values divided by the largest magnitude, so that no sum or
    square overflows: a finite tensor always gets a finite mean and std, even near float64's
    limits, and numpy never warns.
    """
    import numpy as np

    if array.dtype == object or np.issubdtype(array.dtype, np.complexfloating):
        return None
    flat = array.reshape(-1)
    with np.errstate(all="ignore"):
        count = nan = inf = 0
        low = high = None
        for values, chunk_nan, chunk_inf in _finite_chunks(flat):
            nan += chunk_nan
            inf += chunk_inf
            if values.size:
                count += values.size
                chunk_min, chunk_max = float(values.min()), float(values.max())
                low = chunk_min if low is None else min(low, chunk_min)
                high = chunk_max if high is None else max(high, chunk_max)
        if low is None or high is None:
            return TensorStats(None, None, None, None, nan, inf)
        scale = max(abs(low), abs(high)) or 1.0
        scaled_mean = sum(float((values / scale).sum()) for values, _, _ in _finite_chunks(flat)) / count
        squares = sum(float(np.square(values / scale - scaled_mean).sum()) for values, _, _ in _finite_chunks(flat))
    mean = min(max(scaled_mean * scale, low), high)  # rounding never puts the mean outside [min, max]
    return TensorStats(low, high, mean, (squares / count) ** 0.5 * scale, nan, inf)


def _finite_chunks(flat: np.ndarray) -> Iterator[tuple[np.ndarray, int, int]]:
    """``(finite values as float64, NaN count, Inf count)`` for each chunk of ``flat``."""
    import numpy as np

    for start in range(0, flat.size, CHUNK_ELEMENTS):
        chunk = flat[start : start + CHUNK_ELEMENTS].astype(np.float64)
        finite = np.isfinite(chunk)
        if finite.all():
            yield chunk, 0, 0
        else:
            nan = int(np.isnan(chunk).sum())
            yield chunk[finite], nan, int(chunk.size - finite.sum()) - nan
