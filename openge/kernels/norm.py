"""Compiled normalization kernels (kernels layer, numba): layer norm in one pass per row, and
the row sums / means of ReduceSum / ReduceMean over trailing axes (global average pooling).

The NumPy reference (openge.ops.normalization) makes five passes over the tensor (mean, the
centred copy, its square's mean, scale, shift) with temporaries; here each row is read three
times from cache and written once, its sums accumulated in float64. The kernels release the
GIL: openge's threads run them on parts of the rows (openge.ops.compiled.launcher; layer
norm's rows on the thread team, :func:`layer_norm_drive`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from openge.kernels import sync


@njit(cache=True, nogil=True, error_model="numpy")
def layer_norm(x, gamma, beta, y, mean, var, eps):  # pragma: no cover - compiled
    """Rows of ``x`` (rows, inner) normalized into ``y``: (x - mean) / sqrt(var + eps) times
    ``gamma`` plus ``beta`` (inner,); the row means and biased variances into ``mean`` and
    ``var`` (rows,)."""
    layer_norm_rows(x, gamma, beta, y, mean, var, eps, 0, x.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def layer_norm_drive(
    x, gamma, beta, y, mean, var, eps, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`layer_norm` on a thread of openge's team (openge.kernels.sync): rows claimed
    part by part, without the GIL."""
    args = (x, gamma, beta, y, mean, var, eps)
    return sync.drive(layer_norm_rows, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def layer_norm_rows(x, gamma, beta, y, mean, var, eps, first, stop):  # pragma: no cover
    """:func:`layer_norm` of rows ``first`` to ``stop``."""
    inner = x.shape[1]
    for r in range(first, stop):
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


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def row_sums(x, out, scale):  # pragma: no cover - compiled
    """``out[r] = scale · Σ x[r, :]`` for ``x`` (rows, inner), summed in float64. The sum may
    be reassociated (compiled with ``fastmath={"reassoc"}``: vector lanes of partial sums, the
    only form numba vectorizes); in float64 the order changes the float32 result only in
    rare last-bit ties."""
    rows, inner = x.shape
    for r in range(rows):
        row = x[r]
        s = 0.0
        for k in range(inner):
            s += np.float64(row[np.uint64(k)])
        out[r] = s * scale


__all__ = ["layer_norm", "layer_norm_drive", "layer_norm_rows", "row_sums"]
