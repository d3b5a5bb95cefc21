"""Where openge's execute time goes, per op type, and how much of it is products (BLAS or
openge's own GEMM).

For each model (default: resnet50, densenet121, bert_base, shufflenet, mobilenet_v2,
gpt2_block, efficientnet_b0 from bench/models.py, freshly converted), after warm-up:

1. a timer pass: each task's kernel is wrapped to add its wall time to its op type, and numpy's
   matmul-family functions (``np.matmul``, ``np.dot``, ``np.einsum``, ``np.tensordot``, …) are
   wrapped to add theirs to the op type that called them: time per op type, the share of the
   product ops (convolutions and matrix products, whose BLAS or micro-kernel calls are mostly
   made from compiled code that numpy's functions do not see) against everything else
   (pooling, elementwise, normalization, the runtime loop), and their 2·M·N·K counted from the
   plan's shapes against np.matmul's best rate (the roofline);
2. cProfile on the same execute loop (kernels renamed per op type, matmul calls named
   ``BLAS:<fn>``): the functions with the most own time.

numpy's BLAS is limited with threadpoolctl to each of ``--threads`` (default 1,2; the per-op
tables are for the first: on a shared 2-core machine a 2-thread OpenBLAS spends much of its
time waiting for the other core, which hides where openge's own time goes). Writes "## Where
the time goes" to bench/RESULTS.md.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/profile.py [--models a,b]
[--runs N] [--threads T] [--output PATH]``
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

if __package__ in (None, ""):
    # Script mode: import bench.* from the repo root and keep bench/ itself off sys.path
    # (bench/profile.py would otherwise shadow the standard library's profile module).
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    sys.path.insert(0, os.path.dirname(_HERE))

from bench import models
from bench.common import RESULTS, machine_lines, median, write_section

SECTION = "Where the time goes"
DEFAULT_MODELS = (
    "resnet50",
    "densenet121",
    "bert_base",
    "shufflenet",
    "mobilenet_v2",
    "gpt2_block",
    "efficientnet_b0",
)
#: numpy functions counted as BLAS (matrix products); np.matmul is the one openge's kernels use.
BLAS_FUNCTIONS = ("matmul", "dot", "einsum", "tensordot", "vdot", "inner")


@dataclass
class Profile:
    """One model's profile (times in seconds per run)."""

    name: str
    threads: int
    runs: int = 0
    tasks: int = 0
    execute_s: float = float("nan")  # median execute() time, no instrumentation
    timed_s: float = float("nan")  # mean execute() time under the timer wrappers
    profiled_s: float = float("nan")  # execute() time per run under cProfile
    op_s: dict[str, float] = field(default_factory=dict)
    op_blas_s: dict[str, float] = field(default_factory=dict)
    op_tasks: dict[str, int] = field(default_factory=dict)
    top: list[tuple[str, float]] = field(default_factory=list)  # (function, own s per run)
    error: str | None = None
    product_flops: float = 0.0  # 2·M·N·K of the model's convolutions and products per run
    sgemm_flops_s: float = float("nan")  # np.matmul's best rate at this thread count

    @property
    def kernel_s(self) -> float:
        """Time inside kernels per run."""
        return sum(self.op_s.values())

    @property
    def blas_s(self) -> float:
        """Time inside matmul-family numpy calls per run."""
        return sum(self.op_blas_s.values())

    @property
    def product_s(self) -> float:
        """Time in the product ops' kernels (convolutions and matrix products, their fused
        epilogues, packing and BLAS or micro-kernel calls included) per run."""
        return sum(t for op, t in self.op_s.items() if op in PRODUCT_OPS)


#: Op types whose work is a product (openge's convolutions and matrix products): their
#: kernels call numpy's BLAS, OpenBLAS from compiled code, or openge's own GEMM micro-kernel.
PRODUCT_OPS = frozenset(
    {"Conv2D", "FusedConv2D", "MatMulV2", "BatchMatMulV2", "FusedMatMul", "MatMul", "BatchMatMul"}
)


