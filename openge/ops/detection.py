"""Detection-head ops: RoiAlign (bilinear samples averaged or maxed per output cell)."""

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


SCHEMAS = [
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
