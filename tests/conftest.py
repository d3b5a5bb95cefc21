"""Shared fixtures: GE initialization, temp working folders, graph helpers."""

from __future__ import annotations

import mmap
import os
import tempfile

import numpy as np
import pytest

from openge.graph import DataType, Graph, Tensor, TensorDesc
from openge.kernels import sources_digest  # imports no numba

# Compiled kernels cache into a temp folder shared by the run's workers (never the user's cache):
# CI starts cold, a local re-run reuses it. Set before openge.kernels first imports numba. The
# folder is per kernel-sources digest, as openge's own default: numba checks only the stamp of
# a cached function's own file, so an edited helper another module inlines would otherwise
# leave that module's stale machine code in a re-run.
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    os.path.join(
        tempfile.gettempdir(),
        f"openge-test-numba-{os.getuid() if hasattr(os, 'getuid') else 0}",
        sources_digest(),
    ),
)


@pytest.fixture(autouse=True)
def verify_every_pass(monkeypatch):
    """Every compilation in the suite runs the graph verifier after each pass, so a pass that
    breaks an invariant is named by the failure (compile_graph checks memory plans itself)."""
    from openge.compiler import pipeline

    monkeypatch.setattr(pipeline, "VERIFY_PASSES", True)


@pytest.fixture
def ge():
    """GE initialized for the test and finalized after it (closing every session)."""
    from openge.ge_global import GeApi

    GeApi.ge_initialize({})
    yield GeApi
    GeApi.ge_finalize()


@pytest.fixture
def work_path(tmp_path, monkeypatch):
    """ASCEND_WORK_PATH and the current folder set to a fresh temp folder."""
    monkeypatch.setenv("ASCEND_WORK_PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def data(graph: Graph, index: int, shape, dtype=DataType.DT_FLOAT, name=None):
    """Add a Data node."""
    return graph.add_node(
        "Data",
        name=name or f"x{index}",
        attrs={"index": index},
        output_descs=[TensorDesc(dtype, tuple(shape))],
    )


def const(graph: Graph, value, name=None):
    """Add a Const node holding ``value``."""
    return graph.add_node("Const", name=name, attrs={"value": Tensor(np.asarray(value))})


def counter_graph(name="counter", var="count", shape=(2,)) -> Graph:
    """count += x; outputs the updated count."""
    g = Graph(name)
    x = data(g, 0, shape)
    v = g.add_node("Variable", name=var, attrs={"value": Tensor(np.zeros(shape, np.float32))})
    a = g.add_node("AssignAdd", [v.output(0), x.output(0)])
    g.set_outputs([a.output(0)])
    return g


def compiler_resident_kib() -> int:
    """KiB of numba's LLVM library (libllvmlite) in this process's RSS (Linux)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            words = line.split()
            first = words[0] if words else ""
            if "-" in first and ":" not in first:  # a mapping's header line
                inside = "libllvmlite" in line
            elif inside and line.startswith("Rss:"):
                total += int(words[1])
    return total


def resident_pages(mapping: mmap.mmap) -> int:
    """Pages of ``mapping`` in this process's RSS (its Rss line in /proc/self/smaps; Linux)."""
    start = np.frombuffer(mapping, np.uint8).ctypes.data
    with open("/proc/self/smaps") as smaps:
        lines = smaps.read().splitlines()
    for i, line in enumerate(lines):
        first = line.split()[0]
        if "-" not in first or ":" in first:
            continue  # a detail line
        lo, hi = (int(v, 16) for v in first.split("-"))
        if lo <= start < hi:
            for detail in lines[i + 1 :]:
                if detail.startswith("Rss:"):
                    return int(detail.split()[1]) * 1024 // mmap.PAGESIZE
    raise AssertionError("mapping not found")
