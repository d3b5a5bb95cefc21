"""Optional values (opset 15+) where they hold tensors: a graph input fed at run time is a
present tensor, an omitted input an empty optional."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.graph import Port
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext


@onnx_op("OptionalHasElement", since=15, attrs=(), inputs=1)
def optional_has_element(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """OptionalHasElement → a bool constant: True when the input is given (a tensor)."""
    return [ctx.const(np.array(node.has_input(0)), name=ctx.graph.unique_name(node.name))]


@onnx_op("OptionalGetElement", since=15, needs=("Identity",), attrs=(), inputs=1)
def optional_get_element(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """OptionalGetElement of a tensor → Identity."""
    return [ctx.emit1("Identity", [node.input(0)])]
