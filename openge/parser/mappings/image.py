"""ONNX image ops → catalog image ops (Resize, GridSampler2D/3D) and compositions.

Resize's opset-18 extras are resolved here: ``axes`` widen scales/sizes/roi to every axis and
``keep_aspect_ratio_policy`` becomes explicit sizes plus the common scale. Upsample (opsets 7–9)
and Resize-10 are asymmetric resizes (nearest: floor).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import DataType, Port
from openge.parser.mappings import onnx_op
from openge.parser.mappings.nn import matmul
from openge.parser.mappings.shape import norm_axes
from openge.parser.onnx_parser import OnnxNode, ParseContext

_RESIZE_ATTRS = (
    "mode",
    "coordinate_transformation_mode",
    "cubic_coeff_a",
    "exclude_outside",
    "extrapolation_value",
    "nearest_mode",
    "antialias",
    "axes",
    "keep_aspect_ratio_policy",
)


def _opt_value(ctx: ParseContext, port: Port | None, what: str) -> np.ndarray | None:
    if port is None:
        return None
    value = ctx.require_value(port, what)
    return None if value.size == 0 else value


def _legacy_resize(ctx: ParseContext, x: Port, scales: list[float], mode: str) -> Port:
    rank = ctx.rank(x)
    if len(scales) != rank or any(s <= 0 for s in scales):
        raise ctx.error(f"scales {scales} must hold {rank} positive factors", SHAPE_INVALID)
    if mode not in ("nearest", "linear", "bilinear"):
        raise ctx.error(f"mode {mode!r} must be nearest or linear")
    return ctx.emit1(
        "Resize",
        [x, None, ctx.const(np.array(scales, dtype=np.float32))],
        {
            "mode": "nearest" if mode == "nearest" else "linear",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        },
    )


@onnx_op(
    "Upsample",
    until=9,
    needs=("Resize",),
    shape_inputs=lambda v: (1,) if v >= 9 else (),
    attrs=("mode", "scales"),
    inputs=2,
)
def upsample(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Upsample → Resize (asymmetric; nearest rounds down)."""
    x = node.input(0)
    if node.opset >= 9:
        scales = [float(v) for v in ctx.require_value(node.input(1), "scales").reshape(-1)]
    else:
        scales = [float(v) for v in node.attr("scales", [])]
    return [_legacy_resize(ctx, x, scales, node.attr("mode", "nearest"))]


