"""EliminateDeadCodePass: remove nodes whose results reach no graph output.

Stateful nodes (variable updates) are kept: their effect is the point of running them. Data
nodes are kept so the model's inputs stay what the user declared.
"""

from __future__ import annotations

from openge.compiler.passes.base import GraphPass, PassContext
from openge.graph import Graph
from openge.ops import Trait, get_schema


class EliminateDeadCodePass(GraphPass):
    """Drop nodes not needed by an output, a stateful node or a kept node's control inputs."""

    name = "EliminateDeadCodePass"
    option_key = "ge.oo.deadCodeElimination"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        live = set()
        stack = [p.node for p in graph.outputs]
        stack += [
            n
            for n in graph
            if n.op_type == "Data"
            or (get_schema(n.op_type).has(Trait.STATEFUL) and n.op_type != "Variable")
        ]
        while stack:
            node = stack.pop()
            if node in live:
                continue
            live.add(node)
            stack.extend(p.node for p in node.inputs if p is not None)
            stack.extend(node.control_inputs)
        dead = [n for n in reversed(graph.topological_order()) if n not in live]
        for node in dead:
            graph.remove_node(node)
        return bool(dead)
