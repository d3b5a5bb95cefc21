"""A dynamic-shape model's plans share their weights: with the loaded .om's own constants (no
copy) and with each other (content-addressed), and an evicted plan frees what only it used."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from openge.compiler import compile_graph
from openge.errors import LOAD_MODEL, GeError
from openge.graph import Graph, Tensor, TensorDesc
from openge.graph.types import as_data_type
from openge.om.plan import CompiledModel, IODesc, Slot, SlotKind, Task
from openge.om.writer import serialize
from openge.parser import parse_onnx
from openge.runtime.model import Model
from openge.runtime.weight_share import SAMPLE_BYTES, SharedWeights, fingerprint, same_bytes

D_IN, D_MID, D_OUT, MAX_LEN = 256, 1024, 512, 64
RNG = np.random.default_rng(3)
W1 = RNG.normal(0, 0.05, (D_IN, D_MID)).astype(np.float32)  # 1 MiB, used as stored
W2 = RNG.normal(0, 0.05, (D_OUT, D_MID)).astype(np.float32)  # 2 MiB, used transposed (a fold)
POS = RNG.normal(0, 0.05, (MAX_LEN, D_OUT)).astype(np.float32)  # rows [0, seq): a fold per seq

# 8 (batch, seq) pairs; seq 16 twice: the two plans' position folds are equal bytes
SHAPES = [(1, 1), (1, 3), (2, 5), (3, 8), (1, 16), (2, 16), (4, 7), (2, 33)]


def _model_proto() -> onnx.ModelProto:
    """x [batch, seq, 256] → Relu(x @ W1) @ Transpose(W2) + POS[0:seq]."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Transpose", ["w2"], ["w2t"], perm=[1, 0]),
        helper.make_node("MatMul", ["r", "w2t"], ["m"]),
        helper.make_node("Shape", ["x"], ["len1"], start=1, end=2),
        helper.make_node("Squeeze", ["len1"], ["len"]),
        helper.make_node("Range", ["zero", "len", "one"], ["positions"]),
        helper.make_node("Gather", ["pos", "positions"], ["p"]),
        helper.make_node("Add", ["m", "p"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(W1, "w1"),
        numpy_helper.from_array(W2, "w2"),
        numpy_helper.from_array(POS, "pos"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array(1, np.int64), "one"),
    ]
    graph = helper.make_graph(
        nodes,
        "shared_weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", D_IN])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", D_OUT])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _reference(x: np.ndarray) -> np.ndarray:
    """NumPy, written here: the same computation in float64."""
    h = np.maximum(x.astype(np.float64) @ W1.astype(np.float64), 0)
    return h @ W2.T.astype(np.float64) + POS[: x.shape[1]].astype(np.float64)


def _input(batch: int, seq: int) -> np.ndarray:
    return (
        np.random.default_rng(batch * 100 + seq).normal(size=(batch, seq, D_IN)).astype(np.float32)
    )


@pytest.fixture(scope="module")
def om_bytes() -> bytes:
    compiled = compile_graph(parse_onnx(_model_proto()))
    assert compiled.is_dynamic
    return bytes(serialize(compiled, online=False))


def _plan_arrays(model: Model) -> list[np.ndarray]:
    """Every WEIGHT array the cached plans' tasks read."""
    found = []
    for plan in model.dynamic._cache.values():
        for weights in plan.weights:
            found.extend(weights.arrays.values())
    return found


