"""Detection-head ops: RoiAlign (bilinear samples averaged or maxed per output cell) and
DeformConv (a 2-D convolution whose taps sample the input at learned offsets)."""

from __future__ import annotations

import numpy as np

from openge.errors import SHAPE_INVALID, GeError
from openge.graph import TensorDesc
from openge.ops.common import FLOAT_TYPES, INDEX_TYPES, check_dtype
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output


def _axis_samples(start: float, bin_size: float, bins: int, grid: int, size: int):
    """Sample positions of one axis → (low index, high index, low weight, high weight, valid),
    each [bins, grid]."""
    k = np.arange(bins)[:, None] * bin_size + (np.arange(grid)[None, :] + 0.5) * bin_size / grid
    pos = start + k
    valid = (pos >= -1.0) & (pos <= size)
    pos = np.maximum(pos, 0.0)
    low = pos.astype(np.int64)
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    pos = np.where(at_edge, low, pos)
    frac = pos - low
    return low, high, 1.0 - frac, frac, valid


def roi_align(
    x: np.ndarray,
    rois: np.ndarray,
    batch_indices: np.ndarray,
    *,
    mode: str,
    output_height: int,
    output_width: int,
    sampling_ratio: int,
    spatial_scale: float,
    half_pixel: bool,
) -> np.ndarray:
    """ONNX RoiAlign: [R, C, output_height, output_width] in x's dtype."""
    n, c, h, w = x.shape
    out = np.zeros((rois.shape[0], c, output_height, output_width), dtype=x.dtype)
    shift = 0.5 if half_pixel else 0.0
    for r in range(rois.shape[0]):
        b = int(batch_indices[r])
        if not 0 <= b < n:
            raise GeError(SHAPE_INVALID, f"RoiAlign: batch index {b} is outside [0, {n})")
        x1, y1, x2, y2 = (float(v) * spatial_scale - shift for v in rois[r, :4])
        rw, rh = x2 - x1, y2 - y1
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / output_height, rw / output_width
        gh = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rh / output_height))
        gw = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rw / output_width))
        if gh <= 0 or gw <= 0:
            continue
        yl, yh, wyl, wyh, vy = _axis_samples(y1, bh, output_height, gh, h)
        xl, xh, wxl, wxh, vx = _axis_samples(x1, bw, output_width, gw, w)
        feat = x[b].astype(np.float64)
        valid = vy[:, :, None, None] & vx[None, None, :, :]  # [oh, gh, ow, gw]
        terms = []
        for yi, wy in ((yl, wyl), (yh, wyh)):
            for xi, wx in ((xl, wxl), (xh, wxh)):
                weight = np.where(valid, wy[:, :, None, None] * wx[None, None, :, :], 0.0)
                values = feat[:, yi[:, :, None, None], xi[None, None, :, :]]
                terms.append(weight * values)  # [C, oh, gh, ow, gw]
        if mode == "avg":
            total = terms[0] + terms[1] + terms[2] + terms[3]
            out[r] = total.sum(axis=(2, 4)) / max(gh * gw, 1)
        else:
            best = np.maximum(np.maximum(terms[0], terms[1]), np.maximum(terms[2], terms[3]))
            out[r] = best.max(axis=(2, 4))
    return out


def _infer_roi_align(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, FLOAT_TYPES)
    check_dtype(ctx, 1, FLOAT_TYPES)
    check_dtype(ctx, 2, INDEX_TYPES)
    x, rois, idx = ctx.input(0), ctx.input(1), ctx.input(2)
    if len(x.shape) != 4:
        raise ctx.error(f"x must be [N, C, H, W], got {list(x.shape)}", SHAPE_INVALID)
    if len(rois.shape) != 2 or rois.shape[1] not in (4, -1) or len(idx.shape) != 1:
        raise ctx.error("rois must be [R, 4] and batch_indices [R]", SHAPE_INVALID)
    a = ctx.attrs
    if a["output_height"] < 1 or a["output_width"] < 1 or a["sampling_ratio"] < 0:
        raise ctx.error("output sizes must be ≥ 1 and sampling_ratio ≥ 0")
    shape = (rois.shape[0], x.shape[1], a["output_height"], a["output_width"])
    return [TensorDesc(x.dtype, shape)]


def _roi_align_kernel(
    inputs, outputs, *, mode, output_height, output_width, sampling_ratio, spatial_scale, half_pixel
):
    outputs[0][...] = roi_align(
        inputs[0],
        inputs[1],
        inputs[2],
        mode=mode,
        output_height=output_height,
        output_width=output_width,
        sampling_ratio=sampling_ratio,
        spatial_scale=spatial_scale,
        half_pixel=half_pixel,
    )


