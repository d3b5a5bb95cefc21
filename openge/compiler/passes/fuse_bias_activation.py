"""FuseBiasActivationPass: Conv2D / MatMul + bias + activation (and friends) as one task.

Two rules, in this order at each Conv2D / MatMulV2 / BatchMatMulV2:

* **bias**: ``Add(main(x), c)`` with a constant ``c`` that only varies along the output channels
  becomes main's own bias input, when main has none yet. For float32/float64 results the kernels
  add the bias to the result exactly as the Add did, so the result is bit-identical (float16
  results are left alone: their kernels add the bias in float32 before rounding; a second Add
  stays for the epilogue, as folding it into the bias would round differently);
* **epilogue**: the elementwise ops that follow (an activation, a residual ``Add``, a scale, a
  SiLU ``x·Sigmoid(x)`` that reads the result twice …), each keeping the result's shape and
  dtype, up to the first value read outside them — the main result and every value but the
  last are read only inside — become the ``epilogue`` program of a ``FusedConv2D`` /
  ``FusedMatMul``, which runs the same kernels in place on the result. At most two other
  tensors (``operand1``/``operand2``, e.g. the residual branch) may enter it. Bit-identical.

Checks: the main result is read only by the chain; the weights are not touched and a bias
constant is copied (so it may be shared only when it is a small vector); no control edges;
the ops' attrs fit a program. A fused node that gives a graph output takes the chain's last
name (so output names stay).
"""

from __future__ import annotations

import numpy as np

from openge.compiler.passes.base import PassContext
from openge.compiler.passes.fuse_elementwise import build_program, external_operands, fusable
from openge.compiler.passes.rules import (
    Match,
    Rule,
    RuleBasedPass,
    add_const,
    add_inferred,
    apply_rules,
    const_value,
    is_graph_output_node,
    private_const,
    producer,
    replace_node,
    sole_user,
    used_by_control,
)
from openge.graph import DataType, Graph, Node, Port
from openge.ops import get_schema, node_where, normalize_attrs
from openge.ops.exact_cube import EXACT_ACCUMULATION_ATTR

MAIN_OPS = frozenset({"Conv2D", "MatMulV2", "BatchMatMulV2"})
#: Epilogue operands beyond the main result (FusedConv2D/FusedMatMul operand1, operand2).
MAX_EXTRA = 2
#: The most elementwise ops one epilogue takes.
MAX_CHAIN = 8
#: A constant addend or bias read elsewhere too is copied into the new bias up to this size.
MAX_SHARED_BIAS = 65536
#: Result types whose kernels add the bias in the result type itself (float16 accumulates in
#: float32 and rounds once, so folding an Add there would change the result).
_EXACT_BIAS_TYPES = frozenset({DataType.DT_FLOAT, DataType.DT_DOUBLE})
#: Attr the precision pass sets on an op it lowered: the dtype the op had before.
LOWERED_FROM_ATTR = "_precision_lowered_from"


def _main_free(graph: Graph, main: Node) -> str | None:
    if main.control_inputs or used_by_control(graph, main):
        return f"{main.name} takes part in control edges"
    if len(main.inputs) > 3 and main.inputs[3] is not None:
        return "quantized (offset_w) weights"
    return None


def _small_const(graph: Graph, port: Port | None, user: Node) -> str | None:
    """None when ``port`` is a constant that may be copied into a new bias: read only by
    ``user``, or a vector small enough that a second copy costs nothing."""
    reason = private_const(graph, port, user)
    value = const_value(port)
    if reason is None or (value is not None and value.size <= MAX_SHARED_BIAS):
        return None
    return reason


def _channel_axis(main: Node) -> int:
    rank = len(main.output_descs[0].shape)
    if main.op_type == "Conv2D":
        return 1 if main.attrs.get("data_format", "NHWC") == "NCHW" else 3
    return rank - 1


