"""openge's own float32 GEMM for products with a constant right operand (a MatMul's weights):
a register-tiled micro-kernel written in LLVM vector IR, the weights packed once at load
(kernels layer, numba).

``C[M, N] = A[M, K] @ W[K, N]``, row-major. W is packed by :func:`pack_b` when the model
loads into panels of :data:`NR` columns (``[K][NR]`` each, zero past N); A — the activations —
is read in place: each step of K broadcasts one value from each of :data:`MR` rows of A (each
row read front to back, so the hardware prefetcher streams them) and loads :data:`NV`
vectors of the W panel, feeding ``MR × NV`` fused multiply-adds into an ``MR × NR`` tile of C
held in vector registers for a pass of at most :data:`KC` steps. This is the orientation of
ONNX Runtime's MLAS for the same products; numpy's OpenBLAS packs both operands on every call
and ran a transformer's products (128×768 @ 768×3072 and the like) 1.3× slower than MLAS on
an AVX-512 Xeon.

The tile is chosen for the machine numba compiles for: AVX-512 ``12 × 32`` (24 accumulators
of 32 vector registers), AVX2 ``6 × 16`` (12 of 16), others ``8 × 8``. The micro-kernel is IR,
not assembly: LLVM allocates the registers and picks the instructions, so the same source
builds on x86-64 and arm64.
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from openge.kernels import allocator, sync


def _host_tile() -> tuple[int, int, int]:
    """(float32 lanes per vector, vectors per tile row, tile rows) for the host CPU."""
    features = llvm_binding.get_host_cpu_features()
    if features.get("avx512f"):
        return 16, 2, 12
    if features.get("avx2") and features.get("fma"):
        return 8, 2, 6
    return 4, 2, 8


VW, NV, MR = _host_tile()
#: Rows of the two smaller tiles that take a block's last rows when fewer than MR are left
#: (64 output channels are 5 tiles of 12 and one of 4, not 6 of 12: the rows past ``rows``
#: cost as much as the others). Squeezenet's 16 → 64 3×3 at 55² took as long as 16 → 72
#: (0.64 against 0.65 ms; 16 → 60 0.55), and so did the 3 → 64 stem (AVX-512 Zen 4).
MR_MID, MR_SMALL = (8, 4) if MR == 12 else (4, 2)
#: Columns of a tile and of a packed panel of W.
NR = VW * NV
#: Rows and vectors of :func:`tile_t`'s tile: 7 × 3 with 32 vector registers (21
#: accumulators), 4 × 3 with 16.
MR_T, NV_T = (7, 3) if VW == 16 else (4, 3)
#: Columns of :func:`tile_t`'s tile and of its packed panels.
NR_T = VW * NV_T
#: Steps of K per pass of the micro-kernel (a panel's pass, KC × NR floats, stays in L1).
KC = 256
#: Steps of K the micro-kernel prefetches its A operand ahead (~300 cycles of memory latency
#: at ~12 cycles per step).
PREFETCH_STEPS = 32
#: Steps of K :func:`tile_t` prefetches its B panel ahead.
PREFETCH_B_STEPS = 16
#: Bytes the packed panels are aligned to.
ALIGN = 64
#: Slices of W's panels per row block in :func:`matmul_drive`'s items.
SLICES = 2


def _store_tile(builder, finals, c_ptr, ldc, rows, cols, adding: bool, mr: int, nv: int) -> None:
    """IR storing the accumulators ``finals`` to C's tile (added to C when ``adding``): whole
    rows while ``rows`` > i; whole vectors while ``cols`` covers them, the last, partial one
    through a lane mask (``llvm.masked.load``/``store``: one masked instruction with AVX-512
    or AVX2, which the lane-by-lane stores it replaced made 2 × (VW - 1) branches per row and
    vector of every tile, a third of a loaded kernel's code)."""
    i64 = ir.IntType(64)
    i32 = ir.IntType(32)
    vec = ir.VectorType(ir.FloatType(), VW)
    pv = vec.as_pointer()
    lanes_ty = ir.VectorType(i64, VW)
    mask_ty = ir.VectorType(ir.IntType(1), VW)
    masked_store = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [vec, pv, i32, mask_ty]),
        f"llvm.masked.store.v{VW}f32.p0v{VW}f32",  # remangled by LLVM 17+
    )
    masked_load = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(vec, [pv, i32, mask_ty, vec]),
        f"llvm.masked.load.v{VW}f32.p0v{VW}f32",
    )
    lanes = ir.Constant(lanes_ty, list(range(VW)))
    undef = ir.Constant(lanes_ty, ir.Undefined)
    splat_mask = ir.Constant(ir.VectorType(i32, VW), [0] * VW)
    for i in range(mr):
        with builder.if_then(builder.icmp_signed(">", rows, i64(i)), likely=True):
            row_ptr = builder.gep(c_ptr, [builder.mul(ldc, i64(i))])
            for j in range(nv):
                left = builder.sub(cols, i64(j * VW))
                addr = builder.bitcast(builder.gep(row_ptr, [i64(j * VW)]), pv)
                full = builder.icmp_signed(">=", left, i64(VW))
                with builder.if_else(full, likely=True) as (whole, part):
                    with whole:
                        val = finals[i][j]
                        if adding:
                            val = builder.fadd(val, builder.load(addr, align=4))
                        builder.store(val, addr, align=4)
                    with part:
                        splat = builder.shuffle_vector(
                            builder.insert_element(undef, left, i32(0)), undef, splat_mask
                        )
                        mask = builder.icmp_signed("<", lanes, splat)  # lanes [0, left)
                        val = finals[i][j]
                        if adding:
                            zero = ir.Constant(vec, [0.0] * VW)
                            val = builder.fadd(
                                val, builder.call(masked_load, [addr, i32(4), mask, zero])
                            )
                        builder.call(masked_store, [val, addr, i32(4), mask])


