"""CancelInverseOpsPass: drop data movement that undoes itself or does nothing.

Rules (each exact — the values reaching every reader are unchanged bit for bit):

* ``Identity(x)`` → ``x``;
* ``Transpose(Transpose(x, p1), p2)`` → ``TransposeD(x, p1∘p2)``, or ``x`` when the composed
  permutation is the identity (also a lone identity Transpose);
* a chain of reshape-like ops (Reshape, Squeeze*, Unsqueeze*, ExpandDims, Flatten) → one
  ``Reshape`` to the final shape, or ``x`` when the final shape is x's own (also a lone no-op);
* ``Cast(Cast(x, T1), T2)`` → ``Cast(x, T2)`` when T1 holds every value of x's type exactly
  (a widening), or ``x`` when T2 is x's type; ``Cast(x, dtype of x)`` → ``x``.

The inner node stays when something else still reads it. A node whose output is a graph output
is rewritten in place (same name) but never bypassed, so the model's output names stay.
"""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.base import PassContext
from openge.compiler.passes.rules import (
    Match,
    Rule,
    RuleBasedPass,
    add_const,
    add_inferred,
    bypass,
    const_value,
    is_graph_output_node,
    producer,
    replace_node,
    used_by_control,
)
from openge.graph import DataType, Graph, Node

RESHAPE_LIKE = frozenset(
    {
        "Reshape",
        "Squeeze",
        "SqueezeV2",
        "SqueezeV3",
        "Unsqueeze",
        "UnsqueezeV2",
        "UnsqueezeV3",
        "ExpandDims",
        "Flatten",
    }
)
TRANSPOSES = frozenset({"Transpose", "TransposeD"})


def _movable(graph: Graph, node: Node) -> str | None:
    if node.control_inputs or used_by_control(graph, node):
        return f"{node.name} takes part in control edges"
    return None


def _drop_or_replace(graph: Graph, node: Node, source, make) -> None:
    """Bypass ``node`` to ``source`` — or, when its output is a graph output, replace it by the
    node ``make()`` builds (which keeps its name)."""
    if is_graph_output_node(graph, node):
        replace_node(graph, node, make())
    else:
        bypass(graph, node, source)


class _IdentityRule(Rule):
    """Identity(x) → x."""

    name = "Identity"
    anchors = frozenset({"Identity"})

    def match(self, graph: Graph, node: Node) -> Match | None:
        return Match({"node": node}) if node.inputs and node.inputs[0] is not None else None

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        if is_graph_output_node(graph, m["node"]):
            return "its output is a graph output"
        return _movable(graph, m["node"])

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        source = m["node"].inputs[0]
        assert source is not None  # matched
        bypass(graph, m["node"], source)


def _perm(node: Node, ctx: PassContext) -> list[int] | None:
    if node.op_type == "TransposeD":
        return [int(p) for p in node.attrs.get("perm", [])]
    port = node.inputs[1] if len(node.inputs) > 1 else None
    value = ctx.const_values.get(port) if port is not None else None
    if value is None:
        value = const_value(port)
    return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


class _TransposeRule(Rule):
    """Transpose(Transpose(x, p1), p2) → TransposeD(x, p1∘p2); identity → x."""

    name = "TransposePair"
    anchors = TRANSPOSES

    def match(self, graph: Graph, node: Node) -> Match | None:
        inner = producer(node, 0)
        nodes = {"outer": node}
        if inner is not None and inner.op_type in TRANSPOSES:
            nodes["inner"] = inner
        return Match(nodes)

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        outer = m["outer"]
        p2 = _perm(outer, ctx)
        if p2 is None:
            return "the permutation is not constant"
        rank = len(outer.output_descs[0].shape)
        p2 = [p % rank for p in p2] if rank else p2
        source = outer.inputs[0]
        perm = p2
        if "inner" in m.nodes:
            inner = m["inner"]
            p1 = _perm(inner, ctx)
            if p1 is None or inner.control_inputs:
                return "the inner permutation is not constant"
            p1 = [p % rank for p in p1] if rank else p1
            perm = [p1[i] for i in p2]
            source = inner.inputs[0]
        if perm == list(range(rank)):
            m.data.update(perm=None, source=source)
        elif "inner" in m.nodes:
            m.data.update(perm=perm, source=source)
        else:
            return "a single non-identity transpose"
        return _movable(graph, outer)

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        outer, source, perm = m["outer"], m.data["source"], m.data["perm"]
        if perm is None:
            _drop_or_replace(
                graph,
                outer,
                source,
                lambda: add_inferred(graph, "Identity", [source], {}, outer.name + "_id"),
            )
            return
        new = add_inferred(graph, "TransposeD", [source], {"perm": perm}, outer.name + "_t")
        replace_node(graph, outer, new)


