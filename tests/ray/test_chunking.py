"""plan_chunks / pad_rows: every row scored once, at a gear, with the least padding."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from openge.errors import GeError
from openge.ray.chunking import RUN_COST_ROWS, pad_rows, plan_chunks


def _brute_cost(rows: int, gears: list[int]) -> int:
    """Least (rows computed + RUN_COST_ROWS per run) over every multiset of runs covering rows."""
    best = None
    limit = rows // min(gears) + 2
    for runs in range(1, limit + 1):
        for combo in itertools.combinations_with_replacement(gears, runs):
            if sum(combo) >= rows and sum(combo) - max(combo) < rows:
                cost = sum(combo) + RUN_COST_ROWS * runs
                best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("gears", [[1, 2, 4, 8], [4, 8], [3, 4], [5], [2, 7, 16]])
@pytest.mark.parametrize("rows", [1, 2, 3, 5, 6, 9, 13, 17, 31])
def test_chunks_cover_rows_once_and_cost_is_minimal(rows, gears):
    chunks = plan_chunks(rows, gears)
    covered = np.zeros(rows, int)
    for c in chunks:
        assert c.gear in gears and 0 < c.rows <= c.gear
        covered[c.start : c.start + c.rows] += 1
    assert (covered == 1).all()
    cost = sum(c.gear + RUN_COST_ROWS for c in chunks)
    assert cost == _brute_cost(rows, gears)


def test_large_batches_take_whole_largest_gear_runs():
    chunks = plan_chunks(100_003, [1, 2, 4, 8])
    assert sum(c.rows for c in chunks) == 100_003
    # the tail (3 rows) runs once at gear 4 (cost 5) rather than at 2 + 1 (cost 5, two runs)
    assert sum(c.padding for c in chunks) == 1 and len(chunks) == 12_501
    assert plan_chunks(0, [4]) == []


def test_bad_gears_are_refused():
    with pytest.raises(GeError, match="positive"):
        plan_chunks(3, [0, 4])
    with pytest.raises(GeError, match="positive"):
        plan_chunks(3, [])


def test_pad_rows_zero_fills_the_tail():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    padded = pad_rows(x, 4, 2, 4)
    np.testing.assert_array_equal(padded[:2], x[4:])
    assert (padded[2:] == 0).all() and padded.shape == (4, 2)
    assert pad_rows(x, 0, 3, 3).flags.c_contiguous
