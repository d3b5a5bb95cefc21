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

import numpy as np

from openge import kernels
from openge.kernels import allocator

#: Fewest weights (K·N) for the own GEMM: below it (BERT-tiny's 128×512 layers: ~25 µs saved
#: per product) numba's import (~0.5 s, ~140 MiB per process) would cost more than it saves.
MIN_WEIGHTS = 1 << 18
#: Fewest rows (all batch entries together): a product of fewer rows is bound by reading the
#: weights, where BLAS's matrix-vector path splits over the threads and the packed copy would
#: only add memory (alexnet's batch-1 classifier: 30 → 41 ms at one thread, 19 → 38 at two).
MIN_ROWS = 24
#: Products (2·rows·K·N flops) from which the row blocks are shared by the threads.
SPLIT_FLOPS = 2_000_000


def prepare_product(
    a: np.ndarray | None, w: np.ndarray | None, w_constant: bool, y: np.ndarray
) -> Callable[[], None] | None:
    """A closure computing ``y = a @ w`` on openge.kernels.gemm with ``w`` packed now, or None
    where it does not apply (other dtypes, a ``w`` that changes between runs or is batched,
    layouts the kernel does not read, numba missing or compiled kernels disabled)."""
    from openge.ops.compiled import launcher, load, warm, warm_drive

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
    if k * n < MIN_WEIGHTS or rows < MIN_ROWS:
        return None
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


__all__ = ["MIN_ROWS", "MIN_WEIGHTS", "SPLIT_FLOPS", "prepare_product"]
