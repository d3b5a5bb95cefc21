"""Conv2D's Winograd path (ops layer): 3×3 stride-1 convolutions as F(2×2, 3×3) or, on planes
of F4_POSITIONS outputs or more, F(4×4, 3×3) — the transforms and the tile products compiled
(openge.kernels.winograd and winograd4; the products on openge.kernels.gemm's micro-kernel,
the input transform writing the tiles straight into its panel layout: 1.2-2× faster than
numpy's OpenBLAS on the same products, which packs both operands on every call).

It pays where the products dominate and the tiles are many: F(2×2, 3×3) does 16 multiplies per
(channel pair, tile of 4 outputs) and F(4×4, 3×3) 36 per tile of 16, where im2col + GEMM does
9 per output, and neither needs an im2col matrix. With few tiles (7×7 outputs: 16 tiles) BLAS
runs the skinny products below its im2col rate, so those stay on the GEMM path. F(2×2, 3×3)'s
error is a few float32 ulps of each sum (tests/kernels/test_winograd.py), F(4×4, 3×3)'s a few
times that (tests/kernels/test_winograd4.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openge import kernels

#: Output positions per sample below this stay on im2col + GEMM (few, skinny tile products).
MIN_POSITIONS = 14 * 14
#: ... or below this where the CPU has 512-bit vectors (:func:`min_positions`). On an AVX-512
#: Zen 4 core 13² planes won against im2row's tiles, per-step minima in the models, one
#: thread: squeezenet's 64 → 256 0.75-0.76 and 48 → 192 0.82-0.90 (two threads 0.74-0.88);
#: inception_v1's 96-160 → 208-320 0.77-0.96, that model as a whole within noise. alexnet's
#: 12² planes lost (1.01-1.04) and 7² ones clearly (resnet18's 512 → 512 1.26-1.34).
MIN_POSITIONS_WIDE = 13 * 13
#: Output channels below this stay on im2col + GEMM (transforms dominate).
MIN_CHANNELS = 16
#: Input channels below this too: the 16 products then have a short K (squeezenet's 16 → 64
#: 3×3 at 55²: 0.75 ms here, 0.63 on im2col panels; 32 → 128 at 27²: 0.61 against 0.47),
#: while densenet's 128 → 32 keeps Winograd (53 ms at 2 threads against 58 without).
MIN_INPUT_CHANNELS = 48
#: Transformed filters (16·Cout·C floats) up to this size take the chunked kernel: read once
#: per chunk, they stay in L2. Larger ones (256+ channels, which come with small planes) run
#: plane by plane so that each plane's filter is read once.
CHUNK_FILTER_BYTES = 1 << 20
#: Bytes of transformed tiles and products (V and M) per chunk of whole tile rows: they stay
#: in L2 between steps.
CHUNK_BYTES = 2 << 20
#: Products (flops) from which the chunks are shared by openge's threads.
SPLIT_FLOPS = 2_000_000
#: Output positions per sample from which the tiles are 4×4 (F(4×4, 3×3): 2.25 multiplies
#: per output against F(2×2, 3×3)'s 4, with a few times its rounding error). Alone it is
#: faster from 28² (128 → 128: 0.96 → 0.85 ms on one Xeon core), but in the models only from
#: 56² (vgg19's 56²-224² stages 10-25 %, resnet18's 56² 2-8 %; its 28² ones 4-7 % slower).
F4_POSITIONS = 56 * 56
#: Transformed filters up to this size take F(4×4, 3×3): each chunk reads the whole filter,
#: and past L3's share a chunk waits on memory (512 → 512 at 28²: 11.7 ms with 2×2 tiles
#: plane by plane, 17.0 with 4×4 tiles in chunks, on one Xeon core; 256 → 256: 3.30 → 2.74).
F4_FILTER_BYTES = 16 << 20


def suitable(
    x: np.ndarray, f: np.ndarray, y: np.ndarray, pads: Sequence[int], constant_filter: bool
) -> bool:
    """Whether :func:`prepare_winograd` takes this 3×3 stride-1 undilated convolution (given
    numba): a constant float32 filter, enough channels and output positions, an output that
    the 2×2 tiles of the padded input cover."""
    c, h, w = x.shape[1:]
    cout = f.shape[0]
    oh, ow = y.shape[2], y.shape[3]
    m = tile_size(oh, ow, c, cout)
    th, tw = -(-oh // m), -(-ow // m)
    return (
        constant_filter
        and f.shape[1:] == (c, 3, 3)
        and cout >= MIN_CHANNELS
        and c >= MIN_INPUT_CHANNELS
        and x.flags.c_contiguous
        and y.dtype == np.float32  # float64 keeps the exact-order GEMM path
        and x.dtype == np.float32
        and pads[0] + h <= m * th + 2
        and pads[2] + w <= m * tw + 2
        # last: the vector width is asked only for a plane between the two limits (such a
        # convolution loads compiled kernels on any path)
        and (
            oh * ow >= MIN_POSITIONS
            or (oh * ow >= MIN_POSITIONS_WIDE and oh * ow >= min_positions())
        )
    )


def min_positions() -> int:
    """Fewest output positions per sample of a Winograd convolution, for this CPU's vector
    width (MIN_POSITIONS_WIDE with 512-bit vectors, else MIN_POSITIONS; MIN_POSITIONS too
    when compiled kernels are off or numba is missing)."""
    from openge.ops.compiled import wide_vectors

    return MIN_POSITIONS_WIDE if wide_vectors() else MIN_POSITIONS


def tile_size(oh: int, ow: int, c: int, cout: int) -> int:
    """The output tile side: 4 (F(4×4, 3×3), openge.kernels.winograd4) for planes of at least
    F4_POSITIONS outputs whose transformed filter (36·Cout·C floats) is at most
    F4_FILTER_BYTES, else 2 (F(2×2, 3×3))."""
    if oh * ow >= F4_POSITIONS and 36 * 4 * c * cout <= F4_FILTER_BYTES:
        return 4
    return 2


def prepare_winograd(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    pads: Sequence[int],
    constant_filter: bool,
    residual: np.ndarray | None = None,
    act: tuple[int, float, float] = (0, 0.0, 0.0),
) -> Callable[[], None] | None:
    """A closure computing ``act(conv(x, f) + bias [+ residual])`` — the 3×3, stride-1,
    undilated, ungrouped NCHW convolution by Winograd F(2×2, 3×3), its epilogue (an
    openge.kernels.depthwise activation code and bounds) applied as each output is made —
    into ``y``, or None where it does not pay or apply (a filter that changes between runs,
    few channels or positions, a residual of another shape or overlapping ``y``, numba
    missing)."""
    if not suitable(x, f, y, pads, constant_filter) or (
        residual is not None
        and (
            residual.shape != y.shape or residual.dtype != y.dtype or np.shares_memory(residual, y)
        )
    ):
        return None
    from openge.kernels.allocator import release_pages
    from openge.ops.compiled import load, thread_scratch, warm

    n, c = x.shape[:2]
    cout = f.shape[0]
    oh, ow = y.shape[2], y.shape[3]
    size = tile_size(oh, ow, c, cout)
    module = load("winograd4" if size == 4 else "winograd")
    if module is None:
        return None
    th, tw = -(-oh // size), -(-ow // size)
    tiles = th * tw
    pt, pl = pads[0], pads[2]
    dtype = y.dtype
    u = module.filter_transform(f, dtype)
    b = np.zeros(cout, dtype=dtype) if bias is None else bias.reshape(cout).astype(dtype)
    # per sample: input, output, residual (the output itself when there is none: not read)
    samples = [(x[i], y[i], y[i] if residual is None else residual[i]) for i in range(n)]
    code, lo, hi = act
    finish = (b, residual is not None, code, np.float32(lo), np.float32(hi))
    chunked = _chunked(module, (pt, pl), u, finish, samples, (th, tw))
    if chunked is None:
        return None
    by_chunks, splits = chunked
    release_pages(f)  # U is read from now on (an .om's pages come back from the file if not)
    if u.nbytes <= CHUNK_FILTER_BYTES or not splits or size == 4:
        return by_chunks
    # a large filter: plane by plane on one thread (each plane's filter read once); chunks
    # when shared by the threads — the same sums in the same order either way
    panels = -(-tiles // module.NR)
    vlen = panels * c * module.NR
    v2 = thread_scratch("vp", 16, vlen, dtype)
    slab_shape = (c, 2 * th + 2, 2 * tw + 2)
    slab_floats = int(np.prod(slab_shape))
    m = thread_scratch("m", 16, cout * tiles, dtype).reshape(16, cout, tiles)
    if not (
        warm(module.input_panels, x[0], (pt, pl), _slab(slab_floats, slab_shape), v2, th, tw)
        and warm(module.products, u, v2, m)
        and warm(module.output_transform, m, b, y[0], y[0], *finish[1:], th, tw)
    ):
        return None

    def run() -> None:
        if kernels.get_num_threads() > 1:
            by_chunks()
            return
        vv = thread_scratch("vp", 16, vlen, dtype)
        mm = thread_scratch("m", 16, cout * tiles, dtype).reshape(16, cout, tiles)
        for xs, ys, rs in samples:
            module.input_panels(xs, (pt, pl), _slab(slab_floats, slab_shape), vv, th, tw)
            module.products(u, vv, mm)
            module.output_transform(mm, b, ys, rs, *finish[1:], th, tw)

    return run


def _chunked(
    module: Any,
    pads: tuple[int, int],
    u: np.ndarray,
    finish: tuple,
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    tiles_hw: tuple[int, int],
) -> tuple[Callable[[], None], bool] | None:
    """The convolution chunk by chunk (openge.kernels.winograd.convolve: a few tile panels
    through the input transform, the 16 products and the output transform while they are in
    cache), chunks shared by openge's thread team when big enough — each thread on its own
    stretch of the image — and whether it is; None when it does not compile."""
    from openge.kernels import team
    from openge.ops.compiled import warm, warm_drive

    planes, cout, c = u.shape
    th, tw = tiles_hw
    rows = _chunk_rows(th, tw, c + cout, module.NR, planes)
    total = -(-th // rows)
    floats = module.chunk_floats(c, cout, module.chunk_panels(tw, rows), rows, tw)
    b, *epilogue = finish
    probe = (samples[0][0], pads, u, b, samples[0][1], samples[0][2], *epilogue, th, tw, rows)
    probe = (*probe, _work(floats))
    if not (warm(module.convolve, *probe) and warm_drive(module.convolve_drive, *probe, total)):
        return None
    big = 2 * planes * cout * c * th * tw >= SPLIT_FLOPS and total > 1
    get = kernels.get_num_threads
    whole, drive = module.convolve, module.convolve_drive

    def run() -> None:
        work = _work(floats)
        threads = min(get(), total) if big else 1
        for xs, ys, rs in samples:
            args = (xs, pads, u, b, ys, rs, *epilogue, th, tw, rows, work)
            if threads > 1:
                team.run(drive, whole, args, total, threads * team.PARTS_PER_THREAD, threads)
            else:
                whole(*args)

    return run, big


def _chunk_rows(th: int, tw: int, channels: int, nr: int, planes: int = 16) -> int:
    """Tile rows per chunk: the most of the chunk's panel lanes used (a chunk's last panel is
    partly idle: 28 tiles of a 56² image fill 28 of 32 lanes), within CHUNK_BYTES of V and M
    (``planes`` floats per tile and channel, input and output) when possible; the fewest rows
    among equals (more chunks to share)."""
    per_row = planes * 4 * tw * channels
    best, best_use = 1, 0.0
    for rows in range(1, th + 1):
        if rows > 1 and rows * per_row > CHUNK_BYTES:
            break
        use = rows * tw / (-(-(rows * tw) // nr) * nr)
        if use > best_use + 1e-9:
            best, best_use = rows, use
    return best


def _slab(floats: int, shape: tuple[int, ...]) -> np.ndarray:
    """This thread's scratch for the padded input of the plane-by-plane route."""
    return _work(floats, "slab")[:floats].reshape(shape)


def _work(floats: int, name: str = "work") -> np.ndarray:
    """This thread's float32 scratch ``name`` (the chunked kernel's by default), grown when
    needed."""
    from openge.ops.compiled import thread_scratch

    return thread_scratch(name, 1, floats, np.float32)[0]


__all__ = [
    "F4_FILTER_BYTES",
    "F4_POSITIONS",
    "MIN_CHANNELS",
    "MIN_INPUT_CHANNELS",
    "MIN_POSITIONS",
    "MIN_POSITIONS_WIDE",
    "min_positions",
    "prepare_winograd",
    "suitable",
    "tile_size",
]
