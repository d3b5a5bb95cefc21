"""Run hostile-input jobs in a child process under a memory cap and a timeout.

Each job is ``"module:function"`` plus JSON arguments, run in one child process per batch
(the import cost is paid once). The child caps its address space (``RLIMIT_AS``, so a runaway
case fails there instead of taking the machine), and before each job resets the kernel's peak
RSS counter (``/proc/self/clear_refs``) to report the job's own peak RSS (``VmHWM``) and time.
A job's result says whether it returned, or which exception type it raised with what message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Address-space cap of the child (bytes): far above a legitimate load of these small models.
ADDRESS_SPACE_CAP = 8 << 30
#: The issue's bound for loading any hostile file under 1 MB.
RSS_BUDGET_MB = 256
TIME_BUDGET_S = 5.0


@dataclass
class Outcome:
    """What one job did."""

    error: str | None  # exception type name, or None when it returned
    message: str
    value: Any
    rss_mb: float
    seconds: float


_CHILD = r"""
import importlib, json, resource, sys, time, traceback
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
sys.path.insert(0, {root!r})
jobs = json.load(open(sys.argv[1]))
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0
import numpy, openge.runtime, openge.cli.main  # imported before measuring
out = []
for job in jobs:
    mod, _, name = job["call"].partition(":")
    fn = getattr(importlib.import_module(mod), name)
    try:
        open("/proc/self/clear_refs", "w").write("5")
    except OSError:
        pass
    t = time.perf_counter()
    try:
        value = fn(*job["args"])
        error, message = None, ""
    except BaseException as err:
        value, error, message = None, type(err).__name__, str(err)
        if error not in ("GeError",):
            message += "\n" + traceback.format_exc()
    seconds = time.perf_counter() - t
    try:
        json.dumps(value)
    except TypeError:
        value = repr(value)
    out.append(dict(error=error, message=message, value=value, rss_mb=hwm(), seconds=seconds))
print("@@RESULTS@@" + json.dumps(out))
"""


def run_jobs(
    jobs: list[tuple[str, list[Any]]], tmp_path: Any, timeout: float = 240.0
) -> list[Outcome]:
    """Run ``(call, args)`` jobs in one capped child; their outcomes in order."""
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps([{"call": c, "args": a} for c, a in jobs]))
    code = _CHILD.format(cap=ADDRESS_SPACE_CAP, root=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", code, str(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(tmp_path),
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    marker = "@@RESULTS@@"
    if marker not in result.stdout:
        raise AssertionError(
            f"the capped child died (exit {result.returncode}): {result.stderr[-3000:]}"
        )
    raw = json.loads(result.stdout.split(marker, 1)[1])
    return [Outcome(**r) for r in raw]


def assert_bounded(outcome: Outcome, what: str) -> None:
    """The issue's bounds on one hostile load: RSS and time."""
    assert outcome.rss_mb <= RSS_BUDGET_MB, f"{what}: peak RSS {outcome.rss_mb:.0f} MB"
    assert outcome.seconds <= TIME_BUDGET_S, f"{what}: took {outcome.seconds:.1f} s"


__all__ = ["Outcome", "assert_bounded", "run_jobs"]
