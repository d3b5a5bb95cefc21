"""LLVM-IR building blocks of the channels-last depthwise kernel (openge.kernels.depthwise's
narrow planes; kernels layer, numba): :func:`transpose8` moves 8 channels × 8 positions in or
out of the channels-last layout at a time, :func:`cl_taps` keeps a block's 64 sums in vector
registers across the taps. IR, not assembly: LLVM allocates the registers and picks the
instructions, so the same source builds on x86-64 and arm64 (a narrower machine splits the
8-float vectors; the results are the same).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# ----- 8 × 8 float32 transposes (the channels-last kernel's way in and out) ---------------

_UNPACK_LO = [0, 8, 1, 9, 4, 12, 5, 13]
_UNPACK_HI = [2, 10, 3, 11, 6, 14, 7, 15]
_PAIRS_LO = [0, 1, 8, 9, 4, 5, 12, 13]
_PAIRS_HI = [2, 3, 10, 11, 6, 7, 14, 15]
_HALVES_LO = [0, 1, 2, 3, 8, 9, 10, 11]
_HALVES_HI = [4, 5, 6, 7, 12, 13, 14, 15]


@intrinsic
def transpose8(typingctx, src, src_stride, dst, dst_stride):  # pragma: no cover - compiled
    """Write the transpose of the 8 × 8 float32 block at address ``src`` (rows
    ``src_stride`` floats apart) to address ``dst`` (rows ``dst_stride`` floats apart):
    eight 8-float loads, three rounds of shuffles (unpack, pair, 128-bit halves), eight
    stores. On a narrower machine LLVM splits the vectors; the result is the same."""
    if not all(isinstance(t, types.Integer) for t in (src, src_stride, dst, dst_stride)):
        return None

    def codegen(context, builder, sig, args):
        i64, i32 = ir.IntType(64), ir.IntType(32)
        f32 = ir.FloatType()
        pv = ir.VectorType(f32, 8).as_pointer()
        s, ss, d, ds = (context.cast(builder, a, t, types.int64) for a, t in zip(args, sig.args))
        sp = builder.inttoptr(s, f32.as_pointer())
        dp = builder.inttoptr(d, f32.as_pointer())
        rows = []
        for r in range(8):
            at = builder.bitcast(builder.gep(sp, [builder.mul(ss, i64(r))]), pv)
            rows.append(builder.load(at, align=4))

        def mix(a, b, mask):
            return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, 8), mask))

        t = []
        for r in range(0, 8, 2):  # t[2m], t[2m + 1]: rows 2m and 2m + 1 interleaved
            t += [mix(rows[r], rows[r + 1], _UNPACK_LO), mix(rows[r], rows[r + 1], _UNPACK_HI)]
        q = []
        for base in (0, 4):  # q[base + ·]: columns 4 rows deep, two per 128-bit half
            q += [
                mix(t[base], t[base + 2], _PAIRS_LO),
                mix(t[base], t[base + 2], _PAIRS_HI),
                mix(t[base + 1], t[base + 3], _PAIRS_LO),
                mix(t[base + 1], t[base + 3], _PAIRS_HI),
            ]
        cols = [mix(q[m], q[m + 4], _HALVES_LO) for m in range(4)]
        cols += [mix(q[m], q[m + 4], _HALVES_HI) for m in range(4)]
        for r in range(8):
            at = builder.bitcast(builder.gep(dp, [builder.mul(ds, i64(r))]), pv)
            builder.store(cols[r], at, align=4)
        return context.get_dummy_value()

    return types.none(src, src_stride, dst, dst_stride), codegen


def _cl_taps_function(module):
    """The IR function behind :func:`cl_taps` (made once per module): its tap loop keeps the
    block's sums in eight vector registers, where the numba loop loaded and stored them at
    every tap (two loads and a store per multiply-add, the kernel's bound)."""
    from numba.core import cgutils

    i64 = ir.IntType(64)
    fnty = ir.FunctionType(ir.VoidType(), [i64] * 7)
    fn = cgutils.get_or_insert_function(module, fnty, "openge_cl_taps_8x8")
    if not fn.is_declaration:
        return fn
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    f32 = ir.FloatType()
    vec = ir.VectorType(f32, 8)
    pv, pf = vec.as_pointer(), f32.as_pointer()
    fma = cgutils.get_or_insert_function(module, ir.FunctionType(vec, [vec] * 3), "llvm.fma.v8f32")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    taps, src, offs, w, wstep, init, out = fn.args
    src_p, w_p = builder.inttoptr(src, pf), builder.inttoptr(w, pf)
    offs_p = builder.inttoptr(offs, i64.as_pointer())
    init_p, out_p = builder.inttoptr(init, pf), builder.inttoptr(out, pf)

    def vectors(base, builder=builder):
        return [
            builder.load(builder.bitcast(builder.gep(base, [i64(8 * v)]), pv), align=4)
            for v in range(8)
        ]

    start = vectors(init_p)
    entry = builder.block
    loop = fn.append_basic_block("taps")
    done = fn.append_basic_block("store")
    builder.cbranch(builder.icmp_signed(">", taps, i64(0)), loop, done)
    builder.position_at_end(loop)
    t = builder.phi(i64, "t")
    t.add_incoming(i64(0), entry)
    accs = []
    for v in range(8):
        phi = builder.phi(vec, f"acc{v}")
        phi.add_incoming(start[v], entry)
        accs.append(phi)
    at = builder.gep(src_p, [builder.load(builder.gep(offs_p, [t]), align=8)])
    xs = vectors(at)
    ws = vectors(builder.gep(w_p, [builder.mul(t, wstep)]))
    new = [builder.call(fma, [ws[v], xs[v], accs[v]]) for v in range(8)]
    t_next = builder.add(t, i64(1))
    t.add_incoming(t_next, loop)
    for phi, value in zip(accs, new, strict=True):
        phi.add_incoming(value, loop)
    builder.cbranch(builder.icmp_signed("<", t_next, taps), loop, done)
    builder.position_at_end(done)
    finals = []
    for v in range(8):
        final = builder.phi(vec, f"sum{v}")
        final.add_incoming(start[v], entry)
        final.add_incoming(new[v], loop)
        finals.append(final)
    for v in range(8):
        builder.store(finals[v], builder.bitcast(builder.gep(out_p, [i64(8 * v)]), pv), align=4)
    builder.ret_void()
    return fn


@intrinsic
def cl_taps(typingctx, taps, src, offs, w, wstep, init, out):  # pragma: no cover - compiled
    """64 float32 sums of a channels-last block: ``out[j] = init[j] + Σ_t w[t·wstep + j] ·
    src[offs[t] + j]`` for j < 64, taps t in order, each a fused multiply-add (all arguments
    int64: ``taps`` and ``wstep`` counts, ``offs`` the address of ``taps`` int64 offsets in
    floats, the others addresses of float32 data)."""
    args = (taps, src, offs, w, wstep, init, out)
    if not all(isinstance(a, types.Integer) for a in args):
        return None

    def codegen(context, builder, sig, values):
        cast = [context.cast(builder, v, a, types.int64) for v, a in zip(values, sig.args)]
        builder.call(_cl_taps_function(builder.module), cast)
        return context.get_dummy_value()

    return types.none(*args), codegen
