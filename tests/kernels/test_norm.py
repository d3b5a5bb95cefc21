"""openge.kernels.norm: compiled layer norm (parallel and serial twins) against a float64
NumPy formula written here."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels

pytest.importorskip("numba")
RNG = np.random.default_rng(5)


@pytest.mark.parametrize("name", ["layer_norm", "layer_norm_serial"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_rows(name, dtype):
    norm = kernels.load("norm")
    x = (RNG.standard_normal((37, 300)) * 5 + 3).astype(dtype)
    gamma = RNG.standard_normal(300).astype(dtype)
    beta = RNG.standard_normal(300).astype(dtype)
    y = np.empty_like(x)
    mean = np.empty(37, dtype)
    var = np.empty(37, dtype)
    getattr(norm, name)(x, gamma, beta, y, mean, var, 1e-5)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=1, keepdims=True)
    v = ((x64 - mu) ** 2).mean(axis=1, keepdims=True)
    ref = (x64 - mu) / np.sqrt(v + 1e-5) * gamma + beta
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(mean, mu[:, 0], rtol=tol)
    np.testing.assert_allclose(var, v[:, 0], rtol=tol)
