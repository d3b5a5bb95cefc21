"""ONNX elementwise ops → catalog elementwise ops (Add, RealDiv, Maximum, SelectV2, Cast …).

Where ONNX and the catalog differ, the mapping composes: integer Div truncates toward zero
(TruncateDiv), Mod follows ``fmod`` (FloorMod / Mod), Selu/Celu/Gelu/Shrink… are built from
basic ops with ONNX's own formula, variadic Sum/Max/Min/Mean are chains of binary ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from openge.errors import DATATYPE_INVALID
from openge.graph import DataType, Port
from openge.ops import has_op
from openge.parser.mappings import onnx_op
from openge.parser.onnx_parser import OnnxNode, ParseContext, onnx_dtype

FLOATS = frozenset({DataType.DT_FLOAT, DataType.DT_FLOAT16, DataType.DT_DOUBLE})
SIGNED = frozenset({DataType.DT_INT8, DataType.DT_INT16, DataType.DT_INT32, DataType.DT_INT64})
UNSIGNED = frozenset(
    {DataType.DT_UINT8, DataType.DT_UINT16, DataType.DT_UINT32, DataType.DT_UINT64}
)
INTS = SIGNED | UNSIGNED
BOOL = DataType.DT_BOOL
F64 = DataType.DT_DOUBLE


def _same_dtype(node: OnnxNode, ctx: ParseContext, ports: list[Port]) -> None:
    dts = {ctx.dtype(p) for p in ports}
    if len(dts) > 1:
        raise ctx.error(
            "inputs must have the same type, got " + ", ".join(sorted(d.short_name for d in dts)),
            DATATYPE_INVALID,
        )


# ----- unary ----------------------------------------------------------------------------------

_UNARY = {
    "Abs": "Abs",
    "Neg": "Neg",
    "Exp": "Exp",
    "Log": "Log",
    "Sqrt": "Sqrt",
    "Reciprocal": "Reciprocal",
    "Sin": "Sin",
    "Cos": "Cos",
    "Tan": "Tan",
    "Asin": "Asin",
    "Acos": "Acos",
    "Atan": "Atan",
    "Sinh": "Sinh",
    "Cosh": "Cosh",
    "Asinh": "Asinh",
    "Acosh": "Acosh",
    "Atanh": "Atanh",
    "Erf": "Erf",
    "Floor": "Floor",
    "Ceil": "Ceil",
    "Round": "Round",
    "Sign": "Sign",
    "Relu": "Relu",
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Softsign": "Softsign",
    "Softplus": "Softplus",
    "Not": "LogicalNot",
    "BitwiseNot": "Invert",
}


def _unary(onnx_name: str, catalog: str) -> None:
    @onnx_op(onnx_name, needs=(catalog,), inputs=1)
    def mapping(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
        return [ctx.emit1(catalog, [node.input(0)])]

    mapping.__doc__ = f"{onnx_name} → {catalog}."


for _onnx, _cat in _UNARY.items():
    _unary(_onnx, _cat)


@onnx_op("IsNaN", needs=("IsNan",), attrs=(), inputs=1)
def is_nan(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """IsNaN → IsNan."""
    return [ctx.emit1("IsNan", [node.input(0)])]


@onnx_op("IsInf", needs=("Equal",), attrs=("detect_negative", "detect_positive"), inputs=1)
def is_inf(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """IsInf → Equal(x, ±inf) (either or both signs)."""
    x = node.input(0)
    pos = node.attr("detect_positive", 1)
    neg = node.attr("detect_negative", 1)
    if ctx.dtype(x) not in FLOATS:
        raise ctx.error(f"IsInf of {ctx.dtype(x).short_name}", DATATYPE_INVALID)
    if pos and neg:
        if has_op("IsInf"):
            return [ctx.emit1("IsInf", [x])]
        return [ctx.emit1("Equal", [ctx.emit1("Abs", [x]), ctx.scalar(np.inf, x)])]
    if pos:
        return [ctx.emit1("Equal", [x, ctx.scalar(np.inf, x)])]
    if neg:
        return [ctx.emit1("Equal", [x, ctx.scalar(-np.inf, x)])]
    ctx.reserve(int(np.prod(ctx.shape(x), dtype=object)), "the all-false result")
    return [ctx.emit1("Identity", [ctx.const(np.zeros(ctx.shape(x), dtype=bool))])]


# ----- binary arithmetic -----------------------------------------------------------------------

_BINARY = {
    "Add": "Add",
    "Sub": "Sub",
    "Mul": "Mul",
    "Equal": "Equal",
    "Less": "Less",
    "LessOrEqual": "LessEqual",
    "Greater": "Greater",
    "GreaterOrEqual": "GreaterEqual",
    "And": "LogicalAnd",
    "Or": "LogicalOr",
    "Xor": "NotEqual",
    "BitwiseAnd": "BitwiseAnd",
    "BitwiseOr": "BitwiseOr",
    "BitwiseXor": "BitwiseXor",
}


def _binary(onnx_name: str, catalog: str) -> None:
    @onnx_op(onnx_name, needs=(catalog,), inputs=2)
    def mapping(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
        a, b = node.input(0), node.input(1)
        _same_dtype(node, ctx, [a, b])
        if node.opset < 7 and node.attr("broadcast", 0):
            raise ctx.unsupported("legacy broadcast attribute")
        return [ctx.emit1(catalog, [a, b])]

    mapping.__doc__ = f"{onnx_name} → {catalog} (NumPy broadcasting)."


for _onnx, _cat in _BINARY.items():
    _binary(_onnx, _cat)


@onnx_op("Div", needs=("RealDiv",), attrs=(), inputs=2)
def div(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Div → RealDiv (floats) or TruncateDiv (integers: C-style, toward zero)."""
    a, b = node.input(0), node.input(1)
    _same_dtype(node, ctx, [a, b])
    dt = ctx.dtype(a)
    if dt in INTS:
        if dt in UNSIGNED:
            return [ctx.emit1("FloorDiv", [a, b])]
        return [ctx.emit1("TruncateDiv", [a, b])]
    return [ctx.emit1("RealDiv", [a, b])]