def _phi_grid(builder, vec, name, shape, constant_in, grid_in=None) -> list[list]:
    """IR: a ``shape`` = (rows, vectors) grid of vector phis, each with the incoming ``(value,
    block)`` pairs of ``constant_in`` and, when given, its own cell of ``grid_in`` = (grid,
    block)."""
    grid = []
    for i in range(shape[0]):
        row = []
        for j in range(shape[1]):
            phi = builder.phi(vec, f"{name}{i}_{j}")
            for value, block in constant_in:
                phi.add_incoming(value, block)
            if grid_in is not None:
                phi.add_incoming(grid_in[0][i][j], grid_in[1])
            row.append(phi)
        grid.append(row)
    return grid


def _make_tile(mr: int, nv: int, name: str, stream_b: bool = False, pack: int = 0, panel: int = 0):
    """The micro-kernel intrinsic for an ``mr × nv·VW`` tile (see :func:`tile`); with
    ``stream_b`` it prefetches the B panel ahead too (a panel streamed from memory). Its fast
    loop is for A packed in blocks of ``pack`` rows (default ``mr``); B's panels are
    ``panel`` floats wide (default ``nv·VW``: a narrower tile takes a panel's first
    vectors)."""

    def impl(typingctx, kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate):  # pragma: no cover
        sig = types.none(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate)
        return sig, _tile_codegen(mr, nv, stream_b, False, pack or mr, panel or nv * VW)

    impl.__name__ = impl.__qualname__ = name
    return intrinsic(impl)


def _make_tile_rows(mr: int, nv: int, name: str, pack: int = 0):
    """The micro-kernel intrinsic for an ``mr × nv·VW`` tile whose B rows are read in place
    at offsets from a table (see :func:`tile_rows`); ``pack`` as in :func:`_make_tile`."""

    def impl(
        typingctx, kc, a, lda, astep, xb, offs, c, ldc, rows, cols, accumulate
    ):  # pragma: no cover
        sig = types.none(kc, a, lda, astep, xb, offs, c, ldc, rows, cols, accumulate)
        return sig, _tile_codegen(mr, nv, False, True, pack or mr, nv * VW)

    impl.__name__ = impl.__qualname__ = name
    return intrinsic(impl)


def _tile_codegen(mr: int, nv: int, stream_b: bool, gathered: bool, pack: int, panel: int):
    """The codegen of an ``mr × nv·VW`` micro-kernel (see :func:`tile`); ``gathered``: B's
    row k is ``nv·VW`` floats at ``xb + offs[k]`` floats (:func:`tile_rows`), not row k of a
    packed panel; ``pack``: the row blocks of a packed A (see :func:`_tile_function`);
    ``panel``: the floats of B's packed panel rows."""

    def codegen(context, builder, signature, args):
        values = [
            context.cast(builder, v, t, types.int64)
            for v, t in zip(args, signature.args, strict=True)
        ]
        kernel = _tile_function(
            builder.module, mr, nv, stream_b, gathered, len(values), pack, panel
        )
        builder.call(kernel, values)
        return context.get_dummy_value()

    return codegen


