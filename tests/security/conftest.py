"""Every test of the hostile-input suite runs under a timeout and a peak-RSS check.

Tests that load hostile files do so in a capped child process (capped.py), which also limits
the address space. The in-process tests (API and CLI misuse, confinement) get this fixture: a
SIGALRM timeout, and the kernel's peak-RSS counter reset before the test and read after it.
"""

from __future__ import annotations

import signal

import pytest

TIMEOUT_S = 120
#: Peak RSS growth allowed in one in-process test (the process already holds the suite).
RSS_GROWTH_MB = 256


def _rss(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _timeout(signum, frame):
    raise TimeoutError(f"test exceeded {TIMEOUT_S} s")


@pytest.fixture(autouse=True)
def bounded():
    """Fail a test that runs longer than TIMEOUT_S or grows the peak RSS by RSS_GROWTH_MB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    before = _rss("VmRSS")
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    growth = _rss("VmHWM") - before
    assert growth <= RSS_GROWTH_MB, f"peak RSS grew by {growth:.0f} MB"
