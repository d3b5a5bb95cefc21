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
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from openge.kernels import sync
from openge.kernels.depthwise import block_epilogue

_ROW_MAJOR, _NO_TRANS = 101, 111


def _gemm_intrinsic(int_bits: int):
    """An intrinsic calling ``cblas_?gemm`` at an address with ``int_bits``-bit BLAS ints."""

    @intrinsic
    def gemm(typingctx, fn, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):  # pragma: no cover
        if not isinstance(alpha, types.Float) or alpha != beta:
            return None
        sig = types.none(fn, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

        def codegen(context, builder, signature, args):
            flt = ir.FloatType() if alpha.bitwidth == 32 else ir.DoubleType()
            ptr = flt.as_pointer()
            blas_int = ir.IntType(int_bits)
            enum = ir.IntType(32)
            # order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
            params = [enum] * 3 + [blas_int] * 3 + [flt, ptr, blas_int, ptr, blas_int]
            fnty = ir.FunctionType(ir.VoidType(), [*params, flt, ptr, blas_int])
            (f, m_, n_, k_, al, a_, lda_, b_, ldb_, be, c_, ldc_) = args
            tys = signature.args

            def as_int(v, ty):
                return (
                    context.cast(builder, v, ty, types.int64)
                    if int_bits == 64
                    else (builder.trunc(context.cast(builder, v, ty, types.int64), blas_int))
                )

            call = builder.inttoptr(
                context.cast(builder, f, tys[0], types.uintp), fnty.as_pointer()
            )
            pa = builder.inttoptr(context.cast(builder, a_, tys[5], types.uintp), ptr)
            pb = builder.inttoptr(context.cast(builder, b_, tys[7], types.uintp), ptr)
            pc = builder.inttoptr(context.cast(builder, c_, tys[10], types.uintp), ptr)
            builder.call(
                call,
                [
                    enum(_ROW_MAJOR),
                    enum(_NO_TRANS),
                    enum(_NO_TRANS),
                    as_int(m_, tys[1]),
                    as_int(n_, tys[2]),
                    as_int(k_, tys[3]),
                    al,
                    pa,
                    as_int(lda_, tys[6]),
                    pb,
                    as_int(ldb_, tys[8]),
                    be,
                    pc,
                    as_int(ldc_, tys[11]),
                ],
            )
            return context.get_dummy_value()

        return sig, codegen

    return gemm


_gemm64 = _gemm_intrinsic(64)
_gemm32 = _gemm_intrinsic(32)


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
    cblocks = (p + block - 1) // block
    rblocks = (cout + rows - 1) // rows
    size = x3.itemsize
    one, zero = y3.dtype.type(1), y3.dtype.type(0)
    for t in range(first, stop):
        i = t // (rblocks * cblocks)
        g = i % groups
        rest = t - i * rblocks * cblocks
        rb = rest // cblocks
        r0 = rb * rows
        r1 = min(cout, r0 + rows)
        p0 = (rest - rb * cblocks) * block
        cols = min(block, p - p0)
        wa = w3[g].ctypes.data + r0 * cin * size
        xa = x3[i].ctypes.data + p0 * size
        ya = y3[i].ctypes.data + (r0 * p + p0) * size
        if ilp64:
            _gemm64(gemm, r1 - r0, cols, cin, one, wa, cin, xa, p, zero, ya, p)
        else:
            _gemm32(gemm, r1 - r0, cols, cin, one, wa, cin, xa, p, zero, ya, p)
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


__all__ = ["conv1x1", "conv1x1_drive", "item_count"]
