"""openge.kernels.mathf32: float32 exp and sigmoid without libm, against float64 NumPy."""

from __future__ import annotations

import numpy as np

from openge import kernels


def _loops():
    kernels.load("depthwise")  # numba configured (cache folder) before anything compiles
    from numba import njit

    from openge.kernels.mathf32 import exp32, sigmoid32

    @njit
    def exp_loop(a, out):
        for i in range(a.size):
            out[i] = exp32(a[i])

    @njit
    def sigmoid_loop(a, out):
        for i in range(a.size):
            out[i] = sigmoid32(a[i])

    return exp_loop, sigmoid_loop


def test_exp32_is_within_one_ulp_over_its_range():
    exp_loop, _ = _loops()
    x = np.linspace(-87.0, 88.0, 1_000_001).astype(np.float32)
    x = np.concatenate([x, np.random.default_rng(0).uniform(-87, 88, 200_000).astype(np.float32)])
    out = np.empty_like(x)
    exp_loop(x, out)
    exact = np.exp(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - exact) / ulp) <= 1.0


def test_exp32_edges_nan_and_sigmoid_tails():
    exp_loop, sigmoid_loop = _loops()
    x = np.array([np.nan, 0.0, -0.0, 1.0, -1.0, 88.0, -87.0], np.float32)
    out = np.empty_like(x)
    exp_loop(x, out)
    assert np.isnan(out[0])
    np.testing.assert_allclose(out[1:], np.exp(x[1:].astype(np.float64)), rtol=2**-23)
    s = np.array([np.nan, np.inf, -np.inf, 100.0, -100.0, 0.0, 20.0, -20.0], np.float32)
    got = np.empty_like(s)
    sigmoid_loop(s, got)
    assert np.isnan(got[0])
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-s[1:].astype(np.float64)))
    np.testing.assert_allclose(got[1:], want, rtol=2e-7, atol=1e-37)
