"""Device weight layouts back to the origin layout (NumPy, no device code).

Layer: om. Ascend stores weights blocked for its cube unit (C0 = 16 for 2- and 4-byte types,
32 for 1-byte ones; the cube's N0 and H0 are 16):

- NC1HWC0: ``[N, C1, H, W, C0]``, channels split in blocks of C0 (zero padded);
- NC1HWC0_C04: the same with C0 = 4;
- FRACTAL_Z: ``[C1·H·W, N1, N0, C0]`` holding ``w[n1·N0+n0, c1·C0+c0, h, w]`` at
  ``[(c1·H+h)·W+w, n1, n0, c0]``;
- FRACTAL_Z_C04: C padded to 4, the (h, w, c) of each filter flattened and cut in blocks of
  C0: ``[K1, N1, N0, C0]`` holding ``m[n1·N0+n0, k1·C0+c0]`` where ``m[n, (h·W+w)·4+c]``;
- FRACTAL_NZ: ``[..., W1, H1, H0, W0]`` holding ``x[..., h1·H0+h0, w1·W0+w0]``;
- C1HWNCoC0 (depthwise filters): ``[C1, H, W, N, Co, C0]`` holding ``w[n, c1·C0+c0, h, w]``
  on the diagonal ``co == c0`` (zero elsewhere).

Each ``*_to_*`` function takes the device array and the origin dims, checks that they fit,
and returns the origin array (a copy); padding is dropped. Errors are GeError.
"""

from __future__ import annotations

import math

import numpy as np

from openge.om.device.binio import invalid

#: Device formats this module converts, by GE's layout name.
DEVICE_FORMATS = (
    "NC1HWC0",
    "NC1HWC0_C04",
    "FRACTAL_Z",
    "FRACTAL_Z_C04",
    "FRACTAL_NZ",
    "C1HWNCoC0",
)
_ORIGIN_4D = {
    "NCHW": (0, 1, 2, 3),
    "NHWC": (0, 2, 3, 1),
    "HWCN": (2, 3, 1, 0),
    "CHWN": (1, 2, 3, 0),
}


def _check(array: np.ndarray, expected: tuple[int, ...], what: str) -> None:
    if tuple(array.shape) != expected:
        raise invalid(f"{what}: device shape {list(array.shape)}, expected {list(expected)}")


def _blocks(array: np.ndarray, layout: str, *axes: int) -> tuple[int, ...]:
    """The block sizes (C0, N0, H0, W0 ...) at ``axes`` of a device array; GeError when one is
    0 (a file whose recorded device shape has a zero block dim holds no data to convert)."""
    sizes = tuple(int(array.shape[a]) for a in axes)
    if min(sizes) < 1:
        raise invalid(
            f"{layout} data of device shape {list(array.shape)} has a zero block size (the "
            f"last {len(axes)} dims must be at least 1); the weight's tensor desc is corrupt"
        )
    return sizes


def nc1hwc0_to_nchw(array: np.ndarray, n: int, c: int, h: int, w: int) -> np.ndarray:
    """``[N, C1, H, W, C0]`` → ``[N, C, H, W]``."""
    if array.ndim != 5:
        raise invalid(f"NC1HWC0 data of rank {array.ndim}")
    (c0,) = _blocks(array, "NC1HWC0", 4)
    _check(array, (n, math.ceil(c / c0), h, w, c0), "NC1HWC0")
    out = array.transpose(0, 1, 4, 2, 3).reshape(n, -1, h, w)
    return np.ascontiguousarray(out[:, :c])


def fractal_z_to_nchw(array: np.ndarray, n: int, c: int, h: int, w: int) -> np.ndarray:
    """``[C1·H·W, N1, N0, C0]`` → ``[N, C, H, W]``."""
    if array.ndim != 4:
        raise invalid(f"FRACTAL_Z data of rank {array.ndim}")
    n0, c0 = _blocks(array, "FRACTAL_Z", 2, 3)
    c1, n1 = math.ceil(c / c0), math.ceil(n / n0)
    _check(array, (c1 * h * w, n1, n0, c0), "FRACTAL_Z")
    out = array.reshape(c1, h, w, n1, n0, c0).transpose(3, 4, 0, 5, 1, 2)
    return np.ascontiguousarray(out.reshape(n1 * n0, c1 * c0, h, w)[:n, :c])


def fractal_z_c04_to_nchw(array: np.ndarray, n: int, c: int, h: int, w: int) -> np.ndarray:
    """``[K1, N1, N0, C0]`` (C padded to 4, HWC flattened) → ``[N, C, H, W]``."""
    if array.ndim != 4 or c > 4:
        raise invalid(f"FRACTAL_Z_C04 data of rank {array.ndim} for {c} channels (at most 4)")
    n0, c0 = _blocks(array, "FRACTAL_Z_C04", 2, 3)
    k1, n1 = math.ceil(4 * h * w / c0), math.ceil(n / n0)
    _check(array, (k1, n1, n0, c0), "FRACTAL_Z_C04")
    matrix = array.transpose(1, 2, 0, 3).reshape(n1 * n0, k1 * c0)[:n, : 4 * h * w]
    return np.ascontiguousarray(matrix.reshape(n, h, w, 4)[..., :c].transpose(0, 3, 1, 2))


