"""openge.kernels.sync: the atomics and the region protocol of openge's thread team, checked
from compiled test functions: every part claimed exactly once, bounds covering the items,
aborted regions ending with every part counted."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from openge import kernels

sync = kernels.load("sync")


@njit
def _atomics(a):  # pragma: no cover - compiled
    old = sync.atomic_add(a, 0, 5)
    sync.atomic_store(a, 1, 7)
    return old, sync.atomic_load(a, 0), sync.atomic_load(a, 1)


def test_atomic_add_load_store():
    a = np.array([3, 0], np.int64)
    assert _atomics(a) == (3, 8, 7)
    assert a.tolist() == [8, 7]


@njit
def _claims(ctl, total, seen, worker=False):  # pragma: no cover - compiled
    k = sync.claim(ctl, worker)
    while k >= 0:
        first, stop = sync.bounds(ctl, total, k)
        for i in range(first, stop):
            seen[i] += 1
        sync.done(ctl)
        k = sync.claim(ctl, worker)


@pytest.mark.parametrize("worker", [False, True])
@pytest.mark.parametrize(("total", "parts"), [(10, 3), (7, 7), (1, 1), (100, 8), (5, 1)])
def test_claims_cover_every_item_once(total, parts, worker):
    ctl = sync.new_ctl(parts, 0)
    seen = np.zeros(total, np.int64)
    _claims(ctl, total, seen, worker)
    assert seen.tolist() == [1] * total
    assert ctl[sync.DONE] == parts


@njit
def _claim_one(ctl, worker=False):  # pragma: no cover - compiled
    return sync.claim(ctl, worker)


def test_the_caller_claims_from_the_front_and_team_threads_from_the_back():
    # two threads keep to the same halves of every region (consecutive kernels then read
    # what their own core wrote), whatever order their claims interleave in
    ctl = sync.new_ctl(5, 0)
    order = [_claim_one(ctl, w) for w in (True, False, True, False, False, True)]
    assert order == [4, 0, 3, 1, 2, -1]
    assert ctl[sync.DONE] == 0


@njit
def _done_one(ctl):  # pragma: no cover - compiled
    sync.done(ctl)


def test_a_failed_part_aborts_the_region_and_every_part_ends_counted():
    ctl = sync.new_ctl(6, 0)
    assert _claim_one(ctl) == 0  # part 0 in flight on this thread ...
    assert _claim_one(ctl) == 1  # ... and part 1 on another, still running
    sync.fail_part(ctl)  # part 0 raises: counted done, parts 2-5 claimed and counted done
    assert ctl[sync.DONE] == 5 and not sync.wait_done(ctl, 10)
    _done_one(ctl)  # part 1 finishes
    assert ctl[sync.DONE] == 6 and sync.wait_done(ctl, 1)
    seen = np.zeros(12, np.int64)
    _claims(ctl, 12, seen)
    assert not seen.any()  # nothing runs after the abort


def test_wait_done_and_idle_return_after_their_polls():
    ctl = sync.new_ctl(2, 0)
    assert not sync.wait_done(ctl, 10)  # no part done: gives up after its polls
    signal = np.zeros(sync.SIGNAL_WORDS, np.int64)
    assert not sync.idle(signal, 0, 10)  # no new region
    signal[sync.GEN] = 1
    assert sync.idle(signal, 0, 10)  # a newer region was posted
