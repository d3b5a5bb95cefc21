"""Declarative rewrite rules (pattern / check / rewrite) and the pass that applies them.

A :class:`Rule` is anchored at one node (``anchors``: the op types it can start from):

* ``match(graph, node)`` is the *pattern*: it looks only at structure (op types, which input
  comes from where) and returns the bound nodes, or None;
* ``check(graph, match, ctx)`` says why a structurally matching rewrite would be wrong (a
  non-constant weight, a weight shared outside the match, a value that is a graph output …) —
  the reason is logged at debug level so ``--log=debug`` shows every fusion that did not fire;
* ``rewrite(graph, match, ctx)`` edits the graph through the Graph methods.

:class:`RuleBasedPass` visits the nodes once in topological order and applies the first rule
that fires at each; a rewrite replaces the anchor, so later nodes already see the new graph.
The helpers below are the vocabulary the rules share.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from openge.compiler.passes.base import GraphPass, PassContext
from openge.graph import Format, Graph, Node, Port, Tensor, TensorDesc
from openge.ops import Trait, get_schema, infer_node

logger = logging.getLogger(__name__)


@dataclass
class Match:
    """The nodes a pattern bound, by role, plus anything the check computed for the rewrite."""

    nodes: dict[str, Node]
    data: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, role: str) -> Node:
        return self.nodes[role]


class Rule:
    """One rewrite: pattern (``anchors`` + ``match``), ``check`` (a reason or None), ``rewrite``."""

    name: ClassVar[str] = ""
    anchors: ClassVar[frozenset[str]] = frozenset()

    def match(self, graph: Graph, node: Node) -> Match | None:  # pragma: no cover - abstract
        """The bound nodes when the structure fits, else None."""
        raise NotImplementedError

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        """Why the rewrite must not happen here (None: it may)."""
        return None

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:  # pragma: no cover
        """Edit the graph."""
        raise NotImplementedError


def apply_rules(pass_name: str, rules: Sequence[Rule], graph: Graph, ctx: PassContext) -> bool:
    """One topological sweep applying, at each node, the first of ``rules`` that fires."""
    changed = False
    with control_index(graph):
        changed = _sweep(pass_name, rules, graph, ctx)
    return changed


def _sweep(pass_name: str, rules: Sequence[Rule], graph: Graph, ctx: PassContext) -> bool:
    changed = False
    for node in graph.topological_order():
        if not alive(graph, node):
            continue
        for rule in rules:
            if node.op_type not in rule.anchors:
                continue
            m = rule.match(graph, node)
            if m is None:
                continue
            reason = rule.check(graph, m, ctx)
            if reason is not None:
                logger.debug(
                    "%s: %s not applied at %s: %s", pass_name, rule.name, node.name, reason
                )
                continue
            before = _before_rewrite(graph, m)
            rule.rewrite(graph, m, ctx)
            _record_original_names(graph, *before)
            logger.debug("%s: %s applied at %s", pass_name, rule.name, node.name)
            changed = True
            break
    return changed


#: Node attr naming the source-graph ops a node now computes (GE's fusion record): a data dump
#: files the node's tensors under these names so they match a dump of the unfused model.
ORIGINAL_NAMES_ATTR = "_datadump_original_op_names"


def original_names(node: Node) -> list[str]:
    """The source-graph op names ``node`` stands for (its own name when nothing was fused)."""
    names = node.attrs.get(ORIGINAL_NAMES_ATTR)
    return list(names) if names else [node.name]


def _matched(m: Match) -> list[Node]:
    """The match's nodes in match order (roles, then node lists the check stored in data)."""
    nodes = list(m.nodes.values())
    for value in m.data.values():
        if isinstance(value, Node):
            nodes.append(value)
        elif isinstance(value, (list, tuple)):
            nodes.extend(v for v in value if isinstance(v, Node))
    return list(dict.fromkeys(nodes))


def _in_data_order(nodes: list[Node]) -> list[Node]:
    """``nodes`` with every producer before its consumers (stable otherwise)."""
    pending, placed, out = list(nodes), set(), []
    members = set(nodes)
    while pending:
        for n in pending:
            if all(p is None or p.node not in members or p.node in placed for p in n.inputs):
                break
        else:  # a cycle cannot happen in a DAG; keep the rest as they are
            return out + pending
        pending.remove(n)
        placed.add(n)
        out.append(n)
    return out


