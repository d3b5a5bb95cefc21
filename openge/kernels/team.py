"""openge's thread team: compiled kernels run on all of openge's threads without the GIL
(kernels layer; numba is imported only by the kernels that use it).

A kernel with a ``*_drive`` form (openge.kernels.sync has the protocol) is called once on
every thread: the caller posts the region and works on it; the team threads, spinning
without the GIL since their last region, see it within a fraction of a microsecond, claim
parts with an atomic counter and go back to spinning when none is left. No Python code runs
on the team threads while a region is worked on, so the GIL never changes hands in the middle
of one. A team thread that has seen no region for :data:`IDLE_SPINS` polls (about 0.7 ms on the
Intel VM of bench/RESULTS.md) goes to sleep on an Event; the next region wakes it, and starts
without it meanwhile. Why: openge.kernels.blas's pool hands jobs over with a queue and locks,
and in a virtual machine whose idle cores halt every hand-over (a wake-up, two GIL switches)
costs ~20 µs, more than a depthwise convolution's whole work on a 14×14 plane.

One caller at a time: another thread calling meanwhile (two models executing concurrently)
runs its kernel whole in its own thread. Correctness never depends on the team threads: the
caller claims whatever they have not.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openge import kernels

#: Parts per thread a region is cut into (claimed one at a time: a thread the scheduler runs
#: late leaves its share to the others). Few, because neighbouring parts run on different
#: cores pass their boundary cache lines back and forth.
PARTS_PER_THREAD = 1
#: Polls (with the spin-wait hint) a team thread makes for the next region before sleeping:
#: long enough to bridge a model's serial stretches (an SE block's pooling and small
#: products) without a wake-up, which cost more (2 threads, 8192 → 65536 polls: mobilenet_v3
#: -8 %, shufflenet -8 %, efficientnet_b0 -5 %, gpt2_block -4 %, the rest unchanged).
IDLE_SPINS = 1 << 16
#: Polls the caller makes for the last parts before waiting in short sleeps instead (a team
#: thread holding a part was descheduled: another process holds its core).
CALLER_SPINS = 1 << 20


#: Bytes around the words threads poll: nothing else may share their cache lines (another
#: thread's writes there would make every poll a cross-core transfer, and the poller's reads
#: would make those writes stall).
_LINE = 128


def _line_alone(words: int) -> np.ndarray:
    """``words`` zero int64 words on cache lines of their own."""
    pad = _LINE // 8
    raw = np.zeros(words + 3 * pad, np.int64)
    start = pad + (-raw[pad:].ctypes.data % _LINE) // 8
    return raw[start : start + words]


def _cpu_reader() -> Callable[[], int] | None:
    """glibc's ``sched_getcpu`` (the CPU the calling thread runs on, from the vDSO: well under
    a microsecond), or None where it is missing (not Linux, another C library)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        getcpu = libc.sched_getcpu
    except (OSError, AttributeError):
        return None
    getcpu.restype = ctypes.c_int
    getcpu.argtypes = []
    return getcpu


_current_cpu = _cpu_reader()


def _leave_cpu(cpu: int) -> bool:
    """Move the calling thread off ``cpu`` if it runs there (True when it moved).

    Why: Linux wakes a sleeping thread on its waker's CPU when it can ("wake affine"), so a
    team thread woken by the caller after an idle spell could share the caller's core, both
    spinning, until the load balancer moved one of them — measured on the 2-vCPU Zen 4:
    BERT-tiny's first runs after 0.1 s idle took 5-12 ms instead of 1.3, for up to five runs.
    Narrowing the thread's CPU mask to the others migrates it at once; the mask is restored
    right after (the thread stays where it went)."""
    if _current_cpu is None or _current_cpu() != cpu:
        return False
    try:
        allowed = os.sched_getaffinity(0)
        others = allowed - {cpu}
        if not others:
            return False
        os.sched_setaffinity(0, others)
        os.sched_setaffinity(0, allowed)
    except OSError:  # a mask the process may not set (a container's cpuset changed)
        return False
    return True


#: Regions whose control words one slab holds (64 KiB of zeros).
_SLAB_REGIONS = 512


