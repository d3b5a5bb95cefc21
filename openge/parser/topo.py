"""Dependency order of an ONNX graph's nodes in O(nodes + edges) (parser layer).

ONNX lists a graph's nodes in topological order, but files in the wild (and hostile ones) do not
always: the order is computed with Kahn's algorithm (a FIFO queue, ties broken by position in the
file, so the result is deterministic). A graph already in order keeps its order exactly.

Values a node's subgraphs (If branches, Loop/Scan bodies) read from the enclosing graph count as
that node's inputs, so the node is converted after their producers.

Refused with a GeError naming the nodes and values: a value produced by two nodes (ONNX graphs
are in static single assignment form; taking the last producer would silently drop one), a node
output that redefines a graph input or initializer, a cycle, and a value nothing defines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from openge.errors import PARAM_INVALID, GeError

#: How many names an error message lists before "and N more".
_SHOWN = 5


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(repr(s) for s in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def subgraph_reads(graph: Any) -> set[str]:
    """Names a subgraph (and the subgraphs nested in it) reads from enclosing scopes."""
    import onnx

    defined = {vi.name for vi in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    reads: set[str] = set()
    for node in graph.node:
        reads.update(i for i in node.input if i)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                reads |= subgraph_reads(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    reads |= subgraph_reads(sub)
        defined.update(o for o in node.output if o)
    reads.update(vi.name for vi in graph.output)
    return reads - defined


def _node_reads(node: Any) -> list[str]:
    """A node's input names, then the outer names its subgraphs read (sorted, deterministic)."""
    import onnx

    names = [i for i in node.input if i]
    outer: set[str] = set()
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            outer |= subgraph_reads(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            for sub in attr.graphs:
                outer |= subgraph_reads(sub)
    return names + sorted(outer - set(names))


def topological_order(
    nodes: Sequence[Any],
    names: Sequence[str],
    outer_defined: Callable[[str], bool],
    local: set[str],
) -> list[int]:
    """Indexes of ``nodes``, producers first.

    Args:
        nodes: the graph's NodeProtos, in file order.
        names: the display name of each node (for messages).
        outer_defined: True for a name defined outside the nodes (graph inputs, initializers,
            enclosing scopes).
        local: this graph's own inputs and initializers (a node output may not redefine them).
    """
    producer: dict[str, int] = {}
    for k, node in enumerate(nodes):
        for out in node.output:
            if not out:
                continue
            first = producer.get(out)
            if first is not None:
                raise GeError(
                    PARAM_INVALID,
                    f"ONNX value {out!r} is produced by two nodes, {names[first]} and "
                    f"{names[k]}; an ONNX graph assigns each value once (SSA)",
                )
            if out in local:
                raise GeError(
                    PARAM_INVALID,
                    f"ONNX node {names[k]} outputs {out!r}, which is already a graph input or "
                    "initializer; an ONNX graph assigns each value once (SSA)",
                )
            producer[out] = k

    reads = [_node_reads(n) for n in nodes]
    missing: dict[str, str] = {}
    for k, node_reads in enumerate(reads):
        for name in node_reads:
            if name not in producer and not outer_defined(name):
                missing.setdefault(name, names[k])
    if missing:
        parts = [f"{value!r} (read by {node})" for value, node in list(missing.items())[:_SHOWN]]
        more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
        raise GeError(
            PARAM_INVALID,
            "ONNX graph reads values no node, graph input or initializer defines: "
            + ", ".join(parts)
            + more,
        )

    # Already in order (the usual case): keep the file's order.
    done: set[int] = set()
    in_order = True
    for k, node_reads in enumerate(reads):
        if any(producer.get(name, -1) >= k for name in node_reads):
            in_order = False
            break
    if in_order:
        return list(range(len(nodes)))

    # Kahn's algorithm: a node is ready when all its producers are done.
    waiting = [0] * len(nodes)
    consumers: list[list[int]] = [[] for _ in nodes]
    for k, node_reads in enumerate(reads):
        deps = {producer[name] for name in node_reads if name in producer}
        waiting[k] = len(deps)
        for p in sorted(deps):
            consumers[p].append(k)
    ready = deque(k for k in range(len(nodes)) if waiting[k] == 0)
    order: list[int] = []
    while ready:
        k = ready.popleft()
        order.append(k)
        done.add(k)
        for c in consumers[k]:
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)
    if len(order) != len(nodes):
        stuck = [names[k] for k in range(len(nodes)) if k not in done]
        raise GeError(
            PARAM_INVALID,
            f"ONNX graph has a cycle: {len(stuck)} node(s) depend on each other's outputs: "
            + _listing(stuck),
        )
    return order


__all__ = ["subgraph_reads", "topological_order"]
