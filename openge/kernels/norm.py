"""Compiled normalization kernels (kernels layer, numba): layer norm in one pass per row, and
the row sums / means of ReduceSum / ReduceMean over trailing axes (global average pooling).

The NumPy reference (openge.ops.normalization) makes five passes over the tensor (mean, the
centred copy, its square's mean, scale, shift) with temporaries; here each row is read three
times from cache and written once, its sums accumulated in float64. Each kernel comes as a
parallel and a serial twin (numba's parallel launch costs 25-55 µs: small tensors and one
thread take the serial one); the serial twin has its own name so numba's cache keeps them apart.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from openge.kernels.twins import twins


def _layer_norm(x, gamma, beta, y, mean, var, eps):  # pragma: no cover - compiled
    """Rows of ``x`` (rows, inner) normalized into ``y``: (x - mean) / sqrt(var + eps) times
    ``gamma`` plus ``beta`` (inner,); the row means and biased variances into ``mean`` and
    ``var`` (rows,)."""
    rows, inner = x.shape
    for r in prange(rows):
        s = 0.0
        for k in range(inner):
            s += np.float64(x[r, np.uint64(k)])
        mu = s / inner
        q = 0.0
        for k in range(inner):
            d = np.float64(x[r, np.uint64(k)]) - mu
            q += d * d
        v = q / inner
        inv = 1.0 / math.sqrt(v + eps)
        for k in range(inner):
            u = np.uint64(k)
            y[r, u] = (np.float64(x[r, u]) - mu) * inv * gamma[u] + beta[u]
        mean[r] = mu
        var[r] = v


layer_norm, layer_norm_serial = twins(_layer_norm)


def _row_sums(x, out, scale):  # pragma: no cover - compiled
    """``out[r] = scale · Σ x[r, :]`` for ``x`` (rows, inner), summed in float64. The sum may
    be reassociated (compiled with ``fastmath={"reassoc"}``: vector lanes of partial sums, the
    only form numba vectorizes); in float64 the order changes the float32 result only in
    rare last-bit ties."""
    rows, inner = x.shape
    for r in prange(rows):
        row = x[r]
        s = 0.0
        for k in range(inner):
            s += np.float64(row[np.uint64(k)])
        out[r] = s * scale


row_sums, row_sums_serial = twins(_row_sums, fastmath={"reassoc"})

__all__ = ["layer_norm", "layer_norm_serial", "row_sums", "row_sums_serial"]
