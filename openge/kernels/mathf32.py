"""float32 math without libm calls, for compiled loops (kernels layer, numba): the loops that
use these vectorize (numba's ``math.exp`` is a scalar libm call per element).

Used by openge.kernels.codegen's generated programs (float32 Sigmoid, Swish, Tanh, tanh-GELU
and erf-GELU, the last in float64 inside), openge.kernels.softmax and the convolution
kernels' SiLU. Their polynomials step with :func:`fmuladd` (one FMA where the machine has
it): their loops are bound by the polynomial's chain of dependent multiply-adds, not by the
number of operations.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _bits_as_f32(typingctx, bits):  # pragma: no cover - compiled
    """The float32 whose bit pattern is the low 32 bits of the integer ``bits`` (a register
    move: vectorizes)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def _bits_as_f64(typingctx, bits):  # pragma: no cover - compiled
    """The float64 whose bit pattern is the int64 ``bits`` (a register move: vectorizes)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(bits), codegen


@intrinsic
def _f64_bits(typingctx, value):  # pragma: no cover - compiled
    """The bit pattern of the float64 ``value`` as an int64 (a register move: vectorizes)."""
    if value != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(value), codegen


@intrinsic
def fmuladd(typingctx, a, b, c):  # pragma: no cover - compiled
    """``a * b + c`` fused into one rounding where the machine has FMA, else a multiply and
    an add (LLVM's ``fmuladd``, which vectorizes either way). A polynomial in Horner's form
    then waits on one FMA latency per term instead of a multiply's and an add's. Mixed float
    widths compute in the widest, as ``a * b + c`` would (a float64 loop's float32 constants)."""
    if not all(isinstance(t, types.Float) for t in (a, b, c)):
        return None
    wide = max((a, b, c), key=lambda t: t.bitwidth)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(wide)
        fnty = ir.FunctionType(ty, [ty, ty, ty])
        fn = builder.module.declare_intrinsic("llvm.fmuladd", [ty], fnty=fnty)
        values = [context.cast(builder, v, t, wide) for v, t in zip(args, signature.args)]
        return builder.call(fn, values)

    return wide(a, b, c), codegen


@intrinsic
def _f32_bits(typingctx, value):  # pragma: no cover - compiled
    """The bit pattern of the float32 ``value`` as an int32 (a register move: vectorizes)."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(value), codegen


@njit(inline="always")
def _exp_clamped(a, top):  # pragma: no cover - compiled
    # float32 exp without libm, one branch-free pass that vectorizes: x clamped to [-87, top]
    # (NaN passes: every comparison with it is false), k = round(x / ln 2) by adding
    # 1.5·2^23 + 127 (the sum's low mantissa bits are then k + 127, the exponent field of
    # 2**k), r = x - k ln 2 (two-part ln 2), Cephes' degree-7 polynomial (about 1 ulp), times
    # 2**k from those bits shifted into place: k + 127 is in [1, 254] for top 88 (a normal
    # float, exact) and 255 — inf — where top 89 lets x round to k = 128. No float → int
    # conversion (LLVM's is poison for NaN, so it needed selects around it): a NaN's shifted
    # bits are 0 and its polynomial NaN. Every step a fmuladd. On an AVX2 Zen 3 core 0.50 ns
    # per element (0.57 with the conversion and its selects), within 1 ulp.
    v = np.float32(a)  # (a float64 loop's never-taken float32 branch still compiles)
    x = np.float32(-87.0) if v < np.float32(-87.0) else v
    x = top if x > top else x
    magic = np.float32(12583039.0)
    shifted = fmuladd(x, np.float32(1.44269504), magic)
    n = shifted - magic
    r = fmuladd(n, np.float32(-0.693359375), x)
    r = fmuladd(n, np.float32(2.12194440e-4), r)
    p = fmuladd(np.float32(1.9875691500e-4), r, np.float32(1.3981999507e-3))
    p = fmuladd(p, r, np.float32(8.3334519073e-3))
    p = fmuladd(p, r, np.float32(4.1665795894e-2))
    p = fmuladd(p, r, np.float32(1.6666665459e-1))
    p = fmuladd(p, r, np.float32(5.0000001201e-1))
    p = fmuladd(p, r * r, r) + np.float32(1.0)
    return p * _bits_as_f32(_f32_bits(shifted) << 23)


@njit(inline="always")
def exp32(a):  # pragma: no cover - compiled
    # exp(x) for float32 x within 1 ulp over [-87, 88]; clamped there (finite at +inf, a
    # normal float at -inf), NaN stays NaN
    return _exp_clamped(a, np.float32(88.0))


@njit(inline="always")
def sigmoid32(a):  # pragma: no cover - compiled
    # 1 / (1 + e^-a): e^-a overflows to inf from a ≈ -88.4 (true sigmoid below 4e-39 there),
    # so the result is 0 as NumPy's 1/(1+inf); NaN stays NaN
    return np.float32(1.0) / (np.float32(1.0) + _exp_clamped(-a, np.float32(89.0)))


@njit(inline="always")
def silu32(a):  # pragma: no cover - compiled
    # a·sigmoid(a) as a / (1 + e^-a): one division, no multiply (0.67 ns per element on an
    # AVX2 Zen 3 core against 0.92 for a * sigmoid32(a)). -inf gives NaN as -inf·0 does,
    # +inf gives +inf, below -88.4 a signed zero.
    return a / (np.float32(1.0) + _exp_clamped(-a, np.float32(89.0)))


#: tanh's odd Taylor coefficients, x¹ … x¹⁹ (2²ⁿ(2²ⁿ - 1)·B₂ₙ / (2n)!), for |x| < 0.55 (the
#: next term is below 4e-10 there)
_T3, _T5, _T7, _T9, _T11 = -1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925
_T13, _T15 = 21844 / 6081075, -929569 / 638512875
_T17, _T19 = 6404582 / 10854718875, -443861162 / 1856156927625


@njit(inline="always")
def tanh32(a):  # pragma: no cover - compiled
    # |x| < 0.55: the odd Taylor series (no cancellation near 0); beyond, (1 - t) / (1 + t)
    # with t = exp(-2|x|) ≤ 0.34, so 1 - t loses under half a bit; both branches computed,
    # one kept (branch-free: vectorizes). Within 2 ulp of float64's tanh.
    m = abs(a)
    q = m * m
    p = fmuladd(np.float32(_T19), q, np.float32(_T17))
    p = fmuladd(p, q, np.float32(_T15))
    p = fmuladd(p, q, np.float32(_T13))
    p = fmuladd(p, q, np.float32(_T11))
    p = fmuladd(p, q, np.float32(_T9))
    p = fmuladd(p, q, np.float32(_T7))
    p = fmuladd(p, q, np.float32(_T5))
    p = fmuladd(p, q, np.float32(_T3))
    small = fmuladd(m * q, p, m)
    t = exp32(np.float32(-2.0) * m)
    large = (np.float32(1.0) - t) / (np.float32(1.0) + t)
    r = math.copysign(small if m < np.float32(0.55) else large, a)  # -0.0 stays -0.0
    return r if a == a else a


@njit(inline="always")
def gelu_tanh32(a):  # pragma: no cover - compiled
    # 0.5·x·(1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi)·(x + 0.044715·x³): one exp32
    t = fmuladd(a * a, np.float32(-0.0713548162726008), np.float32(-1.5957691216057308))
    return a / (np.float32(1.0) + exp32(t * a))


#: erfc(z) = t·exp(-z² + P(s)), t = 2 / (2 + z), s = S1·t + S0 (t's range [2/12.6, 1] mapped to
#: [-1, 1]): P is the degree-12 least-squares Chebyshev fit of log(erfc(z)·e^(z²) / t) on
#: 4,000 Chebyshev nodes of t for z in [0, 10.6] (reference math.erfc), written out in powers
#: of s. Its largest error on 200,001 points is 1.7e-10, a relative error of erfc (the
#: form of Numerical Recipes' erfcc, there to 1.2e-7 with ten terms).
_ERFC_S1, _ERFC_S0 = 2.3773584905660377, -1.3773584905660377
_ERFC_P = (
    -0.56402539438406, 0.5754277993155501, 0.016903768244261198, -0.030277064780414184,
    -0.0012678212678711369, 0.003909327698582635, -0.00026252519653452476,
    -0.0005965453603920052, 0.00015217975974082102, 7.777348283160845e-05,
    -4.1322768367490654e-05, -5.8700217934e-06, 5.695449521452382e-06,
)  # fmt: skip
_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7, _P8, _P9, _P10, _P11, _P12 = _ERFC_P
#: 1/k! for the exponential's Taylor polynomial, k = 0 .. 8
_E2, _E3, _E4, _E5, _E6, _E7, _E8 = (1.0 / math.factorial(k) for k in range(2, 9))


@njit(inline="always")
def _exp_below_one(a):  # pragma: no cover - compiled
    # float64 exp for a in [-708, 1] (the caller's a is above -130), without libm or a table:
    # k = round(a / ln 2) by adding 1.5·2^52 (its low mantissa bits are then k), r = a - k·ln 2
    # (two-part ln 2, |r| <= ln 2 / 2), a degree-8 Taylor polynomial (relative error < 2e-10;
    # in Estrin's scheme, as gelu_erf32's P) times 2**k, whose exponent field k + 1023 is the
    # low 12 bits of the sum's bits + 1023
    magic = 6755399441055744.0
    shifted = fmuladd(a, 1.4426950408889634, magic)
    k = shifted - magic
    r = fmuladd(k, -0.6931471803691238, a)
    r = fmuladd(k, -1.9082149292705877e-10, r)
    r2 = r * r
    r4 = r2 * r2
    low = fmuladd(fmuladd(r, _E3, _E2), r2, r + 1.0)
    high = fmuladd(fmuladd(r, _E7, _E6), r2, fmuladd(r, _E5, _E4))
    p = fmuladd(fmuladd(_E8, r4, high), r4, low)
    return p * _bits_as_f64((_f64_bits(shifted) + 1023) << 52)


#: Where gelu_erf32's erfc stops: GELU's x·Φ(x) is below half of float32's smallest
#: subnormal beyond it (erfc(10.5) ≈ 1.1e-49)
GELU_ERFC_END = 10.5


@njit(inline="always")
def gelu_erf32(a):  # pragma: no cover - compiled
    # 0.5·x·(1 + erf(x/√2)) = x·(1 - erfc(z)/2) for x >= 0 and x·erfc(z)/2 below, z = |x|/√2,
    # in float64 without a table (gathers) or libm call: the loop vectorizes. erfc is
    # t·exp(-z² + P(s)) (see _ERFC_P; P in Estrin's scheme, its chain of dependent FMAs 5
    # deep instead of 12: 5-14 % faster on an AVX2 Zen 3) to ~4e-10 relative: the float32
    # result is within 0.51 ulp of the exact one. Beyond GELU_ERFC_END the erfc is taken as
    # 0: x for large x, a signed zero for large negative x, NaN for -inf (as -inf·0); NaN
    # stays NaN.
    v = np.float64(a)
    z = abs(v) * 0.7071067811865476
    inside = z < GELU_ERFC_END
    z = z if inside else GELU_ERFC_END
    t = 2.0 / (2.0 + z)
    s = fmuladd(t, _ERFC_S1, _ERFC_S0)
    s2 = s * s
    s4 = s2 * s2
    p03 = fmuladd(fmuladd(s, _P3, _P2), s2, fmuladd(s, _P1, _P0))
    p47 = fmuladd(fmuladd(s, _P7, _P6), s2, fmuladd(s, _P5, _P4))
    p811 = fmuladd(fmuladd(s, _P11, _P10), s2, fmuladd(s, _P9, _P8))
    p = fmuladd(fmuladd(_P12, s4, p811), s4 * s4, fmuladd(p47, s4, p03))
    erfc = t * _exp_below_one(fmuladd(-z, z, p))
    below = v < 0.0
    w = erfc if below else 2.0 - erfc
    w = w if (inside or not below) else 0.0
    return 0.5 * v * w


__all__ = ["exp32", "fmuladd", "gelu_erf32", "gelu_tanh32", "sigmoid32", "silu32", "tanh32"]
