"""openge against ONNX Runtime and onnx.reference on the benchmark models (bench/models.py).

In one process, on the same seeded inputs, per model:

- compile: parse + ``build_model`` + ``save_model`` with openge (the .om is rebuilt every run);
- load: ``Model.from_file`` vs ``onnxruntime.InferenceSession`` creation (ONNX Runtime's graph
  optimizations happen there: it is its compile step), medians of a few repetitions;
- latency: one phase per thread count; in it, after warm-up, openge and ONNX Runtime run in
  alternating blocks of 5 runs (the order reversed each round) so machine noise hits both and
  neither's leftover threads sit in the other's runs; medians of at least ``--runs`` runs each
  (more, up to ``--min-time`` seconds, on fast models); the ratio openge / ORT and its
  geometric mean;
- onnx.reference.ReferenceEvaluator on the small models (mlp, squeezenet, shufflenet), skipped
  where one run takes more than 20 s;
- agreement: max |output − ORT output| / max |ORT output| over the outputs;
- peak RSS (VmHWM) of a fresh subprocess that imports one runtime, loads the model and runs it
  5 times, and the time from load start to the end of its first run: with an empty kernel cache
  first (cold), then with the warm one; both children may write Python's bytecode cache
  (PYTHONDONTWRITEBYTECODE removed), so the warm child imports openge's lazily loaded modules
  from bytecode as an installed package does, not from source (ONNX Runtime's Python modules
  come with their bytecode from pip);
- .om size vs .onnx size.

Thread settings, compared at each count *t* of ``--threads`` (default 2,1): ONNX Runtime with
CPUExecutionProvider, intra_op_num_threads=t, inter_op_num_threads=1, sequential execution, all
graph optimizations, intra-op spinning at its default (on); after every block the harness waits
until the process's threads are idle (ORT's workers spin ~30 ms after a run, and would take a
core from openge's next runs); openge with numpy's BLAS limited
to t threads by threadpoolctl (without threadpoolctl: only the first count, at numpy's default
threads).

Benchmark with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in that command only (some machines
set them for old OpenBLAS builds; they slow a current one):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py

Options: --models a,b,c  --runs N  --quick  --threads 2,1  --output PATH (default
bench/RESULTS.md; "-" prints only)  --json PATH  --cache DIR  --no-rss  --no-reference
--cold-models a,b (default: every model's cold-cache first run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np

if __package__ in (None, ""):
    # Script mode: import bench.* from the repo root and keep bench/ itself off sys.path
    # (bench/profile.py would otherwise shadow the standard library's profile module).
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    sys.path.insert(0, os.path.dirname(_HERE))

from bench import models
from bench.common import (
    RESULTS,
    geomean,
    machine_lines,
    median,
    quartiles,
    status_kib,
    write_section,
)

SECTION = "Latency vs ONNX Runtime"
#: Skip onnx.reference where a single run takes longer than this.
REFERENCE_LIMIT_S = 20.0
#: Runs of the peak-RSS child after loading.
RSS_RUNS = 5


@dataclass
class Settings:
    """How much to measure."""

    runs: int = 20
    warmup: int = 3
    min_time: float = 10.0
    max_runs: int = 400
    load_reps: int = 5
    load_budget: float = 30.0
    reference_runs: int = 5
    reference_budget: float = 60.0
    rss: bool = True
    reference: bool = True
    #: Thread counts to compare at: ORT intra_op_num_threads and numpy's BLAS threads (the
    #: latter through threadpoolctl; without it only the first count, at numpy's default).
    threads: tuple[int, ...] = (2, 1)
    #: Models whose first run is also measured with an empty kernel cache (None: every
    #: model). Each such run compiles all of the model's kernels: 10-250 s on a Zen 3 core.
    cold: frozenset[str] | None = None


@dataclass
class Result:
    """Everything measured on one model (times in seconds, sizes in bytes)."""

    name: str
    onnx_bytes: int = 0
    om_bytes: int = 0
    error: str | None = None
    parse_s: float = float("nan")
    build_s: float = float("nan")
    save_s: float = float("nan")
    load_openge_s: float = float("nan")
    load_ort_s: float = float("nan")
    #: Latencies by runner key "<openge|ort>@<threads>".
    times: dict[str, list[float]] = field(default_factory=dict)
    reference_s: list[float] = field(default_factory=list)
    reference_note: str = ""
    diff_openge: float = float("nan")
    diff_reference: float = float("nan")
    rss_openge: dict = field(default_factory=dict)
    #: The same child with an empty kernel cache (numba compiles every kernel).
    rss_openge_cold: dict = field(default_factory=dict)
    rss_ort: dict = field(default_factory=dict)
    #: Cores' worth of CPU that other processes used during the timed runs (0 = quiet).
    other_cpu: float = float("nan")

    def ratio(self, threads: int, stat=median) -> float:
        """openge latency / ORT latency with ``threads`` threads each (medians, or ``stat``)."""
        mine, theirs = self.times.get(f"openge@{threads}"), self.times.get(f"ort@{threads}")
        if not mine or not theirs:
            return float("nan")
        return stat(mine) / stat(theirs)


# ----- the runtimes ------------------------------------------------------------------------------
def ort_session(path: str, threads: int = 2):
    """An ONNX Runtime CPU session with the benchmark's settings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # intra-op spinning stays at ORT's default (on): its workers spin ~30 ms after a run, which
    # _interleave waits out before the other runtime's block (see _settle)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def rel_diff(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """max |got − want| / max |want|, over all outputs (inf on a shape mismatch)."""
    worst = 0.0
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)
        diff = float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0
        worst = max(worst, diff / scale)
    return worst


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure_load(result: Result, om_path: str | None, onnx_path: str, s: Settings) -> None:
    """Medians of Model.from_file and InferenceSession creation, alternated, time-bounded."""
    from openge.runtime import Model

    openge_times, ort_times = [], []
    start = time.perf_counter()
    for i in range(s.load_reps):
        if om_path is not None:
            seconds, model = _timed(lambda: Model.from_file(om_path))
            model.close()
            openge_times.append(seconds)
        seconds, session = _timed(lambda: ort_session(onnx_path))
        del session
        ort_times.append(seconds)
        gc.collect()
        if i >= 1 and time.perf_counter() - start > s.load_budget:
            break
    result.load_openge_s = median(openge_times)
    result.load_ort_s = median(ort_times)


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall seconds, CPU seconds busy on the whole machine, CPU seconds of this process) from
    /proc (NaNs where unavailable)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat", encoding="utf-8") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return time.perf_counter(), float("nan"), float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return time.perf_counter(), busy / tick, (int(own[11]) + int(own[12])) / tick


