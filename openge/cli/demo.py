"""``openge demo``: build a small CNN with GraphBuilder, compile, save, load and run it.

The weights are fixed random values; the output is checked against a NumPy reference written
here independently of openge's kernels. No files are needed (the .om goes to a temp folder).
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from openge.es import GraphBuilder
from openge.es import all as es
from openge.graph import DataType, Format, Graph
from openge.offline_compile import build_finalize, build_initialize, build_model, save_model
from openge.runtime import Model
from openge.session import GeApi, GeSession

BATCH, CHANNELS, SIZE, FILTERS, CLASSES = 2, 3, 16, 8, 10
BN_EPSILON = 1e-5


def demo_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """The CNN's fixed random weights."""
    rng = np.random.default_rng(seed)
    pooled = FILTERS * (SIZE // 2) * (SIZE // 2)
    return {
        "conv_w": rng.normal(0, 0.3, (FILTERS, CHANNELS, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(0, 0.1, (FILTERS,)).astype(np.float32),
        "bn_mean": rng.normal(0, 0.1, (FILTERS,)).astype(np.float32),
        "bn_var": rng.uniform(0.5, 1.5, (FILTERS,)).astype(np.float32),
        "bn_scale": rng.uniform(0.5, 1.5, (FILTERS,)).astype(np.float32),
        "bn_offset": rng.normal(0, 0.1, (FILTERS,)).astype(np.float32),
        "fc_w": rng.normal(0, 0.05, (pooled, CLASSES)).astype(np.float32),
        "fc_b": rng.normal(0, 0.1, (CLASSES,)).astype(np.float32),
    }


def build_cnn(weights: dict[str, np.ndarray]) -> Graph:
    """conv3x3 → BN → relu → maxpool2x2 → flatten → matmul + bias → softmax."""
    builder = GraphBuilder("demo_cnn")
    x = builder.create_input(
        0, "image", DataType.DT_FLOAT, Format.FORMAT_NCHW, [BATCH, CHANNELS, SIZE, SIZE]
    )

    def const(name: str):
        value = weights[name]
        return builder.create_const_float(value.reshape(-1).tolist(), list(value.shape))

    conv = es.Conv2D(
        x,
        const("conv_w"),
        const("conv_b"),
        strides=[1, 1, 1, 1],
        pads=[1, 1, 1, 1],
        data_format="NCHW",
    )
    momentum = builder.create_const_float([1.0], [1])  # used only in CANN's Caffe form
    bn = es.BNInference(
        conv,
        const("bn_mean"),
        const("bn_var"),
        momentum,
        const("bn_scale"),
        const("bn_offset"),
        epsilon=BN_EPSILON,
    )
    act = es.Relu(bn)
    pool = es.MaxPoolV3(
        act,
        ksize=[1, 1, 2, 2],
        strides=[1, 1, 2, 2],
        data_format="NCHW",
    )
    flat = es.Reshape(pool, builder.create_vector_int64([BATCH, -1]))
    logits = es.MatMulV2(flat, const("fc_w"), const("fc_b"))
    probs = es.SoftmaxV2(logits, axes=[-1])
    builder.set_graph_output(probs, 0)
    return builder.build_and_reset()


def reference(image: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The same network in plain NumPy (float64), written without openge."""
    x = np.pad(image.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((BATCH, FILTERS, SIZE, SIZE))
    for i in range(3):
        for j in range(3):
            patch = x[:, :, i : i + SIZE, j : j + SIZE]
            conv += np.einsum("nchw,fc->nfhw", patch, w["conv_w"][:, :, i, j])
    conv += w["conv_b"][None, :, None, None]
    shape = (1, FILTERS, 1, 1)
    bn = (conv - w["bn_mean"].reshape(shape)) / np.sqrt(w["bn_var"].reshape(shape) + BN_EPSILON)
    bn = bn * w["bn_scale"].reshape(shape) + w["bn_offset"].reshape(shape)
    act = np.maximum(bn, 0)
    pool = act.reshape(BATCH, FILTERS, SIZE // 2, 2, SIZE // 2, 2).max(axis=(3, 5))
    logits = pool.reshape(BATCH, -1) @ w["fc_w"] + w["fc_b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run_demo(out=print) -> bool:
    """Run the demo, printing to ``out``; True when every path matches the reference."""
    weights = demo_weights()
    graph = build_cnn(weights)
    image = np.random.default_rng(1).normal(size=(BATCH, CHANNELS, SIZE, SIZE)).astype(np.float32)
    expected = reference(image, weights)
    out(f"openge demo: {graph.name}, {len(graph)} nodes, input {list(image.shape)}")

    GeApi.ge_initialize({})
    try:
        with GeSession({}) as session:
            session.add_graph(1, graph)
            start = time.perf_counter()
            session.compile_graph(1)
            compile_ms = (time.perf_counter() - start) * 1e3
            result = session.run_graph(1, [image])[0].numpy()
            times = []
            for _ in range(20):
                start = time.perf_counter()
                session.run_graph(1, [image])
                times.append((time.perf_counter() - start) * 1e3)
    finally:
        GeApi.ge_finalize()
    err = float(np.max(np.abs(result - expected)))
    ok = err < 1e-5
    out(
        f"run_graph: compile {compile_ms:.1f} ms, median run {np.median(times):.3f} ms "
        f"over {len(times)} runs, max |openge - numpy| = {err:.2e} {'OK' if ok else 'MISMATCH'}"
    )

    build_initialize({})
    try:
        buffer = build_model(graph)
        with tempfile.TemporaryDirectory() as folder:
            path = save_model(os.path.join(folder, "demo_cnn"), buffer)
            with Model.from_file(path) as model:
                from_file = model.execute([image])[0]
            out(
                f"saved {os.path.basename(path)} ({os.path.getsize(path)} bytes); "
                f"inputs {[(d.name, list(d.shape)) for d in model.inputs]}"
            )
        with Model.from_bytes(buffer) as model:
            from_mem = model.execute([image])[0]
    finally:
        build_finalize()
    same = np.array_equal(from_file, result) and np.array_equal(from_mem, result)
    out(
        f"load from file and from memory: outputs {'bit-identical' if same else 'DIFFER'} "
        "to run_graph"
    )
    out("class probabilities (sample 0): " + " ".join(f"{p:.3f}" for p in result[0]))
    return ok and same
