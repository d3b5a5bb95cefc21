"""Compiled pooling kernels (kernels layer, numba): max and average pooling over NCHW.

Padding never wins a max and adds nothing to a sum, so each filter tap runs over the output
positions whose input lies in the image: no padded copy is made. Indices known
non-negative are unsigned: numba skips its wraparound. Arguments follow the NumPy reference
(``openge.ops.pooling``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _span(k, d, pad, stride, size, out):  # pragma: no cover - compiled
    """Output positions [o0, o1) whose tap ``k`` (input = o * stride + k * d - pad) lies in
    [0, size)."""
    off = k * d - pad
    o0 = max(0, (-off + stride - 1) // stride)
    o1 = min(out, (size - off + stride - 1) // stride)
    return off, o0, o1


@njit(parallel=True, cache=True)
def max_pool_nchw(x, y, kh, kw, sh, sw, top, left):  # pragma: no cover - compiled
    """``y[n, c, i, j]`` = max of ``x``'s window at (i*sh - top, j*sw - left), NaN
    propagating; every window holds at least one input element (the caller checks). Tap by
    tap over whole output rows, so the inner loop is long and vectorizes."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for nc in prange(n * c):
        i = nc // c
        ch = nc - i * c
        plane = x[i, ch]
        out = y[i, ch]
        for oy in range(oh):
            for ox in range(ow):
                out[oy, np.uint64(ox)] = -np.inf
        for ky in range(kh):
            dy, oy0, oy1 = _span(ky, 1, top, sh, h, oh)
            for kx in range(kw):
                dx, ox0, ox1 = _span(kx, 1, left, sw, w, ow)
                for oy in range(oy0, oy1):
                    iy = np.uint64(oy * sh + dy)
                    for ox in range(ox0, ox1):
                        v = plane[iy, np.uint64(ox * sw + dx)]
                        m = out[oy, np.uint64(ox)]
                        out[oy, np.uint64(ox)] = v if (v > m or v != v) else m


@njit(parallel=True, cache=True)
def avg_pool_nchw(x, y, div, kh, kw, sh, sw, top, left):  # pragma: no cover - compiled
    """``y[n, c, i, j]`` = sum of ``x``'s window at (i*sh - top, j*sw - left) divided by
    ``div[i, j]`` (the caller's divisors: counted with or without padding, or an override).
    Sums in the array dtype, tap by tap over whole output rows."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for nc in prange(n * c):
        i = nc // c
        ch = nc - i * c
        plane = x[i, ch]
        out = y[i, ch]
        for oy in range(oh):
            for ox in range(ow):
                out[oy, np.uint64(ox)] = 0
        for ky in range(kh):
            dy, oy0, oy1 = _span(ky, 1, top, sh, h, oh)
            for kx in range(kw):
                dx, ox0, ox1 = _span(kx, 1, left, sw, w, ow)
                for oy in range(oy0, oy1):
                    iy = np.uint64(oy * sh + dy)
                    for ox in range(ox0, ox1):
                        out[oy, np.uint64(ox)] += plane[iy, np.uint64(ox * sw + dx)]
        for oy in range(oh):
            for ox in range(ow):
                out[oy, np.uint64(ox)] = out[oy, np.uint64(ox)] / div[oy, np.uint64(ox)]


@njit(parallel=True, cache=True)
def global_avg_nchw(x, y, div):  # pragma: no cover - compiled
    """``y[n, c, 0, 0]`` = sum of the (n, c) plane of ``x`` / ``div`` (float64 sums)."""
    n, c, h, w = x.shape
    for nc in prange(n * c):
        i = nc // c
        ch = nc - i * c
        plane = x[i, ch]
        s = 0.0
        for yy in range(h):
            for xx in range(w):
                s += plane[np.uint64(yy), np.uint64(xx)]
        y[i, ch, 0, 0] = s / div


__all__ = ["avg_pool_nchw", "global_avg_nchw", "max_pool_nchw"]
