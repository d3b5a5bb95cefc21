"""InferShapesPass: dtype/shape inference of every node, with compile-time value propagation.

Values that are known at compile time (Consts, and small results computed only from known values
or from static shapes, like Shape → Gather → Concat → Reshape) are recorded in the context so
that ops whose output shape depends on an input's value can be inferred.
"""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.graph import Graph, Port
from openge.ops import Trait, evaluate, get_schema, infer_node

#: Results with at most this many elements are computed at compile time when all inputs are known.
MAX_PROPAGATED_ELEMENTS = 4096
#: Ops whose value depends only on the static shape of their input.
SHAPE_ONLY_OPS = frozenset({"Shape", "Size", "Rank", "ShapeN"})


class InferShapesPass(GraphPass):
    """Infer every node's output descs in topological order and propagate small constants."""

    name = "InferShapesPass"
    required = True

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        changed = False
        for node in graph.topological_order():
            schema = get_schema(node.op_type)
            if schema.has(Trait.SINK):
                continue
            attrs, descs = infer_node(node, ctx.const_values)
            if descs != node.output_descs:
                node.output_descs = descs
                changed = True
            if node.op_type == "Const":
                ctx.const_values[Port(node, 0)] = attrs["value"].numpy()
                continue
            if schema.kernel is None or schema.has(Trait.NO_FOLD):
                continue
            if not all(d.is_static for d in descs):
                continue
            if sum(d.numel for d in descs) > MAX_PROPAGATED_ELEMENTS:
                continue
            inputs = _known_inputs(node, ctx, shape_only=node.op_type in SHAPE_ONLY_OPS)
            if inputs is None:
                continue
            values = evaluate(schema, attrs, inputs, descs)
            for i, value in enumerate(values):
                ctx.const_values[Port(node, i)] = value
        return changed


def _known_inputs(node, ctx: PassContext, *, shape_only: bool) -> list | None:
    inputs: list = []
    for port in node.inputs:
        if port is None:
            inputs.append(None)
            continue
        value = ctx.const_values.get(port)
        if value is None:
            desc = port.desc
            if not shape_only or not desc.is_static:
                return None
            value = np.broadcast_to(np.zeros((), dtype=desc.dtype.np_dtype), desc.shape)
        inputs.append(value)
    return inputs
