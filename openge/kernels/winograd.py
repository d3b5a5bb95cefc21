"""Winograd F(2×2, 3×3) transforms for 3×3 stride-1 convolutions (kernels layer, numba).

A 3×3 convolution over 2×2 output tiles costs 16 products per (input, output channel, tile)
instead of 36: the input's 4×4 tiles are transformed (``V = Bᵀ d B``), 16 GEMMs
``M[k] = U[k] @ V[k]`` (U = G g Gᵀ, the transformed filter, made once) run on
openge.kernels.gemm's micro-kernel, and each tile's 2×2 outputs are ``Aᵀ M A``. The transforms
are additions only; F(2×2, 3×3)'s error is a few float32 ulps of the sums (measured in
tests/kernels/test_winograd.py against float64).

Each step runs over a range of channels or planes, without the GIL (openge's threads share
them: openge.ops.conv_winograd). Layouts: ``xp`` a stretch of the padded input (C,
2·rows + 2, 2·tw + 2) — zero outside the image — copied by the thread that transforms it;
``vp`` (16, panels, C, NR), the transformed tiles in the micro-kernel's panels; ``m`` (16,
Cout, th·tw), k = 4·row + column of the transformed tile.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels import sync
from openge.kernels.depthwise import NONE, activate_row
from openge.kernels.gemm import KC, MR, NR, tile, tile_last, whole_rows
from openge.kernels.im2col import phases


@njit(inline="always")
def _transformed(plane, r, q):  # pragma: no cover - compiled
    """``Bᵀ d B`` of the 4×4 patch of ``plane`` at row ``r``, column ``q``: its 16 values,
    k = 4·row + column."""
    # rows: Bᵀ d
    a0 = plane[r, q] - plane[r + 2, q]
    a1 = plane[r, q + 1] - plane[r + 2, q + 1]
    a2 = plane[r, q + 2] - plane[r + 2, q + 2]
    a3 = plane[r, q + 3] - plane[r + 2, q + 3]
    b0 = plane[r + 1, q] + plane[r + 2, q]
    b1 = plane[r + 1, q + 1] + plane[r + 2, q + 1]
    b2 = plane[r + 1, q + 2] + plane[r + 2, q + 2]
    b3 = plane[r + 1, q + 3] + plane[r + 2, q + 3]
    c0 = plane[r + 2, q] - plane[r + 1, q]
    c1 = plane[r + 2, q + 1] - plane[r + 1, q + 1]
    c2 = plane[r + 2, q + 2] - plane[r + 1, q + 2]
    c3 = plane[r + 2, q + 3] - plane[r + 1, q + 3]
    d0 = plane[r + 1, q] - plane[r + 3, q]
    d1 = plane[r + 1, q + 1] - plane[r + 3, q + 1]
    d2 = plane[r + 1, q + 2] - plane[r + 3, q + 2]
    d3 = plane[r + 1, q + 3] - plane[r + 3, q + 3]
    # columns: (Bᵀ d) B
    return (
        a0 - a2,
        a1 + a2,
        a2 - a1,
        a1 - a3,
        b0 - b2,
        b1 + b2,
        b2 - b1,
        b1 - b3,
        c0 - c2,
        c1 + c2,
        c2 - c1,
        c1 - c3,
        d0 - d2,
        d1 + d2,
        d2 - d1,
        d1 - d3,
    )


@njit(inline="always")
def _store(planes, at, vals):  # pragma: no cover - compiled
    """``planes[k, at] = vals[k]`` for the 16 values of a transformed tile (constant indices:
    a loop over a tuple would lower to a switch per value, 3x slower)."""
    planes[0, at] = vals[0]
    planes[1, at] = vals[1]
    planes[2, at] = vals[2]
    planes[3, at] = vals[3]
    planes[4, at] = vals[4]
    planes[5, at] = vals[5]
    planes[6, at] = vals[6]
    planes[7, at] = vals[7]
    planes[8, at] = vals[8]
    planes[9, at] = vals[9]
    planes[10, at] = vals[10]
    planes[11, at] = vals[11]
    planes[12, at] = vals[12]
    planes[13, at] = vals[13]
    planes[14, at] = vals[14]
    planes[15, at] = vals[15]


@njit(inline="always")
def _panels(xp, v2, tw, tiles):  # pragma: no cover - compiled
    """``V = Bᵀ d B`` of tiles [0, tiles) and every channel into ``v2`` (16, ...): tile t =
    ti·tw + tj (d the 4×4 patch of ``xp`` at (2·ti, 2·tj)) in panel ``t // NR`` at lane ``t %
    NR`` of the run starting at ``(panel·C + channel)·NR``; the last panel's idle lanes zero
    (a subnormal there would slow the products). Panel by panel, so each plane's writes run
    through (channel, lane) contiguously."""
    c = xp.shape[0]
    for q in range((tiles + NR - 1) // NR):
        t0 = q * NR
        count = min(NR, tiles - t0)
        ti0 = t0 // tw
        tj0 = t0 - ti0 * tw
        for ch in range(c):
            plane = xp[ch]
            at = (q * c + ch) * NR
            ti = ti0
            tj = tj0
            for lane in range(count):
                patch = _transformed(plane, np.uint64(2 * ti), np.uint64(2 * tj))
                _store(v2, np.uint64(at + lane), patch)
                tj += 1
                if tj == tw:
                    tj = 0
                    ti += 1
            for lane in range(count, NR):
                for k in range(16):
                    v2[k, at + lane] = 0.0


@njit(inline="always")
def _slab(x, pt, pl, r0, r1, slab):  # pragma: no cover - compiled
    """``slab`` (C, 2·(r1 - r0) + 2, PW) = rows [2·r0, 2·r1 + 2) of the input ``x`` (C, H, W)
    padded by ``pt`` rows and ``pl`` columns of zeros (and zeros past its end): the 4×4
    patches of tile rows [r0, r1) — openge.kernels.im2col's stride-1 phase of those rows.
    Each thread copies the stretch it transforms, so the copy is shared and its floats land
    in the cache of the core that reads them (a whole padded copy made by the calling thread
    left the input in that core's cache, and the other thread read its half across)."""
    c, rows, pw = slab.shape
    phases(x, slab.reshape(c, 1, 1, rows, pw), pt - 2 * r0, pl)


@njit(cache=True, nogil=True)
def input_panels(x, pads, slab, v2, th, tw):  # pragma: no cover - compiled
    """The input transform of every tile of ``x`` (C, H, W; ``pads`` = (top, left)) into
    ``v2`` (16, panels·C·NR), openge.kernels.gemm's panel layout (see :func:`_panels`), by way
    of ``slab`` (C, 2·th + 2, 2·tw + 2), the padded input."""
    _slab(x, pads[0], pads[1], 0, th, slab)
    _panels(slab, v2, tw, th * tw)


@njit(inline="always")
def plane_products(u, v2, m2, k, tiles, ldm):  # pragma: no cover - compiled
    """``M[k] = U[k] @ V[k]`` for ``tiles`` tiles: ``u`` (16, Cout, C) read in place, ``v2``
    (16, ...) their panels (:func:`_panels`), ``m2`` (16, ...) with output channel co of
    plane k at ``co·ldm``. Per pass of at most KC channels, each panel (in L1) meets every
    MR-row block of U[k]."""
    cout, c = u.shape[1], u.shape[2]
    panels = (tiles + NR - 1) // NR
    passes = max(1, (c + KC - 1) // KC)
    step = max(1, (c + passes - 1) // passes)
    u_addr = u[k].ctypes.data
    v_addr = v2[k].ctypes.data
    m_addr = m2[k].ctypes.data
    last = whole_rows(0, cout)  # MR-row blocks below, then one smaller tile
    for k0 in range(0, c, step):
        kc = min(step, c - k0)
        for q in range(panels):
            width = min(NR, tiles - q * NR)
            bq = v_addr + (q * c + k0) * NR * 4
            for r in range(0, last, MR):
                tile(
                    kc,
                    u_addr + (r * c + k0) * 4,
                    c,
                    1,
                    bq,
                    m_addr + (r * ldm + q * NR) * 4,
                    ldm,
                    min(MR, cout - r),
                    width,
                    k0 > 0,
                )
            if last < cout:
                tile_last(
                    kc,
                    u_addr + (last * c + k0) * 4,
                    c,
                    1,
                    bq,
                    m_addr + (last * ldm + q * NR) * 4,
                    ldm,
                    cout - last,
                    width,
                    k0 > 0,
                )


@njit(cache=True, nogil=True)
def products(u, v2, m):  # pragma: no cover - compiled
    """``m[k] = u[k] @ V[k]`` for the 16 planes on gemm's micro-kernel: ``u`` (16, Cout, C),
    ``v2`` the tiles in panels (:func:`input_panels`), ``m`` (16, Cout, tiles) with
    C-contiguous planes."""
    tiles = m.shape[2]
    for k in range(16):
        plane_products(u, v2, m, k, tiles, tiles)


@njit(cache=True, nogil=True)
def output_transform(m, bias, y, res, has_res, act, lo, hi, th, tw):  # pragma: no cover
    """``y`` (Cout, oh, ow) from the tiles' products ``m`` (16, Cout, th·tw): each tile's 2×2
    outputs are ``Aᵀ M A + bias``, the ones past the output's edge dropped; then each
    channel's rows are finished by :func:`finish_rows`."""
    for co in range(y.shape[0]):
        mc = m[:, co]
        yc = y[co]
        bc = bias[co]
        for ti in range(th):
            base = ti * tw
            for tj in range(tw):
                _untile(mc, np.uint64(base + tj), yc, ti, tj, bc)
        if has_res or act != NONE:
            finish_rows(yc, res[co], has_res, 0, yc.shape[0], 0, yc.shape[1], act, lo, hi)


@njit(inline="always")
def finish_rows(yc, rc, has_res, r0, r1, c0, c1, act, lo, hi):  # pragma: no cover - compiled
    """FusedConv2D's epilogue on rows [r0, r1) and columns [c0, c1) of ``yc`` (clipped to it),
    in place while they are in cache: the residual ``rc`` added (when ``has_res``), then the
    activation — the order and rounding of the separate epilogue pass."""
    stop_r = min(r1, yc.shape[0])
    stop_c = min(c1, yc.shape[1])
    for r in range(r0, stop_r):
        row = yc[r, c0:stop_c]
        if has_res:
            add = rc[r, c0:stop_c]
            for q in range(stop_c - c0):
                u = np.uint64(q)
                row[u] = row[u] + add[u]
        activate_row(row, row, stop_c - c0, act, lo, hi)


@njit(inline="always")
def _untile(mc, t, yc, ti, tj, bc):  # pragma: no cover - compiled
    """Tile (``ti``, ``tj``)'s 2×2 outputs ``Aᵀ M A + bc`` into ``yc`` (oh, ow) from column
    ``t`` of ``mc`` (16, ...), the ones past the output's edge dropped."""
    oh, ow = yc.shape[0], yc.shape[1]
    # rows: Aᵀ M
    s0 = mc[0, t] + mc[4, t] + mc[8, t]
    s1 = mc[1, t] + mc[5, t] + mc[9, t]
    s2 = mc[2, t] + mc[6, t] + mc[10, t]
    s3 = mc[3, t] + mc[7, t] + mc[11, t]
    u0 = mc[4, t] - mc[8, t] - mc[12, t]
    u1 = mc[5, t] - mc[9, t] - mc[13, t]
    u2 = mc[6, t] - mc[10, t] - mc[14, t]
    u3 = mc[7, t] - mc[11, t] - mc[15, t]
    r = np.uint64(2 * ti)
    q = np.uint64(2 * tj)
    if 2 * tj + 1 < ow and 2 * ti + 1 < oh:
        yc[r, q] = s0 + s1 + s2 + bc
        yc[r, q + 1] = s1 - s2 - s3 + bc
        yc[r + 1, q] = u0 + u1 + u2 + bc
        yc[r + 1, q + 1] = u1 - u2 - u3 + bc
    else:
        yc[r, q] = s0 + s1 + s2 + bc
        if 2 * tj + 1 < ow:
            yc[r, q + 1] = s1 - s2 - s3 + bc
        if 2 * ti + 1 < oh:
            yc[r + 1, q] = u0 + u1 + u2 + bc
            if 2 * tj + 1 < ow:
                yc[r + 1, q + 1] = u1 - u2 - u3 + bc


def chunk_panels(tw: int, rows: int) -> int:
    """Tile panels of a chunk of ``rows`` tile rows of ``tw`` tiles."""
    return -(-(rows * tw) // NR)


def chunk_floats(c: int, cout: int, panels: int, rows: int, tw: int) -> int:
    """Floats of one thread's scratch for :func:`convolve`'s chunks of ``panels`` panels and
    ``rows`` tile rows of ``tw`` tiles."""
    slab = c * (2 * rows + 2) * (2 * tw + 2) + 16
    return 16 * (panels * c * NR + 16) + 16 * (cout * panels * NR + 16) + 16 + slab


@njit(cache=True, nogil=True)
def _chunks(
    x, pads, u, bias, y, res, has_res, act, lo, hi, th, tw, rows, work, first, stop
):  # pragma: no cover
    """Chunks ``first`` to ``stop`` of ``rows`` tile rows each, every one through all three
    steps while its tiles are in cache: the input transform (all channels), the 16 products,
    the output transform, then the epilogue on its whole output rows. ``work`` is this
    thread's scratch (:func:`chunk_floats`)."""
    c = x.shape[0]
    cout = u.shape[1]
    ldm = (rows * tw + NR - 1) // NR * NR
    vlen = ldm * c + 16  # planes skewed by 64 bytes: no 4 KiB-aligned plane strides
    mlen = cout * ldm + 16
    base = (64 - work.ctypes.data % 64) % 64 // 4
    v2 = work[base : base + 16 * vlen].reshape(16, vlen)
    m2 = work[base + 16 * vlen : base + 16 * vlen + 16 * mlen].reshape(16, mlen)
    at = base + 16 * vlen + 16 * mlen + 16
    pw = 2 * tw + 2
    finish = has_res or act != NONE
    for g in range(first, stop):
        r0 = g * rows
        r1 = min(th, r0 + rows)
        t0 = r0 * tw
        t1 = r1 * tw
        slab = work[at : at + c * (2 * (r1 - r0) + 2) * pw].reshape(c, 2 * (r1 - r0) + 2, pw)
        _slab(x, pads[0], pads[1], r0, r1, slab)
        _panels(slab, v2, tw, t1 - t0)
        for k in range(16):
            plane_products(u, v2, m2, k, t1 - t0, ldm)
        for co in range(cout):
            mc = m2[:, co * ldm : co * ldm + ldm]
            yc = y[co]
            bc = bias[co]
            for ti in range(r0, r1):
                base_t = (ti - r0) * tw
                for tj in range(tw):
                    _untile(mc, np.uint64(base_t + tj), yc, ti, tj, bc)
            if finish:
                finish_rows(yc, res[co], has_res, 2 * r0, 2 * r1, 0, yc.shape[1], act, lo, hi)


@njit(cache=True, nogil=True)
def convolve(
    x, pads, u, bias, y, res, has_res, act, lo, hi, th, tw, rows, work
):  # pragma: no cover - compiled
    """The whole convolution of the input ``x`` (C, H, W; ``pads`` = (top, left)) into ``y``
    (Cout, oh, ow), finished as in :func:`output_transform`, chunk by chunk (see
    :func:`_chunks`), in the calling thread without the GIL."""
    count = (th + rows - 1) // rows
    _chunks(x, pads, u, bias, y, res, has_res, act, lo, hi, th, tw, rows, work, 0, count)


@njit(cache=True, nogil=True)
def convolve_drive(
    x,
    pads,
    u,
    bias,
    y,
    res,
    has_res,
    act,
    lo,
    hi,
    th,
    tw,
    rows,
    work,
    total,
    ctl,
    signal,
    worker,
    gen,
    spins,
):  # pragma: no cover - compiled
    """:func:`convolve` on a thread of openge's team: chunks (neighbouring tiles: each thread
    keeps to its own stretch of the image) claimed part by part; a team thread allocates its
    own scratch."""
    mine = np.empty(work.shape[0], np.float32) if worker else work
    args = (x, pads, u, bias, y, res, has_res, act, lo, hi, th, tw, rows, mine)
    return sync.drive(_chunks, args, total, ctl, signal, worker, gen, spins)


@njit(inline="always")
def _g_rows(a, b, e):  # pragma: no cover - compiled
    """G (a, b, e)ᵀ: G's rows are (1, 0, 0), (½, ½, ½), (½, -½, ½), (0, 0, 1)."""
    return a, (a + b + e) * 0.5, (a - b + e) * 0.5, e


@njit(cache=True, nogil=True)
def _filter_transform(f, u):  # pragma: no cover - compiled
    cout, cin = f.shape[0], f.shape[1]
    for o in range(cout):
        for c in range(cin):
            g = f[o, c]
            # G g, one column at a time: column j of the 4×3 result
            c0 = _g_rows(np.float64(g[0, 0]), np.float64(g[1, 0]), np.float64(g[2, 0]))
            c1 = _g_rows(np.float64(g[0, 1]), np.float64(g[1, 1]), np.float64(g[2, 1]))
            c2 = _g_rows(np.float64(g[0, 2]), np.float64(g[1, 2]), np.float64(g[2, 2]))
            for i in range(4):  # row i of (G g) Gᵀ
                r = _g_rows(c0[i], c1[i], c2[i])
                for k in range(4):
                    u[4 * i + k, o, c] = r[k]


def filter_transform(f: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``U`` (16, Cout, Cin) = G g Gᵀ of every 3×3 filter of ``f`` (Cout, Cin, 3, 3), computed
    in float64 and rounded once to ``dtype`` (once per model load; compiled: the NumPy form
    took 24 ms of resnet18's load)."""
    u = np.empty((16, f.shape[0], f.shape[1]), dtype=dtype)
    _filter_transform(np.ascontiguousarray(f), u)
    return u


__all__ = [
    "NR",
    "chunk_floats",
    "chunk_panels",
    "convolve",
    "convolve_drive",
    "filter_transform",
    "input_panels",
    "output_transform",
    "products",
]
