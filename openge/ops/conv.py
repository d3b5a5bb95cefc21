"""Op family nn, convolutions: Conv2D with its fast NCHW and channels-last paths (ops layer).

See openge.ops.nn for the layout decisions shared by the nn families."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from openge.errors import SHAPE_INVALID, UNSUPPORTED
from openge.graph import DataType, Format, TensorDesc
from openge.kernels import blas
from openge.ops import conv_depthwise, conv_im2col, conv_im2row, conv_pointwise
from openge.ops.common import (
    FLOAT_TYPES,
    check_dtype,
    desc_like,
    same_dtype,
)
from openge.ops.conv_winograd import prepare_winograd
from openge.ops.nn_common import (
    _CONV_TYPES,
    _FORMATS_2D,
    _I8,
    _I32,
    _acc_dtype,
    _check_vector,
    _hw_axes,
    _hw_pair,
    _known,
    _no_quant,
    _opt,
    _out_dim,
    _pad_hw,
    _pads4,
    _Phases,
    _rank,
    _store,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

_IM2COL_BYTES = 64 << 20  # a convolution's im2col buffer is built per batch chunk up to this
#: The direct NCHW paths build im2col matrices in row chunks of about this size (they stay in
#: cache between being written and read by the GEMM).
_COLS_BYTES = 4 << 20
#: A depthwise convolution runs channels-last when it has at least this many channels per
#: output column (many channels, small images).
_DW_CL = 1
# ----- Conv2D -------------------------------------------------------------------------------


def _check_filter_format(ctx: InferContext, fmt: str, index: int) -> None:
    ffmt = ctx.input(index).format
    if fmt == "NCHW" and ffmt in (Format.FORMAT_HWCN, Format.FORMAT_NHWC):
        raise ctx.error(
            f"x is NCHW but the filter's format is {ffmt.layout_name}; openge reads the filter "
            "of an NCHW x as NCHW (Cout, Cin/groups, kh, kw): insert a Transpose/TransData",
            UNSUPPORTED,
        )
    if fmt == "NHWC" and ffmt in (Format.FORMAT_NCHW, Format.FORMAT_NHWC):
        raise ctx.error(
            f"x is NHWC but the filter's format is {ffmt.layout_name}; CANN's Conv2D takes an "
            "HWCN filter (kh, kw, Cin/groups, Cout) with an NHWC x: insert a Transpose",
            UNSUPPORTED,
        )


def _check_bias(ctx: InferContext, index: int, xdt: DataType, channels: int) -> None:
    if not ctx.has_input(index):
        return
    allowed = {_I32} if xdt == _I8 else FLOAT_TYPES
    check_dtype(ctx, index, allowed)
    _check_vector(ctx, index, channels, "bias")


def _infer_conv2d(ctx: InferContext) -> Sequence[TensorDesc]:
    fmt = ctx.attrs["data_format"]
    xdt = check_dtype(ctx, 0, _CONV_TYPES)
    same_dtype(ctx, [0, 1])
    x = _rank(ctx, 0, 4, "x")
    f = _rank(ctx, 1, 4, "filter")
    _no_quant(ctx, 3)
    sh, sw = _hw_pair(ctx, "strides", fmt, 1)
    dh, dw = _hw_pair(ctx, "dilations", fmt, 1)
    pt, pb, pl, pr = _pads4(ctx)
    groups = ctx.attrs["groups"]
    if groups < 1:
        raise ctx.error(f"attr groups = {groups} must be ≥ 1")
    _check_filter_format(ctx, fmt, 1)
    if fmt == "NCHW":
        n, cin, h, w = x
        cout, cin_g, kh, kw = f
    else:
        n, h, w, cin = x
        kh, kw, cin_g, cout = f
    if not _known(kh, kw, cin_g, cout) or min(kh, kw, cin_g, cout) <= 0:
        raise ctx.error(f"filter shape {list(f)} must be static and positive", SHAPE_INVALID)
    layout = "(Cout, Cin/groups, kh, kw)" if fmt == "NCHW" else "HWCN (kh, kw, Cin/groups, Cout)"
    if cin >= 0 and cin_g * groups != cin:
        raise ctx.error(
            f"x has {cin} input channels but the filter {list(f)} ({layout}) with "
            f"groups={groups} expects {cin_g * groups}",
            SHAPE_INVALID,
        )
    if cout % groups:
        raise ctx.error(
            f"filter has {cout} output channels, not divisible by groups={groups}",
            SHAPE_INVALID,
        )
    oh = _out_dim(ctx, "height", h, kh, sh, dh, pt, pb)
    ow = _out_dim(ctx, "width", w, kw, sw, dw, pl, pr)
    _check_bias(ctx, 2, xdt, cout)
    out = _I32 if xdt == _I8 else xdt
    shape = (n, cout, oh, ow) if fmt == "NCHW" else (n, oh, ow, cout)
    return [desc_like(ctx, 0, shape=shape, dtype=out)]


def _conv2d_kernel(inputs, outputs, *, strides, pads, dilations, groups, data_format):
    _conv2d(
        inputs[0],
        inputs[1],
        _opt(inputs, 2),
        outputs[0],
        strides,
        pads,
        dilations,
        groups,
        data_format,
    )


def _prepare_conv2d(
    inputs: Sequence[np.ndarray | None],
    outputs: Sequence[np.ndarray],
    constant: Sequence[bool],
    *,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
    data_format: str,
) -> Callable[[], None] | None:
    """Conv2D's ``prepare`` (see OpSchema): a closure computing the convolution exactly as
    :func:`_conv2d_kernel` does, when it takes :func:`_conv2d_nchw_direct`'s depthwise
    channels-last or stride-1 1×1 GEMM path (NCHW, float32/float64), with the views, scratch
    buffer and rearranged constant weights made once; else None."""
    x, f, y = inputs[0], inputs[1], outputs[0]
    bias = _opt(inputs, 2)
    if (
        data_format != "NCHW"
        or x is None
        or f is None
        or x.ndim != 4
        or f.ndim != 4
        or y.dtype not in (np.float32, np.float64)
        or x.dtype != y.dtype
        or f.dtype != y.dtype
        or (bias is not None and bias.dtype != y.dtype)
        or not y.flags.c_contiguous
        or not f.flags.c_contiguous  # so that the reshapes below are views, never stale copies
        or (bias is not None and not bias.flags.c_contiguous)
        or not y.size
    ):
        return None
    n, c = x.shape[0], x.shape[1]
    cout, cg, kh, kw = f.shape
    oh, ow = y.shape[2], y.shape[3]
    sh, sw, dh, dw = strides[2], strides[3], dilations[2], dilations[3]
    cols_per_sample = (y[:1].size // max(cout, 1)) * (f.size // max(cout, 1)) * groups * 8
    if n > max(1, _IM2COL_BYTES // max(cols_per_sample, 1)):
        return None  # the kernel runs large batches in chunks
    b = None if bias is None else bias.reshape(cout, 1, 1)
    if cg * kh * kw <= conv_depthwise.MAX_TAPS:
        compiled = conv_depthwise.prepare(
            x, f, bias, y, (sh, sw), (dh, dw), pads, constant_filter=constant[1]
        )
        if compiled is not None:
            return compiled
    if groups == c and cout == c and c >= _DW_CL * ow:
        return _prepare_depthwise_channels_last(
            x, f, None if b is None else b.reshape(c), y, (sh, sw), (dh, dw), pads, constant[1]
        )
    if groups > 1 and cg == 1:
        return None
    if kh == kw == 3 and groups == 1 and sh == sw == dh == dw == 1:
        wino = prepare_winograd(x, f, bias, y, pads, constant[1])
        if wino is not None:
            return wino
    if kh == kw == 1 and not any(pads) and (sh, sw) != (1, 1) and groups == 1:
        strided = conv_pointwise.prepare_strided(
            x, f, bias, y, (sh, sw), constant_filter=constant[1]
        )
        if strided is not None:
            return strided
    if groups == 1:
        rows = conv_im2row.prepare(
            x, f, bias, y, (sh, sw), (dh, dw), pads, constant_filter=constant[1]
        )
        if rows is not None:
            return rows
    if kh == kw == 1 and not any(pads) and sh == sw == 1:
        blocked = conv_pointwise.prepare(x, f, bias, y, groups=groups, constant_filter=constant[1])
        if blocked is not None:
            return blocked
    packed = conv_im2col.prepare(
        x, f, bias, y, (sh, sw), (dh, dw), pads, groups=groups, constant_filter=constant[1]
    )
    if packed is not None:
        return packed
    if kh == kw == 1 and not any(pads) and sh == sw == 1 and x.flags.c_contiguous:
        coutg = cout // groups
        w3 = f.reshape(groups, coutg, cg)
        x4 = x.reshape(n, groups, cg, oh * ow)
        y4 = y.reshape(n, groups, coutg, oh * ow)

        def gemm() -> None:
            blas.matmul(w3, x4, y4)
            if b is not None:
                np.add(y, b, out=y)

        return gemm
    return None


def _prepare_depthwise_channels_last(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    s: tuple[int, int],
    d: tuple[int, int],
    pads: Sequence[int],
    constant_filter: bool,
) -> Callable[[], None]:
    """Depthwise convolution of ``x`` (N, C, H, W) into ``y`` (N, C, oh, ow) (plus ``bias``),
    channels-last, as a closure: each sample is transposed into a zero-padded (Hp, Wp, C)
    buffer and one ``einsum`` sums every output's kh×kw window (a strided view of that buffer,
    see :func:`_cl_windows`) times the weights — its inner loop runs along contiguous memory.
    The buffer (only its interior is rewritten: the border stays zero), the window view, the
    result buffer and, for a constant filter, the rearranged weights are made once."""
    (sh, sw), (dh, dw) = s, d
    n, c, h, w = x.shape
    kh, kw = f.shape[2], f.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    top, left = pads[0], pads[2]
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, top + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, left + w)
    buf = np.zeros((hp, wp, c), dtype=y.dtype)
    interior = buf[top : top + h, left : left + w]
    subscripts, windows, tiled = _cl_windows(buf, oh, ow, (kh, kw), s, d)
    result = np.empty((oh, ow, c), dtype=y.dtype)
    target = result.reshape(oh, -1) if tiled else result
    result_nchw = result.transpose(2, 0, 1)
    samples = [(x[i].transpose(1, 2, 0), y[i]) for i in range(n)]

    def weights() -> np.ndarray:
        return _cl_weights(f.reshape(c, kh * kw), (kh, kw), ow, tiled)

    fixed = weights() if constant_filter else None

    def depthwise() -> None:
        wts = fixed if fixed is not None else weights()
        for xs, ys in samples:
            np.copyto(interior, xs)
            np.einsum(subscripts, windows, wts, out=target)
            if bias is not None:
                np.add(result, bias, out=result)
            np.copyto(ys, result_nchw)

    return depthwise


def _conv2d(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
    fmt: str,
) -> None:
    """2-D convolution of ``x`` with ``f`` into ``y`` (im2col + one batched GEMM).

    Large batches run in chunks so the im2col buffer stays under ``_IM2COL_BYTES``.
    NCHW float32/float64 convolutions take the direct paths of :func:`_conv2d_nchw_direct`.
    """
    ha, wa = _hw_axes(fmt)
    n = x.shape[0]
    cout = max(f.shape[0 if fmt == "NCHW" else 3], 1)
    cols_per_sample = (y[:1].size // cout) * (f.size // cout) * groups * 8
    chunk = max(1, _IM2COL_BYTES // max(cols_per_sample, 1))
    if n > chunk:
        for start in range(0, n, chunk):
            part = slice(start, start + chunk)
            _conv2d(x[part], f, bias, y[part], strides, pads, dilations, groups, fmt)
        return
    sh, sw = strides[ha], strides[wa]
    dh, dw = dilations[ha], dilations[wa]
    pt, _, pl, _ = pads
    acc = _acc_dtype(x.dtype)
    nchw = fmt == "NCHW"
    if nchw and y.dtype == acc and y.flags.c_contiguous and y.size:
        _conv2d_nchw_direct(x, f.astype(acc, copy=False), bias, y, (sh, sw), (dh, dw), pads, groups)
        return
    if nchw:
        n, c, h, w = x.shape
        cout, _, kh, kw = f.shape
        _, _, oh, ow = y.shape
    else:
        n, h, w, c = x.shape
        kh, kw, _, cout = f.shape
        _, oh, ow, _ = y.shape
    g = groups
    cg, coutg = c // g, cout // g
    fa = f.astype(acc, copy=False)
    # The padded buffer only needs the rows/cols the windows read.
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, 1)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, 1)
    if nchw:
        bias_shape: tuple[int, ...] = (cout, 1, 1)
    else:
        bias_shape = (cout,)
    if g > 1 and cg == 1:
        res = _depthwise(x, fa, nchw, acc, pt, pl, kh, kw, sh, sw, dh, dw, oh, ow)
    elif kh == 1 and kw == 1 and not any(pads):
        xs = x[:, :, ::sh, ::sw] if nchw else x[:, ::sh, ::sw, :]
        xs = xs[:, :, :oh, :ow] if nchw else xs[:, :oh, :ow, :]
        xs = xs.astype(acc, copy=False)
        if nchw:
            wmat = fa.reshape(g, coutg, cg)
            cols = xs.reshape(n, g, cg, oh * ow)
            res = np.matmul(wmat, cols).reshape(n, cout, oh, ow)
        else:
            rows = xs.reshape(n * oh * ow, g, cg).transpose(1, 0, 2)
            wmat = fa.reshape(cg, g, coutg).transpose(1, 0, 2)
            res = np.matmul(rows, wmat).transpose(1, 0, 2).reshape(n, oh, ow, cout)
    else:
        xp = _pad_hw(x, fmt, pt, pl, max(hp, pt + h), max(wp, pl + w), 0, acc)
        if nchw:
            s_n, s_c, s_h, s_w = xp.strides
            win = as_strided(
                xp,
                (n, g, cg, kh, kw, oh, ow),
                (s_n, s_c * cg, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
                writeable=False,
            )
            cols = win.reshape(n, g, cg * kh * kw, oh * ow)
            wmat = fa.reshape(g, coutg, cg * kh * kw)
            res = np.matmul(wmat, cols).reshape(n, cout, oh, ow)
        else:
            s_n, s_h, s_w, s_c = xp.strides
            win = as_strided(
                xp,
                (g, n, oh, ow, kh, kw, cg),
                (s_c * cg, s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                writeable=False,
            )
            cols = win.reshape(g, n * oh * ow, kh * kw * cg)
            wmat = fa.reshape(kh * kw * cg, g, coutg).transpose(1, 0, 2)
            res = np.matmul(cols, wmat)  # (g, n*oh*ow, coutg)
            if g == 1:
                res = res.reshape(n, oh, ow, cout)
            else:
                res = res.transpose(1, 0, 2).reshape(n, oh, ow, cout)
    if bias is not None:
        res += bias.astype(acc, copy=False).reshape(bias_shape)
    _store(y, res)


# The direct NCHW paths (float32/float64 into a contiguous y) keep NumPy in long 1-D loops:
#
# * 1x1 convolutions: one GEMM per group straight into y.
# * "same width" stride-1 convolutions (output rows as wide as the input's) read x flattened per
#   channel, (C, H*W): tap (i, j) reads, for output position p = r*W + q, input position
#   p + e*W + d (e = i*dh - top, d = j*dw - left), a contiguous shifted slice. Output rows whose
#   input row r + e lies outside the input get no contribution (the slice is cut to rows
#   [r0, r1)); a read q + d outside [0, W) wraps into the neighbouring row and is cancelled by
#   zeroing those columns. The im2col matrix is built in row chunks of about _COLS_BYTES (so it
#   is still in cache when the GEMM reads it) and the GEMM writes straight into y; when it would
#   be big and the output has few channels, one GEMM per tap reads x directly instead.
# * other convolutions: im2col of strided window views of the padded input, in row chunks.
# * depthwise convolutions: with many channels and small images (_DW_CL), one einsum over the
#   kh×kw windows of a channels-last copy of the padded input (its inner loop runs along C, or,
#   at column stride 1, along a whole output row's ow·C contiguous values: _cl_windows); else a
#   multiply-add per tap over whole flat arrays, NCHW, on stride phases of the padded input
#   (_PhaseGrid).
# * pooling (_pool_flat): the window reduction at every position of the padded, flattened input
#   (two 1-D passes per kernel row/column), then the strided positions the pooling keeps.


def _flat_taps(
    h: int, w: int, oh: int, k: tuple[int, int], d: tuple[int, int], top: int, left: int
) -> list[tuple[int, int, int, int, int]]:
    """(tap index, r0, r1, e, d) of each kernel tap that reads any input (stride 1, ow == w)."""
    (kh, kw), (dh, dw) = k, d
    taps = []
    for i in range(kh):
        e = i * dh - top
        r0, r1 = max(0, -e), min(oh, h - e)
        for j in range(kw):
            dj = j * dw - left
            if r0 < r1 and abs(dj) < w:
                taps.append((i * kw + j, r0, r1, e, dj))
    return taps


def _wrapped(d: int, w: int) -> slice:
    """The output columns where a tap with column offset ``d`` reads a wrapped element."""
    return slice(0, -d) if d < 0 else slice(w - d, w)


class _PhaseGrid:
    """The padded input split into stride phases, each flattened with one channel stride
    ``size = hq*wq`` (plus slack at the end), so that a kernel tap is one contiguous slice of a
    phase, ``(N*C, size)``, aligned with a result grid of the same shape. Grid position
    ``r*wq + q`` is output (r, q) for q < ow; the rest is scratch, dropped by :meth:`crop`."""

    __slots__ = ("flat", "hq", "oh", "ow", "rows", "sh", "size", "sw", "wq")

    def __init__(
        self,
        x: np.ndarray,
        pads: Sequence[int],
        oh: int,
        ow: int,
        k: tuple[int, int],
        s: tuple[int, int],
        d: tuple[int, int],
        dtype: np.dtype,
        fill: float = 0,
    ) -> None:
        (kh, kw), (sh, sw), (dh, dw) = k, s, d
        n, c, h, w = x.shape
        pt, pl = pads[0], pads[2]
        self.oh, self.ow, self.sh, self.sw = oh, ow, sh, sw
        self.hq = oh + (kh - 1) * dh // sh
        self.wq = ow + (kw - 1) * dw // sw
        self.size = self.hq * self.wq
        self.rows = n * c
        slack = ((kh - 1) * dh // sh) * self.wq + (kw - 1) * dw // sw
        xr = x.reshape(self.rows, h, w)
        self.flat: dict[tuple[int, int], np.ndarray] = {}
        for a in sorted({i * dh % sh for i in range(kh)}):
            for b in sorted({j * dw % sw for j in range(kw)}):
                buf = np.full(self.rows * self.size + slack, fill, dtype=dtype)
                part = buf[: self.rows * self.size].reshape(self.rows, self.hq, self.wq)
                # padded row u*sh + a is x row u*sh + a - pt; likewise for columns
                r0, c0 = (a - pt) % sh, (b - pl) % sw
                u0, v0 = (r0 + pt) // sh, (c0 + pl) // sw
                nr = max(min(-(-(h - r0) // sh), self.hq - u0), 0)
                nc = max(min(-(-(w - c0) // sw), self.wq - v0), 0)
                if nr and nc:
                    part[:, u0 : u0 + nr, v0 : v0 + nc] = xr[
                        :, r0 : r0 + (nr - 1) * sh + 1 : sh, c0 : c0 + (nc - 1) * sw + 1 : sw
                    ]
                self.flat[a, b] = buf

    def tap(self, row: int, col: int) -> np.ndarray:
        """The ``(N*C, size)`` slice read by padded offset (row, col)."""
        buf = self.flat[row % self.sh, col % self.sw]
        start = (row // self.sh) * self.wq + col // self.sw
        return buf[start : start + self.rows * self.size].reshape(self.rows, self.size)

    def crop(self, grid: np.ndarray, n: int) -> np.ndarray:
        """A ``(N, C', size)`` grid as ``(N, C', oh, ow)``."""
        return grid.reshape(n, -1, self.hq, self.wq)[:, :, : self.oh, : self.ow]


def _conv2d_nchw_direct(
    x: np.ndarray,
    fa: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    s: tuple[int, int],
    dil: tuple[int, int],
    pads: Sequence[int],
    g: int,
) -> None:
    """NCHW convolution computed straight into ``y`` (contiguous, of the compute dtype)."""
    acc = y.dtype
    n, c, h, w = x.shape
    cout, cg, kh, kw = fa.shape
    _, _, oh, ow = y.shape
    (sh, sw), (dh, dw) = s, dil
    pt, pl = pads[0], pads[2]
    coutg = cout // g
    kk = kh * kw
    b = None if bias is None else bias.astype(acc, copy=False).reshape(cout, 1, 1)
    if g == c and cout == c and c >= _DW_CL * ow:
        # many channels, small images: channels-last, so every op runs along C (the same
        # closure a loaded model prepares once, here made and run once)
        bv = None if b is None else b.reshape(c)
        _prepare_depthwise_channels_last(x, fa, bv, y, (sh, sw), (dh, dw), pads, True)()
        return
    if g > 1 and cg == 1:
        ph = _PhaseGrid(x, pads, oh, ow, (kh, kw), (sh, sw), (dh, dw), acc)
        grid = _depthwise_grid(ph, fa.reshape(c, cout // c, kk), n, (kh, kw), (dh, dw))
        if b is None:
            np.copyto(y, ph.crop(grid, n))
        else:
            np.add(ph.crop(grid, n), b, out=y)
        return
    if kh == kw == 1 and not any(pads):
        xs = x[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw].astype(acc, copy=False)
        blas.matmul(
            fa.reshape(g, coutg, cg), xs.reshape(n, g, cg, oh * ow), y.reshape(n, g, coutg, oh * ow)
        )
    elif sh == sw == 1 and ow == w:
        xf = x.astype(acc, copy=False).reshape(n, c, h * w)
        yf = y.reshape(n, cout, oh * w)
        taps = _flat_taps(h, w, oh, (kh, kw), (dh, dw), pt, pl)
        row_bytes = c * kk * w * acc.itemsize  # im2col bytes per output row
        if g == 1 and 2 * cout <= c and oh * row_bytes > _COLS_BYTES:
            # big columns, few outputs: one GEMM per tap straight from x, summed into y
            wt = np.ascontiguousarray(fa.transpose(2, 3, 0, 1)).reshape(kk, cout, c)
            # output channels split over the threads: each part sums its own taps
            spans = blas.chunks(cout, blas.split_threads(), cout)
            blas.parallel(
                [
                    functools.partial(_shifted_gemms, xf[i], wt[:, lo:hi], yf[i, lo:hi], taps, w)
                    for i in range(n)
                    for lo, hi in spans
                ]
            )
        else:
            wmat = fa.reshape(g, coutg, cg * kk)

            def flat_chunk(i: int, ra: int, rb: int, product: _Product) -> None:
                cols = _flat_cols(xf[i], taps, kk, w, ra, rb)
                out = yf[i, :, ra * w : rb * w].reshape(g, coutg, (rb - ra) * w)
                product(wmat, cols.reshape(g, cg * kk, (rb - ra) * w), out)

            _row_chunks(flat_chunk, n, oh, w, row_bytes)
    else:
        # im2col of the padded input's windows (strided views), in row chunks, GEMM into y
        hp = max((oh - 1) * sh + (kh - 1) * dh + 1, 1)
        wp = max((ow - 1) * sw + (kw - 1) * dw + 1, 1)
        xp = _pad_hw(x, "NCHW", pt, pl, max(hp, pt + h), max(wp, pl + w), 0, acc)
        _, s_c, s_h, s_w = xp.strides
        wmat = fa.reshape(g, coutg, cg * kk)
        yf = y.reshape(n, g, coutg, oh * ow)

        def window_chunk(smp: int, ra: int, rb: int, product: _Product) -> None:
            win = as_strided(
                xp[smp, :, ra * sh :],
                (g, cg, kh, kw, rb - ra, ow),
                (s_c * cg, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
                writeable=False,
            )
            out = yf[smp, :, :, ra * ow : rb * ow]
            product(wmat, win.reshape(g, cg * kk, (rb - ra) * ow), out)

        _row_chunks(window_chunk, n, oh, ow, c * kk * ow * acc.itemsize)
    if b is not None:
        y += b


#: Row chunks narrower than this many output positions make BLAS's kernels inefficient.
_MIN_CHUNK_COLS = 128
_Product = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _np_product(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


def _row_chunks(
    chunk: Callable[[int, int, int, _Product], None], n: int, oh: int, ow: int, row_bytes: int
) -> None:
    """Run ``chunk(sample, ra, rb, product)`` (im2col of output rows [ra, rb), then
    ``product(weights, cols, out)``) over every sample and row chunk of at most about
    ``_COLS_BYTES`` of columns. The chunks are shared by openge's threads (one BLAS thread
    each; their count a multiple of the threads); a sample with too few output positions to
    share is one chunk whose product is split by output channels instead."""
    parts = blas.split_threads()
    most = max(1, min(oh, _COLS_BYTES // max(row_bytes, 1)))
    if parts > 1 and n % parts:
        if oh * ow < parts * _MIN_CHUNK_COLS:
            for i in range(n):
                for ra, rb in blas.chunks(oh, 1, most):
                    chunk(i, ra, rb, blas.matmul)
            return
        most = min(most, -(-oh // parts))
    spans = blas.chunks(oh, parts if n % parts else 1, most)
    blas.parallel(
        [functools.partial(chunk, i, ra, rb, _np_product) for i in range(n) for ra, rb in spans]
    )


def _flat_cols(
    xf: np.ndarray,
    taps: list[tuple[int, int, int, int, int]],
    kk: int,
    w: int,
    ra: int,
    rb: int,
) -> np.ndarray:
    """The im2col matrix ``(C, kh*kw, (rb-ra)*W)`` of output rows [ra, rb) of a "same width"
    stride-1 convolution of one sample ``xf`` (C, H*W) (see :func:`_flat_taps`)."""
    c, hw = xf.shape
    length = (rb - ra) * w
    cols = np.empty((c, kk, length), dtype=xf.dtype)
    done = set()
    for k, r0, r1, e, d in taps:
        blk = cols[:, k]
        off = e * w + d
        lo = max(max(r0, ra) * w, -off)
        hi = min(min(r1, rb) * w, hw - off)
        if lo >= hi:
            continue
        done.add(k)
        lo_b, hi_b = lo - ra * w, hi - ra * w
        blk[:, :lo_b] = 0
        blk[:, hi_b:] = 0
        blk[:, lo_b:hi_b] = xf[:, lo + off : hi + off]
        if d:
            cols.reshape(c, kk, rb - ra, w)[:, k, :, _wrapped(d, w)] = 0
    for k in range(kk):
        if k not in done:
            cols[:, k] = 0
    return cols


def _shifted_gemms(
    xf: np.ndarray,
    wt: np.ndarray,
    yf: np.ndarray,
    taps: list[tuple[int, int, int, int, int]],
    w: int,
) -> None:
    """``yf`` (Cout, oh*W) = Σ over taps of ``wt[k]`` (Cout, C) @ the tap's shifted slice of
    ``xf`` (C, H*W): a "same width" stride-1 convolution without an im2col matrix. Each tap's
    product covers whole output rows; its wrapped columns are zeroed before it is added."""
    cout = wt.shape[1]
    hw = xf.shape[1]
    length = yf.shape[1]
    oh = length // w
    first = next((t for t in taps if t[1] == 0 and t[2] == oh and t[4] == 0), None)
    if first is None:
        yf[...] = 0
    else:
        k, _, _, e, _ = first
        np.matmul(wt[k], xf[:, e * w : e * w + length], out=yf)
    buf = np.empty(cout * length, dtype=yf.dtype)
    for t in taps:
        if t is first:
            continue
        k, r0, r1, e, d = t
        off = e * w + d
        lo, hi = max(r0 * w, -off), min(r1 * w, hw - off)
        a, b = r0 * w, r1 * w  # whole rows around [lo, hi)
        tmp = buf[: cout * (b - a)].reshape(cout, b - a)
        np.matmul(wt[k], xf[:, lo + off : hi + off], out=tmp[:, lo - a : hi - a])
        tmp[:, : lo - a] = 0
        tmp[:, hi - a :] = 0
        if d:
            tmp.reshape(cout, r1 - r0, w)[:, :, _wrapped(d, w)] = 0
        seg = yf[:, a:b]
        np.add(seg, tmp, out=seg)


def _cl_windows(
    buf: np.ndarray, oh: int, ow: int, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]
) -> tuple[str, np.ndarray, bool]:
    """The einsum subscripts and window view of a channels-last depthwise convolution over the
    zero-padded (Hp, Wp, C) ``buf``, and whether the weights must be tiled along the output row.

    At column stride 1 the (ow, C) block a window row reads is one contiguous run of ``buf``:
    the view folds q and c into one axis, so einsum's inner loop runs ow·C long instead of C
    (1.3–5.7x faster), with the weights tiled along that axis to match — the same sums in the
    same order. Other strides keep the (oh, ow, kh, kw, C) view."""
    (kh, kw), (sh, sw), (dh, dw) = k, s, d
    wp, c = buf.shape[1], buf.shape[2]
    it = buf.itemsize
    row, tap_row, tap_col = sh * wp * c * it, dh * wp * c * it, dw * c * it
    if sw == 1:
        view = np.ndarray((oh, kh, kw, ow * c), buf.dtype, buf, 0, (row, tap_row, tap_col, it))
        return "rijx,ijx->rx", view, True
    view = np.ndarray(
        (oh, ow, kh, kw, c), buf.dtype, buf, 0, (row, sw * c * it, tap_row, tap_col, it)
    )
    return "rqijc,ijc->rqc", view, False


def _cl_weights(wts: np.ndarray, k: tuple[int, int], ow: int, tiled: bool) -> np.ndarray:
    """Depthwise weights ``wts`` (C, kh*kw) as (kh, kw, C), or tiled to (kh, kw, ow*C)."""
    c = wts.shape[0]
    kh, kw = k
    w = wts.reshape(c, kh, kw).transpose(1, 2, 0)
    if tiled:
        w = np.broadcast_to(w[:, :, None, :], (kh, kw, ow, c)).reshape(kh, kw, ow * c)
    return np.ascontiguousarray(w)


def _depthwise_grid(
    ph: _PhaseGrid, wts: np.ndarray, n: int, k: tuple[int, int], d: tuple[int, int]
) -> np.ndarray:
    """Depthwise convolution on the phase grid: ``(N, C*mult, size)`` = Σ over taps of the
    tap's slice times its weights ``wts[:, :, tap]`` (C, mult, kh*kw)."""
    (kh, kw), (dh, dw) = k, d
    c, mult, _ = wts.shape
    shape = (n, c, mult, ph.size)
    grid = np.empty(shape, dtype=wts.dtype)
    tmp = np.empty(shape, dtype=wts.dtype) if kh * kw > 1 else grid
    flat, tflat = grid.reshape(-1), tmp.reshape(-1)
    for i in range(kh):
        for j in range(kw):
            src = ph.tap(i * dh, j * dw).reshape(n, c, 1, ph.size)
            wk = wts[:, :, i * kw + j, None]
            if i == j == 0:
                np.multiply(src, wk, out=grid)
            else:
                np.multiply(src, wk, out=tmp)
                np.add(flat, tflat, out=flat)
    return grid.reshape(n, c * mult, ph.size)


