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


def test_silu32_against_float64_with_its_edges():
    """silu32 (a / (1 + e^-a), the convolutions' SiLU): within 3 ulp of float64's
    x·sigmoid(x) where that is a normal float, NaN for NaN and -inf (as -inf·0), +inf for
    +inf, a zero of a's sign far below -88, and sigmoid32 0 there."""
    kernels.load("depthwise")
    from numba import njit

    from openge.kernels.mathf32 import sigmoid32, silu32

    @njit
    def loops(a, s, g):
        for i in range(a.size):
            s[i] = silu32(a[i])
            g[i] = sigmoid32(a[i])

    x = np.concatenate(
        [np.linspace(-80.0, 80.0, 800_001), np.linspace(-1e-3, 1e-3, 2001), [1e-30, -1e-30]]
    ).astype(np.float32)
    s, g = np.empty_like(x), np.empty_like(x)
    loops(x, s, g)
    wide = x.astype(np.float64)
    exact = wide / (1.0 + np.exp(-wide))
    normal = np.abs(exact) >= np.finfo(np.float32).tiny
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max((np.abs(s - exact) / ulp)[normal]) <= 3.0
    np.testing.assert_allclose(g, 1.0 / (1.0 + np.exp(-wide)), rtol=3e-7, atol=1e-37)
    edges = np.array([np.nan, -np.inf, np.inf, -100.0, -89.0, 0.0, -0.0], np.float32)
    s, g = np.empty_like(edges), np.empty_like(edges)
    loops(edges, s, g)
    assert np.isnan(s[0]) and np.isnan(s[1]) and s[2] == np.inf
    assert s[3] == 0.0 and np.signbit(s[3]) and s[4] == 0.0 and np.signbit(s[4])
    assert s[5] == 0.0 and not np.signbit(s[5]) and np.signbit(s[6])
    assert np.isnan(g[0]) and g[1] == 0.0 and g[2] == 1.0 and g[3] == 0.0


def test_tanh32_and_gelu_tanh32_against_float64():
    kernels.load("depthwise")
    from numba import njit

    from openge.kernels.mathf32 import gelu_tanh32, tanh32

    @njit
    def loops(a, t, g):
        for i in range(a.size):
            t[i] = tanh32(a[i])
            g[i] = gelu_tanh32(a[i])

    x = np.concatenate(
        [
            np.linspace(-12.0, 12.0, 400_001),
            np.linspace(-0.6, 0.6, 200_001),  # both sides of the series / exp switch
            [0.0, -0.0, 1e-30, -1e-30, 1e-3, 100.0, -100.0],
        ]
    ).astype(np.float32)
    t, g = np.empty_like(x), np.empty_like(x)
    loops(x, t, g)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(t - exact) / ulp) <= 2.0
    assert np.signbit(t[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()
    x64 = x.astype(np.float64)
    u = 0.7978845608028654 * (x64 + 0.044715 * x64**3)
    with np.errstate(over="ignore"):
        gelu = x64 / (1 + np.exp(-2 * u))  # 0.5·x·(1 + tanh u) without its cancellation
    near = np.abs(x) <= 5  # beyond -5 the result is under 1e-6·|x|: its argument's rounding
    np.testing.assert_allclose(g[near], gelu[near], rtol=3e-6, atol=1e-37)
    np.testing.assert_allclose(g[~near], gelu[~near], rtol=3e-5, atol=1e-36)
    nan = np.array([np.nan, np.inf, -np.inf], np.float32)
    t3, g3 = np.empty_like(nan), np.empty_like(nan)
    loops(nan, t3, g3)
    assert np.isnan(t3[0]) and t3[1] == 1.0 and t3[2] == -1.0
    assert np.isnan(g3[0])


def test_fmuladd_is_one_rounding_or_two_and_widens_mixed_floats():
    kernels.load("depthwise")
    from numba import njit

    from openge.kernels.mathf32 import fmuladd

    @njit
    def narrow(a, b, c, out):
        for i in range(a.size):
            out[i] = fmuladd(a[i], b[i], c[i])

    @njit
    def mixed(a, b, c):  # float32 a and b, float64 c: computed (and returned) in float64
        return fmuladd(a[0], b[0], c)

    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal(100_000).astype(np.float32) for _ in range(3))
    out = np.empty_like(a)
    narrow(a, b, c, out)
    # a·b is exact in float64 (48 significant bits), so this rounds once, as an FMA does
    fused = (a.astype(np.float64) * b + c).astype(np.float32)
    unfused = a * b + c  # float32 throughout: two roundings (machines without FMA)
    assert np.all((out == fused) | (out == unfused))
    assert np.mean(out == fused) > 0.99 or np.array_equal(out, unfused)
    got = mixed(np.float32([1.5]), np.float32([3.0]), 2.0**-40)
    assert isinstance(got, float) and got == 4.5 + 2.0**-40  # float32 would round it to 4.5
