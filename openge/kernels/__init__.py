"""Compiled kernels (numba), the kernels layer: pure functions over arrays, one module per family.

Nothing here imports numba at import time: the ops' ``prepare`` functions call :func:`load`
when a loaded model needs a compiled kernel, so a process that only builds graphs, or runs a
model whose tasks have no compiled kernel, never pays numba's import (~60 MiB, ~0.3 s).

:func:`load` points numba's on-disk cache at a user cache folder before the first kernel module
is imported (numba's default, ``__pycache__`` beside the source, fails when site-packages is
read-only); see :func:`cache_dir`. :func:`set_num_threads` is the one setting for the threads
of openge's compiled kernels (openge.runtime.set_num_threads also covers BLAS). The kernels are
compiled serial and release the GIL; openge's own threads run them on parts of the work, in one
of two ways: kernels with a ``*_drive`` form on openge's thread team (``team``: threads that
spin without the GIL between kernels and claim parts with atomics, see ``sync``), the others
through openge.ops.compiled.launcher over :func:`openge.kernels.blas.parallel` (a pool whose
idle threads block). numba's parallel launches and threading layer are not used.

Modules (family → kernels): ``conv`` (depthwise convolution), ``depthwise`` (depthwise
and few-channel convolutions with a fused activation: flat-plane, row and channels-last
kernels; a 1×1 convolution's epilogue per column block), ``pointwise`` (1×1 convolutions,
few-row and batched products calling numpy's OpenBLAS GEMM from compiled code), ``pooling``
(max / average pooling), ``codegen`` (elementwise programs compiled into one loop each),
``winograd`` (F(2×2, 3×3) transforms), ``norm`` (layer norm, row sums), ``softmax`` (softmax
and log-softmax),
``gemm`` (openge's own float32 GEMM for products with constant weights: an LLVM-IR
micro-kernel on weights packed at load), ``im2col``
(float32 convolutions as im2col panels packed per block and multiplied on ``gemm``'s
micro-kernel, the epilogue fused; with few output channels the windows read in place by
``gemm.tile_rows`` instead), ``im2row`` (small output planes with the positions as the
product's rows, on ``gemm``'s 7-row tile), ``sync`` (atomics and the team's region protocol).
``team`` (the thread team), ``blas`` (splits BLAS products, finds numpy's OpenBLAS GEMM, runs
parts of compiled kernels over openge's threads), ``allocator`` (glibc's thresholds, so that
NumPy temporaries reuse heap memory; the release of mapped weights' and numba's compiler's
clean pages) and ``nrt_cache`` (numba's runtime started from cached machine code) import no
numba at import time.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import sys
import tempfile
import threading
from types import ModuleType

from openge.kernels import allocator

logger = logging.getLogger(__name__)

_FAMILIES = (
    "conv",
    "depthwise",
    "pooling",
    "codegen",
    "winograd",
    "winograd4",
    "norm",
    "sync",
    "pointwise",
    "gemm",
    "im2col",
    "im2row",
    "softmax",
)
_lock = threading.RLock()
_state: dict[str, object] = {
    "configured": False,
    "available": None,
    "threads": None,
    "enabled": True,
}


def _user_cache_root() -> str:
    """The platform's per-user cache folder (XDG on Linux, Library/Caches on macOS,
    LOCALAPPDATA on Windows), without a platformdirs dependency."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return base


