"""EliminateCommonSubexpressionsPass: compute each distinct value once.

Two nodes with the same op type, the same inputs (same producer outputs, in order) and equal
attrs compute the same outputs, so readers of the second can read the first. Safe for every
deterministic, stateless op: nodes whose op is stateful (variables, Assign*), a source, a sink or
not foldable (NO_FOLD: random or side-effecting ops) are never merged, nor nodes in control
edges. A node whose output is a graph output keeps its place (the output name stays). Run after
MergeConstantsPass so that equal constants are already the same node.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.rules import (
    alive,
    control_index,
    is_graph_output_node,
    remove_if_dead,
)
from openge.graph import Graph, Tensor
from openge.ops import Trait, get_schema

logger = logging.getLogger(__name__)

_SKIP = (Trait.SOURCE, Trait.SINK, Trait.STATEFUL, Trait.NO_FOLD)


class _UnhashableError(Exception):
    """An attr value with no canonical key (a graph …): the node is not merged."""


def _key(value: Any) -> Any:
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _key(v)) for k, v in value.items())))
    if isinstance(value, float) and value != value:
        return ("nan",)
    try:
        hash(value)
    except TypeError:
        raise _UnhashableError from None
    return (type(value).__name__, value)


class EliminateCommonSubexpressionsPass(GraphPass):
    """Merge nodes that compute the same value from the same inputs."""

    name = "EliminateCommonSubexpressionsPass"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        with control_index(graph):
            return self._run(graph)

    def _run(self, graph: Graph) -> bool:
        controlled = {c for n in graph for c in n.control_inputs}
        seen: dict[tuple, Any] = {}
        changed = False
        for node in graph.topological_order():
            if not alive(graph, node):
                continue
            schema = get_schema(node.op_type)
            if any(schema.has(t) for t in _SKIP) or node.control_inputs or node in controlled:
                continue
            try:
                attrs = _key(node.attrs)
            except _UnhashableError:
                continue
            inputs = tuple(None if p is None else (id(p.node), p.index) for p in node.inputs)
            key = (node.op_type, inputs, attrs, node.num_outputs)
            keep = seen.get(key)
            if keep is None or not alive(graph, keep):
                seen[key] = node
                continue
            if is_graph_output_node(graph, node) or keep.output_descs != node.output_descs:
                continue
            for i in range(node.num_outputs):
                graph.replace_all_uses(node.output(i), keep.output(i))
            remove_if_dead(graph, node)
            logger.debug("%s computes the same as %s: merged", node.name, keep.name)
            changed = True
        return changed
