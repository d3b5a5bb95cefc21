"""The ops' side of the compiled kernels (ops layer): turn a fused op's program into an
openge.kernels.codegen program, classify its operands, and bind the compiled function to a
task's fixed arrays in ``prepare``.

Everything here returns None when a compiled kernel does not apply (numba missing, a dtype or
an op outside the vocabulary, an operand that broadcasts in a way the loop does not cover);
the caller then keeps its NumPy kernel. Compiled kernels give the NumPy kernels' values within
the conformance tolerances, not bit for bit (different rounding of erf, pow, sums).

Kernels are compiled (or loaded from numba's cache) here, at load, with the task's actual
argument types — never during the first ``execute``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from openge import kernels
from openge.kernels import blas

logger = logging.getLogger(__name__)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: Programs over outputs smaller than this stay in NumPy: a NumPy pass over 512 KiB takes
#: ~30 µs, so fusing saves little, while the first compiled kernel of a process costs numba's
#: import and runtime (~0.25 s and ~40 MiB with the compiler's pages released, on the Zen 4):
#: a model whose tensors are all small never imports numba (except for an erf program, see
#: ERF_MIN_ELEMENTS).
MIN_ELEMENTS = 1 << 17
#: ... unless numba is loaded already (the model's other tasks use compiled kernels): then
#: from this size on, where one serial compiled pass beats NumPy's pass per step. In a model
#: NumPy's small calls run cold (the convolutions before them evicted its code and data): a
#: classifier's softmax over 1000 logits took 54-95 µs as NumPy's five calls there (9 µs
#: alone) and 7-18 µs compiled (AVX-512 Zen 4, one thread; squeezenet, mobilenet_v2/v3,
#: efficientnet_b0), so 512, not 4096 as before.
MIN_ELEMENTS_LOADED = 1 << 9
#: Outputs from which a program's loop (and a compiled reduction) is shared by the threads.
#: The split goes through openge.kernels.blas's pool, whose hand-overs plus the other core
#: reading what this one wrote cost more than the second core gives below ~2 MiB: at 2¹⁶,
#: mobilenet_v3's 200k-element hard-swish took 0.27 ms on two threads against 0.07 on one
#: (whole models at 2 threads, 2¹⁶ → 2¹⁹: mobilenet_v3 9.8 → 8.0 ms, efficientnet_b0 17.4 →
#: 15.2, densenet121 58.0 → 52.8; Intel Xeon AVX-512, 2 vCPU).
PARALLEL_ELEMENTS = 1 << 19
#: Elements from which a program's rows are shared by openge's thread team: a team region
#: costs a few atomic operations, not a pool hand-over, and a product's epilogue left to one
#: thread moved the other thread's half of the output to its core (the next task read it
#: back across).
TEAM_ELEMENTS = 1 << 16
#: Rows of a program whose operands are all full or scalar: about this many elements each.
_CHUNK = 16384
#: Vocabulary entries whose compiled form loses to NumPy's SIMD loops (measured on AVX-512:
#: tanh 0.8-1.5 ms per 393k float32 elements on one core, from libm or the float64 polynomial,
#: against NumPy's 0.14 ms): a program with one of them keeps its NumPy kernels.
SLOW_IN_LOOPS = frozenset(
    {"Exp", "Log", "Tanh", "Erf", "Sigmoid", "Swish", "Gelu", "GeluErf", "Pow"}
)
#: ... except these in float32 programs: openge.kernels.codegen's float32 exp vectorizes (SiLU
#: as x·Sigmoid(x) over 1.2M elements: one compiled pass vs NumPy's five; GPT-2's tanh-GELU,
#: eight ops over 393k elements, 1.46 ms as NumPy passes); erf from a table, 5-10x faster than
#: the NumPy kernels' ~20 passes.
FAST_FLOAT32 = frozenset({"Sigmoid", "Swish", "Erf", "GeluErf", "Tanh", "Gelu"})


#: float32 programs with one of these steps compile from ERF_MIN_ELEMENTS, even in a model
#: that has loaded no compiled kernel yet. Why: NumPy's float32 erf (openge.ops.elementwise)
#: is a rational function, ~32 NumPy passes per block: BERT-tiny's 65k-element erf-GELU took
#: 415 µs per run as NumPy passes, ~20× a plain arithmetic program's cost per element, and
#: 131 µs compiled (AVX-512 Zen 4, one thread): its two GELUs save ~0.57 ms per run, which
#: pays numba's start (~0.25 s and ~40 MiB at load, docs/decisions.md) back within about
#: five hundred runs.
ERF_STEPS = frozenset({"Erf", "GeluErf"})
ERF_MIN_ELEMENTS = 1 << 15

_build = threading.local()


@contextlib.contextmanager
def model_build() -> Iterator[None]:
    """The scope of one model's plan building (every plan of it: gears, a dynamic shape's).
    Inside it, :func:`loaded_here` says whether this model loads compiled kernels — not
    whether another model did earlier in the process — so a model's kernels, and its results'
    bits, do not depend on what else the process loaded (BERT-tiny alone ran its GELU in
    NumPy; it ran compiled after another model had imported numba). A task prepared before
    the model's first compiled kernel loaded is prepared again once it has
    (:func:`take_deferred`; openge.runtime.model does it), so the choice does not depend on
    the order of the tasks either. Reentrant: a nested scope shares the outer one's state."""
    if getattr(_build, "state", None) is not None:
        yield
        return
    _build.state = [False, False]  # compiled kernels loaded; a choice made without them
    try:
        yield
    finally:
        _build.state = None


