"""Process memory the kernels care about (kernels layer): keep freed heap memory for reuse
under glibc, and give back the resident pages of mapped weights a kernel has copied.

:func:`keep_freed_memory`: NumPy kernels' temporaries of a few hundred KiB to a few MiB would
otherwise be mapped fresh, page-faulted in and unmapped on every execute.

glibc serves allocations above its mmap threshold (128 KiB at first, raised to the size of
each mapped block freed since) with their own mapping, and gives the top of the heap back to
the system past its trim threshold. How much an op's temporaries cost then depends on what ran
before it: on an AVX-512 Xeon, inception_v1's LRN took 0.47 ms after an im2col convolution
that freed a large block and 1.07 ms after one that did not, all of it page faults. ONNX
Runtime keeps its own arena for the same reason. Fixing both thresholds (32 MiB to map, 64 MiB
kept at the heap's top) makes the temporaries come from reused heap memory every time. A
process that sets glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` keeps
its settings; other C libraries are left alone.

:func:`release_pages`: a kernel that packs constant weights into its own layout at load
(openge.kernels.gemm) leaves the originals resident in the .om's read-only mapping, whose pages
the packing touched: a second copy of every packed weight in the process's RSS (bert_base:
+330 MiB). Telling the kernel the pages are not needed drops them from RSS; they are clean
pages of a file, so anything that reads them later gets them back from the page cache.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import sys
import threading

import numpy as np

#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks from this size get their own mapping (glibc's largest allowed on 64-bit).
MMAP_THRESHOLD = 32 << 20
#: Free memory kept at the top of the heap before glibc returns it to the system.
TRIM_THRESHOLD = 64 << 20

_lock = threading.Lock()
_state: dict[str, bool | None] = {"tuned": None}


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process (see the module docstring);
    True when they are set, False where they are left as they are (not glibc, or the
    environment sets them)."""
    with _lock:
        if _state["tuned"] is not None:
            return bool(_state["tuned"])
        _state["tuned"] = _tune()
        return bool(_state["tuned"])


def _tune() -> bool:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _byte_bounds(array: np.ndarray) -> tuple[int, int]:
    """First and one-past-last byte addresses ``array`` (non-empty) touches."""
    low = high = array.ctypes.data
    for dim, stride in zip(array.shape, array.strides, strict=True):
        if stride < 0:
            low += (dim - 1) * stride
        else:
            high += (dim - 1) * stride
    return low, high + array.itemsize


def release_pages(array: np.ndarray) -> int:
    """Drop from the process's RSS the whole pages under ``array`` when it is a view of a
    read-only file mapping (an .om's weights, a ``np.memmap(mode="r")``); bytes released (0
    for any other memory, whose pages must stay: anonymous memory would be zeroed)."""
    base = array
    while isinstance(base, np.ndarray | memoryview):  # views, np.frombuffer's memoryview
        base = base.base if isinstance(base, np.ndarray) else base.obj
    if not isinstance(base, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED") or not array.size:
        return 0
    try:
        with memoryview(base) as view:
            if not view.readonly:  # ACCESS_WRITE / ACCESS_COPY: pages may hold writes
                return 0
        start_of_map = np.frombuffer(base, np.uint8).ctypes.data
        low, high = _byte_bounds(array)
        page = mmap.PAGESIZE
        first = -(-(low - start_of_map) // page) * page
        stop = (high - start_of_map) // page * page
        if stop <= first:
            return 0
        base.madvise(mmap.MADV_DONTNEED, first, stop - first)
    except (ValueError, OSError, BufferError):  # a closed or odd mapping: keep the pages
        return 0
    return stop - first


__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory", "release_pages"]
