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

:func:`release_compiler_pages`: numba's LLVM library (libllvmlite, 170 MB on disk) is needed
to load or compile kernels, not to run them. Loading it, making numba's CPU target and its
runtime (which compiles a small LLVM module) and loading cached kernels leave about 70 MiB of
its code and read-only data resident on Linux (a read fault maps the surrounding pages, or
the whole page-cache folio, too): the largest single item of a compiled model's peak RSS.
Those pages are clean copies of the file, so they can be dropped the same way; the next load
or compile gets them back from the page cache with minor faults.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any

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


#: The file name numba's LLVM library starts with (llvmlite/binding/libllvmlite.so).
COMPILER_LIBRARY = "libllvmlite"
_MAPPING_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) [0-9a-f]+ \S+ \d+\s*(.*)$")
#: The library's mappings as /proc/self/maps listed them, and the spans among them safe to drop.
_compiler: dict[str, Any] = {"lines": (), "spans": (), "madvise": None}


def release_compiler_pages(recheck: bool = True) -> int:
    """Drop from the process's RSS the resident pages of numba's LLVM library's read-only
    mappings (see the module docstring); bytes of the mappings advised (0 off Linux, or when
    the library is not loaded).

    Only private mappings that are not writable and hold no page of their own (no
    copy-on-write: Anonymous and Swap both 0 in /proc/self/smaps) are advised, so every
    dropped page is the file's own page-cache page, which stays in the page cache: the
    relocated read-only data (RELRO) and the writable data keep their pages. A page-cache
    page counted dirty (a library installed moments before, or on tmpfs) is still the file's
    page and loses nothing when its mapping is dropped. smaps is read
    when the library's mappings change; otherwise /proc/self/maps (~0.5 ms) shows they are
    the ones checked. ``recheck=False`` advises the spans an earlier call checked without
    reading /proc again (~20 µs: between a model's tasks; the library is never unloaded, so
    its mappings stay where they are), or does nothing before any such call."""
    if not sys.platform.startswith("linux") or "llvmlite.binding" not in sys.modules:
        return 0
    with _lock:
        try:
            if recheck or _compiler["madvise"] is None:
                with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
                    lines = tuple(line for line in f if COMPILER_LIBRARY in line)
                if lines != _compiler["lines"]:
                    with open("/proc/self/smaps", encoding="ascii", errors="replace") as f:
                        _compiler["spans"] = clean_read_only_spans(f)
                    _compiler["lines"] = lines
                if _compiler["madvise"] is None:
                    madvise = ctypes.CDLL(None, use_errno=True).madvise
                    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                    madvise.restype = ctypes.c_int
                    _compiler["madvise"] = madvise
        except (OSError, AttributeError):
            return 0
        madvise = _compiler["madvise"]
        advised = 0
        for start, size in _compiler["spans"]:
            if madvise(start, size, mmap.MADV_DONTNEED) == 0:
                advised += size
        return advised


def clean_read_only_spans(smaps: Iterable[str]) -> tuple[tuple[int, int], ...]:
    """(start, size) of the compiler library's mappings that hold only clean file pages,
    from the lines of a /proc/<pid>/smaps."""
    spans: list[tuple[int, int]] = []
    current: dict | None = None

    def close(mapping: dict | None) -> None:
        if mapping is None:
            return
        fields = mapping["fields"]
        private_read_only = mapping["perms"][0] == "r" and mapping["perms"][1:4:2] == "-p"
        untouched = all(fields.get(key, -1) == 0 for key in _OWN_PAGE_FIELDS)
        if private_read_only and untouched and mapping["end"] > mapping["start"]:
            spans.append((mapping["start"], mapping["end"] - mapping["start"]))

    for line in smaps:
        match = _MAPPING_LINE.match(line)
        if match is not None:
            close(current)
            current = None
            path = match.group(4).strip()
            if os.path.basename(path).startswith(COMPILER_LIBRARY):
                current = {
                    "start": int(match.group(1), 16),
                    "end": int(match.group(2), 16),
                    "perms": match.group(3),
                    "fields": {},
                }
        elif current is not None and ":" in line:
            key, _, value = line.partition(":")
            words = value.split()
            if words and words[0].isdigit():
                current["fields"][key] = int(words[0])
    close(current)
    return tuple(spans)


#: smaps fields that count a mapping's own (copy-on-write, or such pages swapped out) pages;
#: both must be 0. Not the Dirty fields: they also count page-cache pages not yet written
#: back, which a freshly installed numba has for its first half minute (and tmpfs always).
_OWN_PAGE_FIELDS = ("Anonymous", "Swap")

__all__ = [
    "COMPILER_LIBRARY",
    "MMAP_THRESHOLD",
    "TRIM_THRESHOLD",
    "clean_read_only_spans",
    "keep_freed_memory",
    "release_compiler_pages",
    "release_pages",
]