def _tile_function(
    module, mr: int, nv: int, stream_b: bool, gathered: bool, arity: int, pack: int, panel: int
):
    """The micro-kernel as a function of its own in ``module`` (made on first use): a branch
    to one of two K loops, each a function that is never inlined into its caller (its loop
    then has the machine's general registers to itself). The first is for A packed in blocks
    of ``pack`` rows (``lda`` 1, ``astep`` ``pack``: a convolution's filter; ``pack`` is
    ``mr`` but for the smaller tiles that take a block's last rows), its addresses
    constant offsets from one pointer; the second for any A. With ``lda`` and ``astep`` known
    only at run time, LLVM walks A's ``mr`` rows with a chain of dependent additions each
    step. Inlined, on an AVX2 Zen 3 core (12 FMAs per step there, 24 with AVX-512's tile),
    squeezenet's 16 → 64 3×3 at 55² took 1.74 ms, 0.73 with these out-of-line loops."""
    i64 = ir.IntType(64)
    fnty = ir.FunctionType(ir.VoidType(), [i64] * arity)
    stem = f"openge_{'rows' if gathered else 'panel'}_tile_{mr}x{nv}{'_s' if stream_b else ''}"
    if pack != mr:
        stem += f"_p{pack}"
    if panel != nv * VW:
        stem += f"_w{panel}"
    fn = cgutils.get_or_insert_function(module, fnty, stem)
    if not fn.is_declaration:
        return fn
    loops = []
    for packed in (True, False):
        kind = "packed" if packed else "any"
        loop = cgutils.get_or_insert_function(module, fnty, f"{stem}_{kind}")
        loop.linkage = "internal"
        loop.attributes.add("noinline")
        loop.attributes.add("nounwind")
        builder = ir.IRBuilder(loop.append_basic_block("entry"))
        _tile_body(builder, list(loop.args), mr, nv, stream_b, gathered, packed and pack, panel)
        builder.ret_void()
        loops.append(loop)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    args = list(fn.args)
    lda, astep = args[2], args[3]
    packed = builder.and_(
        builder.icmp_signed("==", lda, i64(1)), builder.icmp_signed("==", astep, i64(pack))
    )
    with builder.if_else(packed, likely=True) as (then, otherwise):
        with then:
            builder.call(loops[0], args)
        with otherwise:
            builder.call(loops[1], args)
    builder.ret_void()
    return fn


