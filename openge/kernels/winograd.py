"""Winograd F(2×2, 3×3) transforms for 3×3 stride-1 convolutions (kernels layer, numba).

A 3×3 convolution over 2×2 output tiles costs 16 products per (input, output channel, tile)
instead of 36: the input's 4×4 tiles are transformed (``V = Bᵀ d B``), 16 GEMMs
``M[k] = U[k] @ V[k]`` (U = G g Gᵀ, the transformed filter, made once) run in BLAS, and each
tile's 2×2 outputs are ``Aᵀ M A``. The transforms are additions only; F(2×2, 3×3)'s error is a
few float32 ulps of the sums (measured in tests/kernels/test_winograd.py against float64).

Each transform runs over all channels or a range of them, without the GIL (openge's threads
share the channels: openge.ops.conv_winograd). Layouts: the
padded input ``xp`` (C, 2·th + 2, 2·tw + 2), zero outside the image; ``v`` and ``m``
(16, channels, th·tw) with k = 4·row + column of the transformed tile.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def input_transform(xp, v, th, tw):  # pragma: no cover - compiled
    """``v[:, c, t] = Bᵀ d B`` for every channel c and tile t = ti·tw + tj, d the 4×4 patch of
    ``xp`` at (2·ti, 2·tj)."""
    for ch in range(xp.shape[0]):
        _input_channel(xp, v, th, tw, ch)


@njit(cache=True, nogil=True)
def input_transform_range(xp, v, th, tw, first, stop):  # pragma: no cover - compiled
    """:func:`input_transform` for channels ``first`` to ``stop``, without the GIL (openge's
    threads share the channels)."""
    for ch in range(first, stop):
        _input_channel(xp, v, th, tw, ch)


@njit(inline="always")
def _input_channel(xp, v, th, tw, ch):  # pragma: no cover - compiled
    """The tiles of channel ``ch`` (see :func:`input_transform`)."""
    plane = xp[ch]
    for ti in range(th):
        r = np.uint64(2 * ti)
        base = ti * tw
        for tj in range(tw):
            q = np.uint64(2 * tj)
            # rows: Bᵀ d
            a0 = plane[r, q] - plane[r + 2, q]
            a1 = plane[r, q + 1] - plane[r + 2, q + 1]
            a2 = plane[r, q + 2] - plane[r + 2, q + 2]
            a3 = plane[r, q + 3] - plane[r + 2, q + 3]
            b0 = plane[r + 1, q] + plane[r + 2, q]
            b1 = plane[r + 1, q + 1] + plane[r + 2, q + 1]
            b2 = plane[r + 1, q + 2] + plane[r + 2, q + 2]
            b3 = plane[r + 1, q + 3] + plane[r + 2, q + 3]
            c0 = plane[r + 2, q] - plane[r + 1, q]
            c1 = plane[r + 2, q + 1] - plane[r + 1, q + 1]
            c2 = plane[r + 2, q + 2] - plane[r + 1, q + 2]
            c3 = plane[r + 2, q + 3] - plane[r + 1, q + 3]
            d0 = plane[r + 1, q] - plane[r + 3, q]
            d1 = plane[r + 1, q + 1] - plane[r + 3, q + 1]
            d2 = plane[r + 1, q + 2] - plane[r + 3, q + 2]
            d3 = plane[r + 1, q + 3] - plane[r + 3, q + 3]
            t = np.uint64(base + tj)
            # columns: (Bᵀ d) B
            v[0, ch, t] = a0 - a2
            v[1, ch, t] = a1 + a2
            v[2, ch, t] = a2 - a1
            v[3, ch, t] = a1 - a3
            v[4, ch, t] = b0 - b2
            v[5, ch, t] = b1 + b2
            v[6, ch, t] = b2 - b1
            v[7, ch, t] = b1 - b3
            v[8, ch, t] = c0 - c2
            v[9, ch, t] = c1 + c2
            v[10, ch, t] = c2 - c1
            v[11, ch, t] = c1 - c3
            v[12, ch, t] = d0 - d2
            v[13, ch, t] = d1 + d2
            v[14, ch, t] = d2 - d1
            v[15, ch, t] = d1 - d3


@njit(cache=True, nogil=True)
def output_transform(m, bias, y, th, tw):  # pragma: no cover - compiled
    """``y`` (Cout, oh, ow) from the tiles' products ``m`` (16, Cout, th·tw), plus ``bias``
    (Cout,): each tile's 2×2 outputs are ``Aᵀ M A``, the ones past the output's edge dropped."""
    for co in range(y.shape[0]):
        _output_channel(m, bias, y, th, tw, co)


@njit(cache=True, nogil=True)
def output_transform_range(m, bias, y, th, tw, first, stop):  # pragma: no cover - compiled
    """:func:`output_transform` for output channels ``first`` to ``stop``, without the GIL."""
    for co in range(first, stop):
        _output_channel(m, bias, y, th, tw, co)


@njit(inline="always")
def _output_channel(m, bias, y, th, tw, co):  # pragma: no cover - compiled
    """The 2×2 outputs of every tile of output channel ``co`` (see :func:`output_transform`)."""
    oh, ow = y.shape[1], y.shape[2]
    bc = bias[co]
    for ti in range(th):
        base = ti * tw
        r = np.uint64(2 * ti)
        for tj in range(tw):
            t = np.uint64(base + tj)
            # rows: Aᵀ M
            s0 = m[0, co, t] + m[4, co, t] + m[8, co, t]
            s1 = m[1, co, t] + m[5, co, t] + m[9, co, t]
            s2 = m[2, co, t] + m[6, co, t] + m[10, co, t]
            s3 = m[3, co, t] + m[7, co, t] + m[11, co, t]
            u0 = m[4, co, t] - m[8, co, t] - m[12, co, t]
            u1 = m[5, co, t] - m[9, co, t] - m[13, co, t]
            u2 = m[6, co, t] - m[10, co, t] - m[14, co, t]
            u3 = m[7, co, t] - m[11, co, t] - m[15, co, t]
            q = np.uint64(2 * tj)
            if 2 * tj + 1 < ow and 2 * ti + 1 < oh:
                y[co, r, q] = s0 + s1 + s2 + bc
                y[co, r, q + 1] = s1 - s2 - s3 + bc
                y[co, r + 1, q] = u0 + u1 + u2 + bc
                y[co, r + 1, q + 1] = u1 - u2 - u3 + bc
            else:
                y[co, r, q] = s0 + s1 + s2 + bc
                if 2 * tj + 1 < ow:
                    y[co, r, q + 1] = s1 - s2 - s3 + bc
                if 2 * ti + 1 < oh:
                    y[co, r + 1, q] = u0 + u1 + u2 + bc
                    if 2 * tj + 1 < ow:
                        y[co, r + 1, q + 1] = u1 - u2 - u3 + bc


@njit(inline="always")
def _g_rows(a, b, e):  # pragma: no cover - compiled
    """G (a, b, e)ᵀ: G's rows are (1, 0, 0), (½, ½, ½), (½, -½, ½), (0, 0, 1)."""
    return a, (a + b + e) * 0.5, (a - b + e) * 0.5, e


