"""Op family: reductions (ReduceSum … ReduceAny, their ``…D`` forms), ArgMax/ArgMin, TopKV2, Cumsum.

Ops layer: depends on ``openge.graph`` and ``openge.errors`` only.

Axes semantics (CANN): the input-axes forms take ``axes`` as a compile-time constant 1-D (or 0-D)
int32/int64 tensor. An empty ``axes`` leaves ``x`` unchanged when the op has
``noop_with_empty_axes`` and it is true (CANN's default, TF behaviour) and reduces every axis
otherwise (ONNX behaviour); ops without that attr reduce every axis. Float16 inputs accumulate in
float64; integer sums and products wrap in the input type, as on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, SHAPE_INVALID, GeError
from openge.graph import DataType, TensorDesc
from openge.ops.common import (
    FLOAT_TYPES,
    INDEX_TYPES,
    NUMBER_TYPES,
    REAL_NUMBER_TYPES,
    as_int_list,
    check_dtype,
    normalize_axes,
    normalize_axis,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output

_BOOL = frozenset({DataType.DT_BOOL})
_F16_F32 = frozenset({DataType.DT_FLOAT16, DataType.DT_FLOAT})
_MAXMIN_D = frozenset(
    {DataType.DT_FLOAT, DataType.DT_FLOAT16, DataType.DT_INT8, DataType.DT_UINT8, DataType.DT_INT32}
)
_L2_TYPES = frozenset({DataType.DT_FLOAT16, DataType.DT_FLOAT, DataType.DT_INT32})


# ----- axes ----------------------------------------------------------------------------------


def _const_axes(ctx: InferContext, index: int, what: str) -> list[int]:
    """A constant 0-D or 1-D int32/int64 input as a list of ints."""
    check_dtype(ctx, index, INDEX_TYPES)
    value = np.asarray(ctx.require_const(index, what))
    if value.ndim > 1:
        raise ctx.error(f"{what} must be a scalar or a 1-D tensor, got shape {list(value.shape)}")
    return as_int_list(ctx, value, what)


def _reduce_axes(
    ctx: InferContext, axes: Sequence[int], rank: int, noop_with_empty_axes: bool
) -> tuple[int, ...] | None:
    """Normalized reduction axes; None means "leave x unchanged" (empty axes with noop)."""
    if not axes:
        return None if noop_with_empty_axes else tuple(range(rank))
    if rank == 0:
        # A scalar has nothing to reduce; axis 0 / -1 are accepted as "all of it".
        bad = [a for a in axes if a not in (0, -1)]
        if bad:
            raise ctx.error(f"axes {list(axes)} are out of range for a scalar input", SHAPE_INVALID)
        return ()
    return tuple(sorted(normalize_axes(ctx, axes, rank)))


def _kernel_axes(
    op: str, axes: Sequence[int], rank: int, noop_with_empty_axes: bool
) -> tuple[int, ...] | None:
    """Run-time twin of ``_reduce_axes`` (values were checked at compile time)."""
    if not axes:
        return None if noop_with_empty_axes else tuple(range(rank))
    if rank == 0:
        return ()
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise GeError(SHAPE_INVALID, f"{op}: axis {a} is out of range for a rank-{rank} input")
        out.append(a % rank)
    return tuple(sorted(set(out)))


def _ints(value: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _reduced_shape(shape: Sequence[int], axes: Sequence[int], keep_dims: bool) -> tuple[int, ...]:
    if keep_dims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# ----- reductions ----------------------------------------------------------------------------


def _acc_float(x: np.ndarray) -> np.dtype:
    """Accumulation dtype: float64 for float16/float32, else the input's own."""
    if x.dtype.kind == "f" and x.dtype.itemsize < 8:
        return np.dtype(np.float64)
    return x.dtype


