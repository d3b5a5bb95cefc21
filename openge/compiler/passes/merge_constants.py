"""MergeConstantsPass: make equal constants one node.

Two Const nodes with the same dtype, shape, format and bytes are interchangeable: every reader of
the second reads the first instead and the second is removed. Safe because constants are
immutable; it shrinks the weights and lets EliminateCommonSubexpressionsPass see that two nodes
reading equal constants compute the same value. Consts that are graph outputs or take part in
control edges are left alone (their names are visible).
"""

from __future__ import annotations

import logging

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.rules import is_graph_output_node
from openge.graph import Graph, Node

logger = logging.getLogger(__name__)

_SAMPLES = 64


def _fingerprint(node: Node) -> tuple:
    value = node.attrs["value"].numpy()
    desc = node.output_descs[0]
    flat = value.reshape(-1)
    step = max(1, flat.size // _SAMPLES)
    return (value.dtype.str, value.shape, desc.format, flat[::step][:_SAMPLES].tobytes())


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))
    )


class MergeConstantsPass(GraphPass):
    """Replace each Const by the first Const with the same type, shape, format and bytes."""

    name = "MergeConstantsPass"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        controlled = {c for n in graph for c in n.control_inputs}
        buckets: dict[tuple, list[Node]] = {}
        changed = False
        for node in graph.topological_order():
            if node.op_type != "Const" or node.control_inputs or node in controlled:
                continue
            if is_graph_output_node(graph, node):
                continue
            bucket = buckets.setdefault(_fingerprint(node), [])
            value = node.attrs["value"].numpy()
            for keep in bucket:
                if _same_bytes(keep.attrs["value"].numpy(), value):
                    graph.replace_all_uses(node.output(0), keep.output(0))
                    graph.remove_node(node)
                    logger.debug("merged constant %s into %s", node.name, keep.name)
                    changed = True
                    break
            else:
                bucket.append(node)
        return changed