def other_cpu(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Average number of cores other processes kept busy between two cpu_snapshot()s."""
    wall = after[0] - before[0]
    if wall <= 0:
        return float("nan")
    others = (after[1] - before[1]) - (after[2] - before[2])
    return max(others, 0.0) / wall


def have_threadpoolctl() -> bool:
    """Whether numpy's BLAS threads can be limited at run time (threadpoolctl installed)."""
    try:
        import threadpoolctl  # noqa: F401 (only probing)
    except ImportError:
        return False
    return True


def blas_limits(threads: int):
    """Limit numpy's BLAS to ``threads`` threads until ``.restore_original_limits()`` (a
    threadpoolctl object), or None when threadpoolctl is not installed."""
    if not have_threadpoolctl():
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads, user_api="blas")


def measure_latency(result: Result, om_path: str | None, onnx_path: str, s: Settings) -> None:
    """Interleaved openge / ORT runs on the same inputs, one thread count at a time, plus the
    output agreement. Each round runs both runtimes once, in an order reversed every other
    round. The thread counts are measured in separate phases, not mixed round by round:
    switching numpy's BLAS between 1 and 2 threads before every run left OpenBLAS's second
    thread busy into the following runs and slowed openge's 1-thread runs by 10–15 % (a harness
    artifact: an application runs at one setting)."""
    from openge.runtime import Model

    inputs = models.make_inputs(onnx_path)
    model = Model.from_file(om_path) if om_path is not None else None
    busy: list[float] = []
    try:
        for threads in s.threads:
            session = ort_session(onnx_path, threads)
            feeds = {i.name: x for i, x in zip(session.get_inputs(), inputs)}
            runners = []  # (key, callable)
            if threads == s.threads[0]:
                want = session.run(None, feeds)
                if model is not None:
                    result.diff_openge = rel_diff(model.execute(inputs), want)
            # numpy's BLAS is held at `threads` for the whole phase (see _interleave); without
            # threadpoolctl only the first count runs, at numpy's default threads
            if model is not None and (have_threadpoolctl() or threads == s.threads[0]):
                runners.append((f"openge@{threads}", _stopwatch(model.execute, inputs)))
            runners.append((f"ort@{threads}", _stopwatch(session.run, None, feeds)))
            busy.append(_interleave(result, runners, s))
            del session
            gc.collect()
    finally:
        if model is not None:
            model.close()
        gc.collect()
    result.other_cpu = max(busy) if busy else float("nan")


