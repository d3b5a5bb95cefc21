"""Compiled pooling kernels (kernels layer, numba): max and average pooling over NCHW.

Each plane is copied into its stride phases (openge.kernels.depthwise's layout, padded with
-inf for a max, 0 for a sum), so every window tap is one contiguous pass over all the kept
outputs of the plane: long loops that vectorize, no work for the positions a stride skips.
The kernels take a range of planes and release the GIL: openge's threads share a pooling's
planes (openge.ops.compiled.launcher). Arguments follow the NumPy reference
(``openge.ops.pooling``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels.depthwise import _fill


@njit(inline="always")
def _phase_geometry(oh, ow, kh, kw, sh, sw):  # pragma: no cover - compiled
    """(hq, wq, scratch length) of the stride-phase layout (see :func:`max_pool_range`)."""
    hq = oh + (kh - 1) // sh
    wq = ow + (kw - 1) // sw
    return hq, wq, hq * wq + wq  # + one row of slack read by the last row's scratch columns


@njit(inline="always")
def _combine(dst, src, n, average):  # pragma: no cover - compiled
    """``dst[:n]`` += ``src[:n]`` (a sum) or max(dst, src) with NaN propagating."""
    if average:
        for p in range(n):
            dst[np.uint64(p)] += src[np.uint64(p)]
    else:
        for p in range(n):
            q = np.uint64(p)
            v = src[q]
            m = dst[q]
            dst[q] = (v if not (v <= m) else m) if m == m else m


#: Elements of scratch per plane group: small planes are pooled several at a time (one long
#: pass over all of them per tap instead of a short one per plane).
GROUP_ELEMENTS = 16384


@njit(inline="always")
def _pool_planes(x, y, divq, kh, kw, sh, sw, top, left, average, first, stop):  # pragma: no cover
    """Planes ``first`` to ``stop`` (of N·C) of :func:`max_pool_range` / :func:`avg_pool_range`,
    a group of planes at a time laid out one after another (each with its own padding and
    slack row, so no tap reads across planes): separable, the kw column taps of every (phase)
    row of the group first, then the kh row taps."""
    c = x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    hq, wq, size = _phase_geometry(oh, ow, kh, kw, sh, sw)
    group = max(1, min(stop - first, GROUP_ELEMENTS // size))
    span = group * size
    rows = span - ((kw - 1) // sw)  # every position a column tap reads stays inside the span
    length = span - ((kh - 1) // sh) * wq - wq
    pad = 0.0 if average else -np.inf
    bufs = np.full((sh * sw, span), pad, x.dtype)
    across = np.empty((sh, span), x.dtype)  # per row phase: the rows' column-tap results
    acc = np.empty(span, x.dtype)
    for g0 in range(first, stop, group):
        g1 = min(stop, g0 + group)
        for job in range(g0, g1):
            i = job // c
            base = (job - g0) * size
            _fill(bufs[:, base : base + size], x[i, job - i * c], sh, sw, top, left, hq, wq)
        for a in range(sh):
            h = across[a]
            for kx in range(kw):
                src = bufs[a * sw + kx % sw, kx // sw :]
                if kx == 0:
                    for p in range(rows):
                        h[np.uint64(p)] = src[np.uint64(p)]
                else:
                    _combine(h, src, rows, average)
        for ky in range(kh):
            src = across[ky % sh, (ky // sh) * wq :]
            if ky == 0:
                for p in range(length):
                    acc[np.uint64(p)] = src[np.uint64(p)]
            else:
                _combine(acc, src, length, average)
        if average:
            for p in range(length):
                acc[np.uint64(p)] /= divq[np.uint64(p)]
        for job in range(g0, g1):
            i = job // c
            out = y[i, job - i * c]
            base = (job - g0) * size
            for oy in range(oh):
                orow = out[oy]
                start = base + oy * wq
                for ox in range(ow):
                    orow[np.uint64(ox)] = acc[np.uint64(start + ox)]


@njit(cache=True, nogil=True)
def max_pool_range(x, y, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Max pooling of planes ``first`` to ``stop`` (of N·C), NCHW, without the GIL, in the
    layout of openge.kernels.depthwise: per plane the input, padded with -inf, is copied into
    its stride phases flattened with the output row length ``wq`` (the padding cells are the
    same for every plane: set once), so each tap is one contiguous pass — a long loop that
    vectorizes, with no work for the positions a stride skips: the kw column taps over every
    row phase, then the kh row taps over the kept outputs (separable: kw·sh + kh passes);
    small planes a group at a time. NaN propagates as np.maximum; every window holds an
    input element (the caller checks)."""
    divq = np.ones(1, x.dtype)
    _pool_planes(x, y, divq, kh, kw, sh, sw, top, left, False, first, stop)


@njit(cache=True, nogil=True)
def avg_pool_range(x, y, divq, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Average pooling of planes ``first`` to ``stop``, as :func:`max_pool_range` with zero
    padding and sums (each row's column taps, then the rows, in the array dtype), divided by
    ``divq``: the caller's (oh, ow) divisors (with or without the padding, or an override)
    laid out as the sums are, by :func:`phase_divisors`."""
    _pool_planes(x, y, divq, kh, kw, sh, sw, top, left, True, first, stop)


def phase_divisors(div: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """The (oh, ow) divisors ``div`` in the layout of a plane group's sums (rows of the phase
    length, every plane slot of the largest group; 1 elsewhere): made once per task."""
    oh, ow = div.shape
    hq, wq = oh + (kh - 1) // sh, ow + (kw - 1) // sw
    size = hq * wq + wq
    out = np.ones((max(1, GROUP_ELEMENTS // size), size), div.dtype)
    out[:, : oh * wq].reshape(-1, oh, wq)[:, :, :ow] = div
    return out.reshape(-1)


def scratch_bytes(oh: int, ow: int, kh: int, kw: int, sh: int, sw: int, itemsize: int) -> int:
    """Bytes of one work item's scratch: the phases and the row-phase results (the caller
    bounds it)."""
    hq, wq = oh + (kh - 1) // sh, ow + (kw - 1) // sw
    return (sh * sw + sh) * (hq * wq + wq) * itemsize


__all__ = ["avg_pool_range", "max_pool_range", "phase_divisors", "scratch_bytes"]
