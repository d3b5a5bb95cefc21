"""Compiled depthwise convolution with a fused activation (kernels layer, numba); also
grouped and full convolutions with few input channels per group (a network's first layer), and
the epilogue of a 1×1 convolution's GEMM block (:func:`block_epilogue`: openge.ops.conv_pointwise
runs the GEMM one block of output columns at a time and this kernel adds the bias, an optional
residual and the activation while the block is in cache).

One pass per output row: the row is accumulated in a small buffer that stays in L1 (the bias,
then every filter tap in row-major order, as :func:`openge.kernels.conv.depthwise_nchw`), then
the activation is applied while the row is stored. Column strides above 1 read a per-plane copy
of the input split into column phases, so every tap's inner loop reads contiguous memory and
vectorizes (a strided read does not).

Activations (``act``): :data:`NONE`, :data:`RELU`, :data:`CLIP` (``min(max(v, lo), hi)``, NaN
propagating as ``np.maximum``/``np.minimum``: ReLU6 and Clip), :data:`HARD_SWISH`
(``v * min(max(v + 3, 0), 6) / 6``), :data:`HARD_SIGMOID` (``min(max(lo * v + hi, 0), 1)``),
:data:`SILU` (``v * sigmoid(v)``, float32 only: openge.kernels.mathf32).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from openge.kernels.mathf32 import sigmoid32

NONE, RELU, CLIP, HARD_SWISH, HARD_SIGMOID, SILU = 0, 1, 2, 3, 4, 5


@njit(inline="always")
def _max(a, b):  # pragma: no cover - compiled
    return a if (a > b or a != a) else b


@njit(inline="always")
def _min(a, b):  # pragma: no cover - compiled
    return a if (a < b or a != a) else b


@njit(inline="always")
def _store(acc, out, ow, act, lo, hi):  # pragma: no cover - compiled
    """``out[:ow] = act(acc[:ow])``, one branch-free loop per activation."""
    zero = acc.dtype.type(0)
    if act == NONE:
        for q in range(ow):
            out[np.uint64(q)] = acc[np.uint64(q)]
    elif act == RELU:
        for q in range(ow):
            v = acc[np.uint64(q)]
            out[np.uint64(q)] = v if not (v < zero) else v * zero
    elif act == CLIP:
        for q in range(ow):
            out[np.uint64(q)] = _min(_max(acc[np.uint64(q)], lo), hi)
    elif act == HARD_SWISH:
        three, six = acc.dtype.type(3), acc.dtype.type(6)
        for q in range(ow):
            v = acc[np.uint64(q)]
            out[np.uint64(q)] = v * (_min(_max(v + three, zero), six) / six)
    elif act == HARD_SIGMOID:
        one = acc.dtype.type(1)
        for q in range(ow):
            v = acc[np.uint64(q)]
            out[np.uint64(q)] = _min(_max(lo * v + hi, zero), one)
    else:  # SILU, float32 only (the caller checks)
        for q in range(ow):
            v = acc[np.uint64(q)]
            out[np.uint64(q)] = v * sigmoid32(v)


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
            elif sw == 2:
                # both column phases in one loop: the even/odd loads vectorize as one
                # interleaved pair (one phase alone is a strided, scalar read: 4.5x slower)
                e, o = buf[a * 2], buf[a * 2 + 1]
                e0, e1 = max(0, (left + 1) // 2), min(wq, (wd + left + 1) // 2)
                o0, o1 = max(0, left // 2), min(wq, (wd + left) // 2)
                # odd phase column v reads input 2v + 1 - left, even v reads 2v - left
                lo, hi = max(e0, o0), min(e1, o1)
                for v in range(e0, min(lo, e1)):
                    e[np.uint64(base + v)] = row[np.uint64(2 * v - left)]
                for v in range(o0, min(lo, o1)):
                    o[np.uint64(base + v)] = row[np.uint64(2 * v + 1 - left)]
                for v in range(lo, hi):
                    e[np.uint64(base + v)] = row[np.uint64(2 * v - left)]
                    o[np.uint64(base + v)] = row[np.uint64(2 * v + 1 - left)]
                for v in range(max(hi, e0), e1):
                    e[np.uint64(base + v)] = row[np.uint64(2 * v - left)]
                for v in range(max(hi, o0), o1):
                    o[np.uint64(base + v)] = row[np.uint64(2 * v + 1 - left)]
            else:
                for bq in range(sw):
                    ph = buf[a * sw + bq]
                    v0 = max(0, (left - bq + sw - 1) // sw)
                    v1 = min(wq, (wd + left - bq + sw - 1) // sw)
                    for v in range(v0, v1):
                        ph[np.uint64(base + v)] = row[np.uint64(v * sw + bq - left)]


@njit(inline="always", fastmath={"contract"})
def _planes(x, w, bias, y, s, d, pads, act, lo, hi, first, stop):  # pragma: no cover
    """Output planes ``first`` to ``stop`` (of N·Cout) of :func:`depthwise_act`, with one
    scratch: the padding cells are the same for every plane, so the phases are zeroed once and
    each plane rewrites only the interior; consecutive output channels of one group share
    their input planes' phases."""
    (sh, sw), (dh, dw), (top, left) = s, d, pads
    cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
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
                _store(acc[(oy - r0) * wq :], y[i, co, oy], ow, act, lo, hi)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_act(x, w, bias, y, sh, sw, dh, dw, top, left, act, lo, hi):  # pragma: no cover
    """Convolution ``x`` (N, C, H, W) * ``w`` (Cout, Cg, kh, kw) + ``bias`` (Cout,) into
    ``y`` (N, Cout, oh, ow) with groups = C / Cg (depthwise: Cg = 1, any channel multiplier
    Cout / C), then ``act``, in the calling thread without the GIL (openge's threads share
    the planes through :func:`depthwise_act_range`). Output channel o reads input channels
    g·Cg … g·Cg + Cg - 1, g = o // (Cout / groups); its sum starts at the bias, then adds
    input channel by channel, taps row-major.

    Per plane, the zero-padded input is copied into its stride phases, each flattened with
    row length ``wq = ow + (kw-1)*dw // sw``: a tap then reads one contiguous run of a phase
    for a whole block of output rows laid out with the same row length (the ``wq - ow``
    extra columns per row are scratch, never stored), so its loop vectorizes along the block.
    One pass per filter row adds its kw taps (3 and 5 unrolled); the bias starts each sum and
    taps add in row-major order (multiply-adds may fuse: within float tolerance, not bit for
    bit). ``lo``/``hi`` are the activation's parameters in y's dtype (CLIP bounds,
    HARD_SIGMOID's alpha/beta)."""
    jobs = y.shape[0] * y.shape[1]
    _planes(x, w, bias, y, (sh, sw), (dh, dw), (top, left), act, lo, hi, 0, jobs)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_act_range(
    x, w, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, first, stop
):  # pragma: no cover
    """Output planes ``first`` to ``stop`` (of N·Cout) of :func:`depthwise_act`, without the
    GIL: openge's threads share a convolution's planes (openge.ops.compiled.launcher)."""
    _planes(x, w, bias, y, (sh, sw), (dh, dw), (top, left), act, lo, hi, first, stop)


