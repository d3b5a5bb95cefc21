"""Single 3×3 convolutions at 1 and 2 threads: openge's Winograd path against ONNX Runtime.

For each shape (ResNet's and SqueezeNet's 3×3 stride-1 layers), openge's prepared Winograd
closure (openge.ops.conv_winograd) and an ORT session holding one Conv node run on the same
input, alternating blocks, at each thread count (numpy's BLAS, openge's threads and ORT's
intra-op threads all at *t*). Shows whether the second thread pays for a convolution alone,
without the rest of a network around it.

Run: ``python bench/conv_threads.py [--runs N] [--output PATH]`` (default: print only)
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

from bench.common import geomean, machine_lines, median, write_section

SECTION = "3×3 convolutions at 1 and 2 threads"
#: (input channels, output channels, height = width)
SHAPES = ((16, 64, 54), (32, 128, 27), (64, 64, 56), (128, 128, 28), (256, 256, 14))
BLOCK = 5


def _ort_session(c: int, cout: int, h: int, w: np.ndarray, threads: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, h])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, h, h])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def measure(c: int, cout: int, h: int, runs: int) -> dict[int, tuple[float, float, float]]:
    """{threads: (openge ms, ORT ms, max relative difference)} for one shape."""
    from threadpoolctl import threadpool_limits

    from openge import kernels
    from openge.ops.conv_winograd import prepare_winograd

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, c, h, h)).astype(np.float32)
    w = (rng.standard_normal((cout, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    y = np.empty((1, cout, h, h), np.float32)
    run = prepare_winograd(x, w, None, y, (1, 1, 1, 1), True)
    if run is None:
        raise RuntimeError(f"the Winograd path declined {c}→{cout} at {h}²")
    out: dict[int, tuple[float, float, float]] = {}
    for threads in (1, 2):
        session = _ort_session(c, cout, h, w, threads)
        times: dict[str, list[float]] = {"openge": [], "ort": []}
        with threadpool_limits(threads):
            kernels.set_num_threads(threads)
            try:
                run()
                want = session.run(None, {"x": x})[0]
                diff = float(np.abs(y - want).max() / np.abs(want).max())
                for _ in range(-(-runs // BLOCK)):
                    for key in ("openge", "ort"):
                        for _ in range(BLOCK):
                            start = time.perf_counter()
                            if key == "openge":
                                run()
                            else:
                                session.run(None, {"x": x})
                            times[key].append(time.perf_counter() - start)
            finally:
                kernels.set_num_threads(None)
        out[threads] = (median(times["openge"]) * 1e3, median(times["ort"]) * 1e3, diff)
    return out


def render(results: dict[tuple[int, int, int], dict], command: str) -> str:
    lines = [f"`{command}`", "", *machine_lines(), ""]
    lines.append(
        "Median ms of one convolution (batch 1, pads 1, no bias); *t* = numpy BLAS threads = "
        'openge threads = ORT intra-op threads. "diff": max |openge − ORT| / max |ORT|.'
    )
    lines.append("")
    lines.append(
        "| input → output channels, size | openge 1t | ORT 1t | openge 2t | ORT 2t | "
        "openge 2t / 1t | ORT 2t / 1t | openge / ORT, 2t | diff |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for (c, cout, h), r in results.items():
        (o1, t1, d1), (o2, t2, d2) = r[1], r[2]
        ratios.append(o2 / t2)
        lines.append(
            f"| {c} → {cout}, {h}² | {o1:.3f} | {t1:.3f} | {o2:.3f} | {t2:.3f} | "
            f"{o2 / o1:.2f} | {t2 / t1:.2f} | {o2 / t2:.2f} | {max(d1, d2):.1e} |"
        )
    lines.append("")
    lines.append(f"- geometric mean openge / ORT at 2 threads: {geomean(ratios):.2f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--output", default="-", help="Markdown file ('-': print only)")
    args = parser.parse_args(argv)
    results = {shape: measure(*shape, args.runs) for shape in SHAPES}
    command = "python bench/conv_threads.py " + " ".join(argv or sys.argv[1:])
    text = render(results, command.strip())
    if args.output == "-":
        print(text)
    else:
        write_section(SECTION, text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