#: Runs of one runtime in a row before the other takes over (see _interleave).
BLOCK = 5


#: The settle wait after a block: idle means under this many cores' worth of the process's CPU
#: time over one poll, and the wait gives up after SETTLE_MAX_S.
SETTLE_IDLE_CORES = 0.1
SETTLE_POLL_S = 0.005
SETTLE_MAX_S = 0.25


def _settle() -> float:
    """Wait until this process's threads stop using CPU; returns the seconds waited.

    After a run ONNX Runtime's intra-op workers spin (its default) for ~30 ms on the Xeon this
    was measured on (longer or shorter with the CPU's pause latency), and openge's team spins
    ~0.7 ms. A block started inside that window shares a core with the other runtime's
    spinning threads: measured, squeezenet at 2 threads took 14 ms instead of 7.4 for openge's
    first four runs after an ORT block. Waiting it out lets each runtime run at its own
    defaults, alone."""
    start = time.perf_counter()
    wall, cpu = start, time.process_time()
    while True:
        time.sleep(SETTLE_POLL_S)
        now, used = time.perf_counter(), time.process_time()
        if (used - cpu) / (now - wall) < SETTLE_IDLE_CORES or now - start > SETTLE_MAX_S:
            return now - start
        wall, cpu = now, used


def _interleave(result: Result, runners: list, s: Settings) -> float:
    """Warm up, then time ``runners`` in alternating blocks of :data:`BLOCK` runs (the order
    reversed every other round, the process's threads idle before each block: see _settle);
    returns the other-CPU load.

    Blocks, not single runs: after a run with 2 BLAS threads, OpenBLAS's helper thread keeps
    spinning for a while (its default thread timeout), and an ONNX Runtime run started right
    then shares a core with it — measured: resnet50 with ORT at 2 threads took 62 ms alone and
    98 ms right after an openge run. In a block only the first run can be disturbed, and the
    medians ignore it."""
    for key, _ in runners:
        result.times[key] = []
    limits = None
    openge_threads = [int(k.split("@")[1]) for k, _ in runners if k.startswith("openge@")]
    if openge_threads and have_threadpoolctl():
        # hold numpy's BLAS at this phase's count for the whole phase (see measure_latency)
        limits = blas_limits(openge_threads[0])
    if openge_threads:
        from openge import kernels

        kernels.set_num_threads(openge_threads[0])  # openge's compiled kernels: the same count
    try:
        for _ in range(s.warmup):
            for _, run in runners:
                run()
        start = time.perf_counter()
        before = cpu_snapshot()
        done = 0
        for i in range(max(1, -(-s.max_runs // BLOCK))):
            if done >= s.runs and time.perf_counter() - start >= s.min_time:
                break
            block = min(BLOCK, s.max_runs - done)
            for key, run in runners if i % 2 == 0 else runners[::-1]:
                _settle()
                result.times[key].extend(run() for _ in range(block))
            done += block
        return other_cpu(before, cpu_snapshot())
    finally:
        if limits is not None:
            limits.restore_original_limits()
        if openge_threads:
            from openge import kernels

            kernels.set_num_threads(None)


def _stopwatch(fn, *args):
    """A callable that runs ``fn(*args)`` and returns the seconds it took."""

    def run() -> float:
        start = time.perf_counter()
        fn(*args)
        return time.perf_counter() - start

    return run


def reference_overrides() -> list[type]:
    """Op implementations that replace onnx.reference's where it is wrong on these models.

    BatchNormalization: onnx.reference's opset-9 version normalizes with the batch's own
    statistics whenever ``momentum`` is set, and the schema default (0.9) always sets it, so an
    inference-mode (one-output) node gives training-mode results (onnx/onnx PR #8442).
    """
    from onnx.reference.op_run import OpRun

    class BatchNormalization(OpRun):
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=None, **_attrs):
            if len(self.onnx_node.output) != 1:
                raise NotImplementedError("bench override: inference-mode BatchNormalization only")
            eps = 1e-5 if epsilon is None else epsilon
            shape = (1, -1) + (1,) * (x.ndim - 2)
            y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
            return ((y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype),)

    return [BatchNormalization]


def measure_reference(result: Result, onnx_path: str, s: Settings) -> None:
    """onnx.reference.ReferenceEvaluator: a first timed run (skip the rest past 20 s), then up
    to ``reference_runs`` runs within ``reference_budget`` seconds."""
    from onnx.reference import ReferenceEvaluator

    inputs = models.make_inputs(onnx_path)
    evaluator = ReferenceEvaluator(onnx_path, new_ops=reference_overrides())
    feeds = dict(zip(evaluator.input_names, inputs))
    limits = blas_limits(min(s.threads))  # numpy's BLAS at the smallest compared thread count
    try:
        _measure_reference(result, evaluator, feeds, onnx_path, inputs, s)
    finally:
        if limits is not None:
            limits.restore_original_limits()


def _measure_reference(result: Result, evaluator, feeds, onnx_path, inputs, s: Settings) -> None:
    seconds, got = _timed(lambda: evaluator.run(None, feeds))
    session = ort_session(onnx_path)
    want = session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})
    result.diff_reference = rel_diff(got, want)
    if seconds > REFERENCE_LIMIT_S:
        result.reference_note = f"skipped: one run took {seconds:.0f} s"
        return
    start = time.perf_counter()
    while len(result.reference_s) < s.reference_runs:
        seconds, _ = _timed(lambda: evaluator.run(None, feeds))
        result.reference_s.append(seconds)
        if time.perf_counter() - start > s.reference_budget:
            break


