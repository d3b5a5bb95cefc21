"""Op family nn, transposed convolution: Conv2DTranspose (ops layer)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import TensorDesc
from openge.ops.common import (
    INDEX_TYPES,
    as_int_list,
    check_dtype,
    desc_like,
    same_dtype,
)
from openge.ops.conv import _CONV_ATTRS, _check_bias, _check_filter_format
from openge.ops.nn_common import (
    _CONV_TYPES,
    _I8,
    _I32,
    _acc_dtype,
    _hw_axes,
    _hw_pair,
    _known,
    _no_quant,
    _opt,
    _pads4,
    _rank,
    _store,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

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


SCHEMAS = [
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
]

__all__ = ["SCHEMAS"]
