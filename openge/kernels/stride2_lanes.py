"""Rows of 3-column windows at column stride 2, in blocks of 16 vector lanes (kernels layer,
numba intrinsics): a depthwise 3×3 filter's output row, and a 3×3 max pooling's.

LLVM's vectorizer turns the taps' loop of openge.kernels.depthwise's stride-2 kernel —
``row[2j]``, ``row[2j + 1]``, ``row[2j + 2]`` — into 8-lane shuffles with a scalar remainder,
and a row of 28 or 56 outputs spends much of its time in the remainder and the border
columns. The intrinsics here write the LLVM IR themselves: per block of 16 outputs and per
window row, four 16-float loads and three two-source permutes (the even, odd and next-even
columns); the last block overlaps the one before instead of leaving a remainder (the
overlap is written twice with the same values); a left padding column is a lane of the
first block set apart.

- :func:`taps3_s2_row` (depthwise): three fused multiply-adds per filter row, the three
  filter rows summed in registers. The sums are those of the scalar loop with
  ``fastmath={"contract"}``: the bias, then each filter row's three taps in order, one fused
  multiply-add each — the same bits. A padding column's lane adds ``w · 0``.
- :func:`max3_s2_row` (max pooling): each column's maximum over the window rows, then over
  the three columns, with the scalar loop's compare-and-select in its order (``v if v > m
  else m``) — the same bits where no input is NaN; it reports a NaN it loaded, and the
  pooling makes that row again with NaN propagating. A padding column's lane is -inf.

:func:`interior_columns` and :func:`row_fits` are the rule for when a row takes these
paths; the ops layer calls their Python forms (``.py_func``) to route a convolution, so the
rule is written once.
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
def interior_columns(width, left, ow):  # pragma: no cover - compiled (and .py_func)
    """Output columns, from the first, whose 3-column windows at stride 2 (input columns
    ``2j - left`` … ``2j - left + 2``) end inside a row of ``width``: at most ``ow``."""
    return min(ow, (width - 3 + left) // 2 + 1)


@njit(inline="always")
def row_fits(rows, left, interior):  # pragma: no cover - compiled (and .py_func)
    """Whether a stride-2 row of 3-column windows takes the 16-lane path: 3 window rows, at
    most one left padding column and at least LANES interior output columns."""
    return rows == 3 and 0 <= left <= 1 and interior >= LANES


@njit(inline="always")
def reads_end(start, count):  # pragma: no cover - compiled
    """One past the last flat index :func:`taps3_s2_row` reads for a row whose first block
    starts at ``start`` and covers ``count`` outputs (``count`` ≥ LANES)."""
    return start + 2 * count + OVERREAD


def _float_rows(xf, yf) -> bool:
    """Whether ``xf`` and ``yf`` are arrays of one float dtype (else the intrinsic refuses
    them: a typing error at the caller's compile, not a store of the wrong width)."""
    return (
        isinstance(xf, types.Array)
        and isinstance(yf, types.Array)
        and isinstance(xf.dtype, types.Float)
        and xf.dtype == yf.dtype
    )


class _Lanes:
    """The IR pieces both intrinsics share: vector types, the blocks of a row, the loads of
    a window row's columns and their split into even, odd and next-even columns."""

    def __init__(self, context, builder, signature, args, xf: int, yf: int) -> None:
        self.context, self.builder = context, builder
        self.types, self.args = signature.args, args
        self.dtype = self.types[xf].dtype
        self.flt = context.get_value_type(self.dtype)
        self.vec = ir.VectorType(self.flt, LANES)
        self.align = self.dtype.bitwidth // 8
        self.i32, self.i64 = ir.IntType(32), ir.IntType(64)
        lanes = ir.VectorType(self.i32, LANES)
        self.lanes = lanes
        self.xs = context.make_array(self.types[xf])(context, builder, args[xf]).data
        self.ys = context.make_array(self.types[yf])(context, builder, args[yf]).data
        self.evens = ir.Constant(lanes, [2 * k for k in range(LANES)])
        self.odds = ir.Constant(lanes, [2 * k + 1 for k in range(LANES)])
        self.undef = ir.Constant(self.vec, ir.Undefined)

    def cast(self, i: int, to):
        """Argument ``i`` as numba type ``to``."""
        return self.context.cast(self.builder, self.args[i], self.types[i], to)

    def splat(self, i: int):
        """Argument ``i`` in every lane."""
        b = self.builder
        one = b.insert_element(self.undef, self.cast(i, self.dtype), self.i32(0))
        return b.shuffle_vector(one, self.undef, ir.Constant(self.lanes, [0] * LANES))

    def blocks(self, count):
        """(the loop over the blocks of LANES outputs covering ``count`` ≥ LANES, the last
        block's first output ``count - LANES``): see :meth:`block_start`."""
        b, i64 = self.builder, self.i64
        last = b.sub(count, i64(LANES))
        blocks = b.sdiv(b.add(count, i64(LANES - 1)), i64(LANES))
        loop = cgutils.for_range(b, blocks)
        return loop, last

    def block_start(self, index, last):
        """Block ``index``'s first output: ``index · LANES``, the last block moved back to
        ``last`` (it overlaps the one before instead of leaving a remainder)."""
        b = self.builder
        jb = b.mul(index, self.i64(LANES))
        return b.select(b.icmp_signed("<", jb, last), jb, last)

    def loads(self, start, jb):
        """The four vectors a block reads of the window row at flat ``start``: columns
        ``2jb`` … ``2jb + 31`` and, two further on, ``2jb + 2`` … ``2jb + 33``."""
        b, i64 = self.builder, self.i64
        q = b.add(start, b.add(jb, jb))
        vptr = self.vec.as_pointer()

        def load(offset):
            p = b.gep(self.xs, [b.add(q, i64(offset))])
            return b.load(b.bitcast(p, vptr), align=self.align)

        return load(0), load(LANES), load(2), load(2 + LANES)

    def columns(self, lo, hi, lo2, hi2, padded, pad_value):
        """(even, odd, next-even) columns of a block, lane 0 of the even ones replaced by
        ``pad_value`` where ``padded``."""
        b = self.builder
        even = b.shuffle_vector(lo, hi, self.evens)
        moved = b.insert_element(even, ir.Constant(self.flt, pad_value), self.i32(0))
        even = b.select(padded, moved, even)
        odd = b.shuffle_vector(lo, hi, self.odds)
        after = b.shuffle_vector(lo2, hi2, self.evens)  # columns 2j + 2
        return even, odd, after

    def store(self, value, at, jb):
        """The block's 16 outputs to ``yf[at + jb :]``."""
        b = self.builder
        dst = b.gep(self.ys, [b.add(at, jb)])
        b.store(value, b.bitcast(dst, self.vec.as_pointer()), align=self.align)

    def larger(self, m, v):
        """``v if v > m else m`` lane by lane (the scalar loops' max without NaN)."""
        b = self.builder
        return b.select(b.fcmp_ordered(">", v, m), v, m)


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
    if not _float_rows(xf, yf):
        return None
    sig = types.none(
        xf, a0, a1, a2, ok0, ok1, ok2, w0, w1, w2, w3, w4, w5, w6, w7, w8, yf, at, b, m, pad
    )

    def codegen(context, builder, signature, args):
        lanes = _Lanes(context, builder, signature, args, 0, 16)
        vec, dtype = lanes.vec, lanes.dtype
        name = f"llvm.fma.v{LANES}f{dtype.bitwidth}"
        fma = builder.module.globals.get(name) or ir.Function(
            builder.module, ir.FunctionType(vec, [vec, vec, vec]), name
        )
        zeros = ir.Constant(vec, [0.0] * LANES)
        bias = lanes.splat(18)
        oks = [lanes.cast(4 + r, types.boolean) for r in range(3)]
        starts = [lanes.cast(1 + r, types.int64) for r in range(3)]
        weights = [lanes.splat(7 + k) for k in range(9)]
        at = lanes.cast(17, types.int64)
        pad = lanes.cast(20, types.boolean)
        acc = cgutils.alloca_once(builder, vec)
        loop_range, last = lanes.blocks(lanes.cast(19, types.int64))
        with loop_range as loop:
            jb = lanes.block_start(loop.index, last)
            first = builder.and_(pad, builder.icmp_signed("==", jb, lanes.i64(0)))
            builder.store(bias, acc)
            for r in range(3):
                with builder.if_else(oks[r]) as (inside, padding):
                    with inside:
                        even, odd, after = lanes.columns(*lanes.loads(starts[r], jb), first, 0.0)
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
            lanes.store(builder.load(acc), at, jb)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def max3_s2_row(
    typingctx, xf, a0, a1, a2, rows, yf, at, m, pad, valid
):  # pragma: no cover - codegen
    """``yf[at + j]`` = the max of ``x[a_r + 2j + c]`` over the window rows r < ``rows``
    (1 to 3, at flat starts ``a0``, ``a1``, ``a2``) and columns c < 3 with ``2j + c <
    valid`` (the others are padding past the row's end), for j < ``m`` (≥ LANES): each
    column's max over the rows in order, then ``max(max(c0, c1), c2)``, every max ``v if v
    > m else m``, a padding column -inf — the scalar row kernel's order and bits where no
    input is NaN. Returns False when some float it read is NaN (then the row is to be made
    again with NaN propagating): the check rides on the loads, where a scan of the input
    before the pooling read it all once more. ``pad``: the first output's first column is
    padding too (-inf, not the float before the row). Reads ``xf[a_r : reads_end(a_r, m)]``
    of each of the rows; ``xf`` and ``yf`` flat arrays of one float dtype."""
    if not _float_rows(xf, yf):
        return None
    sig = types.boolean(xf, a0, a1, a2, rows, yf, at, m, pad, valid)

    def codegen(context, builder, signature, args):
        lanes = _Lanes(context, builder, signature, args, 0, 5)
        i64 = lanes.i64
        starts = [lanes.cast(1 + r, types.int64) for r in range(3)]
        count = lanes.cast(4, types.int64)
        more = [builder.icmp_signed(">", count, i64(r)) for r in (1, 2)]
        at = lanes.cast(6, types.int64)
        pad = lanes.cast(8, types.boolean)
        valid = lanes.cast(9, types.int64)
        cells = [cgutils.alloca_once(builder, lanes.vec) for _ in range(4)]
        flags = ir.VectorType(ir.IntType(1), LANES)
        nan = cgutils.alloca_once_value(builder, ir.Constant(flags, [0] * LANES))
        # each loaded vector's columns, from the block's first: 0.., 16.., 2.., 18..
        columns = [
            ir.Constant(lanes.lanes, [first + k for k in range(LANES)])
            for first in (0, LANES, 2, 2 + LANES)
        ]
        minus_inf = ir.Constant(lanes.vec, [float("-inf")] * LANES)

        def take(cell, v):
            """Fold ``v`` into ``cell`` (none yet: ``v`` itself) and its NaN lanes into
            ``nan``."""
            seen = builder.fcmp_unordered("uno", v, v)
            builder.store(builder.or_(builder.load(nan), seen), nan)
            return v if cell is None else lanes.larger(cell, v)

        loop_range, last = lanes.blocks(lanes.cast(7, types.int64))
        with loop_range as loop:
            jb = lanes.block_start(loop.index, last)
            first = builder.and_(pad, builder.icmp_signed("==", jb, i64(0)))
            for cell, v in zip(cells, lanes.loads(starts[0], jb)):
                builder.store(take(None, v), cell)
            for r in (1, 2):
                with builder.if_then(more[r - 1]):
                    for cell, v in zip(cells, lanes.loads(starts[r], jb)):
                        builder.store(take(builder.load(cell), v), cell)
            # columns past the row's end (a block reaching it): padding
            inside = builder.sub(valid, builder.add(jb, jb))  # the block's valid columns
            with builder.if_then(builder.icmp_signed("<", inside, i64(2 * LANES + 2))):
                limit = builder.trunc(inside, lanes.i32)
                limit = builder.insert_element(
                    ir.Constant(lanes.lanes, ir.Undefined), limit, lanes.i32(0)
                )
                limit = builder.shuffle_vector(
                    limit,
                    ir.Constant(lanes.lanes, ir.Undefined),
                    ir.Constant(lanes.lanes, [0] * LANES),
                )
                for cell, index in zip(cells, columns):
                    kept = builder.icmp_signed("<", index, limit)
                    builder.store(builder.select(kept, builder.load(cell), minus_inf), cell)
            loaded = [builder.load(cell) for cell in cells]
            even, odd, after = lanes.columns(*loaded, first, float("-inf"))
            lanes.store(lanes.larger(lanes.larger(even, odd), after), at, jb)
        mask = builder.bitcast(builder.load(nan), ir.IntType(LANES))
        return builder.icmp_unsigned("==", mask, ir.Constant(ir.IntType(LANES), 0))

    return sig, codegen


__all__ = [
    "LANES",
    "OVERREAD",
    "interior_columns",
    "max3_s2_row",
    "reads_end",
    "row_fits",
    "taps3_s2_row",
]
