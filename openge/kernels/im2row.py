"""Convolutions on small output planes with the output positions as the product's rows
(kernels layer, numba): float32, NCHW, one group.

``yᵀ (P, Cout) = colsᵀ (P, K) @ Wᵀ (K, Cout)``, with P = OH·OW. openge.kernels.im2col runs
the other orientation (filter rows × panels of 32 positions), which wastes 15 of 64 columns
on a 7×7 plane and streams the filter (the large operand there: 4-9 MB at the last stage of
a ResNet) as MR strided rows. Here a tile is :data:`~openge.kernels.gemm.MR_T` positions ×
:data:`~openge.kernels.gemm.NR_T` output channels (7 × 48 on AVX-512: 7×7, 14×14 and 28×28
planes are cut exactly); the filter is packed at load into panels of NR_T channels
(``[K][NR_T]``, one contiguous stream each) and read once per run; the columns — ``x``
itself for a stride-1 unpadded 1×1 convolution, else written by :func:`columns` — are read
in place, a step of K being one row of them. A work item is a range of channel panels: for
each pass of :data:`~openge.kernels.gemm.KC` steps of K (the columns' rows of that pass stay
in cache), each panel's pass meets every block of positions; then the item's channels are
turned back to (Cout, P) with bias, residual and activation (depthwise.block_epilogue).

Every output sums its K products in the same order whatever the item or the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels import sync
from openge.kernels.depthwise import block_epilogue
from openge.kernels.gemm import KC, MR_T, NR_T, pack_b, tile_t
from openge.kernels.im2col import phases


def pack_filter(w2: np.ndarray) -> np.ndarray:
    """The filter (Cout, K) as :func:`conv` reads it: Wᵀ in panels of NR_T output channels
    (openge.kernels.gemm.pack_b)."""
    return pack_b(w2.T, NR_T)  # the transposed view, packed panel by panel


def panel_count(cout: int) -> int:
    """Panels of NR_T output channels (the work items)."""
    return -(-cout // NR_T)


@njit(cache=True, nogil=True, error_model="numpy")
def columns(xph, taps, cols, ow, pw):  # pragma: no cover - compiled
    """``cols`` (K, P) = the windows of one sample: ``cols[k, oy·OW + ox] = xph[taps[k] +
    oy·PW + ox]``, ``xph`` its stride phases (openge.kernels.im2col.phases) and ``taps`` their
    offsets (im2col.tap_offsets)."""
    flat = xph.reshape(-1)
    k, p = cols.shape
    oh = p // ow
    for kk in range(k):
        row = cols[kk]
        base = taps[kk]
        for oy in range(oh):
            src = np.uint64(base + oy * pw)
            dst = np.uint64(oy * ow)
            for ox in range(ow):
                u = np.uint64(ox)
                row[dst + u] = flat[src + u]


@njit(inline="always")
def _panels(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, first, stop):  # pragma: no cover
    """Channel panels ``first`` to ``stop``: the products into ``yt`` (P, Cout), then those
    channels of ``y2`` (Cout, P) with the epilogue."""
    k, p = a.shape
    cout = y2.shape[0]
    a_addr = a.ctypes.data
    w_addr = wt.ctypes.data
    t_addr = yt.ctypes.data
    passes = max(1, (k + KC - 1) // KC)
    step = max(1, (k + passes - 1) // passes)
    for k0 in range(0, k, step):
        kc = min(step, k - k0)
        for q in range(first, stop):
            bq = w_addr + (q * k + k0) * NR_T * 4
            width = min(NR_T, cout - q * NR_T)
            for p0 in range(0, p, MR_T):
                tile_t(
                    kc,
                    a_addr + (k0 * p + p0) * 4,
                    1,
                    p,
                    bq,
                    t_addr + (p0 * cout + q * NR_T) * 4,
                    cout,
                    min(MR_T, p - p0),
                    width,
                    k0 > 0,
                )
    c0 = first * NR_T
    c1 = min(cout, stop * NR_T)
    for c in range(c0, c1):
        row = y2[c]
        for pp in range(p):
            row[pp] = yt[pp, c]
    if k == 0:
        y2[c0:c1] = 0.0
    block_epilogue(y2[c0:c1], bias[c0:c1], r2[c0:c1], has_res, 0, p, act, lo, hi)


@njit(cache=True, nogil=True, error_model="numpy")
def conv(a, wt, yt, y2, bias, r2, has_res, act, lo, hi):  # pragma: no cover - compiled
    """``y2 = act(w @ a + bias [+ r2])`` for one sample in the calling thread, without the
    GIL: ``a`` (K, P) the columns, ``wt`` the filter packed by :func:`pack_filter`, ``yt``
    (P, Cout) scratch, ``y2`` and ``r2`` (Cout, P); float32, C-contiguous."""
    panels = (y2.shape[0] + NR_T - 1) // NR_T
    _panels(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, 0, panels)


@njit(cache=True, nogil=True, error_model="numpy")
def conv_drive(
    a, wt, yt, y2, bias, r2, has_res, act, lo, hi, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`conv` on a thread of openge's team (openge.kernels.sync): ranges of channel
    panels claimed part by part; ``total`` is the number of panels."""
    sync.begin(ctl, signal, worker)
    part = sync.claim(ctl)
    while part >= 0:
        first, stop = sync.bounds(ctl, total, part)
        _panels(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, first, stop)
        sync.done(ctl)
        part = sync.claim(ctl)
    return sync.end(ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def conv_windows(
    x3, xph, taps, a, ow, pt, pl, wt, yt, y2, bias, r2, has_res, act, lo, hi
):  # pragma: no cover - compiled
    """:func:`conv` for one sample ``x3`` (C, H, W) whose columns are built here: its stride
    phases into ``xph`` (openge.kernels.im2col.phases, ``pt``/``pl`` the top and left
    padding), then the columns ``a`` (K, P) by :func:`columns`, then the product."""
    phases(x3, xph, pt, pl)
    columns(xph, taps, a, ow, xph.shape[4])
    panels = (y2.shape[0] + NR_T - 1) // NR_T
    _panels(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, 0, panels)


@njit(cache=True, nogil=True, error_model="numpy")
def conv_windows_drive(
    x3,
    xph,
    taps,
    a,
    ow,
    pt,
    pl,
    wt,
    yt,
    y2,
    bias,
    r2,
    has_res,
    act,
    lo,
    hi,
    total,
    ctl,
    signal,
    worker,
    gen,
    spins,
):  # pragma: no cover - compiled
    """:func:`conv_windows` on a thread of openge's team: every thread builds the phases and
    columns itself (a team thread into arrays of its own) before it claims channel panels.
    Each thread reads all the columns, the product's most-read operand: built by the caller
    alone, the other core read them across from the caller's cache (2.4 GB/s on the Intel
    VM of bench/RESULTS.md, against ~7 from its own). A thread still building when every
    panel is taken claims none, so what it built is never used."""
    sync.begin(ctl, signal, worker)
    mine_xph = np.empty_like(xph) if worker else xph
    mine_a = np.empty_like(a) if worker else a
    phases(x3, mine_xph, pt, pl)
    columns(mine_xph, taps, mine_a, ow, xph.shape[4])
    part = sync.claim(ctl)
    while part >= 0:
        first, stop = sync.bounds(ctl, total, part)
        _panels(mine_a, wt, yt, y2, bias, r2, has_res, act, lo, hi, first, stop)
        sync.done(ctl)
        part = sync.claim(ctl)
    return sync.end(ctl, signal, worker, gen, spins)


__all__ = [
    "MR_T",
    "NR_T",
    "columns",
    "conv",
    "conv_drive",
    "conv_windows",
    "conv_windows_drive",
    "pack_filter",
    "panel_count",
]