def _sum(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    dtype = np.float64 if x.dtype == np.float16 else x.dtype
    return np.asarray(np.sum(x, axis=axes, dtype=dtype, keepdims=keep))


def _prod(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    dtype = np.float64 if x.dtype == np.float16 else x.dtype
    return np.prod(x, axis=axes, dtype=dtype, keepdims=keep)


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype: np.dtype) -> Any:
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


def _max(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    # ``initial`` makes an empty reduction give the identity (ONNX: -inf / the type's minimum).
    return np.max(x, axis=axes, keepdims=keep, initial=_lowest(x.dtype))


def _min(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    return np.min(x, axis=axes, keepdims=keep, initial=_highest(x.dtype))


def _count(x: np.ndarray, axes: tuple[int, ...]) -> int:
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


def _mean(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    n = _count(x, axes)
    if x.dtype.kind in "iu":
        acc = np.int64 if x.dtype.kind == "i" else np.uint64
        total = np.sum(x, axis=axes, dtype=acc, keepdims=keep)
        if n == 0:
            return np.asarray(total)  # all zeros: an empty integer mean is defined as 0
        if x.dtype.kind == "u":
            return np.asarray(total // np.uint64(n))
        # Integer mean truncates toward zero (TensorFlow / C++ division).
        return np.asarray(np.sign(total) * (np.abs(total) // n))
    dtype = np.dtype(np.complex128) if x.dtype.kind == "c" else _acc_float(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(x, axis=axes, dtype=dtype, keepdims=keep) / dtype.type(n)


def _log_sum_exp(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    xf = x.astype(np.float64)
    m = np.max(xf, axis=axes, keepdims=True, initial=-np.inf)
    shift = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        s = np.sum(np.exp(xf - shift), axis=axes, keepdims=True)
        out = np.log(s) + shift
    return out if keep else np.squeeze(out, axis=axes)


def _euclidean_norm(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    xf = x.astype(np.float64)
    return np.sqrt(np.sum(xf * xf, axis=axes, keepdims=keep))


def _all(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    return np.all(x, axis=axes, keepdims=keep)


def _any(x: np.ndarray, axes: tuple[int, ...], keep: bool) -> np.ndarray:
    return np.any(x, axis=axes, keepdims=keep)


_Reducer = Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]


def _make_infer(allowed: frozenset[DataType], axes_attr: bool) -> Callable[..., list[TensorDesc]]:
    def infer(ctx: InferContext) -> list[TensorDesc]:
        dtype = check_dtype(ctx, 0, allowed)
        x = ctx.input(0)
        axes = list(ctx.attrs["axes"]) if axes_attr else _const_axes(ctx, 1, "axes")
        noop = bool(ctx.attrs.get("noop_with_empty_axes", False))
        rank = len(x.shape)
        norm = _reduce_axes(ctx, axes, rank, noop)
        if norm is None:
            return [TensorDesc(dtype, x.shape, x.format, x.origin_format)]
        keep = bool(ctx.attrs["keep_dims"])
        shape = _reduced_shape(x.shape, norm, keep)
        if keep:
            return [TensorDesc(dtype, shape, x.format, x.origin_format)]
        return [TensorDesc(dtype, shape)]

    return infer


def _make_kernel(op: str, reducer: _Reducer, axes_attr: bool, has_noop: bool) -> Callable:
    def run(x: np.ndarray, out: np.ndarray, axes: Sequence[int], keep: bool, noop: bool) -> None:
        norm = _kernel_axes(op, axes, x.ndim, noop)
        if norm is None:
            np.copyto(out, x)
            return
        result = reducer(x, norm, keep)
        np.copyto(out, np.reshape(result, out.shape), casting="unsafe")

    def attr_noop_kernel(inputs, outputs, *, axes, keep_dims, noop_with_empty_axes):
        run(inputs[0], outputs[0], axes, keep_dims, noop_with_empty_axes)

    def attr_kernel(inputs, outputs, *, axes, keep_dims):
        run(inputs[0], outputs[0], axes, keep_dims, False)

    def input_noop_kernel(inputs, outputs, *, keep_dims, noop_with_empty_axes):
        run(inputs[0], outputs[0], _ints(inputs[1]), keep_dims, noop_with_empty_axes)

    def input_kernel(inputs, outputs, *, keep_dims):
        run(inputs[0], outputs[0], _ints(inputs[1]), keep_dims, False)

    # The kernel declares exactly the attrs its schema has (the registry checks the signature).
    kernel: Callable[..., None]
    if axes_attr:
        kernel = attr_noop_kernel if has_noop else attr_kernel
    else:
        kernel = input_noop_kernel if has_noop else input_kernel
    kernel.__name__ = f"_{op}_kernel"
    return kernel


def _make_prepare(op: str, axes_attr: bool, has_noop: bool) -> Callable:
    """ReduceSum / ReduceMean's ``prepare``: over trailing axes of a contiguous float32/float64
    tensor (a global average pooling, a mean over the last axis), one compiled pass of row
    sums (openge.kernels.norm.row_sums, float64 sums; within the conformance tolerance of the
    NumPy kernel, whose float32 sums round more); None keeps the NumPy kernel."""
    mean = op.startswith("ReduceMean")

    def prepare(inputs, outputs, constant, **attrs):
        x, y = inputs[0], outputs[0]
        if axes_attr:
            axes = list(attrs["axes"])
        elif len(inputs) > 1 and inputs[1] is not None and constant[1]:
            axes = _ints(inputs[1])
        else:
            return None
        if x is None or x.ndim == 0 or x.dtype not in (np.float32, np.float64):
            return None
        if y.dtype != x.dtype or not (x.flags.c_contiguous and y.flags.c_contiguous):
            return None
        noop = bool(attrs.get("noop_with_empty_axes", False)) if has_noop else False
        try:
            norm = _kernel_axes(op, axes, x.ndim, noop)
        except GeError:
            return None
        if not norm or norm != tuple(range(norm[0], x.ndim)):
            return None
        rows, inner = math.prod(x.shape[: norm[0]]), math.prod(x.shape[norm[0] :])
        if not rows or not inner or y.size != rows:
            return None
        from openge.ops.compiled import (
            PARALLEL_ELEMENTS,
            launcher,
            load,
            row_parts,
            warm,
            worth_compiling,
        )

        if not worth_compiling(x.size):
            return None
        module = load("norm")
        if module is None:
            return None
        args = (x.reshape(rows, inner), y.reshape(rows), 1.0 / inner if mean else 1.0)
        if not warm(module.row_sums, *args):
            return None
        big = x.size >= PARALLEL_ELEMENTS and rows > 1
        ranged = (row_parts(module.row_sums, (0, 1)), rows)
        return launcher(module.row_sums, big, *args, ranged=ranged)

    return prepare


def _reduce_schema(
    op: str,
    reducer: _Reducer,
    allowed: frozenset[DataType],
    doc: str,
    onnx: str,
    *,
    axes_attr: bool = False,
    noop_default: bool | None = None,
) -> OpSchema:
    """One reduction op; ``noop_default`` None means the op has no noop_with_empty_axes attr."""
    attrs: list[Attr] = []
    if axes_attr:
        attrs.append(Attr("axes", AttrType.LIST_INT, doc="axes to reduce; [] reduces all"))
    attrs.append(Attr("keep_dims", AttrType.BOOL, False, doc="keep reduced axes with length 1"))
    if noop_default is not None:
        attrs.append(
            Attr(
                "noop_with_empty_axes",
                AttrType.BOOL,
                noop_default,
                doc="empty axes: true leaves x unchanged, false reduces all",
            )
        )
    inputs = (Input("x"),) if axes_attr else (Input("x"), Input("axes"))
    return OpSchema(
        op,
        inputs=inputs,
        outputs=(Output("y"),),
        attrs=tuple(attrs),
        infer=_make_infer(allowed, axes_attr),
        kernel=_make_kernel(op, reducer, axes_attr, noop_default is not None),
        prepare=(
            _make_prepare(op, axes_attr, noop_default is not None)
            if reducer in (_sum, _mean)
            else None
        ),
        doc=doc,
        onnx=onnx,
    )


# ----- ArgMaxV2 / ArgMin ---------------------------------------------------------------------


def _infer_arg(ctx: InferContext) -> list[TensorDesc]:
    check_dtype(ctx, 0, REAL_NUMBER_TYPES)
    x = ctx.input(0)
    rank = len(x.shape)
    dims = _const_axes(ctx, 1, "dimension")
    if len(dims) != 1:
        raise ctx.error(f"dimension must hold exactly one axis, got {dims}")
    if rank == 0:
        raise ctx.error("x must have rank ≥ 1", SHAPE_INVALID)
    axis = normalize_axis(ctx, dims[0], rank, "dimension")
    if x.shape[axis] == 0:
        raise ctx.error(
            f"cannot take the index of an extreme over empty axis {axis}", SHAPE_INVALID
        )
    dtype = ctx.attrs["dtype"]
    return [TensorDesc(dtype, tuple(d for i, d in enumerate(x.shape) if i != axis))]


def _arg_axis(op: str, x: np.ndarray, dimension: np.ndarray) -> int:
    dims = _ints(dimension)
    if len(dims) != 1 or x.ndim == 0 or not -x.ndim <= dims[0] < x.ndim:
        raise GeError(SHAPE_INVALID, f"{op}: dimension {dims} is not valid for a rank-{x.ndim} x")
    axis = dims[0] % x.ndim
    if x.shape[axis] == 0:
        raise GeError(SHAPE_INVALID, f"{op}: cannot take the index of an extreme over empty axis")
    return axis


def _argmax_kernel(inputs, outputs):
    x = inputs[0]
    axis = _arg_axis("ArgMaxV2", x, inputs[1])
    np.copyto(outputs[0], np.argmax(x, axis=axis), casting="unsafe")


def _argmin_kernel(inputs, outputs):
    x = inputs[0]
    axis = _arg_axis("ArgMin", x, inputs[1])
    np.copyto(outputs[0], np.argmin(x, axis=axis), casting="unsafe")


# ----- TopKV2 --------------------------------------------------------------------------------


def _infer_topk(ctx: InferContext) -> list[TensorDesc]:
    dtype = check_dtype(ctx, 0, REAL_NUMBER_TYPES)
    x = ctx.input(0)
    rank = len(x.shape)
    if rank == 0:
        raise ctx.error("x must have rank ≥ 1", SHAPE_INVALID)
    ks = _const_axes(ctx, 1, "k")
    if len(ks) != 1:
        raise ctx.error(f"k must be a single value, got {ks}")
    k = ks[0]
    axis = normalize_axis(ctx, ctx.attrs["dim"], rank, "dim")
    n = x.shape[axis]
    if k < 0 or (n >= 0 and k > n):
        raise ctx.error(
            f"k = {k} must be in [0, {n}] (the size of axis {axis} of x)", SHAPE_INVALID
        )
    shape = list(x.shape)
    shape[axis] = k
    index_dtype = DataType(ctx.attrs["indices_dtype"])
    return [TensorDesc(dtype, tuple(shape)), TensorDesc(index_dtype, tuple(shape))]


def _topk_kernel(inputs, outputs, *, dim, largest):
    # ``sorted`` is not read: the result is always sorted, which satisfies sorted=false too.
    x = inputs[0]
    rank = x.ndim
    if not -rank <= dim < rank:
        raise GeError(SHAPE_INVALID, f"TopKV2: dim {dim} is out of range for a rank-{rank} x")
    axis = dim % rank
    k = outputs[0].shape[axis]
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    if largest:
        # Stable descending order: ties keep the lower index first (as ONNX TopK).
        order = (n - 1) - np.argsort(xm[..., ::-1], axis=-1, kind="stable")[..., ::-1]
    else:
        order = np.argsort(xm, axis=-1, kind="stable")
    order = order[..., :k]
    values = np.take_along_axis(xm, order, axis=-1)
    np.copyto(outputs[0], np.moveaxis(values, -1, axis))
    np.copyto(outputs[1], np.moveaxis(order, -1, axis), casting="unsafe")


# ----- Cumsum --------------------------------------------------------------------------------


def _infer_cumsum(ctx: InferContext) -> list[TensorDesc]:
    dtype = check_dtype(ctx, 0, NUMBER_TYPES)
    x = ctx.input(0)
    rank = len(x.shape)
    if rank == 0:
        raise ctx.error("x must have rank ≥ 1", SHAPE_INVALID)
    if ctx.op_type == "CumsumD":
        normalize_axis(ctx, ctx.attrs["axis"], rank)
    else:
        check_dtype(ctx, 1, INDEX_TYPES)
        value = ctx.const_value(1)
        if value is not None:
            axes = as_int_list(ctx, np.asarray(value), "axis")
            if len(axes) != 1:
                raise ctx.error(f"axis must be a single value, got {axes}")
            normalize_axis(ctx, axes[0], rank)
    return [TensorDesc(dtype, x.shape, x.format, x.origin_format)]


def _cumsum(x: np.ndarray, out: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> None:
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise GeError(SHAPE_INVALID, f"Cumsum: axis {axis} is out of range for a rank-{x.ndim} x")
    axis %= x.ndim
    acc = np.float64 if x.dtype == np.float16 else x.dtype
    data = np.flip(x, axis) if reverse else x
    total = np.cumsum(data, axis=axis, dtype=acc)
    if exclusive:
        shifted = np.zeros_like(total)
        src = [slice(None)] * x.ndim
        dst = [slice(None)] * x.ndim
        src[axis] = slice(0, -1)
        dst[axis] = slice(1, None)
        shifted[tuple(dst)] = total[tuple(src)]
        total = shifted
    if reverse:
        total = np.flip(total, axis)
    np.copyto(out, total, casting="unsafe")


def _cumsum_kernel(inputs, outputs, *, exclusive, reverse):
    axes = _ints(inputs[1])
    if len(axes) != 1:
        raise GeError(PARAM_INVALID, f"Cumsum: axis must be a single value, got {axes}")
    _cumsum(inputs[0], outputs[0], axes[0], exclusive, reverse)


def _cumsum_d_kernel(inputs, outputs, *, axis, exclusive, reverse):
    _cumsum(inputs[0], outputs[0], axis, exclusive, reverse)


# ----- schemas -------------------------------------------------------------------------------

_NO_COMPLEX = REAL_NUMBER_TYPES
_MEAN_SUM = NUMBER_TYPES

SCHEMAS = [
    _reduce_schema(
        "ReduceSum", _sum, _MEAN_SUM, "y = sum of x over axes.", "ReduceSum", noop_default=True
    ),
    _reduce_schema(
        "ReduceMean",
        _mean,
        _MEAN_SUM,
        "y = mean of x over axes (integer means truncate toward zero).",
        "ReduceMean",
        noop_default=True,
    ),
    _reduce_schema(
        "ReduceMax",
        _max,
        _NO_COMPLEX,
        "y = max of x over axes (an empty reduction gives -inf / the type's minimum).",
        "ReduceMax",
        noop_default=True,
    ),
    _reduce_schema(
        "ReduceMin",
        _min,
        _NO_COMPLEX,
        "y = min of x over axes (an empty reduction gives +inf / the type's maximum).",
        "ReduceMin",
        noop_default=True,
    ),
    _reduce_schema(
        "ReduceProd",
        _prod,
        _MEAN_SUM,
        "y = product of x over axes.",
        "ReduceProd",
        noop_default=True,
    ),
    _reduce_schema(
        "ReduceLogSumExp",
        _log_sum_exp,
        FLOAT_TYPES,
        "y = log(sum(exp(x))) over axes, computed stably.",
        "ReduceLogSumExp",
        noop_default=False,
    ),
    _reduce_schema(
        "EuclideanNorm",
        _euclidean_norm,
        _L2_TYPES | {DataType.DT_DOUBLE},
        "y = sqrt(sum(x²)) over axes (the L2 norm; empty axes reduce all).",
        "ReduceL2",
    ),
    _reduce_schema(
        "ReduceAll",
        _all,
        _BOOL,
        "y = logical AND of x over axes (empty axes reduce all).",
        "tf.reduce_all",
    ),
    _reduce_schema(
        "ReduceAny",
        _any,
        _BOOL,
        "y = logical OR of x over axes (empty axes reduce all).",
        "tf.reduce_any",
    ),
    _reduce_schema(
        "ReduceSumD",
        _sum,
        _F16_F32,
        "ReduceSum with the axes as an attr.",
        "ReduceSum",
        axes_attr=True,
    ),
    _reduce_schema(
        "ReduceMeanD",
        _mean,
        _F16_F32,
        "ReduceMean with the axes as an attr.",
        "ReduceMean",
        axes_attr=True,
        noop_default=False,
    ),
    _reduce_schema(
        "ReduceMaxD",
        _max,
        _MAXMIN_D,
        "ReduceMax with the axes as an attr.",
        "ReduceMax",
        axes_attr=True,
    ),
    _reduce_schema(
        "ReduceMinD",
        _min,
        _MAXMIN_D,
        "ReduceMin with the axes as an attr.",
        "ReduceMin",
        axes_attr=True,
    ),
    _reduce_schema(
        "ReduceProdD",
        _prod,
        _MAXMIN_D,
        "ReduceProd with the axes as an attr.",
        "ReduceProd",
        axes_attr=True,
    ),
    _reduce_schema(
        "ReduceAllD",
        _all,
        _BOOL,
        "ReduceAll with the axes as an attr.",
        "tf.reduce_all",
        axes_attr=True,
    ),
    _reduce_schema(
        "ReduceAnyD",
        _any,
        _BOOL,
        "ReduceAny with the axes as an attr.",
        "tf.reduce_any",
        axes_attr=True,
    ),
    OpSchema(
        "ArgMaxV2",
        inputs=(Input("x"), Input("dimension", doc="constant scalar axis")),
        outputs=(Output("y"),),
        attrs=(
            Attr(
                "dtype",
                AttrType.TYPE,
                DataType.DT_INT64,
                choices=(DataType.DT_INT32, DataType.DT_INT64),
                doc="index type of y",
            ),
        ),
        infer=_infer_arg,
        kernel=_argmax_kernel,
        doc="y = index of the largest x along dimension (the first one on ties).",
        onnx="ArgMax (keepdims=0, select_last_index=0)",
    ),
    OpSchema(
        "ArgMin",
        inputs=(Input("x"), Input("dimension", doc="constant scalar axis")),
        outputs=(Output("y"),),
        attrs=(
            Attr(
                "dtype",
                AttrType.TYPE,
                DataType.DT_INT64,
                choices=(DataType.DT_INT32, DataType.DT_INT64),
                doc="index type of y",
            ),
        ),
        infer=_infer_arg,
        kernel=_argmin_kernel,
        doc="y = index of the smallest x along dimension (the first one on ties).",
        onnx="ArgMin (keepdims=0, select_last_index=0)",
    ),
    OpSchema(
        "TopKV2",
        inputs=(Input("x"), Input("k", doc="constant scalar count")),
        outputs=(Output("values"), Output("indices")),
        attrs=(
            Attr("sorted", AttrType.BOOL, True, doc="results are always sorted in openge"),
            Attr("dim", AttrType.INT, -1, doc="axis to select along"),
            Attr("largest", AttrType.BOOL, True, doc="largest (descending) or smallest"),
            Attr(
                "indices_dtype",
                AttrType.INT,
                int(DataType.DT_INT32),
                choices=(int(DataType.DT_INT32), int(DataType.DT_INT64)),
                doc="DataType value of indices: 3 (int32) or 9 (int64)",
            ),
        ),
        infer=_infer_topk,
        kernel=_topk_kernel,
        doc="The k largest (or smallest) x along dim and their indices; ties keep the lower "
        "index first.",
        onnx="TopK",
    ),
    OpSchema(
        "Cumsum",
        inputs=(Input("x"), Input("axis", doc="scalar axis")),
        outputs=(Output("y"),),
        attrs=(
            Attr("exclusive", AttrType.BOOL, False, doc="exclude the current element"),
            Attr("reverse", AttrType.BOOL, False, doc="sum from the end"),
        ),
        infer=_infer_cumsum,
        kernel=_cumsum_kernel,
        doc="y = cumulative sum of x along axis.",
        onnx="CumSum",
    ),
    OpSchema(
        "CumsumD",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(
            Attr("axis", AttrType.INT, 0),
            Attr("exclusive", AttrType.BOOL, False, doc="exclude the current element"),
            Attr("reverse", AttrType.BOOL, False, doc="sum from the end"),
        ),
        infer=_infer_cumsum,
        kernel=_cumsum_d_kernel,
        doc="Cumsum with the axis as an attr.",
        onnx="CumSum",
    ),
]

__all__ = ["SCHEMAS"]
