"""Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions on larger planes (kernels layer, numba).

The same scheme as openge.kernels.winograd's F(2×2, 3×3), with 4×4 output tiles. Each tile
reads a 6×6 input patch, transformed to ``V = Bᵀ d B``. There are 36 products
``M[k] = U[k] @ V[k]`` (``U = G g Gᵀ``, the transformed filter, made once), and each tile's
4×4 outputs are ``Aᵀ M A``. So a tile costs 36 multiplies per (input, output channel) for 16
outputs: 2.25 per output, against F(2×2, 3×3)'s 4 and a direct convolution's 9. The matrices
are Lavin and Gray's ("Fast Algorithms for Convolutional Neural Networks", 2015) with the
points 0, ±1, ±2. Their larger constants cost accuracy: the error is a few times
F(2×2, 3×3)'s, still within the conformance tolerances (measured in
tests/kernels/test_winograd4.py against float64).

Layouts as in openge.kernels.winograd, with k = 6·row + column of the 6×6 transformed tile:
``xp`` a stretch of the padded input (C, 4·rows + 2, 4·tw + 2) copied by the thread that
transforms it; ``v2`` (36, ...) the transformed tiles in the micro-kernel's panels; ``m2``
(36, ...) the products.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels import sync
from openge.kernels.depthwise import NONE
from openge.kernels.gemm import NR
from openge.kernels.im2col import phases
from openge.kernels.winograd import chunk_panels, finish_rows, plane_products

#: Transformed planes (the 6×6 patch's values).
PLANES = 36
#: Output tile side.
TILE = 4
# the transforms' constants as float32 (float64 literals would widen every sum)
_TWO, _FOUR, _FIVE, _EIGHT = np.float32(2), np.float32(4), np.float32(5), np.float32(8)


@njit(inline="always")
def _bt(d0, d1, d2, d3, d4, d5):  # pragma: no cover - compiled
    """Bᵀ (d0 … d5): the input transform along one axis."""
    return (
        _FOUR * d0 - _FIVE * d2 + d4,
        (d3 + d4) - _FOUR * (d1 + d2),
        (d4 - d3) + _FOUR * (d1 - d2),
        (d4 - d2) + _TWO * (d3 - d1),
        (d4 - d2) - _TWO * (d3 - d1),
        _FOUR * d1 - _FIVE * d3 + d5,
    )


@njit(inline="always")
def _at(m0, m1, m2, m3, m4, m5):  # pragma: no cover - compiled
    """Aᵀ (m0 … m5): the output transform along one axis (4 values)."""
    a, b = m1 + m2, m1 - m2
    c, d = m3 + m4, m3 - m4
    return m0 + a + c, b + _TWO * d, a + _FOUR * c, b + _EIGHT * d + m5


@njit(inline="always")
def _column(plane, r, q):  # pragma: no cover - compiled
    """Bᵀ of the six values of ``plane`` down from (r, q)."""
    return _bt(
        plane[r, q],
        plane[r + np.uint64(1), q],
        plane[r + np.uint64(2), q],
        plane[r + np.uint64(3), q],
        plane[r + np.uint64(4), q],
        plane[r + np.uint64(5), q],
    )


@njit(inline="always")
def _store6(planes, k, at, v):  # pragma: no cover - compiled
    """``planes[k + j, at] = v[j]`` for j < 6 (constant indices: a loop over a tuple would
    lower to a switch per value)."""
    planes[k, at] = v[0]
    planes[k + 1, at] = v[1]
    planes[k + 2, at] = v[2]
    planes[k + 3, at] = v[3]
    planes[k + 4, at] = v[4]
    planes[k + 5, at] = v[5]


@njit(inline="always")
def _transform_store(plane, r, q, planes, at):  # pragma: no cover - compiled
    """``Bᵀ d B`` of the 6×6 patch of ``plane`` at (r, q) into ``planes[6·i + j, at]``."""
    c0 = _column(plane, r, q)
    c1 = _column(plane, r, q + np.uint64(1))
    c2 = _column(plane, r, q + np.uint64(2))
    c3 = _column(plane, r, q + np.uint64(3))
    c4 = _column(plane, r, q + np.uint64(4))
    c5 = _column(plane, r, q + np.uint64(5))
    # row i of (Bᵀ d) is (c0[i], …, c5[i]); times B it is row i of the transformed tile
    _store6(planes, 0, at, _bt(c0[0], c1[0], c2[0], c3[0], c4[0], c5[0]))
    _store6(planes, 6, at, _bt(c0[1], c1[1], c2[1], c3[1], c4[1], c5[1]))
    _store6(planes, 12, at, _bt(c0[2], c1[2], c2[2], c3[2], c4[2], c5[2]))
    _store6(planes, 18, at, _bt(c0[3], c1[3], c2[3], c3[3], c4[3], c5[3]))
    _store6(planes, 24, at, _bt(c0[4], c1[4], c2[4], c3[4], c4[4], c5[4]))
    _store6(planes, 30, at, _bt(c0[5], c1[5], c2[5], c3[5], c4[5], c5[5]))


@njit(inline="always")
def _panels(xp, v2, tw, tiles):  # pragma: no cover - compiled
    """``V`` of tiles [0, tiles) and every channel into ``v2`` (36, ...): tile t = ti·tw + tj
    (the 6×6 patch of ``xp`` at (4·ti, 4·tj)) in panel ``t // NR`` at lane ``t % NR`` of the
    run starting at ``(panel·C + channel)·NR``; the last panel's idle lanes zero."""
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
                _transform_store(
                    plane, np.uint64(4 * ti), np.uint64(4 * tj), v2, np.uint64(at + lane)
                )
                tj += 1
                if tj == tw:
                    tj = 0
                    ti += 1
            for lane in range(count, NR):
                for k in range(PLANES):
                    v2[k, at + lane] = 0.0