def c1hwncoc0_to_nchw(array: np.ndarray, n: int, c: int, h: int, w: int) -> np.ndarray:
    """``[C1, H, W, N, Co, C0]`` (values on the co == c0 diagonal) → ``[N, C, H, W]``."""
    if array.ndim != 6:
        raise invalid(f"C1HWNCoC0 data of rank {array.ndim}")
    (c0,) = _blocks(array, "C1HWNCoC0", 5)
    _check(array, (math.ceil(c / c0), h, w, n, c0, c0), "C1HWNCoC0")
    diagonal = np.arange(c0)
    blocks = array[:, :, :, :, diagonal, diagonal]  # [C1, H, W, N, C0]
    out = blocks.transpose(3, 0, 4, 1, 2).reshape(n, -1, h, w)
    return np.ascontiguousarray(out[:, :c])


def fractal_nz_to_nd(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``[..., W1, H1, H0, W0]`` → the origin ``shape`` (rank ≥ 1; a vector is one row)."""
    if array.ndim < 4 or not shape:
        raise invalid(f"FRACTAL_NZ data of rank {array.ndim} for origin shape {list(shape)}")
    rows, cols = (1, shape[0]) if len(shape) == 1 else shape[-2:]
    batch = tuple(shape[:-2])
    h0, w0 = _blocks(array, "FRACTAL_NZ", -2, -1)
    w1, h1 = math.ceil(cols / w0), math.ceil(rows / h0)
    _check(array, (*batch, w1, h1, h0, w0), "FRACTAL_NZ")
    nb = len(batch)
    out = array.transpose(*range(nb), nb + 1, nb + 2, nb, nb + 3)
    out = out.reshape(*batch, h1 * h0, w1 * w0)[..., :rows, :cols]
    return np.ascontiguousarray(out.reshape(shape))


def nchw_to_origin(array: np.ndarray, origin_format: str) -> np.ndarray:
    """An NCHW array in ``origin_format`` (NCHW, NHWC, HWCN, CHWN; ND of rank 2 = (C, N))."""
    if origin_format == "ND":
        n, c, h, w = array.shape
        if h * w != 1:
            raise invalid(f"a 2-D origin for a filter of {h}x{w}")
        return np.ascontiguousarray(array.reshape(n, c).T)
    if origin_format not in _ORIGIN_4D:
        raise invalid(f"origin format {origin_format} for a 4-D weight")
    return np.ascontiguousarray(array.transpose(_ORIGIN_4D[origin_format]))


def origin_nchw_dims(origin_shape: tuple[int, ...], origin_format: str) -> tuple[int, ...]:
    """``(N, C, H, W)`` of an origin shape in ``origin_format`` (see :func:`nchw_to_origin`)."""
    if origin_format == "ND" and len(origin_shape) == 2:
        return (origin_shape[1], origin_shape[0], 1, 1)
    if origin_format not in _ORIGIN_4D or len(origin_shape) != 4:
        raise invalid(f"origin shape {list(origin_shape)} in {origin_format} is not 4-D")
    perm = _ORIGIN_4D[origin_format]
    dims = [0, 0, 0, 0]
    for axis, source in enumerate(perm):
        dims[source] = origin_shape[axis]
    return tuple(dims)


def to_origin(
    array: np.ndarray, device_format: str, origin_format: str, origin_shape: tuple[int, ...]
) -> np.ndarray:
    """Convert a device-layout array to ``origin_shape`` in ``origin_format``."""
    if any(d < 0 for d in origin_shape):
        raise invalid(
            f"origin shape {list(origin_shape)} of a {device_format} weight has a negative dim"
        )
    if device_format == "FRACTAL_NZ":
        return fractal_nz_to_nd(array, origin_shape)
    if device_format in ("NC1HWC0", "NC1HWC0_C04") and len(origin_shape) == 1:
        (c,) = origin_shape  # a per-channel vector (a bias, a scale): [1, C1, 1, 1, C0]
        return nc1hwc0_to_nchw(array, 1, c, 1, 1).reshape(c)
    dims = origin_nchw_dims(origin_shape, origin_format)
    if device_format in ("NC1HWC0", "NC1HWC0_C04"):
        nchw = nc1hwc0_to_nchw(array, *dims)
    elif device_format == "FRACTAL_Z":
        nchw = fractal_z_to_nchw(array, *dims)
    elif device_format == "FRACTAL_Z_C04":
        nchw = fractal_z_c04_to_nchw(array, *dims)
    elif device_format == "C1HWNCoC0":
        nchw = c1hwncoc0_to_nchw(array, *dims)
    else:
        raise invalid(f"device format {device_format} is not one openge converts")
    return nchw_to_origin(nchw, origin_format)


__all__ = [
    "DEVICE_FORMATS",
    "c1hwncoc0_to_nchw",
    "fractal_nz_to_nd",
    "fractal_z_c04_to_nchw",
    "fractal_z_to_nchw",
    "nc1hwc0_to_nchw",
    "nchw_to_origin",
    "origin_nchw_dims",
    "to_origin",
]
