"""Op family nn: convolution, pooling, normalization, softmax, matmul and padding (ops layer).

Interfaces follow CANN's REG_OP prototypes (input names and order, attr names and defaults).
Layout decisions (also in each schema's ``doc``):

* ``Conv2D`` / ``Conv2DTranspose``: ``data_format="NCHW"`` reads the filter as NCHW
  ``(Cout, Cin/groups, kh, kw)``; ``data_format="NHWC"`` reads it as HWCN
  ``(kh, kw, Cin/groups, Cout)`` — the pairs CANN's prototypes list. CANN also accepts an HWCN
  filter with an NCHW ``x``; a kernel cannot see tensor formats, so openge rejects that pair at
  inference (insert a TransData/Transpose). For ``Conv2DTranspose`` the filter is the forward
  convolution's: NCHW ``(C_x, C_y/groups, kh, kw)``, HWCN ``(kh, kw, C_y/groups, C_x)``.
* ``BNInference`` and ``LRN`` have no ``data_format`` attr: the channel axis is 1 (NCHW / ND);
  an ``x`` whose desc says NHWC is rejected at inference.
* float16 math runs in float32 (like the Ascend cube/vector units' fp32 accumulation) and is
  rounded once at the end; int8 convolutions accumulate exactly and produce int32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from openge.errors import SHAPE_INVALID, UNSUPPORTED
from openge.graph import DataType, Format, TensorDesc
from openge.ops.common import (
    ALL_TYPES,
    FLOAT_TYPES,
    INDEX_TYPES,
    as_int_list,
    broadcast_shapes,
    check_dtype,
    desc_like,
    normalize_axes,
    normalize_axis,
    same_dtype,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

_I8 = DataType.DT_INT8
_I32 = DataType.DT_INT32
_CONV_TYPES = FLOAT_TYPES | {_I8}
_MATMUL_TYPES = FLOAT_TYPES | {_I32}
_MAXPOOL_TYPES = FLOAT_TYPES | {
    DataType.DT_INT8,
    DataType.DT_INT16,
    DataType.DT_INT32,
    DataType.DT_INT64,
    DataType.DT_UINT8,
    DataType.DT_UINT16,
}
_FORMATS_2D = ("NCHW", "NHWC")
_IM2COL_BYTES = 64 << 20  # a convolution's im2col buffer is built per batch chunk up to this
#: The direct NCHW paths build im2col matrices in row chunks of about this size (they stay in
#: cache between being written and read by the GEMM).
_COLS_BYTES = 4 << 20
#: A depthwise convolution runs channels-last when it has at least this many channels per
#: output column (many channels, small images).
_DW_CL = 1
_NORM_FORMATS = ("NCHW", "NHWC", "NCDHW", "NDHWC", "ND")


# ----- shared helpers -----------------------------------------------------------------------


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a kernel computes in: float16 → float32, int8 → float64 (exact sums of
    int8 products), int32 → int64 (wraps to int32 at the end, as hardware does)."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype == np.int8:
        return np.dtype(np.float64)
    if dtype.kind in "iu":
        return np.dtype(np.int64)
    return dtype


def _opt(inputs: Sequence[np.ndarray | None], index: int) -> np.ndarray | None:
    """Optional input ``index`` (None when omitted or not given at all)."""
    return inputs[index] if index < len(inputs) else None


def _store(out: np.ndarray, value: np.ndarray) -> None:
    """Write ``value`` into ``out`` (cast to out's dtype)."""
    np.copyto(out, value, casting="unsafe")


def _broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """True when ``shape`` broadcasts to ``target`` without changing it (-1 matches anything)."""
    if len(shape) > len(target):
        return False
    tail = target[len(target) - len(shape) :]
    return all(s in (1, t) or s < 0 or t < 0 for s, t in zip(shape, tail, strict=True))


def _known(*dims: int) -> bool:
    return all(d >= 0 for d in dims)


def _hw_axes(fmt: str) -> tuple[int, int]:
    return (2, 3) if fmt == "NCHW" else (1, 2)


def _channel_axis(fmt: str, rank: int) -> int:
    """Channel axis for a layout name: 1 for NC…/ND, the last axis for N…C."""
    return 1 if fmt.startswith("NC") or fmt == "ND" else rank - 1


def _hw_pair(
    ctx: InferContext, name: str, fmt: str, minimum: int, nc_value: int = 1
) -> tuple[int, int]:
    """(h, w) entries of a 4-value attr in ``fmt`` order; N and C entries must be ``nc_value``."""
    values = ctx.attrs[name]
    if len(values) != 4:
        raise ctx.error(f"attr {name} = {values} must have 4 values, in {fmt} order")
    ha, wa = _hw_axes(fmt)
    if any(values[i] != nc_value for i in range(4) if i not in (ha, wa)):
        raise ctx.error(
            f"attr {name} = {values}: the N and C entries ({fmt} order) must be {nc_value}"
        )
    h, w = values[ha], values[wa]
    if h < minimum or w < minimum:
        raise ctx.error(f"attr {name} = {values}: the H and W entries must be ≥ {minimum}")
    return h, w


def _pads4(ctx: InferContext, name: str = "pads") -> tuple[int, int, int, int]:
    pads = ctx.attrs[name]
    if len(pads) != 4:
        raise ctx.error(f"attr {name} = {pads} must have 4 values [top, bottom, left, right]")
    if any(p < 0 for p in pads):
        raise ctx.error(f"attr {name} = {pads} must be ≥ 0")
    return pads[0], pads[1], pads[2], pads[3]


def _rank(ctx: InferContext, index: int, rank: int, what: str) -> tuple[int, ...]:
    shape = ctx.input(index).shape
    if len(shape) != rank:
        raise ctx.error(
            f"input {index} ({what}) must be {rank}-D, got shape {list(shape)}", SHAPE_INVALID
        )
    return shape


def _check_vector(ctx: InferContext, index: int, length: int, what: str) -> None:
    """Input ``index`` must be 1-D of ``length`` (unknown dims pass)."""
    shape = ctx.input(index).shape
    if len(shape) != 1 or (length >= 0 and shape[0] >= 0 and shape[0] != length):
        raise ctx.error(
            f"input {index} ({what}) must have shape [{length}], got {list(shape)}",
            SHAPE_INVALID,
        )


def _no_quant(ctx: InferContext, offset_w_index: int) -> None:
    if ctx.has_input(offset_w_index):
        raise ctx.error(
            f"input {offset_w_index} (offset_w) is not supported: openge has no quantized "
            "weight offsets; fold the offset into the weights",
            UNSUPPORTED,
        )
    if ctx.attrs.get("offset_x", 0) != 0:
        raise ctx.error(
            f"attr offset_x = {ctx.attrs['offset_x']} is not supported (only 0)", UNSUPPORTED
        )


def _out_dim(
    ctx: InferContext, what: str, size: int, k: int, s: int, d: int, p0: int, p1: int
) -> int:
    """Convolution output length; error when the dilated kernel exceeds the padded input."""
    if size < 0:
        return -1
    extent = d * (k - 1) + 1
    if size + p0 + p1 < extent:
        raise ctx.error(
            f"the {what} kernel extent {extent} (kernel {k}, dilation {d}) is larger than the "
            f"padded input ({size} + pads {p0} + {p1} = {size + p0 + p1})",
            SHAPE_INVALID,
        )
    return (size + p0 + p1 - extent) // s + 1


def _pad_hw(
    x: np.ndarray,
    fmt: str,
    top: int,
    left: int,
    height: int,
    width: int,
    fill: float | int,
    dtype: np.dtype,
) -> np.ndarray:
    """``x`` placed at (top, left) in a (height, width) spatial buffer of ``fill``, as ``dtype``.

    Returns ``x`` itself (cast if needed) when no padding is required.
    """
    ha, wa = _hw_axes(fmt)
    h, w = x.shape[ha], x.shape[wa]
    if top == 0 and left == 0 and height == h and width == w:
        return x.astype(dtype, copy=False)
    shape = list(x.shape)
    shape[ha], shape[wa] = height, width
    buf = np.full(shape, fill, dtype=dtype)
    idx = [slice(None)] * 4
    hh, ww = max(min(h, height - top), 0), max(min(w, width - left), 0)
    idx[ha], idx[wa] = slice(top, top + hh), slice(left, left + ww)
    src = [slice(None)] * 4
    src[ha], src[wa] = slice(0, hh), slice(0, ww)
    buf[tuple(idx)] = x[tuple(src)]
    return buf


class _Phases:
    """The padded input split into stride phases and flattened, so that every kernel tap is a
    contiguous shifted slice (no strided reads on the hot path).

    Phase ``(a, b)`` holds padded rows ``a::sh`` and cols ``b::sw``, flattened to
    ``(N, C, hq*wq)`` (NCHW) or ``(N, hq*wq, C)`` (NHWC). Results are computed on an
    ``oh × wq`` grid (``length`` flat positions) and cropped to ``ow`` columns by ``crop``.
    """

    __slots__ = ("flat", "fmt", "hq", "length", "oh", "ow", "sh", "sw", "wq")

    def __init__(
        self,
        x: np.ndarray,
        fmt: str,
        top: int,
        left: int,
        oh: int,
        ow: int,
        k: tuple[int, int],
        s: tuple[int, int],
        d: tuple[int, int],
        fill: float | int,
        dtype: np.dtype,
    ) -> None:
        (kh, kw), (sh, sw), (dh, dw) = k, s, d
        self.fmt, self.oh, self.ow, self.sh, self.sw = fmt, oh, ow, sh, sw
        self.hq = oh + (kh - 1) * dh // sh
        self.wq = ow + (kw - 1) * dw // sw
        self.length = (oh - 1) * self.wq + ow
        rows = sorted({i * dh % sh for i in range(kh)})
        cols = sorted({j * dw % sw for j in range(kw)})
        nchw = fmt == "NCHW"
        ha, wa = _hw_axes(fmt)
        h, w = x.shape[ha], x.shape[wa]
        self.flat: dict[tuple[int, int], np.ndarray] = {}
        for a in rows:
            for b in cols:
                if sh == sw == 1:
                    part = np.ascontiguousarray(
                        _pad_hw(x, fmt, top, left, self.hq, self.wq, fill, dtype)
                    )
                else:  # gather this phase straight from x: padded row a + sh*q
                    shape = list(x.shape)
                    shape[ha], shape[wa] = self.hq, self.wq
                    part = np.empty(shape, dtype=dtype)
                    r0, c0 = (a - top) % sh, (b - left) % sw
                    q0, p0 = min((r0 + top) // sh, self.hq), min((c0 + left) // sw, self.wq)
                    nr = max(min(-(-(h - r0) // sh), self.hq - q0), 0)
                    nc = max(min(-(-(w - c0) // sw), self.wq - p0), 0)
                    # fill the border strips, copy the interior (each element written once)
                    for rs, cs in (
                        (slice(0, q0), slice(None)),
                        (slice(q0 + nr, None), slice(None)),
                        (slice(q0, q0 + nr), slice(0, p0)),
                        (slice(q0, q0 + nr), slice(p0 + nc, None)),
                    ):
                        if nchw:
                            part[:, :, rs, cs] = fill
                        else:
                            part[:, rs, cs] = fill
                    if nr and nc:
                        src = (
                            slice(r0, r0 + (nr - 1) * sh + 1, sh),
                            slice(c0, c0 + (nc - 1) * sw + 1, sw),
                        )
                        dst = (slice(q0, q0 + nr), slice(p0, p0 + nc))
                        if nchw:
                            part[:, :, dst[0], dst[1]] = x[:, :, src[0], src[1]]
                        else:
                            part[:, dst[0], dst[1]] = x[:, src[0], src[1]]
                n = part.shape[0]
                if nchw:
                    self.flat[a, b] = part.reshape(n, part.shape[1], -1)
                else:
                    self.flat[a, b] = part.reshape(n, -1, part.shape[3])

    def tap(self, row: int, col: int, length: int | None = None) -> np.ndarray:
        """The slice read by padded offset (row, col): flat ``(N, C, L)`` or ``(N, L, C)``."""
        src = self.flat[row % self.sh, col % self.sw]
        start = (row // self.sh) * self.wq + col // self.sw
        stop = start + (self.length if length is None else length)
        return src[:, :, start:stop] if self.fmt == "NCHW" else src[:, start:stop]

    def grid(self, lead: tuple[int, ...], dtype: np.dtype, fill: float = 0) -> np.ndarray:
        """A result buffer on the ``oh × wq`` grid: ``lead + (oh*wq,)`` or NHWC-ordered."""
        n, rest = lead[0], lead[1:]
        shape = (
            (n, *rest, self.oh * self.wq) if self.fmt == "NCHW" else (n, self.oh * self.wq, *rest)
        )
        return np.full(shape, fill, dtype=dtype)

    def valid(self, buf: np.ndarray) -> np.ndarray:
        """The first ``length`` flat positions of a grid buffer (the part taps write)."""
        return buf[..., : self.length] if self.fmt == "NCHW" else buf[:, : self.length]

    def crop(self, buf: np.ndarray) -> np.ndarray:
        """A grid buffer as (N, C, oh, ow) / (N, oh, ow, C), trailing dims merged into C."""
        n = buf.shape[0]
        if self.fmt == "NCHW":
            return buf.reshape(n, -1, self.oh, self.wq)[:, :, :, : self.ow]
        return buf.reshape(n, self.oh, self.wq, -1)[:, :, : self.ow]


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
    if groups == c and cout == c and c >= _DW_CL * ow:
        return _prepare_depthwise_channels_last(
            x, f, None if b is None else b.reshape(c), y, (sh, sw), (dh, dw), pads, constant[1]
        )
    if groups > 1 and cg == 1:
        return None
    if kh == kw == 1 and not any(pads) and sh == sw == 1 and x.flags.c_contiguous:
        coutg = cout // groups
        w3 = f.reshape(groups, coutg, cg)
        x4 = x.reshape(n, groups, cg, oh * ow)
        y4 = y.reshape(n, groups, coutg, oh * ow)

        def gemm() -> None:
            np.matmul(w3, x4, out=y4)
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
        np.matmul(
            fa.reshape(g, coutg, cg),
            xs.reshape(n, g, cg, oh * ow),
            out=y.reshape(n, g, coutg, oh * ow),
        )
    elif sh == sw == 1 and ow == w:
        xf = x.astype(acc, copy=False).reshape(n, c, h * w)
        yf = y.reshape(n, cout, oh * w)
        taps = _flat_taps(h, w, oh, (kh, kw), (dh, dw), pt, pl)
        row_bytes = c * kk * w * acc.itemsize  # im2col bytes per output row
        if g == 1 and 2 * cout <= c and oh * row_bytes > _COLS_BYTES:
            # big columns, few outputs: one GEMM per tap straight from x, summed into y
            wt = np.ascontiguousarray(fa.transpose(2, 3, 0, 1)).reshape(kk, cout, c)
            for i in range(n):
                _shifted_gemms(xf[i], wt, yf[i], taps, w)
        else:
            rows = max(1, min(oh, _COLS_BYTES // row_bytes))
            wmat = fa.reshape(g, coutg, cg * kk)
            for i in range(n):
                for ra in range(0, oh, rows):
                    rb = min(oh, ra + rows)
                    cols = _flat_cols(xf[i], taps, kk, w, ra, rb)
                    np.matmul(
                        wmat,
                        cols.reshape(g, cg * kk, (rb - ra) * w),
                        out=yf[i, :, ra * w : rb * w].reshape(g, coutg, (rb - ra) * w),
                    )
    else:
        # im2col of the padded input's windows (strided views), in row chunks, GEMM into y
        hp = max((oh - 1) * sh + (kh - 1) * dh + 1, 1)
        wp = max((ow - 1) * sw + (kw - 1) * dw + 1, 1)
        xp = _pad_hw(x, "NCHW", pt, pl, max(hp, pt + h), max(wp, pl + w), 0, acc)
        _, s_c, s_h, s_w = xp.strides
        wmat = fa.reshape(g, coutg, cg * kk)
        yf = y.reshape(n, g, coutg, oh * ow)
        rows = max(1, min(oh, _COLS_BYTES // (c * kk * ow * acc.itemsize)))
        for smp in range(n):
            for ra in range(0, oh, rows):
                rb = min(oh, ra + rows)
                win = as_strided(
                    xp[smp, :, ra * sh :],
                    (g, cg, kh, kw, rb - ra, ow),
                    (s_c * cg, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
                    writeable=False,
                )
                np.matmul(
                    wmat,
                    win.reshape(g, cg * kk, (rb - ra) * ow),
                    out=yf[smp, :, :, ra * ow : rb * ow],
                )
    if b is not None:
        y += b


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


# ----- Conv2DTranspose ------------------------------------------------------------------------


def _infer_conv2d_transpose(ctx: InferContext) -> Sequence[TensorDesc]:
    fmt = ctx.attrs["data_format"]
    check_dtype(ctx, 0, INDEX_TYPES)
    xdt = check_dtype(ctx, 1, _CONV_TYPES)
    same_dtype(ctx, [1, 2])
    x = _rank(ctx, 1, 4, "x")
    f = _rank(ctx, 2, 4, "filter")
    _no_quant(ctx, 4)
    size = as_int_list(ctx, ctx.require_const(0, "input_size"), "input_size")
    if len(size) != 4 or any(d <= 0 for d in size):
        raise ctx.error(
            f"input_size = {size} must be 4 positive dims of y in {fmt} order", SHAPE_INVALID
        )
    sh, sw = _hw_pair(ctx, "strides", fmt, 1)
    dh, dw = _hw_pair(ctx, "dilations", fmt, 1)
    oph, opw = _hw_pair(ctx, "output_padding", fmt, 0, nc_value=0)
    pt, pb, pl, pr = _pads4(ctx)
    groups = ctx.attrs["groups"]
    if groups < 1:
        raise ctx.error(f"attr groups = {groups} must be ≥ 1")
    _check_filter_format(ctx, fmt, 2)
    if fmt == "NCHW":
        n, cx, h, w = x
        fcx, cy_g, kh, kw = f
        yn, cy, yh, yw = size
    else:
        n, h, w, cx = x
        kh, kw, cy_g, fcx = f
        yn, yh, yw, cy = size
    if not _known(kh, kw, cy_g, fcx) or min(kh, kw, cy_g, fcx) <= 0:
        raise ctx.error(f"filter shape {list(f)} must be static and positive", SHAPE_INVALID)
    if cx >= 0 and fcx != cx:
        raise ctx.error(
            f"x has {cx} channels but the filter {list(f)} expects {fcx}", SHAPE_INVALID
        )
    if fcx % groups:
        raise ctx.error(f"x's {fcx} channels are not divisible by groups={groups}", SHAPE_INVALID)
    if cy_g * groups != cy:
        raise ctx.error(
            f"input_size asks for {cy} output channels but the filter {list(f)} with "
            f"groups={groups} gives {cy_g * groups}",
            SHAPE_INVALID,
        )
    if n >= 0 and n != yn:
        raise ctx.error(f"input_size batch {yn} differs from x's batch {n}", SHAPE_INVALID)
    for what, xs, ys, k, s, d, p0, p1, op in (
        ("height", h, yh, kh, sh, dh, pt, pb, oph),
        ("width", w, yw, kw, sw, dw, pl, pr, opw),
    ):
        if op >= max(s, d):
            raise ctx.error(
                f"output_padding {op} ({what}) must be smaller than the stride {s} or the "
                f"dilation {d}"
            )
        span = ys + p0 + p1 - (d * (k - 1) + 1) - op
        got = span // s + 1 if span >= 0 else 0
        if xs >= 0 and got != xs:
            raise ctx.error(
                f"input_size {what} {ys} does not match x's {what} {xs}: a convolution of a "
                f"{ys} input (pads {p0}, {p1}, kernel {k}, stride {s}, dilation {d}, "
                f"output_padding {op}) gives {got}",
                SHAPE_INVALID,
            )
    _check_bias(ctx, 3, xdt, cy)
    out = _I32 if xdt == _I8 else xdt
    return [desc_like(ctx, 1, shape=tuple(size), dtype=out)]


def _conv2d_transpose_kernel(inputs, outputs, *, strides, pads, dilations, groups, data_format):
    x, f, bias, y = inputs[1], inputs[2], _opt(inputs, 3), outputs[0]
    nchw = data_format == "NCHW"
    ha, wa = _hw_axes(data_format)
    sh, sw = strides[ha], strides[wa]
    dh, dw = dilations[ha], dilations[wa]
    pt, _, pl, _ = pads
    acc = _acc_dtype(x.dtype)
    xa = x.astype(acc, copy=False)
    fa = f.astype(acc, copy=False)
    g = groups
    if nchw:
        n, cx, h, w = x.shape
        _, cy_g, kh, kw = f.shape
        _, cy, yh, yw = y.shape
        cxg = cx // g
        wmat = fa.reshape(g, cxg, cy_g * kh * kw).transpose(0, 2, 1)
        cols = np.matmul(wmat, xa.reshape(n, g, cxg, h * w))  # (n, g, cy_g*kh*kw, h*w)
        cols = cols.reshape(n, cy, kh, kw, h, w)
    else:
        n, h, w, cx = x.shape
        kh, kw, cy_g, _ = f.shape
        _, yh, yw, cy = y.shape
        cxg = cx // g
        rows = xa.reshape(n * h * w, g, cxg).transpose(1, 0, 2)
        wmat = fa.reshape(kh * kw * cy_g, g, cxg).transpose(1, 2, 0)
        cols = np.matmul(rows, wmat)  # (g, n*h*w, kh*kw*cy_g)
        cols = cols.reshape(g, n, h, w, kh, kw, cy_g)
    hf = max((h - 1) * sh + (kh - 1) * dh + 1, pt + yh)
    wf = max((w - 1) * sw + (kw - 1) * dw + 1, pl + yw)
    if nchw:
        full = np.zeros((n, cy, hf, wf), dtype=acc)
    else:
        full = np.zeros((n, hf, wf, g, cy_g), dtype=acc)
    for i in range(kh):
        hs = slice(i * dh, i * dh + (h - 1) * sh + 1, sh)
        for j in range(kw):
            ws = slice(j * dw, j * dw + (w - 1) * sw + 1, sw)
            if nchw:
                full[:, :, hs, ws] += cols[:, :, i, j]
            else:
                full[:, hs, ws] += cols[:, :, :, :, i, j].transpose(1, 2, 3, 0, 4)
    if nchw:
        res = full[:, :, pt : pt + yh, pl : pl + yw]
        bias_shape: tuple[int, ...] = (cy, 1, 1)
    else:
        res = full.reshape(n, hf, wf, cy)[:, pt : pt + yh, pl : pl + yw]
        bias_shape = (cy,)
    if bias is not None:
        res += bias.astype(acc, copy=False).reshape(bias_shape)
    _store(y, res)


# ----- pooling --------------------------------------------------------------------------------


def _pool_out(size: int, k: int, s: int, p0: int, p1: int, ceil_mode: bool) -> int:
    span = size + p0 + p1 - k
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + p0:  # the last window must start inside the input
        out -= 1
    return out


def _pool_geometry(
    h: int,
    w: int,
    ksize: Sequence[int],
    strides: Sequence[int],
    padding_mode: str,
    pads: Sequence[int],
    fmt: str,
    global_pooling: bool,
    ceil_mode: bool,
) -> tuple[int, int, int, int, int, int, int, int, int, int]:
    """(kh, kw, sh, sw, top, bottom, left, right, oh, ow) of a validated pooling node."""
    if global_pooling:
        return h, w, 1, 1, 0, 0, 0, 0, 1, 1
    ha, wa = _hw_axes(fmt)
    kh, kw, sh, sw = ksize[ha], ksize[wa], strides[ha], strides[wa]
    if padding_mode == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
        th = max((oh - 1) * sh + kh - h, 0)
        tw = max((ow - 1) * sw + kw - w, 0)
        return kh, kw, sh, sw, th // 2, th - th // 2, tw // 2, tw - tw // 2, oh, ow
    if padding_mode == "VALID":
        pt = pb = pl = pr = 0
    else:
        pt, pb, pl, pr = pads
    oh = _pool_out(h, kh, sh, pt, pb, ceil_mode)
    ow = _pool_out(w, kw, sw, pl, pr, ceil_mode)
    return kh, kw, sh, sw, pt, pb, pl, pr, oh, ow


def _infer_pool(ctx: InferContext) -> Sequence[TensorDesc]:
    allowed = _MAXPOOL_TYPES if ctx.op_type == "MaxPoolV3" else FLOAT_TYPES
    check_dtype(ctx, 0, allowed)
    x = _rank(ctx, 0, 4, "x")
    a = ctx.attrs
    fmt, mode = a["data_format"], a["padding_mode"]
    ha, wa = _hw_axes(fmt)
    h, w = x[ha], x[wa]
    if a["global_pooling"]:
        oh = ow = 1
    else:
        kh, kw = _hw_pair(ctx, "ksize", fmt, 1)
        _hw_pair(ctx, "strides", fmt, 1)
        pt, pb, pl, pr = _pads4(ctx)
        if a["ceil_mode"] and mode != "CALCULATED":
            raise ctx.error(f"ceil_mode=True needs padding_mode CALCULATED, not {mode}")
        if mode == "CALCULATED" and (max(pt, pb) >= kh or max(pl, pr) >= kw):
            raise ctx.error(
                f"pads {list(a['pads'])} must be smaller than the kernel ({kh}, {kw}); a window "
                "that covers only padding has no value"
            )
        if ctx.op_type == "AvgPoolV2" and a["divisor_override"] < 0:
            raise ctx.error(f"attr divisor_override = {a['divisor_override']} must be ≥ 0")
        oh = ow = -1
        if _known(h, w):
            if mode == "CALCULATED":
                eff_h, eff_w = h + pt + pb, w + pl + pr
            elif mode == "VALID":
                eff_h, eff_w = h, w
            else:
                eff_h, eff_w = kh, kw  # SAME pads as needed
            if eff_h < kh or eff_w < kw:
                raise ctx.error(
                    f"the kernel ({kh}, {kw}) is larger than the padded input "
                    f"({eff_h}, {eff_w}) with padding_mode {mode}",
                    SHAPE_INVALID,
                )
            geo = _pool_geometry(
                h, w, a["ksize"], a["strides"], mode, a["pads"], fmt, False, a["ceil_mode"]
            )
            oh, ow = geo[8], geo[9]
        elif h >= 0 or w >= 0:
            raise ctx.error("pooling needs both H and W known (or both unknown)", SHAPE_INVALID)
    shape = list(x)
    shape[ha], shape[wa] = oh, ow
    return [desc_like(ctx, 0, shape=tuple(shape))]


def _max_pool_kernel(
    inputs,
    outputs,
    *,
    ksize,
    strides,
    padding_mode,
    pads,
    data_format,
    global_pooling,
    ceil_mode,
):
    x, y = inputs[0], outputs[0]
    ha, wa = _hw_axes(data_format)
    if global_pooling:
        _store(y, np.max(x, axis=(ha, wa), keepdims=True))
        return
    kh, kw, sh, sw, pt, _, pl, _, oh, ow = _pool_geometry(
        x.shape[ha],
        x.shape[wa],
        ksize,
        strides,
        padding_mode,
        pads,
        data_format,
        False,
        ceil_mode,
    )
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    if data_format == "NCHW" and y.size:
        _store(y, _pool_flat(x, (kh, kw), (sh, sw), pt, pl, oh, ow, fill, x.dtype, np.maximum))
        return
    _store(
        y,
        _separable_pool(x, data_format, kh, kw, sh, sw, pt, pl, oh, ow, fill, x.dtype, np.maximum),
    )


@functools.lru_cache(maxsize=256)
def _pool_counts(
    h: int,
    w: int,
    k: tuple[int, int],
    s: tuple[int, int],
    pads: tuple[int, int, int, int],
    out: tuple[int, int],
    exclusive: bool,
    dtype: np.dtype,
) -> np.ndarray:
    """The (oh, ow) divisors of an average pooling (read-only, cached per geometry)."""
    ch = _axis_counts(h, k[0], s[0], pads[0], pads[1], out[0], exclusive)
    cw = _axis_counts(w, k[1], s[1], pads[2], pads[3], out[1], exclusive)
    counts = np.multiply.outer(ch, cw).astype(dtype)
    counts.flags.writeable = False
    return counts


def _pool_flat(
    x: np.ndarray,
    k: tuple[int, int],
    s: tuple[int, int],
    top: int,
    left: int,
    oh: int,
    ow: int,
    fill: float | int,
    dtype: np.dtype,
    op: np.ufunc,
) -> np.ndarray:
    """NCHW ``op``-reduction over the kh×kw window at *every* position of the ``fill``-padded
    input, flattened (each step one long 1-D ufunc call: along W, then along H), returned as the
    strided (N, C, oh, ow) view of the windows the pooling keeps. Windows that run past a row's
    end wrap into the next row; none of those is kept."""
    (kh, kw), (sh, sw) = k, s
    n, c, h, w = x.shape
    hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw  # the padded extent the windows cover
    if top == left == 0 and hp <= h and wp <= w and x.dtype == dtype:
        src = np.ascontiguousarray(x).reshape(-1)  # the windows lie inside x: no padding
        hp, width = h, w
    else:
        width = max(wp, left + w)
        hp = max(hp, top + h)
        buf = np.full((n, c, hp, width), fill, dtype=dtype)
        buf[:, :, top : top + h, left : left + w] = x
        src = buf.reshape(-1)
    size = src.size
    row = src
    if kw > 1:
        row = op(src[: size - kw + 1], src[1 : size - kw + 2])
        for j in range(2, kw):
            op(row, src[j : size - kw + 1 + j], out=row)
    length = row.size - (kh - 1) * width
    res = np.empty(size, dtype=dtype)
    out = res[:length]
    if kh > 1:
        op(row[:length], row[width : width + length], out=out)
        for i in range(2, kh):
            op(out, row[i * width : i * width + length], out=out)
    else:
        out[...] = row[:length]
    grid = res.reshape(n, c, hp, width)
    return grid[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def _separable_pool(
    x: np.ndarray,
    fmt: str,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    pt: int,
    pl: int,
    oh: int,
    ow: int,
    fill: float | int,
    dtype: np.dtype,
    op: np.ufunc,
) -> np.ndarray:
    """``op``-reduction over every kh×kw window: along W per row phase, then along H."""
    ph = _Phases(x, fmt, pt, pl, oh, ow, (kh, kw), (sh, sw), (1, 1), fill, dtype)
    span = ph.length + (kh - 1) // sh * ph.wq
    rows: dict[int, np.ndarray] = {}
    for a in sorted({i % sh for i in range(kh)}):
        acc = ph.tap(a, 0, span) if kw == 1 else op(ph.tap(a, 0, span), ph.tap(a, 1, span))
        for j in range(2, kw):
            op(acc, ph.tap(a, j, span), out=acc)
        rows[a] = acc
    n = x.shape[0]
    c = x.shape[1] if fmt == "NCHW" else x.shape[3]
    res = ph.grid((n, c), dtype)
    out = ph.valid(res)
    views = []
    for i in range(kh):
        start = (i // sh) * ph.wq
        src = rows[i % sh]
        views.append(
            src[..., start : start + ph.length]
            if fmt == "NCHW"
            else (src[:, start : start + ph.length])
        )
    if kh == 1:
        np.copyto(out, views[0])
    else:
        op(views[0], views[1], out=out)
    for view in views[2:]:
        op(out, view, out=out)
    return ph.crop(res)


def _axis_counts(
    size: int, k: int, s: int, p0: int, p1: int, n: int, exclusive: bool
) -> np.ndarray:
    start = np.arange(n, dtype=np.int64) * s - p0
    end = start + k
    if exclusive:
        return np.minimum(end, size) - np.maximum(start, 0)
    return np.minimum(end, size + p1) - start


def _avg_pool_kernel(
    inputs,
    outputs,
    *,
    ksize,
    strides,
    padding_mode,
    pads,
    data_format,
    global_pooling,
    ceil_mode,
    exclusive,
    divisor_override,
):
    x, y = inputs[0], outputs[0]
    ha, wa = _hw_axes(data_format)
    acc = _acc_dtype(x.dtype)
    if global_pooling:
        total = np.sum(x, axis=(ha, wa), keepdims=True, dtype=acc)
        div = divisor_override or x.shape[ha] * x.shape[wa]
        _store(y, total / div)
        return
    h, w = x.shape[ha], x.shape[wa]
    kh, kw, sh, sw, pt, pb, pl, pr, oh, ow = _pool_geometry(
        h, w, ksize, strides, padding_mode, pads, data_format, False, ceil_mode
    )
    pads4 = (pt, pb, pl, pr)
    if data_format == "NCHW" and y.size:
        if divisor_override > 0:
            div: np.ndarray | int = divisor_override
        else:
            div = _pool_counts(h, w, (kh, kw), (sh, sw), pads4, (oh, ow), exclusive, acc)
        total = _pool_flat(x, (kh, kw), (sh, sw), pt, pl, oh, ow, 0, acc, np.add)
        np.divide(total, div, out=y, casting="unsafe")
        return
    total = _separable_pool(x, data_format, kh, kw, sh, sw, pt, pl, oh, ow, 0, acc, np.add)
    if divisor_override > 0:
        total /= divisor_override
    else:
        ch = _axis_counts(h, kh, sh, pt, pb, oh, exclusive)
        cw = _axis_counts(w, kw, sw, pl, pr, ow, exclusive)
        counts = np.multiply.outer(ch, cw).astype(acc)
        total /= counts if data_format == "NCHW" else counts[:, :, None]
    _store(y, total)


# ----- batch / layer / instance / group normalization ---------------------------------------


def _param_shape(rank: int, axis: int, c: int) -> tuple[int, ...]:
    shape = [1] * rank
    shape[axis] = c
    return tuple(shape)


def _infer_bn_inference(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, FLOAT_TYPES)
    x = ctx.input(0)
    if len(x.shape) < 2:
        raise ctx.error(f"x must be at least 2-D (N, C, ...), got {list(x.shape)}", SHAPE_INVALID)
    if x.format == Format.FORMAT_NHWC:
        raise ctx.error(
            "x is NHWC; BNInference has no data_format attr and openge normalizes axis 1 "
            "(NCHW): transpose x to NCHW or use BatchNorm(data_format='NHWC')",
            UNSUPPORTED,
        )
    c = x.shape[1]
    for i, what in ((1, "mean"), (2, "variance"), (4, "scale"), (5, "offset")):
        if ctx.has_input(i):
            check_dtype(ctx, i, FLOAT_TYPES)
            _check_vector(ctx, i, c, what)
    check_dtype(ctx, 3, FLOAT_TYPES)
    if ctx.input(3).numel == 0:
        raise ctx.error("input 3 (momentum) is empty; it needs at least one value", SHAPE_INVALID)
    return [desc_like(ctx, 0)]


def _bn_inference_kernel(inputs, outputs, *, epsilon):
    x, mean, var, momentum = inputs[0], inputs[1], inputs[2], inputs[3]
    scale, offset = _opt(inputs, 4), _opt(inputs, 5)
    acc = _acc_dtype(x.dtype)
    shape = _param_shape(x.ndim, 1, x.shape[1])
    mean = mean.astype(acc).reshape(shape)
    var = var.astype(acc).reshape(shape)
    if scale is None and offset is None:
        # Caffe-style: mean and variance are stored scaled by the moving-average factor.
        m = float(np.asarray(momentum).reshape(-1)[0])
        factor = 0.0 if m == 0.0 else 1.0 / m
        inv = 1.0 / np.sqrt(var * factor + epsilon)
        res = (x.astype(acc) - mean * factor) * inv
    else:
        inv = 1.0 / np.sqrt(var + epsilon)
        if scale is not None:
            inv = inv * scale.astype(acc).reshape(shape)
        res = (x.astype(acc) - mean) * inv
        if offset is not None:
            res += offset.astype(acc).reshape(shape)
    _store(outputs[0], res)


def _infer_batch_norm(ctx: InferContext) -> Sequence[TensorDesc]:
    if ctx.attrs["is_training"]:
        raise ctx.error(
            "is_training=True (batch statistics, running-stat updates) is not supported: "
            "openge runs inference; set is_training=False and pass mean and variance",
            UNSUPPORTED,
        )
    check_dtype(ctx, 0, FLOAT_TYPES)
    x = ctx.input(0)
    fmt = ctx.attrs["data_format"]
    if len(x.shape) < 2:
        raise ctx.error(f"x must be at least 2-D, got {list(x.shape)}", SHAPE_INVALID)
    c = x.shape[_channel_axis(fmt, len(x.shape))]
    for i, what in ((3, "mean"), (4, "variance")):
        if not ctx.has_input(i):
            raise ctx.error(f"input {i} ({what}) is required when is_training=False")
    for i, what in ((1, "scale"), (2, "offset"), (3, "mean"), (4, "variance")):
        check_dtype(ctx, i, FLOAT_TYPES)
        _check_vector(ctx, i, c, what)
    sdt = ctx.input(3).dtype
    stat = TensorDesc(sdt, (c,))
    return [desc_like(ctx, 0), stat, stat, stat, stat, TensorDesc(sdt, (1,))]


def _batch_norm_kernel(inputs, outputs, *, epsilon, data_format):
    x, scale, offset, mean, var = inputs[:5]
    acc = _acc_dtype(x.dtype)
    shape = _param_shape(x.ndim, _channel_axis(data_format, x.ndim), mean.shape[0])
    inv = scale.astype(acc) / np.sqrt(var.astype(acc) + epsilon)
    res = (x.astype(acc) - mean.astype(acc).reshape(shape)) * inv.reshape(shape)
    res += offset.astype(acc).reshape(shape)
    _store(outputs[0], res)
    for out, value in zip(outputs[1:5], (mean, var, mean, var), strict=True):
        _store(out, value)
    outputs[5].fill(0)


def _infer_layer_norm(ctx: InferContext) -> Sequence[TensorDesc]:
    dt = check_dtype(ctx, 0, FLOAT_TYPES)
    same_dtype(ctx, [0, 1, 2])
    x = ctx.input(0).shape
    rank = len(x)
    if rank == 0:
        raise ctx.error("x must be at least 1-D", SHAPE_INVALID)
    bna = normalize_axis(ctx, ctx.attrs["begin_norm_axis"], rank, "begin_norm_axis")
    bpa = normalize_axis(ctx, ctx.attrs["begin_params_axis"], rank, "begin_params_axis")
    for i, what in ((1, "gamma"), (2, "beta")):
        p = ctx.input(i).shape
        if len(p) > rank - bpa or not _broadcasts_to(p, x):
            raise ctx.error(
                f"input {i} ({what}) shape {list(p)} must match x's dims from "
                f"begin_params_axis {bpa}: {list(x[bpa:])}",
                SHAPE_INVALID,
            )
    stat = tuple(x[:bna]) + (1,) * (rank - bna)
    return [desc_like(ctx, 0), TensorDesc(dt, stat), TensorDesc(dt, stat)]


def _layer_norm_kernel(inputs, outputs, *, begin_norm_axis, epsilon):
    x, gamma, beta = inputs[0], inputs[1], inputs[2]
    acc = _acc_dtype(x.dtype)
    xa = x.astype(acc, copy=False)
    axes = tuple(range(begin_norm_axis % x.ndim, x.ndim))
    mean = np.mean(xa, axis=axes, keepdims=True)
    d = xa - mean
    var = np.mean(np.square(d), axis=axes, keepdims=True)
    d *= 1.0 / np.sqrt(var + epsilon)
    d *= gamma.astype(acc, copy=False)
    d += beta.astype(acc, copy=False)
    _store(outputs[0], d)
    _store(outputs[1], mean)
    _store(outputs[2], var)


def _infer_instance_norm(ctx: InferContext) -> Sequence[TensorDesc]:
    dt = check_dtype(ctx, 0, FLOAT_TYPES)
    same_dtype(ctx, [0, 1, 2])
    x = ctx.input(0).shape
    rank = len(x)
    if rank < 3:
        raise ctx.error(f"x must be at least 3-D (N, C, spatial...), got {list(x)}", SHAPE_INVALID)
    ca = _channel_axis(ctx.attrs["data_format"], rank)
    c = x[ca]
    for i, what in ((1, "gamma"), (2, "beta")):
        p = ctx.input(i)
        ok = (c < 0 or p.numel in (c, -1)) and (
            len(p.shape) == 1 or (len(p.shape) == rank and p.shape[ca] in (c, -1))
        )
        if not ok:
            raise ctx.error(
                f"input {i} ({what}) shape {list(p.shape)} must be [{c}] or have {c} at the "
                f"channel axis {ca} and 1 elsewhere",
                SHAPE_INVALID,
            )
    stat = tuple(d if a in (0, ca) else 1 for a, d in enumerate(x))
    return [desc_like(ctx, 0), TensorDesc(dt, stat), TensorDesc(dt, stat)]


def _instance_norm_kernel(inputs, outputs, *, data_format, epsilon):
    x, gamma, beta = inputs[0], inputs[1], inputs[2]
    acc = _acc_dtype(x.dtype)
    ca = _channel_axis(data_format, x.ndim)
    xa = x.astype(acc, copy=False)
    axes = tuple(a for a in range(x.ndim) if a not in (0, ca))
    mean = np.mean(xa, axis=axes, keepdims=True)
    d = xa - mean
    var = np.mean(np.square(d), axis=axes, keepdims=True)
    shape = _param_shape(x.ndim, ca, x.shape[ca])
    d *= 1.0 / np.sqrt(var + epsilon)
    d *= gamma.astype(acc).reshape(shape)
    d += beta.astype(acc).reshape(shape)
    _store(outputs[0], d)
    _store(outputs[1], mean)
    _store(outputs[2], var)


def _infer_group_norm(ctx: InferContext) -> Sequence[TensorDesc]:
    dt = check_dtype(ctx, 0, FLOAT_TYPES)
    same_dtype(ctx, [0, 1, 2])
    x = ctx.input(0).shape
    if len(x) < 2:
        raise ctx.error(f"x must be at least 2-D (N, C, ...), got {list(x)}", SHAPE_INVALID)
    g = ctx.attrs["num_groups"]
    c = x[_channel_axis(ctx.attrs["data_format"], len(x))]
    if g < 1 or (c >= 0 and c % g):
        raise ctx.error(f"attr num_groups = {g} must be ≥ 1 and divide the {c} channels")
    _check_vector(ctx, 1, c, "gamma")
    _check_vector(ctx, 2, c, "beta")
    stat = TensorDesc(dt, (x[0], g))
    return [desc_like(ctx, 0), stat, stat]


def _group_norm_kernel(inputs, outputs, *, num_groups, data_format, eps):
    x, gamma, beta = inputs[0], inputs[1], inputs[2]
    acc = _acc_dtype(x.dtype)
    last = _channel_axis(data_format, x.ndim) != 1
    xm = np.moveaxis(x, -1, 1) if last else x
    n, c = xm.shape[0], xm.shape[1]
    xr = xm.astype(acc).reshape(n, num_groups, -1)
    mean = np.mean(xr, axis=2, keepdims=True)
    d = xr - mean
    var = np.mean(np.square(d), axis=2, keepdims=True)
    d *= 1.0 / np.sqrt(var + eps)
    shape = _param_shape(xm.ndim, 1, c)
    res = d.reshape(xm.shape) * gamma.astype(acc).reshape(shape) + beta.astype(acc).reshape(shape)
    _store(outputs[0], np.moveaxis(res, 1, -1) if last else res)
    _store(outputs[1], mean.reshape(n, num_groups))
    _store(outputs[2], var.reshape(n, num_groups))


def _infer_lrn(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, FLOAT_TYPES)
    x = ctx.input(0)
    _rank(ctx, 0, 4, "x")
    if ctx.attrs["norm_region"] != "ACROSS_CHANNELS":
        raise ctx.error(
            "norm_region WITHIN_CHANNEL is not supported (only ACROSS_CHANNELS)", UNSUPPORTED
        )
    if ctx.attrs["depth_radius"] < 0:
        raise ctx.error(f"attr depth_radius = {ctx.attrs['depth_radius']} must be ≥ 0")
    if x.format == Format.FORMAT_NHWC:
        raise ctx.error(
            "x is NHWC; LRN has no data_format attr and openge normalizes across axis 1 "
            "(NCHW): transpose x to NCHW",
            UNSUPPORTED,
        )
    return [desc_like(ctx, 0)]


def _lrn_kernel(inputs, outputs, *, depth_radius, bias, alpha, beta):
    x = inputs[0]
    acc = _acc_dtype(x.dtype)
    xa = x.astype(acc, copy=False)
    sq = np.square(xa)
    total = sq.copy()
    for k in range(1, min(depth_radius, x.shape[1] - 1) + 1):
        total[:, k:] += sq[:, :-k]
        total[:, :-k] += sq[:, k:]
    total *= alpha
    total += bias
    _divide_by_power(xa, total, beta)
    _store(outputs[0], total)


def _divide_by_power(x: np.ndarray, t: np.ndarray, beta: float) -> None:
    """``t = x / t**beta`` in place. NumPy's float32 ``power`` is scalar code (LRN spent most
    of its time there): the usual exponents go through ``sqrt``, which is vectorized and
    correctly rounded — 0.75 (AlexNet, GoogLeNet) as √t·√√t."""
    if beta == 0.75:
        root = np.sqrt(t)
        np.sqrt(root, out=t)
        t *= root
    elif beta == 0.5:
        np.sqrt(t, out=t)
    elif beta == 0.25:
        np.sqrt(t, out=t)
        np.sqrt(t, out=t)
    elif beta != 1.0:
        np.power(t, beta, out=t)
    np.divide(x, t, out=t)


# ----- softmax ------------------------------------------------------------------------------


def _infer_softmax(ctx: InferContext) -> Sequence[TensorDesc]:
    dt = check_dtype(ctx, 0, FLOAT_TYPES)
    rank = len(ctx.input(0).shape)
    if not ctx.attrs["axes"]:
        raise ctx.error("attr axes must name at least one axis")
    normalize_axes(ctx, ctx.attrs["axes"], max(rank, 1))
    if ctx.attrs.get("half_to_float") and dt == DataType.DT_FLOAT16:
        return [desc_like(ctx, 0, dtype=DataType.DT_FLOAT)]
    return [desc_like(ctx, 0)]


def _softmax(x: np.ndarray, y: np.ndarray, axes: Sequence[int], log: bool) -> None:
    axes_t = tuple(a % max(x.ndim, 1) for a in axes) if x.ndim else ()
    acc = _acc_dtype(x.dtype)
    xa = x.astype(acc, copy=False)
    m = np.max(xa, axis=axes_t, keepdims=True)
    if not log and y.dtype == acc and y.flags.writeable:
        np.subtract(xa, m, out=y)
        np.exp(y, out=y)
        y /= np.sum(y, axis=axes_t, keepdims=True)
        return
    shifted = xa - m
    if log:
        shifted -= np.log(np.sum(np.exp(shifted), axis=axes_t, keepdims=True))
        _store(y, shifted)
    else:
        np.exp(shifted, out=shifted)
        shifted /= np.sum(shifted, axis=axes_t, keepdims=True)
        _store(y, shifted)


def _softmax_kernel(inputs, outputs, *, axes):
    _softmax(inputs[0], outputs[0], axes, log=False)


def _log_softmax_kernel(inputs, outputs, *, axes):
    _softmax(inputs[0], outputs[0], axes, log=True)


# ----- matmul -------------------------------------------------------------------------------


def _check_matmul_bias(ctx: InferContext, index: int, out_shape: tuple[int, ...]) -> None:
    if not ctx.has_input(index):
        return
    same_dtype(ctx, [0, index])
    b = ctx.input(index).shape
    if not _broadcasts_to(b, out_shape):
        raise ctx.error(
            f"input {index} (bias) shape {list(b)} does not broadcast to the output "
            f"{list(out_shape)}",
            SHAPE_INVALID,
        )


def _mm_dims(
    ctx: InferContext, a: tuple[int, ...], b: tuple[int, ...], ta: bool, tb: bool
) -> tuple[int, int]:
    m, k1 = (a[-1], a[-2]) if ta else (a[-2], a[-1])
    k2, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if _known(k1, k2) and k1 != k2:
        raise ctx.error(
            f"inner dims differ: x1 {list(a)}{' (transposed)' if ta else ''} has K={k1}, "
            f"x2 {list(b)}{' (transposed)' if tb else ''} has K={k2}",
            SHAPE_INVALID,
        )
    return m, n


def _infer_matmul(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, _MATMUL_TYPES)
    same_dtype(ctx, [0, 1])
    _no_quant(ctx, 3)
    a = _rank(ctx, 0, 2, "x1")
    b = _rank(ctx, 1, 2, "x2")
    m, n = _mm_dims(ctx, a, b, ctx.attrs["transpose_x1"], ctx.attrs["transpose_x2"])
    _check_matmul_bias(ctx, 2, (m, n))
    return [desc_like(ctx, 0, shape=(m, n))]


def _infer_batch_matmul(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, _MATMUL_TYPES)
    same_dtype(ctx, [0, 1])
    _no_quant(ctx, 3)
    a, b = ctx.input(0).shape, ctx.input(1).shape
    if len(a) < 2 or len(b) < 2:
        raise ctx.error(
            f"x1 {list(a)} and x2 {list(b)} must both be at least 2-D; reshape vectors first",
            SHAPE_INVALID,
        )
    m, n = _mm_dims(ctx, a, b, ctx.attrs["adj_x1"], ctx.attrs["adj_x2"])
    batch = broadcast_shapes(ctx, [a[:-2], b[:-2]])
    out = (*batch, m, n)
    _check_matmul_bias(ctx, 2, out)
    return [desc_like(ctx, 0, shape=out)]


def _matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None, y: np.ndarray) -> None:
    acc = _acc_dtype(a.dtype)
    if acc == y.dtype and y.flags.writeable:
        np.matmul(a, b, out=y)
        if bias is not None:
            y += bias
        return
    res = np.matmul(a.astype(acc), b.astype(acc))
    if bias is not None:
        res += bias.astype(acc)
    _store(y, res)


def _matmul_kernel(inputs, outputs, *, transpose_x1, transpose_x2):
    a, b = inputs[0], inputs[1]
    _matmul(a.T if transpose_x1 else a, b.T if transpose_x2 else b, _opt(inputs, 2), outputs[0])


def _batch_matmul_kernel(inputs, outputs, *, adj_x1, adj_x2):
    a, b = inputs[0], inputs[1]
    a = np.swapaxes(a, -1, -2) if adj_x1 else a
    b = np.swapaxes(b, -1, -2) if adj_x2 else b
    _matmul(a, b, _opt(inputs, 2), outputs[0])


# ----- PadV3 --------------------------------------------------------------------------------

_NP_PAD_MODE = {"reflect": "reflect", "edge": "edge", "symmetric": "symmetric", "circular": "wrap"}


def _pad_pairs(values: Sequence[int], rank: int, contiguous: bool) -> list[tuple[int, int]]:
    if contiguous:
        return [(values[2 * i], values[2 * i + 1]) for i in range(rank)]
    return [(values[i], values[rank + i]) for i in range(rank)]


def _infer_pad_v3(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    check_dtype(ctx, 1, INDEX_TYPES)
    x = ctx.input(0).shape
    rank = len(x)
    values = as_int_list(ctx, ctx.require_const(1, "paddings"), "paddings")
    if len(values) != 2 * rank:
        raise ctx.error(
            f"paddings has {len(values)} values; a rank-{rank} x needs {2 * rank} "
            "(a begin and an end per axis)",
            SHAPE_INVALID,
        )
    mode = ctx.attrs["mode"]
    if ctx.has_input(2):
        check_dtype(ctx, 2, ALL_TYPES)
        if ctx.input(2).numel not in (1, -1):
            raise ctx.error(
                f"constant_values must hold one value, got shape {list(ctx.input(2).shape)}",
                SHAPE_INVALID,
            )
    out = []
    for axis, (b, e) in enumerate(_pad_pairs(values, rank, ctx.attrs["paddings_contiguous"])):
        d = x[axis]
        if d < 0:
            out.append(-1)
            continue
        if d + b + e < 0 or d + min(b, 0) + min(e, 0) < 0:
            raise ctx.error(
                f"paddings ({b}, {e}) on axis {axis} crop more than its {d} elements",
                SHAPE_INVALID,
            )
        kept = d + min(b, 0) + min(e, 0)
        grow = max(b, 0), max(e, 0)
        limit = {"reflect": kept - 1, "symmetric": kept, "circular": kept}.get(mode)
        if limit is not None and max(grow) > limit:
            raise ctx.error(
                f"mode {mode} can pad at most {max(limit, 0)} on axis {axis} (size {kept}); "
                f"got ({b}, {e})",
                SHAPE_INVALID,
            )
        if mode == "edge" and kept == 0 and max(grow) > 0:
            raise ctx.error(f"mode edge cannot pad the empty axis {axis}", SHAPE_INVALID)
        out.append(d + b + e)
    return [desc_like(ctx, 0, shape=tuple(out))]


def _pad_v3_kernel(inputs, outputs, *, mode, paddings_contiguous):
    x, y = inputs[0], outputs[0]
    pairs = _pad_pairs(
        [int(v) for v in np.asarray(inputs[1]).reshape(-1)], x.ndim, paddings_contiguous
    )
    crop = tuple(
        slice(max(-b, 0), d - max(-e, 0)) for d, (b, e) in zip(x.shape, pairs, strict=True)
    )
    xc = x[crop]
    grow = [(max(b, 0), max(e, 0)) for b, e in pairs]
    if mode == "constant":
        values = _opt(inputs, 2)
        y.fill(0 if values is None else np.asarray(values).reshape(-1)[0])
        inner = tuple(slice(b, b + d) for d, (b, _) in zip(xc.shape, grow, strict=True))
        y[inner] = xc
    else:
        _store(y, np.pad(xc, grow, mode=_NP_PAD_MODE[mode]))


# ----- schemas ------------------------------------------------------------------------------

_CONV_ATTRS = (
    Attr("strides", AttrType.LIST_INT, doc="4 values in data_format order; N and C are 1"),
    Attr("pads", AttrType.LIST_INT, doc="[top, bottom, left, right]"),
    Attr("dilations", AttrType.LIST_INT, [1, 1, 1, 1], doc="4 values in data_format order"),
    Attr("groups", AttrType.INT, 1),
    Attr("data_format", AttrType.STR, "NHWC", choices=_FORMATS_2D),
)

_POOL_ATTRS = (
    Attr("ksize", AttrType.LIST_INT, doc="4 values in data_format order; N and C are 1"),
    Attr("strides", AttrType.LIST_INT, doc="4 values in data_format order; N and C are 1"),
    Attr("padding_mode", AttrType.STR, "CALCULATED", choices=("CALCULATED", "SAME", "VALID")),
    Attr("pads", AttrType.LIST_INT, [0, 0, 0, 0], doc="[top, bottom, left, right]"),
    Attr("data_format", AttrType.STR, "NCHW", choices=_FORMATS_2D),
    Attr("global_pooling", AttrType.BOOL, False),
    Attr("ceil_mode", AttrType.BOOL, False),
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
    OpSchema(
        "Conv2DTranspose",
        inputs=(
            Input("input_size", doc="constant: y's 4 dims in data_format order"),
            Input("x"),
            Input("filter"),
            Input("bias", optional=True),
            Input("offset_w", optional=True, doc="quantization offset (unsupported)"),
        ),
        outputs=(Output("y"),),
        attrs=(
            *_CONV_ATTRS,
            Attr(
                "output_padding",
                AttrType.LIST_INT,
                [0, 0, 0, 0],
                doc="extra rows/cols at the end, 4 values in data_format order",
            ),
            Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)"),
        ),
        infer=_infer_conv2d_transpose,
        kernel=_conv2d_transpose_kernel,
        doc="Transposed 2-D convolution (gradient of Conv2D w.r.t. its input) producing a y of "
        "shape input_size; the filter is the forward conv's: NCHW (C_x, C_y/groups, kh, kw) or "
        "HWCN (kh, kw, C_y/groups, C_x).",
        onnx="ConvTranspose",
    ),
    OpSchema(
        "MaxPoolV3",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=_POOL_ATTRS,
        infer=_infer_pool,
        kernel=_max_pool_kernel,
        doc="2-D max pooling; padded cells never win; ceil_mode drops a last window that would "
        "start in the end padding.",
        onnx="MaxPool / GlobalMaxPool",
    ),
    OpSchema(
        "AvgPoolV2",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(
            *_POOL_ATTRS,
            Attr(
                "exclusive",
                AttrType.BOOL,
                True,
                doc="True: padded cells are not counted in the divisor",
            ),
            Attr("divisor_override", AttrType.INT, 0, doc="> 0: fixed divisor"),
        ),
        infer=_infer_pool,
        kernel=_avg_pool_kernel,
        doc="2-D average pooling; exclusive=True divides by the number of real cells, False "
        "by the window clipped to the padded input (PyTorch count_include_pad).",
        onnx="AveragePool / GlobalAveragePool",
    ),
    OpSchema(
        "BNInference",
        inputs=(
            Input("x"),
            Input("mean"),
            Input("variance"),
            Input("momentum", doc="Caffe moving-average factor (used without scale/offset)"),
            Input("scale", optional=True),
            Input("offset", optional=True),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr("epsilon", AttrType.FLOAT, 1e-5),
            Attr("use_global_stats", AttrType.BOOL, True),
            Attr("mode", AttrType.INT, 1, doc="reserved"),
        ),
        infer=_infer_bn_inference,
        kernel=_bn_inference_kernel,
        doc="Inference batch norm over axis 1: with scale/offset y = scale*(x-mean)/"
        "sqrt(var+eps)+offset; without them Caffe's form with f = 1/momentum: "
        "y = (x - f*mean)/sqrt(f*var + eps).",
        onnx="BatchNormalization (inference)",
    ),
    OpSchema(
        "BatchNorm",
        inputs=(
            Input("x"),
            Input("scale"),
            Input("offset"),
            Input("mean", optional=True),
            Input("variance", optional=True),
        ),
        outputs=(
            Output("y"),
            Output("batch_mean"),
            Output("batch_variance"),
            Output("reserve_space_1"),
            Output("reserve_space_2"),
            Output("reserve_space_3"),
        ),
        attrs=(
            Attr("epsilon", AttrType.FLOAT, 1e-4),
            Attr("data_format", AttrType.STR, "NHWC", choices=_NORM_FORMATS),
            Attr("is_training", AttrType.BOOL, True, doc="only False is supported"),
            Attr("exponential_avg_factor", AttrType.FLOAT, 1.0, doc="training only"),
        ),
        infer=_infer_batch_norm,
        kernel=_batch_norm_kernel,
        doc="Batch norm in inference form (is_training=False): y = scale*(x-mean)/"
        "sqrt(var+eps)+offset; batch_mean/reserve_space_1 = mean, batch_variance/"
        "reserve_space_2 = variance, reserve_space_3 = [0].",
        onnx="BatchNormalization",
    ),
    OpSchema(
        "LayerNorm",
        inputs=(Input("x"), Input("gamma"), Input("beta")),
        outputs=(Output("y"), Output("mean"), Output("variance")),
        attrs=(
            Attr("begin_norm_axis", AttrType.INT, 0),
            Attr("begin_params_axis", AttrType.INT, 0),
            Attr("epsilon", AttrType.FLOAT, 1e-7),
        ),
        infer=_infer_layer_norm,
        kernel=_layer_norm_kernel,
        doc="Layer norm over the axes from begin_norm_axis: y = gamma*(x-mean)/sqrt(var+eps)"
        "+beta; mean and (biased) variance keep the reduced axes as 1.",
        onnx="LayerNormalization",
    ),
    OpSchema(
        "InstanceNorm",
        inputs=(Input("x"), Input("gamma"), Input("beta")),
        outputs=(Output("y"), Output("mean"), Output("variance")),
        attrs=(
            Attr("data_format", AttrType.STR, "NDHWC", choices=_NORM_FORMATS),
            Attr("epsilon", AttrType.FLOAT, 1e-6),
        ),
        infer=_infer_instance_norm,
        kernel=_instance_norm_kernel,
        doc="Instance norm: normalize each (n, c) over the spatial axes, then gamma/beta per "
        "channel; channel axis 1 for NC… / ND formats, last for N…C.",
        onnx="InstanceNormalization",
    ),
    OpSchema(
        "GroupNorm",
        inputs=(Input("x"), Input("gamma"), Input("beta")),
        outputs=(Output("y"), Output("mean"), Output("variance")),
        attrs=(
            Attr("num_groups", AttrType.INT),
            Attr("data_format", AttrType.STR, "NCHW", choices=_NORM_FORMATS),
            Attr("eps", AttrType.FLOAT, 1e-4),
            Attr("is_training", AttrType.BOOL, True, doc="reserved; same math either way"),
        ),
        infer=_infer_group_norm,
        kernel=_group_norm_kernel,
        doc="Group norm: channels split into num_groups groups, each (n, group) normalized "
        "over its channels and spatial axes, then gamma/beta per channel; mean/variance are "
        "(N, num_groups).",
        onnx="GroupNormalization",
    ),
    OpSchema(
        "LRN",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(
            Attr("depth_radius", AttrType.INT, 5),
            Attr("bias", AttrType.FLOAT, 1.0),
            Attr("alpha", AttrType.FLOAT, 1.0),
            Attr("beta", AttrType.FLOAT, 0.5),
            Attr(
                "norm_region",
                AttrType.STR,
                "ACROSS_CHANNELS",
                choices=("ACROSS_CHANNELS", "WITHIN_CHANNEL"),
            ),
        ),
        infer=_infer_lrn,
        kernel=_lrn_kernel,
        doc="Local response normalization across channels (axis 1, TensorFlow's form): "
        "y = x / (bias + alpha * sum of x² over channels c±depth_radius)^beta.",
        onnx="LRN (alpha/size, depth_radius=(size-1)/2)",
    ),
    OpSchema(
        "SoftmaxV2",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(
            Attr("axes", AttrType.LIST_INT, [-1]),
            Attr("half_to_float", AttrType.BOOL, False, doc="float16 x gives a float32 y"),
        ),
        infer=_infer_softmax,
        kernel=_softmax_kernel,
        doc="y = exp(x - max) / sum(exp(x - max)) over axes.",
        onnx="Softmax",
    ),
    OpSchema(
        "LogSoftmaxV2",
        inputs=(Input("logits"),),
        outputs=(Output("logsoftmax"),),
        attrs=(Attr("axes", AttrType.LIST_INT, [-1]),),
        infer=_infer_softmax,
        kernel=_log_softmax_kernel,
        doc="y = x - max - log(sum(exp(x - max))) over axes.",
        onnx="LogSoftmax",
    ),
    OpSchema(
        "MatMulV2",
        inputs=(
            Input("x1"),
            Input("x2"),
            Input("bias", optional=True),
            Input("offset_w", optional=True, doc="quantization offset (unsupported)"),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr("transpose_x1", AttrType.BOOL, False),
            Attr("transpose_x2", AttrType.BOOL, False),
            Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)"),
        ),
        infer=_infer_matmul,
        kernel=_matmul_kernel,
        doc="2-D y = op(x1) @ op(x2) + bias (op transposes when asked); float16 accumulates "
        "in float32, int32 wraps.",
        onnx="MatMul / Gemm",
    ),
    OpSchema(
        "BatchMatMulV2",
        inputs=(
            Input("x1"),
            Input("x2"),
            Input("bias", optional=True),
            Input("offset_w", optional=True, doc="quantization offset (unsupported)"),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr("adj_x1", AttrType.BOOL, False),
            Attr("adj_x2", AttrType.BOOL, False),
            Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)"),
        ),
        infer=_infer_batch_matmul,
        kernel=_batch_matmul_kernel,
        doc="Batched y = op(x1) @ op(x2) + bias over the last two axes, batch dims "
        "broadcast NumPy-style (ranks may differ, each ≥ 2).",
        onnx="MatMul",
    ),
    OpSchema(
        "PadV3",
        inputs=(
            Input("x"),
            Input("paddings", doc="constant int tensor, 2 values per axis"),
            Input("constant_values", optional=True),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr(
                "mode",
                AttrType.STR,
                "constant",
                choices=("constant", "reflect", "edge", "symmetric", "circular"),
            ),
            Attr(
                "paddings_contiguous",
                AttrType.BOOL,
                True,
                doc="True: [b0, e0, b1, e1, …]; False: [b0, b1, …, e0, e1, …]",
            ),
        ),
        infer=_infer_pad_v3,
        kernel=_pad_v3_kernel,
        doc="Pads (negative values crop) each axis with a constant, a reflection, the edge "
        "value, a symmetric copy or wrap-around (circular).",
        onnx="Pad",
    ),
]

__all__ = ["SCHEMAS"]
