"""float32 math without libm calls, for compiled loops (kernels layer, numba): the loops that
use these vectorize (numba's ``math.exp`` is a scalar libm call per element).

Used by openge.kernels.codegen's generated programs (float32 Sigmoid, Swish, Tanh and
tanh-GELU), openge.kernels.softmax and the convolution kernels' SiLU. Their polynomials step
with :func:`fmuladd` (one FMA where the machine has it): their loops are bound by the
polynomial's chain of dependent multiply-adds, not by the number of operations.
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


@njit(inline="always")
def exp32(a):  # pragma: no cover - compiled
    # float32 exp without libm, one branch-free pass that vectorizes: x clamped to [-87, 88]
    # (NaN passes through at the end), k = round(x / ln 2) by the 1.5·2^23 magic add,
    # r = x - k ln 2 (two-part ln 2), Cephes' degree-7 polynomial (about 1 ulp), times 2**k
    # built from its exponent bits (k + 127 in [1, 254]: a normal float, exact). Every step
    # a fmuladd: on an AVX2 Zen 3 core 0.83 → 0.57 ns per element, still within 1 ulp.
    x = a
    x = np.float32(-87.0) if x < np.float32(-87.0) else x
    x = np.float32(88.0) if x > np.float32(88.0) else x
    x = x if a == a else np.float32(0.0)
    magic = np.float32(12582912.0)
    n = fmuladd(x, np.float32(1.44269504), magic) - magic
    r = fmuladd(n, np.float32(-0.693359375), x)
    r = fmuladd(n, np.float32(2.12194440e-4), r)
    p = fmuladd(np.float32(1.9875691500e-4), r, np.float32(1.3981999507e-3))
    p = fmuladd(p, r, np.float32(8.3334519073e-3))
    p = fmuladd(p, r, np.float32(4.1665795894e-2))
    p = fmuladd(p, r, np.float32(1.6666665459e-1))
    p = fmuladd(p, r, np.float32(5.0000001201e-1))
    p = fmuladd(p, r * r, r) + np.float32(1.0)
    scale = _bits_as_f32((np.int32(n) + 127) << 23)
    return p * scale if a == a else a


@njit(inline="always")
def sigmoid32(a):  # pragma: no cover - compiled
    # below -88.7 the true value is under float32's normal range: 0, as NumPy's 1/(1+inf)
    s = np.float32(1.0) / (np.float32(1.0) + exp32(-a))
    return np.float32(0.0) if a < np.float32(-88.7) else s


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


__all__ = ["exp32", "fmuladd", "gelu_tanh32", "sigmoid32", "tanh32"]