@njit(inline="always")
def _put_row(yc, r, q, o, bc, width):  # pragma: no cover - compiled
    """``yc[r, q + j] = o[j] + bc`` for the ``width`` (≤ 4) columns inside the output."""
    if width >= 4:
        yc[r, q] = o[0] + bc
        yc[r, q + np.uint64(1)] = o[1] + bc
        yc[r, q + np.uint64(2)] = o[2] + bc
        yc[r, q + np.uint64(3)] = o[3] + bc
        return
    yc[r, q] = o[0] + bc
    if width > 1:
        yc[r, q + np.uint64(1)] = o[1] + bc
    if width > 2:
        yc[r, q + np.uint64(2)] = o[2] + bc


@njit(inline="always")
def _untile(mc, t, yc, ti, tj, bc):  # pragma: no cover - compiled
    """Tile (``ti``, ``tj``)'s 4×4 outputs ``Aᵀ M A + bc`` into ``yc`` (oh, ow) from column
    ``t`` of ``mc`` (36, ...), the ones past the output's edge dropped."""
    oh, ow = yc.shape[0], yc.shape[1]
    # column j of Aᵀ M: Aᵀ applied down column j of the 6×6 products
    s0 = _at(mc[0, t], mc[6, t], mc[12, t], mc[18, t], mc[24, t], mc[30, t])
    s1 = _at(mc[1, t], mc[7, t], mc[13, t], mc[19, t], mc[25, t], mc[31, t])
    s2 = _at(mc[2, t], mc[8, t], mc[14, t], mc[20, t], mc[26, t], mc[32, t])
    s3 = _at(mc[3, t], mc[9, t], mc[15, t], mc[21, t], mc[27, t], mc[33, t])
    s4 = _at(mc[4, t], mc[10, t], mc[16, t], mc[22, t], mc[28, t], mc[34, t])
    s5 = _at(mc[5, t], mc[11, t], mc[17, t], mc[23, t], mc[29, t], mc[35, t])
    r = np.uint64(4 * ti)
    q = np.uint64(4 * tj)
    width = min(4, ow - 4 * tj)
    height = min(4, oh - 4 * ti)
    _put_row(yc, r, q, _at(s0[0], s1[0], s2[0], s3[0], s4[0], s5[0]), bc, width)
    if height > 1:
        _put_row(yc, r + np.uint64(1), q, _at(s0[1], s1[1], s2[1], s3[1], s4[1], s5[1]), bc, width)
    if height > 2:
        _put_row(yc, r + np.uint64(2), q, _at(s0[2], s1[2], s2[2], s3[2], s4[2], s5[2]), bc, width)
    if height > 3:
        _put_row(yc, r + np.uint64(3), q, _at(s0[3], s1[3], s2[3], s3[3], s4[3], s5[3]), bc, width)


