"""Cutting a batch of rows into model runs: gear choice, padding, and reassembly.

Pure NumPy, no Ray: the predictor uses it inside each actor, and it is tested on its own.
A model with batch gears runs each chunk at a gear; a static model runs chunks of its fixed
batch. The last chunk is padded with zero rows up to its gear, and the padded rows are dropped
from the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from openge.errors import PARAM_INVALID, GeError

#: Cost of one extra model run, in rows: a run at a larger gear is preferred over two runs
#: unless it pads more than this many rows. Small, because a run's fixed cost is small next to
#: a row's compute for the models worth scoring at scale.
RUN_COST_ROWS = 1
#: Rows planned exactly by dynamic programming; larger batches first take whole largest-gear runs.
DP_ROWS = 4096


@dataclass(frozen=True)
class Chunk:
    """One model run: rows ``[start, start + rows)`` of the batch, executed at batch ``gear``."""

    start: int
    rows: int
    gear: int

    @property
    def padding(self) -> int:
        """Zero rows added to reach the gear."""
        return self.gear - self.rows


def plan_chunks(total_rows: int, gears: Sequence[int]) -> list[Chunk]:
    """Cut ``total_rows`` rows into runs at the given batch sizes.

    Minimises the rows computed (real + padding) plus ``RUN_COST_ROWS`` per run, by dynamic
    programming over the row count (exact up to ``DP_ROWS`` rows); ties go to fewer runs.
    Deterministic.
    """
    sizes = sorted({int(g) for g in gears})
    if not sizes or sizes[0] <= 0:
        raise GeError(PARAM_INVALID, f"batch sizes must be positive integers, got {list(gears)}")
    if total_rows < 0:
        raise GeError(PARAM_INVALID, f"row count must be >= 0, got {total_rows}")
    if total_rows == 0:
        return []
    largest = sizes[-1]
    # Rows beyond DP_ROWS go in whole runs at the largest gear (zero padding); the DP decides
    # the last DP_ROWS or fewer rows, which keeps it O(DP_ROWS x gears) for any batch.
    full_runs = max(0, (total_rows - DP_ROWS + largest - 1) // largest)
    rest = total_rows - full_runs * largest
    # best[r] = (cost, runs, gear of the first run) for r remaining rows
    best: list[tuple[int, int, int]] = [(0, 0, 0)] * (rest + 1)
    for r in range(1, rest + 1):
        choice: tuple[int, int, int] | None = None
        for g in reversed(sizes):  # ties keep the larger gear first
            if g >= r:
                cand = (g + RUN_COST_ROWS, 1, g)
            else:
                cost, runs, _ = best[r - g]
                cand = (cost + g + RUN_COST_ROWS, runs + 1, g)
            if choice is None or cand[:2] < choice[:2]:
                choice = cand
        assert choice is not None
        best[r] = choice
    chunks = [Chunk(i * largest, largest, largest) for i in range(full_runs)]
    start, r = full_runs * largest, rest
    while r > 0:
        g = best[r][2]
        take = min(g, r)
        chunks.append(Chunk(start, take, g))
        start += take
        r -= take
    return chunks


def pad_rows(array: np.ndarray, start: int, rows: int, gear: int) -> np.ndarray:
    """Rows ``[start, start + rows)`` of ``array`` as a C-contiguous array of ``gear`` rows
    (zero rows appended). A view when no padding is needed and the rows are contiguous."""
    part = array[start : start + rows]
    if rows == gear:
        return np.ascontiguousarray(part)
    padded = np.zeros((gear, *array.shape[1:]), dtype=array.dtype)
    padded[:rows] = part
    return padded
