"""Detection-head ops: RoiAlign."""

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
