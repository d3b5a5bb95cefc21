"""float32 math without libm calls, for compiled loops (kernels layer, numba): the loops that
use these vectorize (numba's ``math.exp`` is a scalar libm call per element).

Used by openge.kernels.codegen's generated programs and the convolution kernels' SiLU.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always")
def exp32(a):  # pragma: no cover - compiled
    # float32 exp without libm (vectorizes): x clamped to [-87, 88] (NaN passes), k = round(x /
    # ln 2), r = x - k ln 2 (two-part ln 2), Cephes' degree-7 polynomial (about 1 ulp), times
    # (or over) 2**|k| as a product of selected powers 2**(2**i) (exact: no table, no bit casts)
    x = a
    x = np.float32(-87.0) if x < np.float32(-87.0) else x
    x = np.float32(88.0) if x > np.float32(88.0) else x
    z = x * np.float32(1.44269504)
    k = np.int32(z + np.float32(0.5)) if z >= np.float32(0.0) else np.int32(z - np.float32(0.5))
    k = k if x == x else np.int32(0)
    n = np.float32(k)
    r = x - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
    m = -k if k < 0 else k
    one = np.float32(1.0)
    t = (np.float32(2.0) if m & 1 else one) * (np.float32(4.0) if m & 2 else one)
    t = t * (np.float32(16.0) if m & 4 else one) * (np.float32(256.0) if m & 8 else one)
    t = t * (np.float32(65536.0) if m & 16 else one)
    t = t * (np.float32(4294967296.0) if m & 32 else one)
    t = t * (np.float32(1.8446744073709552e19) if m & 64 else one)
    return p * t if k >= 0 else p / t


@njit(inline="always")
def sigmoid32(a):  # pragma: no cover - compiled
    # below -88.7 the true value is under float32's normal range: 0, as NumPy's 1/(1+inf)
    s = np.float32(1.0) / (np.float32(1.0) + exp32(-a))
    return np.float32(0.0) if a < np.float32(-88.7) else s


__all__ = ["exp32", "sigmoid32"]
