"""FoldConstantsPass: replace nodes whose outputs are known at compile time by Const nodes.

Safe because the values were computed by the op's own kernel (InferShapesPass) from constants or
static shapes; stateful ops are never folded. Only results up to the propagation size limit are
folded, so big weights computed from constants are not duplicated.
"""

from __future__ import annotations

import logging

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.fold_limits import max_fold_bytes, try_charge_fold
from openge.graph import Graph, Port, Tensor
from openge.ops import Trait, get_schema

logger = logging.getLogger(__name__)


class FoldConstantsPass(GraphPass):
    """Turn every non-source node with all outputs known into Const nodes."""

    name = "FoldConstantsPass"
    option_key = "ge.oo.constantFolding"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        changed = False
        for node in graph.topological_order():
            schema = get_schema(node.op_type)
            if schema.has(Trait.SOURCE) or schema.has(Trait.SINK) or schema.has(Trait.NO_FOLD):
                continue
            ports = [Port(node, i) for i in range(node.num_outputs)]
            if not ports or any(p not in ctx.const_values for p in ports):
                continue
            if node.control_inputs or node.control_users:
                continue
            size = sum(ctx.const_values[p].nbytes for p in ports)
            if size > max_fold_bytes(ctx.options) or not try_charge_fold(graph, ctx, size):
                logger.debug("not folded: %s (folding limits)", node.name)
                continue
            for port in ports:
                value = ctx.const_values[port]
                const = graph.add_node(
                    "Const",
                    name=graph.unique_name(f"{node.name}_folded{port.index}"),
                    attrs={"value": Tensor(value.copy())},
                    output_descs=[port.desc],
                )
                graph.replace_all_uses(port, const.output(0))
                ctx.const_values[const.output(0)] = value
            logger.debug("folded %s (%s)", node.name, node.op_type)
            changed = True
        return changed