def chunk_floats(c: int, cout: int, panels: int, rows: int, tw: int) -> int:
    """Floats of one thread's scratch for :func:`convolve`'s chunks of ``panels`` panels and
    ``rows`` tile rows of ``tw`` tiles."""
    slab = c * (TILE * rows + 2) * (TILE * tw + 2) + 16
    return PLANES * (panels * c * NR + 16) + PLANES * (cout * panels * NR + 16) + 16 + slab


@njit(cache=True, nogil=True)
def _chunks(
    x, pads, u, bias, y, res, has_res, act, lo, hi, th, tw, rows, work, first, stop
):  # pragma: no cover
    """Chunks ``first`` to ``stop`` of ``rows`` tile rows each, every one through all three
    steps while its tiles are in cache (as openge.kernels.winograd's): the padded rows copied
    into this thread's scratch, the input transform, the 36 products, the output transform,
    then the epilogue on its whole output rows. ``work`` is this thread's scratch
    (:func:`chunk_floats`)."""
    c = x.shape[0]
    cout = u.shape[1]
    ldm = (rows * tw + NR - 1) // NR * NR
    vlen = ldm * c + 16  # planes skewed by 64 bytes: no 4 KiB-aligned plane strides
    mlen = cout * ldm + 16
    base = (64 - work.ctypes.data % 64) % 64 // 4
    v2 = work[base : base + PLANES * vlen].reshape(PLANES, vlen)
    m2 = work[base + PLANES * vlen : base + PLANES * (vlen + mlen)].reshape(PLANES, mlen)
    at = base + PLANES * (vlen + mlen) + 16
    pw = TILE * tw + 2
    finish = has_res or act != NONE
    for g in range(first, stop):
        r0 = g * rows
        r1 = min(th, r0 + rows)
        tiles = (r1 - r0) * tw
        height = TILE * (r1 - r0) + 2
        slab = work[at : at + c * height * pw].reshape(c, height, pw)
        # rows [4·r0, 4·r1 + 2) of the padded input: the 6×6 patches of these tile rows
        phases(x, slab.reshape(c, 1, 1, height, pw), pads[0] - TILE * r0, pads[1])
        _panels(slab, v2, tw, tiles)
        for k in range(PLANES):
            plane_products(u, v2, m2, k, tiles, ldm)
        for co in range(cout):
            mc = m2[:, co * ldm : co * ldm + ldm]
            yc = y[co]
            bc = bias[co]
            for ti in range(r0, r1):
                base_t = (ti - r0) * tw
                for tj in range(tw):
                    _untile(mc, np.uint64(base_t + tj), yc, ti, tj, bc)
            if finish:
                r_stop = TILE * r1
                finish_rows(yc, res[co], has_res, TILE * r0, r_stop, 0, yc.shape[1], act, lo, hi)


@njit(cache=True, nogil=True)
def convolve(
    x, pads, u, bias, y, res, has_res, act, lo, hi, th, tw, rows, work
):  # pragma: no cover - compiled
    """The whole convolution of the input ``x`` (C, H, W; ``pads`` = (top, left)) into ``y``
    (Cout, oh, ow), plus ``bias``, then the residual and the activation, chunk by chunk (see
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
    """:func:`convolve` on a thread of openge's team: chunks claimed part by part; a team
    thread allocates its own scratch."""
    mine = np.empty(work.shape[0], np.float32) if worker else work
    args = (x, pads, u, bias, y, res, has_res, act, lo, hi, th, tw, rows, mine)
    return sync.drive(_chunks, args, total, ctl, signal, worker, gen, spins)


#: G of F(4×4, 3×3): the filter transform's rows.
_G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ]
)


def filter_transform(f: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``U`` (36, Cout, Cin) = G g Gᵀ of every 3×3 filter of ``f`` (Cout, Cin, 3, 3), k = 6·i + j,
    computed in float64 (two BLAS products over all filters) and rounded once to ``dtype``."""
    g = np.asarray(f, np.float64)
    left = np.tensordot(_G, g, axes=([1], [2]))  # (6, Cout, Cin, 3): G g
    full = np.tensordot(left, _G, axes=([3], [1]))  # (6, Cout, Cin, 6): G g Gᵀ
    u = np.ascontiguousarray(full.transpose(0, 3, 1, 2).reshape(PLANES, f.shape[0], f.shape[1]))
    return u.astype(dtype)


__all__ = [
    "NR",
    "PLANES",
    "TILE",
    "chunk_floats",
    "chunk_panels",
    "convolve",
    "convolve_drive",
    "filter_transform",
]
