"""EliminateTransDataPass: remove layout conversions that cancel out.

Rules, repeated until nothing changes:

* **dedupe**: TransData nodes reading the same tensor with the same attrs become one;
* **pair**: ``TransData(B → A)(TransData(A → B)(x))`` → ``x`` when the round trip gives back x's
  shape (NCHW ↔ NHWC always; the blocked layouts NC1HWC0/FRACTAL_NZ when the padding is dropped
  again) — exact, the values are only moved;
* **sink**: an elementwise op, or a concat, all of whose non-constant inputs are the same plain
  conversion ``TransData(B → A)`` is computed in layout B instead and converted once after it
  (constant operands are transposed at compile time; a concat's axis is mapped). Elementwise ops
  do not care about the order of elements, so the result is the same bit for bit. Sinking brings
  a ``B → A`` next to the following ``A → B``, which the pair rule then removes.

This undoes the TransData pairs that SelectLayoutsPass leaves between neighbouring converted
nodes (conv → relu → conv …). A node whose output is a graph output is never bypassed.
"""

from __future__ import annotations

import logging

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.compiler.passes.rules import (
    add_const,
    add_inferred,
    alive,
    bypass,
    const_value,
    control_index,
    is_graph_output_node,
    remove_if_dead,
    replace_node,
    used_by_control,
)
from openge.graph import Graph, Node, Port
from openge.ops import Trait, get_schema, node_where, normalize_attrs

logger = logging.getLogger(__name__)

_PLAIN = ("NCHW", "NHWC")
#: B = A.transpose(perm) for a plain conversion A → B.
_PERM = {("NCHW", "NHWC"): (0, 2, 3, 1), ("NHWC", "NCHW"): (0, 3, 1, 2)}
MAX_SWEEPS = 16


def _formats(node: Node) -> tuple[str, str]:
    attrs = normalize_attrs(get_schema("TransData"), node.attrs, node_where(node))
    return attrs["src_format"], attrs["dst_format"]


def _attr_key(node: Node) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))


