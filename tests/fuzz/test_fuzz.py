"""The .om and device .om fuzz harnesses (fuzz_om.py, fuzz_device.py), run for a bounded time
(CI) or longer (``OPENGE_FUZZ_SECONDS``).

Each harness runs in its own process for ``OPENGE_FUZZ_SECONDS`` seconds (10 by default) on
the seed corpus it generates, with libFuzzer's per-input timeout and the harness's per-input
peak-RSS check; any exception other than GeError, a hang or a memory blow-up makes libFuzzer
exit non-zero and write the input (a "crash-…" file), which fails the test. Longer runs:
docs/security.md.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("atheris", reason="atheris is Linux-only (the test extra installs it)")

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
@pytest.mark.parametrize(
    "harness",
    [("fuzz_om.py", "from_bytes"), ("fuzz_om.py", "reader"), ("fuzz_device.py",)],
    ids=["from_bytes", "reader", "device"],
)
def test_fuzz_harness_finds_nothing(harness, tmp_path):
    seconds = int(os.environ.get("OPENGE_FUZZ_SECONDS", "10"))
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, harness[0]),
            *harness[1:],
            f"-max_total_time={seconds}",
            "-timeout=10",
            # libFuzzer's RSS limit reads getrusage's maxrss, which Linux carries over from this
            # (large) pytest process: the harness checks each input's own peak RSS instead.
            "-rss_limit_mb=0",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        cwd=str(tmp_path),
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    crashes = [n for n in os.listdir(tmp_path) if n.startswith(("crash-", "timeout-", "oom-"))]
    assert result.returncode == 0 and not crashes, result.stderr[-4000:]
    runs = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("stat::number_of_executed_units")
    ]
    assert runs and int(runs[0].split(":")[-1]) > 0, result.stderr[-2000:]