def measure_rss(which: str, path: str, env: dict[str, str] | None = None) -> dict:
    """Peak RSS of a fresh interpreter that imports ``which`` runtime, loads ``path`` and runs
    it RSS_RUNS times, and the seconds from load start to the end of the first run (see
    ``rss_child``); ``env`` adds environment variables (a fresh NUMBA_CACHE_DIR: cold)."""
    child_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--rss-child", which, path],
        capture_output=True,
        text=True,
        timeout=900,
        env={**child_env, **(env or {})},
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rss_child(which: str, path: str) -> None:
    """Child side of measure_rss: prints JSON with VmRSS after imports and VmHWM after loading
    and after the runs (KiB)."""
    rng = np.random.default_rng(0)
    if which == "openge":
        from openge.runtime import Model

        imported = status_kib("VmRSS")
        start = time.perf_counter()
        model = Model.from_file(path)
        loaded = status_kib("VmHWM")
        inputs = [
            rng.standard_normal(tuple(d.shape)).astype(d.dtype.np_dtype) for d in model.inputs
        ]
        first = -1.0
        for _ in range(RSS_RUNS):
            model.execute(inputs)
            if first < 0:
                first = time.perf_counter() - start
        numba_loaded = "numba" in sys.modules
    else:
        import onnxruntime  # noqa: F401 (imported before the baseline on purpose)

        imported = status_kib("VmRSS")
        types = {"tensor(float)": np.float32, "tensor(int64)": np.int64}
        start = time.perf_counter()
        session = ort_session(path)
        loaded = status_kib("VmHWM")
        feeds = {
            i.name: rng.standard_normal(tuple(i.shape)).astype(types.get(i.type, np.float32))
            for i in session.get_inputs()
        }
        first = -1.0
        for _ in range(RSS_RUNS):
            session.run(None, feeds)
            if first < 0:
                first = time.perf_counter() - start
        numba_loaded = False
    print(
        json.dumps(
            {
                "imported_kib": imported,
                "load_hwm_kib": loaded,
                "peak_kib": status_kib("VmHWM"),
                "first_s": first,
                "numba": numba_loaded,
            }
        )
    )