def _depthwise(
    x: np.ndarray,
    fa: np.ndarray,
    nchw: bool,
    acc: np.dtype,
    pt: int,
    pl: int,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    oh: int,
    ow: int,
) -> np.ndarray:
    """Depthwise convolution (groups == Cin): a multiply-add per kernel tap, each tap a
    contiguous shifted slice of the stride phases (no per-channel Python loop)."""
    fmt = "NCHW" if nchw else "NHWC"
    ph = _Phases(x, fmt, pt, pl, oh, ow, (kh, kw), (sh, sw), (dh, dw), 0, acc)
    n = x.shape[0]
    if nchw:
        c = x.shape[1]
        mult = fa.shape[0] // c
        taps = fa.reshape(c, mult, kh, kw)
    else:
        c = x.shape[3]
        mult = fa.shape[3] // c
        taps = fa.reshape(kh, kw, c, mult).transpose(2, 3, 0, 1)
    lead = (n, c) if mult == 1 else (n, c, mult)
    res = ph.grid(lead, acc)
    out = ph.valid(res)
    tmp = np.empty(out.shape, dtype=acc)
    for i in range(kh):
        for j in range(kw):
            view = ph.tap(i * dh, j * dw)
            wk = taps[:, :, i, j]  # (c, mult)
            if nchw:
                w_b = wk[:, 0, None] if mult == 1 else wk[:, :, None]
                v_b = view if mult == 1 else view[:, :, None, :]
            else:
                w_b = wk[:, 0] if mult == 1 else wk
                v_b = view if mult == 1 else view[..., None]
            np.multiply(v_b, w_b, out=tmp)
            out += tmp
    return ph.crop(res)


