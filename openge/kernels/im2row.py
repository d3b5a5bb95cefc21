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
from openge.kernels.gemm import KC, MR_T, NR_T, VW, pack_b, tile_t, tile_t_last
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


#: Slices of the row tiles (output positions) per channel panel in the drive forms' items.
SLICES = 2


def item_count(cout: int) -> int:
    """Items of :func:`conv_drive` / :func:`conv_windows_drive`: panels times SLICES."""
    return panel_count(cout) * SLICES


@njit(inline="always")
def _finish(yt, y2, bias, r2, has_res, act, lo, hi, c0, c1, p0, p1):  # pragma: no cover
    """Channels [c0, c1) at positions [p0, p1): ``yt`` (P, Cout) turned back into ``y2``
    (Cout, P), then bias, residual and activation (depthwise.block_epilogue)."""
    if c1 <= c0 or p1 <= p0:
        return
    for c in range(c0, c1):
        row = y2[c]
        for pp in range(p0, p1):
            row[pp] = yt[pp, c]
    block_epilogue(y2[c0:c1], bias[c0:c1], r2[c0:c1], has_res, p0, p1, act, lo, hi)


@njit(inline="always")
def _tiles_of(q, tiles, lead, lt0, lt1, trail, tt1):  # pragma: no cover - compiled
    """The row tiles [t0, t1) :func:`_span` runs for panel ``q``."""
    if q == lead:
        return lt0, lt1
    if q == trail:
        return 0, tt1
    return 0, tiles


@njit(inline="always")
def _tile_at(narrow, kc, a_addr, k0, p, bq, t_addr, cout, q, t, width):  # pragma: no cover
    """Row tile ``t`` of panel ``q`` for pass [k0, k0 + kc) of K: :func:`tile_t`, or with
    ``narrow`` (a literal at each call: no choice left in the loop) ``tile_t_last``."""
    p0 = t * MR_T
    a = a_addr + (k0 * p + p0) * 4
    c = t_addr + (p0 * cout + q * NR_T) * 4
    rows = min(MR_T, p - p0)
    if narrow:
        tile_t_last(kc, a, 1, p, bq, c, cout, rows, width, k0 > 0)
    else:
        tile_t(kc, a, 1, p, bq, c, cout, rows, width, k0 > 0)


