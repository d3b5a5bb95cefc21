"""Memory planner: no two live tensors overlap, alignment, reuse, bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openge.compiler.memory import Lifetime, MemoryPlan, check_plan, live_lower_bound, plan_memory
from openge.errors import GeError


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
