"""Compare the values of two tensors of one shape, in bounded chunks, accumulating in float64.

Numbers (bool, integers, floats, complex) are converted chunk by chunk to float64 (complex128
for complex) before anything is subtracted, so no metric depends on the stored precision.
An element of A and an element of B *match* under numpy's ``isclose(a, b, rtol, atol,
equal_nan=True)``: ``|a - b| <= atol + rtol * |b|`` for finite values, NaN matches NaN, an
infinity matches only the same infinity. With both tolerances 0 (the default) two integer
tensors are compared in their own types, exactly (int64 values past 2**53 included).

``max_abs_diff``, ``mean_abs_diff``, ``rel_l2`` (``||a - b|| / ||a||``) and ``cosine``
(``<a, b> / (||a|| ||b||)``, real part for complex) are computed over the positions where both
values are finite; NaN and Inf are counted on each side instead. Strings and variants are
compared element by element (equal or not).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from metainspect.formats import dtypes

if TYPE_CHECKING:
    import numpy as np

#: elements converted and compared at a time: three float64 work buffers of 128 KiB stay in the
#: CPU's cache through the dozen passes over a chunk (measured: 2^14 about 1.5x faster than 2^18)
CHUNK_ELEMENTS = 1 << 14

_INTEGER_PREFIXES = ("int", "uint", "qint", "quint", "bool")


@dataclass(frozen=True)
class ValueDiff:
    """How the values of two same-shaped tensors differ (None: does not apply)."""

    elements: int
    #: elements outside the tolerances (NaN and Inf rules in the module docstring)
    mismatched_elements: int
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    rel_l2: float | None = None
    cosine: float | None = None
    nan_a: int | None = None
    nan_b: int | None = None
    inf_a: int | None = None
    inf_b: int | None = None

    @property
    def mismatched(self) -> float | None:
        """Fraction of elements outside the tolerances (None for an empty tensor)."""
        return self.mismatched_elements / self.elements if self.elements else None


def comparable(dtype_a: str, dtype_b: str) -> bool:
    """Whether values of these two TensorFlow dtypes can be compared (both numbers, or equal)."""
    if dtype_a == dtype_b:
        return _known(dtype_a)
    return _is_number(dtype_a) and _is_number(dtype_b)


def compare_values(a: np.ndarray, b: np.ndarray, dtype_a: str, dtype_b: str, *, atol: float = 0.0,
                   rtol: float = 0.0, progress: Callable[[int], None] | None = None) -> ValueDiff:
    """Compare two arrays of one shape (see the module docstring); ``progress(elements)`` is
    called after each chunk with the number of elements it covered."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    if not (_is_number(dtype_a) and _is_number(dtype_b)):
        differing = _count_unequal_objects(a.reshape(-1), b.reshape(-1))
        if progress is not None:
            progress(a.size)
        return ValueDiff(a.size, differing)
    exact = atol == 0 and rtol == 0 and _is_integer(dtype_a) and _is_integer(dtype_b)
    is_complex = dtypes.from_name(dtype_a).numpy().kind == "c" or dtypes.from_name(dtype_b).numpy().kind == "c"
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    accumulator = _Accumulator(atol, rtol, exact, is_complex, flat_a.dtype == flat_b.dtype)
    accumulator.run(flat_a, flat_b, progress)
    return accumulator.result(flat_a.size)


def _known(name: str) -> bool:
    try:
        dtypes.from_name(name)
    except ValueError:
        return False
    return True


def _is_number(name: str) -> bool:
    try:
        return dtypes.from_name(name).is_numeric
    except ValueError:
        return False


def _is_integer(name: str) -> bool:
    return name.startswith(_INTEGER_PREFIXES)


def _count_unequal_objects(a: np.ndarray, b: np.ndarray) -> int:
    """Strings (bytes) or variants (protos) that differ, position by position."""
    return sum(1 for x, y in zip(a.tolist(), b.tolist()) if x != y)