def _bilinear_zero(img: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """img [C, H, W] sampled at pixel coordinates (py, px) (any equal shape S), bilinear with
    zeros outside: [C, *S]."""
    _, h, w = img.shape
    y0, x0 = np.floor(py), np.floor(px)
    out = np.zeros((img.shape[0], *py.shape), dtype=np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            yi, xi = y0 + dy, x0 + dx
            wgt = (1 - np.abs(py - yi)) * (1 - np.abs(px - xi))
            ok = (yi >= 0) & (yi <= h - 1) & (xi >= 0) & (xi <= w - 1)
            yc = np.clip(yi, 0, h - 1).astype(np.int64)
            xc = np.clip(xi, 0, w - 1).astype(np.int64)
            out += img[:, yc, xc] * np.where(ok, wgt, 0.0)
    return out


def deform_conv(
    x: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray,
    bias: np.ndarray | None,
    mask: np.ndarray | None,
    *,
    strides: list[int],
    pads: list[int],
    dilations: list[int],
    group: int,
    offset_group: int,
) -> np.ndarray:
    """ONNX DeformConv (2-D): [N, OC, OH, OW] in x's dtype."""
    n, c, _, _ = x.shape
    oc, cpg, kh, kw = weight.shape
    oh, ow = offset.shape[2:]
    off = offset.reshape(n, offset_group, kh, kw, 2, oh, ow).astype(np.float64)
    msk = None if mask is None else mask.reshape(n, offset_group, kh, kw, oh, ow)
    base_y = (np.arange(oh) * strides[0] - pads[0])[None, None, :, None] + (
        np.arange(kh) * dilations[0]
    )[:, None, None, None]
    base_x = (np.arange(ow) * strides[1] - pads[1])[None, None, None, :] + (
        np.arange(kw) * dilations[1]
    )[None, :, None, None]
    per_off = c // offset_group
    out = np.zeros((n, oc, oh, ow), dtype=np.float64)
    ocpg = oc // group
    for b in range(n):
        cols = np.empty((c, kh, kw, oh, ow), dtype=np.float64)
        for gi in range(offset_group):
            py = base_y + off[b, gi, :, :, 0]
            px = base_x + off[b, gi, :, :, 1]
            part = _bilinear_zero(
                x[b, gi * per_off : (gi + 1) * per_off].astype(np.float64), py, px
            )
            if msk is not None:
                part = part * msk[b, gi][None]
            cols[gi * per_off : (gi + 1) * per_off] = part
        for g in range(group):
            w_g = weight[g * ocpg : (g + 1) * ocpg].reshape(ocpg, -1).astype(np.float64)
            c_g = cols[g * cpg : (g + 1) * cpg].reshape(cpg * kh * kw, oh * ow)
            out[b, g * ocpg : (g + 1) * ocpg] = (w_g @ c_g).reshape(ocpg, oh, ow)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out.astype(x.dtype)


def _infer_deform_conv(ctx: InferContext) -> list[TensorDesc]:
    for i in (0, 1, 2, 3, 4):
        if ctx.has_input(i):
            check_dtype(ctx, i, FLOAT_TYPES)
    x, w, off = ctx.input(0), ctx.input(1), ctx.input(2)
    a = ctx.attrs
    if len(x.shape) != 4 or len(w.shape) != 4 or len(off.shape) != 4:
        raise ctx.error("DeformConv takes 2-D images: X, W and offset must be 4-D", SHAPE_INVALID)
    g, og = a["group"], a["offset_group"]
    n, c, h, wd = x.shape
    oc, cpg, kh, kw = w.shape
    if g < 1 or og < 1 or c != cpg * g or oc % g or c % og:
        raise ctx.error(f"channels {c}, W {list(w.shape)}, group {g}, offset_group {og} disagree")
    if off.shape[1] != og * 2 * kh * kw:
        raise ctx.error(f"offset has {off.shape[1]} channels; expected {og * 2 * kh * kw}")
    (sh, sw), (dh, dw), p = a["strides"], a["dilations"], a["pads"]
    oh = (h + p[0] + p[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + p[1] + p[3] - (kw - 1) * dw - 1) // sw + 1
    if tuple(off.shape[2:]) != (oh, ow) or off.shape[0] != n:
        raise ctx.error(f"offset {list(off.shape)} does not match the output [{n}, ?, {oh}, {ow}]")
    return [TensorDesc(x.dtype, (n, oc, oh, ow))]


def _deform_conv_kernel(inputs, outputs, *, strides, pads, dilations, group, offset_group):
    ins = list(inputs) + [None] * (5 - len(inputs))
    outputs[0][...] = deform_conv(
        ins[0],
        ins[1],
        ins[2],
        ins[3],
        ins[4],
        strides=strides,
        pads=pads,
        dilations=dilations,
        group=group,
        offset_group=offset_group,
    )


SCHEMAS = [
    OpSchema(
        "DeformConv",
        inputs=[
            Input("x"),
            Input("filter"),
            Input("offset"),
            Input("bias", optional=True),
            Input("mask", optional=True),
        ],
        outputs=[Output("y")],
        attrs=[
            Attr("strides", AttrType.LIST_INT, [1, 1]),
            Attr("pads", AttrType.LIST_INT, [0, 0, 0, 0]),
            Attr("dilations", AttrType.LIST_INT, [1, 1]),
            Attr("group", AttrType.INT, 1),
            Attr("offset_group", AttrType.INT, 1),
        ],
        infer=_infer_deform_conv,
        kernel=_deform_conv_kernel,
        onnx="DeformConv",
        doc="2-D convolution whose taps sample X bilinearly at per-position offsets (zeros "
        "outside), optionally scaled by a mask.",
    ),
    OpSchema(
        "RoiAlign",
        inputs=[Input("x"), Input("rois"), Input("batch_indices")],
        outputs=[Output("y")],
        attrs=[
            Attr("mode", AttrType.STR, "avg", choices=("avg", "max")),
            Attr("output_height", AttrType.INT, 1),
            Attr("output_width", AttrType.INT, 1),
            Attr("sampling_ratio", AttrType.INT, 0),
            Attr("spatial_scale", AttrType.FLOAT, 1.0),
            Attr("half_pixel", AttrType.BOOL, True),
        ],
        infer=_infer_roi_align,
        kernel=_roi_align_kernel,
        onnx="RoiAlign",
        doc="Regions of interest pooled to a fixed grid by bilinear samples (avg or max).",
    ),
]
