"""Mappings of ONNX ops whose output shapes depend on input values (NonZero, Unique,
NonMaxSuppression): one catalog op each; the shape is decided when the values are known (a
constant at compile time, else at run time in a dynamic-shape model)."""

from __future__ import annotations

from collections.abc import Sequence

from openge.graph import Port
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext


@onnx_op("NonZero", since=9, needs=("NonZero",), attrs=(), inputs=1)
def non_zero(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """NonZero → NonZero (int64 [rank, count])."""
    return [ctx.emit1("NonZero", [node.input(0)])]


@onnx_op("Unique", since=11, needs=("Unique",), attrs=("axis", "sorted"), inputs=1)
def unique(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Unique → Unique (y, indices, inverse_indices, counts)."""
    attrs = {"sorted": int(node.attr("sorted", 1))}
    if node.attr("axis") is not None:
        attrs["axis"] = int(node.attr("axis"))
    outs = ctx.emit("Unique", [node.input(0)], attrs)
    return outs[: max(node.num_outputs, 1)]


@onnx_op(
    "NonMaxSuppression",
    since=10,
    needs=("NonMaxSuppression",),
    attrs=("center_point_box",),
    inputs=5,
)
def non_max_suppression(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """NonMaxSuppression → NonMaxSuppression (int64 [n, 3])."""
    ins = [node.opt(i) for i in range(5)]
    while ins and ins[-1] is None:
        ins.pop()
    return [
        ctx.emit1(
            "NonMaxSuppression", ins, {"center_point_box": int(node.attr("center_point_box", 0))}
        )
    ]