@njit(cache=True, nogil=True, error_model="numpy")
def _span(
    a, wt, yt, y2, bias, r2, has_res, act, lo, hi, q0, q1, lead, lt0, lt1, trail, tt1
):  # pragma: no cover - compiled
    """Channel panels [q0, q1) at every position, plus panel ``lead`` (when ≥ 0) at row
    tiles [lt0, lt1) and panel ``trail`` at row tiles [0, tt1): the products into ``yt`` (P,
    Cout) pass by pass of K, each panel's pass read once for all its tiles, then those
    channels and positions of ``y2`` (Cout, P) with the epilogue."""
    k, p = a.shape
    cout = y2.shape[0]
    tiles = (p + MR_T - 1) // MR_T
    a_addr = a.ctypes.data
    w_addr = wt.ctypes.data
    t_addr = yt.ctypes.data
    passes = max(1, (k + KC - 1) // KC)
    step = max(1, (k + passes - 1) // passes)
    first, stop = (q0, q1) if q1 > q0 else (cout, 0)  # the panels this span touches
    if lead >= 0:
        first, stop = min(first, lead), max(stop, lead + 1)
    if trail >= 0:
        first, stop = min(first, trail), max(stop, trail + 1)
    for k0 in range(0, k, step):
        kc = min(step, k - k0)
        for q in range(first, stop):
            t0, t1 = _tiles_of(q, tiles, lead, lt0, lt1, trail, tt1)
            bq = w_addr + (q * k + k0) * NR_T * 4
            width = min(NR_T, cout - q * NR_T)
            if width > NR_T - VW:
                for t in range(t0, t1):
                    _tile_at(False, kc, a_addr, k0, p, bq, t_addr, cout, q, t, width)
            else:  # a last panel of one or two vectors' channels
                for t in range(t0, t1):
                    _tile_at(True, kc, a_addr, k0, p, bq, t_addr, cout, q, t, width)
    if k == 0:  # no products: every output is its bias
        for q in range(first, stop):
            t0, t1 = _tiles_of(q, tiles, lead, lt0, lt1, trail, tt1)
            for pp in range(t0 * MR_T, min(p, t1 * MR_T)):
                for c in range(q * NR_T, min(cout, q * NR_T + NR_T)):
                    yt[pp, c] = 0.0
    if lead >= 0:
        c0 = lead * NR_T
        c1 = min(cout, c0 + NR_T)
        _finish(yt, y2, bias, r2, has_res, act, lo, hi, c0, c1, lt0 * MR_T, min(p, lt1 * MR_T))
    _finish(yt, y2, bias, r2, has_res, act, lo, hi, q0 * NR_T, min(cout, q1 * NR_T), 0, p)
    if trail >= 0:
        c0 = trail * NR_T
        c1 = min(cout, c0 + NR_T)
        _finish(yt, y2, bias, r2, has_res, act, lo, hi, c0, c1, 0, min(p, tt1 * MR_T))


@njit(inline="always")
def _panels(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, first, stop):  # pragma: no cover
    """Channel panels ``first`` to ``stop`` at every position (see :func:`_span`)."""
    _span(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, first, stop, -1, 0, 0, -1, 0)


@njit(cache=True, nogil=True, error_model="numpy")
def _items(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, first, stop):  # pragma: no cover
    """Items ``first`` to ``stop`` of the drive forms: item i is channel panel i // SLICES at
    slice i % SLICES of its row tiles (slice s: tiles [s·T // SLICES, (s + 1)·T // SLICES)).
    A range is whole panels with at most a panel's slices before and after them, one
    :func:`_span` (halves of a panel balance two threads where whole panels cannot:
    resnet18's 512 channels make 11 panels)."""
    p = a.shape[1]
    tiles = (p + MR_T - 1) // MR_T
    b0, s0 = first // SLICES, first % SLICES
    b1, s1 = (stop - 1) // SLICES, (stop - 1) % SLICES + 1
    if b0 == b1 and not (s0 == 0 and s1 == SLICES):  # slices of one panel
        t0, t1 = s0 * tiles // SLICES, s1 * tiles // SLICES
        _span(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, 0, 0, b0, t0, t1, -1, 0)
        return
    lead = b0 if s0 > 0 else -1
    trail = b1 if s1 < SLICES else -1
    q0 = b0 + 1 if s0 > 0 else b0
    q1 = b1 if s1 < SLICES else b1 + 1
    lt0 = s0 * tiles // SLICES
    tt1 = s1 * tiles // SLICES
    _span(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, q0, q1, lead, lt0, tiles, trail, tt1)


@njit(cache=True, nogil=True, error_model="numpy")
def conv(a, wt, yt, y2, bias, r2, has_res, act, lo, hi):  # pragma: no cover - compiled
    """``y2 = act(w @ a + bias [+ r2])`` for one sample in the calling thread, without the
    GIL: ``a`` (K, P) the columns, ``wt`` the filter packed by :func:`pack_filter`, ``yt``
    (P, Cout) scratch, ``y2`` and ``r2`` (Cout, P); float32, C-contiguous."""
    panels = (y2.shape[0] + NR_T - 1) // NR_T
    _panels(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, 0, panels)


@njit(inline="always")
def _claim_items(
    a, wt, yt, y2, bias, r2, has_res, act, lo, hi, total, ctl, worker
):  # pragma: no cover - compiled
    """Parts of the ``total`` items (:func:`_items`) claimed and run until none is left."""
    part = sync.claim(ctl, worker)
    while part >= 0:
        first, stop = sync.bounds(ctl, total, part)
        _items(a, wt, yt, y2, bias, r2, has_res, act, lo, hi, first, stop)
        sync.done(ctl)
        part = sync.claim(ctl, worker)


@njit(cache=True, nogil=True, error_model="numpy")
def conv_drive(
    a, wt, yt, y2, bias, r2, has_res, act, lo, hi, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`conv` on a thread of openge's team (openge.kernels.sync): ranges of items (a
    channel panel at half of the positions, :func:`_items`) claimed part by part; ``total``
    is :func:`item_count`."""
    args = (a, wt, yt, y2, bias, r2, has_res, act, lo, hi)
    return sync.drive(_items, args, total, ctl, signal, worker, gen, spins)


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
    _claim_items(mine_a, wt, yt, y2, bias, r2, has_res, act, lo, hi, total, ctl, worker)
    return sync.end(ctl, signal, worker, gen, spins)


__all__ = [
    "MR_T",
    "NR_T",
    "SLICES",
    "columns",
    "conv",
    "conv_drive",
    "conv_windows",
    "conv_windows_drive",
    "item_count",
    "pack_filter",
    "panel_count",
]