def _tile_body(
    builder, values, mr: int, nv: int, stream_b: bool, gathered: bool, packed: int, panel: int
) -> None:
    """The IR of an ``mr × nv·VW`` micro-kernel over its int64 arguments ``values`` (see
    :func:`tile`, :func:`tile_rows`); ``packed`` nonzero: for ``lda`` 1 and ``astep``
    ``packed`` only; B's packed panel rows ``panel`` floats apart."""
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, VW)
    i64 = ir.IntType(64)
    i32 = ir.IntType(32)
    pf = f32.as_pointer()
    pv = vec.as_pointer()
    if gathered:
        kc_, a_, lda_, astep_, bp_, offs_, c_, ldc_, rows_, cols_, acc_ = values
        offs_ptr = builder.inttoptr(offs_, i64.as_pointer())
    else:
        kc_, a_, lda_, astep_, bp_, c_, ldc_, rows_, cols_, acc_ = values
    a_ptr = builder.inttoptr(a_, pf)
    b_ptr = builder.inttoptr(bp_, pf)
    c_ptr = builder.inttoptr(c_, pf)
    fma = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vec, [vec, vec, vec]), f"llvm.fma.v{VW}f32"
    )
    i8p = ir.IntType(8).as_pointer()
    prefetch = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
        "llvm.prefetch.p0i8",
    )
    zero = ir.Constant(vec, [0.0] * VW)
    undef = ir.Constant(vec, ir.Undefined)
    splat_mask = ir.Constant(ir.VectorType(i32, VW), [0] * VW)
    # rows past ``rows`` read row 0 again (their sums are never stored)
    if packed:
        lda_, astep_ = i64(1), i64(packed)
    row_ptrs = []
    for i in range(mr):
        live = builder.icmp_signed(">", rows_, i64(i))
        offset = builder.select(live, builder.mul(lda_, i64(i)), i64(0))
        row_ptrs.append(builder.gep(a_ptr, [offset]))

    pre = builder.block
    loop = builder.function.append_basic_block("tile.k")
    done = builder.function.append_basic_block("tile.store")
    builder.cbranch(builder.icmp_signed(">", kc_, i64(0)), loop, done)

    builder.position_at_end(loop)
    k = builder.phi(i64, "k")
    k.add_incoming(i64(0), pre)
    accs = _phi_grid(builder, vec, "acc", (mr, nv), [(zero, pre)])
    if gathered:
        b_row = builder.gep(b_ptr, [builder.load(builder.gep(offs_ptr, [k]), align=8)])
    else:
        b_row = builder.gep(b_ptr, [builder.mul(k, i64(panel))])
    b_align = 4 if gathered else 4 * VW
    bv = [
        builder.load(builder.bitcast(builder.gep(b_row, [i64(j * VW)]), pv), align=b_align)
        for j in range(nv)
    ]
    new_accs = []
    a_k = builder.mul(k, astep_)
    # the A stream PREFETCH_STEPS steps of K ahead (a packed filter streams from memory
    # at small outputs: the hardware prefetcher stops at each 4 KiB page)
    ahead = builder.gep(row_ptrs[0], [builder.add(a_k, builder.mul(astep_, i64(PREFETCH_STEPS)))])
    builder.call(prefetch, [builder.bitcast(ahead, i8p), i32(0), i32(3), i32(1)])
    if stream_b:
        for j in range(nv):
            b_ahead = builder.gep(b_row, [i64(PREFETCH_B_STEPS * panel + j * VW)])
            builder.call(prefetch, [builder.bitcast(b_ahead, i8p), i32(0), i32(3), i32(1)])
    for i in range(mr):
        value = builder.load(builder.gep(row_ptrs[i], [a_k]), align=4)
        splat = builder.shuffle_vector(
            builder.insert_element(undef, value, i32(0)), undef, splat_mask
        )
        new_accs.append([builder.call(fma, [splat, bv[j], accs[i][j]]) for j in range(nv)])
    k_next = builder.add(k, i64(1))
    k.add_incoming(k_next, loop)
    for acc_row, new_row in zip(accs, new_accs, strict=True):
        for acc, new in zip(acc_row, new_row, strict=True):
            acc.add_incoming(new, loop)
    builder.cbranch(builder.icmp_signed("<", k_next, kc_), loop, done)

    builder.position_at_end(done)
    finals = _phi_grid(builder, vec, "sum", (mr, nv), [(zero, pre)], (new_accs, loop))
    with builder.if_else(builder.icmp_signed("!=", acc_, i64(0))) as (add_path, set_path):
        with add_path:
            _store_tile(builder, finals, c_ptr, ldc_, rows_, cols_, True, mr, nv)
        with set_path:
            _store_tile(builder, finals, c_ptr, ldc_, rows_, cols_, False, mr, nv)


#: ``tile(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate)``: ``C[:rows, :cols] (+)=
#: A[:rows, :kc] @ Bp`` for one MR × NR tile. ``a`` is the address of A's first element,
#: A[i, k] ``i·lda + k·astep`` floats from it (rows past ``rows`` are not read): ``astep`` 1
#: for A read in place, MR (and ``lda`` 1) for A packed in blocks of MR rows
#: (:func:`pack_rows`), each step of K one contiguous run; ``bp`` the address of a packed
#: panel's ``kc × NR`` floats (ALIGN-aligned), ``c`` of C's tile (row stride ``ldc``);
#: ``accumulate`` nonzero adds to C. A tile of fewer than MR rows costs as much as a whole
#: one: a block's last rows go to :func:`tile_last` (see :func:`whole_rows`).
tile = _make_tile(MR, NV, "tile")
#: ``tile_rows(kc, a, lda, astep, xb, offs, c, ldc, rows, cols, accumulate)``: :func:`tile`
#: with B's row k read in place: NR floats at ``xb + offs[k]`` floats (``xb`` an address,
#: ``offs`` the address of kc int64 offsets), any alignment — a convolution's windows read
#: straight from its padded input (openge.kernels.im2col's direct items), no panel copied.
tile_rows = _make_tile_rows(MR, NV, "tile_rows")
_tile_mid = _make_tile(MR_MID, NV, "tile_mid", pack=MR)
_tile_small = _make_tile(MR_SMALL, NV, "tile_small", pack=MR)
_tile_rows_mid = _make_tile_rows(MR_MID, NV, "tile_rows_mid", pack=MR)
_tile_rows_small = _make_tile_rows(MR_SMALL, NV, "tile_rows_small", pack=MR)


