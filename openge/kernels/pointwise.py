"""1×1 convolutions from compiled code: numpy's own OpenBLAS GEMM called per column block,
the epilogue (bias, residual, activation) right after, on openge's thread team (kernels
layer, numba).

openge.ops.conv_pointwise used to share a convolution's column blocks among openge's
threads as Python jobs (``np.matmul`` on a block, then the compiled epilogue): every job
took the GIL to start, so two threads handed it back and forth once per block, ~20 µs a time
in a virtual machine whose idle cores halt. Here the whole loop over blocks is compiled: the
GEMM is the ``cblas_?gemm`` of the OpenBLAS library numpy loaded (its address found by
openge.kernels.blas and passed in as an integer, so the machine code stays cacheable), and
the team's threads claim blocks without the GIL (openge.kernels.sync).

With few input channels (float32) the product runs on openge's own micro-kernel instead
(:func:`conv1x1_tiles`: the filter packed by openge.kernels.gemm.pack_rows, x's rows read in
place), with the same work items and epilogue: OpenBLAS's packing and per-call setup cost as
much as the arithmetic when K is 16-48.

The same calls serve two other products: one of few rows with constant weights split by
columns (:func:`columns`), and a batch of products of two computed operands — attention's
QKᵀ and PV, one per head — split by (entry, row block) (:func:`batch`).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from openge.kernels import gemm, sync
from openge.kernels.depthwise import block_epilogue

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _blas_int(context, builder, value, ty, int_bits: int):  # pragma: no cover - codegen
    """IR: an integer argument as a CBLAS int of ``int_bits`` bits."""
    wide = context.cast(builder, value, ty, types.int64)
    return wide if int_bits == 64 else builder.trunc(wide, ir.IntType(int_bits))


def _address(context, builder, value, ty, ptr):  # pragma: no cover - codegen
    """IR: an integer address argument as a pointer of type ``ptr``."""
    return builder.inttoptr(context.cast(builder, value, ty, types.uintp), ptr)


def _transpose(context, builder, value, ty):  # pragma: no cover - codegen
    """IR: CBLAS's Trans (``value`` nonzero) or NoTrans enum."""
    enum = ir.IntType(32)
    wide = context.cast(builder, value, ty, types.int64)
    nonzero = builder.icmp_signed("!=", wide, ir.IntType(64)(0))
    return builder.select(nonzero, enum(_TRANS), enum(_NO_TRANS))


