"""Static memory planning: offsets in one work arena for tensors with known lifetimes.

A tensor lives from the task that writes it to the last task that reads it. Tensors whose
lifetimes do not overlap may share bytes. Placement is greedy: largest first, each at the
lowest aligned offset that fits between the tensors already placed whose lifetimes overlap it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openge.errors import INTERNAL_ERROR, GeError
from openge.om.plan import ARENA_ALIGN


@dataclass(frozen=True)
class Lifetime:
    """One arena tensor: its size in bytes and the first/last task index that touch it."""

    key: int
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets by tensor key, the arena size, and the figures the compile report shows."""

    offsets: dict[int, int]
    arena_size: int
    lower_bound: int
    no_reuse_size: int


def align_up(value: int, alignment: int = ARENA_ALIGN) -> int:
    """``value`` rounded up to a multiple of ``alignment``."""
    return (value + alignment - 1) // alignment * alignment


def _overlaps(a: Lifetime, b: Lifetime) -> bool:
    return a.first <= b.last and b.first <= a.last


def live_lower_bound(tensors: Sequence[Lifetime]) -> int:
    """The largest total of aligned bytes live at one task: no plan can be smaller."""
    events: dict[int, int] = {}
    for t in tensors:
        size = align_up(t.size)
        events[t.first] = events.get(t.first, 0) + size
        events[t.last + 1] = events.get(t.last + 1, 0) - size
    peak = live = 0
    for step in sorted(events):
        live += events[step]
        peak = max(peak, live)
    return peak


def plan_memory(tensors: Sequence[Lifetime], *, reuse: bool = True) -> MemoryPlan:
    """Place every tensor in one arena (512-byte aligned offsets)."""
    offsets: dict[int, int] = {}
    no_reuse = 0
    for t in tensors:
        no_reuse += align_up(t.size)
    if not reuse:
        cursor = 0
        for t in tensors:
            offsets[t.key] = cursor
            cursor += align_up(t.size)
        return MemoryPlan(offsets, cursor, live_lower_bound(tensors), no_reuse)
    placed: list[tuple[Lifetime, int]] = []
    arena = 0
    for t in sorted(tensors, key=lambda t: (-t.size, t.first, t.key)):
        size = align_up(t.size)
        busy = sorted(
            (off, off + align_up(other.size)) for other, off in placed if _overlaps(t, other)
        )
        best = None
        cursor = 0
        for start, end in busy:
            if start - cursor >= size and (best is None or start - cursor < best[1]):
                best = (cursor, start - cursor)
            cursor = max(cursor, end)
        offset = best[0] if best is not None else cursor
        offsets[t.key] = offset
        placed.append((t, offset))
        arena = max(arena, offset + size)
    return MemoryPlan(offsets, arena, live_lower_bound(tensors), no_reuse)


def check_plan(tensors: Sequence[Lifetime], plan: MemoryPlan) -> None:
    """Raise GeError when two tensors with overlapping lifetimes share bytes, or one leaves the
    arena or is misaligned (used by the tests on every compiled model)."""
    items = sorted(tensors, key=lambda t: t.first)
    for i, a in enumerate(items):
        off_a = plan.offsets[a.key]
        if off_a % ARENA_ALIGN or off_a + a.size > plan.arena_size:
            raise GeError(INTERNAL_ERROR, f"tensor {a.key} misplaced at {off_a} (+{a.size})")
        for b in items[i + 1:]:
            if b.first > a.last:
                break
            off_b = plan.offsets[b.key]
            if a.size and b.size and off_a < off_b + b.size and off_b < off_a + a.size:
                raise GeError(
                    INTERNAL_ERROR,
                    f"memory plan overlap: tensors {a.key} and {b.key} are live together "
                    f"but share bytes ({off_a}+{a.size} vs {off_b}+{b.size})",
                )
