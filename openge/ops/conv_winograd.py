"""Conv2D's Winograd path (ops layer): 3×3 stride-1 convolutions as F(2×2, 3×3) — the
transforms compiled (openge.kernels.winograd), the 16 tile products in BLAS.

It pays where the products dominate and the tiles are many: F(2×2, 3×3) does 16 multiplies per
(channel pair, tile) where im2col + GEMM does 36, and needs no im2col matrix. With few tiles
(7×7 outputs: 16 tiles) BLAS runs the skinny products below its im2col rate, so those stay on
the GEMM path. Its error is a few float32 ulps of each sum (tests/kernels/test_winograd.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from openge import kernels
from openge.kernels import blas

#: Output positions per sample below this stay on im2col + GEMM (few, skinny tile products).
MIN_POSITIONS = 14 * 14
#: Input or output channels below this stay on im2col + GEMM (transforms dominate).
MIN_CHANNELS = 16
#: Inputs with fewer elements run the whole convolution on the calling thread, products
#: included (bench/conv_threads.py, 2 threads, Xeon AVX-512: 16→64 channels at 54² 0.52 ms
#: vs 0.64 with the products split; 32→128 at 27² 0.35 vs 0.41).
PARALLEL_ELEMENTS = 1 << 17
#: Floats added to each of the 16 planes of the scratch buffers: a plane stride that is a
#: multiple of 4 KiB put all 16 streams of the transforms in the same cache sets (8x slower).
_SKEW = 16

_local = threading.local()


def _scratch(name: str, planes: int, size: int, dtype: np.dtype) -> np.ndarray:
    """A (planes, size) view of this thread's scratch buffer ``name`` (grown when needed):
    the tasks of one execute run one after another in one thread and share it."""
    key = (name, np.dtype(dtype).str)
    need = planes * (size + _SKEW)
    buf = getattr(_local, "bufs", None)
    if buf is None:
        buf = _local.bufs = {}
    have = buf.get(key)
    if have is None or have.size < need:
        have = buf[key] = np.empty(need, dtype=dtype)
    return have[:need].reshape(planes, size + _SKEW)[:, :size]


def prepare_winograd(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    pads: Sequence[int],
    constant_filter: bool,
) -> Callable[[], None] | None:
    """A closure computing the 3×3, stride-1, undilated, ungrouped NCHW convolution of ``x``
    with ``f`` (plus ``bias``) into ``y`` by Winograd F(2×2, 3×3), or None where it does not
    pay or apply (a filter that changes between runs, few channels or positions, numba
    missing)."""
    n, c, h, w = x.shape
    cout = f.shape[0]
    oh, ow = y.shape[2], y.shape[3]
    if (
        not constant_filter
        or f.shape[1:] != (c, 3, 3)
        or min(c, cout) < MIN_CHANNELS
        or oh * ow < MIN_POSITIONS
        or not x.flags.c_contiguous
        or y.dtype != np.float32  # float64 keeps the exact-order GEMM path
    ):
        return None
    from openge.ops.compiled import load, parts, warm

    module = load("winograd")
    if module is None:
        return None
    th, tw = -(-oh // 2), -(-ow // 2)
    tiles = th * tw
    pt, pl = pads[0], pads[2]
    if pt + h > 2 * th + 2 or pl + w > 2 * tw + 2:
        return None
    dtype = y.dtype
    u = module.filter_transform(f, dtype)
    b = np.zeros(cout, dtype=dtype) if bias is None else bias.reshape(cout).astype(dtype)
    xp = np.zeros((c, 2 * th + 2, 2 * tw + 2), dtype=dtype)  # the border stays zero
    v = _scratch("v", 16, c * tiles, dtype).reshape(16, c, tiles)
    m = _scratch("m", 16, cout * tiles, dtype).reshape(16, cout, tiles)
    parallel = c * h * w >= PARALLEL_ELEMENTS
    if not (
        warm(module.input_transform, xp, v, th, tw)
        and warm(module.output_transform, m, b, y[0], th, tw)
        and warm(module.input_transform_range, xp, v, th, tw, 0, c)
        and warm(module.output_transform_range, m, b, y[0], th, tw, 0, cout)
    ):
        return None
    samples = [(x[i], y[i]) for i in range(n)]
    interior = xp[:, pt : pt + h, pl : pl + w]

    def run() -> None:
        vv = _scratch("v", 16, c * tiles, dtype).reshape(16, c, tiles)
        mm = _scratch("m", 16, cout * tiles, dtype).reshape(16, cout, tiles)
        threads = kernels.get_num_threads()
        if parallel and threads > 1:
            # the transforms' channels shared by openge's threads (see ops.compiled.launcher)
            for xs, ys in samples:
                np.copyto(interior, xs)
                blas.parallel(
                    parts(module.input_transform_range, (xp, vv, th, tw), c, threads), threads
                )
                blas.matmul(u, vv, mm)
                blas.parallel(
                    parts(module.output_transform_range, (mm, b, ys, th, tw), cout, threads),
                    threads,
                )
        else:
            # all on this thread: splitting only the products would send half of the
            # transformed tiles to another core and back, slower than one core here
            with blas.single_blas:
                for xs, ys in samples:
                    np.copyto(interior, xs)
                    module.input_transform(xp, vv, th, tw)
                    np.matmul(u, vv, out=mm)
                    module.output_transform(mm, b, ys, th, tw)

    return run


__all__ = ["MIN_CHANNELS", "MIN_POSITIONS", "prepare_winograd"]
