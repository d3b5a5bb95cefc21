"""Op family aipp: ``Aipp``, the image pre-processing GE inserts for ``--insert_op_conf``.

Ops layer. The arithmetic is GE's (ref/ge_dynamic_aipp_precision_dump.md §3): channel swap →
crop → colour-space conversion in integers with GE's rounding → normalisation in float16 →
padding with ``padding_value``. Input: uint8 NHWC — ``[N, H, W, 3]`` RGB888, ``[N, H, W, 4]``
XRGB8888, ``[N, H, W, 1]`` YUV400, and ``[N, H·3/2, W, 1]`` for YUV420SP (the NV12 planes: Y
rows, then interleaved UV rows). Output: float16 in the model input's layout (NCHW or NHWC).

Dynamic AIPP (``dynamic=True``): the images input is ``[N, max_src_image_size]`` bytes and a
second input holds the parameters in GE's binary layout (a 64-byte head, then 96 bytes per
batch; :data:`HEAD` and :data:`BATCH` give the fields), filled by ``acl.mdl.set_aipp_*``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import DataType, Format, TensorDesc
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

YUV420SP, XRGB8888, RGB888, YUV400 = 1, 2, 3, 4
#: bytes per pixel of each input format (YUV420SP: 1 luma byte + half a chroma byte)
IN_CHANNELS = {XRGB8888: 4, RGB888: 3, YUV400: 1, YUV420SP: 1}

#: dynamic parameter layout (GE's kAippDynamicPara): head fields (offset, struct format)
HEAD = {
    "input_format": (0, "B"),
    "csc_switch": (1, "b"),
    "rbuv_swap_switch": (2, "b"),
    "ax_swap_switch": (3, "b"),
    "batch_num": (4, "b"),
    "src_w": (8, "i"),
    "src_h": (12, "i"),
    **{f"matrix_{k}": (16 + 2 * k, "h") for k in range(9)},
    **{f"output_bias_{k}": (40 + k, "B") for k in range(3)},
    **{f"input_bias_{k}": (43 + k, "B") for k in range(3)},
}
#: per-batch fields, at 64 + 96·batch
BATCH = {
    "crop_switch": (0, "b"),
    "scf_switch": (1, "b"),
    "pad_switch": (2, "b"),
    "rotate_switch": (3, "b"),
    "crop_w0": (8, "i"),
    "crop_h0": (12, "i"),
    "crop_w": (16, "i"),
    "crop_h": (20, "i"),
    "pad_top": (40, "i"),
    "pad_bottom": (44, "i"),
    "pad_left": (48, "i"),
    "pad_right": (52, "i"),
    **{f"mean_{k}": (56 + 2 * k, "h") for k in range(4)},
    **{f"min_{k}": (64 + 2 * k, "e") for k in range(4)},
    **{f"var_{k}": (72 + 2 * k, "e") for k in range(4)},
}
HEAD_SIZE, BATCH_SIZE = 64, 96


def dynamic_params_size(batch: int) -> int:
    """Bytes of the ``ascend_dynamic_aipp_data`` input for ``batch`` images."""
    return HEAD_SIZE + BATCH_SIZE * batch


def input_shape(fmt: int, n: int, h: int, w: int) -> tuple[int, int, int, int]:
    """The uint8 NHWC input shape of an ``h``×``w`` source image of format ``fmt``."""
    if fmt == YUV420SP:
        return (n, h * 3 // 2, w, 1)
    return (n, h, w, IN_CHANNELS[fmt])


def image_bytes(fmt: int, h: int, w: int) -> int:
    """Bytes of one ``h``×``w`` image of format ``fmt``."""
    return h * w * 3 // 2 if fmt == YUV420SP else h * w * IN_CHANNELS[fmt]


def out_channels(fmt: int) -> int:
    """Channels the Aipp op produces for input format ``fmt``."""
    return 1 if fmt == YUV400 else 3


def _out_desc(n: int, c: int, h: int, w: int, output_format: int) -> TensorDesc:
    if output_format == int(Format.FORMAT_NHWC):
        return TensorDesc(DataType.DT_FLOAT16, (n, h, w, c), Format.FORMAT_NHWC)
    return TensorDesc(DataType.DT_FLOAT16, (n, c, h, w), Format.FORMAT_NCHW)


def _infer_aipp(ctx: InferContext) -> Sequence[TensorDesc]:
    x = ctx.input(0)
    a = ctx.attrs
    if x.dtype != DataType.DT_UINT8:
        raise ctx.error(f"input must be uint8, got {x.dtype.short_name}", DATATYPE_INVALID)
    if a["dynamic"]:
        n, c, h, w = a["model_shape"]
        if ctx.num_inputs < 2 or not ctx.has_input(1):
            raise ctx.error("dynamic AIPP needs the parameter input")
        if tuple(ctx.input(1).shape) != (dynamic_params_size(n),):
            raise ctx.error(f"parameter input must be uint8[{dynamic_params_size(n)}]")
        return [_out_desc(n, c, h, w, a["output_format"])]
    fmt = a["input_format"]
    if fmt not in IN_CHANNELS:
        raise ctx.error(f"input_format {fmt} is not one of 1 (YUV420SP), 2, 3, 4")
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
    return [
        _out_desc(n, out_channels(fmt), top + ch + bottom, left + cw + right, a["output_format"])
    ]


def _decode(flat: np.ndarray, fmt: int, src_h: int, src_w: int, ax_swap: bool) -> np.ndarray:
    """One image's bytes as int64 [H, W, C] pixels (YUV420SP: Y, U, V sampled per pixel)."""
    if fmt == YUV420SP:
        y = flat[: src_h * src_w].reshape(src_h, src_w)
        uv = flat[src_h * src_w : src_h * src_w * 3 // 2].reshape(src_h // 2, src_w)
        rows = uv[np.arange(src_h) >> 1]
        cols = np.arange(src_w) & ~1
        return np.stack([y, rows[:, cols], rows[:, cols + 1]], axis=-1).astype(np.int64)
    pix = flat[: image_bytes(fmt, src_h, src_w)].reshape(src_h, src_w, IN_CHANNELS[fmt])
    if fmt == XRGB8888:
        pix = pix[..., :3] if ax_swap else pix[..., 1:]
    return pix.astype(np.int64)


def _transform(
    pix,
    out_hwc,
    *,
    fmt,
    crop,
    csc,
    rbuv_swap,
    matrix,
    input_bias,
    output_bias,
    mean,
    mn,
    var,
    padding,
    padding_value,
) -> None:
    """swap → crop → CSC → float16 normalisation → padding, into ``out_hwc`` [H, W, C]."""
    if rbuv_swap and pix.shape[-1] == 3:
        pix = pix[..., [2, 1, 0]] if fmt != YUV420SP else pix[..., [0, 2, 1]]
    h0, w0, ch, cw = crop
    pix = pix[h0 : h0 + ch, w0 : w0 + cw]
    if csc and pix.shape[-1] == 3:
        m = np.asarray(matrix, dtype=np.int64).reshape(3, 3)
        t = pix - np.asarray(input_bias, dtype=np.int64) if fmt == YUV420SP else pix
        acc = np.einsum("hwj,ij->hwi", t, m)
        val = np.rint((2 * acc + 1) / 512.0).astype(np.int64)  # (2s+1)/512 never ties
        if fmt != YUV420SP:
            val = val + np.asarray(output_bias, dtype=np.int64)
        pix = np.clip(val, 0, 255)
    c = pix.shape[-1]
    half = np.float16
    centred = (pix - np.asarray(mean[:c], dtype=np.int64)).astype(half)
    scale = np.asarray(var[:c], dtype=half)
    norm = (centred - np.asarray(mn[:c], dtype=half)) * scale
    top, bottom, left, right = padding
    if top or bottom or left or right:
        out_hwc[...] = half(padding_value)
    out_hwc[top : top + ch, left : left + cw, :] = norm


def _read(buf: bytes, base: int, fields: dict, name: str):
    offset, fmt = fields[name]
    return struct.unpack_from("<" + fmt, buf, base + offset)[0]


def _dynamic_params(params: np.ndarray, batch: int, n: int) -> tuple[dict, dict]:
    buf = params.tobytes()
    head = {k: _read(buf, 0, HEAD, k) for k in HEAD}
    if head["input_format"] not in IN_CHANNELS:
        raise GeError(
            PARAM_INVALID,
            f"dynamic AIPP: input format {head['input_format']} is not set or not supported; "
            "call acl.mdl.set_aipp_input_format",
        )
    if head["batch_num"] != n:
        raise GeError(
            PARAM_INVALID,
            f"dynamic AIPP parameters are for {head['batch_num']} images; the model takes {n}",
        )
    one = {k: _read(buf, HEAD_SIZE + BATCH_SIZE * batch, BATCH, k) for k in BATCH}
    return head, one


def _aipp_kernel(
    inputs,
    outputs,
    *,
    dynamic,
    model_shape,
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
    x = inputs[0]
    out = outputs[0]
    hwc = out if output_format == int(Format.FORMAT_NHWC) else out.transpose(0, 2, 3, 1)
    n = x.shape[0]
    for b in range(n):
        flat = x[b].reshape(-1)
        if not dynamic:
            pix = _decode(flat, input_format, src_size[0], src_size[1], ax_swap_switch)
            _transform(
                pix,
                hwc[b],
                fmt=input_format,
                crop=crop,
                csc=csc_switch,
                rbuv_swap=rbuv_swap_switch,
                matrix=matrix,
                input_bias=input_bias,
                output_bias=output_bias,
                mean=mean_chn,
                mn=min_chn,
                var=var_reci_chn,
                padding=padding,
                padding_value=padding_value,
            )
            continue
        head, one = _dynamic_params(inputs[1], b, n)
        fmt, src_h, src_w = head["input_format"], head["src_h"], head["src_w"]
        if src_h <= 0 or src_w <= 0 or image_bytes(fmt, src_h, src_w) > flat.size:
            raise GeError(
                PARAM_INVALID,
                f"dynamic AIPP: source image {src_h}x{src_w} does not "
                f"fit the {flat.size}-byte input",
            )
        crop_box = [0, 0, src_h, src_w]
        if one["crop_switch"]:
            crop_box = [one["crop_h0"], one["crop_w0"], one["crop_h"], one["crop_w"]]
        pads = [0, 0, 0, 0]
        if one["pad_switch"]:
            pads = [one["pad_top"], one["pad_bottom"], one["pad_left"], one["pad_right"]]
        h, w = hwc.shape[1], hwc.shape[2]
        h0, w0, ch, cw = crop_box
        if (
            min(crop_box) < 0
            or h0 + ch > src_h
            or w0 + cw > src_w
            or ch + pads[0] + pads[1] != h
            or cw + pads[2] + pads[3] != w
        ):
            raise GeError(
                PARAM_INVALID,
                f"dynamic AIPP: crop {crop_box} and padding {pads} of a "
                f"{src_h}x{src_w} image do not give the model's {h}x{w}",
            )
        pix = _decode(flat, fmt, src_h, src_w, bool(head["ax_swap_switch"]))
        _transform(
            pix,
            hwc[b],
            fmt=fmt,
            crop=crop_box,
            csc=bool(head["csc_switch"]),
            rbuv_swap=bool(head["rbuv_swap_switch"]),
            matrix=[head[f"matrix_{k}"] for k in range(9)],
            input_bias=[head[f"input_bias_{k}"] for k in range(3)],
            output_bias=[head[f"output_bias_{k}"] for k in range(3)],
            mean=[one[f"mean_{k}"] for k in range(4)],
            mn=[one[f"min_{k}"] for k in range(4)],
            var=[one[f"var_{k}"] for k in range(4)],
            padding=pads,
            padding_value=0.0,
        )


SCHEMAS = [
    OpSchema(
        "Aipp",
        inputs=(Input("images"), Input("params", optional=True, doc="dynamic AIPP parameters")),
        outputs=(Output("features"),),
        attrs=(
            Attr("dynamic", AttrType.BOOL, False, doc="parameters come from input 1"),
            Attr("model_shape", AttrType.LIST_INT, [0, 0, 0, 0], doc="dynamic: output n, c, h, w"),
            Attr("input_format", AttrType.INT, 3, doc="1 YUV420SP, 2 XRGB8888, 3 RGB888, 4 YUV400"),
            Attr("src_size", AttrType.LIST_INT, [0, 0], doc="source image [h, w]"),
            Attr("crop", AttrType.LIST_INT, [0, 0, 0, 0], doc="[h0, w0, h, w] of the region kept"),
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
        doc="GE's AIPP: swap → crop → CSC (integer, GE rounding) → float16 normalisation "
        "(x − mean − min)·var_reci → padding. Inserted by --insert_op_conf (static, or dynamic "
        "with the parameters in a second input).",
        onnx="(none: inserted by ATC's --insert_op_conf)",
    ),
]
