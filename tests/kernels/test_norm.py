"""openge.kernels.norm: compiled layer norm (parallel and serial twins) against a float64
NumPy formula written here."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from tests.kernels.parts import drive_alone, drive_team

pytest.importorskip("numba")
RNG = np.random.default_rng(5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_rows(dtype):
    norm = kernels.load("norm")
    x = (RNG.standard_normal((37, 300)) * 5 + 3).astype(dtype)
    gamma = RNG.standard_normal(300).astype(dtype)
    beta = RNG.standard_normal(300).astype(dtype)
    y = np.empty_like(x)
    mean = np.empty(37, dtype)
    var = np.empty(37, dtype)
    norm.layer_norm(x, gamma, beta, y, mean, var, 1e-5)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    v = ((x64 - mu) ** 2).mean(axis=1, keepdims=True)
    ref = (x64 - mu) / np.sqrt(v + 1e-5) * gamma + beta
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(mean, mu[:, 0], rtol=tol)
    np.testing.assert_allclose(var, v[:, 0], rtol=tol)


def test_layer_norm_sums_keep_float64_precision_far_from_zero():
    """Rows far from zero with a small spread (the case a float32 or a badly ordered sum gets
    wrong): the vector-lane float64 sums give the float64 formula's float32 results to within
    one unit in the last place, and its means and variances to 1e-12."""
    norm = kernels.load("norm")
    rows, inner = 9, 768
    x = (1000.0 + RNG.standard_normal((rows, inner)) * 1e-2).astype(np.float32)
    gamma = RNG.standard_normal(inner).astype(np.float32)
    beta = RNG.standard_normal(inner).astype(np.float32)
    y = np.empty_like(x)
    mean = np.empty(rows, np.float64)
    var = np.empty(rows, np.float64)
    norm.layer_norm(x, gamma, beta, y, mean, var, 1e-5)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    v = ((x64 - mu) ** 2).mean(axis=1, keepdims=True)
    ref = ((x64 - mu) / np.sqrt(v + 1e-5) * gamma + beta).astype(np.float32)
    np.testing.assert_array_max_ulp(y, ref, maxulp=1)
    np.testing.assert_allclose(mean, mu[:, 0], rtol=1e-12)
    np.testing.assert_allclose(var, v[:, 0], rtol=1e-9)


@pytest.mark.parametrize("parts", [1, 3, 37])
def test_layer_norm_drive_in_parts_and_on_the_team_matches_whole(parts):
    """The team's form: any cut of the rows into parts, alone or on two threads, gives the
    serial kernel's bits (each row computed on its own)."""
    norm = kernels.load("norm")
    x = RNG.standard_normal((37, 200)).astype(np.float32)
    gamma, beta = (
        RNG.standard_normal(200).astype(np.float32),
        RNG.standard_normal(200).astype(np.float32),
    )
    outs = [
        (np.empty_like(x), np.empty(37, np.float32), np.empty(37, np.float32)) for _ in range(3)
    ]
    norm.layer_norm(x, gamma, beta, *outs[0], 1e-5)
    drive_alone(norm.layer_norm_drive, (x, gamma, beta, *outs[1], 1e-5), 37, parts)
    drive_team(norm.layer_norm_drive, norm.layer_norm, (x, gamma, beta, *outs[2], 1e-5), 37, parts)
    for got in outs[1:]:
        for a, b in zip(got, outs[0], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(96, 3136), (1152, 49), (3, 1), (1, 100003), (7, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_against_float64(shape, dtype):
    norm = kernels.load("norm")
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    want = x.astype(np.float64).sum(axis=1)
    for part in (None, 2):  # whole, then rows [2, end) and [0, 2) as openge's threads do
        out = np.full(shape[0], np.nan, dtype)
        if part is None:
            norm.row_sums(x, out, 0.5)
        else:
            norm.row_sums(x[part:], out[part:], 0.5)
            norm.row_sums(x[:part], out[:part], 0.5)
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(out, 0.5 * want, rtol=tol, atol=tol)


def test_reduce_mean_prepare_takes_trailing_axes_only():
    """ReduceMean / ReduceSum's prepare: a compiled closure over trailing axes, equal to
    NumPy's float64 mean within float32 rounding; other axes keep the NumPy kernel."""
    from openge.ops import get_schema

    x = np.random.default_rng(5).standard_normal((2, 96, 40, 40)).astype(np.float32)
    for op, fn in (("ReduceMean", np.mean), ("ReduceSum", np.sum)):
        schema = get_schema(op)
        y = np.empty((2, 96, 1, 1), np.float32)
        axes = np.array([2, -1], np.int64)
        run = schema.prepare(
            [x, axes], [y], [False, True], keep_dims=True, noop_with_empty_axes=False
        )
        assert run is not None
        run()
        want = fn(x.astype(np.float64), axis=(2, 3), keepdims=True)
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
        middle = np.empty((2, 1, 40, 40), np.float32)
        assert (
            schema.prepare(
                [x, np.array([1], np.int64)],
                [middle],
                [False, True],
                keep_dims=True,
                noop_with_empty_axes=False,
            )
            is None
        )
