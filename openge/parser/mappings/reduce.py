"""ONNX reductions, arg-extremes, TopK, CumSum/CumProd → catalog reduce ops (+ compositions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import DataType, Port
from openge.parser.mappings import onnx_op
from openge.parser.mappings.shape import axes_arg, norm_axes, norm_axis
from openge.parser.onnx_parser import OnnxNode, ParseContext

I64 = DataType.DT_INT64
BOOL = DataType.DT_BOOL


def reduce_axes(node: OnnxNode, ctx: ParseContext, x: Port, input_since: int) -> list[int] | None:
    """The normalized axes to reduce; None when the node is a no-op (empty axes + noop)."""
    rank = ctx.rank(x)
    axes = axes_arg(node, ctx, input_since)
    if not axes:
        if node.attr("noop_with_empty_axes", 0) and node.opset >= input_since:
            return None
        return list(range(rank))
    if rank == 0:
        if any(a not in (0, -1) for a in axes):
            raise ctx.error(f"axes {axes} are out of range for a scalar", SHAPE_INVALID)
        return []
    return sorted(norm_axes(ctx, axes, rank))


def emit_reduce(ctx: ParseContext, op: str, x: Port, axes: list[int], keep: bool) -> Port:
    """A catalog ``op`` (x, axes) reduction over explicit, non-empty axes."""
    if not axes:
        return ctx.emit1("Identity", [x])
    return ctx.emit1(
        op,
        [x, ctx.const(np.array(axes, dtype=np.int64))],
        {"keep_dims": bool(keep), "noop_with_empty_axes": False}
        if ctx_has_noop(op)
        else {"keep_dims": bool(keep)},
    )


def ctx_has_noop(op: str) -> bool:
    """True when the catalog reduction ``op`` has the noop_with_empty_axes attr."""
    from openge.ops import get_schema

    return get_schema(op).attr("noop_with_empty_axes") is not None


_PLAIN = {
    "ReduceSum": ("ReduceSum", 13),
    "ReduceMean": ("ReduceMean", 18),
    "ReduceProd": ("ReduceProd", 18),
    "ReduceLogSumExp": ("ReduceLogSumExp", 18),
}


def _reduce_mapping(onnx_name: str, catalog: str, since: int) -> None:
    @onnx_op(
        onnx_name,
        needs=(catalog,),
        shape_inputs=lambda v: (1,) if v >= since else (),
        attrs=("axes", "keepdims", "noop_with_empty_axes"),
        inputs=2,
    )
    def mapping(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
        x = node.input(0)
        axes = reduce_axes(node, ctx, x, since)
        if axes is None:
            return [ctx.emit1("Identity", [x])]
        return [emit_reduce(ctx, catalog, x, axes, node.attr("keepdims", 1))]

    mapping.__doc__ = f"{onnx_name} → {catalog} with explicit axes."


for _onnx, (_cat, _since) in _PLAIN.items():
    _reduce_mapping(_onnx, _cat, _since)


def _extreme(onnx_name: str, catalog: str, bool_op: str) -> None:
    @onnx_op(
        onnx_name,
        needs=(catalog,),
        shape_inputs=lambda v: (1,) if v >= 18 else (),
        attrs=("axes", "keepdims", "noop_with_empty_axes"),
        inputs=2,
    )
    def mapping(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
        x = node.input(0)
        axes = reduce_axes(node, ctx, x, 18)
        if axes is None:
            return [ctx.emit1("Identity", [x])]
        op = bool_op if ctx.dtype(x) == BOOL else catalog
        return [emit_reduce(ctx, op, x, axes, node.attr("keepdims", 1))]

    mapping.__doc__ = f"{onnx_name} → {catalog} ({bool_op} for bool)."


_extreme("ReduceMax", "ReduceMax", "ReduceAny")
_extreme("ReduceMin", "ReduceMin", "ReduceAll")


@onnx_op(
    "ReduceL1",
    needs=("ReduceSum", "Abs"),
    shape_inputs=lambda v: (1,) if v >= 18 else (),
    attrs=("axes", "keepdims", "noop_with_empty_axes"),
    inputs=2,
)
def reduce_l1(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ReduceL1 → ReduceSum(Abs(x))."""
    x = node.input(0)
    axes = reduce_axes(node, ctx, x, 18)
    if axes is None:
        return [ctx.emit1("Identity", [x])]
    return [emit_reduce(ctx, "ReduceSum", ctx.emit1("Abs", [x]), axes, node.attr("keepdims", 1))]


