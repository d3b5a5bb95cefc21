"""End to end: an MLP, a CNN and a transformer attention block built with GraphBuilder run
through a session, a saved .om and a buffer, and match NumPy references written here."""

from __future__ import annotations

import numpy as np
import pytest

from openge.cli.demo import build_cnn, demo_weights, reference
from openge.es import GraphBuilder
from openge.es import all as es
from openge.graph import DataType, Format
from openge.offline_compile import build_finalize, build_initialize, build_model, save_model
from openge.runtime import Model
from openge.session import GeSession

RNG = np.random.default_rng(11)


def const(builder, array):
    array = np.asarray(array, np.float32)
    return builder.create_const_float(array.reshape(-1).tolist(), list(array.shape))


def run_everywhere(graph, inputs, tmp_path):
    """Outputs of run_graph, Model.from_bytes and Model.from_file (must be bit-identical)."""
    with GeSession({"ge.exec.variable_acc": "False"}) as s:
        s.add_graph(1, graph)
        via_session = [t.numpy() for t in s.run_graph(1, inputs)]
    build_initialize({})
    try:
        buf = build_model(graph)
        path = save_model(str(tmp_path / graph.name), buf)
    finally:
        build_finalize()
    with Model.from_bytes(buf) as m:
        via_buffer = m.execute(inputs)
    with Model.from_file(path) as m:
        via_file = m.execute(inputs)
    for a, b, c in zip(via_session, via_buffer, via_file):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    return via_session


def test_mlp_matches_numpy(ge, tmp_path):
    w1, b1 = RNG.normal(size=(20, 64)), RNG.normal(size=(64,))
    w2, b2 = RNG.normal(size=(64, 10)) * 0.1, RNG.normal(size=(10,))
    b = GraphBuilder("mlp")
    x = b.create_input(0, "x", DataType.DT_FLOAT, Format.FORMAT_ND, [8, 20])
    h = es.Relu(es.MatMulV2(x, const(b, w1), const(b, b1)))
    logits = es.Add(h @ const(b, w2), const(b, b2))
    b.set_graph_output(es.SoftmaxV2(logits, axes=[-1]), 0)
    graph = b.build_and_reset()
    xv = RNG.normal(size=(8, 20)).astype(np.float32)
    (got,) = run_everywhere(graph, [xv], tmp_path)
    z = np.maximum(xv @ w1 + b1, 0) @ w2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_cnn_matches_numpy(ge, tmp_path):
    weights = demo_weights(seed=5)
    image = RNG.normal(size=(2, 3, 16, 16)).astype(np.float32)
    (got,) = run_everywhere(build_cnn(weights), [image], tmp_path)
    np.testing.assert_allclose(got, reference(image, weights), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_block_matches_numpy(ge, tmp_path, causal):
    seq, hidden, heads = 6, 16, 2
    dh = hidden // heads
    wq, wk, wv, wo = (RNG.normal(size=(hidden, hidden)) * 0.3 for _ in range(4))
    gamma, beta = RNG.uniform(0.5, 1.5, hidden), RNG.normal(size=hidden) * 0.1
    mask = np.triu(np.full((seq, seq), -1e9), 1) if causal else np.zeros((seq, seq))

    b = GraphBuilder("attention")
    x = b.create_input(0, "x", DataType.DT_FLOAT, Format.FORMAT_ND, [1, seq, hidden])

    def heads_first(t):  # [1, seq, hidden] -> [1, heads, seq, dh]
        t = es.Reshape(t, b.create_vector_int64([1, seq, heads, dh]))
        return es.Transpose(t, b.create_vector_int64([0, 2, 1, 3]))

    q = heads_first(es.BatchMatMulV2(x, const(b, wq)))
    k = heads_first(es.BatchMatMulV2(x, const(b, wk)))
    v = heads_first(es.BatchMatMulV2(x, const(b, wv)))
    scores = es.BatchMatMulV2(q, k, adj_x2=True) * const(b, [1.0 / np.sqrt(dh)])
    probs = es.SoftmaxV2(scores + const(b, mask), axes=[-1])
    ctx = es.Transpose(es.BatchMatMulV2(probs, v), b.create_vector_int64([0, 2, 1, 3]))
    ctx = es.Reshape(ctx, b.create_vector_int64([1, seq, hidden]))
    out = es.BatchMatMulV2(ctx, const(b, wo)) + x
    normed = es.LayerNorm(
        out, const(b, gamma), const(b, beta), begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5
    )
    b.set_graph_output(normed.y, 0)
    graph = b.build_and_reset()

    xv = RNG.normal(size=(1, seq, hidden)).astype(np.float32)
    (got,) = run_everywhere(graph, [xv], tmp_path)

    xd = xv.astype(np.float64)[0]

    def split(t):
        return t.reshape(seq, heads, dh).transpose(1, 0, 2)

    q_, k_, v_ = split(xd @ wq), split(xd @ wk), split(xd @ wv)
    s = q_ @ k_.transpose(0, 2, 1) / np.sqrt(dh) + mask
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    o = (p @ v_).transpose(1, 0, 2).reshape(seq, hidden) @ wo + xd
    mu, var = o.mean(axis=-1, keepdims=True), o.var(axis=-1, keepdims=True)
    expected = ((o - mu) / np.sqrt(var + 1e-5)) * gamma + beta
    np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-5)