def test_eight_shapes_hold_the_weights_once_and_match_numpy(om_bytes):
    model = Model.from_bytes(om_bytes)
    assert model.dynamic.cache_size == 8
    for batch, seq in SHAPES:
        x = _input(batch, seq)
        (y,) = model.execute([x])
        assert y.shape == (batch, seq, D_OUT)
        np.testing.assert_allclose(y, _reference(x), rtol=1e-4, atol=1e-4, err_msg=f"{batch}x{seq}")
    stats = model.dynamic.stats()
    assert stats["cached"] == 8 and stats["plans_made"] == 8
    one_copy = W1.nbytes + W2.nbytes
    # what 8 private copies would take …
    assert stats["plan_weight_bytes"] >= 8 * one_copy
    # … and what is held: the .om's own constants (W1 and W2 as stored, POS) plus, once, the
    # transposed W2 and one position table per distinct length (7: 16 is twice)
    assert stats["original_weight_bytes"] >= W1.nbytes + W2.nbytes + POS.nbytes
    folds = W2.nbytes + sum(s * D_OUT * 4 for s in {s for _, s in SHAPES})
    assert folds <= stats["shared_weight_bytes"] <= folds + 4096
    assert stats["plan_weight_bytes"] > 4 * (
        stats["original_weight_bytes"] + stats["shared_weight_bytes"]
    )
    # W1 is read straight from the loaded .om buffer by every plan (no copy)
    buffer = np.frombuffer(om_bytes, np.uint8)
    big = [a for a in _plan_arrays(model) if a.nbytes >= W1.nbytes]
    from_om = [a for a in big if np.shares_memory(a, buffer)]
    assert len(from_om) == 8 and all(a.shape == W1.shape for a in from_om)
    # the transposed W2 of every plan is one buffer
    transposed = [a for a in big if a.shape == (D_MID, D_OUT)]
    assert len(transposed) == 8
    assert len({a.__array_interface__["data"][0] for a in transposed}) == 1
    np.testing.assert_array_equal(transposed[0], W2.T)
    # no plan keeps (or ever built) a weights blob of its own
    assert all(p.model.compiled.weights == b"" for p in model.dynamic._cache.values())
    # planning time spent sharing is reported and small next to the plan
    assert 0 <= stats["last_share_seconds"] < model.dynamic.last_plan_seconds


def test_cached_plans_rerun_after_sharing(om_bytes):
    model = Model.from_bytes(om_bytes)
    for batch, seq in SHAPES[:3] * 2:  # the second round runs cached plans
        x = _input(batch, seq)
        np.testing.assert_allclose(model.execute([x])[0], _reference(x), rtol=1e-4, atol=1e-4)
    assert model.dynamic.stats()["cache_hits"] == 3


def test_eviction_frees_the_tensors_only_the_evicted_plan_used(om_bytes):
    model = Model.from_bytes(om_bytes)
    model.dynamic.cache_size = 2
    model.execute([_input(1, 5)])
    (plan,) = model.dynamic._cache.values()
    only_mine = [a for a in plan.weights[0].arrays.values() if a.shape == (5, D_OUT)]
    assert len(only_mine) == 1
    np.testing.assert_array_equal(only_mine[0], POS[:5])
    # the position table's owner, held only by this plan
    owner = only_mine[0].base if only_mine[0].base is not None else only_mine[0]
    alive = weakref.ref(owner)
    del only_mine, owner, plan
    shared_w2t = model.dynamic.stats()["shared_weight_bytes"]
    model.execute([_input(1, 9)])
    gc.disable()  # freed by the eviction itself, not by a later garbage collection
    try:
        model.execute([_input(1, 12)])  # evicts the seq-5 plan
        assert alive() is None
    finally:
        gc.enable()
    stats = model.dynamic.stats()
    assert stats["cached"] == 2
    # held: the transposed W2 once and the tables of the two cached lengths
    assert stats["shared_weight_bytes"] - (9 + 12) * D_OUT * 4 == shared_w2t - 5 * D_OUT * 4
    x = _input(2, 9)
    np.testing.assert_allclose(model.execute([x])[0], _reference(x), rtol=1e-4, atol=1e-4)


