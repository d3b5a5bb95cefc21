"""Running a compiled kernel's drive form (openge.kernels.team's protocol) in tests: alone in
the calling thread, cut into a given number of parts, and on a team of two threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from openge import kernels
from openge.kernels import team


def drive_alone(drive: Callable[..., bool], args: Sequence, total: int, parts: int) -> None:
    """``drive`` in the calling thread only (no team thread joins): it claims every one of
    ``parts`` parts itself; each part is counted done exactly once."""
    sync = kernels.load("sync")
    ctl = sync.new_ctl(parts, 0)
    signal = np.zeros(sync.SIGNAL_WORDS, np.int64)
    assert drive(*args, total, ctl, signal, False, 1, 1 << 20)
    assert ctl[sync.DONE] == parts and ctl[sync.NEXT] > parts - 1
    assert signal[sync.GEN] == 1  # the caller posted the region


def drive_team(
    drive: Callable[..., bool], whole: Callable[..., None], args: Sequence, total: int, parts: int
) -> None:
    """``drive`` on a team of two threads (the caller's and one team thread)."""
    team.run(drive, whole, args, total, parts, 2)
