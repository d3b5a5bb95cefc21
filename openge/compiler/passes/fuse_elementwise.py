"""FuseElementwisePass: run each tree of elementwise ops as one FusedElementwise task.

A group grows backwards from a root elementwise node: a producer joins when it is elementwise
too and every reader of its output is already in the group (so no intermediate value is needed
outside). The group becomes one ``FusedElementwise`` node whose program runs the same kernels in
the same order through temporaries of the same dtypes — results are identical bit for bit —
while the intermediates leave the work arena and the task list shrinks. A fused node that gives a
graph output takes the root's name, so output names stay.

Not fused: ops without the ELEMENTWISE trait, stateful or NO_FOLD ops, multi-output ops, nodes in
control edges, graph outputs other than the root, ops with attrs a program cannot store (tensors,
graphs), omitted optional inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.rules import (
    ORIGINAL_NAMES_ATTR,
    add_inferred,
    alive,
    control_index,
    is_graph_output_node,
    original_names,
    replace_node,
    used_by_control,
)
from openge.graph import Graph, Node, Port
from openge.ops import Trait, get_schema, node_where, normalize_attrs
from openge.ops.fused import encode_program

logger = logging.getLogger(__name__)

#: The maximum number of steps in one fused program (keeps programs readable and cheap to plan).
MAX_STEPS = 32


def fusable(graph: Graph, node: Node) -> str | None:
    """None when ``node`` may join a fused elementwise program; else why not."""
    schema = get_schema(node.op_type)
    if node.op_type in ("FusedElementwise", "Identity"):
        return "already fused" if node.op_type != "Identity" else "an explicit copy (kept)"
    if not schema.has(Trait.ELEMENTWISE):
        return f"{node.op_type} is not elementwise"
    if schema.has(Trait.STATEFUL) or schema.has(Trait.NO_FOLD) or schema.kernel is None:
        return f"{node.op_type} is stateful or not foldable"
    if node.num_outputs != 1 or any(p is None for p in node.inputs) or not node.inputs:
        return "not a single-output op with all inputs connected"
    if node.control_inputs or used_by_control(graph, node):
        return "takes part in control edges"
    return None


def build_program(nodes: Sequence[Node], operands: Sequence[Port]) -> str:
    """The program of ``nodes`` (in topological order) reading ``operands`` (operand k is
    ``operands[k]``). Raises TypeError when an attr cannot be stored."""
    index = {port: k for k, port in enumerate(operands)}
    step_of = {node: j for j, node in enumerate(nodes)}
    steps = []
    for node in nodes:
        args = []
        for port in node.inputs:
            assert port is not None
            if port in index:
                args.append(index[port])
            else:
                args.append(-step_of[port.node] - 1)
        desc = node.output_descs[0]
        attrs = normalize_attrs(get_schema(node.op_type), node.attrs, node_where(node))
        steps.append(
            {
                "op": node.op_type,
                "attrs": attrs,
                "args": args,
                "dtype": desc.dtype,
                "shape": desc.shape,
            }
        )
    return encode_program(steps)


def external_operands(nodes: Sequence[Node], first: Sequence[Port] = ()) -> list[Port]:
    """The ports ``nodes`` read that no node of the group produces, in first-use order."""
    inside = set(nodes)
    out = list(first)
    for node in nodes:
        for port in node.inputs:
            if port is not None and port.node not in inside and port not in out:
                out.append(port)
    return out


class FuseElementwisePass(GraphPass):
    """Group elementwise trees into FusedElementwise nodes."""

    name = "FuseElementwisePass"
    fusion = True

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        with control_index(graph):
            return self._run(graph)

    def _run(self, graph: Graph) -> bool:
        order = graph.topological_order()
        position = {node: i for i, node in enumerate(order)}
        taken: set[Node] = set()
        changed = False
        for root in reversed(order):
            if root in taken or not alive(graph, root) or fusable(graph, root) is not None:
                continue
            group = {root}
            frontier = [root]
            while frontier and len(group) < MAX_STEPS:
                node = frontier.pop()
                for port in node.inputs:
                    p = port.node  # type: ignore[union-attr]
                    if p in group or p in taken:
                        continue
                    reason = fusable(graph, p)
                    if reason is None and is_graph_output_node(graph, p):
                        reason = "its output is a graph output"
                    if reason is None and not all(u in group for u, _ in p.users(0)):
                        reason = "its result is read outside the group"
                    if reason is not None:
                        logger.debug(
                            "%s: %s not fused into %s: %s", self.name, p.name, root.name, reason
                        )
                        continue
                    if len(group) >= MAX_STEPS:
                        break
                    group.add(p)
                    frontier.append(p)
            if len(group) < 2:
                continue
            nodes = sorted(group, key=position.__getitem__)
            operands = external_operands(nodes)
            try:
                program = build_program(nodes, operands)
            except TypeError as err:
                logger.debug(
                    "%s: group at %s not fused: attr of type %s", self.name, root.name, err
                )
                continue
            fused = add_inferred(
                graph,
                "FusedElementwise",
                list(operands),
                {"program": program},
                root.name + "_fused",
            )
            taken |= group
            fused.attrs[ORIGINAL_NAMES_ATTR] = [x for n in nodes for x in original_names(n)]
            replace_node(graph, root, fused)
            logger.debug("%s: fused %s", self.name, ", ".join(n.name for n in nodes))
            changed = True
        return changed


__all__ = ["MAX_STEPS", "FuseElementwisePass", "build_program", "external_operands", "fusable"]
