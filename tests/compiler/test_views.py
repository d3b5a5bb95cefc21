"""Views in task generation: reshape outputs and concatenation inputs live inside another
tensor's bytes, and their tasks disappear — with the same results, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.compiler.memory import check_plan, plan_from_stats
from openge.om.plan import SlotKind

from .models import Builder, run

NO_REUSE = {"ge.exec.disableReuseMemory": "1"}


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _task_outputs(model, op_type):
    return [t.outputs[0] for t in model.tasks if t.op_type == op_type]


def _concat(b: Builder, *xs, axis=1):
    return b.op("ConcatV2", *xs, b.const(np.array(axis, np.int32)), N=len(xs))


def test_reshape_and_concat_tasks_become_views():
    b = Builder("views")
    x0, x1 = b.input((1, 4, 5, 5)), b.input((1, 3, 5, 5))
    a = b.op("Relu", x0)
    e = b.op("Exp", x1)
    c = _concat(b, a, e)  # (1, 7, 5, 5)
    flat = b.op("Reshape", c, b.const(np.array([1, 175], np.int64)))
    g = b.done(b.op("Sigmoid", flat))
    model = compile_graph(g, {"ge.oo.level": "O1"})  # no fusion: Relu and Exp stay tasks
    kinds = [t.op_type for t in model.tasks]
    assert "ConcatV2" not in kinds and "Reshape" not in kinds
    assert model.stats["tasks_removed_by_views"] == 2
    (relu_out,) = _task_outputs(model, "Relu")
    (exp_out,) = _task_outputs(model, "Exp")
    (sig,) = [t for t in model.tasks if t.op_type == "Sigmoid"]
    assert relu_out.kind == exp_out.kind == sig.inputs[0].kind == SlotKind.ARENA
    # Relu and Exp write straight into the concatenation, which the Sigmoid reads reshaped
    assert exp_out.offset == relu_out.offset + 4 * 25 * 4
    assert sig.inputs[0].offset == relu_out.offset and sig.inputs[0].shape == (1, 175)
    check_plan(*plan_from_stats(model.stats, model.memory_size))

    feeds = b.feeds()
    expected = _sigmoid(np.concatenate([np.maximum(feeds[0], 0), np.exp(feeds[1])], 1))
    (got,) = run(g, feeds, {"ge.oo.level": "O1"})
    np.testing.assert_allclose(got, expected.reshape(1, 175), rtol=1e-6)
    (plain,) = run(g, feeds, {"ge.oo.level": "O1", **NO_REUSE})  # every task kept
    np.testing.assert_array_equal(got, plain)
    kept = compile_graph(g, {"ge.oo.level": "O1", **NO_REUSE})
    assert {"ConcatV2", "Reshape"} <= {t.op_type for t in kept.tasks}


def test_chained_concatenations_are_one_buffer():
    """DenseNet's pattern: each layer concatenates the previous concatenation and new features;
    every feature map is written once, into its place in the last concatenation."""
    b = Builder("dense")
    x = b.input((1, 2, 4, 4))
    features = b.op("Relu", x)
    new_maps = []
    for k in range(4):
        n = b.op("Tanh", b.op("Mul", features, b.const(np.float32(0.5 + k))))
        new_maps.append(n)
        features = _concat(b, features, n)
    g = b.done(b.op("Sigmoid", features))
    model = compile_graph(g, {"ge.oo.level": "O1"})
    assert not _task_outputs(model, "ConcatV2")
    (first,) = _task_outputs(model, "Relu")
    tanh_outs = _task_outputs(model, "Tanh")
    layer = 2 * 16 * 4  # bytes of the first (1, 2, 4, 4) map; each layer doubles the channels
    assert [s.offset - first.offset for s in tanh_outs] == [layer << k for k in range(4)]
    check_plan(*plan_from_stats(model.stats, model.memory_size))

    feeds = b.feeds()
    f = np.maximum(feeds[0], 0)
    for k in range(4):
        f = np.concatenate([f, np.tanh(f * np.float32(0.5 + k))], 1)
    (got,) = run(g, feeds, {"ge.oo.level": "O1"})
    np.testing.assert_allclose(got, _sigmoid(f), rtol=1e-6)
    np.testing.assert_array_equal(got, run(g, feeds, {"ge.oo.level": "O1", **NO_REUSE})[0])


def _unsafe_cases():
    def graph_input(b):  # a model input cannot be produced into the concatenation
        x = b.input((1, 3, 4))
        return _concat(b, x, b.op("Exp", x))

    def batch_of_two(b):  # along C with N = 2: the inputs' bytes interleave
        x = b.input((2, 3, 4))
        return _concat(b, b.op("Relu", x), b.op("Exp", x))

    def same_twice(b):  # one tensor cannot live in two places
        x = b.input((1, 3, 4))
        r = b.op("Relu", x)
        return _concat(b, r, r)

    def member_is_output(b):  # the member's bytes belong to the caller's output buffer
        x = b.input((1, 3, 4))
        r = b.op("Relu", x)
        return [_concat(b, r, b.op("Exp", x)), r]

    return [graph_input, batch_of_two, same_twice, member_is_output]


@pytest.mark.parametrize("case", _unsafe_cases(), ids=lambda f: f.__name__)
def test_concatenations_that_cannot_be_views_keep_their_task(case):
    b = Builder(case.__name__)
    outs = case(b)
    outs = outs if isinstance(outs, list) else [outs]
    g = b.done(b.op("Sigmoid", outs[0]), *outs[1:])
    model = compile_graph(g, {"ge.oo.level": "O1"})
    assert len(_task_outputs(model, "ConcatV2")) == 1
    feeds = b.feeds()
    got = run(g, feeds, {"ge.oo.level": "O1"})
    plain = run(g, feeds, {"ge.oo.level": "O1", **NO_REUSE})
    for u, v in zip(got, plain, strict=True):
        np.testing.assert_array_equal(u, v)


def test_views_keep_in_place_tasks_off_shared_bytes():
    """An elementwise op may write over an input that dies at its task — but not over a
    member of a concatenation, whose bytes the concatenation's readers still need."""
    b = Builder("inplace")
    x = b.input((1, 3, 8))
    r = b.op("Relu", x)
    c = _concat(b, r, b.op("Exp", x))
    neg = b.op("Neg", r)  # r's last reader: in place would overwrite part of c
    g = b.done(b.op("Add", b.op("Sigmoid", c), _concat(b, neg, neg)))
    feeds = b.feeds()
    f = feeds[0]
    rr = np.maximum(f, 0)
    expected = _sigmoid(np.concatenate([rr, np.exp(f)], 1)) + np.concatenate([-rr, -rr], 1)
    for options in ({"ge.oo.level": "O1"}, {}):
        (got,) = run(g, feeds, options)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
