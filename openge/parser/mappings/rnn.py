"""ONNX RNN, GRU and LSTM → the recurrence unrolled over the static sequence (catalog MatMulV2,
elementwise ops and activations), forward, reverse or bidirectional.

The input projections of every step are one matmul; each step adds the recurrent projection and
applies the gates exactly as the ONNX operator definitions write them. ``sequence_lens`` must be
absent or equal to the sequence length for every batch entry (shorter sequences are refused).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from openge.errors import SHAPE_INVALID
from openge.graph import Port
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext

_COMMON = (
    "activation_alpha",
    "activation_beta",
    "activations",
    "clip",
    "direction",
    "hidden_size",
    "layout",
)


def _activation(ctx: ParseContext, name: str, alpha: float | None, beta: float | None):
    """A function Port → Port for an ONNX RNN activation name."""
    key = name.lower()
    if key == "sigmoid":
        return lambda x: ctx.emit1("Sigmoid", [x])
    if key == "tanh":
        return lambda x: ctx.emit1("Tanh", [x])
    if key == "relu":
        return lambda x: ctx.emit1("Relu", [x])
    if key == "hardsigmoid":
        a = 0.2 if alpha is None else alpha
        b = 0.5 if beta is None else beta

        def hard(x: Port) -> Port:
            y = ctx.emit1("Add", [ctx.emit1("Mul", [x, ctx.scalar(a, x)]), ctx.scalar(b, x)])
            y = ctx.emit1("Maximum", [y, ctx.scalar(0, x)])
            return ctx.emit1("Minimum", [y, ctx.scalar(1, x)])

        return hard
    if key == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: ctx.emit1("LeakyRelu", [x], {"negative_slope": a})
    if key == "affine":
        a = 1.0 if alpha is None else alpha
        b = 0.0 if beta is None else beta
        return lambda x: ctx.emit1(
            "Add", [ctx.emit1("Mul", [x, ctx.scalar(a, x)]), ctx.scalar(b, x)]
        )
    if key == "scaledtanh":
        a = 1.0 if alpha is None else alpha
        b = 1.0 if beta is None else beta
        return lambda x: ctx.emit1(
            "Mul", [ctx.emit1("Tanh", [ctx.emit1("Mul", [x, ctx.scalar(b, x)])]), ctx.scalar(a, x)]
        )
    if key == "softsign":
        return lambda x: ctx.emit1("Softsign", [x])
    if key == "softplus":
        return lambda x: ctx.emit1("Softplus", [x])
    raise ctx.unsupported(f"RNN activation {name!r}")


def _activations(
    node: OnnxNode, ctx: ParseContext, defaults: list[str], dirs: int
) -> list[list[Callable[[Port], Port]]]:
    names = node.attr("activations") or defaults * dirs
    if len(names) == len(defaults):
        names = list(names) * dirs
    if len(names) != len(defaults) * dirs:
        raise ctx.error(f"activations must list {len(defaults)} per direction")
    alphas = list(node.attr("activation_alpha") or [])
    betas = list(node.attr("activation_beta") or [])
    fns = []
    for i, name in enumerate(names):
        a = alphas[i] if i < len(alphas) else None
        b = betas[i] if i < len(betas) else None
        fns.append(_activation(ctx, name, a, b))
    k = len(defaults)
    return [fns[d * k : (d + 1) * k] for d in range(dirs)]


class _Setup:
    """Shapes and per-direction weights of an RNN-family node."""

    def __init__(self, node: OnnxNode, ctx: ParseContext, gates: int, bias_gates: int) -> None:
        self.ctx = ctx
        x = node.input(0)
        self.layout = node.attr("layout", 0)
        if self.layout == 1:
            x = ctx.transpose(x, (1, 0, 2))
        self.x = x
        self.seq, self.batch, self.input_size = ctx.shape(x)
        direction = node.attr("direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            raise ctx.error(f"direction {direction!r} is not valid")
        self.directions = ["forward", "reverse"] if direction == "bidirectional" else [direction]
        dirs = len(self.directions)
        ctx.reserve_nodes(self.seq * dirs)  # unrolled step by step
        w, r = node.input(1), node.input(2)
        hidden = node.attr("hidden_size") or ctx.shape(r)[-1]
        self.hidden = hidden
        if ctx.shape(w) != (dirs, gates * hidden, self.input_size):
            raise ctx.error(f"W must be {[dirs, gates * hidden, self.input_size]}", SHAPE_INVALID)
        if ctx.shape(r) != (dirs, gates * hidden, hidden):
            raise ctx.error(f"R must be {[dirs, gates * hidden, hidden]}", SHAPE_INVALID)
        self.w, self.r = w, r
        self.b = node.opt(3)
        if self.b is not None and ctx.shape(self.b) != (dirs, bias_gates * hidden):
            raise ctx.error(f"B must be {[dirs, bias_gates * hidden]}", SHAPE_INVALID)
        lens = node.opt(4)
        if lens is not None:
            value = ctx.require_value(lens, "sequence_lens")
            if (value.reshape(-1) != self.seq).any():
                raise ctx.unsupported(
                    "sequence_lens other than the full sequence length for every batch entry"
                )
        self.clip = node.attr("clip")
        dt = ctx.dtype(x)
        self.dt = dt

    def initial(self, port: Port | None, d: int) -> Port:
        """Initial state of direction d, (batch, hidden)."""
        ctx = self.ctx
        if port is None:
            return ctx.const(np.zeros((self.batch, self.hidden), self.dt.np_dtype))
        if self.layout == 1:
            port = ctx.transpose(port, (1, 0, 2))
        return self.take(port, 0, d, (self.batch, self.hidden))

    def take(self, port: Port, axis: int, index: int, shape: tuple[int, ...]) -> Port:
        """``port[index]`` along ``axis`` reshaped to ``shape``."""
        ctx = self.ctx
        dims = list(ctx.shape(port))
        begin = [0] * len(dims)
        end = list(dims)
        begin[axis], end[axis] = index, index + 1
        piece = ctx.emit1(
            "StridedSlice",
            [
                port,
                ctx.const(np.array(begin, np.int64)),
                ctx.const(np.array(end, np.int64)),
                ctx.const(np.ones(len(dims), np.int64)),
            ],
        )
        return ctx.reshape(piece, shape)

    def cols(self, port: Port, k: int, width: int) -> Port:
        """Columns [k·width, (k+1)·width) of a 2-D (batch, n) tensor."""
        ctx = self.ctx
        rows = ctx.shape(port)[0]
        return ctx.emit1(
            "StridedSlice",
            [
                port,
                ctx.const(np.array([0, k * width], np.int64)),
                ctx.const(np.array([rows, (k + 1) * width], np.int64)),
                ctx.const(np.ones(2, np.int64)),
            ],
        )

    def input_projection(self, d: int, gates: int) -> Port:
        """X·Wᵀ (+ Wb + Rb for the gates that add both) for every step: (seq, batch, G·H)."""
        ctx = self.ctx
        wd = self.take(self.w, 0, d, (gates * self.hidden, self.input_size))
        flat = ctx.reshape(self.x, (self.seq * self.batch, self.input_size))
        proj = ctx.emit1("MatMulV2", [flat, wd], {"transpose_x2": True})
        return ctx.reshape(proj, (self.seq, self.batch, gates * self.hidden))

    def maybe_clip(self, x: Port) -> Port:
        """Clip a gate pre-activation to [-clip, clip] when the clip attribute is set."""
        if self.clip is None:
            return x
        ctx = self.ctx
        c = float(self.clip)
        return ctx.emit1(
            "Minimum", [ctx.emit1("Maximum", [x, ctx.scalar(-c, x)]), ctx.scalar(c, x)]
        )

    def outputs(self, node: OnnxNode, ys: list[list[Port]], finals: list[list[Port]]) -> list:
        """(Y, Y_h[, Y_c]) in the requested layout from per-direction step outputs."""
        ctx = self.ctx
        dirs = len(self.directions)
        hb = (1, self.batch, self.hidden)
        results: list[Port | None] = []
        if node.wants_output(0):
            per_dir = []
            for d in range(dirs):
                steps = [ctx.reshape(h, (1, 1, self.batch, self.hidden)) for h in ys[d]]
                per_dir.append(
                    steps[0]
                    if len(steps) == 1
                    else ctx.emit1(
                        "ConcatV2", [*steps, ctx.const(np.array(0, np.int32))], {"N": len(steps)}
                    )
                )
            y = (
                per_dir[0]
                if dirs == 1
                else ctx.emit1(
                    "ConcatV2", [*per_dir, ctx.const(np.array(1, np.int32))], {"N": dirs}
                )
            )
            if self.layout == 1:
                y = ctx.transpose(y, (2, 0, 1, 3))
            results.append(ctx.emit1("Identity", [y]))
        else:
            results.append(None)
        for k in range(len(finals[0])):
            parts = [ctx.reshape(finals[d][k], hb) for d in range(dirs)]
            s = (
                parts[0]
                if dirs == 1
                else ctx.emit1("ConcatV2", [*parts, ctx.const(np.array(0, np.int32))], {"N": dirs})
            )
            if self.layout == 1:
                s = ctx.transpose(s, (1, 0, 2))
            results.append(ctx.emit1("Identity", [s]))
        return results


def _steps(setup: _Setup, d: int) -> list[int]:
    order = list(range(setup.seq))
    return order[::-1] if setup.directions[d] == "reverse" else order


@onnx_op(
    "RNN",
    since=7,
    shape_inputs=(4,),
    needs=("MatMulV2", "Add", "Tanh", "StridedSlice"),
    attrs=_COMMON,
    inputs=6,
)
def rnn(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """RNN → H_t = f(X_t·Wᵀ + H_{t-1}·Rᵀ + Wb + Rb), unrolled."""
    st = _Setup(node, ctx, 1, 2)
    h = st.hidden
    acts = _activations(node, ctx, ["Tanh"], len(st.directions))
    ys, finals = [], []
    for d in range(len(st.directions)):
        xw = st.input_projection(d, 1)
        rd = st.take(st.r, 0, d, (h, h))
        bias = None
        if st.b is not None:
            bd = st.take(st.b, 0, d, (2 * h,))
            bias = ctx.emit1(
                "Add",
                [
                    st.cols(ctx.reshape(bd, (1, 2 * h)), 0, h),
                    st.cols(ctx.reshape(bd, (1, 2 * h)), 1, h),
                ],
            )
        state = st.initial(node.opt(5), d)
        outs = []
        for t in _steps(st, d):
            pre = ctx.emit1(
                "Add",
                [
                    st.take(xw, 0, t, (st.batch, h)),
                    ctx.emit1("MatMulV2", [state, rd], {"transpose_x2": True}),
                ],
            )
            if bias is not None:
                pre = ctx.emit1("Add", [pre, bias])
            state = acts[d][0](st.maybe_clip(pre))
            outs.append(state)
        if st.directions[d] == "reverse":
            outs = outs[::-1]
        ys.append(outs)
        finals.append([state])
    return st.outputs(node, ys, finals)


@onnx_op(
    "GRU",
    since=7,
    shape_inputs=(4,),
    needs=("MatMulV2", "Add", "Mul", "Sub", "Sigmoid", "Tanh"),
    attrs=(*_COMMON, "linear_before_reset"),
    inputs=6,
)
def gru(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """GRU (gates z, r, h) → the ONNX GRU equations, unrolled."""
    st = _Setup(node, ctx, 3, 6)
    h = st.hidden
    acts = _activations(node, ctx, ["Sigmoid", "Tanh"], len(st.directions))
    lbr = bool(node.attr("linear_before_reset", 0))
    ys, finals = [], []
    one = ctx.scalar(1, st.dt)
    for d in range(len(st.directions)):
        f, g = acts[d]
        xw = st.input_projection(d, 3)
        rd = st.take(st.r, 0, d, (3 * h, h))
        r_zr = ctx.emit1(
            "StridedSlice",
            [
                rd,
                ctx.const(np.array([0, 0], np.int64)),
                ctx.const(np.array([2 * h, h], np.int64)),
                ctx.const(np.ones(2, np.int64)),
            ],
        )
        r_h = ctx.emit1(
            "StridedSlice",
            [
                rd,
                ctx.const(np.array([2 * h, 0], np.int64)),
                ctx.const(np.array([3 * h, h], np.int64)),
                ctx.const(np.ones(2, np.int64)),
            ],
        )
        wb = rb = None
        if st.b is not None:
            bd = ctx.reshape(st.take(st.b, 0, d, (6 * h,)), (1, 6 * h))
            wb = [st.cols(bd, k, h) for k in range(3)]
            rb = [st.cols(bd, 3 + k, h) for k in range(3)]
        state = st.initial(node.opt(5), d)
        outs = []
        for t in _steps(st, d):
            xt = st.take(xw, 0, t, (st.batch, 3 * h))
            hr = ctx.emit1("MatMulV2", [state, r_zr], {"transpose_x2": True})  # (B, 2H)
            gate = []
            for k in range(2):  # z, r
                pre = ctx.emit1("Add", [st.cols(xt, k, h), st.cols(hr, k, h)])
                if wb is not None and rb is not None:
                    pre = ctx.emit1("Add", [pre, ctx.emit1("Add", [wb[k], rb[k]])])
                gate.append(f(st.maybe_clip(pre)))
            z, r = gate
            xh = st.cols(xt, 2, h)
            if wb is not None:
                xh = ctx.emit1("Add", [xh, wb[2]])
            if lbr:
                hh = ctx.emit1("MatMulV2", [state, r_h], {"transpose_x2": True})
                if rb is not None:
                    hh = ctx.emit1("Add", [hh, rb[2]])
                pre_h = ctx.emit1("Add", [xh, ctx.emit1("Mul", [r, hh])])
            else:
                rs = ctx.emit1("Mul", [r, state])
                hh = ctx.emit1("MatMulV2", [rs, r_h], {"transpose_x2": True})
                if rb is not None:
                    hh = ctx.emit1("Add", [hh, rb[2]])
                pre_h = ctx.emit1("Add", [xh, hh])
            cand = g(st.maybe_clip(pre_h))
            keep = ctx.emit1("Mul", [z, state])
            state = ctx.emit1("Add", [ctx.emit1("Mul", [ctx.emit1("Sub", [one, z]), cand]), keep])
            outs.append(state)
        if st.directions[d] == "reverse":
            outs = outs[::-1]
        ys.append(outs)
        finals.append([state])
    return st.outputs(node, ys, finals)


@onnx_op(
    "LSTM",
    since=7,
    shape_inputs=(4,),
    needs=("MatMulV2", "Add", "Mul", "Sigmoid", "Tanh"),
    attrs=(*_COMMON, "input_forget"),
    inputs=8,
)
def lstm(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LSTM (gates i, o, f, c; optional peepholes) → the ONNX LSTM equations, unrolled."""
    st = _Setup(node, ctx, 4, 8)
    h = st.hidden
    acts = _activations(node, ctx, ["Sigmoid", "Tanh", "Tanh"], len(st.directions))
    coupled = bool(node.attr("input_forget", 0))
    peep = node.opt(7)
    ys, finals = [], []
    one = ctx.scalar(1, st.dt)
    for d in range(len(st.directions)):
        f, g, hact = acts[d]
        xw = st.input_projection(d, 4)
        rd = st.take(st.r, 0, d, (4 * h, h))
        bias = None
        if st.b is not None:
            bd = ctx.reshape(st.take(st.b, 0, d, (8 * h,)), (1, 8 * h))
            bias = ctx.emit1("Add", [st.cols(bd, 0, 4 * h), st.cols(bd, 1, 4 * h)])
        pi = po = pf = None
        if peep is not None:
            pd = ctx.reshape(st.take(peep, 0, d, (3 * h,)), (1, 3 * h))
            pi, po, pf = (st.cols(pd, k, h) for k in range(3))
        state = st.initial(node.opt(5), d)
        cell = st.initial(node.opt(6), d)
        outs = []
        for t in _steps(st, d):
            pre = ctx.emit1(
                "Add",
                [
                    st.take(xw, 0, t, (st.batch, 4 * h)),
                    ctx.emit1("MatMulV2", [state, rd], {"transpose_x2": True}),
                ],
            )
            if bias is not None:
                pre = ctx.emit1("Add", [pre, bias])
            pre_i, pre_o, pre_f, pre_c = (st.cols(pre, k, h) for k in range(4))
            if pi is not None:
                pre_i = ctx.emit1("Add", [pre_i, ctx.emit1("Mul", [pi, cell])])
                pre_f = ctx.emit1("Add", [pre_f, ctx.emit1("Mul", [pf, cell])])
            i_g = f(st.maybe_clip(pre_i))
            f_g = ctx.emit1("Sub", [one, i_g]) if coupled else f(st.maybe_clip(pre_f))
            c_g = g(st.maybe_clip(pre_c))
            cell = ctx.emit1("Add", [ctx.emit1("Mul", [f_g, cell]), ctx.emit1("Mul", [i_g, c_g])])
            if po is not None:
                pre_o = ctx.emit1("Add", [pre_o, ctx.emit1("Mul", [po, cell])])
            o_g = f(st.maybe_clip(pre_o))
            state = ctx.emit1("Mul", [o_g, hact(cell)])
            outs.append(state)
        if st.directions[d] == "reverse":
            outs = outs[::-1]
        ys.append(outs)
        finals.append([state, cell])
    results = st.outputs(node, ys, finals)
    return results
