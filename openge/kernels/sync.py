"""Atomics and the parallel-region protocol of openge's thread team (kernels layer, numba).

A compiled kernel with a ``*_drive`` form runs on every thread of the team
(openge.kernels.team) inside one call: the calling thread *posts* the region (bumps the
generation word the other threads spin on), then every thread claims parts with an atomic
counter, runs them and counts them done, all without the GIL; the caller returns when every
part is done. A team thread, its parts done, spins (still without the GIL) until the next
region is posted or a short idle budget runs out. So a region costs a few atomic operations
instead of a thread wake-up and two GIL hand-overs (each ~20 µs in a virtual machine whose
idle cores halt), which cost more than a small kernel's whole work.

Region control words (``ctl``, int64, one array per region, made by the team):
:data:`NEXT` (next part to claim), :data:`DONE` (parts finished), :data:`ABORT` (stop
claiming: a thread failed), :data:`ACK` (team threads that entered the region),
:data:`PARTS`, :data:`AWAKE` (team threads spinning when it was posted: the caller waits,
briefly, for their ACK so none still holds the GIL when it returns). Team word (``signal``):
:data:`GEN` (the generation: posted regions so far).
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

NEXT, DONE, ABORT, ACK, PARTS, AWAKE, FRONT, BACK = 0, 1, 2, 3, 4, 5, 6, 7
CTL_WORDS = 8
GEN = 0
SIGNAL_WORDS = 1

#: ``pause`` between polls on x86 (kinder to the other hyper-thread and to power); other
#: machines poll without it.
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _word(context, builder, sig, args):  # pragma: no cover - compiled
    """Pointer to ``args[0][args[1]]`` (an int64 array's element)."""
    ary = context.make_array(sig.args[0])(context, builder, args[0])
    return builder.gep(ary.data, [args[1]])


def _int64_array(arr) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.int64


@intrinsic
def atomic_add(typingctx, arr, index, value):  # pragma: no cover - compiled
    """``arr[index] += value`` atomically (sequentially consistent); the old value."""
    if not (_int64_array(arr) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _word(context, builder, sig, args)
        inc = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, inc, "seq_cst")

    return types.int64(arr, index, value), codegen


@intrinsic
def atomic_load(typingctx, arr, index):  # pragma: no cover - compiled
    """``arr[index]`` read atomically (acquire): re-read at every poll, never hoisted."""
    if not (_int64_array(arr) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_word(context, builder, sig, args), "acquire", 8)

    return types.int64(arr, index), codegen


@intrinsic
def atomic_store(typingctx, arr, index, value):  # pragma: no cover - compiled
    """``arr[index] = value`` atomically (release)."""
    if not (_int64_array(arr) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _word(context, builder, sig, args)
        val = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(val, ptr, "release", 8)
        return context.get_dummy_value()

    return types.none(arr, index, value), codegen


@intrinsic
def pause(typingctx):  # pragma: no cover - compiled
    """The spin-wait hint (x86 ``pause``); nothing elsewhere."""

    def codegen(context, builder, sig, args):
        if _X86:
            fn = builder.module.declare_intrinsic(
                "llvm.x86.sse2.pause", fnty=ir.FunctionType(ir.VoidType(), [])
            )
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.none(), codegen


@njit(inline="always")
def begin(ctl, signal, worker):  # pragma: no cover - compiled
    """Enter a region: the caller posts it (bumps GEN), a team thread acknowledges it."""
    if worker:
        atomic_add(ctl, ACK, 1)
    else:
        atomic_add(signal, GEN, 1)


@njit(inline="always")
def claim(ctl, worker):  # pragma: no cover - compiled
    """The next part to run, or -1 when none is left (or the region was aborted: a part
    claimed then is counted done without running). The caller takes parts from the front,
    team threads from the back."""
    k = atomic_add(ctl, NEXT, 1)
    if k >= ctl[PARTS]:
        return -1
    if atomic_load(ctl, ABORT):
        atomic_add(ctl, DONE, 1)
        return -1
    if worker:
        return ctl[PARTS] - 1 - atomic_add(ctl, BACK, 1)
    return atomic_add(ctl, FRONT, 1)


@njit(inline="always")
def bounds(ctl, total, k):  # pragma: no cover - compiled
    """Items [first, stop) of part ``k`` of ``total`` items."""
    parts = ctl[PARTS]
    return total * k // parts, total * (k + 1) // parts


@njit(inline="always")
def done(ctl):  # pragma: no cover - compiled
    """Count one claimed part finished."""
    atomic_add(ctl, DONE, 1)


@njit(inline="always")
def _wait_done(ctl, spins):  # pragma: no cover - compiled
    parts = ctl[PARTS]
    n = 0
    while atomic_load(ctl, DONE) < parts:
        pause()
        n += 1
        if n >= spins:
            return False
    return True


@njit(inline="always")
def _idle(signal, gen, spins):  # pragma: no cover - compiled
    n = 0
    while atomic_load(signal, GEN) == gen:
        pause()
        n += 1
        if n >= spins:
            return False
    return True


@njit(inline="always")
def end(ctl, signal, worker, gen, spins):  # pragma: no cover - compiled
    """Leave a region. The caller: True once every part is done (False after ``spins``
    polls: the team's Python side then keeps waiting), having waited a little for the
    spinning team threads' ACK. A team thread: True when a newer region was posted, False
    when ``spins`` polls passed without one: it then sleeps."""
    if worker:
        return _idle(signal, gen, spins)
    if not _wait_done(ctl, spins):
        return False
    n = 0
    while atomic_load(ctl, ACK) < ctl[AWAKE] and n < 1024:
        pause()
        n += 1
    return True


@njit(inline="always")
def drive(part, args, total, ctl, signal, worker, gen, spins):  # pragma: no cover - compiled
    """A whole region on one thread: ``part(*args, first, stop)`` for every part it claims
    of ``total`` items, between :func:`begin` and :func:`end` (whose result it returns).
    ``part`` is a kernel compiled on its own and called, not inlined: a kernel's ``*_drive``
    form then adds only this loop to compile, not a second copy of the kernel."""
    begin(ctl, signal, worker)
    k = claim(ctl, worker)
    while k >= 0:
        first, stop = bounds(ctl, total, k)
        part(*args, first, stop)
        done(ctl)
        k = claim(ctl, worker)
    return end(ctl, signal, worker, gen, spins)


@njit(cache=True, nogil=True)
def wait_done(ctl, spins):  # pragma: no cover - compiled
    """Without the GIL: True once every part of the region is done, False after ``spins``
    polls (the caller sleeps a little and asks again)."""
    return _wait_done(ctl, spins)


@njit(cache=True, nogil=True)
def idle(signal, gen, spins):  # pragma: no cover - compiled
    """Without the GIL: a team thread between regions; True when a region newer than ``gen``
    was posted, False after ``spins`` polls."""
    return _idle(signal, gen, spins)


@njit(cache=True, nogil=True)
def fail_part(ctl):  # pragma: no cover - compiled
    """A part raised: abort the region (no claim starts a part from now on), count the
    failed part done, and claim every part nobody claimed yet, counting each done without
    running it (the other threads stop at their next claim, so nobody else would)."""
    atomic_store(ctl, ABORT, 1)
    atomic_add(ctl, DONE, 1)
    while True:
        k = atomic_add(ctl, NEXT, 1)
        if k >= ctl[PARTS]:
            return
        atomic_add(ctl, DONE, 1)


def new_ctl(parts: int, awake: int) -> np.ndarray:
    """A region's control words."""
    ctl = np.zeros(CTL_WORDS, np.int64)
    ctl[PARTS] = parts
    ctl[AWAKE] = awake
    return ctl


__all__ = [
    "ABORT",
    "ACK",
    "AWAKE",
    "CTL_WORDS",
    "DONE",
    "GEN",
    "NEXT",
    "PARTS",
    "SIGNAL_WORDS",
    "atomic_add",
    "atomic_load",
    "atomic_store",
    "begin",
    "bounds",
    "claim",
    "done",
    "drive",
    "end",
    "fail_part",
    "idle",
    "new_ctl",
    "pause",
    "wait_done",
]
