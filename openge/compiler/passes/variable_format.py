"""VariableFormatPass: store a variable in the dtype/layout its readers convert it to.

When a variable's only reader is a chain of conversions (Cast, TransData) — its "trans road" —
converting it on every run is wasted work: the pass stores the variable already converted,
removes the chain, and records the road in the session (``PassContext.variable_formats``) so
that every other graph using the variable is rebuilt to match (GE's ``ge.exec.variable_acc``).
A variable changes format at most once: a graph compiled later that reads the variable in its
original form gets the inverse road inserted after the variable, and values assigned to it are
converted along the road first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.graph import Graph, Node, Port, Tensor, TensorDesc
from openge.ops import evaluate, get_schema, infer_node

logger = logging.getLogger(__name__)

ROAD_OPS = frozenset({"Cast", "TransData"})
ASSIGN_OPS = frozenset({"Assign", "AssignAdd", "AssignSub"})


@dataclass(frozen=True)
class VariableFormat:
    """How a variable is stored after its format change: the new desc and the road taken
    (op type + attrs per step) from the original form."""

    original: TensorDesc
    stored: TensorDesc
    road: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]


def _inverse_step(op_type: str, attrs: dict, before: TensorDesc) -> tuple[str, dict]:
    if op_type == "Cast":
        return "Cast", {"dst_type": before.dtype}
    return "TransData", {
        "src_format": attrs["dst_format"],
        "dst_format": attrs["src_format"],
        **{k: v for k, v in attrs.items() if k not in ("src_format", "dst_format")},
    }


def convert_value(value: np.ndarray, fmt: VariableFormat) -> np.ndarray:
    """Apply the trans road to a value in the original form (e.g. a session's stored value)."""
    graph = Graph("road")
    node = graph.add_node("Data", name="value", attrs={"index": 0}, output_descs=[fmt.original])
    current = np.ascontiguousarray(value)
    for op_type, attrs in fmt.road:
        step = graph.add_node(op_type, [node.output(0)], attrs=dict(attrs))
        norm, descs = infer_node(step)
        step.output_descs = descs
        current = evaluate(get_schema(op_type), norm, [current], descs)[0]
        node = step
    return current


def _road_from(var: Node) -> list[Node]:
    road: list[Node] = []
    node = var
    while True:
        users = node.users(0)
        if len(users) != 1 or node.num_outputs != 1:
            break
        consumer, _ = users[0]
        if consumer.op_type not in ROAD_OPS or consumer.control_inputs:
            break
        road.append(consumer)
        node = consumer
    return road


class VariableFormatPass(GraphPass):
    """Fold each variable's conversion chain into how the variable is stored."""

    name = "VariableFormatPass"
    option_key = "ge.exec.variable_acc"

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        changed = False
        for var in [n for n in graph.topological_order() if n.op_type == "Variable"]:
            recorded = ctx.variable_formats.get(var.name)
            if recorded is None:
                changed |= self._change_format(graph, var, ctx)
            elif var.output_descs[0] != recorded.stored:
                self._adapt(graph, var, recorded)
                changed = True
        return changed

    def _change_format(self, graph: Graph, var: Node, ctx: PassContext) -> bool:
        if any(u.op_type in ASSIGN_OPS for u, _ in var.users(0)):
            return False
        if any(var in n.control_inputs for n in graph):
            return False
        road = _road_from(var)
        if not road or any(p.node is var for p in graph.outputs):
            return False
        original = var.output_descs[0]
        steps = tuple((n.op_type, tuple(sorted(n.attrs.items()))) for n in road)
        fmt = VariableFormat(original, road[-1].output_descs[0], steps)
        init = var.attrs.get("value")
        base = (
            init.numpy() if init is not None else np.zeros(original.shape, original.dtype.np_dtype)
        )
        var.attrs["value"] = Tensor(convert_value(base, fmt), format=fmt.stored.format)
        var.output_descs = [fmt.stored]
        graph.replace_all_uses(road[-1].output(0), var.output(0))
        for node in reversed(road):
            graph.remove_node(node)
        ctx.variable_formats[var.name] = fmt
        ctx.changed_variables.add(var.name)
        logger.info("variable %s stored as %s", var.name, fmt.stored.type_str())
        return True

    def _adapt(self, graph: Graph, var: Node, fmt: VariableFormat) -> None:
        """Make a graph written for the original form work with the stored form: readers get
        the original form back through the inverse road, assigned values go along the road."""
        original_port = var.output(0)
        readers = [(u, i) for u, i in var.users(0) if u.op_type not in ASSIGN_OPS]
        writers = [u for u, _ in var.users(0) if u.op_type in ASSIGN_OPS]
        var.output_descs = [fmt.stored]
        init = var.attrs.get("value")
        if init is not None:
            var.attrs["value"] = Tensor(convert_value(init.numpy(), fmt))
        if readers or original_port in graph.outputs:
            restored = _restore(graph, original_port, fmt, var.name)
            _redirect(graph, original_port, readers, restored)
        for writer in writers:
            value = writer.inputs[1]
            for op_type, attrs in fmt.road:
                node = graph.add_node(
                    op_type,
                    [value],
                    name=graph.unique_name(f"{var.name}_store"),
                    attrs=dict(attrs),
                )
                node.output_descs = infer_node(node)[1]
                value = node.output(0)
            graph.set_input(writer, 1, value)
            writer.output_descs = [fmt.stored]
            out = writer.output(0)
            users = writer.users(0)
            if users or out in graph.outputs:
                _redirect(graph, out, users, _restore(graph, out, fmt, var.name))


def _road_descs(fmt: VariableFormat) -> list[TensorDesc]:
    """The desc entering each step of the road (the first is the original form)."""
    descs = [fmt.original]
    for op_type, attrs in fmt.road[:-1]:
        scratch = Graph("road")
        d = scratch.add_node("Data", attrs={"index": 0}, output_descs=[descs[-1]])
        n = scratch.add_node(op_type, [d.output(0)], attrs=dict(attrs))
        descs.append(infer_node(n)[1][0])
    return descs


def _restore(graph: Graph, port: Port, fmt: VariableFormat, base: str) -> Port:
    """Append the inverse road after ``port`` (stored form) and return the original-form port."""
    for (op_type, attrs), before in zip(reversed(fmt.road), reversed(_road_descs(fmt))):
        inv_type, inv_attrs = _inverse_step(op_type, dict(attrs), before)
        node = graph.add_node(
            inv_type, [port], name=graph.unique_name(f"{base}_restore"), attrs=inv_attrs
        )
        node.output_descs = infer_node(node)[1]
        port = node.output(0)
    return port


def _redirect(graph: Graph, old: Port, users: list, new: Port) -> None:
    """Point ``users`` (consumer, index) and any graph output reading ``old`` at ``new``."""
    for user, index in users:
        if user is not new.node:
            graph.set_input(user, index, new)
    graph.set_outputs([new if p == old else p for p in graph.outputs])


__all__ = ["VariableFormat", "VariableFormatPass", "convert_value"]
