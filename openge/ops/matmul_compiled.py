"""Products with constant weights on openge's own GEMM (ops layer): openge.kernels.gemm bound
to a task's arrays at load, the weights packed once.

Applies to float32 ``y = a @ w`` where ``w`` is a constant 2-D matrix (a MatMul's or Gemm's
weights, possibly transposed) and ``a`` (…, M, K) is C-contiguous: every row of every batch
entry meets the same weights, so the product is one (rows × K) @ (K × N) GEMM. The kernel
reads the activations in place and keeps the packed weights' panels in L1; numpy's OpenBLAS
packs both operands on every call (measured on an AVX-512 Xeon, one thread: 128×768 @
768×3072 3.6 vs 8.3 ms, 197×3072 @ 3072×768 5.3 vs 6.3 ms). Results match BLAS within the
conformance tolerances (sums in a different order). At more than one openge thread the row
blocks, each cut in two halves of the weights' panels, are shared by openge's thread team.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from openge import kernels
from openge.kernels import allocator

#: Fewest weights (K·N) for the own GEMM in a model that loads no other compiled kernel:
#: below it numba's start (~0.25 s and ~40 MiB per process, docs/decisions.md) would cost
#: more than the products save.
MIN_WEIGHTS = 1 << 18
#: ... and in a model that loads compiled kernels anyway (openge.ops.compiled.loaded_here):
#: the own GEMM was as fast as numpy's OpenBLAS or faster down to 64×64 weights, and shares
#: its row blocks with the thread team where OpenBLAS's own threads met the team's spinning
#: on the other core (AVX-512 Zen 4; BERT-tiny's 128×128 @ 128×512: 147 vs 169 µs on one
#: thread, 80 vs 103 on two; 128×128 @ 128×128: 37 vs 43 and 22 vs 30).
MIN_WEIGHTS_LOADED = 1 << 12
#: Fewest rows (all batch entries together): a product of fewer rows is bound by reading the
#: weights, where the packed copy would only add memory (alexnet's batch-1 classifier: 30 → 41
#: ms at one thread, 19 → 38 at two); those read the weights in place (:func:`prepare_skinny`).
MIN_ROWS = 24
#: Products (2·rows·K·N flops) from which the row blocks are shared by the threads.
SPLIT_FLOPS = 2_000_000


def prepare_product(
    a: np.ndarray | None, w: np.ndarray | None, w_constant: bool, y: np.ndarray
) -> Callable[[], None] | None:
    """A closure computing ``y = a @ w`` on openge.kernels.gemm with ``w`` packed now, or None
    where it does not apply (other dtypes, a ``w`` that changes between runs or is batched,
    layouts the kernel does not read, numba missing or compiled kernels disabled)."""
    from openge.ops.compiled import launcher, load, loaded_here, warm, warm_drive

    if a is not None and w is not None and not w_constant:
        return prepare_batched(a, w, y)
    if (
        a is None
        or w is None
        or not w_constant
        or not kernels.enabled()
        or w.ndim != 2
        or a.ndim < 2
        or a.dtype != np.float32
        or w.dtype != np.float32
        or y.dtype != np.float32
        or not a.flags.c_contiguous
        or not y.flags.c_contiguous
        or not y.flags.writeable
        or a.shape[-1] != w.shape[0]
        or y.shape != (*a.shape[:-1], w.shape[1])
        or np.shares_memory(a, y)
    ):
        return None
    k, n = w.shape
    rows = math.prod(a.shape[:-1])
    if k * n < MIN_WEIGHTS and not (k * n >= MIN_WEIGHTS_LOADED and loaded_here()):
        return None
    if rows < MIN_ROWS:
        return prepare_skinny(a, w, y)
    module = load("gemm")
    if module is None:
        return None
    a2 = a.reshape(rows, k)
    y2 = y.reshape(rows, n)
    if not (np.shares_memory(a2, a) and np.shares_memory(y2, y)):
        return None
    packed = module.pack_b(w)
    # the packed copy is what runs: the mapped original's pages leave the RSS
    allocator.release_pages(w)
    items = module.item_count(rows)
    if not (
        warm(module.matmul, a2, packed, y2) and warm_drive(module.matmul_drive, a2, packed, y2, 1)
    ):
        return None
    big = 2 * rows * k * n >= SPLIT_FLOPS and items > 1
    return launcher(module.matmul, big, a2, packed, y2, driven=(module.matmul_drive, items))


#: Fewest flops (2·E·M·K·N) of a batched product of two computed operands for openge's team:
#: below it one BLAS thread runs the whole batch as before.
BATCH_FLOPS = 1_000_000
#: Items a batched product is cut into at least (entries × row blocks), so that a core the
#: scheduler runs late leaves its share to the other.
BATCH_ITEMS = 8


def _row_major(x: np.ndarray) -> int | None:
    """The leading dimension (in elements) of the last two axes of ``x`` when its rows are
    contiguous, else None."""
    size = x.itemsize
    if x.strides[-1] != size or x.strides[-2] % size or x.strides[-2] < x.shape[-1] * size:
        return None
    return x.strides[-2] // size


def _entry_addresses(x: np.ndarray) -> np.ndarray:
    """The byte address of every batch entry (the last two axes) of ``x``, in C order."""
    batch = x.shape[:-2]
    index = np.indices(batch).reshape(len(batch), -1)
    strides = np.array(x.strides[:-2], np.int64).reshape(len(batch), 1)
    return (x.ctypes.data + (index * strides).sum(axis=0)).astype(np.int64)


def prepare_batched(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    """A closure computing ``y = a @ b`` for a batch of products whose operands are both
    computed by the run (attention's QKᵀ and PV, one product per head): with more than one
    openge thread, the (entry, row block) items shared by openge's thread team, each one call
    of numpy's OpenBLAS GEMM from compiled code (openge.kernels.pointwise.batch); on one
    thread numpy's BLAS as before. Why: numpy runs such a batch on one BLAS thread below
    openge.kernels.blas.MIN_SPLIT_FLOPS per thread, and above it as Python jobs on openge's
    pool, whose hand-overs cost tens of µs in a VM. Only in a model that loads compiled
    kernels anyway (openge.ops.compiled.loaded_here). None where it does not apply: operands
    broadcast or of other dtypes, rows not contiguous, ``y`` not C-contiguous or overlapping
    an operand, numpy's OpenBLAS GEMM not found."""
    from openge.kernels import blas
    from openge.ops.compiled import load, loaded_here, warm, warm_drive

    if (
        not kernels.enabled()
        or a.ndim < 3
        or b.ndim != a.ndim
        or y.ndim != a.ndim
        or a.dtype not in (np.float32, np.float64)
        or b.dtype != a.dtype
        or y.dtype != a.dtype
        or a.shape[:-2] != b.shape[:-2]
        or y.shape != (*a.shape[:-1], b.shape[-1])
        or a.shape[-1] != b.shape[-2]
        or 0 in y.shape
        or 0 in a.shape
        or not y.flags.c_contiguous
        or not y.flags.writeable
        or np.may_share_memory(y, a)
        or np.may_share_memory(y, b)
    ):
        return None
    m, k = a.shape[-2:]
    n = b.shape[-1]
    entries = math.prod(a.shape[:-2])
    if 2 * entries * m * k * n < BATCH_FLOPS:
        return None
    lda = _row_major(a)
    if lda is None:
        return None
    ldb = _row_major(b)
    trans_b = False
    if ldb is None:  # Bᵀ row-major: B's columns contiguous
        ldb = _row_major(np.swapaxes(b, -1, -2))
        trans_b = True
        if ldb is None:
            return None
    if not loaded_here():
        return None
    entry = blas.gemm_entry(y.dtype)
    module = load("pointwise")
    if entry is None or module is None or not _batch_check(module, entry, y.dtype):
        return None
    blocks = max(1, min(m, -(-BATCH_ITEMS // entries)))
    rows = -(-m // blocks)
    items = module.batch_count(entries, m, rows)
    y3 = y.reshape(entries, m, n)
    if not np.shares_memory(y3, y):
        return None
    args = (*entry, _entry_addresses(a), _entry_addresses(b), y3, k, lda, ldb, trans_b, rows)
    if not (warm(module.batch, *args) and warm_drive(module.batch_drive, *args, items)):
        return None
    # the addresses in args are a's and b's: the closure keeps both alive
    return _team_or_blas(module.batch_drive, module.batch, args, items, a, b, y)


_batch_verified: dict[str, bool] = {}


def _batch_check(module: Any, entry: tuple[int, bool], dtype: np.dtype) -> bool:
    """Once per dtype and process: the compiled batch agrees with np.matmul on a small
    problem, with B as stored and transposed (guards the GEMM's calling convention)."""
    key = np.dtype(dtype).name
    if key not in _batch_verified:
        from openge.kernels import blas

        rng = np.random.default_rng(0)
        ok = True
        try:
            a = rng.standard_normal((2, 5, 7)).astype(dtype)
            for trans_b in (False, True):
                b = rng.standard_normal((2, 7, 6)).astype(dtype)
                stored = np.ascontiguousarray(np.swapaxes(b, -1, -2)) if trans_b else b
                view = np.swapaxes(stored, -1, -2) if trans_b else stored
                ldb = 7 if trans_b else 6
                y = np.zeros((2, 5, 6), dtype)
                args = (_entry_addresses(a), _entry_addresses(view), y, 7, 7, ldb, trans_b, 3)
                with blas.single_blas:
                    module.batch(*entry, *args)
                ok = ok and bool(np.allclose(y, a @ b, rtol=1e-4, atol=1e-4))
            _batch_verified[key] = ok
        except Exception:  # a failing compile: keep numpy's product
            _batch_verified[key] = False
    return _batch_verified[key]


_skinny_verified: dict[tuple[str, bool], bool] = {}


def prepare_skinny(a: np.ndarray, w: np.ndarray, y: np.ndarray) -> Callable[[], None] | None:
    """A closure computing ``y = a @ w`` for a product of few rows (a classifier at batch 1)
    with constant weights read in place. Weights stored (K, N) (a MatMul's): the product cut
    along K (:func:`_by_depth`) on any thread count. Weights stored (N, K) (a Gemm's, or a
    squeeze-excite filter): on one thread numpy's BLAS as before; on more, the weights'
    columns — contiguous rows of the stored matrix — split among openge's thread team, each
    block one call of numpy's OpenBLAS GEMM from compiled code
    (openge.kernels.pointwise.columns). Such a product streams its weights once, so one core's
    memory bandwidth bounds it (mobilenet_v2's 1280 → 1000 classifier: 0.24 ms on one thread
    or two before); numpy's BLAS was held at one thread, and letting OpenBLAS thread it itself
    made the model twice slower (its threads found openge's team on the other core). None
    where it does not apply (``w`` neither row- nor column-major, numpy's OpenBLAS GEMM not
    found, numba missing)."""
    from openge.kernels import blas, team
    from openge.ops.compiled import load, warm, warm_drive

    k, n = w.shape
    if w.flags.c_contiguous:
        b, trans_b = w, False
    elif w.T.flags.c_contiguous:
        b, trans_b = w.T, True
    else:
        return None
    entry = blas.gemm_entry(y.dtype)
    module = load("pointwise")
    gemv = blas.gemv_entry(y.dtype)
    if entry is None or module is None or not _skinny_check(module, (*entry, gemv), trans_b):
        return None
    rows = math.prod(a.shape[:-1])
    a2 = a.reshape(rows, k)
    y2 = y.reshape(rows, n)
    if not (np.shares_memory(a2, a) and np.shares_memory(y2, y)):
        return None
    parts = max(2, kernels.default_num_threads()) * team.PARTS_PER_THREAD
    if not trans_b:
        by_depth = _by_depth(module, (*entry, gemv), a2, b, y2, parts)
        if by_depth is not None:
            return by_depth
    per_part = -(-n // parts)
    cols = -(-per_part // 16) * 16
    items = module.column_count(n, cols)
    args = (*entry, gemv, a2, b, trans_b, y2, cols)
    if not (warm(module.columns, *args) and warm_drive(module.columns_drive, *args, items)):
        return None
    return _team_or_blas(module.columns_drive, module.columns, args, items, a, w, y)


def _by_depth(
    module: Any,
    entry: tuple[int, bool, int],
    a2: np.ndarray,
    b: np.ndarray,
    y2: np.ndarray,
    parts: int,
) -> Callable[[], None] | None:
    """:func:`prepare_skinny`'s closure for weights B stored (K, N): the product cut along K
    into ``parts`` parts (openge.kernels.pointwise.depth_parts: each part one BLAS call on a
    contiguous stretch of B, into a buffer of its own), shared by openge's thread team at more
    than one thread, then added up in their order (``depth_sum``) — the same parts and sums on
    any thread count, so the same values. Cut by columns instead, each core read part of every
    row of B (the two cores' prefetchers likely pulled in each other's lines): alone, in one
    process, two threads, AVX-512 Zen 4, depth / columns 0.83 for a 1280 → 1000 classifier
    with its weights in cache, 0.80 / 0.83 / 0.86 for 1280, 960 and 512 → 1000 after 8 MiB
    of other traffic; one thread 1.02. None where it does not apply (fewer than two parts)."""
    from openge.ops.compiled import team_with_single_blas, warm, warm_drive

    k, n = b.shape
    per_part = -(-k // parts)
    depth = -(-per_part // 16) * 16  # whole cache lines of a
    count = module.depth_count(k, depth)
    if count < 2:
        return None
    partial = np.empty((count, a2.shape[0], n), y2.dtype)
    args = (*entry, a2, b, partial, depth)
    whole, drive, add = module.depth_parts, module.depth_parts_drive, module.depth_sum
    if not (warm(whole, *args) and warm_drive(drive, *args, count) and warm(add, partial, y2)):
        return None

    def run() -> None:
        team_with_single_blas(drive, whole, args, args, count)
        add(partial, y2)

    return run


def _team_or_blas(
    drive: Any,
    whole: Any,
    args: tuple,
    items: int,
    a: np.ndarray,
    b: np.ndarray,
    y: np.ndarray,
) -> Callable[[], None]:
    """A closure: at more than one openge thread the kernel's ``items`` on openge's thread
    team (numpy's BLAS held at one thread, since the kernel calls it), else ``y = a @ b`` on
    numpy's BLAS as the NumPy kernel computes it."""
    from openge.kernels import blas, team

    get = kernels.get_num_threads

    def run() -> None:
        threads = min(get(), blas.split_threads())
        if threads > 1 and items > 1:
            with blas.single_blas:
                team.run(
                    drive, whole, args, items, min(items, threads * team.PARTS_PER_THREAD), threads
                )
        else:
            blas.matmul(a, b, y)

    return run


def _skinny_check(module: Any, entry: tuple[int, bool, int], trans_b: bool) -> bool:
    """Once per layout and process: the compiled column blocks (and, for B stored (K, N),
    the parts along K) agree with np.matmul on a small problem (guards the GEMM's calling
    convention)."""
    key = ("float32", trans_b)
    if key not in _skinny_verified:
        from openge.kernels import blas

        rng = np.random.default_rng(0)
        w = rng.standard_normal((7, 37)).astype(np.float32)
        b = np.ascontiguousarray(w.T) if trans_b else w
        ok = True
        try:
            for rows in (1, 3):  # the matrix-vector product and the GEMM
                a = rng.standard_normal((rows, 7)).astype(np.float32)
                y = np.zeros((rows, 37), np.float32)
                with blas.single_blas:
                    module.columns(*entry, a, b, trans_b, y, 16)
                ok = ok and bool(np.allclose(y, a @ w, rtol=1e-4, atol=1e-4))
                if not trans_b:  # the same product cut along K (7 = 3 + 3 + 1)
                    partial = np.full((3, rows, 37), np.nan, np.float32)
                    y[...] = np.nan
                    with blas.single_blas:
                        module.depth_parts(*entry, a, b, partial, 3)
                    module.depth_sum(partial, y)
                    ok = ok and bool(np.allclose(y, a @ w, rtol=1e-4, atol=1e-4))
            _skinny_verified[key] = ok
        except Exception:  # a failing compile: keep numpy's product
            _skinny_verified[key] = False
    return _skinny_verified[key]


__all__ = [
    "BATCH_FLOPS",
    "BATCH_ITEMS",
    "MIN_ROWS",
    "MIN_WEIGHTS",
    "MIN_WEIGHTS_LOADED",
    "SPLIT_FLOPS",
    "prepare_batched",
    "prepare_product",
    "prepare_skinny",
]
