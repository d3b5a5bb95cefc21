"""openge with its compiled kernels vs openge with the NumPy reference kernels only.

Two Models of the same .om in one process — one loaded with compiled kernels, one after
``openge.kernels.set_enabled(False)`` — run on the same inputs in alternating blocks of 5,
at each thread count (numpy's BLAS and openge's kernel threads both at *t*). Writes
"## Compiled kernels vs NumPy kernels" to bench/RESULTS.md.

Run: ``python bench/kernels_ab.py [--models a,b] [--runs N] [--threads 1,2] [--output PATH]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

if __package__ in (None, ""):
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    sys.path.insert(0, os.path.dirname(_HERE))

from bench import models
from bench.common import RESULTS, geomean, machine_lines, median, write_section

SECTION = "Compiled kernels vs NumPy kernels"
DEFAULT_MODELS = (
    "shufflenet",
    "squeezenet",
    "densenet121",
    "resnet18",
    "mobilenet_v2",
    "mobilenet_v3",
    "efficientnet_b0",
    "gpt2_block",
    "vit_block",
)
BLOCK = 5


def compare(name: str, cache: str, runs: int, threads: int) -> tuple[float, float]:
    """Median seconds of (compiled, NumPy-only) execute on model ``name``."""
    from threadpoolctl import threadpool_limits

    from openge import kernels
    from openge.runtime import Model

    path = models.onnx_path(name, cache)
    conv = models.convert(name, path, cache)
    if conv.error:
        raise RuntimeError(conv.error)
    inputs = models.make_inputs(path)
    compiled = Model.from_file(conv.om_path)
    kernels.set_enabled(False)
    try:
        plain = Model.from_file(conv.om_path)
    finally:
        kernels.set_enabled(True)
    got, want = compiled.execute(inputs), plain.execute(inputs)
    for a, b in zip(got, want):
        scale = max(float(np.max(np.abs(b))), 1e-30)
        if float(np.max(np.abs(a - b))) / scale > 1e-4:
            raise RuntimeError(f"{name}: compiled and NumPy kernels disagree")
    times: dict[str, list[float]] = {"compiled": [], "numpy": []}
    kernels.set_num_threads(threads)
    try:
        with threadpool_limits(threads, user_api="blas"):
            for model in (compiled, plain):
                model.execute(inputs)
            for i in range(max(1, runs // BLOCK)):
                order = [("compiled", compiled), ("numpy", plain)]
                for key, model in order if i % 2 == 0 else order[::-1]:
                    for _ in range(BLOCK):
                        start = time.perf_counter()
                        model.execute(inputs)
                        times[key].append(time.perf_counter() - start)
    finally:
        kernels.set_num_threads(None)
        compiled.close()
        plain.close()
    return median(times["compiled"]), median(times["numpy"])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--cache", default=models.DEFAULT_CACHE)
    parser.add_argument("--output", default=RESULTS, help="Markdown file ('-': print only)")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    threads = [int(t) for t in args.threads.split(",") if t]
    start_load = os.getloadavg()[0]
    rows, ratios = [], {t: [] for t in threads}
    for name in names:
        cells = []
        for t in threads:
            fast, plain = compare(name, args.cache, args.runs, t)
            ratios[t].append(fast / plain)
            cells.append(f"{fast * 1e3:.1f} | {plain * 1e3:.1f} | {fast / plain:.2f}")
            print(f"[{name}] {t}t: compiled {fast * 1e3:.1f} ms, numpy {plain * 1e3:.1f} ms",
                  file=sys.stderr, flush=True)  # fmt: skip
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    head = "| model |" + "".join(
        f" compiled ms, {t}t | NumPy only ms, {t}t | compiled / NumPy, {t}t |" for t in threads
    )
    lines = [
        f"`python bench/kernels_ab.py {' '.join(argv or sys.argv[1:])}`".replace(" `", "`"),
        "",
        *machine_lines(start_load),
        "",
        "Medians of at least "
        f"{args.runs} runs per variant, in alternating blocks of {BLOCK}, one process.",
        "",
        head,
        "|---|" + "---:|---:|---:|" * len(threads),
        *rows,
        "",
        *(
            f"- {t} thread{'s' if t > 1 else ''}: geometric mean compiled / NumPy "
            f"{geomean(ratios[t]):.2f}"
            for t in threads
        ),
    ]
    text = "\n".join(lines) + "\n"
    print(f"## {SECTION}\n\n{text}")
    if args.output != "-":
        write_section(SECTION, text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