def product_flops(task) -> float:
    """2·M·N·K of one plan task when it is a product (:data:`PRODUCT_OPS`), from its slots'
    shapes: a convolution's output elements times its filter's Cin/groups·kh·kw, a matrix
    product's output elements times K; 0 otherwise. Independent of the kernel that runs it,
    so the same count holds for ONNX Runtime."""
    if task.op_type not in PRODUCT_OPS or len(task.inputs) < 2 or not task.outputs:
        return 0.0
    out = float(np.prod(task.outputs[0].shape)) if task.outputs[0].shape else 0.0
    a, b = task.inputs[0].shape, task.inputs[1].shape
    if "Conv" in task.op_type:
        if len(b) != 4 or task.attrs.get("data_format", "NCHW") != "NCHW":
            return 0.0
        return 2.0 * out * float(np.prod(b[1:]))
    if len(a) < 2:
        return 0.0
    transposed = task.attrs.get("transpose_x1") or task.attrs.get("adj_x1")
    return 2.0 * out * float(a[-2] if transposed else a[-1])


def sgemm_rate(threads: int, size: int = 1024) -> float:
    """np.matmul's best float32 rate (FLOP/s) on size³ products at ``threads`` BLAS threads:
    the roofline openge's convolutions and products cannot beat."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    out = np.empty_like(a)
    with threadpool_limits(threads, user_api="blas"):
        best = float("inf")
        for _ in range(7):
            start = time.perf_counter()
            np.matmul(a, a, out=out)
            best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def _renamed(fn: Callable, name: str) -> Callable:
    """``fn`` with its code object renamed, so cProfile reports it under ``name``."""
    code = (
        fn.__code__.replace(co_name=name, co_qualname=name)
        if hasattr(fn.__code__, "co_qualname")
        else fn.__code__.replace(co_name=name)
    )
    renamed = type(fn)(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    renamed.__kwdefaults__ = fn.__kwdefaults__
    return renamed


class _Instruments:
    """Accumulates kernel and BLAS time per op type (the timer pass)."""

    def __init__(self) -> None:
        self.op_s: dict[str, float] = defaultdict(float)
        self.blas_s: dict[str, float] = defaultdict(float)
        self.current = "(outside kernels)"
        self.depth = 0
        self.timing = True

    def kernel(self, kernel: Callable, op_type: str) -> Callable:
        """A wrapper timing ``kernel`` under ``op_type`` (also named so for cProfile)."""

        def wrapped(ins, outs, **kwargs):
            if not self.timing:
                return kernel(ins, outs, **kwargs)
            previous, self.current = self.current, op_type
            start = time.perf_counter()
            try:
                return kernel(ins, outs, **kwargs)
            finally:
                self.op_s[op_type] += time.perf_counter() - start
                self.current = previous

        return _renamed(wrapped, f"[op] {op_type}")

    def blas(self, fn: Callable, label: str) -> Callable:
        """A wrapper timing a numpy matmul-family function (outermost call only)."""

        def wrapped(*args, **kwargs):
            if not self.timing or self.depth:
                return fn(*args, **kwargs)
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.blas_s[self.current] += time.perf_counter() - start
                self.depth -= 1

        return _renamed(wrapped, f"BLAS:{label}")


@contextlib.contextmanager
def _instrumented(model, instruments: _Instruments) -> Iterator[None]:
    """Swap the model's plan for one with wrapped kernels and numpy's matmul-family functions
    for timed ones; restore both on exit."""
    steps = getattr(model, "_steps", None)
    if not isinstance(steps, list) or any(
        not isinstance(s, tuple) or len(s) != 6 or not callable(s[0]) for s in steps
    ):
        raise RuntimeError(
            "openge.runtime.Model's plan layout changed (expected _steps of (kernel, ins, outs, "
            "kwargs, name, op_type)): update bench/profile.py"
        )
    wrapped = {}
    new_steps = []
    for kernel, ins, outs, kwargs, name, op_type in steps:
        key = (id(kernel), op_type)
        if key not in wrapped:
            wrapped[key] = instruments.kernel(kernel, op_type)
        new_steps.append((wrapped[key], ins, outs, kwargs, name, op_type))
    originals = {n: getattr(np, n) for n in BLAS_FUNCTIONS if hasattr(np, n)}
    model._steps = new_steps
    for n, fn in originals.items():
        setattr(np, n, instruments.blas(fn, n))
    try:
        yield
    finally:
        model._steps = steps
        for n, fn in originals.items():
            setattr(np, n, fn)


def profile_model(name: str, cache: str, runs: int, threads: int, log) -> Profile:
    """Convert ``name``, load it and profile ``runs`` executions."""
    import cProfile  # here, not at the top: see the sys.path note above

    from threadpoolctl import threadpool_limits

    from openge.runtime import Model

    result = Profile(name, threads)
    path = models.onnx_path(name, cache)
    conv = models.convert(name, path, cache)
    if conv.error:
        result.error = conv.error
        return result
    inputs = models.make_inputs(path)
    model = Model.from_file(conv.om_path)
    result.tasks = len(model.compiled.tasks)
    result.product_flops = sum(product_flops(t) for t in model.compiled.tasks)
    result.op_tasks = dict(
        sorted(
            {
                t.op_type: sum(1 for u in model.compiled.tasks if u.op_type == t.op_type)
                for t in model.compiled.tasks
            }.items()
        )
    )
    from openge import kernels

    kernels.set_num_threads(threads)  # openge's compiled kernels: the same count as BLAS
    try:
        with threadpool_limits(threads, user_api="blas"):
            for _ in range(3):
                model.execute(inputs)
            plain, timed = [], []
            instruments = _Instruments()
            with _instrumented(model, instruments):
                # Alternate plain and timed runs so the wrappers' overhead is visible.
                for _ in range(runs):
                    instruments.timing = False
                    start = time.perf_counter()
                    model.execute(inputs)
                    plain.append(time.perf_counter() - start)
                    instruments.timing = True
                    start = time.perf_counter()
                    model.execute(inputs)
                    timed.append(time.perf_counter() - start)
            result.runs = runs
            # Means for the timer pass, so op times (sums over runs) add up to the total.
            result.execute_s, result.timed_s = median(plain), sum(timed) / runs
            result.op_s = {k: v / runs for k, v in instruments.op_s.items()}
            result.op_blas_s = {k: v / runs for k, v in instruments.blas_s.items()}
            result.sgemm_flops_s = sgemm_rate(threads)
            log(f"[{name}] timer pass: {result.timed_s * 1e3:.1f} ms/run")

            profiler = cProfile.Profile()
            profile_runs = max(3, runs // 2)
            with _instrumented(model, _Instruments()) as _:
                gc.collect()
                start = time.perf_counter()
                profiler.enable()
                for _ in range(profile_runs):
                    model.execute(inputs)
                profiler.disable()
                result.profiled_s = (time.perf_counter() - start) / profile_runs
            stats = pstats.Stats(profiler)
            own = sorted(
                (
                    (tt / profile_runs, _label(func))
                    for func, (_, _, tt, _, _) in stats.stats.items()
                ),  # type: ignore[attr-defined]
                reverse=True,
            )
            result.top = [(label, seconds) for seconds, label in own[:8]]
    finally:
        kernels.set_num_threads(None)
        model.close()
        gc.collect()
    return result


def _label(func: tuple[str, int, str]) -> str:
    filename, line, function = func
    if filename == "~":
        return function  # a builtin, e.g. "<method 'copy' of 'numpy.ndarray' objects>"
    if function.startswith(("[op] ", "BLAS:")):
        return function
    short = (
        os.path.relpath(filename, models.ROOT)
        if filename.startswith(models.ROOT)
        else (os.path.join(*filename.split(os.sep)[-2:]))
    )
    return f"{function} ({short}:{line})"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "—"


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.2f}" if whole > 0 else "—"


def _summary_row(p: Profile) -> str:
    if p.error:
        return f"| {p.name} | {p.threads} | not profiled: {p.error} | | | | | | | | | | |"
    total = p.timed_s
    outside = max(total - p.kernel_s, 0.0)
    top = ", ".join(
        f"{op} {_pct(t, total)}" for op, t in sorted(p.op_s.items(), key=lambda kv: -kv[1])[:3]
    )
    floor = p.product_flops / p.sgemm_flops_s  # seconds at sgemm's best rate
    return (
        f"| {p.name} | {p.threads} | {p.execute_s * 1e3:.1f} | {_pct(p.product_s, total)} | "
        f"{_pct(p.kernel_s - p.product_s, total)} | {_pct(outside, total)} | "
        f"{_pct(p.blas_s, total)} | {p.product_flops / 1e9:.2f} | "
        f"{p.sgemm_flops_s / 1e9:.0f} | {floor * 1e3:.1f} | {_ratio(p.execute_s, floor)} | "
        f"{_ratio(p.product_s, floor)} | {top} |"
    )


def render(profiles: list[Profile], command: str, start_load: float | None = None) -> str:
    """The RESULTS.md section body: a summary table, then per-op tables and cProfile's top
    functions for the first thread count."""
    lines = [
        f"`{command}`",
        "",
        *machine_lines(start_load),
        "",
        "Per model: the median `execute` time without instrumentation, then a timer pass (each "
        "kernel timed and charged to its op type; numpy matmul-family calls timed and charged "
        'to the op type that made them) and cProfile on the same loop. "products" is the '
        "time of the convolution and matrix-product ops (Conv2D, FusedConv2D, MatMulV2, "
        "BatchMatMulV2, FusedMatMul: their BLAS or micro-kernel calls, packing, Winograd "
        "transforms and fused epilogues); most of their BLAS work is now called from compiled "
        "code (OpenBLAS's GEMM from openge.kernels.pointwise, openge's own micro-kernel), "
        'which numpy\'s functions do not see: "numpy BLAS calls" is only what still goes '
        'through np.matmul and the like. "outside kernels" is `execute`\'s own work (input '
        "checks, output allocation, binding, the loop). numpy's BLAS is limited to the stated "
        "threads with threadpoolctl. Shares are of the instrumented time.",
        "",
        "Roofline: the products' floating-point operations (2·M·N·K of every convolution and "
        "matrix product, counted from the plan's shapes, so the same for any runtime) at "
        'np.matmul\'s best float32 rate on 1024³ at the same thread count ("sgemm"): '
        "`execute / roofline` is how far the whole model is from running its products at "
        "sgemm speed and nothing else; `products / roofline` is how far the product ops "
        "themselves are (small, skinny and depthwise products run below the 1024³ rate).",
        "",
        "| model | BLAS threads | execute ms | products | other kernels | outside kernels "
        "| numpy BLAS calls | GFLOP / run | sgemm GFLOP/s | roofline ms | execute / roofline "
        "| products / roofline | top op types |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(_summary_row(p) for p in profiles),
    ]
    first = profiles[0].threads if profiles else 1
    for p in profiles:
        if p.error or p.threads != first:
            continue
        total = p.timed_s
        outside = max(total - p.kernel_s, 0.0)
        lines += [
            "",
            f"### {p.name} ({p.threads} BLAS thread{'s' if p.threads > 1 else ''})",
            "",
            f"{p.tasks} tasks, {p.runs} runs. execute: {p.execute_s * 1e3:.1f} ms plain, "
            f"{total * 1e3:.1f} ms under the timers (mean), {p.profiled_s * 1e3:.1f} ms under "
            "cProfile.",
            "",
            "| op type | tasks | ms / run | share | of which BLAS ms | BLAS share of op |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for op, seconds in sorted(p.op_s.items(), key=lambda kv: -kv[1]):
            op_blas = p.op_blas_s.get(op, 0.0)
            lines.append(
                f"| {op} | {p.op_tasks.get(op, 0)} | {seconds * 1e3:.2f} | {_pct(seconds, total)} "
                f"| {op_blas * 1e3:.2f} | {_pct(op_blas, seconds)} |"
            )
        lines.append(f"| (outside kernels) | | {outside * 1e3:.2f} | {_pct(outside, total)} | | |")
        lines += [
            "",
            "cProfile, most own time per run (`[op] X` is kernel code of op type X outside the "
            "functions it calls; `BLAS:matmul` is np.matmul):",
            "",
        ]
        lines += [
            f"- {label}: {seconds * 1e3:.2f} ms ({_pct(seconds, p.profiled_s)})"
            for label, seconds in p.top
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma list")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per model")
    parser.add_argument(
        "--threads", default="1,2", help="numpy BLAS threads, comma list; tables for the first"
    )
    parser.add_argument("--output", default=RESULTS, help="Markdown file ('-': print only)")
    parser.add_argument("--cache", default=models.DEFAULT_CACHE, help="model folder")
    args = parser.parse_args(argv)
    try:
        import threadpoolctl  # noqa: F401 (the BLAS thread limit needs it)
    except ImportError:
        parser.error("bench/profile.py needs threadpoolctl (pip install threadpoolctl)")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    start_load = os.getloadavg()[0]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    profiles = [
        profile_model(name, args.cache, args.runs, t, log) for name in names for t in threads
    ]
    command = "python bench/profile.py" + ("" if not argv else " " + " ".join(argv))
    text = render(profiles, command, start_load)
    print(f"## {SECTION}\n\n{text}")
    if args.output != "-":
        write_section(SECTION, text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
