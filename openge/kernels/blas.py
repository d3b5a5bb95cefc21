"""BLAS products split over openge's own threads (kernels layer; no numba).

Why: numpy's OpenBLAS threads each product on its own. On two cores that loses twice: small
products pay a thread wake-up each (BERT-tiny ran 25% slower at 2 threads than at 1), and its
threads wait for each other with ``sched_yield``, so when another process holds a core — even a
nice-19 one — every product stalls for scheduler ticks (measured here: resnet18 at 2 threads
9× slower than at 1). ONNX Runtime instead splits each product over its own thread pool whose
threads block, not spin, and degrades gracefully.

So openge does the same with BLAS kept: :func:`parallel` runs independent jobs (parts of one
product, or whole im2col + GEMM chunks of a convolution) on a small pool of threads that block
on locks, while numpy's OpenBLAS is held at one thread; :func:`matmul` splits one
``np.matmul`` over batch, rows or columns. Small products run whole, on one BLAS thread.

The split degree is ``min(openge.kernels.get_num_threads(), BLAS threads)``: openge never runs
more product threads than the user allowed numpy's BLAS. When numpy's BLAS is not OpenBLAS
(Accelerate, MKL) or its thread setting cannot be found, nothing is split and numpy's BLAS
threads as it always does. The BLAS thread count is lowered to 1 only while openge's jobs run
(counted across threads, restored by the last one out): another thread's numpy products in
that window run on one thread — slower, never wrong.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence

import numpy as np

from openge import kernels

logger = logging.getLogger(__name__)

#: Products below this many floating-point operations (2·M·N·K) per part run whole on one
#: BLAS thread. Handing a part to the pool and reading back what the other core wrote costs
#: ~0.1 ms on a 2-vCPU VM: BERT-tiny's 16.8 MFLOP products took 0.16 ms whole and 0.32 ms
#: split (model at 2 threads: 4.1 → 3.5 ms from 4M to 12M; gpt2_block, vit_block, resnet50,
#: inception_v2 unchanged within noise; Intel Xeon AVX-512).
MIN_SPLIT_FLOPS = 12_000_000
#: Rows or columns below this per part make BLAS's kernels inefficient: split the other way.
_MIN_PART = 16

_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


#: (sgemm, dgemm, 64-bit BLAS ints) CBLAS symbol names, looked up in the library whose thread
#: setting was found (numpy's wheels: scipy-openblas64, ILP64 with a ``64_`` suffix).
_GEMM_SYMBOLS = (
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True),
    ("cblas_sgemm64_", "cblas_dgemm64_", True),
    ("scipy_cblas_sgemm", "scipy_cblas_dgemm", False),
    ("cblas_sgemm", "cblas_dgemm", False),
)


class _Blas:
    """numpy's OpenBLAS thread setting (get/set) and GEMM entry points, found once; ``ok``
    False when absent."""

    def __init__(self) -> None:
        self.ok = False
        self.get: Callable[[], int] | None = None
        self.set: Callable[[int], None] | None = None
        self.gemm: dict[str, int] = {}
        self.gemv: dict[str, int] = {}
        self.ilp64 = False
        for path in self._candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get_name, set_name in _SYMBOLS:
                get = getattr(lib, get_name, None)
                set_ = getattr(lib, set_name, None)
                if get is not None and set_ is not None:
                    get.restype = ctypes.c_int
                    get.argtypes = []
                    set_.restype = None
                    set_.argtypes = [ctypes.c_int]
                    self.get, self.set, self.ok = get, set_, True
                    logger.debug("numpy's BLAS thread setting: %s in %s", set_name, path)
                    self._find_gemm(lib)
                    return

    def _find_gemm(self, lib: ctypes.CDLL) -> None:
        for s_name, d_name, ilp64 in _GEMM_SYMBOLS:
            sgemm, dgemm = getattr(lib, s_name, None), getattr(lib, d_name, None)
            if sgemm is not None and dgemm is not None:
                self.gemm = {
                    "float32": ctypes.cast(sgemm, ctypes.c_void_p).value or 0,
                    "float64": ctypes.cast(dgemm, ctypes.c_void_p).value or 0,
                }
                # the matrix-vector product of the same family (same int width)
                sgemv = getattr(lib, s_name.replace("gemm", "gemv"), None)
                dgemv = getattr(lib, d_name.replace("gemm", "gemv"), None)
                if sgemv is not None and dgemv is not None:
                    self.gemv = {
                        "float32": ctypes.cast(sgemv, ctypes.c_void_p).value or 0,
                        "float64": ctypes.cast(dgemv, ctypes.c_void_p).value or 0,
                    }
                self.ilp64 = ilp64
                return

    @staticmethod
    def _candidates() -> list[str]:
        """The OpenBLAS libraries numpy's wheels bundle (numpy.libs on Linux and Windows,
        numpy/.dylibs on macOS); on Linux, the ones this process has loaded."""
        root = os.path.dirname(np.__file__)
        found = []
        for folder in (
            os.path.join(os.path.dirname(root), "numpy.libs"),
            os.path.join(root, ".dylibs"),
        ):
            found += sorted(glob.glob(os.path.join(folder, "*openblas*")))
        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
                for line in maps:
                    path = line.rsplit(" ", 1)[-1].strip()
                    if "openblas" in os.path.basename(path) and path not in found:
                        found.append(path)
        except OSError:
            pass
        return found


_blas: _Blas | None = None
_blas_lock = threading.Lock()
_held = {"depth": 0, "saved": 1}


def _lib() -> _Blas:
    global _blas
    if _blas is None:
        with _blas_lock:
            if _blas is None:
                _blas = _Blas()
    return _blas


def gemm_entry(dtype: np.dtype) -> tuple[int, bool] | None:
    """(address of numpy's OpenBLAS ``cblas_sgemm``/``cblas_dgemm`` for ``dtype``, whether its
    ints are 64-bit), for compiled code that calls it (openge.kernels.pointwise); None when
    not found."""
    lib = _lib()
    address = lib.gemm.get(np.dtype(dtype).name, 0)
    return (address, lib.ilp64) if lib.ok and address else None


def gemv_entry(dtype: np.dtype) -> int:
    """The address of the ``cblas_sgemv``/``cblas_dgemv`` beside :func:`gemm_entry`'s GEMM
    (same int width), or 0 when not found."""
    lib = _lib()
    return lib.gemv.get(np.dtype(dtype).name, 0) if lib.ok else 0


def split_threads() -> int:
    """How many parts openge splits a product into now (1: no split)."""
    lib = _lib()
    if not lib.ok:
        return 1
    n = kernels.get_num_threads()
    if n <= 1:
        return 1
    with _blas_lock:
        blas = _held["saved"] if _held["depth"] else lib.get()  # type: ignore[misc]
    return max(1, min(n, blas))


class _Single:
    """Context: numpy's OpenBLAS at one thread (counted across threads; the last one out
    restores the count the first one in found). Entering gives that count (1 when it
    cannot be read): the most threads openge splits a product over meanwhile, as
    :func:`split_threads` would say, without a second look at the library (a 1×1
    convolution asks once per call)."""

    __slots__ = ()

    def __enter__(self) -> int:
        lib = _lib()
        if not lib.ok:
            return 1
        with _blas_lock:
            if _held["depth"] == 0:
                _held["saved"] = lib.get()  # type: ignore[misc]
                if _held["saved"] != 1:
                    lib.set(1)  # type: ignore[misc]
            _held["depth"] += 1
            return max(1, _held["saved"])

    def __exit__(self, *exc: object) -> None:
        lib = _lib()
        if not lib.ok:
            return
        with _blas_lock:
            _held["depth"] -= 1
            if _held["depth"] == 0 and _held["saved"] != 1:
                lib.set(_held["saved"])  # type: ignore[misc]


single_blas = _Single()


class _Region:
    """One call's jobs, claimed one at a time by whichever thread is free: a pool thread the
    scheduler has not run yet (another process holds its core) leaves its share to the caller
    instead of making it wait."""

    __slots__ = ("done", "error", "jobs", "lock", "next", "running")

    def __init__(self, jobs: Sequence[Callable[[], None]]) -> None:
        self.jobs = jobs
        self.next = 0
        self.running = 0  # jobs claimed and not finished
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)

    def work(self) -> None:
        """Claim and run jobs until none is left unclaimed."""
        while True:
            with self.lock:
                if self.next >= len(self.jobs) or self.error is not None:
                    return
                job = self.jobs[self.next]
                self.next += 1
                self.running += 1
            try:
                job()
            except BaseException as err:  # handed to the caller, raised there
                with self.lock:
                    if self.error is None:
                        self.error = err
            finally:
                with self.lock:
                    self.running -= 1
                    if not self.running:
                        self.done.notify_all()

    def wait(self) -> None:
        """Return when every claimed job has finished (unclaimed ones: none, after work())."""
        with self.lock:
            while self.running:
                self.done.wait()


class _Worker:
    """One pool thread: takes regions from its queue and works on each."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Region] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="openge-blas", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self.queue.get().work()