def loaded_here() -> bool:
    """Whether compiled kernels are loaded for the model being built (inside
    :func:`model_build`), or, outside any build (an op prepared on its own), in the process.
    A False answer inside a build marks the task being prepared for a second look
    (:func:`take_deferred`): call this only where the answer changes the kernel."""
    state = getattr(_build, "state", None)
    if state is None:
        return kernels.imported()
    if not state[0]:
        state[1] = True
    return bool(state[0])


def take_deferred() -> bool:
    """Whether a kernel choice since the last call was made without compiled kernels because
    the model had loaded none yet (then reset): the task is worth preparing again if the
    model's later tasks load them. False outside a build."""
    state = getattr(_build, "state", None)
    if state is None:
        return False
    deferred = bool(state[1])
    state[1] = False
    return deferred


def model_loads_compiled() -> bool:
    """Whether the model being built has loaded a compiled kernel (no mark, unlike
    :func:`loaded_here`); outside a build, whether the process has."""
    state = getattr(_build, "state", None)
    return bool(state[0]) if state is not None else kernels.imported()


def worth_compiling(size: int) -> bool:
    """Whether a task of ``size`` elements takes a compiled kernel: from MIN_ELEMENTS, or from
    MIN_ELEMENTS_LOADED when the model loads compiled kernels (:func:`loaded_here`: a small
    model never imports numba for small tasks alone; the same rule for every op, so a task's
    kernel depends on its size and its model, nothing else)."""
    return size >= MIN_ELEMENTS or (size >= MIN_ELEMENTS_LOADED and loaded_here())


def load(family: str) -> Any:
    """openge.kernels' module ``family``, or None (numba missing or failing to import)."""
    try:
        module = kernels.load(family)
    except Exception as err:  # an odd numba install must not break loading a model
        logger.warning("compiled kernels unavailable (%s): using NumPy kernels", err)
        return None
    state = getattr(_build, "state", None)
    if module is not None and state is not None and not state[0]:
        # the first load: a False answer earlier in this task led to this load, not past it
        state[0], state[1] = True, False
    return module


