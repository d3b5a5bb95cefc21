"""Compile a kernel twice, parallel and serial (kernels layer, numba; imported by the numba
families only).

numba's parallel launch costs 25-55 µs (workqueue layer): more than a small kernel's work, and
pure overhead at one thread. The serial twin runs the same loop (``prange`` acts as ``range``)
without it; it gets its own qualified name so numba's on-disk cache keeps the two apart.
"""

from __future__ import annotations

import types
from collections.abc import Callable

from numba import njit


def twins(fn: Callable, **options: object) -> tuple[Callable, Callable]:
    """(parallel, serial) numba dispatchers of ``fn``, both cached, with NumPy's error model
    (a division by zero gives inf or NaN, never an exception); ``options`` go to both (e.g.
    ``fastmath``). The serial one releases the GIL: openge's own threads run it on parts."""
    serial = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial")
    serial.__qualname__ = fn.__qualname__ + "_serial"
    par = njit(parallel=True, cache=True, error_model="numpy", **options)(fn)
    return par, njit(cache=True, nogil=True, error_model="numpy", **options)(serial)


__all__ = ["twins"]