# ----- one model --------------------------------------------------------------------------------
def bench_model(name: str, cache: str, s: Settings, log) -> Result:
    """Build, convert and measure one model."""
    result = Result(name)
    onnx_path = models.onnx_path(name, cache)
    result.onnx_bytes = os.path.getsize(onnx_path)
    log(f"[{name}] converting with openge")
    conv = models.convert(name, onnx_path, cache)
    result.parse_s, result.build_s, result.save_s = conv.parse_s, conv.build_s, conv.save_s
    om_path = conv.om_path
    if conv.error:
        result.error = conv.error
        log(f"[{name}] conversion failed: {conv.error}")
    else:
        result.om_bytes = os.path.getsize(om_path)
    gc.collect()
    log(f"[{name}] load times")
    measure_load(result, om_path, onnx_path, s)
    log(f"[{name}] latency")
    try:
        measure_latency(result, om_path, onnx_path, s)
    except Exception as err:  # a model that loads but fails to run is a result, not a crash
        result.error = (result.error or "") + f" run: {models._describe_error(err)}"
        log(f"[{name}] run failed: {result.error}")
    if s.reference and name in models.SMALL:
        log(f"[{name}] onnx.reference")
        measure_reference(result, onnx_path, s)
    if s.rss:
        log(f"[{name}] peak RSS")
        if om_path is not None:
            if s.cold is None or name in s.cold:
                with tempfile.TemporaryDirectory() as cold:  # first: it writes the bytecode too
                    result.rss_openge_cold = measure_rss(
                        "openge", om_path, {"NUMBA_CACHE_DIR": cold}
                    )
            result.rss_openge = measure_rss("openge", om_path)  # warm kernel cache
        result.rss_ort = measure_rss("ort", onnx_path)
    summary = ", ".join(f"{k} {median(v) * 1e3:.1f} ms" for k, v in result.times.items())
    log(f"[{name}] {summary}; diff {result.diff_openge:.1e}; other CPU {result.other_cpu:.2f}")
    return result


# ----- report -----------------------------------------------------------------------------------
def _ms(values: list[float]) -> str:
    if not values:
        return "—"
    q1, q3 = quartiles(values)
    if np.isnan(q1):
        return f"{median(values) * 1e3:.1f}"
    return f"{median(values) * 1e3:.1f} ({q1 * 1e3:.1f}–{q3 * 1e3:.1f})"


def _num(value: float, fmt: str) -> str:
    return "—" if value is None or not np.isfinite(value) else format(value, fmt)


def _rss(info: dict) -> str:
    if not info:
        return "—"
    if "error" in info:
        return "failed"
    grown = (info["peak_kib"] - info["imported_kib"]) / 1024
    return f"{info['peak_kib'] / 1024:.0f} (+{grown:.0f})"


