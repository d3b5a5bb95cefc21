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
    (N, C, oh, ow). Per (sample, channel) plane: the output starts at the bias, then each filter
    tap adds its weight times the input rows it reaches, over the output columns whose input
    lies inside the image (no padded copy). Accumulation in the array dtype, taps in row-major
    order.

    Indices are made unsigned (``np.uint64``) where they are known non-negative: numba then
    skips its negative-index wraparound, and the inner loop vectorizes (10x measured)."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2], w.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    for nc in prange(n * c):
        i = nc // c
        ch = nc - i * c
        out = y[i, ch]
        plane = x[i, ch]
        b = bias[ch]
        for oy in range(oh):
            for ox in range(ow):
                out[oy, np.uint64(ox)] = b
        for ky in range(kh):
            dy = ky * dh - top  # input row = oy * sh + dy
            oy0 = max(0, (-dy + sh - 1) // sh)
            oy1 = min(oh, (h - dy + sh - 1) // sh)
            for kx in range(kw):
                dx = kx * dw - left  # input column = ox * sw + dx
                ox0 = max(0, (-dx + sw - 1) // sw)
                ox1 = min(ow, (wd - dx + sw - 1) // sw)
                wv = w[ch, 0, ky, kx]
                for oy in range(oy0, oy1):
                    iy = np.uint64(oy * sh + dy)
                    if sw == 1:
                        for ox in range(ox0, ox1):
                            out[oy, np.uint64(ox)] += wv * plane[iy, np.uint64(ox + dx)]
                    else:
                        for ox in range(ox0, ox1):
                            out[oy, np.uint64(ox)] += wv * plane[iy, np.uint64(ox * sw + dx)]


__all__ = ["depthwise_nchw"]
