"""LowerBatchNormPass: an inference batch norm that no weight could absorb becomes one per-channel
affine map, ``Mul(x, s)`` then ``Add(·, t)``.

``BN(x) = (x - mean)·scale/sqrt(var + eps) + offset = x·s + t`` with ``s = scale/sqrt(var + eps)``
and ``t = offset - mean·s`` (Caffe-style BNInference without scale/offset: ``f = 1/momentum``,
``s = 1/sqrt(f·var + eps)``, ``t = -f·mean·s``). A chain of per-channel constant ``Mul``/``Add``
nodes right after the norm (e.g. the Scale layer a BN is often followed by) is composed into the
same ``s`` and ``t``. The two elementwise nodes then fuse with what follows (a ``Relu`` …) into one
``FusedElementwise`` task that runs in place — instead of a normalization task with temporaries
plus an elementwise task. FoldBatchNormPass runs first: a norm right after a conv/matmul goes into
its weights instead.

Safe because the algebra is exact; only the rounding changes (``s`` and ``t`` are computed in
float64 and rounded once), so results agree to ~1e-6 relative in float32 — as with folding a BN
into weights. float16 norms are left alone (their kernel computes in float32 and rounds once).
Checks: the statistics (and scale/offset) are constants, no statistics output of a BatchNorm is
read, no control edges, and each absorbed node is the only reader of the value before it.
"""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.base import PassContext
from openge.compiler.passes.fold_batch_norm import constant_affine, inference_only
from openge.compiler.passes.rules import (
    Match,
    Rule,
    RuleBasedPass,
    add_const,
    add_inferred,
    const_value,
    is_graph_output,
    replace_node,
    used_by_control,
)
from openge.graph import Graph, Node, Port
from openge.ops import get_schema, node_where, normalize_attrs

_FLOATS = frozenset({"float32", "float64"})
#: Per-channel constant ops a chain after the norm may contain.
_CHAIN_OPS = frozenset({"Mul", "Add", "AddV2"})


def _norm_axis(bn: Node, attrs: dict) -> int:
    rank = len(bn.output_descs[0].shape)
    if bn.op_type == "BatchNorm" and attrs["data_format"] not in ("NCHW", "NCDHW", "ND"):
        return rank - 1
    return 1


def _per_channel(value: np.ndarray, rank: int, axis: int, channels: int) -> np.ndarray | None:
    """``value`` as a float64 vector of ``channels`` when it varies along ``axis`` only."""
    if value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + tuple(value.shape)
    if any(d != 1 for i, d in enumerate(shape) if i != axis) or shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(value.astype(np.float64).reshape(-1), (channels,)).copy()


def _sole_reader(graph: Graph, port: Port) -> Node | None:
    """The node reading ``port`` when it is the only reader (once) and ``port`` is internal."""
    users = port.node.users(port.index)
    if len(users) != 1 or is_graph_output(graph, port):
        return None
    return users[0][0]


class _AffineRule(Rule):
    """BNInference / BatchNorm(is_training=False) (+ per-channel Mul/Add chain) → Mul, Add."""

    name = "BatchNormToAffine"
    anchors = frozenset({"BNInference", "BatchNorm"})

    def match(self, graph: Graph, node: Node) -> Match | None:
        return Match({"bn": node})

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        bn = m["bn"]
        if bn.control_inputs or used_by_control(graph, bn):
            return f"{bn.name} takes part in control edges"
        out = bn.output_descs[0]
        if str(out.dtype.np_dtype) not in _FLOATS:
            return f"{out.dtype.short_name} is not float32/float64"
        attrs = normalize_attrs(get_schema(bn.op_type), bn.attrs, node_where(bn))
        reason = inference_only(graph, bn, attrs)
        if reason is not None:
            return reason
        affine = constant_affine(bn, attrs)
        if isinstance(affine, str):
            return affine
        s, t = affine
        axis = _norm_axis(bn, attrs)
        rank = len(out.shape)
        c = out.shape[axis]
        if rank < 2 or c < 0:
            return "the channel count is unknown"
        if s.size != c or t.size != c:
            return f"parameters have {s.size} values for {c} channels"
        last = bn
        chain: list[Node] = []
        while True:
            nxt = _sole_reader(graph, last.output(0))
            if (
                nxt is None
                or nxt.op_type not in _CHAIN_OPS
                or len(nxt.inputs) != 2
                or nxt.control_inputs
                or used_by_control(graph, nxt)
                or nxt.output_descs[0].dtype != out.dtype
                or nxt.output_descs[0].shape != out.shape
            ):
                break
            other = nxt.inputs[1] if nxt.inputs[0] == last.output(0) else nxt.inputs[0]
            value = const_value(other)
            vec = None if value is None else _per_channel(value, rank, axis, c)
            if vec is None or value is None or value.dtype != out.dtype.np_dtype:
                break
            if nxt.op_type == "Mul":
                s, t = s * vec, t * vec
            else:
                t = t + vec
            chain.append(nxt)
            last = nxt
        shape = (c,) + (1,) * (rank - 1 - axis)
        m.data.update(s=s.reshape(shape), t=t.reshape(shape), last=last, chain=chain)
        return None

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        bn, last = m["bn"], m.data["last"]
        dtype = bn.output_descs[0].dtype.np_dtype
        x = bn.inputs[0]
        assert x is not None
        s = add_const(graph, m.data["s"].astype(dtype), bn.name + "_scale")
        t = add_const(graph, m.data["t"].astype(dtype), bn.name + "_shift")
        mul = add_inferred(graph, "Mul", [x, s], {}, bn.name + "_mul")
        add = add_inferred(graph, "Add", [mul.output(0), t], {}, bn.name + "_add")
        # the last node's readers now read the Add; the chain and the norm die with it
        replace_node(graph, last, add)


class LowerBatchNormPass(RuleBasedPass):
    """Rewrite the inference batch norms left after FoldBatchNormPass as ``Mul`` + ``Add``."""

    name = "LowerBatchNormPass"
    fusion = True
    rules = (_AffineRule(),)


__all__ = ["LowerBatchNormPass"]
