"""ONNX control flow → inlined subgraphs: If with a compile-time condition, Loop with a
compile-time trip count / condition, Scan over a static sequence (unrolled)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import Port
from openge.parser.mappings import onnx_op
from openge.parser.mappings.shape import norm_axis
from openge.parser.onnx_parser import OnnxNode, ParseContext, run_subgraph

#: Most iterations a Loop or Scan is unrolled to.
MAX_UNROLL = 4096


def _body(node: OnnxNode, ctx: ParseContext, key: str):
    sub = node.attr(key)
    if sub is None or getattr(sub, "proto", None) is None:
        raise ctx.error(f"attribute {key} (a graph) is required")
    return sub.proto


def _stack(ctx: ParseContext, parts: list[Port], axis: int) -> Port:
    """Stack same-shape tensors along a new ``axis``."""
    shape = list(ctx.shape(parts[0]))
    axis = norm_axis(ctx, axis, len(shape) + 1)
    new = [*shape[:axis], 1, *shape[axis:]]
    pieces = [ctx.reshape(p, new) for p in parts]
    if len(pieces) == 1:
        return ctx.emit1("Identity", pieces)
    return ctx.emit1("ConcatV2", [*pieces, ctx.const(np.array(axis, np.int32))], {"N": len(pieces)})


@onnx_op(
    "If", needs=("Identity",), shape_inputs=(0,), attrs=("then_branch", "else_branch"), inputs=1
)
def if_(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """If with a condition known at compile time → the chosen branch, inlined."""
    cond = ctx.require_value(node.input(0), "cond")
    if cond.size != 1:
        raise ctx.error("cond must hold one value", SHAPE_INVALID)
    key = "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch"
    outs = run_subgraph(ctx, _body(node, ctx, key), [], f"{node.name}/{key}/")
    # Each output gets its own node (a branch may return an outer value directly).
    return [ctx.emit1("Identity", [p]) for p in outs]


@onnx_op("Loop", needs=("Identity", "ConcatV2"), shape_inputs=(0, 1), attrs=("body",), inputs=None)
def loop(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Loop with a compile-time trip count and conditions → the body unrolled."""
    body = _body(node, ctx, "body")
    m_port, c_port = node.opt(0), node.opt(1)
    trip = None if m_port is None else int(ctx.require_value(m_port, "M").reshape(-1)[0])
    cond = True if c_port is None else bool(ctx.require_value(c_port, "cond").reshape(-1)[0])
    carried: list[Port | None] = list(node.inputs[2:])
    n_carried = len(carried)
    n_scan = len(body.output) - 1 - n_carried
    if n_scan < 0:
        raise ctx.error("the body returns fewer values than the loop carries")
    scans: list[list[Port]] = [[] for _ in range(n_scan)]
    i = 0
    while cond and (trip is None or i < trip):
        if i >= MAX_UNROLL:
            raise ctx.unsupported(f"a Loop of more than {MAX_UNROLL} iterations")
        it = ctx.const(np.array(i, np.int64))
        cv = ctx.const(np.array(cond))
        outs = run_subgraph(ctx, body, [it, cv, *carried], f"{node.name}/{i}/")
        cond = bool(ctx.require_value(outs[0], "the body's condition output").reshape(-1)[0])
        carried = list(outs[1 : 1 + n_carried])
        for k in range(n_scan):
            scans[k].append(outs[1 + n_carried + k])
        i += 1
    if n_scan and i == 0:
        raise ctx.unsupported("a Loop with no iteration and scan outputs (unknown shapes)")
    results: list[Port | None] = [ctx.emit1("Identity", [p]) for p in carried]
    results += [_stack(ctx, parts, 0) for parts in scans]
    return results


@onnx_op(
    "Scan",
    since=9,
    needs=("Identity", "ConcatV2", "StridedSlice"),
    attrs=(
        "body",
        "num_scan_inputs",
        "scan_input_axes",
        "scan_input_directions",
        "scan_output_axes",
        "scan_output_directions",
    ),
    inputs=None,
)
def scan(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Scan (opset ≥ 9) → the body unrolled over the static sequence length."""
    body = _body(node, ctx, "body")
    m = node.attr("num_scan_inputs")
    ins = [node.input(i) for i in range(len(node.inputs))]
    if m is None or m < 1 or m > len(ins):
        raise ctx.error("num_scan_inputs is missing or out of range")
    n_state = len(ins) - m
    states: list[Port] = ins[:n_state]
    xs = ins[n_state:]
    in_axes = list(node.attr("scan_input_axes") or [0] * m)
    in_dirs = list(node.attr("scan_input_directions") or [0] * m)
    n_out = len(body.output) - n_state
    out_axes = list(node.attr("scan_output_axes") or [0] * n_out)
    out_dirs = list(node.attr("scan_output_directions") or [0] * n_out)
    if len(in_axes) != m or len(in_dirs) != m or len(out_axes) != n_out or len(out_dirs) != n_out:
        raise ctx.error("scan axes/directions do not match the inputs and outputs")
    axes = [norm_axis(ctx, a, ctx.rank(x)) for a, x in zip(in_axes, xs)]
    lengths = {ctx.shape(x)[a] for a, x in zip(axes, xs)}
    if len(lengths) != 1:
        raise ctx.error(
            f"scan inputs have different sequence lengths {sorted(lengths)}", SHAPE_INVALID
        )
    steps = lengths.pop()
    ctx.reserve_nodes(steps * max(len(body.node), 1))
    if steps > MAX_UNROLL:
        raise ctx.unsupported(f"a Scan of more than {MAX_UNROLL} steps")
    if steps == 0 and n_out:
        raise ctx.unsupported("a Scan over an empty sequence")

    def slice_at(x: Port, axis: int, t: int) -> Port:
        dims = list(ctx.shape(x))
        begin = [0] * len(dims)
        end = list(dims)
        begin[axis], end[axis] = t, t + 1
        piece = ctx.emit1(
            "StridedSlice",
            [
                x,
                ctx.const(np.array(begin, np.int64)),
                ctx.const(np.array(end, np.int64)),
                ctx.const(np.ones(len(dims), np.int64)),
            ],
        )
        return ctx.reshape(piece, dims[:axis] + dims[axis + 1 :])

    outs_per_step: list[list[Port]] = [[] for _ in range(n_out)]
    for t in range(steps):
        slices = [slice_at(x, a, steps - 1 - t if d else t) for x, a, d in zip(xs, axes, in_dirs)]
        outs = run_subgraph(ctx, body, [*states, *slices], f"{node.name}/{t}/")
        states = outs[:n_state]
        for k in range(n_out):
            outs_per_step[k].append(outs[n_state + k])
    results: list[Port | None] = [ctx.emit1("Identity", [p]) for p in states]
    for k in range(n_out):
        parts = outs_per_step[k][::-1] if out_dirs[k] else outs_per_step[k]
        axis = norm_axis(ctx, out_axes[k], ctx.rank(parts[0]) + 1)
        results.append(_stack(ctx, parts, axis))
    return results
