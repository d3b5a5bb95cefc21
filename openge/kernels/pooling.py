"""Compiled pooling kernels (kernels layer, numba): max and average pooling over NCHW.

Windows are clipped to the input (padding never wins a max and adds nothing to a sum), so
no padded copy is made. Arguments follow the NumPy reference (``openge.ops.pooling``).
"""

from __future__ import annotations

from numba import njit, prange


@njit(parallel=True, cache=True)
def max_pool_nchw(x, y, kh, kw, sh, sw, top, left):  # pragma: no cover - compiled
    """``y[n, c, i, j]`` = max of ``x``'s window at (i*sh - top, j*sw - left), NaN
    propagating; every window holds at least one input element (pads < kernel)."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for nc in prange(n * c):
        i = nc // c
        ch = nc - i * c
        plane = x[i, ch]
        out = y[i, ch]
        for oy in range(oh):
            y0 = oy * sh - top
            ys, ye = max(y0, 0), min(y0 + kh, h)
            for ox in range(ow):
                x0 = ox * sw - left
                xs, xe = max(x0, 0), min(x0 + kw, w)
                m = plane[ys, xs]
                for yy in range(ys, ye):
                    for xx in range(xs, xe):
                        v = plane[yy, xx]
                        if v > m or v != v:
                            m = v
                            if v != v:
                                break
                out[oy, ox] = m


@njit(parallel=True, cache=True)
def avg_pool_nchw(x, y, div, kh, kw, sh, sw, top, left):  # pragma: no cover - compiled
    """``y[n, c, i, j]`` = sum of ``x``'s window at (i*sh - top, j*sw - left) divided by
    ``div[i, j]`` (the caller's divisors: counted with or without padding, or an override).
    Sums accumulate in float64."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for nc in prange(n * c):
        i = nc // c
        ch = nc - i * c
        plane = x[i, ch]
        out = y[i, ch]
        for oy in range(oh):
            y0 = oy * sh - top
            ys, ye = max(y0, 0), min(y0 + kh, h)
            for ox in range(ow):
                x0 = ox * sw - left
                xs, xe = max(x0, 0), min(x0 + kw, w)
                s = 0.0
                for yy in range(ys, ye):
                    for xx in range(xs, xe):
                        s += plane[yy, xx]
                out[oy, ox] = s / div[oy, ox]


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
                s += plane[yy, xx]
        y[i, ch, 0, 0] = s / div


__all__ = ["avg_pool_nchw", "global_avg_nchw", "max_pool_nchw"]