_workers: list[_Worker] = []
#: One parallel region at a time: the pool's workers serve one caller.
_region = threading.Lock()


def _after_fork() -> None:
    """A forked child has none of the parent's pool threads: start afresh."""
    global _region, _blas_lock
    _workers.clear()
    _region = threading.Lock()
    _blas_lock = threading.Lock()
    if _held["depth"] and _blas is not None and _blas.ok and _held["saved"] != 1:
        _blas.set(_held["saved"])  # type: ignore[misc]  # the parent was inside a region
    _held["depth"] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _pool(n: int) -> list[_Worker]:
    while len(_workers) < n:
        _workers.append(_Worker())
    return _workers[:n]


def parallel(jobs: Sequence[Callable[[], None]], threads: int | None = None) -> None:
    """Run ``jobs`` (independent; each may call BLAS) on up to :func:`split_threads` threads
    (or ``threads``: compiled kernels that release the GIL use openge's own count), the
    caller's included, with numpy's BLAS at one thread; return when all are done, raising the
    first job's error. Jobs are claimed in order by whichever thread is free."""
    if not jobs:
        return
    threads = min(split_threads() if threads is None else threads, len(jobs))
    if threads <= 1 or not _region.acquire(blocking=False):
        with single_blas:
            for job in jobs:
                job()
        return
    try:
        with single_blas:
            region = _Region(jobs)
            for w in _pool(threads - 1):
                w.queue.put(region)
            region.work()
            region.wait()
            if region.error is not None:
                raise region.error
    finally:
        _region.release()