@onnx_op(
    "Resize",
    since=10,
    needs=("Resize",),
    shape_inputs=lambda v: (1,) if v == 10 else (1, 2, 3),
    attrs=_RESIZE_ATTRS,
    inputs=4,
)
def resize(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Resize → Resize with constant scales/sizes over every axis."""
    x = node.input(0)
    dims = ctx.shape(x)
    rank = len(dims)
    if node.opset == 10:
        legacy = [float(v) for v in ctx.require_value(node.input(1), "scales").reshape(-1)]
        return [_legacy_resize(ctx, x, legacy, node.attr("mode", "nearest"))]
    roi = _opt_value(ctx, node.opt(1), "roi")
    scales = _opt_value(ctx, node.opt(2), "scales")
    sizes_v = _opt_value(ctx, node.opt(3), "sizes")
    if (scales is None) == (sizes_v is None):
        raise ctx.error("exactly one of scales and sizes must be given")
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else norm_axes(ctx, list(axes), rank)
    n = len(axes)
    full_scales: list[float] | None = None
    full_sizes: list[int] | None = None
    if scales is not None:
        scales = scales.astype(np.float64).reshape(-1)
        if scales.size != n:
            raise ctx.error(f"scales has {scales.size} values; expected {n}", SHAPE_INVALID)
        full_scales = [1.0] * rank
        for a, factor in zip(axes, scales):
            full_scales[a] = float(np.float32(factor))
    elif sizes_v is not None:
        sizes = [int(v) for v in sizes_v.reshape(-1)]
        if len(sizes) != n:
            raise ctx.error(f"sizes has {len(sizes)} values; expected {n}", SHAPE_INVALID)
        full_sizes = list(dims)
        for a, length in zip(axes, sizes):
            full_sizes[a] = length
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            ratios = [full_sizes[a] / dims[a] for a in axes]
            if policy == "not_larger":
                common = min(ratios)
            elif policy == "not_smaller":
                common = max(ratios)
            else:
                raise ctx.error(f"keep_aspect_ratio_policy {policy!r} is not valid")
            full_scales = [common if i in axes else 1.0 for i in range(rank)]
            full_sizes = [
                int(common * dims[i] + 0.5) if i in axes else dims[i] for i in range(rank)
            ]
    full_roi = None
    ctm = node.attr("coordinate_transformation_mode", "half_pixel")
    if ctm == "tf_crop_and_resize":
        if roi is None:
            raise ctx.error("tf_crop_and_resize needs roi")
        roi = roi.astype(np.float64).reshape(-1)
        if roi.size != 2 * n:
            raise ctx.error(f"roi has {roi.size} values; expected {2 * n}", SHAPE_INVALID)
        full = [0.0] * rank + [1.0] * rank
        for i, a in enumerate(axes):
            full[a] = float(roi[i])
            full[rank + a] = float(roi[n + i])
        full_roi = ctx.const(np.array(full, dtype=np.float32))
    if node.attr("antialias", 0):
        effective = (
            full_scales
            if full_scales is not None
            else [s / d if d else 1.0 for s, d in zip(full_sizes or dims, dims)]
        )
        mode = node.attr("mode", "nearest")
        if any(s < 1 for s in effective) and mode != "nearest":
            if ctm == "tf_crop_and_resize":
                raise ctx.unsupported("antialiased tf_crop_and_resize")
            sizes_out = full_sizes or [int(np.floor(f * d)) for f, d in zip(effective, dims)]
            return [_antialias_resize(node, ctx, x, effective, sizes_out, mode, ctm)]
    attrs = {
        "mode": node.attr("mode", "nearest"),
        "coordinate_transformation_mode": ctm,
        "cubic_coeff_a": float(node.attr("cubic_coeff_a", -0.75)),
        "exclude_outside": int(node.attr("exclude_outside", 0)),
        "extrapolation_value": float(node.attr("extrapolation_value", 0.0)),
        "nearest_mode": node.attr("nearest_mode", "round_prefer_floor"),
    }
    ins: list[Port | None] = [x, full_roi]
    ins.append(None if full_scales is None else ctx.const(np.array(full_scales, np.float32)))
    ins.append(None if full_sizes is None else ctx.const(np.array(full_sizes, np.int64)))
    return [ctx.emit1("Resize", ins, attrs)]


def _antialias_weights(
    in_len: int, out_len: int, scale: float, mode: str, ctm: str, a: float, exclude: bool
) -> np.ndarray:
    """The (out_len, in_len) matrix of an antialiased linear/cubic resize along one axis
    (ONNX's filters: support widened by 1/scale when downsampling, weights normalized)."""
    y = np.arange(out_len, dtype=np.float64)
    out_w = scale * in_len
    if ctm == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel_symmetric":
        x = in_len / 2 * (1 - out_len / out_w) + (y + 0.5) / scale - 0.5
    elif ctm == "pytorch_half_pixel":
        x = np.full(out_len, -0.5) if out_w == 1 else (y + 0.5) / scale - 0.5
    elif ctm == "align_corners":
        x = np.zeros(out_len) if out_w == 1 else y * (in_len - 1) / (out_w - 1)
    elif ctm == "asymmetric":
        x = y / scale
    else:
        raise ValueError(ctm)
    s = min(scale, 1.0)
    weights = np.zeros((out_len, in_len))
    for o in range(out_len):
        base = np.floor(x[o])
        ratio = 1.0 if x[o] == base else x[o] - base
        if mode == "linear":
            start = int(np.floor(-1 / s) + 1)
            taps = np.arange(start, start + 2 - 2 * start)
            coeffs = np.clip(1 - np.abs((taps - ratio) * s), 0, 1)
        else:
            start = int(np.floor(-2 / s) + 1)
            taps = np.arange(start, 2 - start)
            d = np.abs(s * (taps - ratio))
            coeffs = np.where(
                d <= 1,
                ((a + 2) * d - (a + 3)) * d * d + 1,
                np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0),
            )
        coeffs = coeffs / coeffs.sum()
        n = len(coeffs)
        pad = int(np.ceil(n / 2))
        xp = x[o] + pad
        p = np.floor(xp)
        frac = xp - p
        if n % 2 == 0:
            offset = -(n // 2) if frac == 0 else -(n // 2) + 1
        else:
            offset = -((n - 1) // 2) + (0 if frac <= 0.5 else 1)
        idx = int(p) + offset + np.arange(n) - pad
        if exclude:
            coeffs = np.where((idx < 0) | (idx >= in_len), 0.0, coeffs)
            total = coeffs.sum()
            coeffs = coeffs / (total if total else 1.0)
        np.add.at(weights[o], np.clip(idx, 0, in_len - 1), coeffs)
    return weights


def _antialias_resize(
    node: OnnxNode,
    ctx: ParseContext,
    x: Port,
    scales: Sequence[float],
    sizes: Sequence[int],
    mode: str,
    ctm: str,
) -> Port:
    """Antialiased Resize as one matmul per resized axis with a matrix built at parse time."""
    dims = list(ctx.shape(x))
    dt = ctx.dtype(x)
    calc = dt if dt in (DataType.DT_FLOAT, DataType.DT_DOUBLE) else DataType.DT_DOUBLE
    y = ctx.cast(x, calc)
    a = float(node.attr("cubic_coeff_a", -0.75))
    exclude = bool(node.attr("exclude_outside", 0))
    for axis, (scale, out_len) in enumerate(zip(scales, sizes)):
        if scale == 1.0 and out_len == dims[axis]:
            continue
        ctx.reserve(16 * dims[axis] * out_len, "antialias weights")
        w = _antialias_weights(dims[axis], out_len, float(scale), mode, ctm, a, exclude)
        rank = len(dims)
        perm = [i for i in range(rank) if i != axis] + [axis]
        moved = ctx.transpose(y, perm)
        z = matmul(ctx, moved, ctx.const(w.T.astype(calc.np_dtype)))
        inverse = list(np.argsort(perm))
        y = ctx.transpose(z, inverse)
        dims[axis] = out_len
    if calc == dt:
        return y
    if dt in (DataType.DT_FLOAT16,):
        return ctx.cast(y, dt)
    info = np.iinfo(dt.np_dtype)
    y = ctx.emit1("Round", [y])
    y = ctx.emit1(
        "Minimum",
        [ctx.emit1("Maximum", [y, ctx.scalar(info.min, calc)]), ctx.scalar(info.max, calc)],
    )
    return ctx.cast(y, dt)


@onnx_op(
    "GridSample",
    since=16,
    needs=("GridSampler2D",),
    attrs=("align_corners", "mode", "padding_mode"),
    inputs=2,
)
def grid_sample(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """GridSample → GridSampler2D (4-D) / GridSampler3D (5-D)."""
    x, grid = node.input(0), node.input(1)
    mode = node.attr("mode", "bilinear" if node.opset < 20 else "linear")
    mode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
    rank = ctx.rank(x)
    op = {4: "GridSampler2D", 5: "GridSampler3D"}.get(rank)
    if op is None:
        raise ctx.unsupported(f"GridSample of a rank-{rank} input")
    if ctx.dtype(grid) != ctx.dtype(x):
        grid = ctx.cast(grid, ctx.dtype(x))
    return [
        ctx.emit1(
            op,
            [x, grid],
            {
                "interpolation_mode": mode,
                "padding_mode": node.attr("padding_mode", "zeros"),
                "align_corners": bool(node.attr("align_corners", 0)),
            },
        )
    ]


@onnx_op(
    "AffineGrid",
    since=20,
    needs=("BatchMatMulV2",),
    shape_inputs=(1,),
    attrs=("align_corners",),
    inputs=2,
)
def affine_grid(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """AffineGrid → BatchMatMulV2(base grid, thetaᵀ) with the base grid built at parse time."""
    theta = node.input(0)
    size = ctx.int_list(node.input(1), "size")
    align = bool(node.attr("align_corners", 0))
    spatial = size[2:]
    k = len(spatial)
    if k not in (2, 3) or ctx.shape(theta) != (size[0], k, k + 1):
        raise ctx.error(f"theta {list(ctx.shape(theta))} does not fit size {size}", SHAPE_INVALID)
    if any(d < 0 for d in spatial):
        raise ctx.error(f"size {size} has a negative dim", SHAPE_INVALID)
    ctx.reserve(8 * (k + 2) * int(np.prod(spatial, dtype=object)), "the base grid")
    axes = []
    for length in spatial:
        if align:
            axes.append(np.linspace(-1.0, 1.0, length) if length > 1 else np.array([-1.0]))
        else:
            axes.append((2 * np.arange(length) + 1) / length - 1)
    mesh = np.meshgrid(*axes, indexing="ij")  # D?, H, W
    coords = [m.reshape(-1) for m in mesh[::-1]]  # x (W), y (H)[, z (D)]
    base = np.stack([*coords, np.ones_like(coords[0])], axis=1)
    dt = ctx.dtype(theta)
    base_c = ctx.const(base.astype(dt.np_dtype))
    grid = ctx.emit1("BatchMatMulV2", [base_c, theta], {"adj_x2": True})
    return [ctx.reshape(grid, (size[0], *spatial, k))]


@onnx_op(
    "CenterCropPad",
    since=18,
    needs=("StridedSlice", "PadV3"),
    shape_inputs=(1,),
    attrs=("axes",),
    inputs=2,
)
def center_crop_pad(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """CenterCropPad → StridedSlice (crop, extra on the end) + PadV3 (zeros, extra on the end)."""
    x = node.input(0)
    dims = ctx.shape(x)
    rank = len(dims)
    target = ctx.int_list(node.input(1), "shape")
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else norm_axes(ctx, list(axes), rank)
    if len(target) != len(axes):
        raise ctx.error(f"shape has {len(target)} values for {len(axes)} axes", SHAPE_INVALID)
    begin = [0] * rank
    end = list(dims)
    pads = [[0, 0] for _ in range(rank)]
    for a, t in zip(axes, target):
        d = dims[a]
        if t < d:
            begin[a] = (d - t) // 2
            end[a] = begin[a] + t
        elif t > d:
            pads[a] = [(t - d) // 2, t - d - (t - d) // 2]
    y = ctx.emit1(
        "StridedSlice",
        [
            x,
            ctx.const(np.array(begin, np.int64)),
            ctx.const(np.array(end, np.int64)),
            ctx.const(np.ones(rank, np.int64)),
        ],
    )
    if any(p != [0, 0] for p in pads):
        flat = [v for p in pads for v in p]
        y = ctx.emit1(
            "PadV3",
            [y, ctx.const(np.array(flat, np.int64))],
            {"mode": "constant", "paddings_contiguous": True},
        )
    return [y]
