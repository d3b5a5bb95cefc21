"""Compiled depthwise convolution with a fused activation (kernels layer, numba); also
grouped and full convolutions with few input channels per group (a network's first layer), and
the epilogue of a 1×1 convolution's GEMM block (:func:`block_epilogue`: openge.ops.conv_pointwise
runs the GEMM one block of output columns at a time and this kernel adds the bias, an optional
residual and the activation while the block is in cache).

One pass per output row: the row is accumulated in a small buffer that stays in L1 (the bias,
then every filter tap in row-major order, as :func:`openge.kernels.conv.depthwise_nchw`), then
the activation is applied while the row is stored. Column strides above 1 read a per-plane copy
of the input split into column phases, so every tap's inner loop reads contiguous memory and
vectorizes (a strided read does not) — except column stride 2 with 3 filter columns, whose
three taps per row LLVM vectorizes as interleaved loads straight from the input rows
(:func:`_stride2_planes`: the copy cost as much as the taps).

Activations (``act``): :data:`NONE`, :data:`RELU`, :data:`CLIP` (``min(max(v, lo), hi)``, NaN
propagating as ``np.maximum``/``np.minimum``: ReLU6 and Clip), :data:`HARD_SWISH`
(``v * min(max(v + 3, 0), 6) / 6``), :data:`HARD_SIGMOID` (``min(max(lo * v + hi, 0), 1)``),
:data:`SILU` (``v * sigmoid(v)``, float32 only: openge.kernels.mathf32), :data:`X_HARD_SIGMOID`
(``v * min(max(lo * v + hi, 0), 1)``: ONNX's HardSwish, ``x·HardSigmoid(x, 1/6, 1/2)``),
:data:`SIGMOID` (float32 only, as SILU).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels import sync
from openge.kernels.cl_blocks import cl_taps, transpose8
from openge.kernels.mathf32 import sigmoid32, silu32
from openge.kernels.pairs import split_row
from openge.kernels.stride2_lanes import interior_columns, reads_end, row_fits, taps3_s2_row

NONE, RELU, CLIP, HARD_SWISH, HARD_SIGMOID, SILU, X_HARD_SIGMOID, SIGMOID = 0, 1, 2, 3, 4, 5, 6, 7


# _max, _min and _relu are plain njit functions, not inline="always": numba's IR inlining copies
# the callee at every call site, and these sit 30 times inside the inlined activation loops
# (a cold compile of the row, flat and channels-last kernels 26.6 → 20.4 s on a Zen 3 core).
# LLVM inlines them anyway: the same loops, the same bits.
@njit(nogil=True, error_model="numpy")
def _max(a, b):  # pragma: no cover - compiled
    return a if (a > b or a != a) else b


@njit(nogil=True, error_model="numpy")
def _min(a, b):  # pragma: no cover - compiled
    return a if (a < b or a != a) else b


@njit(nogil=True, error_model="numpy")
def _relu(v, zero):  # pragma: no cover - compiled
    return v if not (v < zero) else v * zero


@njit(inline="always")
def _hard_swish(v, zero, three, six):  # pragma: no cover - compiled
    return v * (_min(_max(v + three, zero), six) / six)


@njit(inline="always")
def _hard_sigmoid(v, lo, hi, zero, one):  # pragma: no cover - compiled
    return _min(_max(lo * v + hi, zero), one)


@njit(inline="always")
def activate_row(acc, out, ow, act, lo, hi):  # pragma: no cover - compiled
    """``out[:ow] = act(acc[:ow])``, one branch-free loop per activation."""
    zero, one = acc.dtype.type(0), acc.dtype.type(1)
    three, six = acc.dtype.type(3), acc.dtype.type(6)
    if act == NONE:
        for q in range(ow):
            out[np.uint64(q)] = acc[np.uint64(q)]
    elif act == RELU:
        for q in range(ow):
            out[np.uint64(q)] = _relu(acc[np.uint64(q)], zero)
    elif act == CLIP:
        for q in range(ow):
            out[np.uint64(q)] = _min(_max(acc[np.uint64(q)], lo), hi)
    elif act == HARD_SWISH:
        for q in range(ow):
            out[np.uint64(q)] = _hard_swish(acc[np.uint64(q)], zero, three, six)
    elif act == HARD_SIGMOID:
        for q in range(ow):
            out[np.uint64(q)] = _hard_sigmoid(acc[np.uint64(q)], lo, hi, zero, one)
    elif act == X_HARD_SIGMOID:
        for q in range(ow):
            v = acc[np.uint64(q)]
            out[np.uint64(q)] = v * _hard_sigmoid(v, lo, hi, zero, one)
    elif act == SIGMOID:  # float32 only (the caller checks)
        for q in range(ow):
            out[np.uint64(q)] = sigmoid32(acc[np.uint64(q)])
    else:  # SILU, float32 only (the caller checks)
        for q in range(ow):
            out[np.uint64(q)] = silu32(acc[np.uint64(q)])


@njit(inline="always")
def bias_activate_row(row, b, n, act, lo, hi):  # pragma: no cover - compiled
    """``row[:n] = act(row[:n] + b)`` in place, in one pass (the same values as adding the
    bias into a buffer and :func:`activate_row` from it, without the buffer's second pass).
    One array read and written: LLVM then needs no overlap check to vectorize."""
    zero, one = row.dtype.type(0), row.dtype.type(1)
    three, six = row.dtype.type(3), row.dtype.type(6)
    if act == NONE:
        for q in range(n):
            row[np.uint64(q)] = row[np.uint64(q)] + b
    elif act == RELU:
        for q in range(n):
            row[np.uint64(q)] = _relu(row[np.uint64(q)] + b, zero)
    elif act == CLIP:
        for q in range(n):
            row[np.uint64(q)] = _min(_max(row[np.uint64(q)] + b, lo), hi)
    elif act == HARD_SWISH:
        for q in range(n):
            row[np.uint64(q)] = _hard_swish(row[np.uint64(q)] + b, zero, three, six)
    elif act == HARD_SIGMOID:
        for q in range(n):
            row[np.uint64(q)] = _hard_sigmoid(row[np.uint64(q)] + b, lo, hi, zero, one)
    elif act == X_HARD_SIGMOID:
        for q in range(n):
            v = row[np.uint64(q)] + b
            row[np.uint64(q)] = v * _hard_sigmoid(v, lo, hi, zero, one)
    elif act == SIGMOID:  # float32 only (the caller checks)
        for q in range(n):
            row[np.uint64(q)] = sigmoid32(row[np.uint64(q)] + b)
    else:  # SILU, float32 only (the caller checks)
        for q in range(n):
            row[np.uint64(q)] = silu32(row[np.uint64(q)] + b)


#: Output grid elements accumulated at a time (16 KiB of float32: stays in L1 across the taps).
CHUNK = 4096


@njit(inline="always")
def _fill(buf, plane, sh, sw, top, left, hq, wq):  # pragma: no cover - compiled
    """The interior of the zero-padded stride phases of ``plane`` (the padding cells of
    ``buf`` are zero already and stay so). Phase (a, b) holds padded rows a, a + sh, … and
    columns b, b + sw, …; padded row u·sh + a is input row u·sh + a - top, likewise for
    columns."""
    h, wd = plane.shape
    for a in range(sh):
        for u in range(hq):
            r = u * sh + a - top
            if r < 0 or r >= h:
                continue
            row = plane[r]
            base = u * wq
            if sw == 1:
                ph = buf[a]
                v0, v1 = max(0, left), min(wq, wd + left)
                for v in range(v0, v1):
                    ph[np.uint64(base + v)] = row[np.uint64(v - left)]
            elif sw == 2:  # both column phases in one pass (openge.kernels.pairs)
                split_row(row, 0, wd, left, buf[a * 2], buf[a * 2 + 1], base, wq)
            else:
                for bq in range(sw):
                    ph = buf[a * sw + bq]
                    v0 = max(0, (left - bq + sw - 1) // sw)
                    v1 = min(wq, (wd + left - bq + sw - 1) // sw)
                    for v in range(v0, v1):
                        ph[np.uint64(base + v)] = row[np.uint64(v * sw + bq - left)]


@njit(inline="always", fastmath={"contract"})
def _s2_column(xf, pb, h, wd, r0, dh, kh, q, wk, b):  # pragma: no cover - compiled
    """One output of :func:`_stride2_planes` with every tap's bounds checked: ``b`` plus, per
    filter row (input row ``r0 + ky·dh`` of the plane at flat ``pb``), its three taps at
    columns ``q`` … ``q + 2``, a padding tap adding ``w · 0`` — the order of the row loops."""
    zero = xf.dtype.type(0)
    s = b
    for ky in range(kh):
        r = r0 + ky * dh
        valid = 0 <= r < h
        base = pb + r * wd
        v0 = xf[base + q] if valid and 0 <= q < wd else zero
        v1 = xf[base + q + 1] if valid and 0 <= q + 1 < wd else zero
        v2 = xf[base + q + 2] if valid and 0 <= q + 2 < wd else zero
        s = s + wk[ky, 0] * v0 + wk[ky, 1] * v1 + wk[ky, 2] * v2
    return s


@njit(inline="always", fastmath={"contract"})
def _stride2_lanes(
    x, w, bias, y, sh, dh, top, left, act, lo, hi, first, stop, j1
):  # pragma: no cover
    """:func:`_stride2_planes` for 3 filter rows with at most one left padding column and
    the output columns before ``j1`` (whose taps end inside the row) at least LANES: each
    output row's columns [0, j1) in blocks of 16 lanes (openge.kernels.stride2_lanes), a
    left padding column as a zeroed lane, the columns from ``j1`` and rows whose blocks
    would read outside ``x`` one by one with bounds; the activation then over the whole
    plane in one pass (bias 0 added: ``v + 0`` is ``v``). ``x`` and ``y`` C-contiguous."""
    c, h, wd = x.shape[1], x.shape[2], x.shape[3]
    cy, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    coutg = cy // c
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    nx = x.size
    pad = left == 1
    zero = y.dtype.type(0)
    for job in range(first, stop):
        i = job // cy
        co = job - i * cy
        pb = (i * c + co // coutg) * h * wd
        yb = job * oh * ow
        wk = w[co, 0]
        b = bias[co]
        for oy in range(oh):
            yr = yb + oy * ow
            r0 = oy * sh - top
            ok0, ok1, ok2 = 0 <= r0 < h, 0 <= r0 + dh < h, 0 <= r0 + 2 * dh < h
            a0 = pb + r0 * wd - left
            a1, a2 = a0 + dh * wd, a0 + 2 * dh * wd
            low = a0 if ok0 else (a1 if ok1 else a2)
            high = a2 if ok2 else (a1 if ok1 else a0)
            if (ok0 or ok1 or ok2) and low >= 0 and reads_end(high, j1) <= nx:
                taps3_s2_row(
                    xf, a0, a1, a2, ok0, ok1, ok2,
                    wk[0, 0], wk[0, 1], wk[0, 2], wk[1, 0], wk[1, 1], wk[1, 2],
                    wk[2, 0], wk[2, 1], wk[2, 2],
                    yf, yr, b, j1, pad,
                )  # fmt: skip
                rest = j1
            else:
                rest = 0
            for j in range(rest, ow):
                yf[yr + j] = _s2_column(xf, pb, h, wd, r0, dh, 3, 2 * j - left, wk, b)
        bias_activate_row(yf[yb : yb + oh * ow], zero, oh * ow, act, lo, hi)


@njit(inline="always", fastmath={"contract"})
def _stride2_planes(x, w, bias, y, sh, dh, top, left, act, lo, hi, first, stop):  # pragma: no cover
    """Output planes ``first`` to ``stop`` of a depthwise convolution (one input channel per
    group) with column stride 2, no column dilation and 3 filter columns, read straight from
    the input rows: per output row, each filter row adds its taps in one loop over the
    columns whose windows lie inside the row — ``row[2j]``, ``row[2j + 1]``, ``row[2j + 2]``,
    which LLVM vectorizes as interleaved loads — and the border columns are summed apart,
    with bounds. No padded copy split into column phases: that copy cost as much
    as the taps (96 × 112² → 56²: 254 µs of 498). Sums in :func:`_planes`' order (bias, then
    taps row-major), the padding's taps included as ``w · 0``: the same values. (5 filter
    columns keep the phases: five interleaved loads ran 1.6-2.8x slower.)"""
    kh = w.shape[2]
    c, h, wd = x.shape[1], x.shape[2], x.shape[3]
    cy, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    coutg = cy // c
    u = np.uint64
    # output columns whose taps 2j - left … 2j - left + 2 all lie in [0, wd); the max tells
    # LLVM j0 ≥ 0, without which the loop below did not vectorize (2x slower)
    j0 = min(ow, max(0, (left + 1) // 2))
    j1 = max(j0, interior_columns(wd, left, ow))
    if row_fits(kh, left, j1) and x.flags.c_contiguous and y.flags.c_contiguous:
        _stride2_lanes(x, w, bias, y, sh, dh, top, left, act, lo, hi, first, stop, j1)
        return
    acc = np.empty(ow, y.dtype)
    zero = acc.dtype.type(0)
    d = 2 * j0 - left
    ne = j0 + ow - j1
    edge = np.empty(ne, y.dtype)  # the border columns' sums, kept apart from acc (their
    # writes next to the loop over acc kept LLVM from vectorizing it: 1.3x slower)
    for job in range(first, stop):
        i = job // cy
        co = job - i * cy
        plane = x[i, co // coutg]
        wk = w[co, 0]
        b = bias[co]
        for oy in range(oh):
            for j in range(ow):
                acc[j] = b
            for e in range(ne):
                edge[e] = b
            for ky in range(kh):
                w0, w1, w2 = wk[ky, 0], wk[ky, 1], wk[ky, 2]
                r = oy * sh + ky * dh - top
                valid = 0 <= r < h
                for e in range(ne):
                    j = e if e < j0 else j1 + e - j0
                    q = 2 * j - left
                    v0 = plane[r, q] if valid and 0 <= q < wd else zero
                    v1 = plane[r, q + 1] if valid and 0 <= q + 1 < wd else zero
                    v2 = plane[r, q + 2] if valid and 0 <= q + 2 < wd else zero
                    edge[e] = edge[e] + w0 * v0 + w1 * v1 + w2 * v2
                if not valid:  # a padding row: its taps add w · 0
                    for j in range(j0, j1):
                        acc[j] = acc[j] + w0 * zero + w1 * zero + w2 * zero
                    continue
                row = plane[r]
                for j in range(j1 - j0):
                    q = u(d + 2 * j)
                    acc[u(j0 + j)] = (
                        acc[u(j0 + j)] + w0 * row[q] + w1 * row[q + u(1)] + w2 * row[q + u(2)]
                    )
            for e in range(ne):
                acc[e if e < j0 else j1 + e - j0] = edge[e]
            activate_row(acc, y[i, co, oy], ow, act, lo, hi)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _planes(x, w, bias, y, s, d, pads, act, lo, hi, first, stop):  # pragma: no cover
    """Output planes ``first`` to ``stop`` (of N·Cout) of :func:`depthwise_act`, with one
    scratch: the padding cells are the same for every plane, so the phases are zeroed once and
    each plane rewrites only the interior; consecutive output channels of one group share
    their input planes' phases."""
    (sh, sw), (dh, dw), (top, left) = s, d, pads
    cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    if sw == 2 and dw == 1 and cg == 1 and kw == 3:
        _stride2_planes(x, w, bias, y, sh, dh, top, left, act, lo, hi, first, stop)
        return
    cy, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    coutg = cy // (x.shape[1] // cg)  # output channels per group
    hq = oh + (kh - 1) * dh // sh
    wq = ow + (kw - 1) * dw // sw
    size = hq * wq + wq  # + one row of slack read by the last row's scratch columns
    rows = max(1, min(oh, CHUNK // wq))
    # per tap column: its phase and offset within the phase row
    cphase = np.empty(kw, np.int64)
    coff = np.empty(kw, np.int64)
    for kx in range(kw):
        cphase[kx] = kx * dw % sw
        coff[kx] = kx * dw // sw
    bufs = np.zeros((cg, sh * sw, size), x.dtype)
    acc = np.empty(rows * wq, y.dtype)
    filled = -1
    for job in range(first, stop):
        i = job // cy
        co = job - i * cy
        grp = co // coutg
        if i * cy + grp != filled:
            for j in range(cg):
                _fill(bufs[j], x[i, grp * cg + j], sh, sw, top, left, hq, wq)
            filled = i * cy + grp
        b = bias[co]
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            length = (r1 - r0) * wq
            for p in range(length):
                acc[np.uint64(p)] = b
            for jk in range(cg * kh):
                j = jk // kh
                ky = jk - j * kh
                buf = bufs[j]
                wk = w[co, j]
                prow = (ky * dh % sh) * sw
                base = (r0 + ky * dh // sh) * wq
                if kw == 3:
                    p0 = buf[prow + cphase[0], base + coff[0] :]
                    p1 = buf[prow + cphase[1], base + coff[1] :]
                    p2 = buf[prow + cphase[2], base + coff[2] :]
                    w0, w1, w2 = wk[ky, 0], wk[ky, 1], wk[ky, 2]
                    for p in range(length):
                        q = np.uint64(p)
                        acc[q] = acc[q] + w0 * p0[q] + w1 * p1[q] + w2 * p2[q]
                elif kw == 5:
                    p0 = buf[prow + cphase[0], base + coff[0] :]
                    p1 = buf[prow + cphase[1], base + coff[1] :]
                    p2 = buf[prow + cphase[2], base + coff[2] :]
                    p3 = buf[prow + cphase[3], base + coff[3] :]
                    p4 = buf[prow + cphase[4], base + coff[4] :]
                    w0, w1, w2, w3, w4 = wk[ky, 0], wk[ky, 1], wk[ky, 2], wk[ky, 3], wk[ky, 4]
                    for p in range(length):
                        q = np.uint64(p)
                        acc[q] = (
                            acc[q] + w0 * p0[q] + w1 * p1[q] + w2 * p2[q] + w3 * p3[q] + w4 * p4[q]
                        )
                else:
                    for kx in range(kw):
                        pk = buf[prow + cphase[kx], base + coff[kx] :]
                        wv = wk[ky, kx]
                        for p in range(length):
                            q = np.uint64(p)
                            acc[q] += wv * pk[q]
            for oy in range(r0, r1):
                activate_row(acc[(oy - r0) * wq :], y[i, co, oy], ow, act, lo, hi)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_act(x, w, bias, y, sh, sw, dh, dw, top, left, act, lo, hi):  # pragma: no cover
    """Convolution ``x`` (N, C, H, W) * ``w`` (Cout, Cg, kh, kw) + ``bias`` (Cout,) into
    ``y`` (N, Cout, oh, ow) with groups = C / Cg (depthwise: Cg = 1, any channel multiplier
    Cout / C), then ``act``, in the calling thread without the GIL (openge's threads share
    the planes through :func:`depthwise_act_drive`). Output channel o reads input channels
    g·Cg … g·Cg + Cg - 1, g = o // (Cout / groups); its sum starts at the bias, then adds
    input channel by channel, taps row-major.

    Per plane, the zero-padded input is copied into its stride phases, each flattened with
    row length ``wq = ow + (kw-1)*dw // sw``: a tap then reads one contiguous run of a phase
    for a whole block of output rows laid out with the same row length (the ``wq - ow``
    extra columns per row are scratch, never stored), so its loop vectorizes along the block
    (depthwise with column stride 2 and 3 filter columns reads the input rows in place
    instead: :func:`_stride2_planes`, the same values). One pass per filter row adds its kw
    taps (3 and 5 unrolled); the bias starts each sum and taps add in row-major order
    (multiply-adds may fuse: within float tolerance, not bit for bit). ``lo``/``hi`` are the
    activation's parameters in y's dtype (CLIP bounds, HARD_SIGMOID's alpha/beta)."""
    jobs = y.shape[0] * y.shape[1]
    _planes(x, w, bias, y, (sh, sw), (dh, dw), (top, left), act, lo, hi, 0, jobs)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_act_drive(
    x, w, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, total, ctl, signal, worker, gen, spins
):  # pragma: no cover
    """:func:`depthwise_act` on a thread of openge's team (openge.kernels.team): output
    planes claimed part by part (openge.kernels.sync), without the GIL."""
    args = (x, w, bias, y, (sh, sw), (dh, dw), (top, left), act, lo, hi)
    return sync.drive(_planes, args, total, ctl, signal, worker, gen, spins)


# ----- stride 1, "same" padding: flat planes ---------------------------------------------


@njit(inline="always")
def _clip_bounds(act, lo, hi, dtype):  # pragma: no cover - compiled
    """(lo, hi) of the clamp the flat kernel's main loop applies: the activation itself for
    NONE (±inf), RELU (0, inf) and CLIP; none (±inf) for the others (a second pass)."""
    inf = dtype.type(np.inf)
    if act == RELU:
        return dtype.type(0), inf
    if act == CLIP:
        return lo, hi
    return -inf, inf


@njit(inline="always")
def _weights5(w, co, kx):  # pragma: no cover - compiled
    """Column ``kx`` of output channel ``co``'s 5×5 filter, as a tuple (registers)."""
    return w[co, 0, 0, kx], w[co, 0, 1, kx], w[co, 0, 2, kx], w[co, 0, 3, kx], w[co, 0, 4, kx]


@njit(inline="always", fastmath={"contract"})
def _column5(buf, q, r1, r2, r3, r4, k):  # pragma: no cover - compiled
    """One filter column's five taps ``k`` of a 5×5 flat convolution, rows ``r1``… apart."""
    s = k[0] * buf[q] + k[1] * buf[q + r1] + k[2] * buf[q + r2]
    return s + k[3] * buf[q + r3] + k[4] * buf[q + r4]


@njit(inline="always", fastmath={"contract"})
def _flat_plane(buf, masks, w, co, b, y, yb, hw, wd, dh, dw, lo, hi):  # pragma: no cover
    """``y[yb : yb + hw]`` = clamp(bias + the taps, lo, hi) for one plane whose zero-margined
    copy is ``buf``. Tap (ky, kx) of output p reads ``buf[p + ky·dh·wd + kx·dw]``;
    ``masks[kx·hw + p]`` says whether that read is inside its row (a read past the row's end
    lands in the neighbouring row: replaced by zero, the padding it stands for, whatever the
    value there). Flat uint64 offsets, no array views: a view costs an atomic reference
    count, which on a 7×7 plane is as much as its arithmetic."""
    kh, kw = w.shape[2], w.shape[3]
    zero = y.dtype.type(0)
    u = np.uint64
    n1, n2 = u(hw), u(2 * hw)
    if kh == 3 and kw == 3:
        r1, r2, c1, c2 = u(dh * wd), u(2 * dh * wd), u(dw), u(2 * dw)
        w00, w01, w02 = w[co, 0, 0, 0], w[co, 0, 0, 1], w[co, 0, 0, 2]
        w10, w11, w12 = w[co, 0, 1, 0], w[co, 0, 1, 1], w[co, 0, 1, 2]
        w20, w21, w22 = w[co, 0, 2, 0], w[co, 0, 2, 1], w[co, 0, 2, 2]
        for p in range(hw):
            q = u(p)
            s0 = w00 * buf[q] + w10 * buf[q + r1] + w20 * buf[q + r2]
            s1 = w01 * buf[q + c1] + w11 * buf[q + r1 + c1] + w21 * buf[q + r2 + c1]
            s2 = w02 * buf[q + c2] + w12 * buf[q + r1 + c2] + w22 * buf[q + r2 + c2]
            v = b + (s0 if masks[q] else zero)
            v = v + (s1 if masks[q + n1] else zero) + (s2 if masks[q + n2] else zero)
            y[u(yb) + q] = _min(_max(v, lo), hi)
        return
    if kh == 5 and kw == 5:
        n3, n4 = u(3 * hw), u(4 * hw)
        r1, r2, r3, r4 = u(dh * wd), u(2 * dh * wd), u(3 * dh * wd), u(4 * dh * wd)
        c1, c2, c3, c4 = u(dw), u(2 * dw), u(3 * dw), u(4 * dw)
        a = _weights5(w, co, 0)
        b_ = _weights5(w, co, 1)
        d = _weights5(w, co, 2)
        e = _weights5(w, co, 3)
        f = _weights5(w, co, 4)
        for p in range(hw):
            q = u(p)
            s0 = _column5(buf, q, r1, r2, r3, r4, a)
            s1 = _column5(buf, q + c1, r1, r2, r3, r4, b_)
            s2 = _column5(buf, q + c2, r1, r2, r3, r4, d)
            s3 = _column5(buf, q + c3, r1, r2, r3, r4, e)
            s4 = _column5(buf, q + c4, r1, r2, r3, r4, f)
            v = b + (s0 if masks[q] else zero) + (s1 if masks[q + n1] else zero)
            v = v + (s2 if masks[q + n2] else zero) + (s3 if masks[q + n3] else zero)
            v = v + (s4 if masks[q + n4] else zero)
            y[u(yb) + q] = _min(_max(v, lo), hi)
        return
    for p in range(hw):
        y[u(yb + p)] = b
    for ky in range(kh):
        base = ky * dh * wd
        for kx in range(kw):
            ok, nk = u(base + kx * dw), u(kx * hw)
            wv = w[co, 0, ky, kx]
            for p in range(hw):
                q = u(p)
                t = wv * buf[q + ok]
                y[u(yb) + q] = y[u(yb) + q] + (t if masks[q + nk] else zero)
    for p in range(hw):
        q = u(yb + p)
        y[q] = _min(_max(y[q], lo), hi)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _flat_planes(
    x, w, bias, y, masks, c, h, wd, dh, dw, top, left, act, lo, hi, first, stop
):  # pragma: no cover
    """Output planes ``first`` to ``stop`` (of N·Cout) of :func:`depthwise_flat_act`."""
    hw = h * wd
    cy = bias.shape[0]
    mult = cy // c
    kh, kw = w.shape[2], w.shape[3]
    front = top * wd + left
    back = ((kh - 1) * dh - top) * wd + (kw - 1) * dw - left
    buf = np.zeros(front + hw + back, x.dtype)  # the margins stay zero: the padding rows
    clo, chi = _clip_bounds(act, lo, hi, y.dtype)
    u = np.uint64
    filled = -1
    for job in range(first, stop):
        i = job // cy
        co = job - i * cy
        plane = i * c + co // mult
        if plane != filled:
            for p in range(hw):
                buf[u(front + p)] = x[u(plane * hw + p)]
            filled = plane
        _flat_plane(buf, masks, w, co, bias[co], y, job * hw, hw, wd, dh, dw, clo, chi)
        if act != NONE and act != RELU and act != CLIP:
            out = y[job * hw : job * hw + hw]
            activate_row(out, out, hw, act, lo, hi)


def flat_masks(h: int, wd: int, kw: int, dw: int, left: int) -> np.ndarray:
    """For :func:`depthwise_flat_act`: entry kx·H·W + p says whether tap column kx of flat
    output p reads inside the input's row (False: a padding column)."""
    cols = np.arange(wd)[None, :] + (np.arange(kw) * dw - left)[:, None]
    inside = (cols >= 0) & (cols < wd)
    return np.ascontiguousarray(np.repeat(inside[:, None, :], h, axis=1).reshape(-1))


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_flat_act(
    x, w, bias, y, masks, c, h, wd, dh, dw, top, left, act, lo, hi
):  # pragma: no cover
    """Depthwise convolution at stride 1 with "same" padding (output planes the input's size)
    of ``x`` — N·C planes of H×W (``h``, ``wd``), flattened to one dimension — with ``w``
    (C·M, 1, kh, kw) plus ``bias`` (C·M,) into ``y`` (N·C·M planes, flattened), then ``act``;
    ``masks`` (kw·H·W bool) is :func:`flat_masks`.
    Output p = oy·W + ox reads tap (ky, kx) at flat input p + (ky·dh - top)·W + kx·dw - left:
    one contiguous run per tap over the whole plane, whatever its width (the row kernels'
    loops are a row long, and a 14-wide row is too short for 16-float vectors). Each plane is
    copied once between zero margins (the padding rows); reads that wrap into the
    neighbouring row are masked to zero (the padding columns). ReLU and clip are applied in
    the same loop, the other activations in a second pass over the plane. The bias starts each
    sum; taps add column by column (3×3) or row by row (multiply-adds may fuse: within float
    tolerance of :func:`depthwise_act`, not bit for bit). In the calling thread, without the
    GIL."""
    jobs = y.shape[0] // (h * wd)
    _flat_planes(x, w, bias, y, masks, c, h, wd, dh, dw, top, left, act, lo, hi, 0, jobs)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_flat_act_drive(
    x,
    w,
    bias,
    y,
    masks,
    c,
    h,
    wd,
    dh,
    dw,
    top,
    left,
    act,
    lo,
    hi,
    total,
    ctl,
    signal,
    worker,
    gen,
    spins,
):  # pragma: no cover
    """:func:`depthwise_flat_act` on a thread of openge's team: output planes claimed part
    by part, without the GIL."""
    args = (x, w, bias, y, masks, c, h, wd, dh, dw, top, left, act, lo, hi)
    return sync.drive(_flat_planes, args, total, ctl, signal, worker, gen, spins)


# ----- narrow planes: channels-last blocks ----------------------------------------------------

#: Channels of one channels-last work item (its accumulators: outputs × CL_BLOCK, in L1/L2).
CL_BLOCK = 64
#: Most positions of a narrow plane transposed through the dense scratch (1 MiB of float32
#: per thread at CL_BLOCK channels).
FLAT_MAX_POSITIONS = 4096


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _cl_items(
    x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, first, stop
):  # pragma: no cover
    """Work items ``first`` to ``stop`` of :func:`depthwise_cl_act`: item k is sample
    k // blocks, channels CL_BLOCK · (k % blocks) onwards. In float32, 8 channels × 8
    positions at a time go in and out of the channels-last layout through
    :func:`transpose8` (eight vector loads, shuffles, eight vector stores), the rest one
    element at a time; narrow rows (under 16 wide, not a multiple of 8) are transposed as
    the flattened plane into a dense scratch, then copied into the padded buffer row by
    row."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    kh, kw = wt.shape[0], wt.shape[1]
    blocks = (c + CL_BLOCK - 1) // CL_BLOCK
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, top + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, left + w)
    buf = np.zeros((hp, wp, CL_BLOCK), y.dtype)  # the border stays zero: only the interior
    acc = np.empty((oh * ow, CL_BLOCK), y.dtype)  # is rewritten, item after item
    hw, p = h * w, oh * ow
    xf, yf = x.reshape(x.size), y.reshape(y.size)
    bf, af, wf = buf.reshape(buf.size), acc.reshape(acc.size), wt.reshape(wt.size)
    cpad = wt.shape[2]
    vector = x.itemsize == 4 and y.itemsize == 4 and wt.itemsize == 4  # float32's paths
    w8 = w // 8 * 8 if vector else 0
    p8 = p // 8 * 8 if vector else 0
    # rows under 16 wide with a remainder (7, 14): the flattened plane's transposes (at 28
    # wide the copy lost to the 4 remainder columns: 192 × 28² → 14² 48 → 54 µs), for planes
    # of up to FLAT_MAX_POSITIONS (a tall narrow plane keeps the row path: no scratch of its
    # size)
    flat = vector and w % 8 != 0 and w < 16 and hw <= FLAT_MAX_POSITIONS
    hw8 = hw // 8 * 8
    dense = np.zeros((hw if flat else 0) * CL_BLOCK, y.dtype)  # the block channels-last,
    # unpadded (the flattened plane's transposes land here first; zeros past a last block's
    # channels, like buf's)
    xa, ya, ba, aa = x.ctypes.data, y.ctypes.data, buf.ctypes.data, acc.ctypes.data
    da = dense.ctypes.data
    # tap t = (ky, kx) of an output reads the block's buffer this many floats past the
    # output's first window cell; its filter row is wt[ky, kx] (t · cpad floats in)
    offs = np.empty(kh * kw, np.int64)
    for ky in range(kh):
        for kx in range(kw):
            offs[ky * kw + kx] = ((ky * dh) * wp + kx * dw) * CL_BLOCK
    start = np.zeros(CL_BLOCK, y.dtype)  # the block's bias, zeros past its channels
    oa, sa, wa = offs.ctypes.data, start.ctypes.data, wt.ctypes.data
    u = np.uint64
    for k in range(first, stop):
        i = k // blocks
        c0 = (k - i * blocks) * CL_BLOCK
        cb = min(CL_BLOCK, c - c0)
        cb8 = cb // 8 * 8 if vector else 0
        xb = (i * c + c0) * hw  # flat offset of the block's first input plane
        if flat:  # narrow rows: 8 positions of the flattened plane at a time into the dense
            # scratch, then each row's run copied into place (row by row, a 7-wide plane went
            # element by element, as gathers: 40 % of a 960 × 7² layer, 52 → 38 µs)
            for p0 in range(0, hw8, 8):
                for j in range(0, cb8, 8):
                    transpose8(
                        xa + (xb + j * hw + p0) * 4, hw, da + (p0 * CL_BLOCK + j) * 4, CL_BLOCK
                    )
            for q in range(hw):
                for j in range(cb8 if q < hw8 else 0, cb):
                    dense[u(q * CL_BLOCK + j)] = xf[u(xb + j * hw + q)]
            run = w * CL_BLOCK
            for r in range(h):
                row = ((top + r) * wp + left) * CL_BLOCK  # flat offset of buf[top + r, left]
                src = r * run
                for e in range(run):
                    bf[u(row + e)] = dense[u(src + e)]
        else:
            for r in range(h):
                row = ((top + r) * wp + left) * CL_BLOCK  # flat offset of buf[top + r, left]
                for q0 in range(0, w8, 8):
                    for j in range(0, cb8, 8):
                        transpose8(
                            xa + (xb + j * hw + r * w + q0) * 4,
                            hw,
                            ba + (row + q0 * CL_BLOCK + j) * 4,
                            CL_BLOCK,
                        )
                for q in range(w):
                    for j in range(cb8 if q < w8 else 0, cb):
                        bf[u(row + q * CL_BLOCK + j)] = xf[u(xb + j * hw + r * w + q)]
        for j in range(CL_BLOCK):
            start[j] = bias[c0 + j] if j < cb else 0
        for oy in range(oh):
            for ox in range(ow):
                ab = (oy * ow + ox) * CL_BLOCK
                base = ((oy * sh) * wp + ox * sw) * CL_BLOCK
                if vector:  # the sums in registers across the taps
                    cl_taps(kh * kw, ba + base * 4, oa, wa + c0 * 4, cpad, sa, aa + ab * 4)
                    continue
                for j in range(CL_BLOCK):
                    af[u(ab + j)] = start[j]
                for t in range(kh * kw):
                    sb = u(base + offs[t])
                    wb = u(t * cpad + c0)
                    # a whole block always (a constant trip count: unrolled over vector
                    # registers); the filter's channels are padded with zeros
                    for j in range(CL_BLOCK):
                        v = u(j)
                        af[u(ab) + v] += wf[wb + v] * bf[sb + v]
        activate_row(af, af, p * CL_BLOCK, act, lo, hi)
        yb = (i * c + c0) * p  # flat offset of the block's first output plane
        for p0 in range(0, p8, 8):
            for j in range(0, cb8, 8):
                transpose8(aa + (p0 * CL_BLOCK + j) * 4, CL_BLOCK, ya + (yb + j * p + p0) * 4, p)
        for q in range(p):
            for j in range(cb8 if q < p8 else 0, cb):
                yf[u(yb + j * p + q)] = af[u(q * CL_BLOCK + j)]


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_cl_act(x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi):  # pragma: no cover
    """Depthwise convolution (channel multiplier 1) of ``x`` (N, C, H, W) with ``wt``
    (kh, kw, C') — the filter rearranged channels-last, its channels padded with zeros to a
    multiple C' of :data:`CL_BLOCK` (required: whole blocks are read) — plus ``bias`` (C,)
    into ``y`` (N, C, oh, ow), then ``act``: for planes too narrow for
    :func:`depthwise_act`'s row loops (7×7, 14×14). Per block of :data:`CL_BLOCK` channels,
    the zero-padded input is transposed channels-last and every output's taps add along the
    channels (the loop that vectorizes), the bias first and taps row-major as
    :func:`depthwise_act`; the activation runs on the block's sums, which are then stored
    back plane by plane. In the calling thread, without the GIL (openge's threads share the
    blocks through :func:`depthwise_cl_act_drive`)."""
    items = y.shape[0] * ((y.shape[1] + CL_BLOCK - 1) // CL_BLOCK)
    _cl_items(x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, 0, items)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_cl_act_drive(
    x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, total, ctl, signal, worker, gen, spins
):  # pragma: no cover
    """:func:`depthwise_cl_act` on a thread of openge's team: work items (sample, channel
    block) claimed part by part, without the GIL."""
    args = (x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi)
    return sync.drive(_cl_items, args, total, ctl, signal, worker, gen, spins)


# ----- 1×1 convolutions: the epilogue of a GEMM block (openge.ops.conv_pointwise) ----------


@njit(cache=True, nogil=True, error_model="numpy")
def block_epilogue(y, bias, res, has_res, p0, p1, act, lo, hi):  # pragma: no cover - compiled
    """``y[:, p0:p1] = act((y + bias[:, None]) [+ res])[:, p0:p1]`` in place, for ``y``
    (Cout, P) (a sample's output as channels × positions) and ``res`` of y's shape (read only
    when ``has_res``). Without a residual, one pass per row (:func:`bias_activate_row`; a
    96 × 256 block in L2 on an AVX2 Zen 3 core: NONE and RELU 0.70-0.74× the time of the
    two passes, HARD_SWISH 0.83×, SILU 0.96×); with one, the sum goes through a buffer (a
    residual may share the output's memory, and two names for one buffer would make the
    loop's overlap check fail and run it scalar)."""
    cout = y.shape[0]
    width = p1 - p0
    if not has_res:
        for co in range(cout):
            bias_activate_row(y[co, p0:p1], bias[co], width, act, lo, hi)
        return
    acc = np.empty(width, y.dtype)
    for co in range(cout):
        row = y[co, p0:p1]
        b = bias[co]
        r = res[co, p0:p1]
        for q in range(width):
            k = np.uint64(q)
            acc[k] = (row[k] + b) + r[k]
        activate_row(acc, row, width, act, lo, hi)


__all__ = [
    "CHUNK",
    "CLIP",
    "CL_BLOCK",
    "FLAT_MAX_POSITIONS",
    "HARD_SIGMOID",
    "HARD_SWISH",
    "NONE",
    "RELU",
    "SIGMOID",
    "SILU",
    "X_HARD_SIGMOID",
    "activate_row",
    "bias_activate_row",
    "block_epilogue",
    "depthwise_act",
    "depthwise_act_drive",
    "depthwise_cl_act",
    "depthwise_cl_act_drive",
    "depthwise_flat_act",
    "depthwise_flat_act_drive",
    "flat_masks",
]
