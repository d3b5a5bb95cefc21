"""Dynamic-shape overhead: a dynamic-shape model run repeatedly at one shape vs the static
compile of that shape, and the planning time of the first run at a new shape.

    python bench/dynamic.py [--models mlp,squeezenet,bert_base] [--runs 30] [--output PATH|-]

For each benchmark model, every input's dims are made symbolic (the dynamic model: parse →
compile → .om → load, no input_shape) and the original model is compiled static. Both run the
same inputs in alternating blocks of 5 runs; medians are compared. The first dynamic run plans
the shape (``Model.dynamic.last_plan_seconds``, also logged at INFO). Writes the
``## Dynamic shapes`` section of bench/RESULTS.md (``--output -`` only prints).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import RESULTS, machine_lines, median, write_section
from bench.models import input_specs, make_inputs, onnx_path

DEFAULT_MODELS = ("mlp", "squeezenet", "resnet50", "bert_base")


def _symbolic(model):
    """A copy of ``model`` whose inputs have every dim symbolic."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inits = {t.name for t in copy.graph.initializer}
    for value in copy.graph.input:
        if value.name in inits:
            continue
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{value.name}_d{i}"
    for value in copy.graph.output:
        for dim in value.type.tensor_type.shape.dim:
            dim.Clear()
    del copy.graph.value_info[:]
    return copy


def _load(model):
    from openge.compiler import compile_graph
    from openge.om.writer import serialize
    from openge.parser import parse_onnx
    from openge.runtime.model import Model

    compiled = compile_graph(parse_onnx(model))
    return Model.from_bytes(serialize(compiled, online=False)), compiled.is_dynamic


def measure(name: str, runs: int) -> dict:
    """Static and dynamic medians (ms), their ratio and the first-run planning time."""
    import onnx

    model = onnx.load(onnx_path(name))
    inputs = make_inputs(model)
    assert all(a.shape == s for a, (_, _, s) in zip(inputs, input_specs(model)))
    static, is_dyn = _load(model)
    assert not is_dyn, name
    dynamic, is_dyn = _load(_symbolic(model))
    assert is_dyn, name
    start = time.perf_counter()
    first = dynamic.execute(inputs)
    first_s = time.perf_counter() - start
    plan_s = dynamic.dynamic.last_plan_seconds
    for a, b in zip(static.execute(inputs), first):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    times: dict[str, list[float]] = {"static": [], "dynamic": []}
    for _ in range(2):  # warm-up
        static.execute(inputs)
        dynamic.execute(inputs)
    while len(times["dynamic"]) < runs:
        for key, m in (("static", static), ("dynamic", dynamic)):
            for _ in range(5):
                t = time.perf_counter()
                m.execute(inputs)
                times[key].append(time.perf_counter() - t)
    s, d = median(times["static"]) * 1e3, median(times["dynamic"]) * 1e3
    return {
        "model": name,
        "static_ms": s,
        "dynamic_ms": d,
        "ratio": d / s,
        "plan_ms": plan_s * 1e3,
        "first_ms": first_s * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args(argv)
    start_load = os.getloadavg()[0]
    rows = [measure(name, args.runs) for name in args.models.split(",") if name]
    lines = [
        "A dynamic-shape model (every input dim symbolic) run repeatedly at one shape vs the "
        "static compile of that shape (medians, alternating blocks of 5 runs; `python "
        "bench/dynamic.py`). `plan` is the first run's planning time at the new shape "
        "(`Model.dynamic.last_plan_seconds`); `first run` includes it.",
        "",
        *machine_lines(start_load),
        "",
        "| model | static ms | dynamic ms | dynamic / static | plan ms | first run ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {r['model']} | {r['static_ms']:.3f} | {r['dynamic_ms']:.3f} | {r['ratio']:.3f} | "
        f"{r['plan_ms']:.1f} | {r['first_ms']:.1f} |"
        for r in rows
    )
    body = "\n".join(lines)
    print(body)
    if args.output != "-":
        write_section("Dynamic shapes", body, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
