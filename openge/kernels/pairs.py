"""Stride-2 column phases of a row: even and odd columns split apart (kernels layer, numba).

A convolution with column stride 2 reads every other column; openge's stride-2 kernels
(openge.kernels.depthwise's phases, openge.kernels.im2col's stems) first split each padded
input row into its even and odd columns so that every tap reads contiguous floats. Both
phases are written by one loop, whose loads LLVM vectorizes as one interleaved pair; an LLVM-IR
loop of 16-float loads and two shuffles was tried in their place and ran 1.0-1.6× slower.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always")
def zeros(row, first, stop):  # pragma: no cover - compiled
    """``row[first:stop]`` = 0 (flat offsets)."""
    zero = row.dtype.type(0)
    for q in range(first, stop):
        row[np.uint64(q)] = zero


@njit(inline="always")
def split_row(xf, src, w, pl, even, odd, base, pw):  # pragma: no cover - compiled
    """The input columns of a row padded by ``pl`` zero columns before it, split into its
    stride-2 column phases: ``even[base + v]`` = padded column 2v, ``odd[base + v]`` = padded
    column 2v + 1, for v < ``pw``, where that column is input column ``xf[src + ·]`` (of
    ``w``). The padding cells are not written (the caller's are zero already; :func:`pair_row`
    writes them). ``xf``, ``even`` and ``odd`` are flat arrays of one dtype. Returns the
    written ranges ``(e0, e1, o0, o1)``: ``even[base + e0 : base + e1]`` and the same of odd."""
    u = np.uint64
    e0, e1 = min(pw, max(0, (pl + 1) // 2)), min(pw, max(0, (w + pl + 1) // 2))
    o0, o1 = min(pw, max(0, pl // 2)), min(pw, max(0, (w + pl) // 2))
    e1, o1 = max(e0, e1), max(o0, o1)
    lo, hi = max(e0, o0), min(e1, o1)
    for v in range(e0, min(lo, e1)):
        even[u(base + v)] = xf[u(src + 2 * v - pl)]
    for v in range(o0, min(lo, o1)):
        odd[u(base + v)] = xf[u(src + 2 * v + 1 - pl)]
    d = src - pl
    for v in range(lo, hi):  # both phases in one loop: the pair's loads vectorize as one
        even[u(base + v)] = xf[u(d + 2 * v)]  # interleaved load (one phase alone is a
        odd[u(base + v)] = xf[u(d + 2 * v + 1)]  # strided, scalar read: 4.5x slower)
    for v in range(max(hi, e0), e1):
        even[u(base + v)] = xf[u(src + 2 * v - pl)]
    for v in range(max(hi, o0), o1):
        odd[u(base + v)] = xf[u(src + 2 * v + 1 - pl)]
    return e0, e1, o0, o1


@njit(inline="always")
def pair_row(xf, src, w, pl, even, odd, base, pw):  # pragma: no cover - compiled
    """:func:`split_row` with every cell of ``even``/``odd`` [base, base + pw) written: the
    padding cells zeroed."""
    e0, e1, o0, o1 = split_row(xf, src, w, pl, even, odd, base, pw)
    zeros(even, base, base + e0)
    zeros(odd, base, base + o0)
    zeros(even, base + e1, base + pw)
    zeros(odd, base + o1, base + pw)
