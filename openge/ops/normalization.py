"""Op family nn, normalization: BNInference, BatchNorm, LayerNorm, InstanceNorm, GroupNorm,
LRN (ops layer)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID, UNSUPPORTED
from openge.graph import Format, TensorDesc
from openge.ops.common import (
    FLOAT_TYPES,
    check_dtype,
    desc_like,
    normalize_axis,
    same_dtype,
)
from openge.ops.nn_common import (
    _NORM_FORMATS,
    _acc_dtype,
    _broadcasts_to,
    _channel_axis,
    _check_vector,
    _opt,
    _rank,
    _store,
)
from openge.ops.norm_compiled import prepare_layer_norm
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

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


SCHEMAS = [
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
        prepare=prepare_layer_norm,
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
]

__all__ = ["SCHEMAS"]