def _grow_chain(graph: Graph, main: Node) -> list[Node]:
    """The elementwise ops after ``main`` that could form its epilogue, in an order in which
    each reads only ``main``'s result, earlier ones or outside tensors: a plain chain
    (activation, residual Add …) or a small diamond such as SiLU, ``x·Sigmoid(x)``, whose
    ``x`` is read twice. :func:`_closed` then picks the prefix that may be fused."""
    out = main.output_descs[0]
    chain: list[Node] = []
    members = {main}
    while len(chain) < MAX_CHAIN:
        if chain and is_graph_output_node(graph, chain[-1]):
            break  # a graph output ends the epilogue
        candidates: list[Node] = []
        for member in (main, *chain):
            for user, _ in member.users(0):
                if user not in members and user not in candidates:
                    candidates.append(user)
        ready = [
            c
            for c in candidates
            if get_schema(c.op_type).kernel is not None
            and c.op_type not in MAIN_OPS
            and c.num_outputs == 1
            and c.output_descs[0] == out
            and all(p is None or p.node in members or p.node not in candidates for p in c.inputs)
        ]
        if not ready:
            break
        chain.append(ready[0])
        members.add(ready[0])
    return chain


def _closed(graph: Graph, main: Node, prefix: list[Node]) -> str | None:
    """None when ``prefix`` may become ``main``'s epilogue: every reader of the main result
    and of each value but the last is in it, no value but the last is a graph output, and it
    reads at most MAX_EXTRA tensors besides the main result."""
    inside = set(prefix)
    for node in (main, *prefix[:-1]):
        if any(user not in inside for user, _ in node.users(0)):
            return f"the result of {node.name} is read outside the epilogue"
        if node is not main and is_graph_output_node(graph, node):
            return f"{node.name} gives a graph output"
    if len(external_operands(prefix, [main.output(0)])) > 1 + MAX_EXTRA:
        return f"the epilogue needs more than {MAX_EXTRA} other operands"
    return None


class _BiasRule(Rule):
    """Add(main(x), c) → main(x, bias=c [+ old bias])."""

    name = "BiasIntoMain"
    anchors = frozenset({"Add", "AddV2", "BiasAdd"})

    def match(self, graph: Graph, node: Node) -> Match | None:
        if len(node.inputs) != 2:
            return None
        for i in (0, 1):
            main = producer(node, i)
            if main is not None and main.op_type in MAIN_OPS:
                if node.op_type == "BiasAdd" and i != 0:
                    return None
                return Match({"add": node, "main": main}, {"const_index": 1 - i})
        return None

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        add, main = m["add"], m["main"]
        reason = _main_free(graph, main)
        if reason is not None:
            return reason
        if add.control_inputs or used_by_control(graph, add):
            return f"{add.name} takes part in control edges"
        if not sole_user(graph, main.output(0), add):
            return f"the result of {main.name} is read elsewhere too"
        cport = add.inputs[m.data["const_index"]]
        reason = _small_const(graph, cport, add)
        if reason is not None:
            return "addend: " + reason
        out = main.output_descs[0]
        if add.output_descs[0] != out:
            return "the sum broadcasts beyond (or changes the type of) the main result"
        c = const_value(cport)
        assert c is not None
        if add.op_type == "BiasAdd":
            fmt = add.attrs.get("data_format", "NHWC")
            caxis = 1 if fmt == "NCHW" else len(out.shape) - 1
            if caxis != _channel_axis(main):
                return "BiasAdd's channel axis is not the output channels"
            shape = [1] * len(out.shape)
            shape[caxis] = c.size
            c = c.reshape(shape)
        axis = _channel_axis(main)
        rank = len(out.shape)
        if c.ndim > rank:
            return "addend has a higher rank than the result"
        full = (1,) * (rank - c.ndim) + tuple(c.shape)
        if any(d != 1 for i, d in enumerate(full) if i != axis):
            return f"addend shape {list(c.shape)} is not per output channel (axis {axis})"
        if c.dtype != out.dtype.np_dtype:
            return "addend dtype differs"
        # A cube op the precision pass lowered from float32 adds its bias in float32, as GE
        # fuses MatMul/Conv + bias on the float32 graph before it lowers it.
        lowered = main.attrs.get(LOWERED_FROM_ATTR) in _EXACT_BIAS_TYPES
        if out.dtype not in _EXACT_BIAS_TYPES and not lowered:
            return (
                f"{out.dtype.short_name}: the kernel adds its bias before rounding to the "
                "result type, which would change the result"
            )
        channels = out.shape[axis]
        vec = np.broadcast_to(c.reshape(-1), (channels,)) if c.size == 1 else c.reshape(-1)
        if len(main.inputs) > 2 and main.inputs[2] is not None:
            # (b + c) rounds differently from (y + b) + c: the Add stays, for the epilogue
            return f"{main.name} has a bias already"
        m.data["bias"] = np.ascontiguousarray(vec, dtype=c.dtype)
        return None

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        add, main = m["add"], m["main"]
        bias = add_const(graph, m.data["bias"], main.name + "_bias")
        inputs = [main.inputs[0], main.inputs[1], bias]
        new = add_inferred(graph, main.op_type, inputs, dict(main.attrs), add.name + "_b")
        replace_node(graph, add, new)


