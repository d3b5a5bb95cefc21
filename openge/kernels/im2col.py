"""Convolutions as im2col panels times the filter on openge's own micro-kernel (kernels
layer, numba): float32, NCHW, one group, any kernel size, stride, dilation and padding.

``y = W (Cout, K) @ cols (K, P)`` per sample, with ``K = Cin·kh·kw`` and ``P = OH·OW``. The
columns are never built whole. :func:`phases` first writes the sample padded and split into
its stride phases, so that every (channel, tap) reads consecutive output columns from
consecutive floats. Then each work item — a block of output positions and of output channels
— copies its windows into panels of :data:`~openge.kernels.gemm.NR` positions (``[K][NR]``,
the layout openge.kernels.gemm's micro-kernel loads from), multiplies the filter into them
(read in place, one broadcast per row and step of K) and runs the epilogue (bias, residual,
activation) while its outputs are in cache. numpy's OpenBLAS, which the older path called on
a strided im2col view, packs both operands on every call and ran the 7×7 stride-2 stems at
90-120 GFLOP/s on one AVX-512 core; the panels keep the micro-kernel at 150-165.

Every output element sums its K products in the same order whatever the block, the thread
or the number of threads, so the bits do not depend on how the work was shared.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels import sync
from openge.kernels.depthwise import activate_row, block_epilogue
from openge.kernels.gemm import (
    KC,
    MR,
    NR,
    pack_rows,
    tile,
    tile_last,
    tile_rows,
    tile_rows_last,
    whole_rows,
)
from openge.kernels.pairs import pair_row, zeros

#: Input rows from which a stride-2 sample's column phases are split both at once
#: (openge.kernels.pairs.pair_row); narrower rows keep one strided loop per phase, whose
#: per-row setup is smaller (128 × 56² → 28², one AVX2 Zen 3 core: 278 µs per phase, 298
#: both at once).
PAIR_MIN_WIDTH = 112


@njit(inline="always")
def _phase_rows(x3, xph, pt, pl, y0, y1):  # pragma: no cover - compiled
    """Rows ``y0`` to ``y1`` of every stride phase (see :func:`phases`)."""
    c, h, w = x3.shape
    sh, sw, ph, pw = xph.shape[1], xph.shape[2], xph.shape[3], xph.shape[4]
    if sw == 2 and w >= PAIR_MIN_WIDTH:
        xf = x3.reshape(x3.size)
        for ci in range(c):
            for ry in range(sh):
                block = xph[ci, ry]  # (2, PH, PW): views per channel and row phase only
                even = block[0].reshape(ph * pw)
                odd = block[1].reshape(ph * pw)
                for yq in range(y0, y1):
                    iy = yq * sh + ry - pt
                    if iy < 0 or iy >= h:
                        zeros(even, yq * pw, yq * pw + pw)
                        zeros(odd, yq * pw, yq * pw + pw)
                    else:
                        pair_row(xf, (ci * h + iy) * w, w, pl, even, odd, yq * pw, pw)
        return
    step = np.uint64(sw)
    for ci in range(c):
        for ry in range(sh):
            for rx in range(sw):
                # phase columns xq reading input column xq·sw + rx - pl inside [0, w)
                lo = min(pw, max(0, (pl - rx + sw - 1) // sw))
                hi = min(pw, max(lo, (pl + w - rx + sw - 1) // sw))
                first = np.uint64(lo * sw + rx - pl) if hi > lo else np.uint64(0)
                for yq in range(y0, y1):
                    dst = xph[ci, ry, rx, yq]
                    iy = yq * sh + ry - pt
                    if iy < 0 or iy >= h:
                        for xq in range(pw):
                            dst[xq] = 0.0
                        continue
                    src = x3[ci, iy]
                    for xq in range(lo):
                        dst[xq] = 0.0
                    for q in range(hi - lo):
                        u = np.uint64(q)
                        dst[np.uint64(lo) + u] = src[first + u * step]
                    for xq in range(hi, pw):
                        dst[xq] = 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def phases(x3, xph, pt, pl):  # pragma: no cover - compiled
    """``xph`` (C, sh, sw, PH, PW) = one sample ``x3`` (C, H, W) padded by ``pt`` rows and
    ``pl`` columns (zeros) and split into stride phases: ``xph[c, ry, rx, y, x] =
    padded[c, y·sh + ry, x·sw + rx]``. Every float of ``xph`` is written. Rows of at least
    :data:`PAIR_MIN_WIDTH` at column stride 2 (an RGB stem's 224) have both column phases
    split in one pass (openge.kernels.pairs.pair_row: 3 × 224² 81 → 46 µs, one AVX2 Zen 3
    core)."""
    _phase_rows(x3, xph, pt, pl, 0, xph.shape[3])


@njit(cache=True, nogil=True, error_model="numpy")
def phase_rows(x3, xph, pt, pl, first, stop):  # pragma: no cover - compiled
    """Rows ``first`` to ``stop`` of every stride phase of :func:`phases`."""
    _phase_rows(x3, xph, pt, pl, first, stop)


@njit(cache=True, nogil=True, error_model="numpy")
def phases_drive(x3, xph, pt, pl, total, ctl, signal, worker, gen, spins):  # pragma: no cover
    """:func:`phases` on a thread of openge's team: ranges of the ``total`` (= PH) phase
    rows claimed without the GIL. With the caller on the first rows and a team thread on the
    last (openge.kernels.sync.claim), each thread writes the rows that its part of the
    product after it reads first: that product's parts take the output positions in the
    same order."""
    args = (x3, xph, pt, pl)
    return sync.drive(phase_rows, args, total, ctl, signal, worker, gen, spins)


def tap_offsets(
    c: int, kernel: tuple[int, int], dilation: tuple[int, int], plane: tuple[int, int, int, int]
) -> np.ndarray:
    """For each (channel, tap) k of the filter's ``Cin·kh·kw`` order, the flat offset in one
    sample's stride phases (C, sh, sw, PH, PW) that output position (0, 0) reads."""
    (kh, kw), (dh, dw) = kernel, dilation
    sh, sw, ph, pw = plane
    ci, ky, kx = np.meshgrid(np.arange(c), np.arange(kh), np.arange(kw), indexing="ij")
    ty, tx = ky * dh, kx * dw
    offsets = (((ci * sh + ty % sh) * sw + tx % sw) * ph + ty // sh) * pw + tx // sw
    return offsets.reshape(-1).astype(np.int64)


@njit(inline="always")
def _pack(xph, taps, k0, kc, panel, p0, width, ow, pw):  # pragma: no cover - compiled
    """Rows [k0, k0 + kc) of the windows of positions [p0, p0 + width) into ``panel``
    ([kc][NR], flat): entry ``(k - k0, j)`` is ``xph[taps[k] + oy·pw + ox]`` for output
    position ``p0 + j`` = (oy, ox), ``xph`` the sample's stride phases flattened. Positions
    go one output row at a time, so each run of entries is a copy of consecutive floats; a
    whole panel's run is a fixed-length copy. (Unsigned indices: numba then drops its
    negative-index fix-ups and the copies vectorize, 2.5 → 5-6 G floats/s.)"""
    j = 0
    while j < width:
        p = p0 + j
        oy = p // ow
        ox0 = p - oy * ow
        run = min(width - j, ow - ox0)
        at = oy * pw + ox0
        if run == NR:
            for k in range(kc):
                src = np.uint64(taps[k0 + k] + at)
                row = np.uint64(k * NR)
                for q in range(NR):
                    u = np.uint64(q)
                    panel[row + u] = xph[src + u]
        else:
            for k in range(kc):
                src = np.uint64(taps[k0 + k] + at)
                row = np.uint64(k * NR + j)
                for q in range(run):
                    u = np.uint64(q)
                    panel[row + u] = xph[src + u]
        j += run
    # the lanes past the last position feed sums that are never stored, but garbage there
    # can be subnormal, and a multiply-add on one costs a microcode assist (~100 cycles)
    for k in range(kc):
        for q in range(width, NR):
            panel[k * NR + q] = 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _items(
    w2, xph, taps, y2, bias, r2, has_res, act, lo, hi, shape, scratch, first, stop
):  # pragma: no cover - compiled
    """Work items ``first`` to ``stop`` of one sample. ``shape`` = (OW, PW, columns per
    block, output channels per block (a multiple of MR), A's row stride, A's step of K):
    (K, 1) for the filter ``w2`` (Cout, K) read in place, (1, MR) for it packed by
    openge.kernels.gemm.pack_rows; item t is (channel block ``t // blocks``, column block
    ``t % blocks``). ``scratch`` holds this thread's panels."""
    cout, p = y2.shape
    k = taps.shape[0]
    ow, pw, block, rows, lda, astep = shape
    flat = xph.reshape(-1)
    blocks = (p + block - 1) // block
    base = (64 - scratch.ctypes.data % 64) % 64 // 4  # panels 64-byte aligned
    buf = scratch[base:]
    b_addr = buf.ctypes.data
    w_addr = w2.ctypes.data
    y_addr = y2.ctypes.data
    passes = max(1, (k + KC - 1) // KC)
    step = max(1, (k + passes - 1) // passes)
    for t in range(first, stop):
        rb = t // blocks
        r0 = rb * rows
        r1 = min(cout, r0 + rows)
        p0 = (t - rb * blocks) * block
        p1 = min(p, p0 + block)
        count = (p1 - p0 + NR - 1) // NR
        last = whole_rows(r0, r1)  # MR-row blocks below, then one smaller tile
        for k0 in range(0, k, step):
            # this pass's rows of every panel of the block (in L2), then each filter row
            # block's tiles against them
            kc = min(step, k - k0)
            for q in range(count):
                width = min(NR, p1 - p0 - q * NR)
                _pack(flat, taps, k0, kc, buf[q * kc * NR :], p0 + q * NR, width, ow, pw)
            for r in range(r0, last, MR):
                for q in range(count):
                    width = min(NR, p1 - p0 - q * NR)
                    bq = b_addr + q * kc * NR * 4
                    tile(
                        kc,
                        w_addr + (r * k + k0 * astep) * 4,
                        lda,
                        astep,
                        bq,
                        y_addr + (r * p + p0 + q * NR) * 4,
                        p,
                        min(MR, r1 - r),
                        width,
                        k0 > 0,
                    )
            if last < r1:
                for q in range(count):
                    width = min(NR, p1 - p0 - q * NR)
                    bq = b_addr + q * kc * NR * 4
                    tile_last(
                        kc,
                        w_addr + (last * k + k0 * astep) * 4,
                        lda,
                        astep,
                        bq,
                        y_addr + (last * p + p0 + q * NR) * 4,
                        p,
                        r1 - last,
                        width,
                        k0 > 0,
                    )
        block_epilogue(y2[r0:r1], bias[r0:r1], r2[r0:r1], has_res, p0, p1, act, lo, hi)


@njit(inline="always")
def _grid_epilogue(
    cbuf, width, y2, bias, r2, has_res, r0, r1, g0, g1, ow, pw, act, lo, hi
):  # pragma: no cover - compiled
    """Output channels [r0, r1) of grid positions [g0, g1) from ``cbuf`` (row ``co - r0``
    of ``width`` floats holds grid position ``g0 + j`` at ``j``) into ``y2`` (Cout, OH·OW):
    grid position ``oy·pw + ox`` is output (oy, ox) when ``ox < ow`` (the rest are the
    windows that straddle a row's end: dropped), with bias, residual and activation. The
    kept positions of a block are consecutive outputs, so each channel's are gathered into
    one run and activated into one stretch of its row: one row view per channel, where a
    view per output row (each an atomic reference count) cost as much as the arithmetic."""
    acc = np.empty(max(1, g1 - g0), y2.dtype)
    u = np.uint64
    for co in range(r0, r1):
        crow = cbuf[(co - r0) * width :]
        rrow = r2[co]
        b = bias[co]
        count = 0
        first = 0
        g = g0
        while g < g1:
            oy = g // pw
            ox0 = g - oy * pw
            end = min(g1, oy * pw + pw)
            run = min(ow, end - oy * pw) - ox0
            if run > 0:
                if count == 0:
                    first = oy * ow + ox0
                src, dst = u(g - g0), u(count)
                if has_res:
                    at = u(oy * ow + ox0)
                    for q in range(run):
                        k = u(q)
                        acc[dst + k] = (crow[src + k] + b) + rrow[at + k]
                else:
                    for q in range(run):
                        k = u(q)
                        acc[dst + k] = crow[src + k] + b
                count += run
            g = end
        if count > 0:
            activate_row(acc, y2[co, first : first + count], count, act, lo, hi)


@njit(cache=True, nogil=True, error_model="numpy")
def _direct_items(
    w2, xflat, taps, y2, bias, r2, has_res, act, lo, hi, shape, scratch, first, stop
):  # pragma: no cover - compiled
    """Work items ``first`` to ``stop`` of one sample, the windows read in place: positions
    run over the phases' grid (``oy·PW + ox``, ``ox < PW``), so that each (channel, tap) row
    of NR positions is NR consecutive floats of ``xflat`` — the stride phases flattened, with
    NR readable floats past their end — and openge.kernels.gemm's :func:`tile_rows` loads
    them there; no panel is copied. The grid's columns past OW (windows across a row's end)
    are computed into ``scratch`` with the rest and dropped by the epilogue. Item t is
    (channel block ``t // blocks``, block ``t % blocks`` of grid positions); ``shape`` as
    in :func:`_items`, its block counted in grid positions."""
    cout, p = y2.shape
    k = taps.shape[0]
    ow, pw, block, rows, lda, astep = shape
    extent = (p // ow - 1) * pw + ow
    blocks = (extent + block - 1) // block
    width = (block + NR - 1) // NR * NR
    base = (64 - scratch.ctypes.data % 64) % 64 // 4  # the tiles' rows 64-byte aligned
    cbuf = scratch[base:]
    c_addr = cbuf.ctypes.data
    x_addr = xflat.ctypes.data
    t_addr = taps.ctypes.data
    w_addr = w2.ctypes.data
    passes = max(1, (k + KC - 1) // KC)
    step = max(1, (k + passes - 1) // passes)
    for t in range(first, stop):
        rb = t // blocks
        r0 = rb * rows
        r1 = min(cout, r0 + rows)
        g0 = (t - rb * blocks) * block
        g1 = min(extent, g0 + block)
        count = (g1 - g0 + NR - 1) // NR
        last = whole_rows(r0, r1)  # MR-row blocks below, then one smaller tile
        for k0 in range(0, k, step):
            kc = min(step, k - k0)
            for q in range(count):
                for r in range(r0, last, MR):
                    tile_rows(
                        kc,
                        w_addr + (r * k + k0 * astep) * 4,
                        lda,
                        astep,
                        x_addr + (g0 + q * NR) * 4,
                        t_addr + k0 * 8,
                        c_addr + ((r - r0) * width + q * NR) * 4,
                        width,
                        min(MR, r1 - r),
                        NR,
                        k0 > 0,
                    )
                if last < r1:
                    tile_rows_last(
                        kc,
                        w_addr + (last * k + k0 * astep) * 4,
                        lda,
                        astep,
                        x_addr + (g0 + q * NR) * 4,
                        t_addr + k0 * 8,
                        c_addr + ((last - r0) * width + q * NR) * 4,
                        width,
                        r1 - last,
                        NR,
                        k0 > 0,
                    )
        _grid_epilogue(cbuf, width, y2, bias, r2, has_res, r0, r1, g0, g1, ow, pw, act, lo, hi)


def direct_item_count(cout: int, oh: int, ow: int, pw: int, block: int, rows: int) -> int:
    """Work items of one sample on the direct path: blocks of output channels × blocks of
    grid positions (``(OH - 1)·PW + OW`` of them)."""
    return -(-cout // rows) * -(-((oh - 1) * pw + ow) // block)


def direct_scratch_floats(rows: int, block: int) -> int:
    """Floats of one thread's tile scratch on the direct path: ``rows`` output channels by
    ``block`` grid positions (rounded up to whole tiles), plus alignment."""
    return rows * (-(-block // NR) * NR) + 16


@njit(cache=True, nogil=True, error_model="numpy")
def conv_direct(
    w2, xflat, taps, y2, bias, r2, has_res, act, lo, hi, shape, scratch
):  # pragma: no cover - compiled
    """:func:`conv` with the windows read in place (:func:`_direct_items`): ``xflat`` the
    sample's stride phases flattened, followed by at least NR floats that are not
    subnormal (zeros); ``scratch`` of :func:`direct_scratch_floats`. Same sums in the same
    order as :func:`conv`: the same bits."""
    ow, pw, block, rows = shape[0], shape[1], shape[2], shape[3]
    extent = (y2.shape[1] // ow - 1) * pw + ow
    count = ((y2.shape[0] + rows - 1) // rows) * ((extent + block - 1) // block)
    _direct_items(w2, xflat, taps, y2, bias, r2, has_res, act, lo, hi, shape, scratch, 0, count)


@njit(cache=True, nogil=True, error_model="numpy")
def conv_direct_drive(
    w2,
    xflat,
    taps,
    y2,
    bias,
    r2,
    has_res,
    act,
    lo,
    hi,
    shape,
    scratch,
    total,
    ctl,
    signal,
    worker,
    gen,
    spins,
):  # pragma: no cover - compiled
    """:func:`conv_direct` on a thread of openge's team (see :func:`conv_drive`)."""
    mine = np.empty(scratch.shape[0], np.float32) if worker else scratch
    args = (w2, xflat, taps, y2, bias, r2, has_res, act, lo, hi, shape, mine)
    return sync.drive(_direct_items, args, total, ctl, signal, worker, gen, spins)


def item_count(cout: int, p: int, block: int, rows: int) -> int:
    """Work items of one sample: blocks of output channels × blocks of output positions."""
    return -(-cout // rows) * -(-p // block)


def scratch_floats(k: int, block: int) -> int:
    """Floats of one thread's panel scratch for blocks of ``block`` positions and ``K = k``
    (one pass of at most KC rows of K at a time)."""
    return min(k, KC) * (-(-block // NR) * NR) + 16


@njit(cache=True, nogil=True, error_model="numpy")
def conv(w2, xph, taps, y2, bias, r2, has_res, act, lo, hi, shape, scratch):  # pragma: no cover
    """``y2 = act(w2 @ im2col + bias [+ r2])`` for one sample, in the calling thread without
    the GIL: ``w2`` the filter (Cout, Cin·kh·kw) flattened, or packed (see :func:`_items`),
    ``xph`` the sample's stride phases (:func:`phases`), ``taps`` from :func:`tap_offsets`,
    ``y2`` and ``r2`` (Cout, OH·OW), float32, C-contiguous; ``shape`` as in :func:`_items`;
    ``scratch`` of :func:`scratch_floats`."""
    count = ((y2.shape[0] + shape[3] - 1) // shape[3]) * ((y2.shape[1] + shape[2] - 1) // shape[2])
    _items(w2, xph, taps, y2, bias, r2, has_res, act, lo, hi, shape, scratch, 0, count)


@njit(cache=True, nogil=True, error_model="numpy")
def conv_drive(
    w2,
    xph,
    taps,
    y2,
    bias,
    r2,
    has_res,
    act,
    lo,
    hi,
    shape,
    scratch,
    total,
    ctl,
    signal,
    worker,
    gen,
    spins,
):  # pragma: no cover - compiled
    """:func:`conv` on a thread of openge's team: items claimed part by part
    (openge.kernels.sync), without the GIL; ``scratch`` is the caller's, so a team thread
    allocates its own."""
    mine = np.empty(scratch.shape[0], np.float32) if worker else scratch
    args = (w2, xph, taps, y2, bias, r2, has_res, act, lo, hi, shape, mine)
    return sync.drive(_items, args, total, ctl, signal, worker, gen, spins)


__all__ = [
    "MR",
    "NR",
    "conv",
    "conv_direct",
    "conv_direct_drive",
    "conv_drive",
    "direct_item_count",
    "direct_scratch_floats",
    "item_count",
    "pack_rows",
    "phase_rows",
    "phases",
    "phases_drive",
    "scratch_floats",
    "tap_offsets",
]
