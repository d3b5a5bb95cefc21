"""Op family: elementwise math, comparisons, logic, bitwise ops, activations, Cast and Select.

Ops layer. Every op applies one scalar function per element, with NumPy broadcasting for the ops
with several inputs; outputs keep the input dtype unless the op says otherwise (comparisons give
bool, Cast gives ``dst_type``). There is no implicit type promotion: inputs of one op must share
a dtype, else inference asks for a Cast.

Most ops are one declaration through a builder: ``_unary`` (one input, same shape) and
``_binary`` (two inputs, broadcast). Kernels write straight into the preallocated output with a
NumPy ufunc's ``out=``; composite float16 activations are computed in float32 and rounded once.

Floating-point conditions follow IEEE 754 (overflow gives inf, 0/0 gives NaN). Kernels silence
NumPy's warnings only where the condition is part of a result they define (integer division by
zero gives 0, Cast saturates, discarded branches of a select); the runtime is expected to run the
task list under ``np.errstate(all="ignore")`` so that user data never turns into warnings.

Erf, Gelu and GeluV2 use openge's own erf/erfc (piecewise polynomials evaluated in float64,
below; for float32/float16 Erf, one rational fit evaluated in float64), accurate to ~1 ulp for
float64 and correctly rounded float32/float16 results in all but ~3 in 10^6 inputs (never more
than 1 ulp off) — NumPy has no erf and scipy is not a dependency.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from openge.errors import DATATYPE_INVALID, SHAPE_INVALID
from openge.graph import DataType, TensorDesc
from openge.ops.common import (
    ALL_TYPES,
    COMPLEX_TYPES,
    FLOAT_TYPES,
    INT_TYPES,
    NUMBER_TYPES,
    REAL_NUMBER_TYPES,
    SIGNED_INT_TYPES,
    broadcast_shapes,
    check_dtype,
    same_dtype,
    type_names,
)
from openge.ops.schema import Attr, AttrType, InferContext, Input, OpSchema, Output, Trait

BOOL = DataType.DT_BOOL
BOOLS = frozenset({BOOL})
FLOATS = FLOAT_TYPES
INTS = INT_TYPES
REALS = REAL_NUMBER_TYPES
NUMBERS = NUMBER_TYPES
SIGNED = FLOATS | SIGNED_INT_TYPES  # types with a sign (Neg, Sign, SquaredDifference)

_EW = frozenset({Trait.ELEMENTWISE})
_SQRT1_2 = math.sqrt(0.5)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

InferFn = Callable[[InferContext], Sequence[TensorDesc]]
Kernel = Callable[..., None]


# ----- inference -------------------------------------------------------------------------------


def _out_desc(
    ctx: InferContext, dtype: DataType, shape: Sequence[int], indices: Iterable[int]
) -> TensorDesc:
    """Output desc with the format of the first input in ``indices`` of the output's rank."""
    for i in indices:
        if ctx.has_input(i):
            d = ctx.input(i)
            if len(d.shape) == len(shape):
                return TensorDesc(dtype, tuple(shape), d.format, d.origin_format)
    return TensorDesc(dtype, tuple(shape))


def _infer_unary(
    allowed: frozenset[DataType],
    out: DataType | None = None,
    check: Callable[[InferContext], None] | None = None,
) -> InferFn:
    def infer(ctx: InferContext) -> Sequence[TensorDesc]:
        dtype = check_dtype(ctx, 0, allowed)
        if check is not None:
            check(ctx)
        d = ctx.input(0)
        return [TensorDesc(out or dtype, d.shape, d.format, d.origin_format)]

    return infer


def _infer_broadcast(
    allowed: frozenset[DataType], count: int = 2, out: DataType | None = None, first: int = 0
) -> InferFn:
    """Inputs ``first .. first+count-1`` share one allowed dtype; the output is their broadcast."""

    def infer(ctx: InferContext) -> Sequence[TensorDesc]:
        idx = list(range(first, first + count))
        check_dtype(ctx, first, allowed)
        dtype = same_dtype(ctx, idx)
        shape = broadcast_shapes(ctx, [ctx.input(i).shape for i in idx])
        return [_out_desc(ctx, out or dtype, shape, idx)]

    return infer


def _dims_match(a: int, b: int) -> bool:
    return a < 0 or b < 0 or a == b


def _shapes_match(a: Sequence[int], b: Sequence[int]) -> bool:
    return len(a) == len(b) and all(_dims_match(x, y) for x, y in zip(a, b, strict=True))


# ----- kernel helpers --------------------------------------------------------------------------


def _quiet(kernel: Kernel) -> Kernel:
    """Run ``kernel`` with NumPy's floating-point warnings off (for conditions it defines)."""

    def wrapper(inputs: list[np.ndarray], outputs: list[np.ndarray], **attrs: Any) -> None:
        with np.errstate(all="ignore"):
            kernel(inputs, outputs, **attrs)

    wrapper.__signature__ = inspect.signature(kernel)  # type: ignore[attr-defined]
    wrapper.__name__ = getattr(kernel, "__name__", "kernel")
    wrapper.__doc__ = kernel.__doc__
    return wrapper


def _ufunc_kernel(ufunc: np.ufunc) -> Kernel:
    """``ufunc(*inputs, out=outputs[0])`` (broadcasting into the output)."""

    def kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
        ufunc(*inputs, out=outputs[0])

    kernel.__name__ = f"{ufunc.__name__}_kernel"
    return kernel


def _work(x: np.ndarray) -> np.ndarray:
    """``x`` ready for a composite formula: float16 as a float32 copy (computed in float32), a
    0-d array as a 1-element view (NumPy arithmetic on 0-d arrays returns scalars)."""
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    return x.reshape(1) if x.ndim == 0 else x


def _store(y: np.ndarray, value: np.ndarray) -> None:
    """Write a composite's result (float32 for float16, maybe 1-element for 0-d) into ``y``."""
    np.copyto(y, value.reshape(y.shape), casting="unsafe")


_KW = inspect.Parameter.KEYWORD_ONLY
_POS = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _lift(fn: Callable[..., np.ndarray], quiet: bool = False) -> Kernel:
    """A kernel from ``fn(x, *, attrs) -> array``: float16 is computed in float32, rounded once.

    The kernel's signature lists ``fn``'s keyword-only attrs, so the schema sees which it uses.
    """
    params = [p for p in inspect.signature(fn).parameters.values() if p.kind == _KW]

    def kernel(inputs: list[np.ndarray], outputs: list[np.ndarray], **attrs: Any) -> None:
        x = _work(inputs[0])
        if quiet:
            with np.errstate(all="ignore"):
                _store(outputs[0], fn(x, **attrs))
        else:
            _store(outputs[0], fn(x, **attrs))

    kernel.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("inputs", _POS), inspect.Parameter("outputs", _POS), *params]
    )
    kernel.__name__ = getattr(fn, "__name__", "kernel")
    return kernel