def _before_rewrite(graph: Graph, m: Match) -> tuple[list[Node], set[Node], list]:
    """What naming needs from before a rewrite: the matched nodes in data order, the nodes a
    rewrite may leave in place (matched ones and their producers), and who reads the match
    from outside it — (node, input index) or graph output k."""
    matched = _in_data_order(_matched(m))
    inside = set(matched)
    known = inside | {p.node for n in matched for p in n.inputs if p is not None}
    readers: list[tuple[Node, int] | int] = []
    for n in matched:
        for user, idx in n.users():
            if user not in inside:
                readers.append((user, idx))
    readers.extend(k for k, p in enumerate(graph.outputs) if p.node in inside)
    return matched, known, readers


def _record_original_names(
    graph: Graph, matched: list[Node], known: set[Node], readers: list
) -> None:
    """After a rewrite, the nodes now feeding the match's readers record the names of the
    matched nodes the rewrite removed (``_datadump_original_op_names``, producers first — the
    last is the op whose output the node now gives). A node the rewrite created stands only
    for them; a surviving node keeps its own names first."""
    gone = [n for n in matched if not alive(graph, n)]
    if not gone:
        return
    names = [name for n in gone for name in original_names(n)]
    outputs = graph.outputs
    for r in readers:
        if isinstance(r, int):
            port = outputs[r] if r < len(outputs) else None
        else:
            user, idx = r
            port = user.inputs[idx] if alive(graph, user) and idx < len(user.inputs) else None
        if port is None or port.node.op_type in ("Const", "Data"):
            continue
        target = port.node
        own = original_names(target) if target in known else []
        merged = list(dict.fromkeys(own + names))
        if merged != [target.name]:
            target.attrs[ORIGINAL_NAMES_ATTR] = merged


class RuleBasedPass(GraphPass):
    """Apply ``rules`` over the graph in one topological sweep."""

    rules: ClassVar[tuple[Rule, ...]] = ()

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        return apply_rules(self.name, self.rules, graph, ctx)


# ----- vocabulary --------------------------------------------------------------------------------


def alive(graph: Graph, node: Node) -> bool:
    """True while ``node`` is still in ``graph`` (a rewrite may have removed it)."""
    return graph.has_node(node.name) and graph.node(node.name) is node


def producer(node: Node, index: int) -> Node | None:
    """The node feeding input ``index`` (None when omitted)."""
    port = node.inputs[index] if index < len(node.inputs) else None
    return None if port is None else port.node


def is_graph_output(graph: Graph, port: Port) -> bool:
    """True when ``port`` is one of the graph's outputs."""
    return any(p == port for p in graph.outputs)


#: Per-graph sets of nodes that are control inputs, while a ``control_index`` is open.
_CONTROLLED: dict[int, set[Node]] = {}


@contextlib.contextmanager
def control_index(graph: Graph) -> Iterator[None]:
    """Within the block, :func:`used_by_control` is a set lookup instead of a graph scan
    (edits inside must go through :func:`replace_node` to keep the index right)."""
    key = id(graph)
    outer = _CONTROLLED.get(key)
    if outer is None:
        _CONTROLLED[key] = {c for n in graph for c in n.control_inputs}
    try:
        yield
    finally:
        if outer is None:
            _CONTROLLED.pop(key, None)


def used_by_control(graph: Graph, node: Node) -> bool:
    """True when ``node`` is another node's control input."""
    index = _CONTROLLED.get(id(graph))
    if index is not None:
        return node in index
    return any(node in other.control_inputs for other in graph)


def sole_user(graph: Graph, port: Port, user: Node) -> bool:
    """True when ``user`` is the only reader of ``port`` (once) and it is not a graph output."""
    users = port.node.users(port.index)
    return len(users) == 1 and users[0][0] is user and not is_graph_output(graph, port)


def const_value(port: Port | None) -> np.ndarray | None:
    """The value of ``port`` when it is a Const node's output."""
    if port is None or port.node.op_type != "Const":
        return None
    return port.node.attrs["value"].numpy()


