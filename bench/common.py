"""Shared helpers of the benchmark scripts: the machine description, RESULTS.md sections,
timing statistics and the peak-RSS probe.

Not part of the openge package: bench/ scripts import it as ``bench.common``.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import tempfile
from collections.abc import Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
#: Environment variables that change which OpenBLAS kernel numpy runs (see docs in run.py).
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` as a fallback)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> str:
    """Which BLAS numpy runs: threadpoolctl's view (library, kernel, threads) if installed,
    else the build configuration from ``numpy.show_config``."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        parts = [
            f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, "
            f"{i.get('num_threads')} threads"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
        if parts:
            return "; ".join(parts) + " (threadpoolctl)"
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (numpy.show_config; kernel unknown)"
    except Exception:  # any numpy without mode="dicts"
        return "unknown"


def openge_revision() -> str:
    """The repository's commit and whether openge/ differs from it (read-only git calls)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            proc = subprocess.run(
                ["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown revision"
    changed = git("diff", "--shortstat", "HEAD", "--", "openge")
    if changed:
        return f"commit {commit} + uncommitted changes in openge/ ({changed})"
    return f"commit {commit}"


def machine_lines(start_load: float | None = None) -> list[str]:
    """Markdown bullet lines describing date, machine, library versions and BLAS settings;
    ``start_load`` is the 1-minute load average when the measurement started."""
    import onnx

    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    env = ", ".join(f"{k}={os.environ[k]}" if k in os.environ else f"{k} unset" for k in BLAS_ENV)
    return [
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores ({platform.machine()}); "
        f"1-minute load average {_load(start_load)}",
        f"- Python {platform.python_version()}, numpy {np.__version__}, onnx {onnx.__version__}, "
        f"onnxruntime {ort}",
        f"- numpy BLAS: {blas_info()}",
        f"- openge: {openge_revision()}; {kernel_info()}",
        f"- environment: {env}",
    ]


def kernel_info() -> str:
    """openge's compiled-kernel settings: threads, numba's version, the kernel cache."""
    try:
        import numba

        from openge import kernels
    except ImportError:
        return "compiled kernels: numba not installed"
    return (
        f"compiled kernels: numba {numba.__version__} (serial, GIL-free kernels run on "
        f"openge's own threads), intra-op threads = *t* "
        f"(openge.kernels.set_num_threads; default {kernels.default_num_threads()}), cache "
        f"{kernels.cache_dir()}"
    )


def _load(start: float | None) -> str:
    now = os.getloadavg()[0]
    return f"{now:.2f}" if start is None else f"{start:.2f} at the start, {now:.2f} at the end"


def write_section(title: str, body: str, path: str = RESULTS) -> None:
    """Replace (or append) the ``## title`` section of a Markdown file, leaving every other
    section as it is. ``body`` is the text under the heading."""
    heading = f"## {title}"
    old = ""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    if not old:
        old = "# Benchmark results\n"
    text = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old).rstrip("\n") + "\n"
    else:
        new = old.rstrip("\n") + "\n\n" + text
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".results-", suffix=".md")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, path)


def median(values: Sequence[float]) -> float:
    """Median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """First and third quartile (NaN for fewer than 2 values)."""
    if len(values) < 2:
        return float("nan"), float("nan")
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive finite values (NaN for none)."""
    good = [v for v in values if v > 0 and np.isfinite(v)]
    return float(np.exp(np.mean(np.log(good)))) if good else float("nan")


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmHWM, VmRSS, …); -1 where unavailable."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1
