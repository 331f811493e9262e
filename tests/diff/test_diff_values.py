"""Value metrics of ``metainspect.diff.values`` against numpy computed independently, on the
whole arrays at once (no chunks, no shared code)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from metainspect.diff import values
from metainspect.diff.values import ValueDiff, comparable, compare_values


def _reference(a: np.ndarray, b: np.ndarray, atol: float = 0.0, rtol: float = 0.0) -> dict[str, float | int | None]:
    x = np.asarray(a).astype(np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(b) else np.float64).ravel()
    y = np.asarray(b).astype(x.dtype).ravel()
    both = np.isfinite(x) & np.isfinite(y)
    fx, fy = x[both], y[both]
    d = np.abs(fx - fy)
    close = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
    norm_a, norm_b = np.linalg.norm(fx), np.linalg.norm(fy)
    return {
        "elements": x.size,
        "mismatched_elements": int((~close).sum()),
        "max_abs_diff": float(d.max()) if d.size else None,
        "mean_abs_diff": float(d.mean()) if d.size else None,
        "rel_l2": float(np.linalg.norm(fx - fy) / norm_a) if d.size and norm_a else None,
        "cosine": float(np.real(np.vdot(fx, fy)) / (norm_a * norm_b)) if d.size and norm_a and norm_b else None,
        "nan_a": int(np.isnan(x).sum()), "nan_b": int(np.isnan(y).sum()),
        "inf_a": int(np.isinf(x).sum()), "inf_b": int(np.isinf(y).sum()),
    }


def _check(found: ValueDiff, expected: dict[str, float | int | None]) -> None:
    for key, want in expected.items():
        got = getattr(found, key)
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15), key
        else:
            assert got == want, key


@pytest.fixture(params=[7, values.CHUNK_ELEMENTS], ids=["chunks of 7", "default chunks"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run each test with tiny chunks too, so every sum crosses chunk boundaries."""
    monkeypatch.setattr(values, "CHUNK_ELEMENTS", request.param)
    return int(request.param)


def test_float32_metrics_match_numpy(chunk: int) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(37, 11)).astype(np.float32)
    b = (a + rng.normal(scale=1e-3, size=a.shape)).astype(np.float32)
    b[3, 4] = a[3, 4]
    found = compare_values(a, b, "float32", "float32")
    _check(found, _reference(a, b))
    assert found.mismatched == pytest.approx((a != b).mean())


def test_tolerances_follow_numpy_isclose(chunk: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=500)
    b = a * (1 + rng.uniform(-2e-5, 2e-5, size=a.size)) + rng.uniform(-2e-8, 2e-8, size=a.size)
    for atol, rtol in ((0.0, 1e-5), (1e-8, 0.0), (1e-8, 1e-5), (1.0, 0.0)):
        found = compare_values(a, b, "float64", "float64", atol=atol, rtol=rtol)
        assert found.mismatched_elements == int((~np.isclose(a, b, rtol=rtol, atol=atol)).sum()), (atol, rtol)
    assert compare_values(a, b, "float64", "float64", atol=1.0).mismatched_elements == 0


def test_nan_and_inf_counted_and_matched_like_isclose_equal_nan(chunk: int) -> None:
    a = np.array([1.0, np.nan, np.inf, -np.inf, 2.0, np.nan, 5.0, 0.0, 3.0], np.float32)
    b = np.array([1.5, np.nan, np.inf, np.inf, np.nan, 1.0, np.inf, -0.0, 3.0], np.float32)
    found = compare_values(a, b, "float32", "float32")
    _check(found, _reference(a, b))
    # NaN/NaN and inf/inf match; -inf/inf, 2/NaN, NaN/1, 5/inf and 1/1.5 do not; 0.0/-0.0 match
    assert found.mismatched_elements == 5
    assert (found.nan_a, found.nan_b, found.inf_a, found.inf_b) == (2, 2, 2, 3)
    assert found.max_abs_diff == 0.5  # over positions where both values are finite


def test_all_nan_has_no_metrics_but_matches() -> None:
    a = np.full(4, np.nan)
    found = compare_values(a, a.copy(), "float64", "float64")
    assert found.mismatched_elements == 0 and found.max_abs_diff is None and found.rel_l2 is None


def test_large_int64_compared_exactly_without_tolerance() -> None:
    a = np.array([2**62, 2**62 + 1, -(2**63)], np.int64)
    b = np.array([2**62 + 1, 2**62 + 1, -(2**63)], np.int64)
    assert float(a[0]) == float(b[0])  # float64 cannot tell them apart
    found = compare_values(a, b, "int64", "int64")
    assert found.mismatched_elements == 1


def test_different_float_types_compared_as_float64(chunk: int) -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=300).astype(np.float32)
    for kind, name in ((np.float16, "float16"), (ml_dtypes.bfloat16, "bfloat16")):
        b = a.astype(kind)
        found = compare_values(a, b, "float32", name)
        _check(found, _reference(a, b.astype(np.float64)))
        assert found.max_abs_diff > 0


def test_complex_uses_modulus_and_real_inner_product(chunk: int) -> None:
    rng = np.random.default_rng(3)
    a = (rng.normal(size=50) + 1j * rng.normal(size=50)).astype(np.complex64)
    b = (a * np.complex64(1 + 0.01j)).astype(np.complex64)
    _check(compare_values(a, b, "complex64", "complex64"), _reference(a, b))


def test_bool_and_int4(chunk: int) -> None:
    a = np.array([True, False, True, True])
    b = np.array([True, True, True, False])
    assert compare_values(a, b, "bool", "bool").mismatched_elements == 2
    c = np.array([-8, 0, 7, 3], ml_dtypes.int4)
    d = np.array([-8, 1, 7, 3], ml_dtypes.int4)
    found = compare_values(c, d, "int4", "int4")
    assert found.mismatched_elements == 1 and found.max_abs_diff == 1.0


def test_strings_compared_element_by_element() -> None:
    a = np.array([b"a", b"b", b"", b"\x00"], dtype=object)
    b = np.array([b"a", b"c", b"", b"\x00\x00"], dtype=object)
    found = compare_values(a, b, "string", "string")
    assert found.mismatched_elements == 2 and found.max_abs_diff is None and found.mismatched == 0.5


def test_empty_tensor() -> None:
    empty = np.zeros((0, 3), np.float32)
    found = compare_values(empty, empty, "float32", "float32")
    assert found.elements == 0 and found.mismatched is None and found.max_abs_diff is None


def test_zero_norms() -> None:
    zeros = np.zeros(3)
    assert compare_values(zeros, zeros, "float64", "float64").rel_l2 == 0.0
    found = compare_values(zeros, np.ones(3), "float64", "float64")
    assert found.rel_l2 == math.inf and found.cosine is None


def test_progress_counts_every_element(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(values, "CHUNK_ELEMENTS", 10)
    seen: list[int] = []
    compare_values(np.zeros(35), np.zeros(35), "float64", "float64", progress=seen.append)
    assert seen == [10, 10, 10, 5]


def test_comparable() -> None:
    assert comparable("float32", "bfloat16") and comparable("int64", "float32") and comparable("string", "string")
    assert not comparable("string", "float32") and not comparable("variant", "string")
