"""Batch-inference throughput on Ray Data: 1 actor × 1 thread vs N actors × 1 thread.

Scores the same rows with ``openge.ray.predict`` on a local Ray instance (``ray.init(num_cpus=
cores)``), once per configuration and repeated, and reports rows per second and the speed-up.
The model is a small CNN (3×64×64 images, four 3×3 convolutions) that runs in a few
milliseconds per 8-image gear, so the figure measures openge's actors, not Ray's overhead.
Writes ``## Batch inference on Ray`` in RESULTS.md.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/ray_throughput.py
[--rows 8000] [--repeats 3] [--output -]``
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

from onnx import TensorProto, helper, numpy_helper

from bench.common import RESULTS, machine_lines, median, write_section
from openge.offline_compile import build_finalize, build_initialize, build_model
from openge.parser import parse_onnx


def cnn_om(batch: int = 8) -> bytes:
    """A 4-conv CNN on 3×64×64 images, compiled by openge (seeded weights)."""
    rng = np.random.default_rng(0)
    chans = [3, 32, 64, 64, 128]
    nodes, inits, x = [], [], "img"
    for i in range(4):
        w = rng.normal(0, (2 / (9 * chans[i])) ** 0.5, (chans[i + 1], chans[i], 3, 3))
        inits += [
            numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
            numpy_helper.from_array(np.zeros(chans[i + 1], np.float32), f"b{i}"),
        ]
        nodes += [
            helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        x = f"r{i}"
        if i % 2 == 1:
            nodes.append(helper.make_node("MaxPool", [x], [f"p{i}"], kernel_shape=[2, 2],
                                          strides=[2, 2]))  # fmt: skip
            x = f"p{i}"
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["g"]),
        helper.make_node("Flatten", ["g"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes, "cnn64",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, [batch, 3, 64, 64])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, 128])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    build_initialize({})
    try:
        return bytes(build_model(parse_onnx(model)).data)
    finally:
        build_finalize()


def _score(ray, om_ref, x: np.ndarray, actors: int) -> float:
    from openge.ray import predict

    dataset = ray.data.from_numpy(np.array_split(x, max(1, len(x) // 256)))
    result = predict(dataset, om_ref, actors=actors, num_cpus=1, batch_size=256,
                     input_columns={"img": "data"})  # fmt: skip
    start = time.perf_counter()
    rows = sum(len(b["features"]) for b in result.iter_batches(batch_size=None))
    seconds = time.perf_counter() - start
    assert rows == len(x)
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=RESULTS, help="RESULTS.md path, or - to print only")
    args = parser.parse_args()

    import ray

    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")  # fmt: skip
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    om_ref = ray.put(np.frombuffer(cnn_om(), dtype=np.uint8))
    x = np.random.default_rng(1).normal(size=(args.rows, 3, 64, 64)).astype(np.float32)
    configs = sorted({1, cores})
    _score(ray, om_ref, x[:512], 1)  # warm-up: worker start, imports
    rates: dict[int, list[float]] = {n: [] for n in configs}
    for _ in range(args.repeats):
        for n in configs:  # alternate, so drifts in machine load hit both configurations
            rates[n].append(_score(ray, om_ref, x, n))
    ray.shutdown()
    base = median(rates[1])
    lines = [
        *machine_lines(load),
        "",
        f"{args.rows} rows of 3×64×64 images, small CNN (4 convs) at batch 8, batch_size 256, "
        f"median of {args.repeats} runs per configuration, alternating; ray.init(num_cpus="
        f"{cores}). Command: `python bench/ray_throughput.py --rows {args.rows} --repeats "
        f"{args.repeats}`.",
        "",
        "| actors × threads | rows/s (median) | runs | vs 1 × 1 |",
        "|---|---|---|---|",
    ]
    for n in configs:
        runs = ", ".join(f"{r:.0f}" for r in rates[n])
        lines.append(
            f"| {n} × 1 | {median(rates[n]):.0f} | {runs} | {median(rates[n]) / base:.2f}× |"
        )
    body = "\n".join(lines)
    print(body)
    if args.output != "-":
        write_section("Batch inference on Ray", body, args.output)


if __name__ == "__main__":
    main()