def _gemm_intrinsic(int_bits: int):
    """An intrinsic calling ``cblas_?gemm`` (row-major, A not transposed, B transposed when
    ``trans_b`` is nonzero) at an address with ``int_bits``-bit BLAS ints."""

    @intrinsic
    def gemm(
        typingctx, fn, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc
    ):  # pragma: no cover
        if not isinstance(alpha, types.Float) or alpha != beta:
            return None
        sig = types.none(fn, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

        def codegen(context, builder, signature, args):
            flt = ir.FloatType() if alpha.bitwidth == 32 else ir.DoubleType()
            ptr = flt.as_pointer()
            blas_int = ir.IntType(int_bits)
            enum = ir.IntType(32)
            # order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
            params = [enum] * 3 + [blas_int] * 3 + [flt, ptr, blas_int, ptr, blas_int]
            fnty = ir.FunctionType(ir.VoidType(), [*params, flt, ptr, blas_int])
            f, tb, m_, n_, k_, al, a_, lda_, b_, ldb_, be, c_, ldc_ = args
            t = signature.args

            def num(i, v):
                return _blas_int(context, builder, v, t[i], int_bits)

            def addr(i, v, to):
                return _address(context, builder, v, t[i], to)

            builder.call(
                addr(0, f, fnty.as_pointer()),
                [
                    enum(_ROW_MAJOR),
                    enum(_NO_TRANS),
                    _transpose(context, builder, tb, t[1]),
                    num(2, m_),
                    num(3, n_),
                    num(4, k_),
                    al,
                    addr(6, a_, ptr),
                    num(7, lda_),
                    addr(8, b_, ptr),
                    num(9, ldb_),
                    be,
                    addr(11, c_, ptr),
                    num(12, ldc_),
                ],
            )
            return context.get_dummy_value()

        return sig, codegen

    return gemm


_gemm64 = _gemm_intrinsic(64)
_gemm32 = _gemm_intrinsic(32)


def _gemv_intrinsic(int_bits: int):
    """An intrinsic calling ``cblas_?gemv`` at an address with ``int_bits``-bit BLAS ints:
    row-major ``y = alpha·op(A) @ x + beta·y``, unit strides for x and y."""

    @intrinsic
    def gemv(typingctx, fn, trans, m, n, alpha, a, lda, x, beta, y):  # pragma: no cover
        if not isinstance(alpha, types.Float) or alpha != beta:
            return None
        sig = types.none(fn, trans, m, n, alpha, a, lda, x, beta, y)

        def codegen(context, builder, signature, args):
            flt = ir.FloatType() if alpha.bitwidth == 32 else ir.DoubleType()
            ptr = flt.as_pointer()
            blas_int = ir.IntType(int_bits)
            enum = ir.IntType(32)
            # order, trans, M, N, alpha, A, lda, X, incX, beta, Y, incY
            params = [enum, enum, blas_int, blas_int, flt, ptr, blas_int, ptr, blas_int]
            fnty = ir.FunctionType(ir.VoidType(), [*params, flt, ptr, blas_int])
            f, tr, m_, n_, al, a_, lda_, x_, be, y_ = args
            t = signature.args

            def num(i, v):
                return _blas_int(context, builder, v, t[i], int_bits)

            def addr(i, v, to):
                return _address(context, builder, v, t[i], to)

            builder.call(
                addr(0, f, fnty.as_pointer()),
                [
                    enum(_ROW_MAJOR),
                    _transpose(context, builder, tr, t[1]),
                    num(2, m_),
                    num(3, n_),
                    al,
                    addr(5, a_, ptr),
                    num(6, lda_),
                    addr(7, x_, ptr),
                    blas_int(1),
                    be,
                    addr(9, y_, ptr),
                    blas_int(1),
                ],
            )
            return context.get_dummy_value()

        return sig, codegen

    return gemv


_gemv64 = _gemv_intrinsic(64)
_gemv32 = _gemv_intrinsic(32)


@njit(inline="always")
def _item(t, groups, cout, p, block, rows):  # pragma: no cover
    """Item ``t`` of a 1×1 convolution's work (sample, row block, column block; the column
    block fastest): (sample i, its group i % ``groups``, rows [r0, r1), first column p0,
    columns)."""
    cblocks = (p + block - 1) // block
    rblocks = (cout + rows - 1) // rows
    i = t // (rblocks * cblocks)
    rest = t - i * rblocks * cblocks
    rb = rest // cblocks
    r0 = rb * rows
    p0 = (rest - rb * cblocks) * block
    return i, i % groups, r0, min(cout, r0 + rows), p0, min(block, p - p0)


@njit(cache=True, nogil=True, error_model="numpy")
def _items(
    gemm, ilp64, w3, x3, y3, bias, r3, has_res, block, rows, act, lo, hi, first, stop
):  # pragma: no cover
    """Work items ``first`` to ``stop``: item t is (sample, row block, column block), the
    column block varying fastest — so a range of items is one stretch of the output, and
    threads working on neighbouring ranges share few cache lines. Per item: ``y = w @ x``
    on the ``rows`` × ``block`` tile by BLAS, then the epilogue on it while it is in cache;
    sample i takes the weights and bias of group ``i % G``."""
    groups, cout, cin = w3.shape
    p = y3.shape[2]
    size = x3.itemsize
    one, zero = y3.dtype.type(1), y3.dtype.type(0)
    for t in range(first, stop):
        i, g, r0, r1, p0, cols = _item(t, groups, cout, p, block, rows)
        wa = w3[g].ctypes.data + r0 * cin * size
        xa = x3[i].ctypes.data + p0 * size
        ya = y3[i].ctypes.data + (r0 * p + p0) * size
        if ilp64:
            _gemm64(gemm, False, r1 - r0, cols, cin, one, wa, cin, xa, p, zero, ya, p)
        else:
            _gemm32(gemm, False, r1 - r0, cols, cin, one, wa, cin, xa, p, zero, ya, p)
        yr = y3[i, r0:r1]
        rr = r3[i, r0:r1] if has_res else yr
        block_epilogue(yr, bias[g, r0:r1], rr, has_res, p0, p0 + cols, act, lo, hi)


def item_count(n: int, cout: int, p: int, block: int, rows: int) -> int:
    """Work items of :func:`conv1x1` (samples × row blocks × column blocks)."""
    return n * -(-cout // rows) * -(-p // block)


@njit(cache=True, nogil=True, error_model="numpy")
def conv1x1(
    gemm, ilp64, w3, x3, y3, bias, r3, has_res, block, rows, act, lo, hi
):  # pragma: no cover
    """``y3[i] = act(w3[g] @ x3[i] + bias[g] [+ r3[i]])``, g = i % G, for every sample i —
    ``w3`` (G, Cout, Cin), ``bias`` (G, Cout), ``x3`` (N·G, Cin, P), ``y3`` and ``r3``
    (N·G, Cout, P), C-contiguous (a grouped convolution's samples are its groups; G = 1
    without groups) — one block of ``block``
    output columns and ``rows`` output channels at a time (the GEMM's output still in cache
    for the epilogue), in the calling thread without the GIL. ``gemm`` is the address of
    ``cblas_sgemm`` (float32) or ``cblas_dgemm`` (float64) with 64-bit (``ilp64``) or 32-bit
    BLAS ints; numpy's BLAS should be at one thread meanwhile (openge.kernels.blas.single_blas)."""
    count = y3.shape[0] * ((w3.shape[1] + rows - 1) // rows) * ((y3.shape[2] + block - 1) // block)
    _items(gemm, ilp64, w3, x3, y3, bias, r3, has_res, block, rows, act, lo, hi, 0, count)


@njit(cache=True, nogil=True, error_model="numpy")
def conv1x1_drive(
    gemm,
    ilp64,
    w3,
    x3,
    y3,
    bias,
    r3,
    has_res,
    block,
    rows,
    act,
    lo,
    hi,
    total,
    ctl,
    signal,
    worker,
    gen,
    spins,
):  # pragma: no cover
    """:func:`conv1x1` on a thread of openge's team: column blocks claimed part by part
    (openge.kernels.sync), without the GIL."""
    args = (gemm, ilp64, w3, x3, y3, bias, r3, has_res, block, rows, act, lo, hi)
    return sync.drive(_items, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def _tile_items(
    wp, x3, y3, bias, r3, has_res, offs, block, rows, act, lo, hi, first, stop
):  # pragma: no cover
    """Work items ``first`` to ``stop`` of :func:`conv1x1_tiles` (item t as in :func:`_items`:
    sample, block of ``rows`` output channels — a multiple of gemm.MR — and block of ``block``
    columns, the columns fastest). Per item, strips of gemm.NR columns: each strip of x (Cin ×
    NR, in L1) meets every MR-row block of the packed weights in openge's micro-kernel
    (gemm.tile_rows, x's rows read in place at the offsets ``offs``), then the epilogue runs
    on the item while it is in cache; only the item's own columns are written (``block`` need
    not be a multiple of NR). A strip that would read past the end of x's plane is computed
    from the plane's last NR columns into a scratch tile (planes of at least NR positions)."""
    groups = wp.shape[0]
    cin, p = x3.shape[1], x3.shape[2]
    cout = y3.shape[1]
    mr, nr = gemm.MR, gemm.NR
    size = x3.itemsize
    oa = offs.ctypes.data
    scratch = np.empty((mr, nr), x3.dtype)
    for t in range(first, stop):
        i, g, r0, r1, p0, cols = _item(t, groups, cout, p, block, rows)
        wa = wp[g].ctypes.data
        xa = x3[i].ctypes.data
        ya = y3[i].ctypes.data
        last = gemm.whole_rows(r0, r1)  # MR-row blocks below, then one smaller tile
        for c in range(p0, p0 + cols, nr):
            width = min(nr, p0 + cols - c)  # the item's columns only (a block need not be
            # a multiple of NR: the team's column ranges are multiples of 16)
            if c + nr <= p:
                for r in range(r0, last, mr):
                    gemm.tile_rows(
                        cin,
                        wa + r * cin * size,
                        1,
                        mr,
                        xa + c * size,
                        oa,
                        ya + (r * p + c) * size,
                        p,
                        min(mr, r1 - r),
                        width,
                        0,
                    )
                if last < r1:
                    gemm.tile_rows_last(
                        cin,
                        wa + last * cin * size,
                        1,
                        mr,
                        xa + c * size,
                        oa,
                        ya + (last * p + c) * size,
                        p,
                        r1 - last,
                        width,
                        0,
                    )
                continue
            # near the plane's end: read in place, x's last row would be read past its end,
            # so the plane's last NR columns (p ≥ NR) are computed into the scratch and the
            # strip's own columns copied out
            shift = c - (p - nr)
            for r in range(r0, r1, mr):
                rows_here = min(mr, r1 - r)
                gemm.tile_rows(
                    cin,
                    wa + r * cin * size,
                    1,
                    mr,
                    xa + (p - nr) * size,
                    oa,
                    scratch.ctypes.data,
                    nr,
                    rows_here,
                    nr,
                    0,
                )
                for q in range(rows_here):
                    for j in range(shift, shift + width):
                        y3[i, r + q, p - nr + j] = scratch[q, j]
        yr = y3[i, r0:r1]
        rr = r3[i, r0:r1] if has_res else yr
        block_epilogue(yr, bias[g, r0:r1], rr, has_res, p0, p0 + cols, act, lo, hi)


@njit(cache=True, nogil=True, error_model="numpy")
def conv1x1_tiles(
    wp, x3, y3, bias, r3, has_res, offs, block, rows, act, lo, hi
):  # pragma: no cover
    """:func:`conv1x1` for float32 on openge's own micro-kernel instead of BLAS, for few input
    channels: the weights ``wp`` (G, ·) packed by gemm.pack_rows per group, x read in place
    (``offs`` = k·P for k < Cin, int64), ``rows`` a multiple of gemm.MR. With K = 16 the
    whole product is 16 steps per tile: OpenBLAS's packing of both operands and its
    per-call setup cost as much as the arithmetic there."""
    count = y3.shape[0] * ((y3.shape[1] + rows - 1) // rows) * ((y3.shape[2] + block - 1) // block)
    _tile_items(wp, x3, y3, bias, r3, has_res, offs, block, rows, act, lo, hi, 0, count)


@njit(cache=True, nogil=True, error_model="numpy")
def conv1x1_tiles_drive(
    wp,
    x3,
    y3,
    bias,
    r3,
    has_res,
    offs,
    block,
    rows,
    act,
    lo,
    hi,
    total,
    ctl,
    signal,
    worker,
    gen,
    spins,
):  # pragma: no cover
    """:func:`conv1x1_tiles` on a thread of openge's team (openge.kernels.sync)."""
    args = (wp, x3, y3, bias, r3, has_res, offs, block, rows, act, lo, hi)
    return sync.drive(_tile_items, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def _column_items(gemm, ilp64, gemv, a, b, trans_b, y, cols, first, stop):  # pragma: no cover
    """Items ``first`` to ``stop`` of ``y = a @ B``: item t is y's columns [t·cols, (t + 1)·cols),
    one BLAS call each — the matrix-vector product at ``gemv`` (when not 0) for a single row
    (OpenBLAS's GEMM with one row ran 3-4× slower than its GEMV, numpy's path), else the
    GEMM. ``a`` (M, K) and ``y`` (M, N) C-contiguous; ``b`` is B (K, N) C-contiguous, or with
    ``trans_b`` Bᵀ (N, K) C-contiguous (a Gemm's weights as stored)."""
    m, k = a.shape
    n = y.shape[1]
    size = y.itemsize
    one, zero = y.dtype.type(1), y.dtype.type(0)
    ldb = k if trans_b else n
    vector = m == 1 and gemv != 0
    for t in range(first, stop):
        c0 = t * cols
        width = min(cols, n - c0)
        if width <= 0:
            continue
        ba = b.ctypes.data + (c0 * ldb if trans_b else c0) * size
        ya = y.ctypes.data + c0 * size
        if vector:  # y[c0:] = Wᵀ-rows @ a (trans_b) or B[:, c0:]ᵀ @ a
            rows_, cols_ = (width, k) if trans_b else (k, width)
            if ilp64:
                _gemv64(gemv, not trans_b, rows_, cols_, one, ba, ldb, a.ctypes.data, zero, ya)
            else:
                _gemv32(gemv, not trans_b, rows_, cols_, one, ba, ldb, a.ctypes.data, zero, ya)
        elif ilp64:
            _gemm64(gemm, trans_b, m, width, k, one, a.ctypes.data, k, ba, ldb, zero, ya, n)
        else:
            _gemm32(gemm, trans_b, m, width, k, one, a.ctypes.data, k, ba, ldb, zero, ya, n)


def column_count(n: int, cols: int) -> int:
    """Items of :func:`columns` for ``n`` output columns."""
    return -(-n // cols)


@njit(cache=True, nogil=True, error_model="numpy")
def columns(gemm, ilp64, gemv, a, b, trans_b, y, cols):  # pragma: no cover
    """``y = a @ B`` (see :func:`_column_items`) in the calling thread without the GIL, a GEMM
    call per block of ``cols`` columns; numpy's BLAS should be at one thread meanwhile."""
    count = (y.shape[1] + cols - 1) // cols
    _column_items(gemm, ilp64, gemv, a, b, trans_b, y, cols, 0, count)


@njit(cache=True, nogil=True, error_model="numpy")
def columns_drive(
    gemm, ilp64, gemv, a, b, trans_b, y, cols, total, ctl, signal, worker, gen, spins
):  # pragma: no cover
    """:func:`columns` on a thread of openge's team: column blocks claimed part by part
    (openge.kernels.sync). A product of few rows reads its weights once: split by columns,
    each core streams its own part of them."""
    args = (gemm, ilp64, gemv, a, b, trans_b, y, cols)
    return sync.drive(_column_items, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def _batch_items(gemm, ilp64, a_at, b_at, y3, k, lda, ldb, trans_b, rows, first, stop):
    """Items ``first`` to ``stop`` of ``y3[e] = A_e @ B_e`` for every batch entry e, one BLAS
    GEMM call each: item t is entry t // blocks, rows [r·rows, (r + 1)·rows) of it (r = t mod
    blocks, blocks = ⌈M / rows⌉). ``a_at[e]`` / ``b_at[e]`` are the byte addresses of A_e (M ×
    K, row-major with leading dimension ``lda``) and B_e (K × N row-major, or with ``trans_b``
    Bᵀ (N × K) row-major, leading dimension ``ldb``); ``y3`` (E, M, N) C-contiguous."""
    m, n = y3.shape[1], y3.shape[2]
    size = y3.itemsize
    one, zero = y3.dtype.type(1), y3.dtype.type(0)
    blocks = (m + rows - 1) // rows
    base = y3.ctypes.data
    for t in range(first, stop):
        e = t // blocks
        r0 = (t - e * blocks) * rows
        h = min(rows, m - r0)
        if h <= 0:
            continue
        aa = a_at[e] + r0 * lda * size
        ya = base + (e * m + r0) * n * size
        if ilp64:
            _gemm64(gemm, trans_b, h, n, k, one, aa, lda, b_at[e], ldb, zero, ya, n)
        else:
            _gemm32(gemm, trans_b, h, n, k, one, aa, lda, b_at[e], ldb, zero, ya, n)


def batch_count(entries: int, m: int, rows: int) -> int:
    """Items of :func:`batch` for ``entries`` products of ``m`` rows, ``rows`` per item."""
    return entries * -(-m // rows)


@njit(cache=True, nogil=True, error_model="numpy")
def batch(gemm, ilp64, a_at, b_at, y3, k, lda, ldb, trans_b, rows):  # pragma: no cover
    """A batch of products (see :func:`_batch_items`) in the calling thread without the GIL;
    numpy's BLAS should be at one thread meanwhile."""
    count = y3.shape[0] * ((y3.shape[1] + rows - 1) // rows)
    _batch_items(gemm, ilp64, a_at, b_at, y3, k, lda, ldb, trans_b, rows, 0, count)


@njit(cache=True, nogil=True, error_model="numpy")
def batch_drive(
    gemm, ilp64, a_at, b_at, y3, k, lda, ldb, trans_b, rows, total, ctl, signal, worker, gen, spins
):  # pragma: no cover
    """:func:`batch` on a thread of openge's team: (entry, row block) items claimed part by
    part (openge.kernels.sync). Attention's products (one per head, both operands computed
    by the run) are too small to split well as numpy's BLAS calls on openge's pool."""
    args = (gemm, ilp64, a_at, b_at, y3, k, lda, ldb, trans_b, rows)
    return sync.drive(_batch_items, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def _depth_items(gemm, ilp64, gemv, a, b, parts, depth, first, stop):  # pragma: no cover
    """Items ``first`` to ``stop`` of ``a @ B`` cut along its depth K: item t is ``parts[t] =
    a[:, t·depth : (t + 1)·depth] @ B[t·depth : (t + 1)·depth, :]``, one BLAS call (the
    matrix-vector product at ``gemv``, when not 0, for a single row). ``a`` (M, K), ``b`` = B
    (K, N) and ``parts`` (T, M, N) C-contiguous: each item reads one contiguous stretch of B."""
    m, k = a.shape
    n = b.shape[1]
    size = b.itemsize
    one, zero = parts.dtype.type(1), parts.dtype.type(0)
    vector = m == 1 and gemv != 0
    for t in range(first, stop):
        k0 = t * depth
        kk = min(depth, k - k0)
        if kk <= 0:
            parts[t] = zero
            continue
        ba = b.ctypes.data + k0 * n * size
        aa = a.ctypes.data + k0 * size
        pa = parts.ctypes.data + t * m * n * size
        if vector:  # parts[t] = B-rows [k0, k0 + kk)ᵀ @ a[k0 : k0 + kk]
            if ilp64:
                _gemv64(gemv, True, kk, n, one, ba, n, aa, zero, pa)
            else:
                _gemv32(gemv, True, kk, n, one, ba, n, aa, zero, pa)
        elif ilp64:
            _gemm64(gemm, False, m, n, kk, one, aa, k, ba, n, zero, pa, n)
        else:
            _gemm32(gemm, False, m, n, kk, one, aa, k, ba, n, zero, pa, n)


def depth_count(k: int, depth: int) -> int:
    """Items of :func:`depth_parts` for a depth of ``k``, ``depth`` per item."""
    return -(-k // depth)


@njit(cache=True, nogil=True, error_model="numpy")
def depth_parts(gemm, ilp64, gemv, a, b, parts, depth):  # pragma: no cover
    """Every part of :func:`_depth_items` in the calling thread without the GIL; numpy's BLAS
    should be at one thread meanwhile. :func:`depth_sum` adds them up."""
    _depth_items(gemm, ilp64, gemv, a, b, parts, depth, 0, parts.shape[0])


@njit(cache=True, nogil=True, error_model="numpy")
def depth_parts_drive(
    gemm, ilp64, gemv, a, b, parts, depth, total, ctl, signal, worker, gen, spins
):  # pragma: no cover
    """:func:`depth_parts` on a thread of openge's team: parts claimed one by one
    (openge.kernels.sync). A product of few rows with B (K, N) streams B once; cut by
    columns, each core read every row of B in part and the two cores' prefetchers fetched
    each other's lines (no gain at two threads); cut by depth, each core streams a
    contiguous half."""
    args = (gemm, ilp64, gemv, a, b, parts, depth)
    return sync.drive(_depth_items, args, total, ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True, error_model="numpy")
def depth_sum(parts, y):  # pragma: no cover
    """``y = parts[0] + parts[1] + …``, added in that order: the same values whichever
    threads made the parts. ``parts`` (T, M, N) and ``y`` (M, N) C-contiguous."""
    size = y.size
    pf, yf = parts.reshape(parts.size), y.reshape(size)
    for e in range(size):
        yf[np.uint64(e)] = pf[np.uint64(e)]
    for t in range(1, parts.shape[0]):
        base = t * size
        for e in range(size):
            yf[np.uint64(e)] = yf[np.uint64(e)] + pf[np.uint64(base + e)]


__all__ = [
    "batch",
    "batch_count",
    "batch_drive",
    "column_count",
    "columns",
    "columns_drive",
    "conv1x1",
    "conv1x1_drive",
    "conv1x1_tiles",
    "conv1x1_tiles_drive",
    "depth_count",
    "depth_parts",
    "depth_parts_drive",
    "depth_sum",
    "item_count",
]