class _EpilogueRule(Rule):
    """main(x) → e1 → e2 … (elementwise, shape-keeping) → FusedConv2D / FusedMatMul."""

    name = "EpilogueIntoMain"
    anchors = MAIN_OPS

    def match(self, graph: Graph, node: Node) -> Match | None:
        chain = _grow_chain(graph, node)
        if not chain:
            return None
        return Match({"main": node}, {"chain": chain})

    def check(self, graph: Graph, m: Match, ctx: PassContext) -> str | None:
        main = m["main"]
        reason = _main_free(graph, main)
        if reason is not None:
            return reason
        if is_graph_output_node(graph, main):
            return "the main result is a graph output"
        out = main.output_descs[0]
        chain: list[Node] = m.data["chain"]
        why = None
        for k, node in enumerate(chain):
            why = fusable(graph, node)
            if why is None and node.output_descs[0] != out:
                why = f"{node.name} changes the shape or type"
            if why is not None:
                chain = chain[:k]
                break
        # the longest prefix that is closed: the main result and every value but the last
        # are read only inside it, and it reads at most MAX_EXTRA other tensors
        accepted: list[Node] = []
        for k in range(len(chain), 0, -1):
            prefix = chain[:k]
            reason = _closed(graph, main, prefix)
            if reason is None:
                accepted = prefix
                break
            why = why or reason
        if not accepted:
            return why or "no elementwise op follows"
        operands = external_operands(accepted, [main.output(0)])
        try:
            program = build_program(accepted, operands)
        except TypeError as err:
            return f"an epilogue attr of type {err} cannot be stored"
        m.data.update(chain=accepted, operands=operands[1:], program=program)
        return None

    def rewrite(self, graph: Graph, m: Match, ctx: PassContext) -> None:
        main = m["main"]
        chain = m.data["chain"]
        attrs = normalize_attrs(get_schema(main.op_type), main.attrs, node_where(main))
        if main.op_type == "Conv2D":
            op_type = "FusedConv2D"
            fused_attrs = {
                k: attrs[k]
                for k in ("strides", "pads", "dilations", "groups", "data_format", "offset_x")
            }
        else:
            op_type = "FusedMatMul"
            if main.op_type == "MatMulV2":
                t1, t2 = attrs["transpose_x1"], attrs["transpose_x2"]
            else:
                t1, t2 = attrs["adj_x1"], attrs["adj_x2"]
            fused_attrs = {"transpose_x1": t1, "transpose_x2": t2, "offset_x": attrs["offset_x"]}
        fused_attrs["epilogue"] = m.data["program"]
        if main.attrs.get(EXACT_ACCUMULATION_ATTR):  # the precision mode's cube accumulation
            fused_attrs[EXACT_ACCUMULATION_ATTR] = True
        main_inputs = list(main.inputs[:3]) + [None] * (3 - len(main.inputs[:3]))
        extra = list(m.data["operands"])
        inputs = main_inputs + extra
        fused = add_inferred(graph, op_type, inputs, fused_attrs, chain[-1].name + "_fused")
        replace_node(graph, chain[-1], fused)


class FuseBiasActivationPass(RuleBasedPass):
    """Fold constant bias adds into Conv2D/MatMul, then fuse the elementwise epilogue."""

    name = "FuseBiasActivationPass"
    fusion = True
    rules = (_BiasRule(), _EpilogueRule())

    def run(self, graph: Graph, ctx: PassContext) -> bool:
        # One sweep per rule: every bias is folded before an epilogue starts at its Add.
        changed = False
        for rule in self.rules:
            changed |= apply_rules(self.name, (rule,), graph, ctx)
        return changed


__all__ = ["MAX_EXTRA", "FuseBiasActivationPass"]
