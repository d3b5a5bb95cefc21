"""1×1 convolutions as GEMMs in column blocks with a compiled epilogue (ops layer).

A pointwise convolution's output is (Cout, H·W) per sample: the GEMM writes it, then bias,
residual and activation used to be more passes over the same (often several MiB) tensor. Here
the GEMM (BLAS) runs one block of output columns at a time, sized to stay in L2, and
openge.kernels.depthwise's block_epilogue finishes the block while it is in cache. Used by
FusedConv2D's ``prepare`` (epilogue: an activation, a residual Add, or an Add then an
activation) and Conv2D's (bias only) for NCHW float32/float64 1×1 stride-1 unpadded
convolutions, grouped ones (shufflenet's) too: each group is a sample of the loop with weights
of its own. Where numpy's OpenBLAS GEMM is found, the whole loop over blocks
is compiled (openge.kernels.pointwise: the GEMM called by address) and, at more than one
openge thread, shared by openge's thread team (openge.kernels.team) without the GIL;
otherwise each block is an ``np.matmul`` plus the compiled epilogue, the blocks shared by
openge.kernels.blas.parallel. A float32 convolution with a constant filter and at most
:func:`tile_limits` input channels runs on openge's own micro-kernel instead (the
filter packed now, x read in place; openge.kernels.pointwise.conv1x1_tiles), BLAS or not.

A strided 1×1 convolution (a ResNet's downsampling shortcut) is the same product on the
input's every sh-th row and sw-th column: :func:`prepare_strided` gathers those into an array
of its own (one NumPy copy, a quarter of the input at stride 2), then runs :func:`prepare`'s
product on it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openge.kernels import blas
from openge.ops import conv_depthwise

#: Bytes of one output block (Cout × columns): it stays in L2 between the GEMM and the epilogue.
BLOCK_BYTES = 256 << 10
#: Fewest columns of a block (narrower GEMMs lose more to BLAS's packing than cache saves).
MIN_COLUMNS = 256

Steps = Sequence[tuple[str, Sequence[int], dict[str, Any]]]


def epilogue(
    steps: Steps, operands: Sequence[np.ndarray | None], constant: Sequence[bool]
) -> tuple[np.ndarray | None, tuple[int, float, float]] | None:
    """(residual, activation) of an epilogue that is an activation, or ``Add(result, r)``
    with ``r`` of the result's shape optionally followed by an activation; None otherwise.
    ``operands[0]`` is the result."""
    y = operands[0]
    residual = None
    if steps and steps[0][0] in ("Add", "AddV2") and 0 in steps[0][1]:
        args = list(steps[0][1])
        k = args[1] if args[0] == 0 else args[0]
        r = operands[k] if 0 < k < len(operands) else None
        if r is None or r.shape != y.shape or r.dtype != y.dtype or not r.flags.c_contiguous:
            return None
        residual = r
        # the remaining steps read the sum as operand 0
        rest = []
        for op, a, kw in steps[1:]:
            if 0 in a:
                return None  # a later step reads the result before the Add
            rest.append((op, [0 if v == -1 else v + 1 if v < 0 else v for v in a], kw))
        steps = rest
    act = conv_depthwise.activation(steps, operands, constant)
    if act is None:
        return None
    return residual, act


def prepare(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    residual: np.ndarray | None = None,
    act: tuple[int, float, float] = (0, 0.0, 0.0),
    groups: int = 1,
    constant_filter: bool = False,
) -> Callable[[], None] | None:
    """A closure computing ``act(conv1x1(x, f) + bias [+ residual])`` into ``y`` block by
    block, the epilogue compiled now; None when the path does not apply. With ``groups``
    above 1 (shufflenet's grouped 1×1s) only the compiled form applies: each sample's
    groups are its samples, with the weights and bias of their own group. Only a
    ``constant_filter`` may be packed now for openge's own micro-kernel (:func:`_tiles`);
    any other filter is read where it is at each run."""
    from openge.ops.compiled import load, warm

    if (
        x.ndim != 4
        or f.ndim != 4
        or y.ndim != 4
        or groups < 1
        or f.shape[2:] != (1, 1)
        or f.shape[1] * groups != x.shape[1]
        or f.shape[0] != y.shape[1]
        or f.shape[0] % groups
        or x.shape[0] != y.shape[0]
        or x.shape[2:] != y.shape[2:]
        or y.dtype not in (np.float32, np.float64)
        or x.dtype != y.dtype
        or f.dtype != y.dtype
        or not (x.flags.c_contiguous and f.flags.c_contiguous and y.flags.c_contiguous)
        or (bias is not None and (bias.dtype != y.dtype or bias.size != y.shape[1]))
        or (bias is not None and not bias.flags.c_contiguous)
        or not y.size
        or np.shares_memory(x, y)
        or (residual is not None and np.shares_memory(residual, y))
    ):
        return None
    module = load("depthwise")
    if module is None:
        return None
    n, c = x.shape[0], x.shape[1]
    cout = y.shape[1]
    p = y.shape[2] * y.shape[3]
    b = np.zeros(cout, y.dtype) if bias is None else bias.reshape(-1)
    has_res = residual is not None
    code, lo, hi = act
    t = y.dtype.type
    if groups > 1:  # the groups as samples: (N·G, C/G, P) into (N·G, Cout/G, P)
        cg, coutg = c // groups, cout // groups
        block = _block_columns(coutg, p, y.itemsize)
        y3 = y.reshape(n * groups, coutg, p)
        r3 = residual.reshape(y3.shape) if residual is not None else y3[:, :1, :1]
        w3 = f.reshape(groups, coutg, cg)
        x3 = x.reshape(n * groups, cg, p)
        b2 = b.reshape(groups, coutg)
        tiles = _tiles(w3, x3, y3, b2, r3, has_res, block, act, t) if constant_filter else None
        return tiles or _native(w3, x3, y3, b2, r3, has_res, block, act, t)
    block = _block_columns(cout, p, y.itemsize)
    w2 = f.reshape(cout, c)
    x3, y3 = x.reshape(n, c, p), y.reshape(n, cout, p)
    r3 = residual.reshape(n, cout, p) if residual is not None else y3[:, :1, :1]
    tiles = None
    if constant_filter:
        tiles = _tiles(w2[None], x3, y3, b[None], r3, has_res, block, act, t)
    native = tiles or _native(w2[None], x3, y3, b[None], r3, has_res, block, act, t)
    one_position = constant_filter and n == 1 and p == 1 and y.dtype == np.float32
    if native is not None and one_position and w2.nbytes >= VECTOR_MIN_FILTER_BYTES:
        shared = _vector(native, module.block_epilogue, w2, x3, y3, b, r3, has_res, act, t)
        return shared or native
    if native is not None:
        return native
    kernel = module.block_epilogue
    if not warm(kernel, y3[0], b, r3[0], has_res, 0, block, code, t(lo), t(hi)):
        return None
    blocks = [
        (x3[i][:, p0 : min(p, p0 + block)], y3[i][:, p0 : min(p, p0 + block)], y3[i], r3[i], p0)
        for i in range(n)
        for p0 in range(0, p, block)
    ]
    act_args = (code, t(lo), t(hi))
    jobs = [
        functools.partial(
            _block, w2, xs, ys, kernel, (yi, b, ri, has_res, p0, p0 + ys.shape[1]), *act_args
        )
        for xs, ys, yi, ri, p0 in blocks
    ]

    def run() -> None:
        if len(jobs) > 1 and blas.split_threads() > 1:
            # blocks shared by openge's threads, each GEMM on one BLAS thread and its epilogue
            # (which releases the GIL) right after, while the block is in that core's cache
            blas.parallel(jobs)
            return
        for xs, ys, yi, ri, p0 in blocks:
            blas.matmul(w2, xs, ys)
            kernel(yi, b, ri, has_res, p0, p0 + ys.shape[1], *act_args)

    return run


#: Fewest filter bytes for which a 1×1 convolution of a 1×1 plane at batch 1 (a
#: squeeze-excite block's two products) runs as a matrix-vector product whose filter rows the
#: thread team shares (:func:`_vector`). Such a product streams its filter once, from L3 or
#: memory in a model, so one core's bandwidth bounds it; smaller filters stay on one thread,
#: where a team region's hand-over costs more than it saves.
VECTOR_MIN_FILTER_BYTES = 384 << 10


def _vector(
    serial: Callable[[], None],
    epilogue: Any,
    w2: np.ndarray,
    x3: np.ndarray,
    y3: np.ndarray,
    b: np.ndarray,
    r3: np.ndarray,
    has_res: bool,
    act: tuple[int, float, float],
    t: type,
) -> Callable[[], None] | None:
    """``y = act(W @ x + bias [+ residual])`` for one sample of one position: at more than
    one thread, openge.ops.matmul_compiled's few-row product of ``x``ᵀ (1, Cin) and Wᵀ (its
    columns are W's contiguous rows, shared by openge's thread team), then the compiled
    epilogue on the (Cout, 1) result; on one thread the ``serial`` closure (the product as
    before: the team's hand-over and a second call cost more than they save there). None
    where the shared product does not apply."""
    from openge.ops.compiled import warm
    from openge.ops.matmul_compiled import prepare_skinny

    cout, cin = w2.shape
    product = prepare_skinny(x3.reshape(1, cin), w2.T, y3.reshape(1, cout))
    code, lo, hi = act[0], t(act[1]), t(act[2])
    yi, ri = y3[0], r3[0]
    if product is None or not warm(epilogue, yi, b, ri, has_res, 0, 1, code, lo, hi):
        return None

    def run() -> None:
        if blas.split_threads() > 1:
            product()
            epilogue(yi, b, ri, has_res, 0, 1, code, lo, hi)
        else:
            serial()

    return run


def prepare_strided(
    x: np.ndarray,
    f: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    strides: Sequence[int],
    residual: np.ndarray | None = None,
    act: tuple[int, float, float] = (0, 0.0, 0.0),
    constant_filter: bool = False,
) -> Callable[[], None] | None:
    """A closure computing ``act(conv1x1(x, f, strides) + bias [+ residual])`` into ``y`` for
    an unpadded 1×1 convolution with ``strides`` (h, w) other than (1, 1): the strided input
    copied into a private array, then a stride-1 product on it — openge.ops.conv_im2row's
    for a small plane, else :func:`prepare`'s (resnet18's 128 → 256 at 28² → 14²: 0.25 ms
    on im2row's tiles from the stride phases, 0.11 as a copy plus numpy's BLAS; ONNX Runtime
    0.11). None when the path does not apply."""
    from openge.ops import conv_im2row

    sh, sw = (int(v) for v in strides)
    if (
        x.ndim != 4
        or f.ndim != 4
        or y.ndim != 4
        or f.shape[2:] != (1, 1)
        or (sh, sw) == (1, 1)
        or min(sh, sw) < 1
    ):
        return None
    view = x[:, :, ::sh, ::sw]
    if view.shape[:2] != x.shape[:2] or view.shape[2:] != y.shape[2:] or not view.size:
        return None
    sub = np.empty(view.shape, x.dtype)
    plain = ((1, 1), (1, 1), (0, 0, 0, 0))  # strides, dilations, pads
    small_plane = conv_im2row.prepare(
        sub, f, bias, y, *plain, residual, act, constant_filter=constant_filter
    )
    product = small_plane or prepare(
        sub, f, bias, y, residual, act, constant_filter=constant_filter
    )
    if product is None:
        return None

    def run() -> None:
        np.copyto(sub, view)
        product()

    return run


#: Products (2·Cout·Cin·H·W flops) from which the native path shares a convolution among
#: openge's threads (its team hands out parts for a few atomic operations: ~15 µs of GEMM).
NATIVE_SPLIT_FLOPS = 1_000_000
#: Fewest output channels in a row block (a thread's share of a shared convolution).
MIN_ROWS = 16
#: Fewest columns per part for a shared convolution to be cut into column ranges.
SPLIT_COLUMNS = 128
#: Output channels from which a shared convolution is cut into ranges of output channels even
#: when its plane is wide: two threads each calling OpenBLAS on half the columns of a short-K
#: product ran slower than one thread on all of it (32 → 192 at 28²: 0.093 ms on one thread,
#: 0.149 on two by columns, 0.051 by rows; 16 → 64 at 55² 0.090 / 0.085 / 0.047; Intel Xeon
#: AVX-512), while narrow outputs keep the column ranges (64 → 16 at 55²: 0.050 by columns,
#: 0.069 by rows). From 64 channels rows won or tied on every mobile and squeeze shape measured.
ROW_SPLIT_CHANNELS = 64
_verified: dict[str, bool] = {}


def _block_columns(cout: int, p: int, itemsize: int) -> int:
    """Columns of one output block: Cout × columns within BLOCK_BYTES, at least
    MIN_COLUMNS, a multiple of 64 (or the whole plane)."""
    block = max(MIN_COLUMNS, BLOCK_BYTES // (cout * itemsize)) // 64 * 64
    return p if block >= p else block


def _native(
    w3: np.ndarray,
    x3: np.ndarray,
    y3: np.ndarray,
    b2: np.ndarray,
    r3: np.ndarray,
    has_res: bool,
    block: int,
    act: tuple[int, float, float],
    t: type,
) -> Callable[[], None] | None:
    """The compiled form (openge.kernels.pointwise: numpy's OpenBLAS GEMM called from compiled
    code, blocks claimed by openge's thread team without the GIL), or None when numpy's
    OpenBLAS GEMM was not found or failed its check. ``w3`` (G, Cout, Cin) and ``b2`` (G,
    Cout) per group; ``act``'s bounds are cast to the dtype ``t``."""
    from openge import kernels
    from openge.ops.compiled import load, team_with_single_blas, warm, warm_drive

    entry = blas.gemm_entry(y3.dtype)
    module = load("pointwise")
    if entry is None or module is None or not _check(module, y3.dtype, entry):
        return None
    n, cout, p = y3.shape
    cin = w3.shape[2]
    whole, drive = module.conv1x1, module.conv1x1_drive
    act = (act[0], t(act[1]), t(act[2]))
    serial = (*entry, w3, x3, y3, b2, r3, has_res, block, cout, *act)
    rows, cols = shared_item(n, cout, p, block, kernels.default_num_threads())
    shared = (*entry, w3, x3, y3, b2, r3, has_res, cols, rows, *act)
    items = module.item_count(n, cout, p, cols, rows)
    if not (warm(whole, *serial) and warm_drive(drive, *shared, items)):
        return None
    big = 2 * n * cout * cin * p >= NATIVE_SPLIT_FLOPS and items > 1

    def run() -> None:
        team_with_single_blas(drive, whole, shared, serial, items, big)

    return run


#: Most input channels for which a float32 1×1 convolution runs on openge's own micro-kernel
#: (openge.kernels.pointwise.conv1x1_tiles) rather than numpy's OpenBLAS. Alone, one thread,
#: AVX2 Zen 3, tiles / BLAS: 16 → 64 at 55² 0.79, 24 → 144 at 56² 0.84, 32 → 192 at 28²
#: 0.82, 64 → 384 at 14² 0.92, 144 → 24 at 56² 0.99; from 384 channels BLAS won there
#: (1.04-1.37: the micro-kernel has no blocking of K). In the models the range is wider:
#: per-step minima in mobilenet_v2, efficientnet_b0, squeezenet and densenet121, tiles /
#: BLAS, one thread: 144 → 24 at 56² 0.79-0.86, 144 and 240 → 40 at 28² 0.88, 192 → 32 at
#: 28² 0.90-0.92, 256 → 32/48 at 27²/13² 0.86, 384 → 48/64 at 13² 0.94-1.02, 384 → 64/96 at
#: 14² 1.00-1.01, densenet's 160-384 → 128 together 0.99; at two threads 0.66-0.94 (steps
#: the change did not touch: 0.82-1.05 in the same runs). Likely why: in a model the filter
#: comes from memory, not from a warm cache, and OpenBLAS packs it on every call with short
#: strided reads where the micro-kernel streams it prepacked (a 960 × 160 filter, caches
#: flushed: OpenBLAS 327 µs on one thread and 280 on two, ONNX Runtime's 328 and 192).
TILES_MAX_CHANNELS = 384
#: Largest filter (bytes, per group) for it above TILES_ANY_FILTER_CHANNELS input channels:
#: the micro-kernel streams the whole filter once per strip of NR columns, and large filters
#: lost, one thread: 256 → 512 at 28² (0.5 MB) 1.09, 320 → 1280 at 7² (1.6 MB) 1.12-1.14,
#: 192 → 1152 at 7² (0.9 MB) 1.02-1.04; up to 256 KB (resnet50's 256 → 64 and 256 → 128 at
#: 56²: 0.95, 1.03) the figures above.
TILES_MAX_FILTER_BYTES = 256 << 10
#: Input channels up to which any filter runs on the micro-kernel (the range measured first,
#: 112 → 672 at 14² among them: 0.97 alone).
TILES_ANY_FILTER_CHANNELS = 128
#: Fewest output channels per group for it (fewer: tiles of mostly idle rows).
TILES_MIN_ROWS = 16
#: TILES_MAX_CHANNELS and TILES_MAX_FILTER_BYTES where the CPU has 512-bit vectors (the
#: micro-kernel's tile is 12 × 32 there, twice the work per load of AVX2's 6 × 16, and numpy's
#: OpenBLAS runs its SkylakeX kernels). On an AVX-512 Zen 4 core the tiles won on every wider
#: 1×1 of the models, per-step minima, tiles / BLAS, one thread: squeezenet's 512 → 1000 at
#: 13² (2 MiB of filter) 0.91, 512 → 64 0.74; resnet50's 512 → 128 at 28² 0.87-0.89, 256 →
#: 1024 at 14² 0.94, 512 → 1024 at 28² 0.97; densenet121's 416-480 → 128 at 28² 0.87-0.92,
#: 1024 → 512 at 14² 0.98; inception_v2's 576 → 96-224 at 14² 0.88-0.94; two threads 0.77-0.93.
TILES_MAX_CHANNELS_WIDE = 1024
TILES_MAX_FILTER_BYTES_WIDE = 2 << 20


def tile_limits() -> tuple[int, int]:
    """(most input channels, most filter bytes per group above TILES_ANY_FILTER_CHANNELS) of a
    1×1 convolution on openge's micro-kernel, for this CPU's vector width (the _WIDE limits
    with 512-bit vectors); call with numba loaded."""
    from openge.ops.compiled import wide_vectors

    if wide_vectors():
        return TILES_MAX_CHANNELS_WIDE, TILES_MAX_FILTER_BYTES_WIDE
    return TILES_MAX_CHANNELS, TILES_MAX_FILTER_BYTES


def _tiles(
    w3: np.ndarray,
    x3: np.ndarray,
    y3: np.ndarray,
    b2: np.ndarray,
    r3: np.ndarray,
    has_res: bool,
    block: int,
    act: tuple[int, float, float],
    t: type,
) -> Callable[[], None] | None:
    """The product on openge's own micro-kernel (openge.kernels.pointwise.conv1x1_tiles: the
    filter packed now — a constant one only — x read in place), for float32 with at most
    :func:`tile_limits` input channels and filter bytes (the latter above
    TILES_ANY_FILTER_CHANNELS); None otherwise.
    Arguments as :func:`_native`'s."""
    from openge import kernels
    from openge.kernels import gemm, team
    from openge.ops.compiled import load, warm, warm_drive

    n, cout, p = y3.shape
    cin = w3.shape[2]
    max_channels, max_filter_bytes = tile_limits()
    if (
        y3.dtype != np.float32
        or cin > max_channels
        or (cin > TILES_ANY_FILTER_CHANNELS and w3[0].nbytes > max_filter_bytes)
        or cout < TILES_MIN_ROWS
        or p < gemm.NR
    ):
        return None
    module = load("pointwise")
    if module is None:
        return None
    wp = np.stack([gemm.pack_rows(w) for w in w3])
    offs = np.arange(cin, dtype=np.int64) * p
    act = (act[0], t(act[1]), t(act[2]))
    whole, drive = module.conv1x1_tiles, module.conv1x1_tiles_drive
    serial = (wp, x3, y3, b2, r3, has_res, offs, block, cout, *act)
    rows, cols = shared_item(n, cout, p, block, kernels.default_num_threads(), tiles=True)
    rows = cout if rows >= cout else _round_up(rows, gemm.MR)
    shared = (wp, x3, y3, b2, r3, has_res, offs, cols, rows, *act)
    items = module.item_count(n, cout, p, cols, rows)
    if not (warm(whole, *serial) and warm_drive(drive, *shared, items)):
        return None
    big = 2 * n * cout * cin * p >= NATIVE_SPLIT_FLOPS and items > 1
    get = kernels.get_num_threads

    def run() -> None:
        threads = get() if big else 1
        if threads > 1:
            team.run(
                drive, whole, shared, items, min(items, threads * team.PARTS_PER_THREAD), threads
            )
        else:
            whole(*serial)

    return run


def shared_item(
    n: int, cout: int, p: int, block: int, threads: int, tiles: bool = False
) -> tuple[int, int]:
    """(output channels, columns) of one item of a convolution shared by the team: a few
    contiguous stretches of the output per thread — column ranges when the planes are wide
    enough and the output has fewer than :data:`ROW_SPLIT_CHANNELS` channels or runs on
    openge's micro-kernel (``tiles``), else ranges of output channels (at least MIN_ROWS,
    rounded up to 8) by ``block`` columns. The micro-kernel's row ranges are whole tiles of
    gemm.MR rows, which split 64 or 96 channels unevenly (36 + 28): by columns, two threads,
    16 → 64 at 112² 192 → 177 µs, 16 → 96 288 → 263, 24 → 144 at 56² 140 → 135, the
    rest within 2 % (an AVX-512 Zen 4 VM). Column ranges come in equal pieces of at most
    ``block`` columns, a whole number per part: pieces of ``block`` left the last one short
    (mobilenet_v3's 16 → 16 at 112², 12544 columns in blocks of 4096: 8192 for one thread,
    4352 for the other; 72 → 55 µs at two threads as four pieces of 3136)."""
    from openge.kernels import team

    parts = max(1, max(2, threads) * team.PARTS_PER_THREAD // n)
    if p >= parts * SPLIT_COLUMNS and (tiles or cout < ROW_SPLIT_CHANNELS):
        pieces = parts * -(-p // (parts * block))
        return cout, min(block, _round_up(-(-p // pieces), 16))
    return max(MIN_ROWS, _round_up(-(-cout // parts), 8)), block


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _check(module: Any, dtype: np.dtype, entry: tuple[int, bool]) -> bool:
    """Once per dtype and process: the compiled 1×1 convolution through numpy's OpenBLAS
    agrees with np.matmul on a small problem (guards the GEMM's calling convention)."""
    key = np.dtype(dtype).name
    if key not in _verified:
        rng = np.random.default_rng(0)
        w3 = rng.standard_normal((2, 5, 7)).astype(dtype)  # two groups
        x3 = rng.standard_normal((4, 7, 11)).astype(dtype)  # two samples of two groups
        y3 = np.zeros((4, 5, 11), dtype)
        b2 = rng.standard_normal((2, 5)).astype(dtype)
        try:
            with blas.single_blas:
                module.conv1x1(
                    *entry, w3, x3, y3, b2, y3, False, 8, 3, 0, dtype.type(0), dtype.type(0)
                )
            group = np.arange(4) % 2
            expected = np.matmul(w3[group], x3) + b2[group][:, :, None]
            _verified[key] = bool(np.allclose(y3, expected, rtol=1e-4, atol=1e-4))
        except Exception:  # a failing compile: keep the NumPy-driven path
            _verified[key] = False
    return _verified[key]


def _block(
    w2: np.ndarray, xs: np.ndarray, ys: np.ndarray, kernel: Any, where: tuple, *act: Any
) -> None:
    """One column block: its GEMM, then the compiled epilogue on it."""
    np.matmul(w2, xs, out=ys)
    kernel(*where, *act)


__all__ = [
    "BLOCK_BYTES",
    "MIN_COLUMNS",
    "MIN_ROWS",
    "NATIVE_SPLIT_FLOPS",
    "ROW_SPLIT_CHANNELS",
    "SPLIT_COLUMNS",
    "TILES_ANY_FILTER_CHANNELS",
    "TILES_MAX_CHANNELS",
    "TILES_MAX_CHANNELS_WIDE",
    "TILES_MAX_FILTER_BYTES",
    "TILES_MAX_FILTER_BYTES_WIDE",
    "TILES_MIN_ROWS",
    "epilogue",
    "prepare",
    "prepare_strided",
    "shared_item",
    "tile_limits",
]