@njit(inline="always")
def whole_rows(r0, r1):  # pragma: no cover - compiled
    """Where rows [r0, r1) stop taking :func:`tile` (whole MR-row blocks and a last block of
    more than MR_MID rows): the rows from there on, at most MR_MID, take :func:`tile_last`
    or :func:`tile_rows_last` in one call. A 3-way choice inside the loop over the blocks
    made LLVM compile that loop's tiles 1.3-2× slower (Winograd's 48 → 192 at 13²: 252 →
    440 µs), so the loops stay as they were and the last block is a call of its own."""
    rest = (r1 - r0) % MR
    return r1 - rest if 0 < rest <= MR_MID else r1


@njit(inline="always")
def tile_last(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate):  # pragma: no cover
    """:func:`tile` for a block's last ``rows`` ≤ MR_MID rows, on a tile of MR_MID or
    MR_SMALL rows (A packed in blocks of MR rows still takes the packed loop). Each sum is
    the same sequence of fused multiply-adds on any tile, so the bits do not change."""
    if rows > MR_SMALL:
        _tile_mid(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate)
    else:
        _tile_small(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate)


@njit(inline="always")
def tile_rows_last(kc, a, lda, astep, xb, offs, c, ldc, rows, cols, accumulate):  # pragma: no cover
    """:func:`tile_rows` for a block's last ``rows`` ≤ MR_MID rows (see :func:`tile_last`)."""
    if rows > MR_SMALL:
        _tile_rows_mid(kc, a, lda, astep, xb, offs, c, ldc, rows, cols, accumulate)
    else:
        _tile_rows_small(kc, a, lda, astep, xb, offs, c, ldc, rows, cols, accumulate)


#: The same for a ``MR_T × NR_T`` tile (:data:`MR_T`): rows of 7, which cut 7×7, 14×14 and
#: 28×28 planes exactly when the rows are output positions.
tile_t = _make_tile(MR_T, NV_T, "tile_t", stream_b=True)
_tile_t_two = _make_tile(MR_T, NV_T - 1, "tile_t_two", stream_b=True, panel=NR_T)
_tile_t_one = _make_tile(MR_T, 1, "tile_t_one", stream_b=True, panel=NR_T)


@njit(inline="always")
def tile_t_last(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate):  # pragma: no cover
    """:func:`tile_t` for a last panel whose ``cols`` ≤ NR_T - VW channels fill fewer
    vectors: the tile takes the panel's first one or two vectors only (the idle ones cost as
    much as the others: 64 output channels were two panels, 96 computed). Same sums, same
    bits. Called outside the loop over row tiles that runs :func:`tile_t` (see
    :func:`whole_rows`)."""
    if cols > VW:
        _tile_t_two(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate)
    else:
        _tile_t_one(kc, a, lda, astep, bp, c, ldc, rows, cols, accumulate)