@njit(cache=True, nogil=True)
def _filter_transform(f, u):  # pragma: no cover - compiled
    cout, cin = f.shape[0], f.shape[1]
    for o in range(cout):
        for c in range(cin):
            g = f[o, c]
            # G g, one column at a time: column j of the 4×3 result
            c0 = _g_rows(np.float64(g[0, 0]), np.float64(g[1, 0]), np.float64(g[2, 0]))
            c1 = _g_rows(np.float64(g[0, 1]), np.float64(g[1, 1]), np.float64(g[2, 1]))
            c2 = _g_rows(np.float64(g[0, 2]), np.float64(g[1, 2]), np.float64(g[2, 2]))
            for i in range(4):  # row i of (G g) Gᵀ
                r = _g_rows(c0[i], c1[i], c2[i])
                for k in range(4):
                    u[4 * i + k, o, c] = r[k]


def filter_transform(f: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``U`` (16, Cout, Cin) = G g Gᵀ of every 3×3 filter of ``f`` (Cout, Cin, 3, 3), computed
    in float64 and rounded once to ``dtype`` (once per model load; compiled: the NumPy form
    took 24 ms of resnet18's load)."""
    u = np.empty((16, f.shape[0], f.shape[1]), dtype=dtype)
    _filter_transform(np.ascontiguousarray(f), u)
    return u


__all__ = [
    "filter_transform",
    "input_transform",
    "input_transform_range",
    "output_transform",
    "output_transform_range",
]
