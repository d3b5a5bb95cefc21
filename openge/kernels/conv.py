"""Compiled convolution kernels (kernels layer, numba): depthwise NCHW convolution.

Each kernel writes into a preallocated output; arguments follow the NumPy reference
(``openge.ops.conv``): input, filter, bias, output, then the geometry.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def depthwise_nchw(x, w, bias, y, sh, sw, dh, dw, top, left):  # pragma: no cover - compiled
    """Depthwise convolution: ``x`` (N, C, H, W), ``w`` (C, 1, kh, kw), ``bias`` (C,), ``y``
    (N, C, oh, ow). Each (sample, channel) plane is copied into a zero-padded scratch plane,
    then every filter tap adds a shifted row of it to the output row (a contiguous inner loop
    at stride 1). Float accumulation in the array dtype, taps in row-major order."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2], w.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, top + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, left + wd)
    for nc in prange(n * c):
        i = nc // c
        ch = nc - i * c
        pad = np.zeros((hp, wp), dtype=x.dtype)
        pad[top : top + h, left : left + wd] = x[i, ch]
        b = bias[ch]
        for oy in range(oh):
            row = y[i, ch, oy]
            for ox in range(ow):
                row[ox] = b
            for ky in range(kh):
                src = pad[oy * sh + ky * dh]
                for kx in range(kw):
                    wv = w[ch, 0, ky, kx]
                    off = kx * dw
                    if sw == 1:
                        for ox in range(ow):
                            row[ox] += wv * src[off + ox]
                    else:
                        for ox in range(ow):
                            row[ox] += wv * src[off + ox * sw]


__all__ = ["depthwise_nchw"]