def _as_kernel(fn: Kernel | np.ufunc) -> Kernel:
    return _ufunc_kernel(fn) if isinstance(fn, np.ufunc) else fn


def _unary(
    op_type: str,
    fn: Kernel | np.ufunc,
    dtypes: frozenset[DataType],
    doc: str,
    onnx: str,
    *,
    out: DataType | None = None,
    attrs: Sequence[Attr] = (),
    check: Callable[[InferContext], None] | None = None,
    names: tuple[str, str] = ("x", "y"),
) -> OpSchema:
    """One-input op: ``y = f(x)``, same shape (and dtype unless ``out`` is given)."""
    return OpSchema(
        op_type,
        inputs=(Input(names[0]),),
        outputs=(Output(names[1]),),
        attrs=tuple(attrs),
        infer=_infer_unary(dtypes, out, check),
        kernel=_as_kernel(fn),
        doc=doc,
        onnx=onnx,
        traits=_EW,
    )


def _binary(
    op_type: str,
    fn: Kernel | np.ufunc,
    dtypes: frozenset[DataType],
    doc: str,
    onnx: str,
    *,
    out: DataType | None = None,
    names: tuple[str, str, str] = ("x1", "x2", "y"),
) -> OpSchema:
    """Two-input op with NumPy broadcasting; both inputs have one dtype from ``dtypes``."""
    return OpSchema(
        op_type,
        inputs=(Input(names[0]), Input(names[1])),
        outputs=(Output(names[2]),),
        infer=_infer_broadcast(dtypes, 2, out),
        kernel=_as_kernel(fn),
        prepare=_compiled_binary(op_type) if op_type in COMPILED_BINARY else None,
        doc=doc,
        onnx=onnx,
        traits=_EW,
    )


#: Binary ops that run as a one-step compiled program (openge.ops.compiled.program_closure)
#: where it applies: float operands, large enough outputs (or numba loaded by the model
#: already), broadcasting the loop covers. One IEEE operation per element, so the same bits
#: as NumPy's ufunc; faster where NumPy broadcasts a per-channel operand over NCHW planes (a
#: squeeze-and-excitation scale: 96 × 56² float32, one AVX2 Zen 3 core, 75 → 40 µs; 240 ×
#: 28² 72 → 23 µs) and shared by openge's threads on large outputs.
COMPILED_BINARY = frozenset({"Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Maximum", "Minimum"})


def _compiled_binary(op_type: str) -> Callable[..., Callable[[], None] | None]:
    """``prepare`` for binary op ``op_type``: its one-step compiled program, or None."""

    def prepare(
        inputs: Sequence[np.ndarray | None],
        outputs: Sequence[np.ndarray],
        constant: Sequence[bool],
        **_: Any,
    ) -> Callable[[], None] | None:
        from openge.ops.compiled import program_closure

        return program_closure([(op_type, [0, 1], {})], list(inputs), list(constant), outputs[0])

    return prepare


# ----- arithmetic kernels ----------------------------------------------------------------------


