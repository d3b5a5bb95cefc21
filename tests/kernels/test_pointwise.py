"""openge.kernels.pointwise: the 1×1 micro-kernel's work items write their own part of the
output and nothing else, whatever the column block (the team runs items on two threads at
once), against a NumPy product."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels

RNG = np.random.default_rng(5)


@pytest.mark.parametrize(
    ("n", "cin", "cout", "p", "extra"), [(1, 12, 20, 100, 8), (2, 7, 13, 53, 3)]
)
def test_each_tile_item_writes_exactly_its_block(n, cin, cout, p, extra):
    """Items run one at a time on a NaN-filled output, column blocks of NR + ``extra``
    (not a multiple of NR), blocks of MR output channels: each item's block holds W·x + bias
    and every other element is still NaN."""
    module = kernels.load("pointwise")
    from openge.kernels import gemm

    nr, mr = gemm.NR, gemm.MR
    block = nr + extra
    x3 = RNG.standard_normal((n, cin, p)).astype(np.float32)
    w = RNG.standard_normal((cout, cin)).astype(np.float32)
    bias = RNG.standard_normal((1, cout)).astype(np.float32)
    wp = gemm.pack_rows(w)[None]
    offs = np.arange(cin, dtype=np.int64) * p
    want = np.einsum("oc,ncp->nop", w.astype(np.float64), x3.astype(np.float64))
    want += bias[0, :, None]
    items = module.item_count(n, cout, p, block, mr)
    rblocks, cblocks = -(-cout // mr), -(-p // block)
    zero = np.float32(0)
    for t in range(items):
        y3 = np.full((n, cout, p), np.nan, np.float32)
        module._tile_items(wp, x3, y3, bias, y3, False, offs, block, mr, 0, zero, zero, t, t + 1)
        i, rest = divmod(t, rblocks * cblocks)
        rb, cb = divmod(rest, cblocks)
        rows = slice(rb * mr, min(cout, rb * mr + mr))
        cols = slice(cb * block, min(p, cb * block + block))
        np.testing.assert_allclose(y3[i, rows, cols], want[i, rows, cols], rtol=1e-5, atol=1e-5)
        y3[i, rows, cols] = np.nan
        assert np.isnan(y3).all(), f"item {t} wrote outside its block"


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize(("k", "depth"), [(150, 48), (150, 150), (40, 16)])
def test_depth_parts_add_up_to_the_product(rows, k, depth):
    """A product cut along K (parts of ``depth`` rows of B, the last one shorter, or past the
    end and then zero): each part is its slice of the product, and depth_sum adds the parts in
    order. One row takes BLAS's matrix-vector product, three its GEMM; against float64 NumPy."""
    from openge.kernels import blas

    module = kernels.load("pointwise")
    entry, gemv = blas.gemm_entry(np.float32), blas.gemv_entry(np.float32)
    assert entry is not None
    n = 37
    a = RNG.standard_normal((rows, k)).astype(np.float32)
    b = RNG.standard_normal((k, n)).astype(np.float32)
    count = module.depth_count(k, depth) + 1  # one part past the end: all zero
    parts = np.full((count, rows, n), np.nan, np.float32)
    with blas.single_blas:
        module.depth_parts(*entry, gemv, a, b, parts, depth)
    for t in range(count):
        lo, hi = t * depth, min(k, (t + 1) * depth)
        want = a[:, lo:hi].astype(np.float64) @ b[lo:hi].astype(np.float64)
        np.testing.assert_allclose(parts[t], want.reshape(rows, n), rtol=1e-5, atol=1e-4)
    y = np.full((rows, n), np.nan, np.float32)
    module.depth_sum(parts, y)
    expected = parts[0].copy()
    for t in range(1, count):
        expected = expected + parts[t]
    np.testing.assert_array_equal(y, expected)
