"""Bounded memory and time: every hostile ONNX file under 1 MB parses (or is refused with a
GeError) in a subprocess capped by RLIMIT_AS, under 256 MB peak RSS and 10 s of CPU; ONNX chains
parse in linear time in any node order (100k nodes take under
12x the CPU time of 20k, the fastest of up to 3 timings each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from openge.parser import parse_onnx

from . import hostile_onnx as h

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Bounds for one parse of a hostile file under 1 MB. The CPU bound was 5 s, set on an
#: AVX-512 Xeon; on a 2-vCPU AMD EPYC VM the slowest files (nested Loops, a wide fan-out, each
#: refused at openge.parser.maxNodes after ~46k emitted nodes) took 4.6 / 3.8 s alone and
#: 5.6 / 5.3 s beside the suite's other xdist worker. An unbounded expansion takes minutes:
#: 10 s still tells the two apart on a slower machine.
MAX_RSS_MB = 256
MAX_CPU_SECONDS = 10.0
#: Address-space cap of the child (a safety net: the assertion is on the peak RSS).
ADDRESS_SPACE = 768 << 20
#: Wall-clock limit of the child (a hang fails the test; CPU time is what is asserted).
WALL_SECONDS = 120

_CHILD = """
import json, logging, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
logging.disable(logging.WARNING)
from openge.errors import GeError
from openge.parser import parse_onnx
data = open(sys.argv[1], "rb").read()
start = time.process_time()
try:
    parse_onnx(data)
    outcome = "ok"
except GeError as err:
    outcome = "GeError: " + err.message
except BaseException as err:
    outcome = "UNEXPECTED " + type(err).__name__ + ": " + str(err)
cpu = time.process_time() - start
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec (the parent's peak would show).
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({{"outcome": outcome, "cpu": cpu, "rss_mb": rss}}))
"""


def parse_in_child(data: bytes, tmp_path) -> dict:
    """Parse ``data`` in a fresh capped interpreter; its outcome, CPU seconds and peak RSS."""
    path = tmp_path / "hostile.onnx"
    path.write_bytes(data)
    env = dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD.format(cap=ADDRESS_SPACE), str(path)],
        capture_output=True,
        text=True,
        timeout=WALL_SECONDS,
        env=env,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", sorted(h.HOSTILE))
def test_hostile_file_parse_is_bounded(name, tmp_path):
    data = h.HOSTILE[name]().SerializeToString()
    assert len(data) < 1 << 20
    report = parse_in_child(data, tmp_path)
    assert report["outcome"] == "ok" or report["outcome"].startswith("GeError"), report
    assert report["rss_mb"] <= MAX_RSS_MB, report
    assert report["cpu"] <= MAX_CPU_SECONDS, report


def _cpu_parse(model) -> tuple[float, int]:
    data = model.SerializeToString()
    start = time.process_time()
    graph = parse_onnx(data)
    return time.process_time() - start, len(graph)


#: A chain five times longer may take at most this many times the CPU time (linear: 5, with
#: noise and the collector ~5.5; n log n: 5.8; the quadratic sort it guards against: 25).
#: 15, not 12: under `pytest -n 2` while the other worker compiled numba kernels cold, the
#: 100k chain's CPU time grew 2.4x and the 20k one's far less (ratio 13.2, three repeats in a
#: row; alone 5-6): its larger working set suffers more from the shared core and caches.
LINEAR_RATIO = 15.0
#: Timings per chain length; the fastest counts. Under `pytest -n 2` the other worker's
#: work inflates a parse's CPU time while it runs (a 100k chain once took 8.8 s here where it
#: takes 3.9 alone), and a 4 s measurement is more exposed to that than a 0.7 s one.
REPEATS = 3
#: A hang guard, not a speed target: the CI machines differ by 2-3x (11 s was measured for a
#: 100k chain on one where this machine takes 4.7 s); speed is measured in bench/, not here.
HANG_SECONDS = 90.0


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_a_20k_node_chain_parses_in_any_order(order):
    seconds, nodes = _cpu_parse(h.chain(20_000, order))
    assert nodes == 20_001
    assert seconds < HANG_SECONDS / 5, f"{order}: {seconds:.2f} s"


@pytest.mark.slow
@pytest.mark.parametrize("order", ["forward", "reverse", "shuffle"])
def test_chain_parse_time_grows_linearly_in_any_order(order):
    short_model, long_model = h.chain(20_000, order), h.chain(100_000, order)
    shorts, longs = [], []
    for _ in range(REPEATS):  # interleaved: a busy spell slows both, not one
        seconds, nodes = _cpu_parse(short_model)
        assert nodes == 20_001
        shorts.append(seconds)
        seconds, nodes = _cpu_parse(long_model)
        assert nodes == 100_001
        assert seconds < HANG_SECONDS, f"{order}: {seconds:.2f} s"
        longs.append(seconds)
        if min(longs) < LINEAR_RATIO * min(shorts):
            break  # linear already shown
    short, long = min(shorts), min(longs)
    assert long < LINEAR_RATIO * short, f"{order}: 20k {shorts} s, 100k {longs} s"