# ----- narrow planes: channels-last blocks ----------------------------------------------------

#: Channels of one channels-last work item (its accumulators: outputs × CL_BLOCK, in L1/L2).
CL_BLOCK = 64


@njit(inline="always", fastmath={"contract"})
def _cl_items(
    x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, first, stop
):  # pragma: no cover
    """Work items ``first`` to ``stop`` of :func:`depthwise_cl_act`: item k is sample
    k // blocks, channels CL_BLOCK · (k % blocks) onwards."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    kh, kw = wt.shape[0], wt.shape[1]
    blocks = (c + CL_BLOCK - 1) // CL_BLOCK
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, top + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, left + w)
    buf = np.zeros((hp, wp, CL_BLOCK), y.dtype)  # the border stays zero: only the interior
    acc = np.empty((oh * ow, CL_BLOCK), y.dtype)  # is rewritten, item after item
    for k in range(first, stop):
        i = k // blocks
        c0 = (k - i * blocks) * CL_BLOCK
        cb = min(CL_BLOCK, c - c0)
        xs = x[i, c0:]
        for r in range(h):
            dst = buf[top + r]
            for q in range(w):
                d = dst[left + q]
                for j in range(cb):
                    d[np.uint64(j)] = xs[j, r, q]
        for oy in range(oh):
            for ox in range(ow):
                a = acc[oy * ow + ox]
                bb = bias[c0:]
                for j in range(cb):
                    a[np.uint64(j)] = bb[np.uint64(j)]
                for j in range(cb, CL_BLOCK):
                    a[np.uint64(j)] = 0
                for ky in range(kh):
                    for kx in range(kw):
                        src = buf[oy * sh + ky * dh, ox * sw + kx * dw]
                        wk = wt[ky, kx, c0:]
                        # a whole block always (a constant trip count: unrolled over
                        # vector registers); the filter's channels are padded with zeros
                        for j in range(CL_BLOCK):
                            u = np.uint64(j)
                            a[u] += wk[u] * src[u]
                _store(a, a, cb, act, lo, hi)
        ys = y[i, c0:]
        for oy in range(oh):
            for ox in range(ow):
                a = acc[oy * ow + ox]
                for j in range(cb):
                    ys[j, oy, ox] = a[np.uint64(j)]


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
    blocks through :func:`depthwise_cl_act_range`)."""
    items = y.shape[0] * ((y.shape[1] + CL_BLOCK - 1) // CL_BLOCK)
    _cl_items(x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, 0, items)


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def depthwise_cl_act_range(
    x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, first, stop
):  # pragma: no cover
    """Work items ``first`` to ``stop`` of :func:`depthwise_cl_act` (sample, channel block),
    without the GIL: openge's threads share them."""
    _cl_items(x, wt, bias, y, sh, sw, dh, dw, top, left, act, lo, hi, first, stop)


# ----- 1×1 convolutions: the epilogue of a GEMM block (openge.ops.conv_pointwise) ----------


@njit(cache=True, nogil=True, error_model="numpy")
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


__all__ = [
    "CHUNK",
    "CLIP",
    "CL_BLOCK",
    "HARD_SIGMOID",
    "HARD_SWISH",
    "NONE",
    "RELU",
    "SILU",
    "block_epilogue",
    "depthwise_act",
    "depthwise_act_range",
    "depthwise_cl_act",
    "depthwise_cl_act_range",
]