def wide_vectors() -> bool:
    """Whether openge's compiled kernels use 512-bit vectors on this CPU (the GEMM
    micro-kernel's AVX-512 tile): the one test behind the routing limits measured per vector
    width. False when compiled kernels are off or numba is missing."""
    gemm = load("gemm")
    return gemm is not None and gemm.VW >= 16


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (no copy), for a kernel's constant operands (filters, biases,
    pooling counts).

    numba compiles one machine-code specialization per argument type, and an array's type
    includes whether it is writable: a filter straight from an .om's pages is read-only, the
    same filter in a graph compiled in this process is not, and a kernel given both compiles
    (and caches) twice, 20-30 s each for the depthwise kernels. Passing constants read-only
    everywhere keeps one (docs/decisions.md, "CI's time: one specialization per kernel")."""
    view = a.view()
    view.flags.writeable = False
    return view


def warm(fn: Any, *args: Any) -> bool:
    """Compile (or load from the cache) ``fn`` for these arguments' types without running it;
    False when numba cannot type them."""
    import numba

    try:
        fn.compile(tuple(numba.typeof(a) for a in args))
    except Exception as err:
        logger.warning("compiling %s failed (%s): using NumPy kernels", fn, err)
        return False
    return True


#: Parts per thread when openge's threads share a compiled kernel's items (claimed one at a
#: time: a thread the scheduler runs late leaves its share to the others).
PARTS_PER_THREAD = 4


def launcher(
    whole: Callable[..., None],
    big: bool,
    *args: Any,
    ranged: tuple[Callable[..., None], int] | None = None,
    driven: tuple[Callable[..., bool], int] | None = None,
) -> Callable[[], None]:
    """A closure running a compiled kernel: ``whole(*args)`` in the calling thread, or, when
    ``big`` and openge's thread count is above 1, on all of openge's threads:
    - ``driven`` = (drive, total): the kernel's drive form on openge's thread team
      (openge.kernels.team: parts of [0, total) claimed with atomics, no GIL hand-over);
    - ``ranged`` = (fn, total): ``fn(*args, first, stop)`` on parts of [0, total) claimed
      one at a time by openge.kernels.blas's pool (idle threads block on locks).
    The kernels release the GIL. numba's own parallel launches are not used: each costs
    ~25-35 µs with its workqueue layer even on one thread, and splits its work statically, so
    when another process holds a core the whole launch waits for the thread it descheduled."""
    get = kernels.get_num_threads
    if driven is not None:
        from openge.kernels import team

        drive, count = driven

        def run_team() -> None:
            n = get()
            if big and n > 1 and count > 1:
                team.run(drive, whole, args, count, min(count, n * team.PARTS_PER_THREAD), n)
            else:
                whole(*args)

        return run_team
    if ranged is None:
        raise ValueError("launcher needs ranged= or driven=")
    fn, total = ranged
    plans: dict[int, list[Callable[[], None]]] = {}

    def run() -> None:
        n = get()
        if big and n > 1 and total > 1:
            plan = plans.get(n)
            if plan is None:
                plan = plans[n] = parts(fn, args, total, n)
            blas.parallel(plan, threads=n)
        else:
            whole(*args)

    return run


def warm_drive(drive: Any, *args: Any) -> bool:
    """:func:`warm` for a kernel's drive form called with ``args`` (its own arguments and the
    item count) by openge.kernels.team."""
    ctl = np.zeros(8, np.int64)
    return warm(drive, *args, ctl, ctl, True, 0, 0)


def team_with_single_blas(
    drive: Any,
    whole: Any,
    shared: Sequence[Any],
    serial: Sequence[Any],
    items: int,
    big: bool = True,
) -> None:
    """A kernel whose parts call numpy's BLAS: numpy's BLAS held at one thread (the team's
    threads are the parallelism), then ``drive`` on openge's thread team over ``items`` items
    (arguments ``shared``) when ``big`` and more than one thread may run, else
    ``whole(*serial)`` in the caller."""
    from openge.kernels import team

    with blas.single_blas as allowed:
        threads = min(kernels.get_num_threads(), allowed) if big else 1
        if threads > 1:
            count = min(items, threads * team.PARTS_PER_THREAD)
            team.run(drive, whole, shared, items, count, threads)
        else:
            whole(*serial)


def parts(
    fn: Callable[..., None], args: Sequence[Any], total: int, threads: int
) -> list[Callable[[], None]]:
    """``fn(*args, first, stop)`` over [0, total) cut into up to PARTS_PER_THREAD parts per
    thread: the jobs of :func:`openge.kernels.blas.parallel`."""
    count = max(1, min(total, threads * PARTS_PER_THREAD))
    bounds = [(total * k // count, total * (k + 1) // count) for k in range(count)]
    return [functools.partial(fn, *args, a, b) for a, b in bounds if b > a]


def row_parts(serial: Callable[..., None], rows: Sequence[int]) -> Callable[..., None]:
    """``fn(*args, first, stop)`` running ``serial`` with its arguments at positions ``rows``
    cut to rows [first, stop) (row-wise kernels: each row computed on its own) — the
    ``ranged`` form of :func:`launcher` for a kernel without one."""
    cut = frozenset(rows)

    def part(*args: Any) -> None:
        *rest, first, stop = args
        serial(*[a[first:stop] if i in cut else a for i, a in enumerate(rest)])

    return part


# ----- elementwise programs ------------------------------------------------------------------


def _params(op: str, kwargs: dict[str, Any]) -> tuple[str, list[float]] | None:
    """The vocabulary entry and params of catalog op ``op`` with kernel attrs ``kwargs``."""
    if op in ("Exp", "Log"):
        if (kwargs["base"], kwargs["scale"], kwargs["shift"]) != (-1.0, 1.0, 0.0):
            return None
        return op, []
    if op == "LeakyRelu":
        return op, [kwargs["negative_slope"]]
    if op == "HardSigmoid":
        return op, [kwargs["alpha"], kwargs["beta"]]
    if op == "Swish":
        return op, [kwargs["scale"]]
    if op == "GeluV2":
        return ("GeluErf" if kwargs["approximate"] == "none" else "Gelu"), []
    from openge.kernels.codegen import VOCABULARY

    if op in VOCABULARY and not kwargs:
        return op, []
    return None


def _pow_step(
    args: Sequence[int], operands: Sequence[np.ndarray | None], constant: Sequence[bool]
) -> tuple[str, list[int], list[float]]:
    """Pow with a constant scalar exponent: repeated squaring for small integers, sqrt for ½."""
    b = args[1]
    if b >= 0 and constant[b] and operands[b] is not None and operands[b].size == 1:
        e = float(operands[b].reshape(-1)[0])
        if e.is_integer() and abs(e) <= 16:
            return "PowInt", [args[0]], [e]
        if e == 0.5:
            return "PowHalf", [args[0]], []
    return "Pow", list(args), []


def _kind(shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[str, int, int]:
    """(kind, first axis, end axis) of an operand of ``shape`` broadcast to ``out``."""
    size = math.prod(shape)
    if size == 1:
        return "scalar", 0, 0
    if shape == out:
        return "full", 0, len(out)
    padded = (1,) * (len(out) - len(shape)) + tuple(shape)
    if len(padded) != len(out):
        return "none", 0, 0
    axes = [i for i, d in enumerate(padded) if d != 1]
    a, b = axes[0], axes[-1] + 1
    if padded[a:b] != out[a:b]:
        return "none", 0, 0
    return "vec", a, b


def program_closure(
    steps: Sequence[tuple[str, Sequence[int], dict[str, Any]]],
    operands: Sequence[np.ndarray | None],
    constant: Sequence[bool],
    y: np.ndarray,
) -> Callable[[], None] | None:
    """A compiled closure computing the program ``steps`` (op, args, kernel attrs) over
    ``operands`` into ``y``, or None when it does not apply."""
    if y.dtype not in _FLOATS or not y.flags.c_contiguous:
        return None
    out = tuple(y.shape)
    prog: list[tuple[str, list[int], list[float]]] = []
    for op, args, kwargs in steps:
        if op == "Pow":
            prog.append(_pow_step(args, operands, constant))
            continue
        entry = _params(op, kwargs)
        if entry is None:
            return None
        prog.append((entry[0], list(args), entry[1]))
    fast = FAST_FLOAT32 if y.dtype == np.float32 else frozenset()
    if any(op in SLOW_IN_LOOPS and op not in fast for op, _, _ in prog):
        return None
    # a small model imports numba only for what pays its start back (see ERF_MIN_ELEMENTS)
    erf = y.dtype == np.float32 and any(op in ERF_STEPS for op, _, _ in prog)
    if not (worth_compiling(y.size) or (erf and y.size >= ERF_MIN_ELEMENTS)):
        return None
    used = sorted({a for _, args, _ in prog for a in args if a >= 0})
    q = None
    info = {}
    for k in used:
        a = operands[k]
        if a is None or a.dtype != y.dtype or not a.flags.c_contiguous:
            return None
        kind, first, end = _kind(tuple(a.shape), out)
        if kind == "none":
            return None
        if kind == "full" and np.shares_memory(a, y) and a.ctypes.data != y.ctypes.data:
            return None  # a partial overlap: element k would read what k' wrote
        if kind == "vec":
            split = first if end == len(out) else end
            if q is not None and q != split:
                return None
            q = split
        info[k] = (kind, first, end)
    kinds = []
    for k in used:
        kind, first, end = info[k]
        if kind == "vec":
            kind = "col" if first == q and end == len(out) else "row"
            if kind == "row" and end != q:
                return None
        kinds.append(kind)
    # rows of one NCHW plane / one last-axis vector; else chunks for the threads to share
    inner = math.prod(out[q:]) if q is not None else max(1024, min(_CHUNK, -(-y.size // 8)))
    remap = {k: i for i, k in enumerate(used)}
    prog = [(op, [remap[a] if a >= 0 else a for a in args], p) for op, args, p in prog]
    module = load("codegen")
    if module is None:
        return None
    try:
        aliased = any(operands[k].ctypes.data == y.ctypes.data for k in used)
        fn, ranged, drive = module.compile_programs(prog, kinds, y.dtype.name, aliased)
    except (ValueError, OSError, ImportError) as err:
        logger.info("no compiled program (%s): using NumPy kernels", err)
        return None
    flat = [operands[k].reshape(-1) for k in used]
    yflat = y.reshape(-1)
    big = y.size >= PARALLEL_ELEMENTS
    rows = -(-y.size // inner)
    if not (warm(fn, yflat, inner, *flat) and warm(ranged, yflat, inner, *flat, 0, rows)):
        return None
    if warm_drive(drive, yflat, inner, *flat, rows):  # rows shared by the thread team
        big = y.size >= TEAM_ELEMENTS and rows > 1
        return launcher(fn, big, yflat, inner, *flat, driven=(drive, rows))
    return launcher(fn, big, yflat, inner, *flat, ranged=(ranged, rows))


#: Floats added to each plane of a :func:`thread_scratch` buffer: a plane stride that is a
#: multiple of 4 KiB put the 16 streams of Winograd's transforms in the same cache sets (8x
#: slower).
SCRATCH_SKEW = 16
#: Elements a :func:`thread_scratch` buffer starts on a multiple of (64 bytes for float32:
#: gemm's micro-kernel loads its panels with aligned vector loads).
SCRATCH_ALIGN = 16

_local = threading.local()


def thread_scratch(name: str, planes: int, size: int, dtype: Any) -> np.ndarray:
    """A (planes, size) view of this thread's scratch buffer ``name`` (grown when needed;
    aligned, planes skewed by SCRATCH_SKEW): the tasks of one execute run one after another in
    one thread and share it, and concurrent executes in other threads have their own."""
    key = (name, np.dtype(dtype).str)
    need = planes * (size + SCRATCH_SKEW)
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    have = bufs.get(key)
    if have is None or have.size < need + SCRATCH_ALIGN:
        have = bufs[key] = np.empty(need + SCRATCH_ALIGN, dtype=dtype)
    start = (-have.ctypes.data % (SCRATCH_ALIGN * have.itemsize)) // have.itemsize
    return have[start : start + need].reshape(planes, size + SCRATCH_SKEW)[:, :size]


__all__ = [
    "ERF_MIN_ELEMENTS",
    "ERF_STEPS",
    "FAST_FLOAT32",
    "MIN_ELEMENTS",
    "MIN_ELEMENTS_LOADED",
    "PARALLEL_ELEMENTS",
    "PARTS_PER_THREAD",
    "SCRATCH_ALIGN",
    "SCRATCH_SKEW",
    "SLOW_IN_LOOPS",
    "TEAM_ELEMENTS",
    "launcher",
    "load",
    "loaded_here",
    "model_build",
    "model_loads_compiled",
    "parts",
    "program_closure",
    "row_parts",
    "take_deferred",
    "team_with_single_blas",
    "thread_scratch",
    "warm",
    "warm_drive",
    "wide_vectors",
    "worth_compiling",
]
