"""ONNX composite ops → compositions of catalog ops: losses, Attention, RotaryEmbedding, Einsum,
quantization, window functions.

Each composition follows the ONNX definition step by step (the order of floating-point
operations of the ONNX reference where it matters), with everything that depends only on
static shapes (masks, index tables, base grids) built at parse time as constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID
from openge.graph import DataType, Port
from openge.parser.mappings import onnx_op
from openge.parser.mappings.nn import matmul
from openge.parser.mappings.shape import norm_axis
from openge.parser.onnx_parser import OnnxNode, ParseContext, onnx_dtype

I64 = DataType.DT_INT64
I32 = DataType.DT_INT32
F32 = DataType.DT_FLOAT
F64 = DataType.DT_DOUBLE
BOOL = DataType.DT_BOOL
FLOATS = (DataType.DT_FLOAT, DataType.DT_FLOAT16, DataType.DT_DOUBLE)
_KW = {"keep_dims": False, "noop_with_empty_axes": False}


def _all_axes(ctx: ParseContext, x: Port) -> Port:
    return ctx.const(np.arange(ctx.rank(x), dtype=np.int64))


def _reduce_all(ctx: ParseContext, op: str, x: Port) -> Port:
    if ctx.rank(x) == 0:
        return x
    return ctx.emit1(op, [x, _all_axes(ctx, x)], _KW)


# ----- losses ---------------------------------------------------------------------------------


def _nll(
    ctx: ParseContext,
    node: OnnxNode,
    logp: Port,
    target: Port,
    weight: Port | None,
    mean_needs_weights: bool,
) -> Port:
    """ONNX NegativeLogLikelihoodLoss of log-probabilities ``logp`` (N, C, d…)."""
    dims = ctx.shape(logp)
    if len(dims) < 2:
        raise ctx.error("input must be at least 2-D (N, C, ...)", SHAPE_INVALID)
    tdims = ctx.shape(target)
    if tdims != (dims[0], *dims[2:]):
        raise ctx.error(f"target shape {list(tdims)} must be {[dims[0], *dims[2:]]}", SHAPE_INVALID)
    reduction = node.attr("reduction", "mean")
    if reduction not in ("none", "sum", "mean"):
        raise ctx.error(f"reduction {reduction!r} must be none, sum or mean")
    ignore = node.attr("ignore_index")
    dt = ctx.dtype(logp)
    t = ctx.cast(target, I64)
    c = dims[1]
    if ignore is not None:
        valid = ctx.emit1("NotEqual", [t, ctx.scalar(ignore, I64)])
        t_safe = ctx.emit1("SelectV2", [valid, t, ctx.scalar(0, I64)])
    else:
        valid = None
        t_safe = t
    tv = ctx.value(t_safe)
    if tv is not None and tv.size and (tv.min() < 0 or tv.max() >= c):
        raise ctx.error(f"target values must lie in [0, {c})", SHAPE_INVALID)
    idx = ctx.reshape(t_safe, (dims[0], 1, *dims[2:]))
    picked = ctx.emit1("GatherElements", [logp, idx], {"dim": 1})
    picked = ctx.reshape(picked, tdims)
    loss = ctx.emit1("Neg", [picked])
    w: Port | None = None
    if weight is not None:
        w = ctx.emit1("GatherV2", [weight, t_safe, ctx.const(np.array(0, np.int32))])
        if valid is not None:
            w = ctx.emit1("SelectV2", [valid, w, ctx.scalar(0, dt)])
    elif valid is not None:
        w = ctx.emit1("SelectV2", [valid, ctx.scalar(1, dt), ctx.scalar(0, dt)])
    if w is not None:
        loss = (
            ctx.emit1("Mul", [w, loss])
            if weight is not None
            else ctx.emit1("SelectV2", [valid, loss, ctx.scalar(0, dt)])
        )
    if reduction == "none":
        return loss
    total = _reduce_all(ctx, "ReduceSum", loss)
    if reduction == "sum":
        return total
    if w is not None and (weight is not None or mean_needs_weights):
        return ctx.emit1("RealDiv", [total, _reduce_all(ctx, "ReduceSum", w)])
    return _reduce_all(ctx, "ReduceMean", loss)


@onnx_op(
    "NegativeLogLikelihoodLoss",
    since=12,
    needs=("GatherElements", "Neg", "ReduceSum", "ReduceMean", "RealDiv"),
    attrs=("ignore_index", "reduction"),
    inputs=3,
)
def nll_loss(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """NegativeLogLikelihoodLoss → GatherElements + weights + reduction."""
    x = node.input(0)
    if ctx.dtype(x) not in FLOATS:
        raise ctx.error(
            f"input must be a float tensor, got {ctx.dtype(x).short_name}", DATATYPE_INVALID
        )
    return [_nll(ctx, node, x, node.input(1), node.opt(2), True)]


@onnx_op(
    "SoftmaxCrossEntropyLoss",
    since=12,
    needs=("SoftmaxV2", "Log", "GatherElements", "Neg", "ReduceSum", "ReduceMean"),
    attrs=("ignore_index", "reduction"),
    inputs=3,
)
def softmax_cross_entropy(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """SoftmaxCrossEntropyLoss → log(SoftmaxV2(x, axis 1)) then the NLL loss."""
    x = node.input(0)
    if ctx.dtype(x) not in FLOATS:
        raise ctx.error(
            f"scores must be a float tensor, got {ctx.dtype(x).short_name}", DATATYPE_INVALID
        )
    logp = ctx.emit1("Log", [ctx.emit1("SoftmaxV2", [x], {"axes": [1]})])
    loss = _nll(ctx, node, logp, node.input(1), node.opt(2), True)
    outs: list[Port | None] = [loss]
    if node.wants_output(1):
        outs.append(logp)
    return outs


# ----- attention ------------------------------------------------------------------------------


def _neg_inf_where_false(ctx: ParseContext, allowed: Port, dt: DataType) -> Port:
    return ctx.emit1("SelectV2", [allowed, ctx.scalar(0, dt), ctx.scalar(-np.inf, dt)])


def _heads_4d(ctx: ParseContext, x: Port, heads: int | None, what: str) -> Port:
    d = ctx.shape(x)
    if len(d) == 4:
        return x
    if not heads or d[2] % heads:
        raise ctx.error(
            f"{what}: 3-D inputs need q_num_heads/kv_num_heads dividing {d[2]}", SHAPE_INVALID
        )
    t = ctx.reshape(x, (d[0], d[1], heads, d[2] // heads))
    return ctx.transpose(t, (0, 2, 1, 3))


@onnx_op(
    "Attention",
    since=23,
    needs=("BatchMatMulV2", "SoftmaxV2", "Mul", "Add", "SelectV2", "Transpose", "Reshape"),
    attrs=(
        "is_causal",
        "kv_num_heads",
        "q_num_heads",
        "qk_matmul_output_mode",
        "scale",
        "softcap",
        "softmax_precision",
        "left_window_size",
        "right_window_size",
    ),
    inputs=7,
)
def attention(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Attention → scaled Q·Kᵀ (+ softcap, + mask/causal/window bias) → softmax → ·V."""
    q, k, v = node.input(0), node.input(1), node.input(2)
    mask, past_k, past_v = node.opt(3), node.opt(4), node.opt(5)
    nonpad = node.opt(6)
    out_dt = ctx.dtype(q)
    if out_dt not in FLOATS and out_dt != DataType.DT_BF16:
        raise ctx.error(f"Q must be a float tensor, got {out_dt.short_name}", DATATYPE_INVALID)
    # float16 / bfloat16 attention is computed in float32 and rounded once at the end (ONNX
    # leaves the intermediate precision open; this is the accurate choice).
    dt = F32 if out_dt in (DataType.DT_FLOAT16, DataType.DT_BF16) else out_dt
    if dt != out_dt:
        q, k, v = ctx.cast(q, dt), ctx.cast(k, dt), ctx.cast(v, dt)
        past_k = None if past_k is None else ctx.cast(past_k, dt)
        past_v = None if past_v is None else ctx.cast(past_v, dt)
        if mask is not None and ctx.dtype(mask) == out_dt:
            mask = ctx.cast(mask, dt)
    if (past_k is None) != (past_v is None):
        raise ctx.error("past_key and past_value must be given together")
    if nonpad is not None and past_k is not None:
        raise ctx.error("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    rank = ctx.rank(q)
    if not rank == ctx.rank(k) == ctx.rank(v) or rank not in (3, 4):
        raise ctx.error("Q, K and V must all be 3-D or all 4-D", SHAPE_INVALID)
    qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if rank == 4 and node.opset >= 25 and (qh is not None or kvh is not None):
        raise ctx.error("q_num_heads and kv_num_heads must not be given for 4-D inputs")
    q4 = _heads_4d(ctx, q, qh, "Q")
    k4 = _heads_4d(ctx, k, kvh, "K")
    v4 = _heads_4d(ctx, v, kvh, "V")
    head = ctx.shape(q4)[3]
    scale = node.attr("scale")
    scale = 1 / math.sqrt(head) if scale is None else float(scale)
    s = ctx.scalar(dt.np_dtype.type(np.sqrt(np.float64(scale))), dt)
    if past_k is not None:
        axis2 = ctx.const(np.array(2, np.int32))
        k4 = ctx.emit1("ConcatV2", [past_k, k4, axis2], {"N": 2})
        v4 = ctx.emit1("ConcatV2", [past_v, v4, axis2], {"N": 2})
    present_k, present_v = k4, v4
    batch, n_q, q_len = ctx.shape(q4)[:3]
    n_kv, kv_len = ctx.shape(k4)[1], ctx.shape(k4)[2]

    # --- additive bias ---
    bias: Port | None = None
    runtime_bias = False
    if mask is not None:
        md = ctx.shape(mask)
        pad = kv_len - md[-1]
        if pad < 0:
            raise ctx.error("attn_mask is longer than the key sequence", SHAPE_INVALID)
        if ctx.dtype(mask) == BOOL:
            if pad:
                mask = ctx.emit1(
                    "PadV3",
                    [
                        mask,
                        ctx.const(np.array([0, 0] * (len(md) - 1) + [0, pad], np.int64)),
                        ctx.const(np.array(False)),
                    ],
                    {"mode": "constant", "paddings_contiguous": True},
                )
            mask = _neg_inf_where_false(ctx, mask, dt)
        else:
            if ctx.dtype(mask) != dt:
                raise ctx.error("a float attn_mask must have Q's type", DATATYPE_INVALID)
            if pad:
                mask = ctx.emit1(
                    "PadV3",
                    [
                        mask,
                        ctx.const(np.array([0, 0] * (len(md) - 1) + [0, pad], np.int64)),
                        ctx.scalar(-np.inf, dt),
                    ],
                    {"mode": "constant", "paddings_contiguous": True},
                )
        bias = mask
        runtime_bias = ctx.value(mask) is None
    causal = bool(node.attr("is_causal", 0))
    left = node.attr("left_window_size", -1)
    right = node.attr("right_window_size", -1)
    windowed = left >= 0 or right >= 0
    ctx.reserve(24 * q_len * kv_len, "attention masks")
    i_idx = np.arange(q_len).reshape(q_len, 1)
    j_idx = np.arange(kv_len).reshape(1, kv_len)
    offset_port: Port | None = None
    static_offset = 0
    if causal or windowed:
        if past_k is None and nonpad is not None:
            np_len = ctx.cast(nonpad, I64)
            offset_port = ctx.reshape(
                ctx.emit1("Sub", [np_len, ctx.scalar(q_len, I64)]), (batch, 1, 1, 1)
            )
        elif past_k is not None:
            static_offset = ctx.shape(past_k)[2]

    def frontier(limit_fn) -> Port:
        """0 where allowed, -inf elsewhere, for a constraint on diff = i + offset - j."""
        nonlocal runtime_bias
        if offset_port is None:
            allowed = limit_fn(i_idx + static_offset - j_idx)
            return ctx.const(np.where(allowed, 0, -np.inf).astype(dt.np_dtype))
        runtime_bias = True
        diff = ctx.emit1("Add", [offset_port, ctx.const((i_idx - j_idx).astype(np.int64))])
        return _neg_inf_where_false(ctx, limit_fn(diff), dt)

    def combine(a: Port | None, b: Port) -> Port:
        if a is None:
            return (
                ctx.emit1("Add", [ctx.const(np.zeros((q_len, kv_len), dt.np_dtype)), b])
                if ctx.shape(b)[-2:] != (q_len, kv_len)
                else b
            )
        return ctx.emit1("Add", [a, b])

    if causal:

        def causal_fn(d):
            if isinstance(d, Port):
                return ctx.emit1("GreaterEqual", [d, ctx.scalar(0, I64)])
            return d >= 0

        bias = combine(bias, frontier(causal_fn))
    if windowed:

        def window_fn(d):
            if isinstance(d, Port):
                ok = None
                if left >= 0:
                    ok = ctx.emit1("LessEqual", [d, ctx.scalar(left, I64)])
                if right >= 0:
                    r = ctx.emit1("GreaterEqual", [d, ctx.scalar(-right, I64)])
                    ok = r if ok is None else ctx.emit1("LogicalAnd", [ok, r])
                return ok
            ok = np.ones_like(d, dtype=bool)
            if left >= 0:
                ok &= d <= left
            if right >= 0:
                ok &= -d <= right
            return ok

        bias = combine(bias, frontier(window_fn))
    if nonpad is not None:
        runtime_bias = True
        lens = ctx.reshape(ctx.cast(nonpad, I64), (batch, 1, 1, 1))
        keep = ctx.emit1(
            "Less", [ctx.const(np.arange(kv_len, dtype=np.int64).reshape(1, 1, 1, kv_len)), lens]
        )
        pad_bias = _neg_inf_where_false(ctx, keep, dt)
        bias = pad_bias if bias is None else ctx.emit1("Add", [bias, pad_bias])

    # --- grouped-query heads ---
    if n_q != n_kv:
        if n_q % n_kv:
            raise ctx.error(
                f"{n_q} query heads are not a multiple of {n_kv} kv heads", SHAPE_INVALID
            )
        reps = ctx.const(np.repeat(np.arange(n_kv), n_q // n_kv).astype(np.int64))
        axis1 = ctx.const(np.array(1, np.int32))
        k4 = ctx.emit1("GatherV2", [k4, reps, axis1])
        v4 = ctx.emit1("GatherV2", [v4, reps, axis1])

    qs = ctx.emit1("Mul", [q4, s])
    ks = ctx.emit1("Mul", [k4, s])
    qk = ctx.emit1("BatchMatMulV2", [qs, ks], {"adj_x2": True})
    softcap = float(node.attr("softcap", 0.0))
    if softcap > 0:
        cap = ctx.scalar(softcap, dt)
        qk = ctx.emit1("Mul", [ctx.emit1("Tanh", [ctx.emit1("RealDiv", [qk, cap])]), cap])
    qk_out = qk
    with_bias = qk if bias is None else ctx.emit1("Add", [qk, bias])
    mode = node.attr("qk_matmul_output_mode", 0)
    if mode == 2:
        qk_out = with_bias
    elif mode not in (0, 1, 3):
        raise ctx.error(f"qk_matmul_output_mode {mode} must be 0 to 3")
    sm_in = with_bias
    prec = node.attr("softmax_precision")
    if prec is not None:
        sm_in = ctx.cast(sm_in, onnx_dtype(prec, node.where))
    probs = ctx.emit1("SoftmaxV2", [sm_in], {"axes": [-1]})
    # Rows whose bias masks every key get all-zero probabilities (ONNX's fully-masked rule).
    if bias is not None:
        bias_v = ctx.value(bias)
        if runtime_bias or bias_v is None:
            row_max = ctx.emit1(
                "ReduceMax",
                [bias, ctx.const(np.array([-1], np.int64))],
                {"keep_dims": True, "noop_with_empty_axes": False},
            )
            dead = ctx.emit1("Equal", [row_max, ctx.scalar(-np.inf, dt)])
            probs = ctx.emit1("SelectV2", [dead, ctx.scalar(0, ctx.dtype(probs)), probs])
        elif np.isneginf(bias_v.max(axis=-1, keepdims=True)).any():
            dead = ctx.const(np.isneginf(bias_v.max(axis=-1, keepdims=True)))
            probs = ctx.emit1("SelectV2", [dead, ctx.scalar(0, ctx.dtype(probs)), probs])
    if mode == 3:
        qk_out = probs
    probs = ctx.cast(probs, dt)
    y = ctx.emit1("BatchMatMulV2", [probs, v4])
    if rank == 3:
        yd = ctx.shape(y)
        y = ctx.transpose(y, (0, 2, 1, 3))
        y = ctx.reshape(y, (yd[0], yd[2], yd[1] * yd[3]))
    outs: list[Port | None] = [ctx.cast(y, out_dt)]
    outs.append(ctx.cast(present_k, out_dt) if node.wants_output(1) else None)
    outs.append(ctx.cast(present_v, out_dt) if node.wants_output(2) else None)
    outs.append(ctx.cast(qk_out, out_dt) if node.wants_output(3) else None)
    return outs


@onnx_op(
    "RotaryEmbedding",
    since=23,
    needs=("Mul", "Sub", "Add", "ConcatV2", "GatherV2"),
    attrs=("interleaved", "num_heads", "rotary_embedding_dim"),
    inputs=4,
)
def rotary_embedding(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """RotaryEmbedding → (x1·cos − x2·sin, x1·sin + x2·cos) on the rotated part of each head."""
    x, cos, sin, pos = node.input(0), node.input(1), node.input(2), node.opt(3)
    shape = ctx.shape(x)
    if len(shape) == 4:
        t = ctx.transpose(x, (0, 2, 1, 3))
    elif len(shape) == 3:
        heads = node.attr("num_heads")
        if not heads or shape[2] % heads:
            raise ctx.error("3-D input needs num_heads dividing the hidden size", SHAPE_INVALID)
        t = ctx.reshape(x, (shape[0], shape[1], heads, shape[2] // heads))
    else:
        raise ctx.error("input must be 3-D or 4-D", SHAPE_INVALID)
    b, s, h, d = ctx.shape(t)
    rdim = node.attr("rotary_embedding_dim", 0) or d
    half = rdim // 2
    if rdim % 2 or rdim > d:
        raise ctx.error(
            f"rotary_embedding_dim {rdim} must be even and ≤ head size {d}", SHAPE_INVALID
        )
    if pos is not None:
        axis0 = ctx.const(np.array(0, np.int32))
        cos = ctx.emit1("GatherV2", [cos, pos, axis0])
        sin = ctx.emit1("GatherV2", [sin, pos, axis0])
    if ctx.shape(cos)[-1] != half or ctx.shape(sin)[-1] != half:
        raise ctx.error(
            f"cos/sin caches must end in rotary_embedding_dim/2 = {half}", SHAPE_INVALID
        )
    cd = ctx.shape(cos)
    cos = ctx.reshape(cos, (*cd[:-1], 1, half))
    sin = ctx.reshape(sin, (*cd[:-1], 1, half))
    last = ctx.const(np.array(3, np.int32))

    def take(start: int, stop: int, step: int) -> Port:
        return ctx.emit1(
            "StridedSlice",
            [
                t,
                ctx.const(np.array([0, 0, 0, start], np.int64)),
                ctx.const(np.array([b, s, h, stop], np.int64)),
                ctx.const(np.array([1, 1, 1, step], np.int64)),
            ],
        )

    interleaved = bool(node.attr("interleaved", 0))
    if interleaved:
        x1, x2 = take(0, rdim, 2), take(1, rdim, 2)
    else:
        x1, x2 = take(0, half, 1), take(half, rdim, 1)
    real = ctx.emit1("Sub", [ctx.emit1("Mul", [cos, x1]), ctx.emit1("Mul", [sin, x2])])
    imag = ctx.emit1("Add", [ctx.emit1("Mul", [sin, x1]), ctx.emit1("Mul", [cos, x2])])
    if interleaved:
        r = ctx.reshape(real, (b, s, h, half, 1))
        i = ctx.reshape(imag, (b, s, h, half, 1))
        rot = ctx.emit1("ConcatV2", [r, i, ctx.const(np.array(4, np.int32))], {"N": 2})
        rot = ctx.reshape(rot, (b, s, h, rdim))
    else:
        rot = ctx.emit1("ConcatV2", [real, imag, last], {"N": 2})
    if rdim < d:
        rot = ctx.emit1("ConcatV2", [rot, take(rdim, d, 1), last], {"N": 2})
    if len(shape) == 3:
        return [ctx.reshape(rot, shape)]
    return [ctx.transpose(rot, (0, 2, 1, 3))]


# ----- einsum ---------------------------------------------------------------------------------


def _parse_einsum(eq: str, ranks: list[int], ctx: ParseContext) -> tuple[list[str], str]:
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ctx.error(f"equation {eq!r} has {len(terms)} operands; {len(ranks)} given")
    letters = "".join(sorted({c for c in lhs if c.isalpha()}))
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in letters]
    ell_rank = 0
    for term, r in zip(terms, ranks):
        if "..." in term:
            ell_rank = max(ell_rank, r - (len(term) - 3))
    ell = "".join(spare[:ell_rank])
    out_terms = []
    for term, r in zip(terms, ranks):
        if "..." in term:
            n = r - (len(term) - 3)
            term = term.replace("...", ell[ell_rank - n :])
        if len(term) != r or not (term.isalpha() or term == ""):
            raise ctx.error(f"einsum term {term!r} does not match an operand of rank {r}")
        out_terms.append(term)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts: dict[str, int] = {}
        for term in out_terms:
            for c in term:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_terms, out


@onnx_op(
    "Einsum",
    since=12,
    needs=("BatchMatMulV2", "ReduceSum", "Transpose", "Reshape"),
    attrs=("equation",),
    inputs=None,
)
def einsum(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Einsum (one or two operands, no repeated index within an operand) → ReduceSum,
    Transpose, Reshape and BatchMatMulV2."""
    xs = [p for p in node.inputs if p is not None]
    if len(xs) not in (1, 2):
        raise ctx.unsupported(f"Einsum with {len(xs)} operands")
    terms, out = _parse_einsum(node.attr("equation", ""), [ctx.rank(x) for x in xs], ctx)
    for term in terms:
        if len(set(term)) != len(term):
            raise ctx.unsupported("Einsum with a repeated index in one operand (diagonals)")
    sizes: dict[str, int] = {}
    for term, x in zip(terms, xs):
        for c, d in zip(term, ctx.shape(x)):
            if sizes.setdefault(c, d) != d:
                if sizes[c] == 1:
                    sizes[c] = d
                elif d != 1:
                    raise ctx.error(f"index {c} has sizes {sizes[c]} and {d}", SHAPE_INVALID)
    if any(ctx.shape(x)[i] != sizes[c] for term, x in zip(terms, xs) for i, c in enumerate(term)):
        raise ctx.unsupported("Einsum with broadcast (size-1) dims")
    # Sum out indices that appear in one operand only and not in the output.
    ops: list[tuple[Port, str]] = []
    for k, (term, x) in enumerate(zip(terms, xs)):
        others = "".join(t for j, t in enumerate(terms) if j != k)
        drop = [i for i, c in enumerate(term) if c not in out and c not in others]
        if drop:
            x = ctx.emit1("ReduceSum", [x, ctx.const(np.array(drop, np.int64))], _KW)
            term = "".join(c for i, c in enumerate(term) if i not in drop)
        ops.append((x, term))
    if len(ops) == 1:
        x, term = ops[0]
        return [ctx.emit1("Identity", [ctx.transpose(x, [term.index(c) for c in out])])]
    (a, ta), (b, tb) = ops
    batch = [c for c in ta if c in tb and c in out]
    contract = [c for c in ta if c in tb and c not in out]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    at = ctx.transpose(a, [ta.index(c) for c in batch + left + contract])
    bt = ctx.transpose(b, [tb.index(c) for c in batch + contract + right])

    def prod(cs: list[str]) -> int:
        return int(np.prod([sizes[c] for c in cs], dtype=np.int64))

    nb, nl, nc, nr = prod(batch), prod(left), prod(contract), prod(right)
    a3 = ctx.reshape(at, (nb, nl, nc))
    b3 = ctx.reshape(bt, (nb, nc, nr))
    y = ctx.emit1("BatchMatMulV2", [a3, b3])
    y = ctx.reshape(y, [sizes[c] for c in batch + left + right])
    order = batch + left + right
    y = ctx.transpose(y, [order.index(c) for c in out])
    if y.node.op_type not in ("Transpose", "Reshape", "BatchMatMulV2"):
        y = ctx.emit1("Identity", [y])
    return [y]


# ----- quantization ---------------------------------------------------------------------------

_QRANGE = {
    DataType.DT_UINT8: (0, 255),
    DataType.DT_INT8: (-128, 127),
    DataType.DT_UINT16: (0, 65535),
    DataType.DT_INT16: (-32768, 32767),
    DataType.DT_INT32: (-(2**31), 2**31 - 1),
}


def _per_axis(ctx: ParseContext, node: OnnxNode, p: Port, x: Port) -> Port:
    """A scale / zero point reshaped to broadcast along ``axis`` of x (per-tensor unchanged)."""
    pd = ctx.shape(p)
    if pd in ((), (1,)):
        return ctx.reshape(p, ()) if pd else p
    if node.attr("block_size", 0):
        raise ctx.unsupported("blocked quantization (block_size)")
    rank = ctx.rank(x)
    axis = norm_axis(ctx, node.attr("axis", 1), rank)
    if len(pd) != 1 or pd[0] != ctx.shape(x)[axis]:
        raise ctx.error(
            f"per-axis parameter shape {list(pd)} does not match axis {axis}", SHAPE_INVALID
        )
    return ctx.reshape(p, [pd[0] if i == axis else 1 for i in range(rank)])


@onnx_op(
    "QuantizeLinear",
    since=10,
    needs=("RealDiv", "Round", "Add", "Maximum", "Minimum", "Cast"),
    attrs=("axis", "saturate", "block_size", "output_dtype", "precision"),
    inputs=3,
)
def quantize_linear(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """QuantizeLinear → saturate(round_half_even(x / scale) + zero_point)."""
    x, scale, zp = node.input(0), node.input(1), node.opt(2)
    if node.attr("precision", 0):
        raise ctx.unsupported("the precision attribute")
    out_dt = ctx.dtype(zp) if zp is not None else DataType.DT_UINT8
    if node.attr("output_dtype", 0):
        out_dt = onnx_dtype(node.attr("output_dtype"), node.where)
    if out_dt in _FLOAT8:
        return [_quantize_float8(node, ctx, x, scale, zp, out_dt)]
    if out_dt not in _QRANGE:
        raise ctx.unsupported(f"quantizing to {out_dt.short_name}")
    xd = ctx.dtype(x)
    calc = F32 if xd == DataType.DT_FLOAT16 else xd
    xs = ctx.cast(x, calc)
    sc = ctx.cast(_per_axis(ctx, node, scale, x), calc)
    y = ctx.emit1("Round", [ctx.emit1("RealDiv", [xs, sc])])
    if zp is not None:
        y = ctx.emit1("Add", [y, ctx.cast(_per_axis(ctx, node, zp, x), calc)])
    lo, hi = _QRANGE[out_dt]
    y = ctx.emit1("Maximum", [y, ctx.scalar(lo, calc)])
    y = ctx.emit1("Minimum", [y, ctx.scalar(hi, calc)])
    return [ctx.cast(y, out_dt) if ctx.dtype(y) != out_dt else y]


#: float8 quantization targets (ONNX FLOAT8E4M3FN, FLOAT8E5M2): no integer rounding, the
#: float8 Cast rounds to nearest even; ``saturate`` (default) clamps to the largest finite value.
_FLOAT8 = (DataType.DT_FLOAT8_E4M3FN, DataType.DT_FLOAT8_E5M2)


def _quantize_float8(
    node: OnnxNode, ctx: ParseContext, x: Port, scale: Port, zp: Port | None, out_dt: DataType
) -> Port:
    """QuantizeLinear to float8 → Cast(saturate(x / scale + zero_point))."""
    from openge.parser.mappings.elementwise import _cast

    calc = F32 if ctx.dtype(x) in (DataType.DT_FLOAT16, DataType.DT_BF16) else ctx.dtype(x)
    y = ctx.emit1("RealDiv", [ctx.cast(x, calc), ctx.cast(_per_axis(ctx, node, scale, x), calc)])
    if zp is not None:
        y = ctx.emit1("Add", [y, ctx.cast(_per_axis(ctx, node, zp, x), calc)])
    return _cast(ctx, y, out_dt, bool(node.attr("saturate", 1)))


@onnx_op(
    "DequantizeLinear",
    since=10,
    needs=("Sub", "Mul", "Cast"),
    attrs=("axis", "block_size", "output_dtype"),
    inputs=3,
)
def dequantize_linear(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """DequantizeLinear → (x − zero_point) · scale."""
    x, scale, zp = node.input(0), node.input(1), node.opt(2)
    sdt = ctx.dtype(scale)
    if node.attr("output_dtype", 0):
        out = onnx_dtype(node.attr("output_dtype"), node.where)
        if out != sdt:
            raise ctx.unsupported("output_dtype different from the scale's type")
    if ctx.dtype(x) not in _QRANGE and ctx.dtype(x) not in _FLOAT8:
        raise ctx.unsupported(f"dequantizing {ctx.dtype(x).short_name}")
    calc = F32 if sdt == DataType.DT_FLOAT16 else sdt
    if ctx.dtype(x) == DataType.DT_INT32 and calc == F32:
        calc = F64
    xs = ctx.cast(x, calc)
    if zp is not None:
        xs = ctx.emit1("Sub", [xs, ctx.cast(_per_axis(ctx, node, zp, x), calc)])
    y = ctx.emit1("Mul", [xs, ctx.cast(_per_axis(ctx, node, scale, x), calc)])
    return [ctx.cast(y, sdt)]


@onnx_op(
    "DynamicQuantizeLinear",
    since=11,
    needs=("ReduceMax", "ReduceMin", "RealDiv", "Round", "Cast", "Maximum", "Minimum"),
    inputs=1,
)
def dynamic_quantize_linear(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """DynamicQuantizeLinear → uint8 scale/zero point from the range (including 0), then
    QuantizeLinear."""
    x = node.input(0)
    if ctx.dtype(x) != F32:
        raise ctx.error("input must be float32", DATATYPE_INVALID)
    zero = ctx.scalar(0, F32)
    hi = ctx.emit1("Maximum", [_reduce_all(ctx, "ReduceMax", x), zero])
    lo = ctx.emit1("Minimum", [_reduce_all(ctx, "ReduceMin", x), zero])
    scale = ctx.emit1("RealDiv", [ctx.emit1("Sub", [hi, lo]), ctx.scalar(255, F32)])
    zp_f = ctx.emit1("Round", [ctx.emit1("Sub", [zero, ctx.emit1("RealDiv", [lo, scale])])])
    zp_f = ctx.emit1("Minimum", [ctx.emit1("Maximum", [zp_f, zero]), ctx.scalar(255, F32)])
    y = ctx.emit1("Round", [ctx.emit1("RealDiv", [x, scale])])
    y = ctx.emit1("Add", [y, zp_f])
    y = ctx.emit1("Minimum", [ctx.emit1("Maximum", [y, zero]), ctx.scalar(255, F32)])
    return [ctx.cast(y, DataType.DT_UINT8), scale, ctx.cast(zp_f, DataType.DT_UINT8)]


@onnx_op("MatMulInteger", since=10, needs=("Sub", "Cast", "BatchMatMulV2"), inputs=4)
def matmul_integer(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """MatMulInteger → MatMul of (a − a_zp), (b − b_zp) in int32."""
    a, b = node.input(0), node.input(1)
    a = ctx.cast(a, I32)
    b = ctx.cast(b, I32)
    if node.has_input(2):
        zp = node.input(2)
        if ctx.shape(zp) not in ((), (1,)):
            zp = ctx.reshape(zp, (ctx.shape(zp)[0], 1))
        a = ctx.emit1("Sub", [a, ctx.cast(zp, I32)])
    if node.has_input(3):
        b = ctx.emit1("Sub", [b, ctx.cast(node.input(3), I32)])
    return [matmul(ctx, a, b)]


# ----- window functions (shape-only inputs: results built at parse time) ------------------------


def _window(node: OnnxNode, ctx: ParseContext, fn) -> list[Port]:
    size = ctx.int_list(node.input(0), "size")
    if len(size) != 1 or size[0] < 0:
        raise ctx.error("size must be a non-negative scalar", SHAPE_INVALID)
    n = size[0]
    periodic = node.attr("periodic", 1)
    denom = n if periodic else n - 1
    ctx.reserve(24 * n, "window values")
    k = np.arange(n, dtype=np.float64)
    with np.errstate(all="ignore"):
        values = fn(k, denom) if n > 1 or periodic else np.ones(n)
    dt = onnx_dtype(node.attr("output_datatype", 1), node.where)
    return [ctx.emit1("Identity", [ctx.const(values.astype(dt.np_dtype))])]


@onnx_op(
    "HannWindow",
    since=17,
    needs=("Identity",),
    shape_inputs=(0,),
    attrs=("output_datatype", "periodic"),
    inputs=1,
)
def hann_window(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """HannWindow → Const."""
    return _window(node, ctx, lambda k, n: 0.5 - 0.5 * np.cos(2 * np.pi * k / n))


@onnx_op(
    "HammingWindow",
    since=17,
    needs=("Identity",),
    shape_inputs=(0,),
    attrs=("output_datatype", "periodic"),
    inputs=1,
)
def hamming_window(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """HammingWindow → Const."""
    return _window(node, ctx, lambda k, n: 25 / 46 - (21 / 46) * np.cos(2 * np.pi * k / n))


@onnx_op(
    "BlackmanWindow",
    since=17,
    needs=("Identity",),
    shape_inputs=(0,),
    attrs=("output_datatype", "periodic"),
    inputs=1,
)
def blackman_window(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """BlackmanWindow → Const."""
    return _window(
        node,
        ctx,
        lambda k, n: 0.42 - 0.5 * np.cos(2 * np.pi * k / n) + 0.08 * np.cos(4 * np.pi * k / n),
    )


# ----- newer fused ops --------------------------------------------------------------------------


@onnx_op("SwiGLU", since=28, needs=("Sigmoid", "Mul"), attrs=("alpha",), inputs=2)
def swiglu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """SwiGLU → A · sigmoid(alpha · A) · B."""
    a, b = node.input(0), node.input(1)
    if ctx.shape(a) != ctx.shape(b):
        raise ctx.error("A and B must have the same shape", SHAPE_INVALID)
    alpha = float(node.attr("alpha", 1.0))
    scaled = a if alpha == 1.0 else ctx.emit1("Mul", [a, ctx.scalar(alpha, a)])
    gate = ctx.emit1("Mul", [a, ctx.emit1("Sigmoid", [scaled])])
    return [ctx.emit1("Mul", [gate, b])]


@onnx_op(
    "CausalConvWithState",
    since=27,
    needs=("Conv2D", "ConcatV2", "StridedSlice"),
    attrs=("activation",),
    inputs=4,
)
def causal_conv_with_state(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """CausalConvWithState → depthwise Conv2D over [past_state, input] (+ SiLU); the new
    state is the last k-1 positions."""
    x, w, bias, past = node.input(0), node.input(1), node.opt(2), node.opt(3)
    if ctx.rank(x) != 3 or ctx.rank(w) != 3:
        raise ctx.error("input and weight must be 3-D", SHAPE_INVALID)
    b, c, length = ctx.shape(x)
    k = ctx.shape(w)[2]
    if ctx.shape(w) != (c, 1, k):
        raise ctx.error(f"weight must be ({c}, 1, k)", SHAPE_INVALID)
    act = node.attr("activation", "none")
    if act not in ("none", "silu", "swish"):
        raise ctx.error(f"activation {act!r} must be none, silu or swish")
    dt = ctx.dtype(x)
    if past is None:
        past = ctx.const(np.zeros((b, c, k - 1), dtype=dt.np_dtype))
    padded = (
        ctx.emit1("ConcatV2", [past, x, ctx.const(np.array(2, np.int32))], {"N": 2}) if k > 1 else x
    )
    total = length + k - 1
    y = ctx.emit1(
        "Conv2D",
        [ctx.reshape(padded, (b, c, 1, total)), ctx.reshape(w, (c, 1, 1, k)), bias],
        {
            "strides": [1, 1, 1, 1],
            "pads": [0, 0, 0, 0],
            "dilations": [1, 1, 1, 1],
            "groups": c,
            "data_format": "NCHW",
        },
    )
    y = ctx.reshape(y, (b, c, length))
    if act != "none":
        yf = ctx.cast(y, F32)
        y = ctx.cast(ctx.emit1("Mul", [yf, ctx.emit1("Sigmoid", [yf])]), dt)
    outs: list[Port | None] = [y]
    if node.wants_output(1):
        state = ctx.emit1(
            "StridedSlice",
            [
                padded,
                ctx.const(np.array([0, 0, total - (k - 1)], np.int64)),
                ctx.const(np.array([b, c, total], np.int64)),
                ctx.const(np.ones(3, np.int64)),
            ],
        )
        outs.append(state)
    return outs


@onnx_op(
    "LinearAttention",
    since=27,
    needs=("BatchMatMulV2", "Mul", "Add", "Exp", "Sub"),
    attrs=("chunk_size", "kv_num_heads", "q_num_heads", "scale", "update_rule"),
    inputs=6,
)
def linear_attention(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LinearAttention → the recurrence unrolled over the (static) sequence, in float32."""
    q, k, v = node.input(0), node.input(1), node.input(2)
    past, decay, beta = node.opt(3), node.opt(4), node.opt(5)
    rule = node.attr("update_rule", "gated_delta")
    if rule not in ("linear", "gated", "delta", "gated_delta"):
        raise ctx.error(f"update_rule {rule!r} is not valid")
    hq, hkv = node.attr("q_num_heads"), node.attr("kv_num_heads")
    if not hq or not hkv or hq % hkv:
        raise ctx.error("q_num_heads must be a positive multiple of kv_num_heads")
    gating = rule in ("gated", "gated_delta")
    delta = rule in ("delta", "gated_delta")
    if gating != (decay is not None) or delta != (beta is not None):
        raise ctx.error(f"update_rule {rule!r} needs decay: {gating}, beta: {delta}")
    for p in (q, k, v):
        if ctx.rank(p) != 3:
            raise ctx.error("query, key and value must be 3-D (B, T, H*D)", SHAPE_INVALID)
    out_dt = ctx.dtype(q)
    bsz, steps, _ = ctx.shape(q)
    dk = ctx.shape(q)[2] // hq
    dv = ctx.shape(v)[2] // hkv

    def heads(p: Port, h: int) -> Port:
        bb, tt, hd = ctx.shape(p)
        t = ctx.reshape(ctx.cast(p, F32), (bb, tt, h, hd // h))
        return ctx.transpose(t, (0, 2, 1, 3))

    q4, k4, v4 = heads(q, hq), heads(k, hkv), heads(v, hkv)
    g4 = b4 = None
    if decay is not None:
        last = ctx.shape(decay)[2]
        if last == hkv:
            g4 = ctx.transpose(
                ctx.reshape(ctx.cast(decay, F32), (bsz, steps, hkv, 1)), (0, 2, 1, 3)
            )
        elif last == hkv * dk:
            g4 = heads(decay, hkv)
        else:
            raise ctx.error(
                "decay's last dim must be kv_num_heads or kv_num_heads·d_k", SHAPE_INVALID
            )
    if beta is not None:
        last = ctx.shape(beta)[2]
        if last not in (hkv, 1):
            raise ctx.error("beta's last dim must be kv_num_heads or 1", SHAPE_INVALID)
        b4 = ctx.transpose(ctx.reshape(ctx.cast(beta, F32), (bsz, steps, last, 1)), (0, 2, 1, 3))
    if past is not None:
        if ctx.shape(past) != (bsz, hkv, dk, dv):
            raise ctx.error(f"past_state must be {[bsz, hkv, dk, dv]}", SHAPE_INVALID)
        state_dt = ctx.dtype(past)
        state = ctx.cast(past, F32)
    else:
        state_dt = out_dt
        state = ctx.const(np.zeros((bsz, hkv, dk, dv), np.float32))
    scale = node.attr("scale", 0.0) or 1.0 / math.sqrt(dk)
    group = hq // hkv
    reps = ctx.const(np.repeat(np.arange(hkv), group).astype(np.int64)) if group > 1 else None

    def step(p: Port, i: int) -> Port:
        d = ctx.shape(p)
        return ctx.emit1(
            "StridedSlice",
            [
                p,
                ctx.const(np.array([0, 0, i, 0], np.int64)),
                ctx.const(np.array([d[0], d[1], i + 1, d[3]], np.int64)),
                ctx.const(np.ones(4, np.int64)),
            ],
        )

    outs = []
    for i in range(steps):
        q_t, k_t, v_t = step(q4, i), step(k4, i), step(v4, i)  # (B, H, 1, D)
        if g4 is not None:
            g = ctx.emit1("Exp", [step(g4, i)])  # (B, H, 1, 1|dk)
            state = ctx.emit1("Mul", [state, ctx.transpose(g, (0, 1, 3, 2))])
        if b4 is not None:
            retrieved = ctx.emit1("BatchMatMulV2", [k_t, state])  # (B, H, 1, dv)
            v_t = ctx.emit1("Mul", [step(b4, i), ctx.emit1("Sub", [v_t, retrieved])])
        outer = ctx.emit1("Mul", [ctx.transpose(k_t, (0, 1, 3, 2)), v_t])  # (B, H, dk, dv)
        state = ctx.emit1("Add", [state, outer])
        read = (
            state
            if reps is None
            else ctx.emit1("GatherV2", [state, reps, ctx.const(np.array(1, np.int32))])
        )
        o = ctx.emit1("BatchMatMulV2", [q_t, read])  # (B, Hq, 1, dv)
        outs.append(ctx.emit1("Mul", [o, ctx.scalar(scale, F32)]))
    y = (
        outs[0]
        if len(outs) == 1
        else ctx.emit1("ConcatV2", [*outs, ctx.const(np.array(2, np.int32))], {"N": len(outs)})
    )
    y = ctx.reshape(ctx.transpose(y, (0, 2, 1, 3)), (bsz, steps, hq * dv))
    results: list[Port | None] = [ctx.cast(y, out_dt)]
    if node.wants_output(1):
        results.append(ctx.cast(state, state_dt))
    return results


# ----- DFT / STFT ----------------------------------------------------------------------------


def _dft_along(
    ctx: ParseContext, x: Port, axis: int, length: int, inverse: bool, onesided: bool
) -> Port:
    """DFT of x (…, N, C) with C = 1 (real) or 2 (complex) along ``axis`` via one matmul."""
    dims = list(ctx.shape(x))
    rank = len(dims)
    comp = dims[-1]
    if comp not in (1, 2):
        raise ctx.error("the last dim must be 1 (real) or 2 (complex)", SHAPE_INVALID)
    if axis == rank - 1:
        raise ctx.error("axis cannot be the last (complex) dim", SHAPE_INVALID)
    n = dims[axis]
    if length != n:  # truncate or zero-pad the signal to the DFT length
        if length < n:
            begin = [0] * rank
            end = list(dims)
            end[axis] = length
            x = ctx.emit1(
                "StridedSlice",
                [
                    x,
                    ctx.const(np.array(begin, np.int64)),
                    ctx.const(np.array(end, np.int64)),
                    ctx.const(np.ones(rank, np.int64)),
                ],
            )
        else:
            pads = [0] * (2 * rank)
            pads[2 * axis + 1] = length - n
            x = ctx.emit1(
                "PadV3",
                [x, ctx.const(np.array(pads, np.int64)), ctx.scalar(0, x)],
                {"mode": "constant", "paddings_contiguous": True},
            )
        dims[axis] = length
    out_len = length // 2 + 1 if onesided else length
    # Move the signal axis and the component axis last: (..., C, L), flattened to (..., C·L).
    perm = [i for i in range(rank - 1) if i != axis] + [rank - 1, axis]
    t = ctx.transpose(x, perm)
    lead = [dims[i] for i in range(rank - 1) if i != axis]
    t = ctx.reshape(t, (*lead, comp * length))
    ctx.reserve(40 * out_len * length, "DFT matrices")
    kk = np.arange(out_len)[None, :]
    nn = np.arange(length)[:, None]
    ang = 2 * np.pi * ((nn * kk) % length) / length
    sign = 1.0 if inverse else -1.0
    cos, sin = np.cos(ang), sign * np.sin(ang)
    # real part: xr·cos − xi·sin; imag part: xr·sin + xi·cos (sin carries the sign).
    top = np.concatenate([cos, sin], axis=1)
    mat = top if comp == 1 else np.concatenate([top, np.concatenate([-sin, cos], axis=1)], axis=0)
    if inverse:
        mat = mat / length
    dt = ctx.dtype(x)
    y = matmul(ctx, t, ctx.const(mat.astype(dt.np_dtype)))  # (..., 2·K)
    y = ctx.reshape(y, (*lead, 2, out_len))
    # Back to the input layout: signal axis at ``axis``, components last.
    lead_axes = list(range(len(lead)))
    full = [*lead_axes[:axis], len(lead) + 1, *lead_axes[axis:], len(lead)]
    return ctx.transpose(y, full)


def _irfft_along(ctx: ParseContext, x: Port, axis: int, length: int) -> Port:
    """Inverse of a one-sided spectrum (NumPy's irfft): real output of ``length`` samples."""
    dims = list(ctx.shape(x))
    rank = len(dims)
    comp = dims[-1]
    if comp not in (1, 2) or axis == rank - 1:
        raise ctx.error("input must be (..., bins, 1 or 2) with axis not last", SHAPE_INVALID)
    if length < 1:
        raise ctx.error("dft_length must be ≥ 1", SHAPE_INVALID)
    used = length // 2 + 1
    bins = dims[axis]
    if bins > used:  # later bins are ignored
        begin = [0] * rank
        end = list(dims)
        end[axis] = used
        x = ctx.emit1(
            "StridedSlice",
            [
                x,
                ctx.const(np.array(begin, np.int64)),
                ctx.const(np.array(end, np.int64)),
                ctx.const(np.ones(rank, np.int64)),
            ],
        )
        bins = used
    perm = [i for i in range(rank - 1) if i != axis] + [rank - 1, axis]
    lead = [dims[i] for i in range(rank - 1) if i != axis]
    t = ctx.reshape(ctx.transpose(x, perm), (*lead, comp * bins))
    ctx.reserve(40 * bins * length, "inverse DFT matrices")
    k = np.arange(bins)[:, None]
    n = np.arange(length)[None, :]
    weight = np.where((k == 0) | ((length % 2 == 0) & (k == length // 2)), 1.0, 2.0)
    ang = 2 * np.pi * ((k * n) % length) / length
    real_rows = weight * np.cos(ang) / length
    imag_rows = -weight * np.sin(ang) / length
    mat = real_rows if comp == 1 else np.concatenate([real_rows, imag_rows], axis=0)
    dt = ctx.dtype(x)
    y = matmul(ctx, t, ctx.const(mat.astype(dt.np_dtype)))  # (..., length)
    y = ctx.reshape(y, (*lead, length, 1))
    order = list(range(len(lead)))
    return ctx.transpose(y, [*order[:axis], len(lead), *order[axis:], len(lead) + 1])


@onnx_op(
    "DFT",
    since=17,
    needs=("BatchMatMulV2", "MatMulV2", "Transpose", "Reshape"),
    shape_inputs=lambda v: (1, 2) if v >= 20 else (1,),
    attrs=("axis", "inverse", "onesided"),
    inputs=3,
)
def dft(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """DFT → a matmul with the (cos, sin) DFT matrix built at parse time."""
    x = node.input(0)
    if ctx.dtype(x) not in FLOATS:
        raise ctx.error("input must be a float tensor", DATATYPE_INVALID)
    rank = ctx.rank(x)
    if node.opset >= 20:
        axis = ctx.int_list(node.input(2), "axis")[0] if node.has_input(2) else -2
    else:
        axis = node.attr("axis", 1)
    axis = norm_axis(ctx, axis, rank)
    length = ctx.shape(x)[axis]
    if node.has_input(1):
        length = ctx.int_list(node.input(1), "dft_length")[0]
        if length < 1:
            raise ctx.error("dft_length must be ≥ 1", SHAPE_INVALID)
    inverse = bool(node.attr("inverse", 0))
    onesided = bool(node.attr("onesided", 0))
    if inverse and onesided:
        if not node.has_input(1):
            length = 2 * (ctx.shape(x)[axis] - 1)
        return [_irfft_along(ctx, x, axis, length)]
    if onesided and ctx.shape(x)[-1] == 2:
        raise ctx.error("onesided needs a real input", SHAPE_INVALID)
    return [_dft_along(ctx, x, axis, length, inverse, onesided)]


@onnx_op(
    "STFT",
    since=17,
    needs=("BatchMatMulV2", "MatMulV2", "GatherV2", "Mul"),
    shape_inputs=(1, 3),
    attrs=("onesided",),
    inputs=4,
)
def stft(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """STFT → frames gathered with a constant index table, windowed, then the DFT matmul."""
    sig, step_p, window, flen_p = node.input(0), node.input(1), node.opt(2), node.opt(3)
    dims = ctx.shape(sig)
    if len(dims) != 3 or dims[2] not in (1, 2):
        raise ctx.error("signal must be (batch, length, 1 or 2)", SHAPE_INVALID)
    step = ctx.int_list(step_p, "frame_step")[0]
    if flen_p is not None:
        flen = ctx.int_list(flen_p, "frame_length")[0]
    elif window is not None:
        flen = ctx.shape(window)[0]
    else:
        raise ctx.error("frame_length or window is required")
    frames = (dims[1] - flen) // step + 1
    if step < 1 or flen < 1 or frames < 1:
        raise ctx.error("frame_step/frame_length do not fit the signal", SHAPE_INVALID)
    ctx.reserve(16 * frames * flen, "STFT frame indices")
    index = (np.arange(frames)[:, None] * step + np.arange(flen)[None, :]).astype(np.int64)
    fr = ctx.emit1("GatherV2", [sig, ctx.const(index), ctx.const(np.array(1, np.int32))])
    if window is not None:
        fr = ctx.emit1("Mul", [fr, ctx.reshape(window, (1, 1, flen, 1))])
    onesided = bool(node.attr("onesided", 1))
    if onesided and dims[2] == 2:
        raise ctx.error("onesided needs a real signal", SHAPE_INVALID)
    return [_dft_along(ctx, fr, 2, flen, False, onesided)]


# ----- FlexAttention (ai.onnx.preview) ---------------------------------------------------------


@onnx_op(
    "FlexAttention",
    domain="ai.onnx.preview",
    needs=("BatchMatMulV2", "SoftmaxV2", "Mul"),
    attrs=("scale", "score_mod", "prob_mod", "softmax_precision"),
    inputs=3,
)
def flex_attention(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """FlexAttention → scaled Q·Kᵀ, score_mod (inlined), softmax, prob_mod (inlined), ·V."""
    from openge.parser.onnx_parser import run_subgraph

    q, k, v = node.input(0), node.input(1), node.input(2)
    for p in (q, k, v):
        if ctx.rank(p) != 4:
            raise ctx.error("Q, K and V must be 4-D", SHAPE_INVALID)
    dt = ctx.dtype(q)
    if dt not in FLOATS:
        raise ctx.error("Q must be a float tensor", DATATYPE_INVALID)
    hq, hkv = ctx.shape(q)[1], ctx.shape(k)[1]
    if hq != hkv:
        if hq % hkv:
            raise ctx.error("q heads must be a multiple of kv heads", SHAPE_INVALID)
        ctx.reserve(16 * max(hq, hkv), "the head indices")
        reps = ctx.const(np.repeat(np.arange(hkv), hq // hkv).astype(np.int64))
        axis1 = ctx.const(np.array(1, np.int32))
        k = ctx.emit1("GatherV2", [k, reps, axis1])
        v = ctx.emit1("GatherV2", [v, reps, axis1])
    scale = node.attr("scale")
    scale = 1.0 / math.sqrt(ctx.shape(q)[3]) if scale is None else float(scale)
    s = ctx.scalar(dt.np_dtype.type(np.sqrt(np.float32(scale))), dt)
    scores = ctx.emit1(
        "BatchMatMulV2",
        [ctx.emit1("Mul", [q, s]), ctx.emit1("Mul", [k, s])],
        {"adj_x2": True},
    )
    prec = node.attr("softmax_precision")
    default = F32 if dt.itemsize < 4 else dt
    calc = default if prec is None else onnx_dtype(prec, node.where)
    scores = ctx.cast(scores, calc)
    for key, stage in (("score_mod", "scores"), ("prob_mod", "probs")):
        sub = node.attr(key)
        if stage == "probs":
            scores = ctx.emit1("SoftmaxV2", [scores], {"axes": [-1]})
        if sub is not None:
            (modded,) = run_subgraph(ctx, sub.proto, [scores], f"{node.name}/{key}/")
            if ctx.shape(modded) != ctx.shape(scores):
                raise ctx.error(f"{key} must keep the shape", SHAPE_INVALID)
            scores = ctx.cast(modded, calc)
    y = ctx.emit1("BatchMatMulV2", [scores, ctx.cast(v, calc)])
    return [ctx.cast(y, ctx.dtype(v))]


# ----- quantized matmul / conv -------------------------------------------------------------------


def _minus_zero_point(
    ctx: ParseContext, x: Port, zp: Port | None, dt: DataType, shape: tuple[int, ...] | None = None
) -> Port:
    x = ctx.cast(x, dt)
    if zp is None:
        return x
    z = ctx.cast(zp, dt)
    if shape is not None and ctx.shape(z) not in ((), (1,)):
        z = ctx.reshape(z, shape)
    return ctx.emit1("Sub", [x, z])


def _requantize(
    ctx: ParseContext, acc: Port, scale: Port, y_zp: Port | None, out_dt: DataType
) -> Port:
    """saturate(round_half_even(acc · scale) + zero_point) in float64, as ONNX's reference."""
    y = ctx.emit1("Mul", [ctx.cast(acc, F64), ctx.cast(scale, F64)])
    if y_zp is not None:
        y = ctx.emit1("Add", [y, ctx.cast(y_zp, F64)])
    y = ctx.emit1("Round", [y])
    lo, hi = _QRANGE[out_dt]
    y = ctx.emit1("Minimum", [ctx.emit1("Maximum", [y, ctx.scalar(lo, F64)]), ctx.scalar(hi, F64)])
    return ctx.cast(y, out_dt)


@onnx_op("QLinearMatMul", since=10, needs=("BatchMatMulV2", "Cast", "Round"), inputs=8)
def qlinear_matmul(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """QLinearMatMul → int32 matmul of the zero-point-shifted operands, requantized."""
    a, a_s, a_zp = node.input(0), node.input(1), node.opt(2)
    b, b_s, b_zp = node.input(3), node.input(4), node.opt(5)
    y_s, y_zp = node.input(6), node.opt(7)
    out_dt = ctx.dtype(y_zp) if y_zp is not None else ctx.dtype(a)
    if out_dt not in _QRANGE:
        raise ctx.unsupported(f"QLinearMatMul to {out_dt.short_name}")
    m = ctx.shape(a)[-2] if ctx.rank(a) >= 2 else 1
    n = ctx.shape(b)[-1]
    a_i = _minus_zero_point(ctx, a, a_zp, I32, (m, 1))
    b_i = _minus_zero_point(ctx, b, b_zp, I32, (1, n))
    acc = matmul(ctx, a_i, b_i)
    sdt = ctx.dtype(a_s)

    def shaped(p: Port, shape: tuple[int, ...]) -> Port:
        return p if ctx.shape(p) in ((), (1,)) else ctx.reshape(p, shape)

    scale = ctx.emit1(
        "RealDiv",
        [
            ctx.emit1("Mul", [shaped(a_s, (m, 1)), shaped(ctx.cast(b_s, sdt), (1, n))]),
            ctx.cast(y_s, sdt),
        ],
    )
    return [_requantize(ctx, acc, scale, y_zp, out_dt)]


def _integer_conv(node: OnnxNode, ctx: ParseContext, x: Port, w: Port) -> Port:
    """Conv of integer-valued float64 tensors (exact below 2⁵³) through the Conv mapping."""
    from openge.parser.mappings.nn import conv

    sub = OnnxNode(
        node.op_type,
        node.name,
        node.domain,
        node.opset,
        [x, w, None],
        ["", "", ""],
        ["y"],
        {
            k: v
            for k, v in node.attrs.items()
            if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
        },
    )
    return conv(sub, ctx)[0]


@onnx_op(
    "ConvInteger",
    since=10,
    needs=("Conv2D", "Cast", "Sub"),
    attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"),
    inputs=4,
)
def conv_integer(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ConvInteger → Conv2D of (x − x_zp), (w − w_zp) in float64, cast to int32 (exact)."""
    x, w, x_zp, w_zp = node.input(0), node.input(1), node.opt(2), node.opt(3)
    m = ctx.shape(w)[0]
    xs = _minus_zero_point(ctx, x, x_zp, F64)
    ws = _minus_zero_point(ctx, w, w_zp, F64, (m,) + (1,) * (ctx.rank(w) - 1))
    return [ctx.cast(_integer_conv(node, ctx, xs, ws), I32)]


@onnx_op(
    "QLinearConv",
    since=10,
    needs=("Conv2D", "Cast", "Round"),
    attrs=("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"),
    inputs=9,
)
def qlinear_conv(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """QLinearConv → integer conv (+ int32 bias) requantized with x_scale·w_scale / y_scale."""
    x, x_s, x_zp = node.input(0), node.input(1), node.opt(2)
    w, w_s, w_zp = node.input(3), node.input(4), node.opt(5)
    y_s, y_zp, bias = node.input(6), node.opt(7), node.opt(8)
    out_dt = ctx.dtype(y_zp) if y_zp is not None else ctx.dtype(x)
    if out_dt not in _QRANGE:
        raise ctx.unsupported(f"QLinearConv to {out_dt.short_name}")
    m = ctx.shape(w)[0]
    rank = ctx.rank(x)
    chan = (m,) + (1,) * (rank - 2)
    xs = _minus_zero_point(ctx, x, x_zp, F64)
    ws = _minus_zero_point(ctx, w, w_zp, F64, (m,) + (1,) * (ctx.rank(w) - 1))
    acc = _integer_conv(node, ctx, xs, ws)
    if bias is not None:
        acc = ctx.emit1("Add", [acc, ctx.reshape(ctx.cast(bias, F64), chan)])
    sdt = ctx.dtype(x_s)
    wsc = ctx.cast(w_s, sdt)
    if ctx.shape(wsc) not in ((), (1,)):
        wsc = ctx.reshape(wsc, chan)
    scale = ctx.emit1("RealDiv", [ctx.emit1("Mul", [x_s, wsc]), ctx.cast(y_s, sdt)])
    return [_requantize(ctx, acc, scale, y_zp, out_dt)]


@onnx_op("Det", since=11, needs=("Mul", "Sub", "StridedSlice"), inputs=1)
def det(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Det of 1×1, 2×2 and 3×3 matrices → the cofactor expansion (larger ones are refused)."""
    x = node.input(0)
    dims = ctx.shape(x)
    if len(dims) < 2 or dims[-1] != dims[-2]:
        raise ctx.error("input must be (..., M, M)", SHAPE_INVALID)
    m = dims[-1]
    if ctx.dtype(x) not in FLOATS:
        raise ctx.error("input must be a float tensor", DATATYPE_INVALID)
    if m > 3:
        raise ctx.unsupported(f"Det of {m}×{m} matrices (openge expands up to 3×3)")
    lead = dims[:-2]
    flat = ctx.reshape(x, (*lead, m * m))

    def e(i: int, j: int) -> Port:
        k = i * m + j
        begin = [*([0] * len(lead)), k]
        end = [*lead, k + 1]
        return ctx.emit1(
            "StridedSlice",
            [
                flat,
                ctx.const(np.array(begin, np.int64)),
                ctx.const(np.array(end, np.int64)),
                ctx.const(np.ones(len(lead) + 1, np.int64)),
            ],
        )

    def mul(a: Port, b: Port) -> Port:
        return ctx.emit1("Mul", [a, b])

    def sub(a: Port, b: Port) -> Port:
        return ctx.emit1("Sub", [a, b])

    if m == 1:
        y = e(0, 0)
    elif m == 2:
        y = sub(mul(e(0, 0), e(1, 1)), mul(e(0, 1), e(1, 0)))
    else:
        c0 = sub(mul(e(1, 1), e(2, 2)), mul(e(1, 2), e(2, 1)))
        c1 = sub(mul(e(1, 0), e(2, 2)), mul(e(1, 2), e(2, 0)))
        c2 = sub(mul(e(1, 0), e(2, 1)), mul(e(1, 1), e(2, 0)))
        y = ctx.emit1("Add", [sub(mul(e(0, 0), c0), mul(e(0, 1), c1)), mul(e(0, 2), c2)])
    return [ctx.reshape(y, lead) if ctx.shape(y) != tuple(lead) else ctx.emit1("Identity", [y])]