class EliminateTransDataPass(GraphPass):
    """Dedupe, sink and cancel TransData pairs."""

    name = "EliminateTransDataPass"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        if not any(n.op_type == "TransData" for n in graph):
            return False
        changed = False
        with control_index(graph):
            for _ in range(MAX_SWEEPS):
                step = self._dedupe(graph) | self._sweep(graph)
                changed |= step
                if not step:
                    break
        return changed

    # ----- dedupe ---------------------------------------------------------------------------
    def _dedupe(self, graph: Graph) -> bool:
        seen: dict[tuple, Node] = {}
        changed = False
        for node in graph.topological_order():
            if node.op_type != "TransData" or node.inputs[0] is None or node.control_inputs:
                continue
            key = (node.inputs[0], _attr_key(node))
            keep = seen.get(key)
            if keep is None or not alive(graph, keep):
                seen[key] = node
                continue
            if is_graph_output_node(graph, node) or used_by_control(graph, node):
                continue
            graph.replace_all_uses(node.output(0), keep.output(0))
            remove_if_dead(graph, node)
            changed = True
        return changed

    # ----- pair / sink ----------------------------------------------------------------------
    def _sweep(self, graph: Graph) -> bool:
        changed = False
        for node in graph.topological_order():
            if not alive(graph, node) or node.control_inputs or used_by_control(graph, node):
                continue
            if node.op_type == "TransData":
                changed |= self._pair(graph, node)
            elif node.op_type in ("ConcatV2", "ConcatD"):
                changed |= self._sink_concat(graph, node)
            elif get_schema(node.op_type).has(Trait.ELEMENTWISE):
                changed |= self._sink_elementwise(graph, node)
        return changed

    def _pair(self, graph: Graph, outer: Node) -> bool:
        inner = outer.inputs[0].node if outer.inputs[0] is not None else None
        if inner is None or inner.op_type != "TransData" or inner.control_inputs:
            return False
        a_src, a_dst = _formats(inner)
        b_src, b_dst = _formats(outer)
        source = inner.inputs[0]
        if source is None or (b_src, b_dst) != (a_dst, a_src):
            return False
        if outer.output_descs[0].shape != source.desc.shape:
            logger.debug(
                "%s: %s does not undo %s (padding lost)", self.name, outer.name, inner.name
            )
            return False
        if is_graph_output_node(graph, outer):
            logger.debug("%s: %s is a graph output; kept", self.name, outer.name)
            return False
        bypass(graph, outer, source)
        logger.debug("%s: %s cancels %s", self.name, outer.name, inner.name)
        return True

    @staticmethod
    def _common_conversion(inputs: list[Port | None]) -> tuple[str, str] | None:
        """The plain (src, dst) all TransData inputs share, when every non-constant input is
        such a TransData; None otherwise."""
        pair = None
        for port in inputs:
            if port is None:
                return None
            if port.node.op_type == "Const":
                continue
            if port.node.op_type != "TransData" or port.node.inputs[0] is None:
                return None
            fmts = _formats(port.node)
            if fmts not in _PERM or (pair is not None and fmts != pair):
                return None
            pair = fmts
        return pair

    def _structurally_sinkable(self, graph: Graph, node: Node) -> bool:
        """True when ``node`` is an elementwise op or concat whose non-constant inputs are all
        the same plain TransData (the conditions the sink rules start from)."""
        if node.control_inputs or is_graph_output_node(graph, node) or node.num_outputs != 1:
            return False
        if node.op_type in ("ConcatV2", "ConcatD"):
            xs = list(node.inputs[:-1]) if node.op_type == "ConcatV2" else list(node.inputs)
            return (
                all(p is not None and p.node.op_type == "TransData" for p in xs)
                and self._common_conversion(xs) is not None
            )
        if not get_schema(node.op_type).has(Trait.ELEMENTWISE):
            return False
        return self._common_conversion(list(node.inputs)) is not None

    def _all_readers_sink(self, graph: Graph, port: Port) -> bool:
        """True when every reader of the conversion ``port`` can move it below itself, so that
        sinking leaves the conversion with no reader (never one conversion more)."""
        if is_graph_output_node(graph, port.node):
            return False
        return all(self._structurally_sinkable(graph, u) for u, _ in port.node.users(0))

    def _sink_elementwise(self, graph: Graph, node: Node) -> bool:
        if node.num_outputs != 1 or is_graph_output_node(graph, node):
            return False
        pair = self._common_conversion(list(node.inputs))
        if pair is None:
            return False
        out_shape = node.output_descs[0].shape
        a, b = pair[1], pair[0]  # inputs are TransData(b → a): node runs in a today
        perm = _PERM[(a, b)]
        new_inputs: list[Port | None] = []
        for port in node.inputs:
            assert port is not None
            if port.node.op_type == "TransData":
                if port.desc.shape != out_shape or not self._all_readers_sink(graph, port):
                    return False  # sinking would not remove this conversion
                new_inputs.append(port.node.inputs[0])
                continue
            value = const_value(port)
            assert value is not None
            if value.ndim > 4:
                return False
            if value.size == 1 and value.ndim == 0:
                new_inputs.append(port)
                continue
            full = value.reshape((1,) * (4 - value.ndim) + value.shape)
            new_inputs.append(
                add_const(graph, np.transpose(full, perm), f"{port.node.name}_{b.lower()}")
            )
        computed = add_inferred(
            graph, node.op_type, new_inputs, dict(node.attrs), f"{node.name}_{b.lower()}"
        )
        back = add_inferred(
            graph,
            "TransData",
            [computed.output(0)],
            {"src_format": b, "dst_format": a},
            f"{node.name}_to_{a.lower()}",
        )
        replace_node(graph, node, back)
        logger.debug("%s: %s now runs in %s", self.name, node.name, b)
        return True

    def _sink_concat(self, graph: Graph, node: Node) -> bool:
        if is_graph_output_node(graph, node):
            return False
        attrs = normalize_attrs(get_schema(node.op_type), node.attrs, node_where(node))
        if node.op_type == "ConcatV2":
            xs = list(node.inputs[:-1])
            axis_value = const_value(node.inputs[-1])
            if axis_value is None:
                return False
            axis = int(np.asarray(axis_value).reshape(-1)[0])
        else:
            xs = list(node.inputs)
            axis = int(attrs["concat_dim"])
        if any(
            p is None or p.node.op_type != "TransData" or not self._all_readers_sink(graph, p)
            for p in xs
        ):
            return False
        pair = self._common_conversion(xs)
        if pair is None:
            return False
        a, b = pair[1], pair[0]
        perm = _PERM[(a, b)]
        axis %= 4
        new_axis = perm.index(axis)
        sources = [p.node.inputs[0] for p in xs]  # type: ignore[union-attr]
        computed = add_inferred(
            graph,
            "ConcatD",
            sources,
            {"concat_dim": new_axis, "N": len(sources)},
            f"{node.name}_{b.lower()}",
        )
        back = add_inferred(
            graph,
            "TransData",
            [computed.output(0)],
            {"src_format": b, "dst_format": a},
            f"{node.name}_to_{a.lower()}",
        )
        replace_node(graph, node, back)
        return True


__all__ = ["EliminateTransDataPass"]