def pack_b(w: np.ndarray, nr: int = NR) -> np.ndarray:
    """W (K, N) packed for :func:`matmul` (``nr`` = NR) or :func:`tile_t` (NR_T): ``ceil(N /
    nr)`` panels of ``[K][nr]`` float32 (columns past N zero), one flat ALIGN-aligned array.
    Filled from ``w`` as it is (a transposed view too), PACK_BYTES of its rows at a time: no
    padded or contiguous copy of the whole weight, which glibc would keep in the heap. A
    row-major ``w`` in a read-only file mapping (an .om's weights) has each stretch's pages
    released once packed (allocator.release_pages), so the original and the packed copy of a
    large weight are not both resident while the model loads."""
    k, n = w.shape
    panels = -(-n // nr)
    packed = _aligned(panels * k * nr)
    view = packed.reshape(panels, k, nr)
    whole = n // nr
    rows_per_pass = max(1, PACK_BYTES // max(1, n * w.itemsize))
    release = w.flags.c_contiguous
    for k0 in range(0, k, rows_per_pass):
        k1 = min(k, k0 + rows_per_pass)
        if whole:
            stretch = w[k0:k1, : whole * nr].reshape(k1 - k0, whole, nr)
            view[:whole, k0:k1, :] = stretch.transpose(1, 0, 2)
        if whole < panels:
            cols = n - whole * nr
            view[whole, k0:k1, :cols] = w[k0:k1, whole * nr :]
            view[whole, k0:k1, cols:] = 0.0
        if release:
            allocator.release_pages(w[k0:k1])
    return packed


#: Bytes of W's rows :func:`pack_b` packs per pass (a 2 MiB page-cache folio).
PACK_BYTES = 2 << 20


def _aligned(size: int) -> np.ndarray:
    """An uninitialized float32 array of ``size`` starting on an ALIGN-byte boundary."""
    raw = np.empty(size + ALIGN // 4, np.float32)
    start = (-raw.ctypes.data % ALIGN) // 4
    return raw[start : start + size]


def pack_rows(a: np.ndarray) -> np.ndarray:
    """A (M, K) packed for :func:`tile` with ``astep`` = MR: blocks of MR rows (rows past M
    zero), each ``[K][MR]`` — every step of K reads MR consecutive floats, the whole block
    one contiguous stream (read in place, a filter's MR rows are MR strided streams of
    ``K`` floats, and at a 7×7 output the product waits on them). One flat ALIGN-aligned
    array; row block ``r // MR`` starts at float ``r · K``. Filled block by block (no padded
    copy of the whole filter)."""
    m, k = a.shape
    blocks = -(-m // MR)
    packed = _aligned(blocks * MR * k)
    view = packed.reshape(blocks, k, MR)
    for b in range(blocks):
        rows = min(MR, m - b * MR)
        view[b, :, :rows] = a[b * MR : b * MR + rows].T
        view[b, :, rows:] = 0.0
    return packed


@njit(inline="always")
def _tile_at(a_addr, bq, c_addr, k, n, k0, kc, q, r, rows, width):  # pragma: no cover
    """One tile: C's rows [r, r + rows) by panel ``q``'s columns, pass [k0, k0 + kc) of K."""
    tile(
        kc,
        a_addr + (r * k + k0) * 4,
        k,
        1,
        bq,
        c_addr + (r * n + q * NR) * 4,
        n,
        rows,
        width,
        k0 > 0,
    )


@njit(cache=True, nogil=True)
def _span(a, bp, c, r0, r1, extra, e0, e1, extra2, f0, f1):  # pragma: no cover - compiled
    """C's rows [r0, r1) by every panel of W, plus row block ``extra`` (when ≥ 0) by panels
    [e0, e1) and row block ``extra2`` by panels [f0, f1) (``a`` (M, K) and ``c`` (M, N)
    C-contiguous, ``bp`` W packed by :func:`pack_b`): K in equal passes of at most KC steps;
    per pass, each panel of W (in L1) meets every MR-row block of A it has here (in L2) —
    the extra blocks too, so a panel is read once per pass whatever the rows."""
    m, k, n = a.shape[0], a.shape[1], c.shape[1]
    a_addr = a.ctypes.data
    b_addr = bp.ctypes.data
    c_addr = c.ctypes.data
    panels = (n + NR - 1) // NR
    passes = max(1, (k + KC - 1) // KC)
    step = max(1, (k + passes - 1) // passes)
    for k0 in range(0, k, step):
        kc = min(step, k - k0)
        for q in range(panels):
            width = min(NR, n - q * NR)
            bq = b_addr + (q * k + k0) * NR * 4
            if extra >= 0 and e0 <= q < e1:
                x0 = extra * MR
                _tile_at(a_addr, bq, c_addr, k, n, k0, kc, q, x0, min(MR, m - x0), width)
            last = whole_rows(r0, r1)
            for r in range(r0, last, MR):
                _tile_at(a_addr, bq, c_addr, k, n, k0, kc, q, r, min(MR, r1 - r), width)
            if last < r1:
                tile_last(
                    kc,
                    a_addr + (last * k + k0) * 4,
                    k,
                    1,
                    bq,
                    c_addr + (last * n + q * NR) * 4,
                    n,
                    r1 - last,
                    width,
                    k0 > 0,
                )
            if extra2 >= 0 and f0 <= q < f1:
                x0 = extra2 * MR
                _tile_at(a_addr, bq, c_addr, k, n, k0, kc, q, x0, min(MR, m - x0), width)
    if k == 0:
        c[r0:r1] = 0.0
        if extra >= 0:
            c[extra * MR : min(m, extra * MR + MR), e0 * NR : min(n, e1 * NR)] = 0.0
        if extra2 >= 0:
            c[extra2 * MR : min(m, extra2 * MR + MR), f0 * NR : min(n, f1 * NR)] = 0.0


@njit(inline="always")
def _rows(a, bp, c, k, n, r0, r1):  # pragma: no cover - compiled
    """C's rows [r0, r1), every panel (see :func:`_span`)."""
    _span(a, bp, c, r0, r1, -1, 0, 0, -1, 0, 0)


@njit(cache=True, nogil=True)
def _items(a, bp, c, first, stop):  # pragma: no cover - compiled
    """Items ``first`` to ``stop`` of :func:`matmul_drive`: item i is row block i // SLICES
    by slice i % SLICES of W's panels (slice s: panels [s·P // SLICES, (s + 1)·P //
    SLICES)). The range is whole blocks with at most a block's slices before and after
    them, run as one :func:`_span`."""
    m, n = a.shape[0], c.shape[1]
    panels = (n + NR - 1) // NR
    b0, s0 = first // SLICES, first % SLICES
    b1, s1 = (stop - 1) // SLICES, (stop - 1) % SLICES + 1  # last block, slices [0, s1)
    if b0 == b1:
        if s0 == 0 and s1 == SLICES:
            _span(a, bp, c, b0 * MR, min(m, b0 * MR + MR), -1, 0, 0, -1, 0, 0)
        else:
            q0, q1 = s0 * panels // SLICES, s1 * panels // SLICES
            _span(a, bp, c, 0, 0, b0, q0, q1, -1, 0, 0)
        return
    lead = b0 if s0 > 0 else -1
    trail = b1 if s1 < SLICES else -1
    full0 = b0 + 1 if s0 > 0 else b0
    full1 = b1 if s1 < SLICES else b1 + 1
    _span(
        a,
        bp,
        c,
        full0 * MR,
        min(m, full1 * MR),
        lead,
        s0 * panels // SLICES,
        panels,
        trail,
        0,
        s1 * panels // SLICES,
    )


def item_count(m: int) -> int:
    """Items of :func:`matmul_drive` for ``m`` rows: row blocks times SLICES."""
    return -(-m // MR) * SLICES


@njit(cache=True, nogil=True)
def matmul(a, bp, c):  # pragma: no cover - compiled
    """``c = a @ w`` for float32 ``a`` (M, K) and ``c`` (M, N), C-contiguous, ``w`` (K, N)
    packed by :func:`pack_b` — in the calling thread, without the GIL."""
    _rows(a, bp, c, a.shape[1], c.shape[1], 0, a.shape[0])


@njit(cache=True, nogil=True)
def matmul_drive(a, bp, c, total, ctl, signal, worker, gen, spins):  # pragma: no cover
    """:func:`matmul` on a thread of openge's team (openge.kernels.sync): ranges of items
    (:func:`_items`: a block of MR rows by a slice of W's panels) claimed part by part;
    ``total`` is the number of items, :func:`item_count`. Halves of a block balance two
    threads where whole blocks cannot (BERT's 128 rows: 11 blocks, 6 against 5)."""
    return sync.drive(_items, (a, bp, c), total, ctl, signal, worker, gen, spins)


__all__ = [
    "ALIGN",
    "KC",
    "MR",
    "MR_MID",
    "MR_SMALL",
    "MR_T",
    "NR",
    "NR_T",
    "NV",
    "NV_T",
    "SLICES",
    "VW",
    "item_count",
    "matmul",
    "matmul_drive",
    "pack_b",
    "pack_rows",
    "tile",
    "tile_last",
    "tile_rows",
    "tile_rows_last",
    "tile_t",
    "tile_t_last",
    "whole_rows",
]
