"""Op family aipp: ``Aipp``, the image pre-processing GE inserts for ``--insert_op_conf``.

Ops layer. The arithmetic is GE's (ref/ge_dynamic_aipp_precision_dump.md §3): channel swap →
crop → colour-space conversion in integers with GE's rounding → normalisation in float16 →
padding with ``padding_value``. Input: uint8 NHWC — ``[N, H, W, 3]`` RGB888, ``[N, H, W, 4]``
XRGB8888, ``[N, H, W, 1]`` YUV400, and ``[N, H·3/2, W, 1]`` for YUV420SP (the NV12 planes: Y
rows, then interleaved UV rows). Output: float16 in the model input's layout (NCHW or NHWC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID
from openge.graph import DataType, Format, TensorDesc
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

YUV420SP, XRGB8888, RGB888, YUV400 = 1, 2, 3, 4
#: bytes per pixel of each input format (YUV420SP: 1.5)
IN_CHANNELS = {XRGB8888: 4, RGB888: 3, YUV400: 1, YUV420SP: 1}


def input_shape(fmt: int, n: int, h: int, w: int) -> tuple[int, int, int, int]:
    """The uint8 NHWC input shape of an ``h``×``w`` source image of format ``fmt``."""
    if fmt == YUV420SP:
        return (n, h * 3 // 2, w, 1)
    return (n, h, w, IN_CHANNELS[fmt])


def out_channels(fmt: int) -> int:
    """Channels the Aipp op produces for input format ``fmt``."""
    return 1 if fmt == YUV400 else 3


def _infer_aipp(ctx: InferContext) -> Sequence[TensorDesc]:
    x = ctx.input(0)
    a = ctx.attrs
    fmt = a["input_format"]
    if fmt not in IN_CHANNELS:
        raise ctx.error(f"input_format {fmt} is not one of 1 (YUV420SP), 2, 3, 4")
    if x.dtype != DataType.DT_UINT8:
        raise ctx.error(f"input must be uint8, got {x.dtype.short_name}", DATATYPE_INVALID)
    src_h, src_w = a["src_size"]
    n = x.shape[0] if len(x.shape) == 4 else -1
    if tuple(x.shape) != input_shape(fmt, n, src_h, src_w):
        raise ctx.error(
            f"input shape {list(x.shape)} does not hold a {src_h}x{src_w} image of format "
            f"{fmt} (expected {list(input_shape(fmt, n, src_h, src_w))})",
            SHAPE_INVALID,
        )
    h0, w0, ch, cw = a["crop"]
    if h0 < 0 or w0 < 0 or ch <= 0 or cw <= 0 or h0 + ch > src_h or w0 + cw > src_w:
        raise ctx.error(f"crop {a['crop']} (h0, w0, h, w) lies outside the {src_h}x{src_w} image")
    if fmt == YUV420SP and (h0 % 2 or w0 % 2):
        raise ctx.error(f"YUV420SP crop start ({h0}, {w0}) must be even")
    top, bottom, left, right = a["padding"]
    if min(top, bottom, left, right) < 0 or max(top, bottom, left, right) > 32:
        raise ctx.error(f"padding sizes {a['padding']} must lie in 0..32")
    c, h, w = out_channels(fmt), top + ch + bottom, left + cw + right
    if a["output_format"] == int(Format.FORMAT_NHWC):
        return [TensorDesc(DataType.DT_FLOAT16, (n, h, w, c), Format.FORMAT_NHWC)]
    return [TensorDesc(DataType.DT_FLOAT16, (n, c, h, w), Format.FORMAT_NCHW)]


def _planes(x: np.ndarray, fmt: int, src_h: int, src_w: int, ax_swap: bool) -> np.ndarray:
    """The source as int64 [N, H, W, C] pixels (YUV420SP: Y, U, V sampled per pixel)."""
    if fmt == YUV420SP:
        n = x.shape[0]
        flat = x.reshape(n, -1)
        y = flat[:, : src_h * src_w].reshape(n, src_h, src_w)
        uv = flat[:, src_h * src_w :].reshape(n, src_h // 2, src_w)
        rows = np.arange(src_h) >> 1
        cols = np.arange(src_w) & ~1
        u = uv[:, rows][:, :, cols]
        v = uv[:, rows][:, :, cols + 1]
        return np.stack([y, u, v], axis=-1).astype(np.int64)
    if fmt == XRGB8888:
        x = x[..., :3] if ax_swap else x[..., 1:]
    return x.astype(np.int64)


def _aipp_kernel(
    inputs,
    outputs,
    *,
    input_format,
    src_size,
    crop,
    csc_switch,
    rbuv_swap_switch,
    ax_swap_switch,
    matrix,
    input_bias,
    output_bias,
    mean_chn,
    min_chn,
    var_reci_chn,
    padding,
    padding_value,
    output_format,
):
    fmt = input_format
    src_h, src_w = src_size
    pix = _planes(inputs[0], fmt, src_h, src_w, ax_swap_switch)
    # swap: R/B for RGB input, U/V for YUV420SP (the same as swapping the matrix columns)
    if rbuv_swap_switch and pix.shape[-1] == 3:
        pix = pix[..., [2, 1, 0]] if fmt != YUV420SP else pix[..., [0, 2, 1]]
    h0, w0, ch, cw = crop
    pix = pix[:, h0 : h0 + ch, w0 : w0 + cw]
    if csc_switch and pix.shape[-1] == 3:
        m = np.asarray(matrix, dtype=np.int64).reshape(3, 3)
        t = pix - np.asarray(input_bias, dtype=np.int64) if fmt == YUV420SP else pix
        acc = np.einsum("nhwj,ij->nhwi", t, m)
        val = np.rint((2 * acc + 1) / 512.0).astype(np.int64)  # (2s+1)/512 never ties
        if fmt != YUV420SP:
            val = val + np.asarray(output_bias, dtype=np.int64)
        pix = np.clip(val, 0, 255)
    c = pix.shape[-1]
    half = np.float16
    centred = (pix - np.asarray(mean_chn[:c], dtype=np.int64)).astype(half)
    norm = (centred - np.asarray(min_chn[:c], dtype=half)) * np.asarray(
        var_reci_chn[:c], dtype=half
    )
    out = outputs[0]
    top, bottom, left, right = padding
    nhwc = output_format == int(Format.FORMAT_NHWC)
    view = out if nhwc else out.transpose(0, 2, 3, 1)
    if top or bottom or left or right:
        view[...] = half(padding_value)
    view[:, top : top + ch, left : left + cw, :] = norm


SCHEMAS = [
    OpSchema(
        "Aipp",
        inputs=(Input("images"),),
        outputs=(Output("features"),),
        attrs=(
            Attr(
                "input_format",
                AttrType.INT,
                doc="1 YUV420SP_U8, 2 XRGB8888_U8, 3 RGB888_U8, 4 YUV400_U8",
            ),
            Attr("src_size", AttrType.LIST_INT, doc="source image [h, w]"),
            Attr("crop", AttrType.LIST_INT, doc="[h0, w0, h, w] of the region kept"),
            Attr("csc_switch", AttrType.BOOL, False, doc="colour-space conversion on"),
            Attr("rbuv_swap_switch", AttrType.BOOL, False, doc="swap R/B (RGB) or U/V (YUV)"),
            Attr("ax_swap_switch", AttrType.BOOL, False, doc="XRGB8888: alpha last (RGBX)"),
            Attr("matrix", AttrType.LIST_INT, [0] * 9, doc="CSC matrix, row-major 3x3"),
            Attr("input_bias", AttrType.LIST_INT, [0, 0, 0], doc="CSC input bias (YUV input)"),
            Attr("output_bias", AttrType.LIST_INT, [0, 0, 0], doc="CSC output bias (RGB input)"),
            Attr("mean_chn", AttrType.LIST_INT, [0, 0, 0, 0], doc="per-channel mean"),
            Attr("min_chn", AttrType.LIST_FLOAT, [0.0] * 4, doc="per-channel min"),
            Attr("var_reci_chn", AttrType.LIST_FLOAT, [1.0] * 4, doc="per-channel 1/variance"),
            Attr("padding", AttrType.LIST_INT, [0, 0, 0, 0], doc="[top, bottom, left, right]"),
            Attr("padding_value", AttrType.FLOAT, 0.0, doc="value written into the padding"),
            Attr("output_format", AttrType.INT, int(Format.FORMAT_NCHW), doc="0 NCHW, 1 NHWC"),
        ),
        infer=_infer_aipp,
        kernel=_aipp_kernel,
        doc="GE's static AIPP: swap → crop → CSC (integer, GE rounding) → float16 "
        "normalisation (x − mean − min)·var_reci → padding. Inserted by --insert_op_conf.",
        onnx="(none: inserted by ATC's --insert_op_conf)",
    ),
]