class _ReshapeRule(Rule):
    """reshape-like(reshape-like(…(x))) → Reshape(x, final shape); no-op → x."""

    name = "ReshapeChain"
    anchors = RESHAPE_LIKE

    def match(self, graph: Graph, node: Node) -> Match | None:
        chain = [node]
        while True:
            p = producer(chain[-1], 0)
            if p is None or p.op_type not in RESHAPE_LIKE or p.control_inputs:
                break
            chain.append(p)
        return Match({"outer": node}, {"chain": chain})

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        outer = m["outer"]
        chain = m.data["chain"]
        source = chain[-1].inputs[0]
        out = outer.output_descs[0]
        if source is None or not out.is_static or not source.desc.is_static:
            return "shapes are not static"
        m.data["source"] = source
        if tuple(out.shape) == tuple(source.desc.shape):
            m.data["shape"] = None
        elif len(chain) > 1:
            m.data["shape"] = list(out.shape)
        else:
            return "a single reshape that changes the shape"
        return _movable(graph, outer)

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        outer, source, shape = m["outer"], m.data["source"], m.data["shape"]
        if shape is None:
            _drop_or_replace(
                graph,
                outer,
                source,
                lambda: add_inferred(graph, "Identity", [source], {}, outer.name + "_id"),
            )
            return
        dims = add_const(graph, np.asarray(shape, dtype=np.int64), outer.name + "_shape")
        new = add_inferred(graph, "Reshape", [source, dims], {}, outer.name + "_r")
        replace_node(graph, outer, new)


_MANTISSA = {np.dtype(np.float16): 11, np.dtype(np.float32): 24, np.dtype(np.float64): 53}


def lossless(src: DataType, dst: DataType) -> bool:
    """True when every value of ``src`` converts to ``dst`` and back exactly."""
    if src == dst:
        return True
    try:
        a, b = src.np_dtype, dst.np_dtype
    except Exception:  # a type NumPy cannot hold (bf16 …)
        return False
    if a.kind == "b":
        return b.kind in "biuf"
    if not np.can_cast(a, b, casting="safe") or b.kind == "c" or a.kind == "c":
        return False
    if a.kind in "iu" and b.kind == "f":
        bits = a.itemsize * 8 - (1 if a.kind == "i" else 0)
        return bits <= _MANTISSA.get(b, 0)
    return True


class _CastRule(Rule):
    """Cast(Cast(x, T1), T2) → Cast(x, T2) when T1 widens x's type; no-op casts → x."""

    name = "CastPair"
    anchors = frozenset({"Cast"})

    def match(self, graph: Graph, node: Node) -> Match | None:
        nodes = {"outer": node}
        inner = producer(node, 0)
        if inner is not None and inner.op_type == "Cast":
            nodes["inner"] = inner
        return Match(nodes)

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        outer = m["outer"]
        target = outer.output_descs[0].dtype
        if outer.inputs[0] is None:
            return "input missing"
        if outer.inputs[0].desc.dtype == target:
            m.data.update(source=outer.inputs[0], cast=False)
            return _movable(graph, outer)
        if "inner" not in m.nodes:
            return "a single cast that changes the type"
        inner = m["inner"]
        source = inner.inputs[0]
        if source is None or inner.control_inputs:
            return "inner cast has control inputs"
        middle = inner.output_descs[0].dtype
        if not lossless(source.desc.dtype, middle):
            return (
                f"{source.desc.dtype.short_name} -> {middle.short_name} loses values, so the "
                "two casts are not one"
            )
        m.data.update(source=source, cast=source.desc.dtype != target)
        return _movable(graph, outer)

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        outer, source = m["outer"], m.data["source"]
        if not m.data["cast"]:
            _drop_or_replace(
                graph,
                outer,
                source,
                lambda: add_inferred(graph, "Identity", [source], {}, outer.name + "_id"),
            )
            return
        new = add_inferred(graph, "Cast", [source], dict(outer.attrs), outer.name + "_c")
        replace_node(graph, outer, new)


class CancelInverseOpsPass(RuleBasedPass):
    """Remove identities, merge transpose/reshape/cast chains, drop no-op conversions."""

    name = "CancelInverseOpsPass"
    fusion = True
    rules = (_IdentityRule(), _TransposeRule(), _ReshapeRule(), _CastRule())


__all__ = ["RESHAPE_LIKE", "CancelInverseOpsPass", "lossless"]