def test_run_graph_model_shares_with_the_callers_constants():
    """A dynamic model compiled in memory (no .om): the graph's own arrays are the originals."""
    model = Model(compile_graph(parse_onnx(_model_proto())))
    for batch, seq in SHAPES[:4]:
        x = _input(batch, seq)
        np.testing.assert_allclose(model.execute([x])[0], _reference(x), rtol=1e-4, atol=1e-4)
    stats = model.dynamic.stats()
    assert stats["shared_weight_bytes"] < W2.nbytes + MAX_LEN * D_OUT * 4 * 4 + 4096
    assert stats["plan_weight_bytes"] >= 4 * (W1.nbytes + W2.nbytes)


# ----- the content-addressed store on its own ---------------------------------------------------


def _plan_of(values: list[np.ndarray]) -> CompiledModel:
    """A compiled plan whose tasks read each value as a WEIGHT (Identity to an output)."""
    g = Graph("p")
    tasks, outputs, offsets, blob, offset = [], [], {}, bytearray(), 0
    for i, value in enumerate(values):
        g.add_node("Const", name=f"c{i}", attrs={"value": Tensor(value)})
        desc = TensorDesc(as_data_type(value.dtype), value.shape)
        offsets[f"c{i}"] = [offset, value.nbytes]
        blob.extend(value.tobytes())
        w = Slot(SlotKind.WEIGHT, offset, desc.dtype, desc.shape)
        tasks.append(
            Task(f"t{i}", "Identity", (w,), (Slot(SlotKind.OUTPUT, i, desc.dtype, desc.shape),))
        )
        outputs.append(IODesc(f"y{i}", desc.dtype, desc.shape))
        offset += value.nbytes
    return CompiledModel(
        name="p",
        graph=g,
        tasks=tasks,
        inputs=[],
        outputs=outputs,
        weights=blob,
        stats={"const_offsets": offsets},
    )


def test_equal_bytes_are_one_buffer_and_a_sampled_collision_is_not():
    big = np.arange(SAMPLE_BYTES, dtype=np.float32)  # 4 × SAMPLE_BYTES bytes: sampled
    store = SharedWeights(Graph("empty"))
    _, first = store.adopt(_plan_of([big.copy()]))
    _, again = store.adopt(_plan_of([big.copy()]))
    (a,), (b,) = first.arrays.values(), again.arrays.values()
    assert np.shares_memory(a, b)
    # one byte changed where the fingerprint does not look: same fingerprint, other bytes
    other = big.copy()
    flat = other.view(np.uint8)
    flat[1 << 10 + 1] ^= 0xFF  # inside the first gap between sampled chunks
    assert fingerprint(flat) == fingerprint(big.view(np.uint8))
    assert not same_bytes(flat, big.view(np.uint8))
    compiled, third = store.adopt(_plan_of([other]))
    (c,) = third.arrays.values()
    assert not np.shares_memory(c, a)
    np.testing.assert_array_equal(c, other)
    assert compiled.weights == b""  # the plan's blob is released
    assert sum(x.nbytes for x in store.held()) == 2 * big.nbytes


def test_a_fold_equal_to_an_original_is_served_from_the_original():
    original = np.linspace(0, 1, 5000, dtype=np.float32)
    g = Graph("model")
    g.add_node("Const", name="w", attrs={"value": Tensor(original)})
    store = SharedWeights(g)
    _, plan = store.adopt(_plan_of([original.copy(), original[:100]]))
    arrays = list(plan.arrays.values())
    assert all(np.shares_memory(a, original) for a in arrays)  # a copy's bytes, and a view
    assert list(store.held()) == [] and plan.owned == []
    assert store.fingerprints == 2  # the copy and the same-size original, once each


def test_model_weight_arrays_hook_refuses_a_missing_offset():
    compiled = _plan_of([np.ones(4, np.float32)])
    with pytest.raises(GeError) as err:
        Model(compiled, weight_arrays={})
    assert err.value.code == LOAD_MODEL
    out = Model(compiled, weight_arrays={0: np.full(4, 7, np.float32)}).execute([])
    np.testing.assert_array_equal(out[0], np.full(4, 7, np.float32))
