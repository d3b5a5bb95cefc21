"""Node and Graph: the mutable graph IR, edited only through methods that keep edges right."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph.tensor import Tensor, TensorDesc
from openge.graph.types import DataType

#: A new node's output desc until inference sets it (TensorDesc is frozen: one shared instance).
_UNSET_DESC = TensorDesc()


class Port(NamedTuple):
    """One output of a node: the producer and the output index."""

    node: Node
    index: int

    @property
    def desc(self) -> TensorDesc:
        """The TensorDesc of this output."""
        return self.node.output_descs[self.index]

    def __repr__(self) -> str:
        return f"{self.node.name}:{self.index}"


class Node:
    """One operation in a Graph.

    Inputs are Ports (producer node + output index) or None for an omitted optional input;
    control inputs are nodes that must run first. Use the Graph's methods to change edges.
    """

    __slots__ = (
        "_control_inputs",
        "_control_users",
        "_inputs",
        "_users",
        "attrs",
        "graph",
        "name",
        "op_type",
        "output_descs",
    )

    def __init__(
        self,
        graph: Graph,
        name: str,
        op_type: str,
        num_outputs: int,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.graph = graph
        self.name = name
        self.op_type = op_type
        self.attrs: dict[str, Any] = dict(attrs or {})
        self._inputs: list[Port | None] = []
        self._control_inputs: list[Node] = []
        self._control_users: list[Node] = []  # nodes that list this one as a control input
        # Per output, consumers as an insertion-ordered dict (O(1) add, remove and lookup even
        # when one value feeds tens of thousands of nodes).
        self._users: list[dict[tuple[Node, int], None]] = [{} for _ in range(num_outputs)]
        self.output_descs: list[TensorDesc] = [_UNSET_DESC] * num_outputs

    @property
    def inputs(self) -> tuple[Port | None, ...]:
        """The data inputs in order (None for an omitted optional input)."""
        return tuple(self._inputs)

    @property
    def control_inputs(self) -> tuple[Node, ...]:
        """Nodes that must run before this one."""
        return tuple(self._control_inputs)

    @property
    def control_users(self) -> tuple[Node, ...]:
        """Nodes that must run after this one (its control-edge consumers)."""
        return tuple(self._control_users)

    @property
    def num_outputs(self) -> int:
        """Number of outputs."""
        return len(self._users)

    def output(self, index: int = 0) -> Port:
        """The Port for output ``index``."""
        if not 0 <= index < len(self._users):
            raise GeError(
                PARAM_INVALID,
                f"node {self.name} ({self.op_type}) has {len(self._users)} outputs; "
                f"output {index} does not exist",
            )
        return Port(self, index)

    def users(self, index: int | None = None) -> list[tuple[Node, int]]:
        """Consumers ``(node, input index)`` of one output, or of all outputs."""
        if index is not None:
            return list(self._users[index])
        return [u for per_output in self._users for u in per_output]

    def input_desc(self, index: int) -> TensorDesc | None:
        """The TensorDesc flowing into input ``index`` (None when omitted)."""
        port = self._inputs[index] if index < len(self._inputs) else None
        return None if port is None else port.desc

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.op_type})"


def _format_attr(value: Any) -> str:
    if isinstance(value, Tensor):
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"array{list(value.shape)}"
    if isinstance(value, Graph):
        return f"graph<{value.name}>"
    if isinstance(value, DataType):
        return value.name
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return f"bytes[{len(value)}]"
    return repr(value)


class Graph:
    """A named dataflow graph of Nodes with an ordered list of output Ports.

    Inputs are the nodes of type ``Data`` (attr ``index`` gives their position). Node names are
    unique. The graph can be verified (``validate``), ordered (``topological_order``), cloned
    and printed one node a line (``dump``).
    """

    __slots__ = ("_counter", "_nodes", "_outputs", "attrs", "name")

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self._nodes: dict[str, Node] = {}
        self._outputs: list[Port] = []
        self._counter = 0
        self.attrs: dict[str, Any] = {}

    # ----- nodes ---------------------------------------------------------------------------
    def unique_name(self, base: str) -> str:
        """A node name not used yet in this graph, derived from ``base``."""
        if base not in self._nodes:
            return base
        while True:
            self._counter += 1
            candidate = f"{base}_{self._counter}"
            if candidate not in self._nodes:
                return candidate

    def add_node(
        self,
        op_type: str,
        inputs: Sequence[Port | None] = (),
        *,
        name: str | None = None,
        attrs: dict[str, Any] | None = None,
        num_outputs: int = 1,
        output_descs: Sequence[TensorDesc] | None = None,
        control_inputs: Iterable[Node] = (),
    ) -> Node:
        """Create a node, wire its inputs and return it. A given name must be unused."""
        if name is None:
            name = self.unique_name(op_type)
        elif name in self._nodes:
            raise GeError(PARAM_INVALID, f"graph {self.name} already has a node named {name!r}")
        if output_descs is not None:
            num_outputs = len(output_descs)
        node = Node(self, name, op_type, num_outputs, attrs)
        if output_descs is not None:
            node.output_descs = list(output_descs)
        self._nodes[name] = node
        for port in inputs:
            self._append_input(node, port)
        for dep in control_inputs:
            self.add_control_edge(dep, node)
        return node

    def _check_port(self, port: Port | None) -> None:
        if port is None:
            return
        if not isinstance(port, Port):
            raise GeError(PARAM_INVALID, f"expected a Port (node output), got {port!r}")
        if self._nodes.get(port.node.name) is not port.node:
            raise GeError(
                PARAM_INVALID,
                f"node {port.node.name!r} does not belong to graph {self.name}; "
                "connect only nodes of the same graph",
            )
        if not 0 <= port.index < port.node.num_outputs:
            raise GeError(
                PARAM_INVALID,
                f"node {port.node.name} has {port.node.num_outputs} outputs; "
                f"output {port.index} does not exist",
            )

    def _append_input(self, node: Node, port: Port | None) -> None:
        self._check_port(port)
        node._inputs.append(port)
        if port is not None:
            port.node._users[port.index][(node, len(node._inputs) - 1)] = None

    def set_input(self, node: Node, index: int, port: Port | None) -> None:
        """Point input ``index`` of ``node`` at ``port`` (extending the input list if needed)."""
        self._check_port(port)
        while len(node._inputs) <= index:
            node._inputs.append(None)
        old = node._inputs[index]
        if old is not None:
            del old.node._users[old.index][(node, index)]
        node._inputs[index] = port
        if port is not None:
            port.node._users[port.index][(node, index)] = None

    def add_input(self, node: Node, port: Port | None) -> None:
        """Append a data input to ``node``."""
        self._append_input(node, port)

    def add_control_edge(self, before: Node, after: Node) -> None:
        """Make ``after`` run after ``before``."""
        if self._nodes.get(before.name) is not before:
            raise GeError(PARAM_INVALID, f"control input {before.name!r} is not in {self.name}")
        if before not in after._control_inputs:
            after._control_inputs.append(before)
            before._control_users.append(after)

    def remove_control_edge(self, before: Node, after: Node) -> None:
        """Drop the control edge before → after if present."""
        if before in after._control_inputs:
            after._control_inputs.remove(before)
            before._control_users.remove(after)

    def replace_all_uses(self, old: Port, new: Port) -> None:
        """Make every consumer of ``old`` (and graph outputs) read ``new`` instead."""
        self._check_port(new)
        for consumer, idx in list(old.node._users[old.index]):
            self.set_input(consumer, idx, new)
        self._outputs = [new if p == old else p for p in self._outputs]

    def remove_node(self, node: Node) -> None:
        """Remove a node that nothing uses any more (raises GeError otherwise)."""
        users = node.users()
        if users or any(p.node is node for p in self._outputs):
            where = ", ".join(sorted({u.name for u, _ in users})) or "graph outputs"
            raise GeError(
                PARAM_INVALID,
                f"cannot remove node {node.name} ({node.op_type}): still used by {where}",
            )
        for i, port in enumerate(node._inputs):
            if port is not None:
                del port.node._users[port.index][(node, i)]
        node._inputs = []
        for other in node._control_users:
            other._control_inputs.remove(node)
        for dep in node._control_inputs:
            dep._control_users.remove(node)
        node._control_users = []
        node._control_inputs = []
        del self._nodes[node.name]

    def rename_node(self, node: Node, new_name: str) -> None:
        """Give ``node`` an unused name."""
        if self._nodes.get(node.name) is not node:
            raise GeError(PARAM_INVALID, f"node {node.name!r} is not in graph {self.name}")
        if new_name == node.name:
            return
        if new_name in self._nodes:
            raise GeError(PARAM_INVALID, f"graph {self.name} already has a node named {new_name!r}")
        # The renamed node moves to the end of the insertion order (O(1)); insertion order only
        # breaks ties between independent nodes in topological_order, so results are unchanged.
        del self._nodes[node.name]
        self._nodes[new_name] = node
        node.name = new_name

    def node(self, name: str) -> Node:
        """The node called ``name`` (GeError when absent)."""
        try:
            return self._nodes[name]
        except KeyError:
            raise GeError(PARAM_INVALID, f"graph {self.name} has no node named {name!r}") from None

    def has_node(self, name: str) -> bool:
        """True when a node of that name exists."""
        return name in self._nodes

    @property
    def nodes(self) -> list[Node]:
        """All nodes, in insertion order."""
        return list(self._nodes.values())

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __len__(self) -> int:
        return len(self._nodes)

    # ----- inputs / outputs --------------------------------------------------------------
    @property
    def inputs(self) -> list[Node]:
        """The ``Data`` nodes ordered by their ``index`` attr."""
        data = [n for n in self._nodes.values() if n.op_type == "Data"]
        return sorted(data, key=lambda n: int(n.attrs.get("index", 0)))

    @property
    def outputs(self) -> list[Port]:
        """The graph outputs in order."""
        return list(self._outputs)

    def set_outputs(self, ports: Sequence[Port]) -> None:
        """Set the graph outputs (Ports of this graph's nodes)."""
        for p in ports:
            self._check_port(p)
        self._outputs = list(ports)

    # ----- structure ------------------------------------------------------------------------
    def topological_order(self) -> list[Node]:
        """Nodes so that producers (and control inputs) come first; ties keep insertion order.

        Raises GeError naming the nodes on a cycle when the graph is not acyclic.
        """
        position = {name: i for i, name in enumerate(self._nodes)}
        pending: dict[Node, int] = {}
        dependents: dict[Node, list[Node]] = {n: [] for n in self._nodes.values()}
        for node in self._nodes.values():
            deps = {p.node for p in node._inputs if p is not None} | set(node._control_inputs)
            pending[node] = len(deps)
            for d in deps:
                dependents[d].append(node)
        ready = [(position[n.name], n.name) for n, c in pending.items() if c == 0]
        heapq.heapify(ready)
        order: list[Node] = []
        while ready:
            _, name = heapq.heappop(ready)
            node = self._nodes[name]
            order.append(node)
            for nxt in dependents[node]:
                pending[nxt] -= 1
                if pending[nxt] == 0:
                    heapq.heappush(ready, (position[nxt.name], nxt.name))
        if len(order) != len(self._nodes):
            stuck = sorted(n.name for n, c in pending.items() if c > 0)
            raise GeError(
                PARAM_INVALID,
                f"graph {self.name} has a cycle through: {', '.join(stuck[:10])}",
            )
        return order

    def validate(self) -> None:
        """Check the invariants: edges point into this graph, users mirror inputs, acyclic,
        Data indexes unique and dense, outputs set. Raises GeError on the first violation."""
        for node in self._nodes.values():
            for i, port in enumerate(node._inputs):
                if port is None:
                    continue
                self._check_port(port)
                if (node, i) not in port.node._users[port.index]:
                    raise GeError(PARAM_INVALID, f"edge {port!r} -> {node.name}:{i} not tracked")
            for dep in node._control_inputs:
                if node not in dep._control_users:
                    raise GeError(
                        PARAM_INVALID, f"control edge {dep.name} -> {node.name} untracked"
                    )
            for out_idx, users in enumerate(node._users):
                for consumer, i in users:
                    if consumer._inputs[i] != Port(node, out_idx):
                        raise GeError(PARAM_INVALID, f"stale use {node.name} -> {consumer.name}")
        self.topological_order()
        indexes = [int(n.attrs.get("index", -1)) for n in self.inputs]
        if sorted(indexes) != list(range(len(indexes))):
            raise GeError(
                PARAM_INVALID,
                f"graph {self.name}: Data node indexes are {sorted(indexes)}; they must be "
                f"0..{len(indexes) - 1}, each used once",
            )
        for p in self._outputs:
            self._check_port(p)

    def clone(self, name: str | None = None) -> Graph:
        """A deep structural copy (attr values that are Tensors or arrays are shared)."""
        new = Graph(name or self.name)
        new.attrs = dict(self.attrs)
        mapping: dict[Node, Node] = {}
        for node in self.topological_order():
            copy = new.add_node(
                node.op_type,
                [None if p is None else Port(mapping[p.node], p.index) for p in node._inputs],
                name=node.name,
                attrs={k: _clone_attr(v) for k, v in node.attrs.items()},
                output_descs=list(node.output_descs),
                control_inputs=[mapping[c] for c in node._control_inputs],
            )
            mapping[node] = copy
        new._outputs = [Port(mapping[p.node], p.index) for p in self._outputs]
        return new

    # ----- text form ------------------------------------------------------------------------
    def dump(self) -> str:
        """Deterministic text form, one node a line: ``%y:float32[1,64] = Relu(%x)``."""
        lines = [f"graph {self.name} {{"]
        for node in self.topological_order():
            outs = ", ".join(
                f"%{node.name}" + (f".{i}" if node.num_outputs > 1 else "") + ":" + d.type_str()
                for i, d in enumerate(node.output_descs)
            )
            args = ", ".join("_" if p is None else _port_ref(p) for p in node._inputs)
            if node._control_inputs:
                args += (", " if args else "") + ", ".join(
                    f"^{c.name}" for c in node._control_inputs
                )
            attrs = ""
            if node.attrs:
                attrs = (
                    " {"
                    + ", ".join(f"{k}={_format_attr(v)}" for k, v in sorted(node.attrs.items()))
                    + "}"
                )
            lines.append(f"  {outs} = {node.op_type}({args}){attrs}")
        lines.append("  return " + ", ".join(_port_ref(p) for p in self._outputs))
        lines.append("}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.dump()

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self._nodes)} nodes, {len(self._outputs)} outputs)"


def _port_ref(port: Port) -> str:
    if port.node.num_outputs > 1:
        return f"%{port.node.name}.{port.index}"
    return f"%{port.node.name}"


def _clone_attr(value: Any) -> Any:
    if isinstance(value, list):
        return [_clone_attr(v) for v in value]
    if isinstance(value, Graph):
        return value.clone()
    return value