def private_const(graph: Graph, port: Port | None, user: Node) -> str | None:
    """None when ``port`` is a Const read only by ``user``; else why it is not."""
    if port is None:
        return "input missing"
    if port.node.op_type != "Const":
        return f"{port.node.name} ({port.node.op_type}) is not a constant"
    if not sole_user(graph, port, user):
        return f"constant {port.node.name} is shared outside the match"
    return None


def add_const(
    graph: Graph,
    value: np.ndarray,
    name: str,
    like: TensorDesc | None = None,
    fmt: Format | None = None,
) -> Port:
    """A new Const node holding ``value`` (format ``fmt``, else ``like``'s, else ND)."""
    value = np.ascontiguousarray(value)
    if fmt is None and like is not None:
        fmt = like.format
    tensor = Tensor(value) if fmt is None else Tensor(value, format=fmt)
    node = graph.add_node(
        "Const", name=graph.unique_name(name), attrs={"value": tensor}, output_descs=[tensor.desc]
    )
    node.output_descs = infer_node(node)[1]
    return node.output(0)


def add_inferred(
    graph: Graph,
    op_type: str,
    inputs: list[Port | None],
    attrs: dict[str, Any],
    name: str,
) -> Node:
    """A new node whose output descs are inferred right away (raises GeError if invalid)."""
    node = graph.add_node(op_type, inputs, name=graph.unique_name(name), attrs=attrs)
    known = {p: v for p in inputs if p is not None for v in (const_value(p),) if v is not None}
    node.output_descs = infer_node(node, known)[1]
    return node


def remove_if_dead(graph: Graph, node: Node | None) -> None:
    """Remove ``node`` (and then its producers, recursively) when nothing uses it any more."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None or not alive(graph, n) or n.op_type == "Data":
            continue
        if n.users() or is_graph_output_node(graph, n) or used_by_control(graph, n):
            continue
        if get_schema(n.op_type).has(Trait.STATEFUL) and n.op_type != "Variable":
            continue
        inputs = [p.node for p in n.inputs if p is not None]
        graph.remove_node(n)
        stack.extend(inputs)


def is_graph_output_node(graph: Graph, node: Node) -> bool:
    """True when one of ``node``'s outputs is a graph output."""
    return any(p.node is node for p in graph.outputs)


def replace_node(graph: Graph, old: Node, new: Node) -> None:
    """Make ``new`` take ``old``'s place: every use of old's outputs (and graph outputs) now
    reads new's, old's control inputs move over and old is removed. When new now gives a graph
    output it takes old's name, so the model's output names stay what the user built (renaming
    costs a pass over the graph, so internal nodes keep their own, derived names). Outputs of
    ``old`` past ``new``'s count must be unread."""
    for i in range(old.num_outputs):
        if i < new.num_outputs:
            graph.replace_all_uses(old.output(i), new.output(i))
        elif old.users(i) or any(p == old.output(i) for p in graph.outputs):
            raise AssertionError(f"replace_node: output {i} of {old.name} is still read")
    for dep in old.control_inputs:
        graph.add_control_edge(dep, new)
    if used_by_control(graph, old):
        for other in graph:
            if old in other.control_inputs:
                graph.remove_control_edge(old, other)
                graph.add_control_edge(new, other)
        index = _CONTROLLED.get(id(graph))
        if index is not None:
            index.discard(old)
            index.add(new)
    inputs = [p.node for p in old.inputs if p is not None]
    graph.remove_node(old)
    if is_graph_output_node(graph, new):
        graph.rename_node(new, old.name)
    for n in inputs:
        remove_if_dead(graph, n)


def bypass(graph: Graph, node: Node, port: Port) -> None:
    """Make every reader of ``node``'s output 0 read ``port`` instead, then drop dead nodes."""
    graph.replace_all_uses(node.output(0), port)
    remove_if_dead(graph, node)


__all__ = [
    "ORIGINAL_NAMES_ATTR",
    "Match",
    "Rule",
    "RuleBasedPass",
    "add_const",
    "add_inferred",
    "alive",
    "apply_rules",
    "bypass",
    "const_value",
    "control_index",
    "is_graph_output",
    "is_graph_output_node",
    "original_names",
    "private_const",
    "producer",
    "remove_if_dead",
    "replace_node",
    "sole_user",
    "used_by_control",
]
