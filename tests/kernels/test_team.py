"""openge.kernels.team: compiled kernels' drive forms on openge's thread team — the same
results as the whole kernel run after run, with team threads asleep or spinning; a part that
raises reaches the caller and leaves the team usable; concurrent callers; forked children."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from numba import njit

from openge import kernels
from openge.kernels import team

sync = kernels.load("sync")


@njit(nogil=True)
def _square_whole(x, y, fail_at):  # pragma: no cover - compiled
    for i in range(x.size):
        y[i] = x[i] * x[i]


@njit(nogil=True)
def _square_drive(x, y, fail_at, total, ctl, signal, worker, gen, spins):  # pragma: no cover
    sync.begin(ctl, signal, worker)
    if fail_at == -2 and not worker:  # let the team thread enter and claim first
        n = 0
        while sync.atomic_load(ctl, sync.ACK) < 1 and n < 200_000_000:
            sync.pause()
            n += 1
    k = sync.claim(ctl, worker)
    while k >= 0:
        first, stop = sync.bounds(ctl, total, k)
        if first <= fail_at < stop or (fail_at == -2 and worker):
            np.empty(1 << 62, np.uint8)  # MemoryError, raised from compiled code
        for i in range(first, stop):
            y[i] = x[i] * x[i]
        sync.done(ctl)
        k = sync.claim(ctl, worker)
    return sync.end(ctl, signal, worker, gen, spins)


def _run(x, y, parts=8, threads=2, fail_at=-1):
    team.run(_square_drive, _square_whole, (x, y, fail_at), x.size, parts, threads)


def test_results_match_run_after_run_with_sleeping_and_spinning_threads():
    x = np.arange(10_000, dtype=np.float64)
    for pause in (0.0, 0.01, 0.0, 0.002):  # 10 ms: the team thread has gone to sleep
        y = np.full_like(x, np.nan)
        _run(x, y)
        np.testing.assert_array_equal(y, x * x)
        time.sleep(pause)


def test_one_thread_or_one_part_runs_whole_in_the_caller():
    x = np.arange(50, dtype=np.float64)
    for threads, parts in ((1, 8), (2, 1)):
        y = np.zeros_like(x)
        _run(x, y, parts=parts, threads=threads)
        np.testing.assert_array_equal(y, x * x)


@pytest.mark.parametrize("fail_at", [0, 9_999])  # the caller's first part; a later one
def test_a_failing_part_raises_in_the_caller_and_the_team_still_works(fail_at):
    x = np.arange(10_000, dtype=np.float64)
    for _ in range(3):
        with pytest.raises(MemoryError):
            _run(x, np.zeros_like(x), fail_at=fail_at)
    y = np.zeros_like(x)
    _run(x, y)
    np.testing.assert_array_equal(y, x * x)


def test_a_failing_part_on_a_team_thread_raises_in_the_caller():
    """Parts fail only on the team thread, which the caller lets in first: every run raises
    the team thread's error in the caller (never a wrong result left silently), and the
    parts nobody claimed are counted, so the caller does not wait for them forever."""
    x = np.arange(100_000, dtype=np.float64)
    for _ in range(20):
        with pytest.raises(MemoryError):
            _run(x, np.zeros_like(x), fail_at=-2)
    y = np.zeros_like(x)
    _run(x, y)
    np.testing.assert_array_equal(y, x * x)


def test_concurrent_callers_each_get_their_results():
    """Two threads calling at once: one gets the team, the other runs its kernel whole."""
    errors = []

    def caller(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            x = rng.standard_normal(3_000)
            y = np.zeros_like(x)
            _run(x, y)
            if not np.array_equal(y, x * x):
                errors.append(seed)

    threads = [threading.Thread(target=caller, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def _child(queue):
    x = np.arange(1_000, dtype=np.float64)
    y = np.zeros_like(x)
    _run(x, y)
    queue.put(bool(np.array_equal(y, x * x)))


def test_a_forked_child_has_a_team_of_its_own():
    _run(np.arange(10.0), np.zeros(10))  # the parent's team exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and queue.get(timeout=5)


def test_every_region_gets_fresh_zeroed_control_words_on_lines_of_their_own(monkeypatch):
    monkeypatch.setattr(team, "_SLAB_REGIONS", 3)  # a new slab every third region
    controls = team._Controls(sync.CTL_WORDS)
    taken = [controls.take() for _ in range(7)]
    for ctl in taken:
        assert ctl.size == sync.CTL_WORDS and not ctl.any()
        assert ctl.ctypes.data % 128 == 0
        ctl[:] = 7  # a late thread writing an old region's words touches no later region
    starts = [ctl.ctypes.data for ctl in taken]
    assert len(set(starts)) == 7
    assert all(c == 7 for ctl in taken for c in ctl)
    assert len({id(ctl.base) for ctl in taken}) == 3  # slabs of 3, 3 and 1 regions
    with pytest.raises(ValueError):
        team._Controls(17)


@pytest.mark.skipif(team._current_cpu is None, reason="sched_getcpu is glibc's (Linux)")
def test_a_thread_on_the_wakers_cpu_moves_off_it_and_keeps_its_cpu_mask():
    """_leave_cpu: a team thread woken onto the caller's CPU hops to another one at once; its
    CPU mask is the same afterwards; a thread elsewhere does not move."""
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("one CPU: there is nowhere to move")
    results: dict[str, object] = {}

    def body() -> None:
        mask = os.sched_getaffinity(0)
        moved = False
        for _ in range(20):  # the scheduler may move the thread between the read and the hop
            here = team._current_cpu()
            if team._leave_cpu(here):
                moved = team._current_cpu() != here
                break
        results["moved"] = moved
        results["mask_kept"] = os.sched_getaffinity(0) == mask
        elsewhere = next(c for c in mask if c != team._current_cpu())
        results["stays"] = not team._leave_cpu(elsewhere)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert results == {"moved": True, "mask_kept": True, "stays": True}


def test_woken_team_threads_learn_the_callers_cpu():
    """The caller that wakes sleeping team threads records its CPU for them (-1 where the CPU
    cannot be read)."""
    x = np.arange(4096, dtype=np.float64)
    y = np.empty_like(x)
    _run(x, y)  # the team exists
    team.get().waker_cpu = -1
    time.sleep(0.05)  # past the team threads' spinning: they sleep
    _run(x, y)
    np.testing.assert_array_equal(y, x * x)
    recorded = team.get().waker_cpu
    if team._current_cpu is None:
        assert recorded == -1
    else:
        assert recorded in os.sched_getaffinity(0)
