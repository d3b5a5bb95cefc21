"""Weight memory of a dynamic-shape model served at many shapes: a BERT-base-sized encoder
(12 layers, hidden 768, vocab 30522: ~434 MB of float32 weights) with a dynamic batch and
sequence length, loaded from an .om file and run at 8 (batch, length) pairs.

    python bench/dynamic_memory.py [--shapes 1x8,1x16,...] [--layers 12] [--keep DIR]

Each run is a fresh process: load, then one run per shape; it prints the peak RSS (VmHWM), the
anonymous and file-backed RSS after the runs, each shape's planning time and the model's
``dynamic.stats()`` weight figures. Every cached plan used to hold its own copy of the weights;
with runtime.weight_share they are held once (docs/dynamic.md, "Performance").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHAPES = "1x8,1x16,1x32,1x64,2x8,2x16,2x32,4x16"
HIDDEN, HEADS, FFN, VOCAB, MAX_LEN = 768, 12, 3072, 30522, 512


def encoder(layers: int):
    """input_ids int64 [batch, seq] → hidden states [batch, seq, 768]: word and position
    embeddings, then ``layers`` post-norm BERT layers; every reshape copies the batch and
    length (0 dims), so any (batch, seq) runs."""
    from onnx import TensorProto, helper

    from bench.models import _Builder, _finish, _seed

    b = _Builder(np.random.default_rng(_seed("bert_dynamic")))
    hd = HIDDEN // HEADS
    split = b.const("split", np.array([0, 0, HEADS, hd], np.int64))
    merge = b.const("merge", np.array([0, 0, HIDDEN], np.int64))
    sqrt_hd = b.const("sqrt_hd", np.array(np.sqrt(hd), np.float32))
    sqrt2 = b.const("sqrt2", np.array(np.sqrt(2.0), np.float32))
    one = b.const("one", np.array(1.0, np.float32))
    half = b.const("half", np.array(0.5, np.float32))

    def norm(x: str) -> str:
        gamma = b.const("gamma", np.ones(HIDDEN, np.float32))
        beta = b.const("beta", np.zeros(HIDDEN, np.float32))
        return b.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-12)

    words = b.const("words", b.rng.normal(0, 0.02, (VOCAB, HIDDEN)).astype(np.float32))
    places = b.const("places", b.rng.normal(0, 0.02, (MAX_LEN, HIDDEN)).astype(np.float32))
    length = b.op("Squeeze", [b.op("Shape", ["input_ids"], start=1, end=2)])
    zero, step = b.const("zero", np.array(0, np.int64)), b.const("step", np.array(1, np.int64))
    positions = b.op("Range", [zero, length, step])
    h = norm(
        b.op("Add", [b.op("Gather", [words, "input_ids"]), b.op("Gather", [places, positions])])
    )
    for _ in range(layers):
        q = b.op(
            "Transpose", [b.op("Reshape", [b.dense(h, HIDDEN, HIDDEN), split])], perm=[0, 2, 1, 3]
        )
        k = b.op(
            "Transpose", [b.op("Reshape", [b.dense(h, HIDDEN, HIDDEN), split])], perm=[0, 2, 3, 1]
        )
        v = b.op(
            "Transpose", [b.op("Reshape", [b.dense(h, HIDDEN, HIDDEN), split])], perm=[0, 2, 1, 3]
        )
        scores = b.op("Div", [b.op("MatMul", [q, k]), sqrt_hd])
        context = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
        context = b.op("Reshape", [b.op("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        h = norm(b.op("Add", [b.dense(context, HIDDEN, HIDDEN), h]))
        f = b.dense(h, HIDDEN, FFN)
        erf = b.op("Erf", [b.op("Div", [f, sqrt2])])
        f = b.op("Mul", [b.op("Mul", [f, b.op("Add", [erf, one])]), half])
        h = norm(b.op("Add", [b.dense(f, FFN, HIDDEN), h]))
    x = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    y = helper.make_tensor_value_info(h, TensorProto.FLOAT, ["batch", "seq", HIDDEN])
    return _finish(b, "bert_dynamic", x, y, opset=17)


def build(path: str, layers: int) -> None:
    """Write the dynamic encoder's .om to ``path`` (parse → compile → serialize, as atc)."""
    from openge.compiler import compile_graph
    from openge.om.writer import serialize
    from openge.parser import parse_onnx

    compiled = compile_graph(parse_onnx(encoder(layers)))
    assert compiled.is_dynamic
    with open(path, "wb") as f:
        f.write(serialize(compiled, online=False))


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def measure(path: str, shapes: list[tuple[int, int]]) -> dict:
    """Load ``path``, run every shape once; memory and planning figures."""
    from openge.runtime import Model

    base = _status("VmRSS")
    model = Model.from_file(path)
    model.dynamic.cache_size = max(model.dynamic.cache_size, len(shapes))
    rng = np.random.default_rng(0)
    plans = []
    for batch, length in shapes:
        ids = rng.integers(0, VOCAB, size=(batch, length)).astype(np.int64)
        start = time.perf_counter()
        model.execute([ids])
        first = time.perf_counter() - start
        stats = model.dynamic.stats()
        plans.append(
            {
                "shape": [batch, length],
                "plan_s": model.dynamic.last_plan_seconds,
                "share_s": stats.get("last_share_seconds"),
                "first_run_s": first,
            }
        )
    stats = model.dynamic.stats()
    weights = {k: v for k, v in stats.items() if "weight" in k}
    return {
        "rss_before_load": base,
        "peak_rss": _status("VmHWM"),
        "rss_after": _status("VmRSS"),
        "rss_anon_after": _status("RssAnon"),
        "rss_file_after": _status("RssFile"),
        "plans": plans,
        "cached": stats["cached"],
        "weights": weights,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=SHAPES)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--om", default="", help="use (or write) this .om")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    if args.measure_only:
        print(json.dumps(measure(args.om, shapes)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.om or os.path.join(tmp, "bert_dynamic.om")
        if not os.path.isfile(path):
            build(path, args.layers)
        om_bytes = os.path.getsize(path)
        out = subprocess.run(
            [sys.executable, __file__, "--measure-only", "--om", path, "--shapes", args.shapes],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    mib = 1 << 20
    print(f"om: {om_bytes / mib:.0f} MiB")
    for key in ("rss_before_load", "peak_rss", "rss_after", "rss_anon_after", "rss_file_after"):
        print(f"{key}: {result[key] / mib:.0f} MiB")
    for p in result["plans"]:
        share = "" if p["share_s"] is None else f", sharing {p['share_s'] * 1e3:.1f} ms"
        print(
            f"{p['shape']}: planned in {p['plan_s'] * 1e3:.0f} ms{share}, first run "
            f"{p['first_run_s'] * 1e3:.0f} ms"
        )
    print(f"cached plans: {result['cached']}; weights: {result['weights']}")


if __name__ == "__main__":
    main()