def _trunc_div_int(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> None:
    """Integer a / b rounded toward zero (C semantics); division by zero gives 0."""
    if y.dtype.kind == "u":
        np.floor_divide(a, b, out=y)
        return
    rem = np.fmod(a, b)
    np.subtract(a, rem, out=y)  # a - fmod(a, b) is an exact multiple of b, between 0 and a
    np.floor_divide(y, b, out=y)


@_quiet
def _real_div_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    a, b = inputs
    y = outputs[0]
    if y.dtype.kind in "iu":
        _trunc_div_int(a, b, y)
    else:
        np.true_divide(a, b, out=y)


@_quiet
def _div_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    a, b = inputs
    y = outputs[0]
    if y.dtype.kind in "iu":
        np.floor_divide(a, b, out=y)
    else:
        np.true_divide(a, b, out=y)


@_quiet
def _truncate_div_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    a, b = inputs
    y = outputs[0]
    if y.dtype.kind in "iu":
        _trunc_div_int(a, b, y)
    else:
        np.true_divide(a, b, out=y)
        np.trunc(y, out=y)


@_quiet
def _floor_div_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    np.floor_divide(inputs[0], inputs[1], out=outputs[0])


@_quiet
def _floor_mod_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    np.remainder(inputs[0], inputs[1], out=outputs[0])


@_quiet
def _mod_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    np.fmod(inputs[0], inputs[1], out=outputs[0])


def _small_power(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> bool:
    """``y = a ** e`` for a scalar exponent e in {1, 2, 3, 4, 0.5, -1} with SIMD multiplies or
    sqrt (NumPy's float power is scalar code: the x**3 of tanh-GELU was 74 % of a GPT block);
    within an ulp or two of np.power. False for other exponents."""
    e = float(b.reshape(-1)[0])
    if e == 1.0:
        np.copyto(y, a)
    elif e == 0.5:
        np.sqrt(a, out=y)
    elif e == -1.0:
        np.divide(1, a, out=y)
    elif e in (2.0, 3.0, 4.0):
        t = np.multiply(a, a) if e != 2.0 and np.shares_memory(a, y) else None
        if t is None:
            np.multiply(a, a, out=y)
            if e == 3.0:
                np.multiply(y, a, out=y)
            elif e == 4.0:
                np.multiply(y, y, out=y)
        else:
            np.multiply(t, a if e == 3.0 else t, out=y)
    else:
        return False
    return True


@_quiet
def _pow_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    a, b = inputs
    y = outputs[0]
    if y.dtype.kind != "i":
        if not (
            b.size == 1 and a.shape == y.shape and a.dtype == y.dtype and _small_power(a, b, y)
        ):
            np.power(a, b, out=y)
        return
    # NumPy refuses negative integer powers; the truncated value of a**b (b < 0) is 1 for a == 1,
    # ±1 for a == -1, and 0 otherwise (0 for 0**b too, as integer division by zero does here).
    neg = b < 0
    if not neg.any():
        np.power(a, b, out=y)
        return
    np.power(a, np.maximum(b, 0), out=y)
    one = np.ones((), y.dtype)
    fix = np.where(a == 1, one, np.where(a == -1, np.where(b % 2 == 0, one, -one), 0 * one))
    np.copyto(y, fix, where=neg, casting="unsafe")


def _squared_difference_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    y = outputs[0]
    np.subtract(inputs[0], inputs[1], out=y)
    np.multiply(y, y, out=y)


def _add_n_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    y = outputs[0]
    if len(inputs) == 1:
        np.copyto(y, inputs[0])
        return
    np.add(inputs[0], inputs[1], out=y)
    for x in inputs[2:]:
        np.add(y, x, out=y)


def _infer_add_n(ctx: InferContext) -> Sequence[TensorDesc]:
    n = ctx.num_inputs
    if ctx.attrs["N"] != n:
        raise ctx.error(f"attr N = {ctx.attrs['N']} but the node has {n} inputs x; they must agree")
    return _infer_broadcast(NUMBERS, n)(ctx)


# ----- unary math kernels ----------------------------------------------------------------------


def _check_base(ctx: InferContext, allow_one: bool) -> None:
    base = ctx.attrs["base"]
    if base == -1.0 or (base > 0 and (allow_one or base != 1.0)):
        return
    need = "> 0" if allow_one else "> 0 and != 1"
    raise ctx.error(f"attr base = {base} must be {need}, or -1 for e")


def _exp_kernel(
    inputs: list[np.ndarray], outputs: list[np.ndarray], *, base: float, scale: float, shift: float
) -> None:
    x, y = inputs[0], outputs[0]
    if base == -1.0 and scale == 1.0 and shift == 0.0:
        np.exp(x, out=y)
        return
    t = _work(x) * scale
    t += shift
    if base != -1.0:
        t *= math.log(base)
    np.exp(t, out=t)
    _store(y, t)


def _log_kernel(
    inputs: list[np.ndarray], outputs: list[np.ndarray], *, base: float, scale: float, shift: float
) -> None:
    x, y = inputs[0], outputs[0]
    if base == -1.0 and scale == 1.0 and shift == 0.0:
        np.log(x, out=y)
        return
    t = _work(x) * scale
    t += shift
    np.log(t, out=t)
    if base != -1.0:
        t /= math.log(base)
    _store(y, t)


def _rsqrt_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    y = outputs[0]
    np.sqrt(inputs[0], out=y)
    np.reciprocal(y, out=y)


def _round_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    x, y = inputs[0], outputs[0]
    if y.dtype.kind in "iu":
        np.copyto(y, x)
    else:
        np.rint(x, out=y)  # rounds half to even


# ----- erf -------------------------------------------------------------------------------------
# erf(a) for a = |x| < 1 is a·P(a²); for a ≥ 1, erfc(a) = t·exp(-a² + Q(y)) with t = 2/(2+a) and
# y the affine map of t onto [-1, 1] over [T_LO, T_HI] (a in [1, 2/T_LO - 2]; larger a extrapolate
# harmlessly as exp(-a²) underflows). P and Q are Chebyshev interpolants (64 nodes) of
# erf(√s)/√s on s in [0, 1] and of ln(erfc(a)·e^{a²}/t), computed once offline in 50-digit decimal
# arithmetic from the positive series erf(a) = 2/√π·e^{-a²}·Σ 2ⁿa^{2n+1}/(1·3·…·(2n+1)), truncated
# where the Chebyshev terms fall below 1e-17 (float64 tier) or 1e-13 (float32/float16 tier), and
# written here in the power basis (P in s, Q in y). Both tiers are evaluated in float64; the
# tests check them against math.erf / math.erfc on dense grids and tails.

_ERF_P64 = (
    1.1283791670955126,
    -0.3761263890318314,
    0.11283791670933727,
    -0.026866170642250366,
    0.005223977605696213,
    -0.0008548326240774597,
    0.00012055314020543301,
    -1.492536723268767e-05,
    1.6459617191710851e-06,
    -1.6354493492798383e-07,
    1.4787253199699535e-08,
    -1.2166623264420195e-09,
    7.698019999224925e-11,
)
_ERFC_Q64 = (
    -0.8455028018717619,
    0.3817545295375442,
    0.028206285857123228,
    -0.006685230974194576,
    -0.0023403066227742765,
    0.0002408334834509857,
    0.00021846947793368118,
    -1.2545912495660937e-05,
    -2.3141453338654553e-05,
    1.3669770117328423e-06,
    2.6368092779505137e-06,
    -2.734948147606331e-07,
    -3.0119421871172003e-07,
    5.7954393423154116e-08,
    3.122997466187272e-08,
    -1.0626289626003427e-08,
    -2.4829045486285395e-09,
    1.4996381914045287e-09,
    1.0270539974044368e-10,
    -1.213447120562705e-10,
)
_ERF_P32 = (
    1.1283791670954941,
    -0.3761263890281468,
    0.11283791658709941,
    -0.02686616906711173,
    0.005223967278380936,
    -0.0008547936186172438,
    0.00012046302823051983,
    -1.4795442181747553e-05,
    1.5308562822113903e-06,
    -1.0473973244273793e-07,
)
_ERFC_Q32 = (
    -0.7823777936748982,
    0.32658466364132416,
    0.017190904754000372,
    -0.004760796646623343,
    -0.001008301220387397,
    0.00018131748498751332,
    6.431699166012942e-05,
    -1.1523843675436633e-05,
    -4.376315619808446e-06,
    1.0047425947137811e-06,
    2.8442329146928513e-07,
    -9.537373422269235e-08,
    -1.3679055589632672e-08,
    6.89103679674119e-09,
)


class _ErfTier:
    """Coefficients of one accuracy tier and the t → y map of its tail interval."""

    __slots__ = ("p", "q", "y_offset", "y_scale")

    def __init__(self, p: tuple[float, ...], q: tuple[float, ...], t_lo: float, t_hi: float):
        self.p = p
        self.q = q
        self.y_scale = 2.0 / (t_hi - t_lo)
        self.y_offset = -(t_hi + t_lo) / (t_hi - t_lo)


_ERF64 = _ErfTier(_ERF_P64, _ERFC_Q64, 2.0 / 29.0, 2.0 / 3.0)  # tail fit for a in [1, 27]
_ERF32 = _ErfTier(_ERF_P32, _ERFC_Q32, 2.0 / 12.0, 2.0 / 3.0)  # tail fit for a in [1, 10]
_ERF_BLOCK = 1 << 15  # elements per block: float64 scratch stays in cache


def _horner(x: np.ndarray, coefs: tuple[float, ...], out: np.ndarray) -> np.ndarray:
    """``out = Σ coefs[k]·x^k`` (Horner's scheme, in place)."""
    np.multiply(x, coefs[-1], out=out)
    out += coefs[-2]
    for c in coefs[-3::-1]:
        out *= x
        out += c
    return out


def _erfc_tail(z: np.ndarray, tier: _ErfTier) -> np.ndarray:
    """erfc(z) for float64 ``z`` ≥ 1 (a new array)."""
    t = z + 2.0
    np.divide(2.0, t, out=t)
    y = t * tier.y_scale
    y += tier.y_offset
    f = _horner(y, tier.q, np.empty_like(z))
    f -= z * z
    np.exp(f, out=f)
    f *= t
    return f


def _erf_family(x: np.ndarray, y: np.ndarray, gelu: bool) -> None:
    """``y = erf(x)`` or, with ``gelu``, ``y = x·Φ(x)`` (Φ the normal CDF), block by block.

    Per block, a = |x| (or |x|/√2): the polynomial branch runs on every element (with a clamped
    to 1, branch-free), then the elements with a ≥ 1 are gathered and overwritten from erfc.
    """
    tier = _ERF64 if x.dtype == np.float64 else _ERF32
    src = x.reshape(-1)
    direct = y.flags.c_contiguous
    dst = y.reshape(-1) if direct else np.empty(y.size, y.dtype)
    n = src.size
    size = min(n, _ERF_BLOCK)
    a, s, t, e = (np.empty(size) for _ in range(4))
    for start in range(0, n, _ERF_BLOCK):
        xb = src[start : start + _ERF_BLOCK]
        k = xb.size
        ab, sb, tb, eb = a[:k], s[:k], t[:k], e[:k]
        np.abs(xb, out=ab)
        if gelu:
            ab *= _SQRT1_2
        np.minimum(ab, 1.0, out=sb)
        np.multiply(sb, sb, out=tb)
        _horner(tb, tier.p, eb)
        eb *= sb  # erf(a) where a < 1 (NaN stays NaN)
        big = np.flatnonzero(ab >= 1.0)
        if gelu:  # Φ = (1 + sign(x)·erf(a))/2; from erfc(a) where a ≥ 1, without cancellation
            np.copysign(eb, xb, out=eb)
            eb *= 0.5
            eb += 0.5
            if big.size:
                c = _erfc_tail(ab[big], tier)
                c *= 0.5
                eb[big] = np.where(xb[big] >= 0, 1.0 - c, c)
            np.multiply(xb, eb, out=dst[start : start + k])
        else:
            if big.size:
                eb[big] = 1.0 - _erfc_tail(ab[big], tier)
            np.copysign(eb, xb, out=dst[start : start + k])
    if not direct:
        np.copyto(y, dst.reshape(y.shape))


# erf for float32/float16 results: erf(z) = z·P(z²)/Q(z²) with |z| clipped to 4 (beyond, erf
# rounds to ±1 in float32), evaluated in float64 by Horner's scheme. P and Q (both degree 7 in
# z²) are a rational fit made for openge (docs/decisions.md, "A rational erf for the NumPy
# kernels" and "BERT-tiny's GELU in NumPy"): relative error 8.3e-12 on [0, 4], so results are
# within 1 ulp of math.erf rounded and equal to it for all but ~1 in 10^4 inputs. All their
# terms have one sign, so Horner's sums do not cancel. Both are scaled so that Q is monic (its
# Horner starts with one addition). 32 passes over a block and no table reads (BERT-tiny's GELU
# spends nearly all its time here when numba is not loaded).
_ERF_RATIONAL_SCALE = 7.32986890638478e-08  # Q's leading coefficient before scaling
_ERF_RATIONAL_P = tuple(
    c / _ERF_RATIONAL_SCALE
    for c in (
        1.1283791670861367,
        0.2003457747898299,
        0.058118737013357825,
        0.0049622605847502235,
        0.0005130485150764933,
        2.178787099650105e-05,
        7.52791594261278e-07,
        3.004735406382451e-09,
    )
)
_ERF_RATIONAL_Q = tuple(
    c / _ERF_RATIONAL_SCALE
    for c in (
        1.0,
        0.5108851529172418,
        0.12180144433680817,
        0.017719166192912382,
        0.0017152470031428294,
        0.00011151762370992162,
        4.519201814129109e-06,
        _ERF_RATIONAL_SCALE,  # 1 after scaling: monic
    )
)
_ERF_RATIONAL_END = 4.0
_ERF_RATIONAL_BLOCK = 1 << 14  # elements per block: four float64 scratch rows stay in L2


def _horner_monic(x: np.ndarray, coefs: tuple[float, ...], out: np.ndarray) -> np.ndarray:
    """:func:`_horner` for ``coefs[-1] == 1``: one pass fewer."""
    np.add(x, coefs[-2], out=out)
    for c in coefs[-3::-1]:
        out *= x
        out += c
    return out


def _erf_narrow(x: np.ndarray, y: np.ndarray) -> None:
    """``y = erf(x)`` for float32/float16 ``y`` (any float ``x``), block by block."""
    src = x.reshape(-1)
    direct = y.flags.c_contiguous
    dst = y.reshape(-1) if direct else np.empty(y.size, y.dtype)
    size = min(src.size, _ERF_RATIONAL_BLOCK)
    z, t, p, q = (np.empty(size) for _ in range(4))
    for start in range(0, src.size, _ERF_RATIONAL_BLOCK):
        xb = src[start : start + _ERF_RATIONAL_BLOCK]
        k = xb.size
        zb, tb, pb, qb = z[:k], t[:k], p[:k], q[:k]
        np.clip(xb, -_ERF_RATIONAL_END, _ERF_RATIONAL_END, out=zb)  # NaN stays NaN
        np.multiply(zb, zb, out=tb)
        _horner(tb, _ERF_RATIONAL_P, pb)
        _horner_monic(tb, _ERF_RATIONAL_Q, qb)
        pb *= zb  # z·P keeps the sign of zero
        np.divide(pb, qb, out=pb)  # in float64, then one cast: a casting divide is 3x slower
        dst[start : start + k] = pb
    if not direct:
        np.copyto(y, dst.reshape(y.shape))


def _erf_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    if outputs[0].dtype in (np.float32, np.float16):
        _erf_narrow(inputs[0], outputs[0])
    else:
        _erf_family(inputs[0], outputs[0], gelu=False)


def _gelu_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    # CANN's Gelu is the tanh approximation (what a GE graph computes on the device).
    with np.errstate(over="ignore"):
        _store(outputs[0], _gelu_tanh(_work(inputs[0])))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    # 0.5·x·(1 + tanh(u)) = x / (1 + e^(-2u)): no cancellation where tanh(u) → -1; e^(-2u)
    # overflowing to inf gives the right limit, -0
    t = x * x
    t *= -2.0 * 0.044715 * _SQRT_2_PI
    t -= 2.0 * _SQRT_2_PI
    t *= x
    np.exp(t, out=t)
    t += 1.0
    return np.divide(x, t, out=t)


def _gelu_v2_kernel(
    inputs: list[np.ndarray], outputs: list[np.ndarray], *, approximate: str
) -> None:
    if approximate == "none":
        _erf_family(inputs[0], outputs[0], gelu=True)
    else:
        with np.errstate(over="ignore"):
            _store(outputs[0], _gelu_tanh(_work(inputs[0])))


# ----- activation kernels ----------------------------------------------------------------------


def _relu_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    x, y = inputs[0], outputs[0]
    if x.dtype.kind == "u":
        np.copyto(y, x)
    else:
        np.maximum(x, 0, out=y)


def _relu6_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    np.clip(inputs[0], 0, 6, out=outputs[0])


def _leaky_relu_kernel(
    inputs: list[np.ndarray], outputs: list[np.ndarray], *, negative_slope: float
) -> None:
    # max(x, s·x) is x for x > 0 and s·x otherwise when s ≤ 1; min(x, s·x) when s > 1.
    # s = 0 is Relu (max(x, 0)), which keeps +inf where inf·0 would give NaN.
    x, y = _work(inputs[0]), outputs[0]
    if negative_slope == 0.0:
        _relu_kernel([inputs[0]], outputs)
        return
    pick = np.maximum if negative_slope <= 1.0 else np.minimum
    if x is inputs[0]:
        np.multiply(x, negative_slope, out=y)
        pick(x, y, out=y)
    else:
        _store(y, pick(x, x * negative_slope))


@_quiet
def _sigmoid_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    x, y = inputs[0], outputs[0]
    if x.dtype == np.float16:
        _store(y, _sigmoid(_work(x)))
        return
    np.negative(x, out=y)
    np.exp(y, out=y)  # overflows to inf for very negative x: 1/(1+inf) = 0, as it should
    y += 1.0
    np.reciprocal(y, out=y)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    t = np.negative(x)
    np.exp(t, out=t)
    t += 1.0
    np.reciprocal(t, out=t)
    return t


def _elu(x: np.ndarray, *, alpha: float, scale: float, input_scale: float) -> np.ndarray:
    # scale·(max(x, 0) + alpha·expm1(input_scale·min(x, 0))): branch-free, never overflows
    neg = np.minimum(x, 0.0)
    neg *= input_scale
    np.expm1(neg, out=neg)
    neg *= alpha
    neg += np.maximum(x, 0.0)
    neg *= scale
    return neg


def _selu(x: np.ndarray) -> np.ndarray:
    return _elu(x, alpha=_SELU_ALPHA, scale=_SELU_SCALE, input_scale=1.0)


def _hard_sigmoid(x: np.ndarray, *, alpha: float, beta: float) -> np.ndarray:
    t = x * alpha
    t += beta
    return np.clip(t, 0.0, 1.0, out=t)


def _hard_swish(x: np.ndarray) -> np.ndarray:
    t = x + 3.0
    np.clip(t, 0.0, 6.0, out=t)
    t *= x
    t /= 6.0
    return t


def _swish(x: np.ndarray, *, scale: float) -> np.ndarray:
    t = _sigmoid(x * scale)
    t *= x
    return t


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)


def _softsign(x: np.ndarray) -> np.ndarray:
    t = np.abs(x)
    t += 1.0
    return np.divide(x, t, out=t)


def _mish(x: np.ndarray) -> np.ndarray:
    # tanh(ln(1 + e^x)) = n/(n + 2) with n = e^x·(e^x + 2); e^x is capped at e^20, where the
    # ratio is already 1, so nothing overflows
    e = np.minimum(x, 20.0)
    np.exp(e, out=e)
    n = e + 2.0
    n *= e
    d = n + 2.0
    n /= d
    n *= x
    return n


def _fast_gelu(x: np.ndarray) -> np.ndarray:
    # CANN's form x / (1 + e^{-1.702|x|}) · e^{0.851(x - |x|)} (= x·sigmoid(1.702x), no overflow)
    ax = np.abs(x)
    den = np.exp(ax * -1.702)
    den += 1.0
    num = x - ax
    num *= 0.851
    np.exp(num, out=num)
    num *= x
    return np.divide(num, den, out=num)


def _thresholded_relu(x: np.ndarray, *, alpha: float) -> np.ndarray:
    return np.where(x > alpha, x, np.zeros((), x.dtype))


def _prelu_weight(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The weight shaped to broadcast over x: a 1-D weight of x's channel count goes on axis 1."""
    if w.ndim == 1 and x.ndim >= 2 and w.size == x.shape[1] and w.size != 1:
        return w.reshape((-1,) + (1,) * (x.ndim - 2))
    return w


def _prelu_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    x, w = inputs
    y = outputs[0]
    w = _prelu_weight(x, w)
    if x.dtype == np.float16:
        xf = x.astype(np.float32)
        _store(y, np.where(xf > 0, xf, xf * w.astype(np.float32)))
        return
    np.multiply(x, w, out=y)
    np.copyto(y, x, where=x > 0)


def _infer_prelu(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, FLOATS)
    same_dtype(ctx, [0, 1])
    x, w = ctx.input(0), ctx.input(1)
    xs, ws = x.shape, w.shape
    channel = len(ws) == 1 and len(xs) >= 2 and _dims_match(ws[0], xs[1])
    if not channel and not all(d == 1 for d in ws):
        ok = len(ws) <= len(xs) and all(
            d == 1 or _dims_match(d, xs[len(xs) - len(ws) + i]) for i, d in enumerate(ws)
        )
        if not ok:
            raise ctx.error(
                f"weight shape {list(ws)} fits neither x's channel axis 1 (x is {list(xs)}) nor "
                "NumPy broadcasting to x",
                SHAPE_INVALID,
            )
    return [TensorDesc(x.dtype, xs, x.format, x.origin_format)]


# ----- selection, clipping, cast ---------------------------------------------------------------


def _infer_select(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, BOOLS)
    check_dtype(ctx, 1, ALL_TYPES)
    dtype = same_dtype(ctx, [1, 2])
    cond, x1, x2 = (ctx.input(i).shape for i in range(3))
    if not _shapes_match(x1, x2):
        raise ctx.error(f"x1 {list(x1)} and x2 {list(x2)} must have the same shape", SHAPE_INVALID)
    shape = tuple(b if a < 0 else a for a, b in zip(x1, x2, strict=True))
    rows = len(cond) == 1 and len(shape) >= 1 and _dims_match(cond[0], shape[0])
    if not (len(cond) == 0 or rows or _shapes_match(cond, shape)):
        first = shape[0] if shape else 1
        raise ctx.error(
            f"condition shape {list(cond)} must be x1's shape {list(shape)}, a scalar, or 1-D "
            f"of length {first} (selecting whole rows); use SelectV2 for broadcasting",
            SHAPE_INVALID,
        )
    return [_out_desc(ctx, dtype, shape, (1, 2))]


def _select_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    cond, x1, x2 = inputs
    y = outputs[0]
    if cond.ndim == 1 and y.ndim > 1:
        cond = cond.reshape((-1,) + (1,) * (y.ndim - 1))
    np.copyto(y, x2)
    np.copyto(y, x1, where=cond)


def _select_v2_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    y = outputs[0]
    np.copyto(y, inputs[2])
    np.copyto(y, inputs[1], where=inputs[0])


def _infer_select_v2(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, BOOLS)
    desc = _infer_broadcast(ALL_TYPES, 2, first=1)(ctx)[0]
    shape = broadcast_shapes(ctx, [ctx.input(0).shape, desc.shape])
    return [_out_desc(ctx, desc.dtype, shape, (1, 2, 0))]


def _clip_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    np.clip(inputs[0], inputs[1], inputs[2], out=outputs[0])


def _infer_cast(ctx: InferContext) -> Sequence[TensorDesc]:
    check_dtype(ctx, 0, ALL_TYPES)
    dst = ctx.attrs["dst_type"]
    if dst not in ALL_TYPES:
        raise ctx.error(
            f"attr dst_type = {dst.name} is not supported; Cast converts between "
            f"{type_names(ALL_TYPES)}",
            DATATYPE_INVALID,
        )
    d = ctx.input(0)
    return [TensorDesc(dst, d.shape, d.format, d.origin_format)]


def _float_to_int(x: np.ndarray, y: np.ndarray) -> None:
    """Truncate toward zero, saturating at the integer range; NaN → 0."""
    np.copyto(y, x, casting="unsafe")
    if x.size == 0:
        return
    info = np.iinfo(y.dtype)
    signed = y.dtype.kind == "i"
    lo = np.float64(info.min)
    hi = np.float64(2.0 ** (info.bits - 1) if signed else 2.0**info.bits)  # first value too big
    if x.min() >= lo and x.max() < hi:  # NaN fails both comparisons
        return
    np.copyto(y, info.max, where=x >= hi, casting="unsafe")
    np.copyto(y, info.min, where=x < lo, casting="unsafe")
    np.copyto(y, 0, where=np.isnan(x), casting="unsafe")


@_quiet
def _cast_kernel(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
    x, y = inputs[0], outputs[0]
    if y.dtype == np.bool_:
        np.not_equal(x, 0, out=y)
        return
    if x.dtype.kind == "c" and y.dtype.kind != "c":
        x = x.real
    if x.dtype.kind == "f" and y.dtype.kind in "iu":
        _float_to_int(x, y)
    else:
        np.copyto(y, x, casting="unsafe")


# ----- the catalog -----------------------------------------------------------------------------

_BASE_ATTRS = (
    Attr("base", AttrType.FLOAT, -1.0, doc="base of the power/logarithm; -1 means e"),
    Attr("scale", AttrType.FLOAT, 1.0, doc="multiplies x first"),
    Attr("shift", AttrType.FLOAT, 0.0, doc="added after scaling"),
)

_MATH = [
    _unary("Abs", np.absolute, REALS, "y = |x| (the most negative integer stays itself).", "Abs"),
    _unary("Neg", np.negative, SIGNED | COMPLEX_TYPES, "y = -x.", "Neg"),
    _unary("Square", np.square, NUMBERS, "y = x·x.", "Mul(x, x)"),
    _unary("Sqrt", np.sqrt, FLOATS, "y = √x (NaN for x < 0).", "Sqrt"),
    _unary("Rsqrt", _rsqrt_kernel, FLOATS, "y = 1/√x.", "Reciprocal(Sqrt(x))"),
    _unary("Reciprocal", np.reciprocal, FLOATS, "y = 1/x.", "Reciprocal"),
    _unary(
        "Exp",
        _exp_kernel,
        FLOATS,
        "y = base^(scale·x + shift); base -1 (the default) means e.",
        "Exp",
        attrs=_BASE_ATTRS,
        check=lambda ctx: _check_base(ctx, allow_one=True),
    ),
    _unary(
        "Log",
        _log_kernel,
        FLOATS,
        "y = log_base(shift + scale·x); base -1 (the default) means e.",
        "Log",
        attrs=_BASE_ATTRS,
        check=lambda ctx: _check_base(ctx, allow_one=False),
    ),
    _unary("Log1p", np.log1p, FLOATS, "y = ln(1 + x), accurate for small x.", "Log(Add(x, 1))"),
    _unary("Expm1", np.expm1, FLOATS, "y = e^x - 1, accurate for small x.", "Sub(Exp(x), 1)"),
    _unary(
        "Erf",
        _erf_kernel,
        FLOATS,
        "y = erf(x), the Gauss error function (openge's own float64 evaluation, see module doc).",
        "Erf",
    ),
    _unary("Floor", np.floor, FLOATS, "y = the largest integer ≤ x.", "Floor"),
    _unary("Ceil", np.ceil, FLOATS, "y = the smallest integer ≥ x.", "Ceil"),
    _unary(
        "Round",
        _round_kernel,
        FLOATS | {DataType.DT_INT32, DataType.DT_INT64},
        "y = x rounded to the nearest integer, halves to even (integers unchanged).",
        "Round",
    ),
    _unary("Sign", np.sign, SIGNED, "y = -1, 0 or 1 by the sign of x (NaN stays NaN).", "Sign"),
    _unary("Sin", np.sin, FLOATS, "y = sin(x).", "Sin"),
    _unary("Cos", np.cos, FLOATS, "y = cos(x).", "Cos"),
    _unary("Tan", np.tan, FLOATS, "y = tan(x).", "Tan"),
    _unary("Asin", np.arcsin, FLOATS, "y = arcsin(x) (NaN outside [-1, 1]).", "Asin"),
    _unary("Acos", np.arccos, FLOATS, "y = arccos(x) (NaN outside [-1, 1]).", "Acos"),
    _unary("Atan", np.arctan, FLOATS, "y = arctan(x).", "Atan"),
    _unary("Sinh", np.sinh, FLOATS, "y = sinh(x).", "Sinh"),
    _unary("Cosh", np.cosh, FLOATS, "y = cosh(x).", "Cosh"),
    _unary("Asinh", np.arcsinh, FLOATS, "y = arsinh(x).", "Asinh"),
    _unary("Acosh", np.arccosh, FLOATS, "y = arcosh(x) (NaN for x < 1).", "Acosh"),
    _unary("Atanh", np.arctanh, FLOATS, "y = artanh(x) (±inf at ±1, NaN outside).", "Atanh"),
    _unary("IsNan", np.isnan, FLOATS, "y = x is NaN.", "IsNaN", out=BOOL),
    _unary("IsInf", np.isinf, FLOATS, "y = x is +inf or -inf.", "IsInf", out=BOOL),
    _unary(
        "IsFinite",
        np.isfinite,
        FLOATS | INTS | BOOLS,
        "y = x is neither NaN nor infinite (always true for integers and bool).",
        "Not(Or(IsNaN(x), IsInf(x)))",
        out=BOOL,
    ),
    _unary("LogicalNot", np.logical_not, BOOLS, "y = not x.", "Not"),
    _unary("Invert", np.invert, INTS, "y = ~x (bitwise not).", "BitwiseNot"),
]

_ARITH = [
    _binary("Add", np.add, NUMBERS, "y = x1 + x2 (integers wrap around).", "Add"),
    _binary("AddV2", np.add, NUMBERS, "y = x1 + x2 (TensorFlow's AddV2; same as Add).", "Add"),
    _binary("Sub", np.subtract, NUMBERS, "y = x1 - x2.", "Sub"),
    _binary("Mul", np.multiply, NUMBERS, "y = x1 · x2.", "Mul"),
    _binary(
        "RealDiv",
        _real_div_kernel,
        NUMBERS,
        "y = x1 / x2; integers truncate toward zero (C division), x/0 gives 0 for integers.",
        "Div",
    ),
    _binary(
        "Div",
        _div_kernel,
        NUMBERS,
        "y = x1 / x2 for floats; integers round toward -inf (TensorFlow Div), x/0 gives 0.",
        "Div (floats) / Floor(Div) (integers)",
    ),
    _binary(
        "TruncateDiv",
        _truncate_div_kernel,
        REALS,
        "y = x1 / x2 rounded toward zero (floats too); integer x/0 gives 0.",
        "Div (integers)",
    ),
    _binary(
        "FloorDiv",
        _floor_div_kernel,
        REALS,
        "y = floor(x1 / x2); integer x/0 gives 0.",
        "Floor(Div(x1, x2))",
    ),
    _binary(
        "FloorMod",
        _floor_mod_kernel,
        REALS,
        "y = x1 - floor(x1/x2)·x2 (sign of x2, Python %); integer x%0 gives 0.",
        "Mod (fmod=0)",
    ),
    _binary(
        "Mod",
        _mod_kernel,
        REALS,
        "y = x1 - trunc(x1/x2)·x2 (sign of x1, C fmod); integer x%0 gives 0.",
        "Mod (fmod=1)",
    ),
    _binary(
        "Pow",
        _pow_kernel,
        REALS,
        "y = x1^x2; an integer to a negative power is truncated (1, ±1 for x1 = ±1, else 0).",
        "Pow",
    ),
    _binary("Maximum", np.maximum, REALS, "y = max(x1, x2) (NaN if either is NaN).", "Max"),
    _binary("Minimum", np.minimum, REALS, "y = min(x1, x2) (NaN if either is NaN).", "Min"),
    _binary(
        "SquaredDifference",
        _squared_difference_kernel,
        SIGNED,
        "y = (x1 - x2)².",
        "Mul(Sub(x1, x2), Sub(x1, x2))",
    ),
    OpSchema(
        "AddN",
        inputs=(Input("x", dynamic=True),),
        outputs=(Output("y"),),
        attrs=(Attr("N", AttrType.INT, doc="number of inputs x"),),
        infer=_infer_add_n,
        kernel=_add_n_kernel,
        doc="y = x0 + x1 + … (N inputs of one dtype, NumPy broadcasting).",
        onnx="Sum",
        traits=_EW,
    ),
]

_COMPARE = [
    _binary("Equal", np.equal, ALL_TYPES, "y = x1 == x2.", "Equal", out=BOOL),
    _binary("NotEqual", np.not_equal, ALL_TYPES, "y = x1 != x2.", "Not(Equal)", out=BOOL),
    _binary("Less", np.less, REALS, "y = x1 < x2.", "Less", out=BOOL),
    _binary("LessEqual", np.less_equal, REALS, "y = x1 <= x2.", "LessOrEqual", out=BOOL),
    _binary("Greater", np.greater, REALS, "y = x1 > x2.", "Greater", out=BOOL),
    _binary("GreaterEqual", np.greater_equal, REALS, "y = x1 >= x2.", "GreaterOrEqual", out=BOOL),
    _binary("LogicalAnd", np.logical_and, BOOLS, "y = x1 and x2.", "And"),
    _binary("LogicalOr", np.logical_or, BOOLS, "y = x1 or x2.", "Or"),
    _binary("BitwiseAnd", np.bitwise_and, INTS, "y = x1 & x2.", "BitwiseAnd"),
    _binary("BitwiseOr", np.bitwise_or, INTS, "y = x1 | x2.", "BitwiseOr"),
    _binary("BitwiseXor", np.bitwise_xor, INTS, "y = x1 ^ x2.", "BitwiseXor"),
    _binary(
        "LeftShift",
        np.left_shift,
        INTS,
        "z = x << y (a shift of the bit width or more gives 0).",
        "BitShift (LEFT)",
        names=("x", "y", "z"),
    ),
    _binary(
        "RightShift",
        np.right_shift,
        INTS,
        "z = x >> y, arithmetic for signed x (a shift of the bit width or more gives 0 or -1).",
        "BitShift (RIGHT)",
        names=("x", "y", "z"),
    ),
]

_SELECT = [
    OpSchema(
        "Select",
        inputs=(Input("condition"), Input("x1"), Input("x2")),
        outputs=(Output("y"),),
        infer=_infer_select,
        kernel=_select_kernel,
        doc="y = condition ? x1 : x2; x1 and x2 have one shape, condition has it too, is a "
        "scalar, or is 1-D and picks whole rows (TensorFlow's Select).",
        onnx="Where (condition reshaped for row selection)",
        traits=_EW,
    ),
    OpSchema(
        "SelectV2",
        inputs=(Input("condition"), Input("then"), Input("else")),
        outputs=(Output("result"),),
        infer=_infer_select_v2,
        kernel=_select_v2_kernel,
        doc="result = condition ? then : else, all three NumPy-broadcast together.",
        onnx="Where",
        traits=_EW,
    ),
    OpSchema(
        "ClipByValue",
        inputs=(Input("x"), Input("clip_value_min"), Input("clip_value_max")),
        outputs=(Output("y"),),
        infer=_infer_broadcast(REALS, 3),
        kernel=_clip_kernel,
        doc="y = min(max(x, clip_value_min), clip_value_max), NumPy broadcasting (NaN stays).",
        onnx="Clip",
        traits=_EW,
    ),
    OpSchema(
        "Cast",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(
            Attr("dst_type", AttrType.TYPE, doc="the output DataType (an int in CANN's prototype)"),
            Attr("truncate", AttrType.BOOL, False, doc="older prototypes' flag; ignored"),
        ),
        infer=_infer_cast,
        kernel=_cast_kernel,
        doc="y = x converted to dst_type: float → integer truncates toward zero and saturates "
        "(NaN → 0), → bool is x != 0, complex → real keeps the real part, integers wrap.",
        onnx="Cast",
        traits=_EW,
    ),
]

_ACTIVATIONS = [
    _unary("Relu", _relu_kernel, REALS, "y = max(x, 0).", "Relu"),
    _unary("Relu6", _relu6_kernel, REALS, "y = min(max(x, 0), 6).", "Clip(x, 0, 6)"),
    _unary(
        "LeakyRelu",
        _leaky_relu_kernel,
        FLOATS,
        "y = x for x > 0, negative_slope·x otherwise.",
        "LeakyRelu",
        attrs=(Attr("negative_slope", AttrType.FLOAT, 0.0),),
    ),
    _unary(
        "Elu",
        _lift(_elu),
        FLOATS,
        "y = scale·x for x > 0, scale·alpha·(e^(input_scale·x) - 1) otherwise.",
        "Elu",
        attrs=(
            Attr("alpha", AttrType.FLOAT, 1.0),
            Attr("scale", AttrType.FLOAT, 1.0),
            Attr("input_scale", AttrType.FLOAT, 1.0),
        ),
    ),
    _unary(
        "Selu",
        _lift(_selu),
        FLOATS,
        "y = λ·x for x > 0, λ·α·(e^x - 1) otherwise (α ≈ 1.6733, λ ≈ 1.0507).",
        "Selu",
    ),
    _unary("Sigmoid", _sigmoid_kernel, FLOATS, "y = 1 / (1 + e^-x).", "Sigmoid"),
    _unary(
        "HardSigmoid",
        _lift(_hard_sigmoid),
        FLOATS,
        "y = min(max(alpha·x + beta, 0), 1).",
        "HardSigmoid",
        attrs=(Attr("alpha", AttrType.FLOAT, 0.16666666), Attr("beta", AttrType.FLOAT, 0.5)),
        names=("input_x", "output_y"),
    ),
    _unary("Tanh", np.tanh, FLOATS, "y = tanh(x).", "Tanh"),
    _unary(
        "Gelu",
        _gelu_kernel,
        FLOATS,
        "y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), the tanh approximation CANN's Gelu "
        "kernel computes; GeluV2(approximate='none') gives the exact erf form.",
        "Gelu (approximate='tanh')",
    ),
    OpSchema(
        "GeluV2",
        inputs=(Input("x"),),
        outputs=(Output("y"),),
        attrs=(Attr("approximate", AttrType.STR, "none", choices=("none", "tanh")),),
        infer=_infer_unary(FLOATS),
        kernel=_gelu_v2_kernel,
        doc="y = x·Φ(x) ('none', erf form) or 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) ('tanh').",
        onnx="Gelu",
        traits=_EW,
    ),
    _unary(
        "FastGelu",
        _lift(_fast_gelu),
        FLOATS,
        "y = x / (1 + e^(-1.702|x|)) · e^(0.851(x - |x|)), i.e. x·sigmoid(1.702x).",
        "Mul(x, Sigmoid(Mul(x, 1.702)))",
    ),
    _unary(
        "Swish",
        _lift(_swish, quiet=True),
        FLOATS,
        "y = x·sigmoid(scale·x).",
        "Mul(x, Sigmoid(Mul(x, scale)))",
        attrs=(Attr("scale", AttrType.FLOAT, 1.0),),
    ),
    _unary("HardSwish", _lift(_hard_swish), FLOATS, "y = x·min(max(x + 3, 0), 6)/6.", "HardSwish"),
    _unary("Softplus", _lift(_softplus), FLOATS, "y = ln(1 + e^x), computed stably.", "Softplus"),
    _unary("Softsign", _lift(_softsign), FLOATS, "y = x / (1 + |x|).", "Softsign"),
    _unary("Mish", _lift(_mish), FLOATS, "y = x·tanh(ln(1 + e^x)).", "Mish"),
    _unary(
        "ThresholdedRelu",
        _lift(_thresholded_relu),
        FLOATS,
        "y = x for x > alpha, 0 otherwise.",
        "ThresholdedRelu",
        attrs=(Attr("alpha", AttrType.FLOAT, 1.0),),
    ),
    OpSchema(
        "PRelu",
        inputs=(Input("x"), Input("weight")),
        outputs=(Output("y"),),
        infer=_infer_prelu,
        kernel=_prelu_kernel,
        doc="y = x for x > 0, weight·x otherwise; a 1-D weight whose length is x's dim 1 applies "
        "per channel (axis 1), any other weight broadcasts to x NumPy-style.",
        onnx="PRelu",
        traits=_EW,
    ),
]

SCHEMAS: list[OpSchema] = [*_MATH, *_ARITH, *_COMPARE, *_SELECT, *_ACTIVATIONS]

__all__ = ["SCHEMAS"]
