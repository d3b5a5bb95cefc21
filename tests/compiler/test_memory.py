"""Memory planner: no two live tensors overlap, alignment, reuse, bounds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openge.compiler import compile_graph
from openge.compiler.memory import (
    INPLACE_OPS,
    STRATEGIES,
    Lifetime,
    MemoryPlan,
    check_plan,
    live_lower_bound,
    merge_inplace,
    plan_from_stats,
    plan_memory,
)
from openge.compiler.passes.cancel_inverse_ops import RESHAPE_LIKE
from openge.errors import GeError
from openge.graph import DataType, Graph, TensorDesc, from_numpy_dtype
from openge.om.plan import SlotKind
from openge.ops import evaluate, get_schema, has_op, infer_node
from openge.ops.fused import INPLACE_SAFE_FLOAT_OPS

from .models import ALL_MODELS


@st.composite
def lifetimes(draw):
    n = draw(st.integers(1, 40))
    out = []
    for key in range(n):
        first = draw(st.integers(0, 30))
        last = first + draw(st.integers(0, 10))
        out.append(Lifetime(key, draw(st.integers(0, 5000)), first, last))
    return out


@settings(max_examples=60, deadline=None)
@given(lifetimes(), st.booleans())
def test_plan_never_overlaps_live_tensors(tensors, reuse):
    plan = plan_memory(tensors, reuse=reuse)
    check_plan(tensors, plan)
    assert plan.lower_bound <= plan.arena_size <= plan.no_reuse_size
    assert all(off % 512 == 0 for off in plan.offsets.values())


def test_disjoint_lifetimes_share_memory():
    tensors = [Lifetime(0, 1000, 0, 1), Lifetime(1, 1000, 2, 3), Lifetime(2, 1000, 4, 5)]
    plan = plan_memory(tensors)
    assert plan.arena_size == 1024
    assert plan_memory(tensors, reuse=False).arena_size == 3 * 1024


def test_chain_uses_two_buffers():
    # a → b → c → d: each tensor is live with its producer's input only.
    tensors = [Lifetime(i, 4096, i, i + 1) for i in range(10)]
    plan = plan_memory(tensors)
    assert plan.arena_size == 2 * 4096 == live_lower_bound(tensors)


def test_check_plan_catches_overlap():
    tensors = [Lifetime(0, 100, 0, 2), Lifetime(1, 100, 1, 3)]
    bad = MemoryPlan({0: 0, 1: 0}, 512, 0, 0)
    with pytest.raises(GeError, match="overlap"):
        check_plan(tensors, bad)


# ----- in-place merging, strategies, the checker --------------------------------------------------


@st.composite
def lifetimes_with_inplace(draw):
    tensors = draw(lifetimes())
    pairs = draw(st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=20))
    # make some candidates valid: an output born where its input dies, same size
    extra = []
    for t in tensors[: len(tensors) // 2]:
        key = len(tensors) + len(extra)
        extra.append(Lifetime(key, t.size, t.last, t.last + draw(st.integers(0, 5))))
        pairs.append((key, t.key))
    return tensors + extra, pairs


@settings(max_examples=60, deadline=None)
@given(lifetimes_with_inplace(), st.sampled_from([None, *[[s] for s in STRATEGIES]]))
def test_plans_with_inplace_never_overlap(case, strategies):
    tensors, pairs = case
    plan = plan_memory(tensors, inplace=pairs, strategies=strategies)
    check_plan(tensors, plan)
    assert plan.lower_bound <= plan.arena_size <= plan.no_reuse_size
    by_key = {t.key: t for t in tensors}
    for out, src in plan.aliases.items():
        assert by_key[src].last == by_key[out].first
        assert by_key[src].size == by_key[out].size
        assert plan.offsets[out] == plan.offsets[src]


@settings(max_examples=30, deadline=None)
@given(lifetimes())
def test_hybrid_keeps_the_smallest_strategy(tensors):
    best = min(plan_memory(tensors, strategies=[s]).arena_size for s in STRATEGIES)
    assert plan_memory(tensors).arena_size == best


def test_inplace_chain_is_one_buffer():
    # t0 -> relu (t1) -> mul (t2): each input dies at the task writing the next
    tensors = [Lifetime(0, 4096, 0, 1), Lifetime(1, 4096, 1, 2), Lifetime(2, 4096, 2, 3)]
    plan = plan_memory(tensors, inplace=[(1, 0), (2, 1)])
    assert plan.aliases == {1: 0, 2: 1}
    assert plan.arena_size == 4096 == plan.lower_bound
    check_plan(tensors, plan)
    buffers, buffer_of, _ = merge_inplace(tensors, [(1, 0), (2, 1)])
    assert [(b.first, b.last) for b in buffers] == [(0, 3)]
    assert set(buffer_of.values()) == {0}


def test_inplace_candidates_in_a_cycle_or_out_of_order_keep_every_buffer():
    # hypothesis found this: two size-1 tensors living in task 0, each the other's candidate
    tensors = [Lifetime(1, 1, 0, 0), Lifetime(30, 1, 0, 0)]
    plan = plan_memory(tensors, inplace=[(1, 30), (30, 1)])
    assert plan.aliases == {1: 30}
    check_plan(tensors, plan)
    # a chain offered tail first: 2 joins 1's buffer, then 1 (with 2) joins 0's
    chain = [Lifetime(0, 64, 0, 1), Lifetime(1, 64, 1, 2), Lifetime(2, 64, 2, 3)]
    buffers, buffer_of, aliases = merge_inplace(chain, [(2, 1), (1, 0)])
    assert aliases == {2: 1, 1: 0}
    assert [(b.key, b.first, b.last) for b in buffers] == [(0, 0, 3)]
    assert buffer_of == {0: 0, 1: 0, 2: 0}
    plan = plan_memory(chain, inplace=[(2, 1), (1, 0)])
    check_plan(chain, plan)
    assert plan.arena_size == plan_memory([Lifetime(0, 64, 0, 3)]).arena_size  # one buffer


def test_a_long_chain_offered_tail_first_is_one_buffer():
    # every join moves a whole chain: the union-find keeps 20k joins near-linear (0.07 s; the
    # scan of the tensor map per join was quadratic, ~25 s), and every tensor maps to the head
    n = 20_000
    chain = [Lifetime(k, 256, k, k + 1) for k in range(n)]
    pairs = [(k, k - 1) for k in range(n - 1, 0, -1)]
    buffers, buffer_of, aliases = merge_inplace(chain, pairs)
    assert [(b.key, b.first, b.last) for b in buffers] == [(0, 0, n)]
    assert set(buffer_of.values()) == {0} and len(buffer_of) == n
    assert aliases == {k: k - 1 for k in range(1, n)}


def test_inplace_refused_when_the_input_lives_on_or_sizes_differ():
    tensors = [
        Lifetime(0, 4096, 0, 3),
        Lifetime(1, 4096, 1, 2),
        Lifetime(2, 1024, 2, 3),
        Lifetime(3, 4096, 1, 2),
    ]
    plan = plan_memory(tensors, inplace=[(1, 0), (2, 1), (1, 3)])
    assert plan.aliases == {}
    check_plan(tensors, plan)


def test_no_reuse_takes_no_inplace():
    tensors = [Lifetime(0, 4096, 0, 1), Lifetime(1, 4096, 1, 2)]
    plan = plan_memory(tensors, reuse=False, inplace=[(1, 0)])
    assert plan.aliases == {} and plan.arena_size == 8192


def test_check_plan_rejects_bad_aliases_and_placements():
    tensors = [Lifetime(0, 100, 0, 2), Lifetime(1, 100, 1, 3)]
    # declared in place, but the input is still live after the output is born
    with pytest.raises(GeError, match="not in-place"):
        check_plan(tensors, MemoryPlan({0: 0, 1: 0}, 512, 0, 0, aliases={1: 0}))
    with pytest.raises(GeError, match="misplaced"):
        check_plan(tensors, MemoryPlan({0: 0, 1: 100}, 1024, 0, 0))
    with pytest.raises(GeError, match="misplaced"):
        check_plan(tensors, MemoryPlan({0: 0, 1: 512}, 600, 0, 0))
    with pytest.raises(GeError, match="no offset"):
        check_plan(tensors, MemoryPlan({0: 0}, 1024, 0, 0))


def test_unknown_strategy_is_an_error():
    with pytest.raises(GeError, match="unknown memory strategy"):
        plan_memory([Lifetime(0, 10, 0, 0)], strategies=["magic"])


def test_bad_lifetime_is_an_error():
    with pytest.raises(GeError, match="bad lifetime"):
        Lifetime(0, 10, 3, 2)


# ----- kernels that the planner runs in place -----------------------------------------------------


def _alias_cases(op: str, dtype: np.dtype) -> list[tuple[list[np.ndarray], dict]] | None:
    rng = np.random.default_rng(0)
    schema = get_schema(op)
    required = [i for i in schema.inputs if not i.optional]
    if op in RESHAPE_LIKE or op == "Identity":
        return None  # covered by test_reshape_like_kernels_tolerate_aliasing
    attrs: dict = {}
    if op == "Cast":
        same_size = {
            np.dtype(np.float32): DataType.DT_INT32,
            np.dtype(np.float16): DataType.DT_INT16,
            np.dtype(np.int32): DataType.DT_FLOAT,
        }
        attrs = {"dst_type": same_size[np.dtype(dtype)]}
    cases = []
    ranges = ((1, 9), (-9, 9)) if dtype.kind == "i" else ((0.1, 0.9), (-0.9, 0.9), (1.5, 3.0))
    for lo, hi in ranges:
        values = [rng.uniform(lo, hi, size=(3, 5)).astype(dtype) for _ in required]
        if dtype.kind == "i":
            values = [np.where(v == 0, 1, v).astype(dtype) for v in values]
        if op.startswith("Logical"):
            values = [v > 0.5 for v in values]
        if op == "ClipByValue":
            values = [values[0], np.asarray(0.3, dtype), np.asarray(0.6, dtype)]
        cases.append((values, attrs))
    return cases


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32])
def test_inplace_kernels_tolerate_output_aliasing_an_input(dtype):
    """Every registered op the planner may run in place gives the same result when its output
    is the very array of one of its inputs (what an in-place task does)."""
    checked = []
    for op in sorted(INPLACE_OPS - {"FusedElementwise"}):
        if not has_op(op) or (op in INPLACE_SAFE_FLOAT_OPS and np.dtype(dtype).kind != "f"):
            continue
        cases = _alias_cases(op, np.dtype(dtype))
        if cases is None:
            continue
        schema = get_schema(op)
        for values, attrs in cases:
            g = Graph("alias")
            ports = []
            for i, v in enumerate(values):
                dt = from_numpy_dtype(v.dtype)
                node = g.add_node(
                    "Data", attrs={"index": i}, output_descs=[TensorDesc(dt, v.shape)]
                )
                ports.append(node.output(0))
            node = g.add_node(op, ports, attrs=attrs)
            try:
                norm, descs = infer_node(node)
            except GeError:
                break  # the op does not take this dtype
            with np.errstate(all="ignore"):
                ref = evaluate(schema, norm, values, descs)[0]
                for i, v in enumerate(values):
                    if v.nbytes != ref.nbytes or v.ndim == 0:
                        continue
                    copies = [a.copy() for a in values]
                    out = np.ndarray(ref.shape, ref.dtype, buffer=copies[i])
                    schema.kernel(copies, [out], **{k: norm[k] for k in schema.kernel_attrs})
                    np.testing.assert_array_equal(out, ref, err_msg=f"{op} aliased input {i}")
                    checked.append(op)
    assert {"Add", "Mul", "Cast"} <= set(checked)


def test_reshape_like_kernels_tolerate_aliasing():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for op, shape in (("Reshape", (4, 3)), ("Flatten", (3, 4)), ("Identity", (3, 4))):
        schema = get_schema(op)
        buf = x.copy()
        out = np.ndarray(shape, np.float32, buffer=buf)
        schema.kernel(
            [buf, np.array(shape, np.int64)][: len(schema.inputs)],
            [out],
            **{k: {"axis": 1}[k] for k in schema.kernel_attrs},
        )
        np.testing.assert_array_equal(out.reshape(-1), x.reshape(-1))


# ----- every test model: a valid plan within 1.3× of the lower bound -------------------------


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_compiled_models_have_valid_tight_plans(name):
    b = ALL_MODELS[name]()
    model = compile_graph(b.g, {})
    tensors, plan = plan_from_stats(model.stats, model.memory_size)
    check_plan(tensors, plan)
    assert plan.lower_bound <= model.memory_size <= 1.3 * plan.lower_bound
    assert all(off % 512 == 0 for off in plan.offsets.values())
    assert model.memory_size % 512 == 0


def test_inplace_tasks_share_their_input_slot():
    b = ALL_MODELS["attention"]()
    model = compile_graph(b.g, {"ge.oo.level": "O1"})
    assert model.stats["arena_aliases"]
    in_place = [
        t
        for t in model.tasks
        if t.outputs[0].kind == SlotKind.ARENA
        and any(s.kind == SlotKind.ARENA and s.offset == t.outputs[0].offset for s in t.inputs)
    ]
    assert in_place
    assert all(t.op_type in INPLACE_OPS for t in in_place)
