"""Op family image: Resize (nearest / linear / cubic, N-D) and GridSampler2D / GridSampler3D.

Ops layer: depends on ``openge.graph`` and ``openge.errors`` only. Interfaces follow CANN's
REG_OP prototypes (image_ops.h): ``Resize(x, roi?, scales?, sizes?)`` with ONNX's attributes,
``GridSampler2D(x, grid)`` / ``GridSampler3D(x, grid)`` with interpolation_mode, padding_mode and
align_corners. Interpolation is done in float64 and rounded once to the output type (integer
outputs round half to even and saturate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID
from openge.graph import DataType, TensorDesc
from openge.ops.common import FLOAT_TYPES, INDEX_TYPES, REAL_NUMBER_TYPES, check_dtype, desc_like
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

_RESIZE_TYPES = frozenset(REAL_NUMBER_TYPES - {DataType.DT_UINT32, DataType.DT_UINT64})
_MODES = ("nearest", "linear", "cubic")
_CTMS = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _store(out: np.ndarray, value: np.ndarray) -> None:
    """Round and saturate ``value`` (float64) into ``out``."""
    if out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        value = np.clip(np.rint(value), info.min, info.max)
    np.copyto(out, value, casting="unsafe")


# ----- Resize ---------------------------------------------------------------------------------


def _resize_plan(
    in_shape: Sequence[int], scales: np.ndarray | None, sizes: np.ndarray | None, what
) -> tuple[list[float], list[int]]:
    """Per-axis (scale, output length): sizes give the lengths (and, alone, the scales)."""
    rank = len(in_shape)
    if sizes is not None:
        sizes_l = [int(v) for v in np.asarray(sizes).reshape(-1)]
        if len(sizes_l) != rank or any(s < 0 for s in sizes_l):
            raise what(f"sizes {sizes_l} must hold {rank} non-negative lengths")
        if scales is not None:
            scale_l = [float(v) for v in np.asarray(scales).reshape(-1)]
            if len(scale_l) != rank or any(s <= 0 for s in scale_l):
                raise what(f"scales {scale_l} must hold {rank} positive factors")
        else:
            scale_l = [s / d if d else 1.0 for s, d in zip(sizes_l, in_shape)]
        return scale_l, sizes_l
    if scales is None:
        raise what("one of scales and sizes is required")
    scale_l = [float(v) for v in np.asarray(scales).reshape(-1)]
    if len(scale_l) != rank or any(not s > 0 for s in scale_l):
        raise what(f"scales {scale_l} must hold {rank} positive factors")
    return scale_l, [int(np.floor(s * d)) for s, d in zip(scale_l, in_shape)]


def _infer_resize(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, _RESIZE_TYPES)
    x = ctx.input(0)
    if not x.is_static:
        raise ctx.error("x must have a static shape", SHAPE_INVALID)
    a = ctx.attrs
    if a["mode"] not in _MODES:
        raise ctx.error(f"attr mode {a['mode']!r} must be one of {', '.join(_MODES)}")
    if a["coordinate_transformation_mode"] not in _CTMS:
        raise ctx.error(f"attr coordinate_transformation_mode must be one of {', '.join(_CTMS)}")
    if a["nearest_mode"] not in _NEAREST:
        raise ctx.error(f"attr nearest_mode must be one of {', '.join(_NEAREST)}")
    if a["exclude_outside"] not in (0, 1):
        raise ctx.error("attr exclude_outside must be 0 or 1")
    scales = sizes = None
    if ctx.has_input(2) and ctx.input(2).numel != 0:
        check_dtype(ctx, 2, FLOAT_TYPES)
        scales = ctx.require_const(2, "scales")
    if ctx.has_input(3) and ctx.input(3).numel != 0:
        check_dtype(ctx, 3, INDEX_TYPES)
        sizes = ctx.require_const(3, "sizes")
    rank = len(x.shape)
    if a["coordinate_transformation_mode"] == "tf_crop_and_resize":
        if not ctx.has_input(1):
            raise ctx.error("tf_crop_and_resize needs the roi input")
        check_dtype(ctx, 1, FLOAT_TYPES)
        if ctx.input(1).shape != (2 * rank,):
            raise ctx.error(f"roi must have {2 * rank} values (starts then ends)", SHAPE_INVALID)
    _, out = _resize_plan(x.shape, scales, sizes, lambda m: ctx.error(m, SHAPE_INVALID))
    for d, o in zip(x.shape, out):
        if d == 0 and o != 0:
            raise ctx.error("cannot resize an empty axis to a non-empty one", SHAPE_INVALID)
    return [desc_like(ctx, 0, shape=tuple(out))]


def _source_coords(
    ctm: str, out_len: int, in_len: int, scale: float, roi: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Source coordinate of every output index along one axis (+ extrapolation mask)."""
    y = np.arange(out_len, dtype=np.float64)
    out_w = scale * in_len
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if ctm == "half_pixel_symmetric":
        adjust = out_len / out_w
        offset = in_len / 2 * (1 - adjust)
        return offset + (y + 0.5) / scale - 0.5, None
    if ctm == "pytorch_half_pixel":
        if out_w == 1:
            return np.full(out_len, -0.5), None
        return (y + 0.5) / scale - 0.5, None
    if ctm == "align_corners":
        if out_w == 1:
            return np.zeros(out_len), None
        return y * (in_len - 1) / (out_w - 1), None
    if ctm == "asymmetric":
        return y / scale, None
    if ctm == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale, None
    # roi stays in its own (float32) type for the span and the offset, as ONNX computes them.
    start, end = roi  # type: ignore[misc]
    span = end - start
    if out_w == 1:
        x = np.full(out_len, span * (in_len - 1) / 2, dtype=np.float64)
    else:
        x = y * span * (in_len - 1) / (out_w - 1)
    x = x + start * (in_len - 1)
    return x, (x < 0) | (x > in_len - 1)


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _resize_axis(
    data: np.ndarray,
    axis: int,
    scale: float,
    out_len: int,
    *,
    mode: str,
    ctm: str,
    nearest_mode: str,
    cubic_coeff_a: float,
    exclude_outside: int,
    roi: tuple[float, float] | None,
    extrapolation_value: float,
) -> np.ndarray:
    in_len = data.shape[axis]
    if out_len == 0 or in_len == 0:
        shape = list(data.shape)
        shape[axis] = out_len
        return np.zeros(shape, dtype=data.dtype)
    x, outside = _source_coords(ctm, out_len, in_len, scale, roi)
    base = np.floor(x)
    frac = x - base
    base = base.astype(np.int64)
    if mode == "nearest":
        if nearest_mode == "round_prefer_floor":
            idx = np.where(frac <= 0.5, base, base + 1)
        elif nearest_mode == "round_prefer_ceil":
            idx = np.where((frac < 0.5) & (frac > 0), base, np.where(frac == 0, base, base + 1))
        elif nearest_mode == "floor":
            idx = base
        else:
            idx = np.where(frac == 0, base, base + 1)
        taps = idx[:, None]
        weights = np.ones((out_len, 1))
    elif mode == "linear":
        taps = base[:, None] + np.arange(2)[None, :]
        weights = np.stack([1 - frac, frac], axis=1)
    else:
        offs = np.arange(-1, 3)
        taps = base[:, None] + offs[None, :]
        weights = _cubic(frac[:, None] - offs[None, :], cubic_coeff_a)
    if exclude_outside:
        # (for nearest, a chosen cell outside the input gets weight 0 and so the value 0)
        weights = np.where((taps < 0) | (taps >= in_len), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    taps = np.clip(taps, 0, in_len - 1)
    picked = np.take(data, taps.reshape(-1), axis=axis)
    shape = list(data.shape)
    shape[axis : axis + 1] = [out_len, taps.shape[1]]
    picked = picked.reshape(shape)
    wshape = [1] * len(shape)
    wshape[axis], wshape[axis + 1] = out_len, taps.shape[1]
    result = np.sum(picked * weights.reshape(wshape), axis=axis + 1)
    if outside is not None and outside.any():
        mshape = [1] * data.ndim
        mshape[axis] = out_len
        result = np.where(outside.reshape(mshape), extrapolation_value, result)
    return result


def _resize_kernel(
    inputs,
    outputs,
    *,
    coordinate_transformation_mode,
    cubic_coeff_a,
    exclude_outside,
    extrapolation_value,
    mode,
    nearest_mode,
):
    x = inputs[0]
    roi = inputs[1] if len(inputs) > 1 else None
    scales = inputs[2] if len(inputs) > 2 and inputs[2] is not None and inputs[2].size else None
    sizes = inputs[3] if len(inputs) > 3 and inputs[3] is not None and inputs[3].size else None
    scale_l, out_l = _resize_plan(x.shape, scales, sizes, ValueError)
    rank = x.ndim
    roi_v = None if roi is None or roi.size == 0 else list(roi.reshape(-1))
    data = x.astype(np.float64)
    for axis in range(rank):
        axis_roi = None if roi_v is None else (roi_v[axis], roi_v[axis + rank])
        identity = (
            out_l[axis] == data.shape[axis]
            and scale_l[axis] == 1.0
            and (axis_roi is None or axis_roi == (0.0, 1.0))
            and coordinate_transformation_mode != "tf_crop_and_resize"
        )
        if identity:
            continue
        data = _resize_axis(
            data,
            axis,
            scale_l[axis],
            out_l[axis],
            mode=mode,
            ctm=coordinate_transformation_mode,
            nearest_mode=nearest_mode,
            cubic_coeff_a=cubic_coeff_a,
            exclude_outside=exclude_outside,
            roi=axis_roi,
            extrapolation_value=extrapolation_value,
        )
    _store(outputs[0], data)


# ----- GridSampler2D / GridSampler3D ------------------------------------------------------------

_INTERP = ("bilinear", "nearest", "bicubic")
_PADDING = ("zeros", "border", "reflection")


def _infer_grid_sampler(rank: int):
    def infer(ctx: InferContext) -> Sequence[TensorDesc]:
        check_dtype(ctx, 0, FLOAT_TYPES)
        check_dtype(ctx, 1, FLOAT_TYPES)
        x, grid = ctx.input(0), ctx.input(1)
        if len(x.shape) != rank or len(grid.shape) != rank:
            raise ctx.error(
                f"x and grid must be {rank}-D, got {list(x.shape)} and {list(grid.shape)}",
                SHAPE_INVALID,
            )
        if grid.shape[-1] != rank - 2 or grid.shape[0] != x.shape[0]:
            raise ctx.error(
                f"grid must be (N, ..., {rank - 2}) with x's N, got {list(grid.shape)}",
                SHAPE_INVALID,
            )
        if ctx.attrs["interpolation_mode"] not in _INTERP:
            raise ctx.error(f"attr interpolation_mode must be one of {', '.join(_INTERP)}")
        if rank == 5 and ctx.attrs["interpolation_mode"] == "bicubic":
            raise ctx.error("bicubic interpolation is 2-D only", DATATYPE_INVALID)
        if ctx.attrs["padding_mode"] not in _PADDING:
            raise ctx.error(f"attr padding_mode must be one of {', '.join(_PADDING)}")
        return [desc_like(ctx, 0, shape=(x.shape[0], x.shape[1], *grid.shape[1:-1]))]

    return infer


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    below = x < lo
    above = x > hi
    d = np.where(below, lo - x, np.where(above, x - hi, 0.0))
    n = np.floor(d / span)
    r = d - n * span
    even = (n % 2) == 0
    low_side = np.where(even, lo + r, hi - r)
    high_side = np.where(even, hi - r, lo + r)
    return np.where(below, low_side, np.where(above, high_side, x))


def _grid_sample(
    x: np.ndarray, grid: np.ndarray, mode: str, padding: str, align: bool
) -> np.ndarray:
    n_batch, channels = x.shape[:2]
    dims = x.shape[2:]
    k = len(dims)
    out_sp = grid.shape[1:-1]
    g = grid.reshape(n_batch, -1, k).astype(np.float64)[:, :, ::-1]  # (N, P, k) in dim order
    coords = []
    for i, length in enumerate(dims):
        v = g[:, :, i]
        c = (v + 1) / 2 * (length - 1) if align else ((v + 1) * length - 1) / 2
        coords.append(c)
    lo = [0.0 if align else -0.5 for _ in dims]
    hi = [(d - 1.0) if align else d - 0.5 for d in dims]
    if mode == "nearest":
        coords = [np.rint(c) for c in coords]
    for i, length in enumerate(dims):
        c = coords[i]
        out = (c < lo[i]) | (c > hi[i])
        if padding == "border":
            coords[i] = np.where(out, np.clip(c, 0, length - 1), c)
        elif padding == "reflection":
            coords[i] = np.where(out, _reflect(c, lo[i], hi[i]), c)
    flat = x.reshape(n_batch, channels, -1).astype(np.float64)
    strides = np.cumprod((1, *dims[::-1]))[:-1][::-1]

    def fetch(idx: list[np.ndarray]) -> np.ndarray:
        """Values (N, C, P) at integer positions, with the padding rule for outside ones."""
        valid = np.ones(idx[0].shape, dtype=bool)
        fixed = []
        for i, length in enumerate(dims):
            j = idx[i]
            if padding == "zeros":
                valid &= (j >= 0) & (j < length)
                j = np.clip(j, 0, length - 1)
            elif padding == "border":
                j = np.clip(j, 0, length - 1)
            else:
                j = _reflect(j.astype(np.float64), lo[i], hi[i]).astype(np.int64)
                j = np.clip(j, 0, length - 1)
            fixed.append(j)
        lin = sum(f * s for f, s in zip(fixed, strides))
        vals = np.take_along_axis(
            flat, np.broadcast_to(lin[:, None, :], (n_batch, channels, lin.shape[1])), axis=2
        )
        return vals * valid[:, None, :]

    if mode == "nearest":
        res = fetch([c.astype(np.int64) for c in coords])
    else:
        taps = (0, 1) if mode == "bilinear" else (-1, 0, 1, 2)
        base = [np.floor(c).astype(np.int64) for c in coords]
        frac = [c - np.floor(c) for c in coords]
        weights = []
        for f in frac:
            if mode == "bilinear":
                weights.append([1 - f, f])
            else:
                weights.append([_cubic(f - t, -0.75) for t in taps])
        res = np.zeros((n_batch, channels, g.shape[1]))
        for combo in np.ndindex(*([len(taps)] * k)):
            w = np.ones_like(frac[0])
            for i, t in enumerate(combo):
                w = w * weights[i][t]
            res += fetch([base[i] + taps[t] for i, t in enumerate(combo)]) * w[:, None, :]
    return res.reshape(n_batch, channels, *out_sp)


def _grid_sampler_kernel(inputs, outputs, *, interpolation_mode, padding_mode, align_corners):
    _store(
        outputs[0],
        _grid_sample(inputs[0], inputs[1], interpolation_mode, padding_mode, align_corners),
    )


def _grid_attrs() -> tuple[Attr, ...]:
    return (
        Attr("interpolation_mode", AttrType.STR, "bilinear", choices=_INTERP),
        Attr("padding_mode", AttrType.STR, "zeros", choices=_PADDING),
        Attr("align_corners", AttrType.BOOL, False),
    )


SCHEMAS = [
    OpSchema(
        "Resize",
        inputs=(
            Input("x"),
            Input("roi", optional=True),
            Input("scales", optional=True),
            Input("sizes", optional=True),
        ),
        outputs=(Output("y"),),
        attrs=(
            Attr("coordinate_transformation_mode", AttrType.STR, "half_pixel", choices=_CTMS),
            Attr("cubic_coeff_a", AttrType.FLOAT, -0.75),
            Attr("exclude_outside", AttrType.INT, 0),
            Attr("extrapolation_value", AttrType.FLOAT, 0.0),
            Attr("mode", AttrType.STR, "nearest", choices=_MODES),
            Attr("nearest_mode", AttrType.STR, "round_prefer_floor", choices=_NEAREST),
        ),
        infer=_infer_resize,
        kernel=_resize_kernel,
        doc="Resizes every axis of x (nearest, linear or cubic, separable) to sizes, or by "
        "scales (length floor(scale·n)); given both, sizes set the lengths and scales the "
        "coordinate mapping; constant scales/sizes.",
        onnx="Resize (no antialias; axes and keep_aspect_ratio_policy resolved by the parser)",
    ),
    OpSchema(
        "GridSampler2D",
        inputs=(Input("x"), Input("grid")),
        outputs=(Output("y"),),
        attrs=_grid_attrs(),
        infer=_infer_grid_sampler(4),
        kernel=_grid_sampler_kernel,
        doc="Samples NCHW x at the normalized (x, y) points of grid (N, Ho, Wo, 2).",
        onnx="GridSample (4-D)",
    ),
    OpSchema(
        "GridSampler3D",
        inputs=(Input("x"), Input("grid")),
        outputs=(Output("y"),),
        attrs=_grid_attrs(),
        infer=_infer_grid_sampler(5),
        kernel=_grid_sampler_kernel,
        doc="Samples NCDHW x at the normalized (x, y, z) points of grid (N, Do, Ho, Wo, 3).",
        onnx="GridSample (5-D)",
    ),
]
