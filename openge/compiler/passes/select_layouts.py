"""SelectLayoutsPass: run each convolution and pooling in the layout its kernel is fastest in.

openge's kernels take NCHW or NHWC (``data_format``). :data:`PREFERRED` gives, per op type, the
layout to run a node in (a function of the node, so the choice may depend on its shape; the
table reflects measurements of openge's NumPy kernels, see docs/compiler.md). A node in another
layout is rewritten in the preferred one:

* ``TransData(cur → preferred)`` before its data input and ``TransData(preferred → cur)`` after
  its output, so every other node sees exactly the tensor it saw before;
* its 4-value attrs (``strides``, ``dilations``, ``ksize``) are permuted to the new order
  (``pads`` is [top, bottom, left, right] in both);
* a Conv2D filter is re-laid-out between NCHW ``(Cout, Cin/g, kh, kw)`` and HWCN
  ``(kh, kw, Cin/g, Cout)``: a constant is transposed at compile time (one copy per constant,
  shared by every converted reader; the original goes when nothing else reads it), anything
  else gets a TransposeD.

The values are the same up to float rounding (BLAS may sum a convolution's products in another
order in the other layout); every other node sees its tensor in the layout it had. The TransData
pairs this leaves between neighbouring converted nodes are removed by EliminateTransDataPass.
``ge.exec.formatMode=1`` (keep the original formats) turns the pass off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.rules import (
    add_const,
    add_inferred,
    const_value,
    control_index,
    replace_node,
    used_by_control,
)
from openge.graph import Format, Graph, Node
from openge.ops import get_schema, node_where, normalize_attrs

logger = logging.getLogger(__name__)

_LAYOUT_ATTRS = {
    "Conv2D": ("strides", "dilations"),
    "MaxPoolV3": ("ksize", "strides"),
    "AvgPoolV2": ("ksize", "strides"),
}
#: NCHW-ordered index of each NHWC position and vice versa.
_TO = {("NCHW", "NHWC"): (0, 2, 3, 1), ("NHWC", "NCHW"): (0, 3, 1, 2)}
_FILTER_PERM = {("NCHW", "NHWC"): (2, 3, 1, 0), ("NHWC", "NCHW"): (3, 2, 0, 1)}
_FILTER_FORMAT = {"NCHW": Format.FORMAT_NCHW, "NHWC": Format.FORMAT_HWCN}


def _conv_layout(node: Node) -> str:
    """NCHW: openge's im2col + batched GEMM is as fast or faster in NCHW for the convolutions
    of typical CNNs taken as a whole, and ONNX models come in NCHW, so no TransData is needed."""
    return "NCHW"


def _pool_layout(node: Node) -> str:
    return "NCHW"


#: The layout each op type runs in, as a function of the node.
PREFERRED: dict[str, Callable[[Node], str]] = {
    "Conv2D": _conv_layout,
    "MaxPoolV3": _pool_layout,
    "AvgPoolV2": _pool_layout,
}


def _permute4(values: list[int], cur: str, new: str) -> list[int]:
    if len(values) != 4:
        return values
    perm = _TO[(cur, new)]
    return [values[i] for i in perm]


class SelectLayoutsPass(GraphPass):
    """Rewrite convolutions and poolings into their preferred layout, TransData at borders."""

    name = "SelectLayoutsPass"

    def __init__(self, preferred: Mapping[str, Callable[[Node], str]] | None = None) -> None:
        self.preferred = dict(PREFERRED if preferred is None else preferred)

    def skip_reason(self, options: Mapping[str, str]) -> str | None:
        """``ge.exec.formatMode=1`` keeps every node in the layout it was built in."""
        if options.get("ge.exec.formatMode") == "1":
            return "ge.exec.formatMode=1 (keep original formats)"
        return None

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        with control_index(graph):
            return self._run(graph)

    def _run(self, graph: Graph) -> bool:
        cache: dict = {}  # (constant filter, layout) → its re-laid-out copy, shared by readers
        changed = False
        for node in graph.topological_order():
            choose = self.preferred.get(node.op_type)
            if choose is None:
                continue
            attrs = normalize_attrs(get_schema(node.op_type), node.attrs, node_where(node))
            cur = attrs["data_format"]
            new = choose(node)
            if new == cur or (cur, new) not in _TO:
                continue
            reason = self._check(graph, node)
            if reason is not None:
                logger.debug("%s: %s stays %s: %s", self.name, node.name, cur, reason)
                continue
            self._convert(graph, node, attrs, cur, new, cache)
            logger.debug("%s: %s runs in %s (was %s)", self.name, node.name, new, cur)
            changed = True
        return changed

    @staticmethod
    def _check(graph: Graph, node: Node) -> str | None:
        if node.control_inputs or used_by_control(graph, node):
            return "takes part in control edges"
        x = node.inputs[0]
        if x is None or len(x.desc.shape) != 4 or not x.desc.is_static:
            return "input is not a static 4-D tensor"
        if x.desc.format not in (Format.FORMAT_ND, Format.FORMAT_NCHW, Format.FORMAT_NHWC):
            return f"input is in {x.desc.format.layout_name}"
        if node.num_outputs != 1:
            return "more than one output"
        return None

    @staticmethod
    def _convert(graph: Graph, node: Node, attrs: dict, cur: str, new: str, cache: dict) -> None:
        x = node.inputs[0]
        assert x is not None
        to_new = add_inferred(
            graph, "TransData", [x], {"src_format": cur, "dst_format": new}, f"{node.name}_to_{new}"
        )
        inputs = [to_new.output(0), *node.inputs[1:]]
        if node.op_type == "Conv2D":
            fport = node.inputs[1]
            assert fport is not None
            perm = _FILTER_PERM[(cur, new)]
            value = const_value(fport)
            if value is not None:
                key = (fport, new)
                if key not in cache:
                    cache[key] = add_const(
                        graph,
                        np.transpose(value, perm),
                        f"{fport.node.name}_{new.lower()}",
                        fmt=_FILTER_FORMAT[new],
                    )
                inputs[1] = cache[key]
            else:
                inputs[1] = add_inferred(
                    graph,
                    "TransposeD",
                    [fport],
                    {"perm": list(perm)},
                    f"{node.name}_filter_{new.lower()}",
                ).output(0)
        new_attrs = dict(node.attrs)
        for name in _LAYOUT_ATTRS[node.op_type]:
            new_attrs[name] = _permute4(list(attrs[name]), cur, new)
        new_attrs["data_format"] = new
        converted = add_inferred(graph, node.op_type, inputs, new_attrs, f"{node.name}_{new}")
        back = add_inferred(
            graph,
            "TransData",
            [converted.output(0)],
            {"src_format": new, "dst_format": cur},
            f"{node.name}_to_{cur}",
        )
        replace_node(graph, node, back)


__all__ = ["PREFERRED", "SelectLayoutsPass"]
