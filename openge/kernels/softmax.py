"""Compiled softmax and log-softmax (kernels layer, numba), float32.

The NumPy reference (openge.ops.softmax) is five ufunc calls (max, subtract, exp, sum,
divide) with temporaries: 0.44 ms over attention scores of 1536×128, 0.23 here. One call
makes four short passes over each row, each a loop that vectorizes: the max, the
exponentials
(openge.kernels.mathf32.exp32; numba's ``math.exp`` is a scalar libm call), their sum, the
scaling.

The tensor is seen as (outer, n, inner), the softmax over ``n``: rows of contiguous values
when ``inner`` is 1 (:func:`softmax_rows`), else ``inner`` columns side by side
(:func:`softmax_columns`, a channel softmax of NCHW). NaN and infinities give what NumPy
gives: a row holding NaN or +inf is NaN throughout (``exp32`` passes NaN into the sum,
``inf - inf`` is NaN), so the max may skip NaN. Exponentials below e⁻⁸⁷ are 0, where
NumPy's are subnormal: a difference of under 2e-38 in a result.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from openge.kernels import sync
from openge.kernels.mathf32 import exp32


@njit(inline="always")
def _above(a, b):  # pragma: no cover - compiled
    """max(a, b), NaN dropped when it is ``a``."""
    return a if a > b else b


@njit(inline="always")
def _exp_or_zero(d):  # pragma: no cover - compiled
    """exp(d) for d ≤ 0 (or NaN), 0 where float32's exp is below its normal range (exp32
    clamps there; a masked -inf logit must weigh exactly 0)."""
    return exp32(d) if not (d < np.float32(-87.0)) else np.float32(0.0)


@njit(nogil=True)
def _row_max(row):  # pragma: no cover - compiled
    """The largest of ``row`` (NaN may be skipped: the caller's sum is NaN then), in eight
    independent running maxima: numba vectorizes no max reduction, and one running max is a
    chain of dependent compares (4× slower)."""
    n = row.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = row[0]
    top = n - n % 8
    for k in range(0, top, 8):
        u = np.uint64(k)
        m0 = _above(row[u], m0)
        m1 = _above(row[u + np.uint64(1)], m1)
        m2 = _above(row[u + np.uint64(2)], m2)
        m3 = _above(row[u + np.uint64(3)], m3)
        m4 = _above(row[u + np.uint64(4)], m4)
        m5 = _above(row[u + np.uint64(5)], m5)
        m6 = _above(row[u + np.uint64(6)], m6)
        m7 = _above(row[u + np.uint64(7)], m7)
    for k in range(top, n):
        m0 = _above(row[k], m0)
    return _above(_above(_above(m0, m1), _above(m2, m3)), _above(_above(m4, m5), _above(m6, m7)))


@njit(nogil=True, fastmath={"reassoc"})
def _row_sum(row):  # pragma: no cover - compiled
    """Σ ``row`` in float32, in vector lanes of partial sums (the order a reassociated
    reduction takes: closer to NumPy's pairwise sum than one running sum)."""
    s = np.float32(0.0)
    for k in range(row.shape[0]):
        s += row[np.uint64(k)]
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def softmax_rows(x, y, log, first, stop):  # pragma: no cover - compiled
    """Softmax (``log``: log-softmax) of the rows ``first`` to ``stop`` of ``x`` (rows, n)
    into ``y``, without the GIL; float32, C-contiguous."""
    n = x.shape[1]
    for r in range(first, stop):
        row, out = x[r], y[r]
        m = _row_max(row)
        for k in range(n):
            u = np.uint64(k)
            out[u] = _exp_or_zero(row[u] - m)
        s = _row_sum(out)
        if log:
            shift = m + np.float32(math.log(s))
            for k in range(n):
                u = np.uint64(k)
                out[u] = row[u] - shift
        else:
            for k in range(n):
                u = np.uint64(k)
                out[u] = out[u] / s


@njit(cache=True, nogil=True, error_model="numpy")
def softmax_columns(x, y, log, first, stop):  # pragma: no cover - compiled
    """As :func:`softmax_rows` over axis 1 of ``x`` (outer, n, inner), for ``outer`` indices
    ``first`` to ``stop``: each of the ``inner`` columns its own softmax, the columns side by
    side in every pass."""
    n, inner = x.shape[1], x.shape[2]
    m = np.empty(inner, np.float32)
    s = np.empty(inner, np.float32)
    for o in range(first, stop):
        block, out = x[o], y[o]
        m[:] = block[0]
        for k in range(1, n):
            row = block[k]
            for j in range(inner):
                u = np.uint64(j)
                m[u] = _above(row[u], m[u])
        s[:] = 0.0
        for k in range(n):
            row, dst = block[k], out[k]
            for j in range(inner):
                u = np.uint64(j)
                e = _exp_or_zero(row[u] - m[u])
                dst[u] = e
                s[u] += e
        if log:
            for j in range(inner):
                u = np.uint64(j)
                m[u] += np.float32(math.log(s[u]))
            for k in range(n):
                row, dst = block[k], out[k]
                for j in range(inner):
                    u = np.uint64(j)
                    dst[u] = row[u] - m[u]
        else:
            for k in range(n):
                dst = out[k]
                for j in range(inner):
                    u = np.uint64(j)
                    dst[u] = dst[u] / s[u]


@njit(cache=True, nogil=True, error_model="numpy")
def softmax_rows_drive(x, y, log, total, ctl, signal, worker, gen, spins):  # pragma: no cover
    """:func:`softmax_rows` on a thread of openge's team (openge.kernels.sync): rows claimed
    part by part, without the GIL."""
    return sync.drive(softmax_rows, (x, y, log), total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def softmax_columns_drive(x, y, log, total, ctl, signal, worker, gen, spins):  # pragma: no cover
    """:func:`softmax_columns` on a thread of openge's team: ``outer`` indices claimed part by
    part, without the GIL."""
    return sync.drive(softmax_columns, (x, y, log), total, ctl, signal, worker, gen, spins)


__all__ = ["softmax_columns", "softmax_columns_drive", "softmax_rows", "softmax_rows_drive"]