def _writable(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def cache_dir() -> str:
    """The folder of openge's compiled-kernel cache.

    ``NUMBA_CACHE_DIR`` when the user set it (numba's own setting wins), else
    ``<user cache>/openge/numba/<sources digest>`` (e.g. ``~/.cache/openge/numba/…``), else,
    when that is not writable, a per-user folder under the system temp folder.
    """
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        return user
    digest = sources_digest()
    path = os.path.join(_user_cache_root(), "openge", "numba", digest)
    if _writable(path):
        return path
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return os.path.join(tempfile.gettempdir(), f"openge-numba-{uid}", digest)


def sources_digest() -> str:
    """16 hex digits over the sources of this package's modules: the cache folder changes with
    them, since numba checks only the stamp of the file that defines a cached function, not
    of the helpers it inlines from other modules (a changed openge.kernels.mathf32 would
    otherwise leave stale machine code behind)."""
    if "digest" not in _state:
        here = os.path.dirname(os.path.abspath(__file__))
        h = hashlib.sha256()
        for name in sorted(os.listdir(here)):
            if name.endswith(".py"):
                h.update(name.encode())
                with open(os.path.join(here, name), "rb") as f:
                    h.update(f.read())
        _state["digest"] = h.hexdigest()[:16]
    return str(_state["digest"])


def _wide_vector_features() -> str | None:
    """The host's LLVM CPU features with 512-bit vectors preferred, on AVX-512 hosts (None
    elsewhere). LLVM's own tuning for these CPUs vectorizes loops 256 bits wide; the compiled
    loops (elementwise programs, softmax, poolings) ran 1.2-1.35x faster 512 bits wide
    (measured on an AVX-512 Xeon: tanh-GELU over 393k float32 0.53 → 0.40 ms, sigmoid 0.28 →
    0.22; mobilenet_v2 10.5 → 9.8 ms at one thread). openge's GEMM micro-kernel names its
    vector width itself and is unaffected. ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` set by
    the user are kept."""
    from llvmlite import binding

    try:
        features = binding.get_host_cpu_features()
    except RuntimeError:  # llvmlite cannot read them on some hosts: numba's defaults then
        return None
    if not features.get("avx512f"):
        return None
    return features.flatten() + ",-prefer-256-bit"


def _configure() -> None:
    """Import numba with its cache folder set (once per process)."""
    if _state["configured"]:
        return
    try:
        # LLVM first, alone: its static constructors run all over its code as it loads (~36
        # MiB resident), dropped before numba's own modules add theirs to the RSS
        import llvmlite.binding  # noqa: F401

        allocator.release_compiler_pages()
        from numba.core import config
    except ImportError:
        _state["available"] = False
        _state["configured"] = True
        logger.info("numba is not installed: openge runs its NumPy kernels only")
        return
    if not os.environ.get("NUMBA_CACHE_DIR"):
        path = cache_dir()
        os.makedirs(path, exist_ok=True)
        config.CACHE_DIR = path  # read when a cached function is first compiled
    if config.CPU_NAME is None and config.CPU_FEATURES is None:  # the user's settings win
        config.CPU_FEATURES = _wide_vector_features()  # read when the CPU target is made
    _state["available"] = True
    _state["configured"] = True


def available() -> bool:
    """True when numba can be imported (it is a core dependency; this guards odd installs)."""
    with _lock:
        _configure()
        return bool(_state["available"])


def set_enabled(enabled: bool) -> None:
    """Use compiled kernels in models loaded from now on (True, the default) or only the NumPy
    reference kernels (False: for comparisons and debugging)."""
    _state["enabled"] = bool(enabled)


def enabled() -> bool:
    """Whether models loaded now use compiled kernels."""
    return bool(_state["enabled"])


def load(family: str) -> ModuleType | None:
    """The compiled-kernel module ``family`` (imported on first use), or None without numba or
    when compiled kernels are disabled (:func:`set_enabled`)."""
    if family not in _FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; known: {', '.join(_FAMILIES)}")
    if not _state["enabled"]:
        return None
    with _lock:
        _configure()
        if not _state["available"]:
            return None
        module = importlib.import_module(f"openge.kernels.{family}")
        if not _state.get("imported"):
            _start_runtime()
        _state["imported"] = True
        if family not in _light:
            _light.add(family)
            skip_refresh_on_cached_loads(module)
        return module


_light: set[str] = set()


def _start_runtime() -> None:
    """Make numba's CPU target and start its runtime (NRT) before the first kernel loads,
    the runtime from openge's cache (nrt_cache), then drop the compiler's pages from RSS
    (allocator.release_compiler_pages).

    Why: the first cached kernel's load does both anyway, and numba compiles NRT's small LLVM
    module in every process (35-40 ms; its optimizer maps about 48 MiB of libllvmlite's
    code). Done here, before the ops pack any weights, and released right after, the pages
    the target touches are not resident while the model's memory grows (figures in
    docs/decisions.md, "numba's compiler pages"). Where numba's internals differ, the first
    load starts them as before."""
    try:
        from numba.core.registry import cpu_target
        from numba.core.runtime import rtsys

        from openge.kernels import nrt_cache

        context = cpu_target.target_context
        if not nrt_cache.start(context, cache_dir()):
            rtsys.initialize(context)
    except Exception as err:  # numba's internals moved: its own first load does this
        logger.debug("numba's runtime not started ahead of the first kernel: %s", err)
    allocator.release_compiler_pages()


def skip_refresh_on_cached_loads(module: ModuleType) -> None:
    """Let ``module``'s cached kernels load without numba's ``refresh()`` of its target
    context.

    numba's on-disk cache calls ``target_context.refresh()`` before every lookup. The first
    refresh imports numba's whole library of lowering implementations (``numba.np.arraymath``
    and the rest, and through its BLAS check ``scipy.linalg`` when SciPy is installed): 0.2-
    0.4 s and 50-70 MiB that a model whose kernels are all in the cache never uses — loading
    machine code needs the code generator, which the context has from its creation. numba
    refreshes the contexts itself before it compiles anything (``compile_extra``) and when a
    lowering lookup misses, so a kernel that is not in the cache still compiles as before.
    The loader still initializes numba's runtime (NRT), whose symbols cached code links to
    and which numba initializes in that refresh. Applied per dispatcher of this module, only
    where numba has the methods this relies on (long part of its caching and runtime modules;
    checked on 0.68), else nothing changes."""
    try:
        from numba.core.runtime import rtsys
    except ImportError:
        return
    if not callable(getattr(rtsys, "initialize", None)):
        return
    for value in vars(module).values():
        cache = getattr(value, "_cache", None)
        if getattr(value, "__module__", "") != module.__name__ or cache is None:
            continue
        if not (
            callable(getattr(cache, "_load_overload", None))
            and callable(getattr(cache, "_guard_against_spurious_io_errors", None))
            and callable(getattr(cache, "load_overload", None))
        ):
            continue
        cache.load_overload = _cached_only_loader(cache)


def _cached_only_loader(cache: object):
    """``cache.load_overload`` without the target context's refresh (see
    :func:`skip_refresh_on_cached_loads`)."""

    from numba.core.runtime import rtsys

    def load_overload(sig, target_context):  # numba's signature
        # the one part of the refresh cached code needs: numba's runtime (NRT) symbols
        rtsys.initialize(target_context)
        with cache._guard_against_spurious_io_errors():  # type: ignore[attr-defined]
            return cache._load_overload(sig, target_context)  # type: ignore[attr-defined]
        return None  # an I/O error swallowed by the guard: numba compiles

    return load_overload


def imported() -> bool:
    """True once a compiled-kernel module was loaded in this process (numba's import and
    runtime are paid: smaller kernels may then be compiled too)."""
    return bool(_state.get("imported"))


def default_num_threads() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_num_threads(n: int | None) -> None:
    """Threads for openge's compiled kernels (None: :func:`default_num_threads`)."""
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"the thread count must be a positive int or None, got {n!r}")
    with _lock:
        _state["threads"] = n


def get_num_threads() -> int:
    """Threads openge's compiled kernels use."""
    n = _state["threads"]
    return int(n) if n is not None else default_num_threads()


__all__ = [
    "available",
    "cache_dir",
    "default_num_threads",
    "enabled",
    "get_num_threads",
    "imported",
    "load",
    "set_enabled",
    "set_num_threads",
    "sources_digest",
]
