"""InferShapesPass: dtype/shape inference of every node, with compile-time value propagation.

Values that are known at compile time (Consts, and small results computed only from known values
or from static shapes, like Shape → Gather → Concat → Reshape) are recorded in the context so
that ops whose output shape depends on an input's value can be inferred.
"""

from __future__ import annotations

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.fold_limits import propagation_limit
from openge.graph import Graph, Port
from openge.ops import Trait, get_schema, infer_node
from openge.ops.infer import propagate_value


class InferShapesPass(GraphPass):
    """Infer every node's output descs in topological order and propagate small constants."""

    name = "InferShapesPass"
    required = True

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        changed = False
        budget = propagation_limit(ctx.options)
        propagated = 0
        for node in graph.topological_order():
            if get_schema(node.op_type).has(Trait.SINK):
                continue
            attrs, descs = infer_node(node, ctx.const_values)
            if descs != node.output_descs:
                node.output_descs = descs
                changed = True
            if node.op_type == "Const":
                ctx.const_values[Port(node, 0)] = attrs["value"].numpy()
                continue
            if propagated > budget:  # past the limit, values are computed at run time
                continue
            values = propagate_value(node, attrs, descs, ctx.const_values)
            for i, value in enumerate(values or ()):
                ctx.const_values[Port(node, i)] = value
                propagated += value.nbytes
        return changed
