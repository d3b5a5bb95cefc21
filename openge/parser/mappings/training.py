"""ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum): one update step composed of
elementwise catalog ops. The step count T decides scalar factors, so it must be known when the
model is planned (a constant, or a run-time input of a dynamic-shape model)."""

from __future__ import annotations

from collections.abc import Sequence

from openge.graph import Port
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext

_DOMAIN = "ai.onnx.preview.training"
_NEEDS = ("Add", "Sub", "Mul", "Div", "Sqrt")


def _step(node: OnnxNode, ctx: ParseContext, groups: int) -> tuple[Port, float, list[list[Port]]]:
    """R, the step count T as a number, and the per-tensor input groups (X, G, then state)."""
    n_inputs = len(node.inputs)
    if n_inputs < 2 + groups or (n_inputs - 2) % groups:
        raise ctx.error(f"takes R, T and {groups} inputs per optimized tensor; got {n_inputs}")
    n = (n_inputs - 2) // groups
    t = float(ctx.require_value(node.input(1), "T").reshape(-1)[0])
    per = [[node.input(2 + k * n + i) for k in range(groups)] for i in range(n)]
    return node.input(0), t, per


def _regularized(ctx: ParseContext, x: Port, g: Port, coefficient: float) -> Port:
    if coefficient == 0:
        return g
    return ctx.emit1("Add", [ctx.emit1("Mul", [x, ctx.scalar(coefficient, x)]), g])


def _axpy(ctx: ParseContext, a: float, x: Port, b: float, y: Port) -> Port:
    """a * x + b * y."""
    return ctx.emit1(
        "Add", [ctx.emit1("Mul", [x, ctx.scalar(a, x)]), ctx.emit1("Mul", [y, ctx.scalar(b, y)])]
    )


@onnx_op(
    "Adagrad",
    domain=_DOMAIN,
    needs=_NEEDS,
    shape_inputs=(1,),
    attrs=("decay_factor", "epsilon", "norm_coefficient"),
)
def adagrad(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Adagrad: H += g², X -= r·g / (√H + ε) with r = R / (1 + T·decay)."""
    r, t, per = _step(node, ctx, 3)
    decay = float(node.attr("decay_factor", 0.0))
    eps, coef = float(node.attr("epsilon", 1e-6)), float(node.attr("norm_coefficient", 0.0))
    xs, hs = [], []
    for x, g, h in per:
        rate = ctx.emit1("Div", [r, ctx.scalar(1 + t * decay, r)])
        gr = _regularized(ctx, x, g, coef)
        h_new = ctx.emit1("Add", [h, ctx.emit1("Mul", [gr, gr])])
        denom = ctx.emit1("Add", [ctx.emit1("Sqrt", [h_new]), ctx.scalar(eps, h_new)])
        step = ctx.emit1("Div", [ctx.emit1("Mul", [rate, gr]), denom])
        xs.append(ctx.emit1("Sub", [x, step]))
        hs.append(h_new)
    return xs + hs


@onnx_op(
    "Adam",
    domain=_DOMAIN,
    needs=_NEEDS,
    shape_inputs=(1,),
    attrs=("alpha", "beta", "epsilon", "norm_coefficient", "norm_coefficient_post"),
)
def adam(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Adam: V, H moving averages of g and g²; X -= r'·V / (√H + ε), then decayed."""
    r, t, per = _step(node, ctx, 4)
    alpha, beta = float(node.attr("alpha", 0.9)), float(node.attr("beta", 0.999))
    eps, coef = float(node.attr("epsilon", 1e-6)), float(node.attr("norm_coefficient", 0.0))
    post = float(node.attr("norm_coefficient_post", 0.0))
    factor = (1 - beta**t) ** 0.5 / (1 - alpha**t) if t > 0 else 1.0
    xs, vs, hs = [], [], []
    for x, g, v, h in per:
        gr = _regularized(ctx, x, g, coef)
        v_new = _axpy(ctx, alpha, v, 1 - alpha, gr)
        h_new = _axpy(ctx, beta, h, 1 - beta, ctx.emit1("Mul", [gr, gr]))
        denom = ctx.emit1("Add", [ctx.emit1("Sqrt", [h_new]), ctx.scalar(eps, h_new)])
        rate = ctx.emit1("Mul", [r, ctx.scalar(factor, r)])
        x_new = ctx.emit1("Sub", [x, ctx.emit1("Mul", [rate, ctx.emit1("Div", [v_new, denom])])])
        if post:
            x_new = ctx.emit1("Mul", [x_new, ctx.scalar(1 - post, x_new)])
        xs.append(x_new)
        vs.append(v_new)
        hs.append(h_new)
    return xs + vs + hs


@onnx_op(
    "Momentum",
    domain=_DOMAIN,
    needs=_NEEDS,
    shape_inputs=(1,),
    attrs=("alpha", "beta", "mode", "norm_coefficient"),
)
def momentum(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Momentum (standard or nesterov): V = α·V + β'·g; X -= R·V (or R·(g + α·V))."""
    r, t, per = _step(node, ctx, 3)
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    mode, coef = node.attr("mode", "standard"), float(node.attr("norm_coefficient", 0.0))
    if mode not in ("standard", "nesterov"):
        raise ctx.unsupported(f"mode {mode!r}")
    beta_t = beta if t > 0 else 1.0
    xs, vs = [], []
    for x, g, v in per:
        gr = _regularized(ctx, x, g, coef)
        v_new = _axpy(ctx, alpha, v, beta_t, gr)
        direction = v_new if mode == "standard" else _axpy(ctx, 1.0, gr, alpha, v_new)
        xs.append(ctx.emit1("Sub", [x, ctx.emit1("Mul", [r, direction])]))
        vs.append(v_new)
    return xs + vs