_CONV_ATTRS = (
    Attr("strides", AttrType.LIST_INT, doc="4 values in data_format order; N and C are 1"),
    Attr("pads", AttrType.LIST_INT, doc="[top, bottom, left, right]"),
    Attr("dilations", AttrType.LIST_INT, [1, 1, 1, 1], doc="4 values in data_format order"),
    Attr("groups", AttrType.INT, 1),
    Attr("data_format", AttrType.STR, "NHWC", choices=_FORMATS_2D),
)

SCHEMAS = [
    OpSchema(
        "Conv2D",
        inputs=(
            Input("x"),
            Input("filter"),
            Input("bias", optional=True),
            Input("offset_w", optional=True, doc="quantization offset (unsupported)"),
        ),
        outputs=(Output("y"),),
        attrs=(*_CONV_ATTRS, Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)")),
        infer=_infer_conv2d,
        kernel=_conv2d_kernel,
        prepare=_prepare_conv2d,
        doc="2-D convolution y = conv(x, filter) + bias with groups (incl. depthwise), "
        "dilation and asymmetric pads; NCHW x takes an NCHW (Cout, Cin/groups, kh, kw) filter, "
        "NHWC x an HWCN (kh, kw, Cin/groups, Cout) filter; int8 x/filter give int32.",
        onnx="Conv",
    ),
]

__all__ = ["SCHEMAS"]