class _Controls:
    """Zeroed control words for each new region, carved in turn from slabs made by
    :func:`_line_alone`, one 128-byte stretch per region: ~0.3 µs where a fresh
    :func:`_line_alone` took ~2.4. Words are never handed out twice (a team thread the
    scheduler stopped inside an old region may still touch that region's words when it
    resumes); a slab is freed once no region refers to its words. Used under the team's
    ``busy`` lock."""

    __slots__ = ("next", "slab", "words")

    def __init__(self, words: int) -> None:
        if words > _LINE // 8:
            raise ValueError("control words must fit one 128-byte stretch")
        self.words = words
        self.slab = _line_alone(_SLAB_REGIONS * (_LINE // 8))
        self.next = 0

    def take(self) -> np.ndarray:
        start = self.next
        if start >= self.slab.size:
            self.slab = _line_alone(_SLAB_REGIONS * (_LINE // 8))
            start = 0
        self.next = start + _LINE // 8
        return self.slab[start : start + self.words]


class _Region:
    """One posted kernel call."""

    __slots__ = ("args", "ctl", "drive", "error", "gen", "total", "width")

    def __init__(
        self,
        drive: Callable[..., bool],
        args: tuple,
        total: int,
        ctl: np.ndarray,
        gen: int,
        width: int,
    ) -> None:
        self.drive = drive
        self.args = args
        self.total = total
        self.ctl = ctl
        self.gen = gen
        self.width = width
        self.error: BaseException | None = None


class _Worker:
    """A team thread: sleeps on ``wake`` until a region needs it, then serves regions (each
    call returns when a newer region is posted) until it has been idle too long."""

    def __init__(self, team: Team, index: int) -> None:
        self.team = team
        self.index = index
        self.sleeping = True
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"openge-team-{index}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        team, sync = self.team, self.team.sync
        signal = team.signal
        while True:
            self.wake.wait()
            self.wake.clear()
            if team.waker_cpu >= 0:  # woken onto the caller's core: move to another
                _leave_cpu(team.waker_cpu)
            while True:
                region = team.region
                if region is None or self.index >= region.width - 1:
                    more = False
                else:
                    try:
                        more = region.drive(
                            *region.args,
                            region.total,
                            region.ctl,
                            signal,
                            True,
                            region.gen,
                            IDLE_SPINS,
                        )
                    except BaseException as err:  # handed to the caller, raised there
                        if region.error is None:
                            region.error = err
                        sync.fail_part(region.ctl)
                        more = sync.idle(signal, region.gen, IDLE_SPINS)
                if more:
                    continue
                self.sleeping = True
                # a region posted while this thread decided to sleep: serve it after all
                if region is not None and team.region is not region:
                    self.sleeping = False
                    continue
                break


class Team:
    """The team threads and the words they spin on."""

    def __init__(self) -> None:
        self.sync = kernels.load("sync")
        if self.sync is None:
            raise RuntimeError("the thread team needs numba")
        self.signal = _line_alone(self.sync.SIGNAL_WORDS)
        self.controls = _Controls(self.sync.CTL_WORDS)
        self.region: _Region | None = None
        self.generation = 0
        self.workers: list[_Worker] = []
        self.busy = threading.Lock()
        #: The CPU of the caller that last woke sleeping team threads (-1: unknown).
        self.waker_cpu = -1

    def _pool(self, n: int) -> list[_Worker]:
        while len(self.workers) < n:
            self.workers.append(_Worker(self, len(self.workers)))
        return self.workers[:n]

    def run(
        self,
        drive: Callable[..., bool],
        args: Sequence[Any],
        total: int,
        parts: int,
        threads: int,
        whole: Callable[..., None],
    ) -> None:
        """``drive(*args, total, ctl, signal, worker, gen, spins)`` on ``threads`` threads
        (the caller's included), ``total`` items cut into ``parts``; ``whole(*args)`` in the
        calling thread when the team is busy or one thread is asked for."""
        if threads <= 1 or parts <= 1 or not self.busy.acquire(blocking=False):
            whole(*args)
            return
        # every line here is on each region's path (~3.5 µs for a small one): plain loops
        # and locals, no generator or helper call where the pool already has its threads
        try:
            sync = self.sync
            workers = self.workers
            if len(workers) != threads - 1:
                workers = self._pool(threads - 1)
            awake = 0
            for w in workers:
                if not w.sleeping:
                    awake += 1
            self.generation += 1
            gen = self.generation
            ctl = self.controls.take()
            ctl[sync.PARTS] = parts
            ctl[sync.AWAKE] = awake
            region = _Region(drive, tuple(args), total, ctl, gen, threads)
            self.region = region
            if awake < len(workers):
                if _current_cpu is not None:
                    self.waker_cpu = _current_cpu()
                for w in workers:
                    if w.sleeping:
                        w.sleeping = False
                        w.wake.set()
            try:
                ok = drive(*args, total, ctl, self.signal, False, gen, CALLER_SPINS)
            except BaseException:
                sync.fail_part(ctl)  # the caller's part in flight
                self._wait(ctl)
                raise
            if not ok:
                self._wait(ctl)
            if region.error is not None:
                raise region.error
        finally:
            self.busy.release()

    def _wait(self, ctl: np.ndarray) -> None:
        """Until every part is done, polling in short sleeps (a team thread holding a part
        has been descheduled)."""
        while not self.sync.wait_done(ctl, 1024):
            time.sleep(50e-6)


_team: Team | None = None
_team_lock = threading.Lock()


def get() -> Team | None:
    """The process's team (made on first use), or None without numba."""
    global _team
    if _team is None:
        with _team_lock:
            if _team is None:
                try:
                    _team = Team()
                except RuntimeError:
                    return None
    return _team


def _after_fork() -> None:
    """A forked child has none of the parent's team threads: start afresh."""
    global _team, _team_lock
    _team = None
    _team_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def run(
    drive: Callable[..., bool],
    whole: Callable[..., None],
    args: Sequence[Any],
    total: int,
    parts: int,
    threads: int,
) -> None:
    """Run a kernel's drive form on the team (see :meth:`Team.run`), or ``whole(*args)``
    without one."""
    team = get()
    if team is None:
        whole(*args)
        return
    team.run(drive, args, total, parts, threads, whole)


__all__ = ["CALLER_SPINS", "IDLE_SPINS", "PARTS_PER_THREAD", "Team", "get", "run"]
