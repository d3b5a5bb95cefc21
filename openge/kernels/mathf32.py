"""float32 math without libm calls, for compiled loops (kernels layer, numba): the loops that
use these vectorize (numba's ``math.exp`` is a scalar libm call per element).

Used by openge.kernels.codegen's generated programs (float32 Sigmoid, Swish, Tanh and
tanh-GELU), openge.kernels.softmax and the convolution kernels' SiLU.
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


@njit(inline="always")
def exp32(a):  # pragma: no cover - compiled
    # float32 exp without libm, one branch-free pass that vectorizes: x clamped to [-87, 88]
    # (NaN passes through at the end), k = round(x / ln 2) by the 1.5·2^23 magic add,
    # r = x - k ln 2 (two-part ln 2), Cephes' degree-7 polynomial (about 1 ulp), times 2**k
    # built from its exponent bits (k + 127 in [1, 254]: a normal float, exact)
    x = a
    x = np.float32(-87.0) if x < np.float32(-87.0) else x
    x = np.float32(88.0) if x > np.float32(88.0) else x
    x = x if a == a else np.float32(0.0)
    magic = np.float32(12582912.0)
    n = (x * np.float32(1.44269504) + magic) - magic
    r = x - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
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
    p = np.float32(_T19) * q + np.float32(_T17)
    p = p * q + np.float32(_T15)
    p = p * q + np.float32(_T13)
    p = p * q + np.float32(_T11)
    p = p * q + np.float32(_T9)
    p = p * q + np.float32(_T7)
    p = p * q + np.float32(_T5)
    p = p * q + np.float32(_T3)
    small = m + m * q * p
    t = exp32(np.float32(-2.0) * m)
    large = (np.float32(1.0) - t) / (np.float32(1.0) + t)
    r = math.copysign(small if m < np.float32(0.55) else large, a)  # -0.0 stays -0.0
    return r if a == a else a


@njit(inline="always")
def gelu_tanh32(a):  # pragma: no cover - compiled
    # 0.5·x·(1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi)·(x + 0.044715·x³): one exp32
    t = a * a * np.float32(-0.0713548162726008) - np.float32(1.5957691216057308)
    return a / (np.float32(1.0) + exp32(t * a))


__all__ = ["exp32", "gelu_tanh32", "sigmoid32", "tanh32"]
