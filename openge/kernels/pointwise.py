"""Compiled epilogue of a 1×1 convolution computed in column blocks (kernels layer, numba).

openge.ops.conv_pointwise runs the convolution's GEMM one block of output columns at a time
and, while the block is still in cache, this kernel adds the bias, an optional residual and
the activation in place: one pass over memory instead of a GEMM pass plus an epilogue pass.
Activation codes and formulas are openge.kernels.depthwise's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels.depthwise import _store


@njit(cache=True, error_model="numpy")
def block_epilogue(y, bias, res, has_res, p0, p1, act, lo, hi):  # pragma: no cover - compiled
    """``y[:, p0:p1] = act((y + bias[:, None]) [+ res])[:, p0:p1]`` in place, for ``y``
    (Cout, P) (a sample's output as channels × positions) and ``res`` of y's shape (read only
    when ``has_res``)."""
    cout = y.shape[0]
    width = p1 - p0
    acc = np.empty(width, y.dtype)
    for co in range(cout):
        row = y[co, p0:p1]
        b = bias[co]
        if has_res:
            r = res[co, p0:p1]
            for q in range(width):
                k = np.uint64(q)
                acc[k] = (row[k] + b) + r[k]
        else:
            for q in range(width):
                k = np.uint64(q)
                acc[k] = row[k] + b
        _store(acc, row, width, act, lo, hi)


__all__ = ["block_epilogue"]