@onnx_op(
    "ReduceL2",
    needs=("ReduceSum", "Mul", "Sqrt"),
    shape_inputs=lambda v: (1,) if v >= 18 else (),
    attrs=("axes", "keepdims", "noop_with_empty_axes"),
    inputs=2,
)
def reduce_l2(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ReduceL2 → Sqrt(ReduceSum(x·x)) (floats; integer inputs are refused)."""
    x = node.input(0)
    if ctx.dtype(x) not in (DataType.DT_FLOAT, DataType.DT_FLOAT16, DataType.DT_DOUBLE):
        raise ctx.unsupported(f"ReduceL2 of {ctx.dtype(x).short_name}")
    axes = reduce_axes(node, ctx, x, 18)
    if axes is None:
        return [ctx.emit1("Identity", [x])]
    sq = ctx.emit1("Mul", [x, x])
    s = emit_reduce(ctx, "ReduceSum", sq, axes, node.attr("keepdims", 1))
    return [ctx.emit1("Sqrt", [s])]


@onnx_op(
    "ReduceSumSquare",
    needs=("ReduceSum", "Mul"),
    shape_inputs=lambda v: (1,) if v >= 18 else (),
    attrs=("axes", "keepdims", "noop_with_empty_axes"),
    inputs=2,
)
def reduce_sum_square(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ReduceSumSquare → ReduceSum(x·x)."""
    x = node.input(0)
    axes = reduce_axes(node, ctx, x, 18)
    if axes is None:
        return [ctx.emit1("Mul", [x, x])]
    return [emit_reduce(ctx, "ReduceSum", ctx.emit1("Mul", [x, x]), axes, node.attr("keepdims", 1))]


@onnx_op(
    "ReduceLogSum",
    needs=("ReduceSum", "Log"),
    shape_inputs=lambda v: (1,) if v >= 18 else (),
    attrs=("axes", "keepdims", "noop_with_empty_axes"),
    inputs=2,
)
def reduce_log_sum(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ReduceLogSum → Log(ReduceSum(x))."""
    x = node.input(0)
    axes = reduce_axes(node, ctx, x, 18)
    if axes is None:
        return [ctx.emit1("Identity", [x])]
    return [ctx.emit1("Log", [emit_reduce(ctx, "ReduceSum", x, axes, node.attr("keepdims", 1))])]


# ----- arg extremes, TopK, cumulative ops ------------------------------------------------------


def _arg(node: OnnxNode, ctx: ParseContext, op: str) -> list[Port]:
    x = node.input(0)
    dims = ctx.shape(x)
    axis = norm_axis(ctx, node.attr("axis", 0), len(dims))
    dim = ctx.const(np.array([axis], dtype=np.int64))
    src = x
    last = node.attr("select_last_index", 0)
    if last:
        src = ctx.emit1("ReverseV2", [x, dim])
    idx = ctx.emit1(op, [src, dim], {"dtype": int(I64)})
    if last:
        idx = ctx.emit1("Sub", [ctx.scalar(dims[axis] - 1, I64), idx])
    if node.attr("keepdims", 1):
        out = list(dims)
        out[axis] = 1
        idx = ctx.emit1("Reshape", [idx, ctx.const(np.array(out, dtype=np.int64))])
    return [idx]


@onnx_op("ArgMax", needs=("ArgMaxV2",), attrs=("axis", "keepdims", "select_last_index"), inputs=1)
def arg_max(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ArgMax → ArgMaxV2 (select_last_index: on the reversed input)."""
    return _arg(node, ctx, "ArgMaxV2")


@onnx_op("ArgMin", needs=("ArgMin",), attrs=("axis", "keepdims", "select_last_index"), inputs=1)
def arg_min(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ArgMin → ArgMin."""
    return _arg(node, ctx, "ArgMin")


@onnx_op(
    "TopK",
    needs=("TopKV2",),
    shape_inputs=lambda v: (1,) if v >= 10 else (),
    attrs=("axis", "largest", "sorted", "k"),
    inputs=2,
)
def top_k(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """TopK → TopKV2 (always sorted; int64 indices)."""
    x = node.input(0)
    if node.opset < 10:
        k = node.attr("k")
    else:
        ks = ctx.int_list(node.input(1), "K")
        if len(ks) != 1:
            raise ctx.error("K must hold one value", SHAPE_INVALID)
        k = ks[0]
    axis = norm_axis(ctx, node.attr("axis", -1), ctx.rank(x))
    largest = bool(node.attr("largest", 1))
    outs = ctx.emit(
        "TopKV2",
        [x, ctx.const(np.array(k, dtype=np.int32))],
        {"dim": axis, "largest": largest, "sorted": True, "indices_dtype": int(I64)},
    )
    return outs


@onnx_op("CumSum", needs=("Cumsum",), shape_inputs=(1,), attrs=("exclusive", "reverse"), inputs=2)
def cum_sum(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """CumSum → Cumsum (exclusive, reverse)."""
    x = node.input(0)
    axis = ctx.int_list(node.input(1), "axis")
    if len(axis) != 1:
        raise ctx.error("axis must be a scalar", SHAPE_INVALID)
    a = norm_axis(ctx, axis[0], ctx.rank(x))
    return [
        ctx.emit1(
            "Cumsum",
            [x, ctx.const(np.array(a, dtype=np.int64))],
            {
                "exclusive": bool(node.attr("exclusive", 0)),
                "reverse": bool(node.attr("reverse", 0)),
            },
        )
    ]


@onnx_op("CumProd", needs=("Cumprod",), shape_inputs=(1,), attrs=("exclusive", "reverse"), inputs=2)
def cum_prod(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """CumProd → Cumprod (exclusive, reverse)."""
    x = node.input(0)
    axis = ctx.int_list(node.input(1), "axis")
    if len(axis) != 1:
        raise ctx.error("axis must be a scalar", SHAPE_INVALID)
    a = norm_axis(ctx, axis[0], ctx.rank(x))
    return [
        ctx.emit1(
            "Cumprod",
            [x, ctx.const(np.array(a, dtype=np.int64))],
            {
                "exclusive": bool(node.attr("exclusive", 0)),
                "reverse": bool(node.attr("reverse", 0)),
            },
        )
    ]