def render(
    results: list[Result], s: Settings, command: str, start_load: float | None = None
) -> str:
    """The RESULTS.md section body (Markdown)."""
    lines = [
        f"`{command}`",
        "",
        *machine_lines(start_load),
        "- ONNX Runtime: CPUExecutionProvider, intra_op_num_threads=*t*, inter_op_num_threads=1, "
        "ORT_SEQUENTIAL, ORT_ENABLE_ALL, intra-op spinning at its default (on), each block started "
        "once the process's threads are idle (ORT's spinning waited out); "
        "openge: default build options, "
        "`Model.from_file`, `execute(inputs)` allocating its outputs (as ORT's `run`), numpy's "
        "BLAS limited to *t* threads with threadpoolctl; each thread count measured in its "
        "own phase (not switched run by run, which slowed openge's 1-thread runs 10–15 %); "
        f"*t* in {', '.join(map(str, s.threads))}",
        f"- at least {s.runs} runs per runtime after {s.warmup} warm-up runs, in alternating "
        f"blocks of {BLOCK} (more runs, "
        f"up to {s.min_time:g} s, on fast models); onnx.reference on "
        f"{', '.join(models.SMALL)} only, up to {s.reference_runs} runs",
        "- onnx.reference runs with an inference-mode BatchNormalization of ours: its opset-9 "
        "one normalizes with batch statistics (onnx/onnx PR #8442)",
        "- while other processes keep a core busy (`other CPU` ≳ 0.5) numpy's 2-thread "
        "OpenBLAS can be 5–15× slower than its 1-thread self (it splits each product in two "
        "and waits for a descheduled thread) while ORT's thread pool degrades gracefully: "
        "there, trust the 1-thread columns",
        "",
        "### Latency",
        "",
        "Median ms (interquartile range) at each thread count (ORT intra-op threads = numpy "
        "BLAS threads = *t*); runs per runtime in the `runs` column; `other CPU` is how many "
        "cores other processes kept busy, on average, during the model's timed runs (from "
        '/proc/stat; 0 = a quiet machine, 1 = one core taken). "diff" is max |output − '
        "ORT output| / max |ORT output|.",
        "",
    ]
    head = "| model |"
    rule = "|---|"
    for t in s.threads:
        head += f" openge ms, {t}t | ORT ms, {t}t | openge / ORT, {t}t |"
        rule += "---:|---:|---:|"
    lines += [
        head + f" runs | other CPU | onnx.reference ms, {min(s.threads)}t | diff openge "
        "| diff reference |",
        rule + "---:|---:|---:|---:|---:|",
    ]
    for r in results:
        reference = _ms(r.reference_s) if r.reference_s else (r.reference_note or "—")
        cells = "".join(
            f" {_ms(r.times.get(f'openge@{t}', []))} | {_ms(r.times.get(f'ort@{t}', []))} | "
            f"{_num(r.ratio(t), '.2f')} |"
            for t in s.threads
        )
        runs = min((len(v) for v in r.times.values()), default=0)
        lines.append(
            f"| {r.name} |{cells} {runs} | {_num(r.other_cpu, '.2f')} | {reference} | "
            f"{_num(r.diff_openge, '.1e')} | "
            f"{_num(r.diff_reference, '.1e')} |"
        )
    lines.append("")
    for t in s.threads:
        ratios = {r.name: r.ratio(t) for r in results if np.isfinite(r.ratio(t))}
        if ratios:
            worst = max(ratios, key=ratios.get)
            best = min(ratios, key=ratios.get)
            fastest = [r.ratio(t, min) for r in results if np.isfinite(r.ratio(t, min))]
            lines.append(
                f"- **{t} thread{'s' if t > 1 else ''}: geometric mean of openge / ORT "
                f"{geomean(list(ratios.values())):.2f}** over {len(ratios)} models; worst "
                f"{worst} ({ratios[worst]:.2f}), best {best} ({ratios[best]:.2f}); "
                f"ratio of the fastest runs instead of the medians: geometric mean "
                f"{geomean(fastest):.2f}."
            )
    failed = [r for r in results if r.error]
    if failed:
        lines += ["", "Failures:", ""]
        lines += [f"- {r.name}: {r.error}" for r in failed]
    lines += [
        "",
        "### Load, memory, compile, size",
        "",
        "Load: median of `Model.from_file` vs `InferenceSession(...)` creation (which includes "
        "ORT's graph optimization). Peak RSS: VmHWM in MiB of a fresh process that imports the "
        f"runtime, loads the model and runs it {RSS_RUNS} times (in parentheses: growth over "
        "the RSS after imports; the mapped .om's pages count, as they are resident). Compile: "
        "openge parse / `build_model` / `save_model` seconds; ONNX Runtime has no separate "
        "compile step (see its session creation).",
        "",
        "| model | load openge ms | ORT session ms | peak RSS openge | peak RSS ORT "
        "| parse s | build_model s | save s | .onnx MiB | .om MiB | om / onnx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    first_rows = [
        "",
        "First run in a fresh process: seconds from `Model.from_file` (warm kernel cache, and "
        "with an empty `NUMBA_CACHE_DIR`: cold, every kernel compiled) to the end of the first "
        "`execute`, against ONNX Runtime's session creation plus its first `run` (imports "
        "excluded; openge's import of numba, when the model has compiled kernels, is inside "
        "`from_file`). Peak RSS cold in MiB.",
        "",
        "| model | compiled kernels | first run openge, warm cache ms | first run openge, cold "
        "cache ms | ORT session + first run ms | warm / ORT | peak RSS cold |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        warm, cold = r.rss_openge.get("first_s", np.nan), r.rss_openge_cold.get("first_s", np.nan)
        ort_first = r.rss_ort.get("first_s", np.nan)
        first_rows.append(
            f"| {r.name} | {'yes' if r.rss_openge.get('numba') else 'no'} | "
            f"{_num(warm * 1e3, '.0f')} | {_num(cold * 1e3, '.0f')} | "
            f"{_num(ort_first * 1e3, '.0f')} | {_num(warm / ort_first, '.2f')} | "
            f"{_rss(r.rss_openge_cold)} |"
        )
    for r in results:
        size_ratio = r.om_bytes / r.onnx_bytes if r.om_bytes and r.onnx_bytes else float("nan")
        lines.append(
            f"| {r.name} | {_num(r.load_openge_s * 1e3, '.1f')} | "
            f"{_num(r.load_ort_s * 1e3, '.1f')} | {_rss(r.rss_openge)} | {_rss(r.rss_ort)} | "
            f"{_num(r.parse_s, '.2f')} | {_num(r.build_s, '.2f')} | {_num(r.save_s, '.2f')} | "
            f"{r.onnx_bytes / 2**20:.1f} | "
            f"{r.om_bytes / 2**20:.1f} | {_num(size_ratio, '.3f')} |"
            if r.om_bytes
            else f"| {r.name} | — | {_num(r.load_ort_s * 1e3, '.1f')} | — | {_rss(r.rss_ort)} "
            f"| {_num(r.parse_s, '.2f')} | {_num(r.build_s, '.2f')} | — | "
            f"{r.onnx_bytes / 2**20:.1f} | — | — |"
        )
    lines += first_rows
    return "\n".join(lines) + "\n"


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings for the command-line options."""
    s = Settings()
    if args.quick:
        s = Settings(
            runs=5, warmup=1, min_time=0.0, load_reps=1, reference_runs=1, reference_budget=10.0
        )
    if args.runs is not None:
        s.runs = args.runs
    s.rss = not args.no_rss
    s.reference = not args.no_reference
    s.threads = tuple(int(t) for t in args.threads.split(",") if t.strip())
    if args.cold_models is not None:
        s.cold = frozenset(n.strip() for n in args.cold_models.split(",") if n.strip())
    if not have_threadpoolctl():
        s.threads = s.threads[:1]  # numpy's BLAS threads cannot be set without threadpoolctl
    return s


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--rss-child"]:
        rss_child(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default=",".join(models.MODELS),
        help=f"comma list from {', '.join(models.MODELS)}",
    )
    parser.add_argument("--runs", type=int, default=None, help="minimum timed runs (20)")
    parser.add_argument(
        "--quick", action="store_true", help="5 runs, 1 warm-up, one load and one reference run"
    )
    parser.add_argument(
        "--output", default=RESULTS, help="Markdown file whose section to write ('-': print only)"
    )
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--cache", default=models.DEFAULT_CACHE, help="model folder")
    parser.add_argument(
        "--threads",
        default="2,1",
        help="thread counts to compare at (ORT intra-op = numpy BLAS threads)",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--no-reference", action="store_true", help="skip onnx.reference")
    parser.add_argument(
        "--cold-models",
        default=None,
        help="comma list of the models whose cold-cache first run is measured (default: all; "
        "'' for none): each compiles all of its kernels",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in models.MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(models.MODELS)}")
    s = settings_from(args)
    start_load = os.getloadavg()[0]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    results = [bench_model(name, args.cache, s, log) for name in names]
    command = "python bench/run.py" + ("" if not argv else " " + " ".join(argv))
    text = render(results, s, command, start_load)
    print(f"## {SECTION}\n\n{text}")
    if args.output != "-":
        write_section(SECTION, text, args.output)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            rows = [
                asdict(r) | {"ratios": {str(t): r.ratio(t) for t in s.threads}} for r in results
            ]
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
