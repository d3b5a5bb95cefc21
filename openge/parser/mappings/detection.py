"""Detection-head ops: RoiAlign, DeformConv."""

from __future__ import annotations

from collections.abc import Sequence

from openge.graph import Port
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext

_ROI_ATTRS = (
    "coordinate_transformation_mode",
    "mode",
    "output_height",
    "output_width",
    "sampling_ratio",
    "spatial_scale",
)


@onnx_op("RoiAlign", since=10, needs=("RoiAlign",), attrs=_ROI_ATTRS, inputs=3)
def roi_align(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """RoiAlign → RoiAlign (opset 16's default coordinates are half_pixel; 10's are not)."""
    default = "half_pixel" if node.opset >= 16 else "output_half_pixel"
    coords = node.attr("coordinate_transformation_mode", default)
    if coords not in ("half_pixel", "output_half_pixel"):
        raise ctx.unsupported(f"coordinate_transformation_mode {coords!r}")
    attrs = {
        "mode": node.attr("mode", "avg"),
        "output_height": int(node.attr("output_height", 1)),
        "output_width": int(node.attr("output_width", 1)),
        "sampling_ratio": int(node.attr("sampling_ratio", 0)),
        "spatial_scale": float(node.attr("spatial_scale", 1.0)),
        "half_pixel": coords == "half_pixel",
    }
    return [ctx.emit1("RoiAlign", [node.input(0), node.input(1), node.input(2)], attrs)]


@onnx_op(
    "DeformConv",
    since=19,
    needs=("DeformConv",),
    attrs=("dilations", "group", "kernel_shape", "offset_group", "pads", "strides"),
    inputs=5,
)
def deform_conv(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """DeformConv (2-D) → DeformConv."""
    w = node.input(1)
    if ctx.rank(node.input(0)) != 4:
        raise ctx.unsupported("DeformConv on other than 2-D images")
    kernel = node.attr("kernel_shape")
    if kernel is not None and list(kernel) != list(ctx.shape(w)[2:]):
        raise ctx.error(f"kernel_shape {list(kernel)} differs from W's {list(ctx.shape(w)[2:])}")
    attrs = {
        "strides": list(node.attr("strides", [1, 1])),
        "pads": list(node.attr("pads", [0, 0, 0, 0])),
        "dilations": list(node.attr("dilations", [1, 1])),
        "group": int(node.attr("group", 1)),
        "offset_group": int(node.attr("offset_group", 1)),
    }
    ins = [node.opt(i) for i in range(5)]
    while ins and ins[-1] is None:
        ins.pop()
    return [ctx.emit1("DeformConv", ins, attrs)]
