"""Compiled pooling kernels (kernels layer, numba): max and average pooling over NCHW.

Each output row is made in two passes: the rows its windows cover are combined (max or sum)
column by column into one padded row (contiguous loads that vectorize), then each output
takes the max or sum of its ``kw`` cells of that row — a pass with the stride fixed at
compile time for strides 1 and 2, so LLVM vectorizes its interleaved loads too. An input row
is read once per output row whose windows cover it (kh / sh times), nothing is copied or
padded beforehand. The older layout copied every plane into its stride phases first and made
``kw·sh + kh`` passes over them: a 3×3 stride-2 max pooling of 64×111×111 took 0.39 ms on an
AVX-512 core, this takes 0.22 (ONNX Runtime's NCHW kernel: 0.48).

A 3×3 stride-2 max pooling whose rows have 16 outputs or more makes each row in one pass of
16-lane blocks instead (openge.kernels.stride2_lanes.max3_s2_row: 64×111² → 55² 167 → 119
µs, one AVX-512 Zen 4 core), checking for NaN as it loads; a row that read one is made
again by the two passes with NaN propagating.

The kernels take a range of planes and release the GIL; their drive forms run on openge's
thread team (openge.kernels.team), which shares a pooling's planes (a strided pooling's
output rows in bands when it has few planes). Arguments follow the NumPy reference
(``openge.ops.pooling``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels import sync
from openge.kernels.stride2_lanes import LANES, max3_s2_row, reads_end

# The one-line helpers below (_take, _has_nan) are plain njit functions, not inline="always":
# numba's IR inlining deep-copies the callee's IR at every call site and redoes the callee's
# own inlining there, so these 14 + 3 call sites inside the inlined row and plane paths cost
# most of the module's cold compile (max_pool_rows 30 → 8 s, max_pool_range 44 → 21 s, one
# Zen 3 core). LLVM inlines them anyway, constants folded: the loops run as fast as before.


@njit(nogil=True, error_model="numpy")
def _take(m, v, average, clean):  # pragma: no cover - compiled
    """``m + v`` (a sum) or max(m, v) with NaN propagating as np.maximum; ``clean`` (the
    inputs are known to hold no NaN): a plain compare-and-select, which LLVM makes one max
    instruction, where the NaN-propagating form takes two compares and two selects."""
    if average:
        return m + v
    if clean:
        return v if v > m else m
    return (v if not (v <= m) else m) if m == m else m


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def _has_nan(xf, start, count):  # pragma: no cover - compiled
    """Whether ``xf[start : start + count]`` (flat) may hold a NaN: one vectorized pass, so
    that a max pooling runs its plain max loops on the (usual) inputs without NaN — 3×3
    stride-2 max pooling of 64×111×111 took 0.56 ms with NaN-propagating selects everywhere
    against 0.16 for the average's sums on an AVX2 Zen 3 core. The sum of ``v - v`` is NaN
    exactly when some ``v`` is NaN or infinite (an infinity then takes the NaN-propagating
    loops too: the same results); summed in any order (reassociation, nothing else relaxed),
    it is one subtract and one add per vector, where or-ing the comparisons' flags as 64-bit
    integers took eight instructions (a sixth of that pooling's time on an AVX-512 Zen 4)."""
    acc = xf.dtype.type(0)
    for i in range(count):
        v = xf[np.uint64(start + i)]
        acc += v - v
    return acc != acc


#: Output rows from which 3-wide stride-2 windows go through :func:`_across`'s pairs: from
#: 16 outputs a row the two contiguous passes beat the gather, below it (loop remainders)
#: the single loop stays (AVX-512 Zen 4, one core, max pooling with the NaN scan below, µs:
#: 64×111² → 55² 199 → 167, 192×56² → 27² 167 → 160; 13-14 wide rows unchanged, 256×27² 74
#: → 73, 480×28² 137 → 133).
PAIRS_MIN_WIDTH = 16


@njit(inline="always")
def _across(t, o, ob, ow, kw, stride, average, clean):  # pragma: no cover - compiled
    """``o[ob + ox]`` = the max or sum of ``t[ox·stride : ox·stride + kw]`` (``stride`` and
    ``kw`` compile-time constants where the caller passes literals: one fused loop for the
    common 2- and 3-wide windows). ``o`` is flat and ``ob`` an offset: no row view. 3-wide
    windows at stride 2 go through the 2·(ow + 1) floats past ``t``'s 2·ow + 1 (a scratch:
    another array argument cost each row a reference count's atomic pair): each column
    pair's max or sum and its first column, from one loop whose two loads LLVM makes one
    interleaved load, then each window as pair ``ox`` with the next pair's first column,
    contiguous, for rows of at least :data:`PAIRS_MIN_WIDTH` outputs. (Read straight from
    ``t``, the window's first column was a gather: 64×111² → 55², one AVX-512 Zen 4 core, a
    quarter of the pooling's time.) The same operations in the same order."""
    u = np.uint64
    if kw == 3 and stride == 2 and ow >= PAIRS_MIN_WIDTH:
        pm = u(2 * ow + 1)  # t's scratch: the pairs' maxima (or sums), then their firsts
        ev = pm + u(ow + 1)
        for ox in range(ow):
            q = u(2 * ox)
            first = t[q]
            t[pm + u(ox)] = _take(first, t[q + u(1)], average, clean)
            t[ev + u(ox)] = first
        t[ev + u(ow)] = t[u(2 * ow)]
        for ox in range(ow):
            o[ob + u(ox)] = _take(t[pm + u(ox)], t[ev + u(ox + 1)], average, clean)
    elif kw == 3:
        for ox in range(ow):
            q = u(ox * stride)
            m = _take(t[q], t[q + u(1)], average, clean)
            o[ob + u(ox)] = _take(m, t[q + u(2)], average, clean)
    elif kw == 2:
        for ox in range(ow):
            q = u(ox * stride)
            o[ob + u(ox)] = _take(t[q], t[q + u(1)], average, clean)
    else:
        for ox in range(ow):
            o[ob + u(ox)] = t[u(ox * stride)]
        for kx in range(1, kw):
            for ox in range(ow):
                q = ob + u(ox)
                o[q] = _take(o[q], t[u(ox * stride + kx)], average, clean)


#: Stride-1 poolings with output rows up to this wide take :func:`_pool_groups` (a 14-wide
#: row is all remainder for a 16-lane loop: 576×14×14 3×3 average 0.45 ms row by row, 0.31
#: grouped; at 28 wide the two tie).
GROUP_MAX_WIDTH = 24
#: Elements of a plane group's padded planes (a few L1-sized passes per tap).
GROUP_ELEMENTS = 16384


@njit(inline="always")
def _first_then_combine(dst, src, n, taps, step, average, clean):  # pragma: no cover
    """``dst[:n]`` = the sum or max over t < ``taps`` of ``src[t·step : t·step + n]``."""
    for p in range(n):
        dst[np.uint64(p)] = src[np.uint64(p)]
    for t in range(1, taps):
        part = src[t * step :]
        for p in range(n):
            q = np.uint64(p)
            dst[q] = _take(dst[q], part[q], average, clean)


@njit(inline="always")
def _pool_groups(x, y, div, kh, kw, top, left, average, first, stop):  # pragma: no cover
    """Stride-1 planes ``first`` to ``stop`` a group at a time: each plane copied into its
    padded form (pad cells -inf or 0, one slack row), the planes one after another, then the
    kw column taps and the kh row taps as long passes over the whole group (no tap reads
    across planes: each has its own padding); averages divided as they are copied out."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    hq, wq = oh + kh - 1, ow + kw - 1
    size = hq * wq + wq
    group = max(1, min(stop - first, GROUP_ELEMENTS // size))
    span = group * size
    rows = span - (kw - 1)
    length = span - (kh - 1) * wq - wq
    pad = 0.0 if average else -np.inf
    padded = np.full(span, pad, x.dtype)
    across = np.empty(span, x.dtype)
    acc = np.empty(span, x.dtype)
    v0, v1 = min(wq, max(0, left)), min(wq, max(0, left + w))
    xf = x.reshape(x.size)
    for g0 in range(first, stop, group):
        g1 = min(stop, g0 + group)
        for job in range(g0, g1):
            i = job // c
            plane = x[i, job - i * c]
            base = (job - g0) * size
            for u in range(hq):
                r = u - top
                if 0 <= r < h:
                    row = plane[r]
                    for v in range(v0, v1):
                        padded[np.uint64(base + u * wq + v)] = row[np.uint64(v - left)]
        if average or not _has_nan(xf, g0 * h * w, (g1 - g0) * h * w):
            _first_then_combine(across, padded, rows, kw, 1, average, True)  # the column taps
            _first_then_combine(acc, across, length, kh, wq, average, True)  # then the row taps
        else:
            _first_then_combine(across, padded, rows, kw, 1, average, False)
            _first_then_combine(acc, across, length, kh, wq, average, False)
        for job in range(g0, g1):
            i = job // c
            out = y[i, job - i * c]
            base = (job - g0) * size
            for oy in range(oh):
                orow = out[oy]
                start = base + oy * wq
                if average:
                    d = div[oy]
                    for ox in range(ow):
                        u = np.uint64(ox)
                        orow[u] = acc[np.uint64(start + ox)] / d[u]
                else:
                    for ox in range(ow):
                        orow[np.uint64(ox)] = acc[np.uint64(start + ox)]


@njit(inline="always")
def _edge_column(v, dst, h, w, ox, kw, left, average, clean):  # pragma: no cover - compiled
    """Column ``ox`` of every row of ``dst`` from the row results ``v``, with only the taps
    inside the row (its windows reach past the plane's side)."""
    for oy in range(h):
        base = oy * w
        m = v[np.uint64(base + max(0, ox - left))]
        for kx in range(max(0, left - ox) + 1, min(kw, w + left - ox)):
            m = _take(m, v[np.uint64(base + ox - left + kx)], average, clean)
        dst[np.uint64(base + ox)] = m


@njit(inline="always")
def _same_plane(src, dst, v, div, h, w, kh, kw, top, left, average, clean):  # pragma: no cover
    """One plane of :func:`_pool_same` (``src``, ``dst`` flat, ``v`` its row results)."""
    n = h * w
    bottom = kh - 1 - top
    right = kw - 1 - left
    full0, full1 = top, h - bottom  # output rows whose kh input rows all exist
    # rows: v[row oy] = op over ky of x[row oy - top + ky]
    if full1 > full0:
        lo, hi = full0 * w, full1 * w
        d = np.uint64(lo - top * w)
        for k in range(hi - lo):
            v[np.uint64(lo + k)] = src[d + np.uint64(k)]
        for ky in range(1, kh):
            d = np.uint64(lo + (ky - top) * w)
            for k in range(hi - lo):
                u = np.uint64(lo + k)
                v[u] = _take(v[u], src[d + np.uint64(k)], average, clean)
    for oy in range(h):
        if full0 <= oy < full1:
            continue
        r0, r1 = max(0, oy - top), min(h, oy - top + kh)
        for k in range(w):
            v[np.uint64(oy * w + k)] = src[np.uint64(r0 * w + k)]
        for r in range(r0 + 1, r1):
            for k in range(w):
                u = np.uint64(oy * w + k)
                v[u] = _take(v[u], src[np.uint64(r * w + k)], average, clean)
    # columns: flat where every tap stays in the plane, edge columns of each row after
    lo, hi = left, n - right
    for k in range(hi - lo):
        dst[np.uint64(lo + k)] = v[np.uint64(k)]
    for kx in range(1, kw):
        for k in range(hi - lo):
            u = np.uint64(lo + k)
            dst[u] = _take(dst[u], v[np.uint64(k + kx)], average, clean)
    for side in range(2):  # the left edge columns, then the right ones not yet done
        c0, c1 = (0, min(left, w)) if side == 0 else (max(left, w - right), w)
        for ox in range(c0, c1):
            _edge_column(v, dst, h, w, ox, kw, left, average, clean)
    if average:
        flat = div.reshape(n)
        for k in range(n):
            u = np.uint64(k)
            dst[u] = dst[u] / flat[u]


@njit(inline="always")
def _pool_same(x, y, div, kh, kw, top, left, average, first, stop):  # pragma: no cover
    """Stride-1 planes whose output has the input's size (inception's 3×3, pad 1) ``first``
    to ``stop``, as whole-plane passes with no copy: the rows' taps flat over the plane
    (rows whose windows leave it, one by one), the columns' taps flat over the plane (the
    columns whose windows leave a row recomputed after), averages divided flat; a max
    pooling's plane without NaN with plain max loops."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    n = h * w
    v = np.empty(n, x.dtype)
    for job in range(first, stop):
        i = job // c
        src = x[i, job - i * c].reshape(n)
        dst = y[i, job - i * c].reshape(n)
        if average or not _has_nan(src, 0, n):
            _same_plane(src, dst, v, div, h, w, kh, kw, top, left, average, True)
        else:
            _same_plane(src, dst, v, div, h, w, kh, kw, top, left, average, False)


@njit(inline="always")
def _rows_plane(xf, yf, df, t, job, geometry, average, clean, oy0, oy1):  # pragma: no cover
    """Output rows ``oy0`` to ``oy1`` of plane ``job`` (see :func:`_pool_rows`); ``geometry``
    = (H, W, OH, OW, kh, kw, sh, sw, top, left, v0, n); ``t`` ends in :func:`_across`'s
    scratch."""
    h, w, oh, ow, kh, kw, sh, sw, top, left, v0, n = geometry
    u = np.uint64
    tv = u(v0)
    for oy in range(oy0, oy1):
        r0 = max(0, oy * sh - top)
        r1 = min(h, oy * sh - top + kh)
        a = u(job * h * w + r0 * w + v0 - left)
        ww = u(w)
        if r1 - r0 == 3:
            for v in range(n):
                q = a + u(v)
                m = _take(xf[q], xf[q + ww], average, clean)
                t[tv + u(v)] = _take(m, xf[q + ww + ww], average, clean)
        elif r1 - r0 == 2:
            for v in range(n):
                q = a + u(v)
                t[tv + u(v)] = _take(xf[q], xf[q + ww], average, clean)
        else:
            for v in range(n):
                t[tv + u(v)] = xf[a + u(v)]
            for r in range(1, r1 - r0):
                b = a + u(r * w)
                for v in range(n):
                    q = tv + u(v)
                    t[q] = _take(t[q], xf[b + u(v)], average, clean)
        ob = u(job * oh * ow + oy * ow)
        if sw == 1 and kw == 3:
            _across(t, yf, ob, ow, 3, 1, average, clean)
        elif sw == 2 and kw == 3:
            _across(t, yf, ob, ow, 3, 2, average, clean)
        elif sw == 2 and kw == 2:
            _across(t, yf, ob, ow, 2, 2, average, clean)
        else:
            _across(t, yf, ob, ow, kw, sw, average, clean)
        if average:
            d = u(oy * ow)
            for ox in range(ow):
                yf[ob + u(ox)] /= df[d + u(ox)]


@njit(inline="always")
def _lanes_rows(xf, yf, df, t, job, geometry, oy0, oy1):  # pragma: no cover - compiled
    """Output rows ``oy0`` to ``oy1`` of plane ``job`` of a 3×3 stride-2 max pooling with at
    most one left padding column (see :func:`_rows_plane`, whose ``geometry`` this takes),
    each row in 16-lane blocks (openge.kernels.stride2_lanes.max3_s2_row), columns past the
    row's end as padding lanes; a row whose blocks would read outside ``x``, or that read a
    NaN, is made by the row path with NaN propagating instead. The same bits as the row
    path, without its scan for NaN first (which read the whole input once more)."""
    h, w, oh, ow = geometry[0:4]
    top, left = geometry[8:10]
    for oy in range(oy0, oy1):
        r0 = max(0, oy * 2 - top)
        rows = min(h, oy * 2 - top + 3) - r0
        start = job * h * w + r0 * w - left
        done = False
        if start >= 0 and reads_end(start + (rows - 1) * w, ow) <= xf.size:
            ob = job * oh * ow + oy * ow
            a1, a2, pad = start + w, start + 2 * w, left == 1
            done = max3_s2_row(xf, start, a1, a2, rows, yf, ob, ow, pad, w + left)
        if not done:
            _rows_plane(xf, yf, df, t, job, geometry, False, False, oy, oy + 1)


@njit(inline="always")
def _pool_rows(
    x, y, div, kh, kw, sh, sw, top, left, average, first, stop, oy0, oy1
):  # pragma: no cover - compiled
    """Output rows ``oy0`` to ``oy1`` of planes ``first`` to ``stop``, row by row: the input
    rows of each window combined into ``t`` (one padded row, its padding cells holding -inf
    or 0 throughout), then the column taps; averages divided by ``div``; a max pooling's
    band without NaN in its input rows with plain max loops, a 3×3 stride-2 max pooling's
    rows in 16-lane blocks where they fit (:func:`_lanes_rows`). ``x``, ``y`` and ``div`` are
    C-contiguous (the caller checks) and read through flat offsets: a row view costs an
    atomic reference count, and a 7-wide output row spent more time on its views than
    pooling (272×14×14 → 7×7, 3×3 stride-2 average, one AVX-512 core: 103 → 61 µs)."""
    h, w = x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    xf, yf, df = x.reshape(x.size), y.reshape(y.size), div.reshape(div.size)
    wt = (ow - 1) * sw + kw
    # the padded row, then 2·(ow + 1) floats of _across's scratch
    t = np.full(wt + 2 * (ow + 1), 0.0 if average else -np.inf, x.dtype)
    # row cell v holds input column v - left: cells [v0, v1) are the input's
    v0, v1 = min(wt, max(0, left)), min(wt, max(0, left + w))
    n = v1 - v0
    # the input rows the band's windows cover
    rlo = min(h, max(0, oy0 * sh - top))
    rhi = max(rlo, min(h, (oy1 - 1) * sh - top + kh))
    lanes = not average and (kh, kw, sh, sw) == (3, 3, 2, 2) and 0 <= left <= 1 and ow >= LANES
    for job in range(first, stop):
        geometry = (h, w, oh, ow, kh, kw, sh, sw, top, left, v0, n)
        if lanes:
            _lanes_rows(xf, yf, df, t, job, geometry, oy0, oy1)
        elif average or not _has_nan(xf, job * h * w + rlo * w, (rhi - rlo) * w):
            _rows_plane(xf, yf, df, t, job, geometry, average, True, oy0, oy1)
        else:
            _rows_plane(xf, yf, df, t, job, geometry, average, False, oy0, oy1)


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_rows(x, y, kh, kw, sh, sw, top, left, first, stop, oy0, oy1):  # pragma: no cover
    """Output rows ``oy0`` to ``oy1`` of planes ``first`` to ``stop`` (of N·C) of a max
    pooling, NCHW, row by row, without the GIL: windows of ``kh × kw`` at strides ``sh, sw``,
    the input padded by ``top`` rows and ``left`` columns with -inf (bottom and right padding
    follow from ``y``'s shape). NaN propagates as np.maximum; every window holds an input
    element (the caller checks). Any geometry; :func:`row_path` says when it is the one."""
    div = np.ones((1, 1), x.dtype)
    _pool_rows(x, y, div, kh, kw, sh, sw, top, left, False, first, stop, oy0, oy1)


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_rows(x, y, div, kh, kw, sh, sw, top, left, first, stop, oy0, oy1):  # pragma: no cover
    """Output rows ``oy0`` to ``oy1`` of planes ``first`` to ``stop`` of an average pooling,
    as :func:`max_pool_rows` with zero padding and sums (each column over the window's rows,
    then the columns, in the array dtype), divided by ``div``: the caller's (oh, ow) divisors
    (with or without the padding, or an override)."""
    _pool_rows(x, y, div, kh, kw, sh, sw, top, left, True, first, stop, oy0, oy1)


# 3×3 windows at stride 2 — the pooling of most CNNs — have entries of their own, compiled with
# the geometry as literals: LLVM unrolls the column taps and drops the per-row dispatch
# (272×14×14 → 7×7, one AVX-512 core: max 64 → 30 µs, average 61 → 28 µs). Separate entries,
# not a branch in the generic ones, so a model compiles only the loops its poolings use (the
# branch tripled the pooling module's cold compile).
def specialized(kh: int, kw: int, sh: int, sw: int) -> bool:
    """Whether this window and stride have the ``*_3x3s2`` entries."""
    return (kh, kw, sh, sw) == (3, 3, 2, 2)


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_rows_3x3s2(x, y, kh, kw, sh, sw, top, left, first, stop, oy0, oy1):  # pragma: no cover
    """:func:`max_pool_rows` for 3×3 windows at stride 2 only (ValueError otherwise)."""
    if not (kh == 3 and kw == 3 and sh == 2 and sw == 2):
        raise ValueError("max_pool_rows_3x3s2: the window must be 3x3 at stride 2")
    div = np.ones((1, 1), x.dtype)
    _pool_rows(x, y, div, 3, 3, 2, 2, top, left, False, first, stop, oy0, oy1)


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_rows_3x3s2(
    x, y, div, kh, kw, sh, sw, top, left, first, stop, oy0, oy1
):  # pragma: no cover
    """:func:`avg_pool_rows` for 3×3 windows at stride 2 only (ValueError otherwise)."""
    if not (kh == 3 and kw == 3 and sh == 2 and sw == 2):
        raise ValueError("avg_pool_rows_3x3s2: the window must be 3x3 at stride 2")
    _pool_rows(x, y, div, 3, 3, 2, 2, top, left, True, first, stop, oy0, oy1)


#: Planes reduced side by side when one window covers a whole plane (independent chains).
WHOLE_LANES = 16


@njit(inline="always")
def _pool_whole(x, y, div, average, first, stop):  # pragma: no cover - compiled
    """Planes ``first`` to ``stop`` whose one window covers the whole plane (a 1×1 output,
    as shufflenet's final 7×7 average): :data:`WHOLE_LANES` planes at a time, each reduced
    over its elements in row-major order in a chain of its own (the chains interleave, so
    the loop is not bound by one chain's latency); averages divided by ``div[0, 0]``."""
    n = x.shape[2] * x.shape[3]
    flat = x.reshape(x.shape[0] * x.shape[1], n)
    out = y.reshape(y.shape[0] * y.shape[1])
    acc = np.empty(WHOLE_LANES, x.dtype)
    for p0 in range(first, stop, WHOLE_LANES):
        lanes = min(WHOLE_LANES, stop - p0)
        for j in range(lanes):
            acc[j] = flat[p0 + j, 0]
        for k in range(1, n):
            for j in range(lanes):
                acc[j] = _take(acc[j], flat[p0 + j, k], average, False)
        for j in range(lanes):
            out[p0 + j] = acc[j] / div[0, 0] if average else acc[j]


@njit(inline="always")
def _plane_paths(x, y, div, kh, kw, sh, sw, top, left, average, first, stop):  # pragma: no cover
    """Planes ``first`` to ``stop`` as whole-plane passes (stride 1, or a window covering the
    whole plane); False (nothing done) for a geometry of the row-by-row path."""
    h, w = x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    if oh == 1 and ow == 1 and top == 0 and left == 0 and kh >= h and kw >= w:
        _pool_whole(x, y, div, average, first, stop)
        return True
    if sh == 1 and sw == 1 and (oh, ow) == (h, w) and top < kh and left < kw:
        _pool_same(x, y, div, kh, kw, top, left, average, first, stop)
        return True
    if sh == 1 and sw == 1 and ow <= GROUP_MAX_WIDTH:
        _pool_groups(x, y, div, kh, kw, top, left, average, first, stop)
        return True
    return False


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_range(x, y, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Max pooling of planes ``first`` to ``stop`` (of N·C), as :func:`max_pool_rows`:
    whole-plane passes for stride-1 poolings, else every output row by
    :func:`max_pool_rows` (called: its code is compiled once, not again in here)."""
    div = np.ones((1, 1), x.dtype)
    if not _plane_paths(x, y, div, kh, kw, sh, sw, top, left, False, first, stop):
        max_pool_rows(x, y, kh, kw, sh, sw, top, left, first, stop, 0, y.shape[2])


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_range(x, y, div, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Average pooling of planes ``first`` to ``stop``, as :func:`max_pool_range` with
    :func:`avg_pool_rows`' sums and divisors."""
    if not _plane_paths(x, y, div, kh, kw, sh, sw, top, left, True, first, stop):
        avg_pool_rows(x, y, div, kh, kw, sh, sw, top, left, first, stop, 0, y.shape[2])


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_drive(
    x, y, kh, kw, sh, sw, top, left, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`max_pool_range` on a thread of openge's team: ranges of the ``total`` planes
    claimed without the GIL (openge.kernels.sync)."""
    args = (x, y, kh, kw, sh, sw, top, left)
    return sync.drive(max_pool_range, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_drive(
    x, y, div, kh, kw, sh, sw, top, left, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`avg_pool_range` on a thread of openge's team, parts as :func:`max_pool_drive`."""
    args = (x, y, div, kh, kw, sh, sw, top, left)
    return sync.drive(avg_pool_range, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_rows_drive(
    x, y, kh, kw, sh, sw, top, left, first, stop, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`max_pool_rows` on a thread of openge's team: bands of the ``total`` output
    rows of planes ``first`` to ``stop`` (each thread pools the rows its convolution wrote,
    when that one was split by positions too), claimed without the GIL."""
    args = (x, y, kh, kw, sh, sw, top, left, first, stop)
    return sync.drive(max_pool_rows, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_rows_drive(
    x, y, div, kh, kw, sh, sw, top, left, first, stop, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`avg_pool_rows` on a thread of openge's team, parts as
    :func:`max_pool_rows_drive`."""
    args = (x, y, div, kh, kw, sh, sw, top, left, first, stop)
    return sync.drive(avg_pool_rows, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_rows_3x3s2_drive(
    x, y, kh, kw, sh, sw, top, left, first, stop, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`max_pool_rows_3x3s2` on a thread of openge's team, as :func:`max_pool_rows_drive`."""
    args = (x, y, kh, kw, sh, sw, top, left, first, stop)
    return sync.drive(max_pool_rows_3x3s2, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_rows_3x3s2_drive(
    x, y, div, kh, kw, sh, sw, top, left, first, stop, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`avg_pool_rows_3x3s2` on a thread of openge's team, as :func:`max_pool_rows_drive`."""
    args = (x, y, div, kh, kw, sh, sw, top, left, first, stop)
    return sync.drive(avg_pool_rows_3x3s2, args, total, ctl, signal, worker, gen, spins)


# Whole planes per part: the row kernels' drive forms below share a pooling's planes among the
# team's threads, each part every output row of its planes. The ``*_rows_drive`` forms above
# share output rows in bands of every plane instead; there two threads write the same output
# plane at each band boundary, one cache line per plane passed between the cores (128 × 55²
# → 27² 3×3 stride-2 max pooling, AVX-512 Zen 4 VM, two threads: 100 µs in bands, 66 µs by
# planes, one thread 107 µs). They stay for poolings of few planes (openge.ops.pooling).


@njit(cache=True, nogil=True, error_model="numpy")
def _max_rows_planes(x, y, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Every output row of planes ``first`` to ``stop`` (:func:`max_pool_rows`)."""
    max_pool_rows(x, y, kh, kw, sh, sw, top, left, first, stop, 0, y.shape[2])


@njit(cache=True, nogil=True, error_model="numpy")
def _avg_rows_planes(x, y, div, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Every output row of planes ``first`` to ``stop`` (:func:`avg_pool_rows`)."""
    avg_pool_rows(x, y, div, kh, kw, sh, sw, top, left, first, stop, 0, y.shape[2])


@njit(cache=True, nogil=True, error_model="numpy")
def _max_3x3s2_planes(x, y, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Every output row of planes ``first`` to ``stop`` (:func:`max_pool_rows_3x3s2`)."""
    max_pool_rows_3x3s2(x, y, kh, kw, sh, sw, top, left, first, stop, 0, y.shape[2])


@njit(cache=True, nogil=True, error_model="numpy")
def _avg_3x3s2_planes(x, y, div, kh, kw, sh, sw, top, left, first, stop):  # pragma: no cover
    """Every output row of planes ``first`` to ``stop`` (:func:`avg_pool_rows_3x3s2`)."""
    avg_pool_rows_3x3s2(x, y, div, kh, kw, sh, sw, top, left, first, stop, 0, y.shape[2])


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_rows_planes_drive(
    x, y, kh, kw, sh, sw, top, left, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`max_pool_rows` on a thread of openge's team: ranges of the ``total`` planes,
    every output row of each, claimed without the GIL."""
    args = (x, y, kh, kw, sh, sw, top, left)
    return sync.drive(_max_rows_planes, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_rows_planes_drive(
    x, y, div, kh, kw, sh, sw, top, left, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`avg_pool_rows` on a thread of openge's team, parts as
    :func:`max_pool_rows_planes_drive`."""
    args = (x, y, div, kh, kw, sh, sw, top, left)
    return sync.drive(_avg_rows_planes, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_rows_3x3s2_planes_drive(
    x, y, kh, kw, sh, sw, top, left, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`max_pool_rows_3x3s2` on a thread of openge's team, parts as
    :func:`max_pool_rows_planes_drive`."""
    args = (x, y, kh, kw, sh, sw, top, left)
    return sync.drive(_max_3x3s2_planes, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_rows_3x3s2_planes_drive(
    x, y, div, kh, kw, sh, sw, top, left, total, ctl, signal, worker, gen, spins
):  # pragma: no cover - compiled
    """:func:`avg_pool_rows_3x3s2` on a thread of openge's team, parts as
    :func:`max_pool_rows_planes_drive`."""
    args = (x, y, div, kh, kw, sh, sw, top, left)
    return sync.drive(_avg_3x3s2_planes, args, total, ctl, signal, worker, gen, spins)


def row_path(
    h: int, w: int, oh: int, ow: int, kh: int, kw: int, sh: int, sw: int, top: int, left: int
) -> bool:
    """True when a pooling of these dims takes the row-by-row path (not a stride-1
    whole-plane pass, nor one window over the whole plane): its output rows can be shared
    among threads in bands."""
    if oh == 1 and ow == 1 and top == 0 and left == 0 and kh >= h and kw >= w:
        return False
    if sh == 1 and sw == 1:
        same = (oh, ow) == (h, w) and top < kh and left < kw
        return not same and ow > GROUP_MAX_WIDTH
    return True


def scratch_bytes(oh: int, ow: int, kh: int, kw: int, sh: int, sw: int, itemsize: int) -> int:
    """Bytes of one work item's scratch, at most (the caller bounds it): one padded row for
    the row-by-row path; for stride 1 also a plane of row results (the same-size path) or a
    group's three padded planes (at least one plane, however large)."""
    row = (ow - 1) * sw + kw
    if sh != 1 or sw != 1:
        return row * itemsize
    plane = (oh + kh - 1) * (ow + kw - 1) + ow + kw - 1
    return max(row, oh * ow, 3 * max(plane, GROUP_ELEMENTS)) * itemsize


__all__ = [
    "GROUP_ELEMENTS",
    "GROUP_MAX_WIDTH",
    "WHOLE_LANES",
    "avg_pool_drive",
    "avg_pool_range",
    "avg_pool_rows",
    "avg_pool_rows_3x3s2",
    "avg_pool_rows_3x3s2_drive",
    "avg_pool_rows_3x3s2_planes_drive",
    "avg_pool_rows_drive",
    "avg_pool_rows_planes_drive",
    "max_pool_drive",
    "max_pool_range",
    "max_pool_rows",
    "max_pool_rows_3x3s2",
    "max_pool_rows_3x3s2_drive",
    "max_pool_rows_3x3s2_planes_drive",
    "max_pool_rows_drive",
    "max_pool_rows_planes_drive",
    "row_path",
    "scratch_bytes",
    "specialized",
]
