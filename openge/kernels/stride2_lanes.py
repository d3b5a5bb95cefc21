"""A depthwise 3×3 filter at column stride 2 over one output row, in blocks of 16 vector lanes
(kernels layer, numba intrinsic).

LLVM's vectorizer turns the taps' loop of openge.kernels.depthwise's stride-2 kernel —
``row[2j]``, ``row[2j + 1]``, ``row[2j + 2]`` — into 8-lane shuffles with a scalar remainder,
and a row of 28 or 56 outputs spends much of its time in the remainder and the border
columns. :func:`taps3_s2_row` writes the LLVM IR itself: per block of 16 outputs and per
filter row, four 16-float loads, three two-source permutes (the even, odd and next-even
columns) and three fused multiply-adds, the three filter rows summed in registers; the last
block overlaps the one before instead of leaving a remainder (the overlap is written twice
with the same values); a left padding column is a zeroed lane of the first block. The sums
are those of the scalar loop with ``fastmath={"contract"}``: the bias, then each filter row's
three taps in order, one fused multiply-add each — the same bits.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: Outputs per block (one 512-bit vector of float32; two 256-bit ones on AVX2).
LANES = 16
#: Floats read past a row's last tap by its last block (the loads are whole vectors).
OVERREAD = 2


@njit(inline="always")
def reads_end(start, count):  # pragma: no cover - compiled
    """One past the last flat index :func:`taps3_s2_row` reads for a row whose first block
    starts at ``start`` and covers ``count`` outputs (``count`` ≥ LANES)."""
    return start + 2 * count + OVERREAD


@intrinsic
def taps3_s2_row(
    typingctx, xf, a0, a1, a2, ok0, ok1, ok2, w0, w1, w2, w3, w4, w5, w6, w7, w8, yf, at, b, m, pad
):  # pragma: no cover - codegen
    """``yf[at + j] = b + Σ_r (w_r0·x[a_r + 2j] + w_r1·x[a_r + 2j + 1] + w_r2·x[a_r + 2j + 2])``
    for j < ``m`` (≥ LANES), over the filter rows r whose ``ok_r`` is set (weights ``w0`` …
    ``w8`` row-major), each row's taps as fused multiply-adds in that order; a row whose
    ``ok_r`` is not set is padding, its taps adding ``w · 0``. ``pad``: the
    first output's first tap is a padding column (its lane adds ``w_r0 · 0``, not the float
    before the row). Reads ``xf[a_r : reads_end(a_r, m)]`` of each set row; ``xf`` and ``yf``
    flat arrays of one float dtype."""
    if not (
        isinstance(xf, types.Array)
        and isinstance(yf, types.Array)
        and isinstance(xf.dtype, types.Float)
        and xf.dtype == yf.dtype
    ):
        return None  # a typing error at the caller's compile, not a store of the wrong width
    sig = types.none(
        xf, a0, a1, a2, ok0, ok1, ok2, w0, w1, w2, w3, w4, w5, w6, w7, w8, yf, at, b, m, pad
    )

    def codegen(context, builder, signature, args):
        ta = signature.args
        dtype = ta[0].dtype
        flt = context.get_value_type(dtype)
        vec = ir.VectorType(flt, LANES)
        vptr = vec.as_pointer()
        i32, i64 = ir.IntType(32), ir.IntType(64)
        lanes = ir.VectorType(i32, LANES)
        xs = context.make_array(ta[0])(context, builder, args[0]).data
        ys = context.make_array(ta[16])(context, builder, args[16]).data
        name = f"llvm.fma.v{LANES}f{dtype.bitwidth}"
        fma = builder.module.globals.get(name) or ir.Function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), name
        )
        evens = ir.Constant(lanes, [2 * k for k in range(LANES)])
        odds = ir.Constant(lanes, [2 * k + 1 for k in range(LANES)])
        undef = ir.Constant(vec, ir.Undefined)
        zeros = ir.Constant(vec, [0.0] * LANES)

        def cast(i, to):
            return context.cast(builder, args[i], ta[i], to)

        def splat(i):
            one = builder.insert_element(undef, cast(i, dtype), i32(0))
            return builder.shuffle_vector(one, undef, ir.Constant(lanes, [0] * LANES))

        count = cast(19, types.int64)
        last = builder.sub(count, i64(LANES))
        blocks = builder.sdiv(builder.add(count, i64(LANES - 1)), i64(LANES))
        bias = splat(18)
        oks = [cast(4 + r, types.boolean) for r in range(3)]
        starts = [cast(1 + r, types.int64) for r in range(3)]
        weights = [splat(7 + k) for k in range(9)]
        at = cast(17, types.int64)
        pad = cast(20, types.boolean)
        acc = cgutils.alloca_once(builder, vec)
        with cgutils.for_range(builder, blocks) as loop:
            jb = builder.mul(loop.index, i64(LANES))
            jb = builder.select(builder.icmp_signed("<", jb, last), jb, last)
            first = builder.and_(pad, builder.icmp_signed("==", jb, i64(0)))
            builder.store(bias, acc)
            for r in range(3):
                with builder.if_else(oks[r]) as (inside, padding):
                    with inside:
                        q = builder.add(starts[r], builder.add(jb, jb))

                        def load(offset, q=q):
                            p = builder.gep(xs, [builder.add(q, i64(offset))])
                            align = dtype.bitwidth // 8
                            return builder.load(builder.bitcast(p, vptr), align=align)

                        lo, hi = load(0), load(LANES)
                        lo2, hi2 = load(2), load(2 + LANES)
                        even = builder.shuffle_vector(lo, hi, evens)
                        padded = builder.insert_element(even, ir.Constant(flt, 0.0), i32(0))
                        even = builder.select(first, padded, even)
                        odd = builder.shuffle_vector(lo, hi, odds)
                        after = builder.shuffle_vector(lo2, hi2, evens)  # columns 2j + 2
                        s = builder.load(acc)
                        s = builder.call(fma, [weights[3 * r], even, s])
                        s = builder.call(fma, [weights[3 * r + 1], odd, s])
                        s = builder.call(fma, [weights[3 * r + 2], after, s])
                        builder.store(s, acc)
                    with padding:  # a padding row's taps add w · 0 (NaN for an infinite w)
                        s = builder.load(acc)
                        for k in range(3):
                            s = builder.call(fma, [weights[3 * r + k], zeros, s])
                        builder.store(s, acc)
            dst = builder.gep(ys, [builder.add(at, jb)])
            builder.store(builder.load(acc), builder.bitcast(dst, vptr), align=dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


__all__ = ["LANES", "OVERREAD", "reads_end", "taps3_s2_row"]