def _slice_operand(x: np.ndarray, out_ndim: int, axis: int, part: slice) -> np.ndarray:
    """``x`` (an operand broadcast to an output of rank ``out_ndim``) cut along output axis
    ``axis`` (negative), unless it broadcasts there."""
    k = x.ndim + axis
    if k < 0 or x.shape[k] == 1:
        return x
    index = [slice(None)] * x.ndim
    index[k] = part
    return x[tuple(index)]


def _bounds(size: int, parts: int, align: int) -> list[tuple[int, int]]:
    """``parts`` near-equal ranges covering [0, size), cut at multiples of ``align``."""
    step = -(-size // parts)
    step = -(-step // align) * align
    return [(a, min(size, a + step)) for a in range(0, size, step)]


def matmul_jobs(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, parts: int
) -> list[Callable[[], None]]:
    """``np.matmul(a, b, out=out)`` as up to ``parts`` jobs writing disjoint parts of ``out``:
    cut along the first batch axis with at least ``parts`` entries, else along rows (M) or
    columns (N), whichever leaves the larger parts."""
    nd = out.ndim
    cuts: list[tuple[int, list[tuple[int, int]]]] = []
    for axis in range(-nd, -2):
        if out.shape[axis] >= parts:
            cuts = [(axis, _bounds(out.shape[axis], parts, 1))]
            break
    if not cuts:
        m, n = out.shape[-2], out.shape[-1]
        if m >= n and m >= parts * _MIN_PART:
            cuts = [(-2, _bounds(m, parts, 8))]
        elif n >= parts * _MIN_PART:
            cuts = [(-1, _bounds(n, parts, 16))]
        elif m >= parts * _MIN_PART:
            cuts = [(-2, _bounds(m, parts, 8))]
    if not cuts:
        return [lambda: np.matmul(a, b, out=out)]
    axis, bounds = cuts[0]
    jobs: list[Callable[[], None]] = []
    for lo, hi in bounds:
        part = slice(lo, hi)
        if axis == -2:
            aa, bb = _slice_operand(a, nd, -2, part), b
        elif axis == -1:
            aa, bb = a, _slice_operand(b, nd, -1, part)
        else:
            aa, bb = _slice_operand(a, nd, axis, part), _slice_operand(b, nd, axis, part)
        oo = _slice_operand(out, nd, axis, part)

        def job(aa: np.ndarray = aa, bb: np.ndarray = bb, oo: np.ndarray = oo) -> None:
            np.matmul(aa, bb, out=oo)

        jobs.append(job)
    return jobs


def flops(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> int:
    """2·(output elements)·K of ``a @ b``."""
    return 2 * out.size * (a.shape[-1] if a.ndim else 1)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``np.matmul(a, b, out=out)``, split over openge's threads when big enough, else whole on
    one BLAS thread."""
    parts = split_threads()
    if (
        parts <= 1
        or min(a.ndim, b.ndim, out.ndim) < 2  # vector products: numpy's own rules
        or np.may_share_memory(out, a)
        or np.may_share_memory(out, b)
    ):
        np.matmul(a, b, out=out)  # numpy buffers overlapping operands; parts would not
        return
    if flops(a, b, out) < MIN_SPLIT_FLOPS * parts:
        with single_blas:
            np.matmul(a, b, out=out)
        return
    parallel(matmul_jobs(a, b, out, parts))


def chunks(total: int, parts: int, most: int) -> list[tuple[int, int]]:
    """Ranges covering [0, total): at most ``most`` long, their count a multiple of ``parts``
    when ``total`` allows (so that :func:`parallel` balances)."""
    count = max(1, -(-total // max(1, most)))
    count = min(total, -(-count // parts) * parts) if total >= parts else count
    step = -(-total // count)
    return [(a, min(total, a + step)) for a in range(0, total, step)]


__all__ = [
    "MIN_SPLIT_FLOPS",
    "chunks",
    "flops",
    "gemm_entry",
    "matmul",
    "matmul_jobs",
    "parallel",
    "single_blas",
    "split_threads",
]