class _Accumulator:
    """Running float64 sums over the chunks of one pair of flat arrays."""

    def __init__(self, atol: float, rtol: float, exact: bool, is_complex: bool, same_type: bool) -> None:
        import numpy as np

        self.atol, self.rtol, self.exact, self.same_type = atol, rtol, exact, same_type
        self.work = np.dtype(np.complex128 if is_complex else np.float64)
        self.finite = 0  # positions where both values are finite
        self.mismatched = 0
        self.abs_sum = self.abs_max = 0.0
        self.aa = self.bb = self.ab = self.dd = 0.0
        self.nan_a = self.nan_b = self.inf_a = self.inf_b = 0

    def run(self, a: np.ndarray, b: np.ndarray, progress: Callable[[int], None] | None) -> None:
        import numpy as np

        size = a.size
        step = min(CHUNK_ELEMENTS, size) or 1
        x, y, d = (np.empty(step, self.work) for _ in range(3))
        for start in range(0, size, step):
            end = min(start + step, size)
            n = end - start
            self._chunk(a[start:end], b[start:end], x[:n], y[:n], d[:n])
            if progress is not None:
                progress(n)

    def _chunk(self, ra: np.ndarray, rb: np.ndarray, x: np.ndarray, y: np.ndarray, d: np.ndarray) -> None:
        import numpy as np

        np.copyto(x, ra, casting="unsafe")
        if self.same_type and _same_bytes(ra, rb):  # equal values: no difference to measure
            aa = _dot(x, x)
            if math.isfinite(aa):
                self.finite += x.size
                self.aa += aa
                self.bb += aa
                self.ab += aa
                return
        np.copyto(y, rb, casting="unsafe")
        aa, bb = _dot(x, x), _dot(y, y)
        if not math.isfinite(aa + bb):  # NaN or Inf somewhere (or squares beyond float64)
            self._chunk_with_nonfinite(ra, rb, x, y)
            return
        np.subtract(x, y, out=d)
        self.finite += x.size
        self.aa += aa
        self.bb += bb
        self.ab += _dot(x, y)
        self.dd += _dot(d, d)
        self.mismatched += self._outside(ra, rb, d, y)

    def _outside(self, ra: np.ndarray, rb: np.ndarray, d: np.ndarray, y: np.ndarray) -> int:
        """Accumulate |a - b| (``d`` is overwritten) and count the finite pairs outside tolerance."""
        import numpy as np

        if d.dtype.kind == "c":
            d = np.abs(d)
        else:
            np.abs(d, out=d)
        if d.size:
            self.abs_max = max(self.abs_max, float(d.max()))
            self.abs_sum += float(d.sum())
        if self.exact or (self.atol == 0 and self.rtol == 0 and self.same_type):
            return int(np.count_nonzero(ra != rb))  # in the stored type: fewer bytes than float64
        if self.atol == 0 and self.rtol == 0:
            return int(np.count_nonzero(d))
        limit = np.abs(y)
        limit *= self.rtol
        limit += self.atol
        return int(np.count_nonzero(d > limit))

    def _chunk_with_nonfinite(self, ra: np.ndarray, rb: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        import numpy as np

        finite_a, finite_b = np.isfinite(x), np.isfinite(y)
        nan_a, nan_b = np.isnan(x), np.isnan(y)
        self.nan_a += int(np.count_nonzero(nan_a))
        self.nan_b += int(np.count_nonzero(nan_b))
        self.inf_a += int(x.size - np.count_nonzero(finite_a | nan_a))
        self.inf_b += int(y.size - np.count_nonzero(finite_b | nan_b))
        both = finite_a & finite_b
        # non-finite on either side: a match only for NaN/NaN and for the same infinity
        others = ~both
        same = (x[others] == y[others]) | (nan_a[others] & nan_b[others])
        self.mismatched += int(np.count_nonzero(~same))
        fx, fy = x[both], y[both]
        self.finite += fx.size
        with np.errstate(over="ignore", invalid="ignore"):
            self.aa += _dot(fx, fx)
            self.bb += _dot(fy, fy)
            self.ab += _dot(fx, fy)
            d = fx - fy
            self.dd += _dot(d, d)
            self.mismatched += self._outside(ra[both], rb[both], d, fy)

    def result(self, size: int) -> ValueDiff:
        if not self.finite:
            return ValueDiff(size, self.mismatched, nan_a=self.nan_a, nan_b=self.nan_b,
                             inf_a=self.inf_a, inf_b=self.inf_b)
        norm_a, norm_b = math.sqrt(self.aa), math.sqrt(self.bb)
        if norm_a > 0:
            rel_l2 = math.sqrt(self.dd) / norm_a
        else:
            rel_l2 = 0.0 if self.dd == 0 else math.inf
        cosine = None
        if norm_a > 0 and norm_b > 0 and math.isfinite(norm_a * norm_b):
            cosine = max(-1.0, min(1.0, self.ab / norm_a / norm_b))
        return ValueDiff(
            size, self.mismatched, max_abs_diff=self.abs_max, mean_abs_diff=self.abs_sum / self.finite,
            rel_l2=rel_l2, cosine=cosine, nan_a=self.nan_a, nan_b=self.nan_b, inf_a=self.inf_a, inf_b=self.inf_b,
        )


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical chunks (compared as unsigned integers of the element size, without a copy)."""
    import numpy as np

    unit = np.dtype(f"u{a.dtype.itemsize}") if a.dtype.itemsize in (1, 2, 4, 8) else np.dtype(np.uint8)
    return bool(np.array_equal(a.view(unit), b.view(unit)))


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """Real part of ``sum(conj(x) * y)`` in float64, without BLAS (its threads contend on small machines)."""
    import numpy as np

    if x.dtype.kind == "c":
        return float(np.einsum("i,i->", x.conj(), y).real)
    return float(np.einsum("i,i->", x, y))
