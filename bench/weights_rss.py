"""Weights are never copied: load a model with 100 MB of weights, run it once, and report how
much anonymous memory (RssAnon) the process grew beyond the work arena.

Run: python bench/weights_rss.py   (writes a temp .om, measures in a fresh process)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np

N = 5120  # a 5120 x 5120 float32 matrix = 100 MiB of weights


def build(path: str) -> str:
    from openge.graph import DataType, Graph, Tensor, TensorDesc
    from openge.offline_compile import build_finalize, build_initialize, build_model, save_model

    g = Graph("big_weights")
    x = g.add_node(
        "Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(DataType.DT_FLOAT, (1, N))]
    )
    w = g.add_node(
        "Const",
        name="w",
        attrs={"value": Tensor(np.random.default_rng(0).normal(size=(N, N)).astype(np.float32))},
    )
    y = g.add_node("MatMulV2", [x.output(0), w.output(0)], name="y")
    g.set_outputs([y.output(0)])
    build_initialize({})
    try:
        return save_model(path, build_model(g))
    finally:
        build_finalize()


def rss_kib(field: str = "RssAnon") -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(path: str) -> None:
    from openge.runtime import Model

    x = np.ones((1, N), np.float32)
    before, file_before = rss_kib(), rss_kib("RssFile")
    model = Model.from_file(path)
    model.execute([x])
    after, file_after = rss_kib(), rss_kib("RssFile")
    grown = (after - before) / 1024
    arena = model.memory_size / 2**20
    print(
        f"weights {model.weight_size / 2**20:.1f} MiB, work arena {arena:.2f} MiB, "
        f"RssAnon grew {grown:.2f} MiB -> {grown - arena:.2f} MiB beyond the arena; "
        f"RssFile (the mapped .om) grew {(file_after - file_before) / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[2])
    else:
        with tempfile.TemporaryDirectory() as folder:
            om = build(os.path.join(folder, "big"))
            print(f"om size {os.path.getsize(om) / 2**20:.1f} MiB")
            subprocess.run([sys.executable, __file__, "--measure", om], check=True)