@onnx_op("Mod", needs=("FloorMod",), attrs=("fmod",), inputs=2)
def mod(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Mod → FloorMod (fmod=0: the divisor's sign) or Mod (fmod=1: C fmod, the dividend's)."""
    a, b = node.input(0), node.input(1)
    _same_dtype(node, ctx, [a, b])
    fmod = node.attr("fmod", 0)
    if fmod not in (0, 1):
        raise ctx.error(f"fmod {fmod} must be 0 or 1")
    return [ctx.emit1("Mod" if fmod else "FloorMod", [a, b])]


@onnx_op("Pow", needs=("Pow", "Cast"), attrs=(), inputs=2)
def pow_(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Pow → Pow; a differently typed exponent is cast (via float64 when the base is an
    integer and the exponent a float, then truncated, as ONNX)."""
    a, b = node.input(0), node.input(1)
    da, db = ctx.dtype(a), ctx.dtype(b)
    if da == db:
        return [ctx.emit1("Pow", [a, b])]
    if da in INTS and db in FLOATS:
        y = ctx.emit1("Pow", [ctx.cast(a, F64), ctx.cast(b, F64)])
        return [ctx.cast(y, da)]
    if da in FLOATS and db in INTS:
        return [ctx.emit1("Pow", [a, ctx.cast(b, da)])]
    if da in INTS and db in INTS:
        return [ctx.emit1("Pow", [a, ctx.cast(b, da)])]
    return [ctx.emit1("Pow", [a, ctx.cast(b, da)])]


@onnx_op("BitShift", needs=("LeftShift", "RightShift"), attrs=("direction",), inputs=2)
def bit_shift(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """BitShift → LeftShift / RightShift (unsigned types)."""
    a, b = node.input(0), node.input(1)
    _same_dtype(node, ctx, [a, b])
    direction = node.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise ctx.error(f"direction {direction!r} must be LEFT or RIGHT")
    return [ctx.emit1("LeftShift" if direction == "LEFT" else "RightShift", [a, b])]


def _variadic(node: OnnxNode, ctx: ParseContext, op: str) -> Port:
    xs = [p for p in node.inputs if p is not None]
    if not xs:
        raise ctx.error("needs at least one input")
    _same_dtype(node, ctx, xs)
    if len(xs) == 1:
        return ctx.emit1("Identity", xs)
    y = xs[0]
    for x in xs[1:]:
        y = ctx.emit1(op, [y, x])
    return y


@onnx_op("Sum", needs=("Add",), attrs=(), inputs=None)
def sum_(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Sum → a chain of Add (broadcasting)."""
    return [_variadic(node, ctx, "Add")]


@onnx_op("Max", needs=("Maximum",), attrs=(), inputs=None)
def max_(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Max → a chain of Maximum."""
    return [_variadic(node, ctx, "Maximum")]


@onnx_op("Min", needs=("Minimum",), attrs=(), inputs=None)
def min_(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Min → a chain of Minimum."""
    return [_variadic(node, ctx, "Minimum")]


@onnx_op("Mean", needs=("Add", "RealDiv"), attrs=(), inputs=None)
def mean(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Mean → (a chain of Add) / n."""
    total = _variadic(node, ctx, "Add")
    n = sum(1 for p in node.inputs if p is not None)
    if n == 1:
        return [total]
    return [ctx.emit1("RealDiv", [total, ctx.scalar(n, total)])]


@onnx_op("Where", needs=("SelectV2",), attrs=(), inputs=3)
def where(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Where → SelectV2 (all three inputs broadcast)."""
    c, x, y = node.input(0), node.input(1), node.input(2)
    _same_dtype(node, ctx, [x, y])
    return [ctx.emit1("SelectV2", [c, x, y])]


@onnx_op("Clip", needs=("Maximum", "Minimum"), attrs=("min", "max"), inputs=3)
def clip(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Clip → Minimum(Maximum(x, min), max) (np.clip's order; bounds may be omitted)."""
    x = node.input(0)
    if node.opset < 11:
        lo = node.attr("min")
        hi = node.attr("max")
        lo_p = None if lo is None else ctx.scalar(lo, x)
        hi_p = None if hi is None else ctx.scalar(hi, x)
    else:
        lo_p, hi_p = node.opt(1), node.opt(2)
        for p in (lo_p, hi_p):
            if p is not None and ctx.shape(p) not in ((), (1,)):
                raise ctx.error("min and max must be scalars")
        lo_p = ctx.reshape(lo_p, ()) if lo_p is not None and ctx.shape(lo_p) else lo_p
        hi_p = ctx.reshape(hi_p, ()) if hi_p is not None and ctx.shape(hi_p) else hi_p
    y = x
    if lo_p is not None:
        y = ctx.emit1("Maximum", [y, lo_p])
    if hi_p is not None:
        y = ctx.emit1("Minimum", [y, hi_p])
    if y is x:
        y = ctx.emit1("Identity", [x])
    return [y]


@onnx_op("Cast", needs=("Cast",), attrs=("to", "saturate", "round_mode"), inputs=1)
def cast(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Cast → Cast. ONNX's rules hold for the supported types: float → float overflows to
    ±inf, float → bool is x != 0, integers wrap; float → integer out of range is undefined in
    ONNX (NumPy's conversion is used). bfloat16 and float8 (e4m3fn, e5m2) round to nearest
    even; to float8 with ``saturate`` (the default) out-of-range values and ±inf clamp to the
    largest finite value (a ClipByValue before the Cast), without it they become NaN (e4m3fn)
    or ±inf (e5m2). FNUZ float8 and int4 are refused (no GE type)."""
    x = node.input(0)
    to = onnx_dtype(node.attr("to"), f"{node.where}: attribute to")
    return [_cast(ctx, x, to, bool(node.attr("saturate", 1)))]


#: Largest finite value of each float8 type (what ``saturate`` clamps to).
FLOAT8_MAX = {DataType.DT_FLOAT8_E4M3FN: 448.0, DataType.DT_FLOAT8_E5M2: 57344.0}


def _cast(ctx: ParseContext, x: Port, to: DataType, saturate: bool = True) -> Port:
    if ctx.dtype(x) == to:
        return ctx.emit1("Identity", [x])
    src = ctx.dtype(x)
    if saturate and to in FLOAT8_MAX and src not in FLOAT8_MAX and src.np_dtype.kind in "fV":
        m = FLOAT8_MAX[to]
        x = ctx.emit1("ClipByValue", [x, ctx.scalar(-m, src), ctx.scalar(m, src)])
    return ctx.emit1("Cast", [x], {"dst_type": int(to)})


@onnx_op("CastLike", needs=("Cast",), attrs=("saturate", "round_mode"), inputs=2)
def cast_like(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """CastLike → Cast to the second input's type (``saturate`` as in Cast)."""
    x, like = node.input(0), node.input(1)
    return [_cast(ctx, x, ctx.dtype(like), bool(node.attr("saturate", 1)))]


# ----- activations (catalog op where it matches ONNX, else ONNX's formula) --------------------


def _zero(ctx: ParseContext, x: Port) -> Port:
    return ctx.scalar(0, x)


@onnx_op("LeakyRelu", needs=("LeakyRelu",), attrs=("alpha",), inputs=1)
def leaky_relu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """LeakyRelu → LeakyRelu(negative_slope=alpha)."""
    return [
        ctx.emit1("LeakyRelu", [node.input(0)], {"negative_slope": float(node.attr("alpha", 0.01))})
    ]


@onnx_op("PRelu", needs=("SelectV2", "Greater", "Mul"), attrs=(), inputs=2)
def prelu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """PRelu → SelectV2(x > 0, x, x·slope) (slope broadcasts to x)."""
    x, slope = node.input(0), node.input(1)
    _same_dtype(node, ctx, [x, slope])
    xs, ss = ctx.shape(x), ctx.shape(slope)
    try:
        np.broadcast_shapes(xs, ss)
    except ValueError:
        # ONNX's reference (and PRelu before opset 7): a 1-D slope matching exactly one dim of
        # x applies along that dim.
        hits = [i for i, d in enumerate(xs) if len(ss) == 1 and d == ss[0]]
        if len(hits) != 1:
            raise ctx.error(
                f"slope {list(ss)} does not broadcast to X {list(xs)}", DATATYPE_INVALID
            ) from None
        slope = ctx.reshape(slope, [d if i == hits[0] else 1 for i, d in enumerate(xs)])
    neg = ctx.emit1("Mul", [x, slope])
    if ctx.shape(neg) != ctx.shape(x):
        raise ctx.error("slope must broadcast to X", DATATYPE_INVALID)
    return [ctx.emit1("SelectV2", [ctx.emit1("Greater", [x, _zero(ctx, x)]), x, neg])]


@onnx_op("Elu", needs=("Elu",), attrs=("alpha",), inputs=1)
def elu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Elu → Elu(alpha)."""
    return [ctx.emit1("Elu", [node.input(0)], {"alpha": float(node.attr("alpha", 1.0))})]


@onnx_op("Selu", needs=("Elu", "Mul"), attrs=("alpha", "gamma"), inputs=1)
def selu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Selu → gamma · Elu(x, alpha)."""
    x = node.input(0)
    alpha = float(node.attr("alpha", 1.67326319217681884765625))
    gamma = float(node.attr("gamma", 1.05070102214813232421875))
    e = ctx.emit1("Elu", [x], {"alpha": alpha})
    return [ctx.emit1("Mul", [e, ctx.scalar(gamma, x)])]


@onnx_op("Celu", needs=("Elu", "Mul", "RealDiv"), attrs=("alpha",), inputs=1)
def celu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Celu → alpha · Elu(x / alpha, 1) (= max(0,x) + min(0, alpha·(exp(x/alpha) − 1)))."""
    x = node.input(0)
    alpha = float(node.attr("alpha", 1.0))
    a = ctx.scalar(alpha, x)
    e = ctx.emit1("Elu", [ctx.emit1("RealDiv", [x, a])], {"alpha": 1.0})
    return [ctx.emit1("Mul", [e, a])]


@onnx_op("HardSigmoid", needs=("HardSigmoid",), attrs=("alpha", "beta"), inputs=1)
def hard_sigmoid(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """HardSigmoid → HardSigmoid(alpha, beta): min(max(alpha·x + beta, 0), 1)."""
    x = node.input(0)
    return [_hard_sigmoid(ctx, x, float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5)))]


def _hard_sigmoid(ctx: ParseContext, x: Port, alpha: float, beta: float) -> Port:
    return ctx.emit1("HardSigmoid", [x], {"alpha": alpha, "beta": beta})


@onnx_op("HardSwish", needs=("Mul", "HardSigmoid"), attrs=(), inputs=1)
def hard_swish(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """HardSwish → x · HardSigmoid(x, 1/6, 1/2), ONNX's own definition (the catalog's
    HardSwish computes x·min(max(x + 3, 0), 6)/6, which rounds differently). One op, not
    four: a convolution's epilogue takes it whole (openge.ops.conv_depthwise.activation)."""
    x = node.input(0)
    return [ctx.emit1("Mul", [x, _hard_sigmoid(ctx, x, 1 / 6, 0.5)])]


@onnx_op("ThresholdedRelu", needs=("SelectV2", "Greater"), attrs=("alpha",), inputs=1)
def thresholded_relu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """ThresholdedRelu → SelectV2(x > alpha, x, 0)."""
    x = node.input(0)
    alpha = float(node.attr("alpha", 1.0))
    return [
        ctx.emit1("SelectV2", [ctx.emit1("Greater", [x, ctx.scalar(alpha, x)]), x, _zero(ctx, x)])
    ]


@onnx_op(
    "Shrink", needs=("SelectV2", "Greater", "Less", "Add", "Sub"), attrs=("bias", "lambd"), inputs=1
)
def shrink(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Shrink → x+bias where x < -lambd, x-bias where x > lambd, else 0."""
    x = node.input(0)
    lambd = float(node.attr("lambd", 0.5))
    bias = float(node.attr("bias", 0.0))
    lo = ctx.emit1("Less", [x, ctx.scalar(-lambd, x)])
    hi = ctx.emit1("Greater", [x, ctx.scalar(lambd, x)])
    upper = ctx.emit1("SelectV2", [hi, ctx.emit1("Sub", [x, ctx.scalar(bias, x)]), _zero(ctx, x)])
    return [ctx.emit1("SelectV2", [lo, ctx.emit1("Add", [x, ctx.scalar(bias, x)]), upper])]


@onnx_op("Mish", needs=("Softplus", "Tanh", "Mul"), attrs=(), inputs=1)
def mish(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Mish → x · tanh(softplus(x))."""
    x = node.input(0)
    return [ctx.emit1("Mul", [x, ctx.emit1("Tanh", [ctx.emit1("Softplus", [x])])])]


@onnx_op("Gelu", needs=("Mul", "Add", "Erf", "Tanh"), attrs=("approximate",), inputs=1)
def gelu(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Gelu → 0.5·x·(1 + erf(x/√2)); "tanh": 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))."""
    x = node.input(0)
    approx = node.attr("approximate", "none")
    if approx == "none":
        inner = ctx.emit1("Erf", [ctx.emit1("Mul", [x, ctx.scalar(1 / math.sqrt(2), x)])])
    elif approx == "tanh":
        cube = ctx.emit1("Mul", [ctx.emit1("Mul", [x, x]), x])
        t = ctx.emit1("Add", [x, ctx.emit1("Mul", [cube, ctx.scalar(0.044715, x)])])
        inner = ctx.emit1("Tanh", [ctx.emit1("Mul", [t, ctx.scalar(math.sqrt(2 / math.pi), x)])])
    else:
        raise ctx.error(f"approximate {approx!r} must be none or tanh")
    half = ctx.emit1("Mul", [x, ctx.scalar(0.5, x)])
    return [ctx.emit1("Mul", [half, ctx.emit1("Add", [inner, ctx.scalar(1, x)])])]


@onnx_op("Swish", needs=("Sigmoid", "Mul"), attrs=("alpha",), inputs=1)
def swish(node: OnnxNode, ctx: ParseContext) -> Sequence[Port | None]:
    """Swish → x · sigmoid(alpha · x)."""
    x = node.input(0)
    alpha = float(node.attr("alpha", 1.0))
    ax = x if alpha == 1.0 else ctx.emit1("Mul", [x, ctx.scalar(alpha, x)])
    return [ctx.emit1("Mul", [x, ctx.emit1("Sigmoid", [ax])])]
