"""Static memory planning: one work arena, an offset for every intermediate tensor (compiler layer).

A tensor lives from the task that writes it to the last task that reads it (both included).
Planning happens in three steps:

1. **In-place merging.** A task whose op tolerates its output aliasing an input (the op types in
   :data:`INPLACE_OPS`, e.g. ``Relu``, ``Add``, ``Reshape``) may write its output over an input
   that dies at that very task and has the same byte size. The two tensors become one *buffer*
   whose lifetime is the union of theirs. Chains of such ops (``Add → Relu → Mul``) make one
   buffer.
2. **Placement.** Buffers whose lifetimes do not overlap may share bytes. Several greedy
   strategies place the buffers (largest first, by breadth of the busiest step, by
   size × duration, by first use — each putting a buffer into the tightest gap left by the
   buffers it conflicts with); the smallest arena wins, as in GE's hybrid memory assigner.
3. **Figures.** The arena size, the lower bound (the largest total of aligned bytes live at one
   task: no placement of these buffers can be smaller) and the no-reuse total (every tensor its
   own bytes) — the compile report prints them.

Every offset and size is a multiple of ``ARENA_ALIGN`` (512 bytes). ``check_plan`` verifies a
plan independently: no two tensors that are live at the same task share a byte, unless one is
the declared in-place alias of the other and dies exactly where the other is born.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openge.errors import INTERNAL_ERROR, GeError
from openge.graph import DataType
from openge.om.plan import ARENA_ALIGN
from openge.ops.fused import INPLACE_SAFE_FLOAT_OPS, INPLACE_SAFE_OPS, inplace_safe

#: Op types whose task may write its output over one of its inputs (the planner's choice; some
#: only for float results, see :func:`can_run_in_place`). Each kernel must tolerate
#: ``outputs[0]`` being the very array of an input of the same byte size;
#: tests/compiler/test_memory.py checks that for every registered op in this set.
INPLACE_OPS: frozenset[str] = (
    INPLACE_SAFE_OPS | INPLACE_SAFE_FLOAT_OPS | frozenset({"FusedElementwise"})
)


def can_run_in_place(op_type: str, dtype: DataType) -> bool:
    """True when a task of ``op_type`` with a ``dtype`` result may write over an input."""
    return op_type == "FusedElementwise" or inplace_safe(op_type, dtype)


@dataclass(frozen=True)
class Lifetime:
    """One arena tensor: its size in bytes and the first/last task index that touch it."""

    key: int
    size: int
    first: int
    last: int

    def __post_init__(self) -> None:
        if self.size < 0 or self.first > self.last:
            raise GeError(INTERNAL_ERROR, f"bad lifetime {self}: size < 0 or first > last")


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets by tensor key, the arena size, and the figures the compile report shows.

    ``aliases`` maps a tensor written in place to the input tensor whose bytes it reuses;
    ``strategy`` names the placement that won.
    """

    offsets: dict[int, int]
    arena_size: int
    lower_bound: int
    no_reuse_size: int
    strategy: str = ""
    aliases: dict[int, int] = field(default_factory=dict)


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


# ----- in-place merging --------------------------------------------------------------------------


def merge_inplace(
    tensors: Sequence[Lifetime], candidates: Iterable[tuple[int, int]]
) -> tuple[list[Lifetime], dict[int, int], dict[int, int]]:
    """Merge in-place candidates ``(output key, input key)`` into shared buffers.

    A candidate is taken when the input dies at the task that writes the output
    (``input.last == output.first``), both have the same byte size, and neither end is taken
    already. Returns the buffers (keyed by their first tensor's key), the tensor → buffer map
    and the accepted aliases (output → input).
    """
    by_key = {t.key: t for t in tensors}
    parent = {t.key: t.key for t in tensors}  # union-find: a tensor's buffer is its root

    def root_of(key: int) -> int:
        top = key
        while parent[top] != top:
            top = parent[top]
        while parent[key] != top:  # path compression keeps every later lookup short
            parent[key], key = top, parent[key]
        return top

    span = {t.key: (t.first, t.last, t.size) for t in tensors}
    aliases: dict[int, int] = {}
    consumed: set[int] = set()
    for out_key, in_key in candidates:
        out = by_key.get(out_key)
        src = by_key.get(in_key)
        if out is None or src is None or out_key == in_key:
            continue
        if out_key in aliases or in_key in consumed or parent[out_key] != out_key:
            continue
        if src.last != out.first or src.size != out.size or out.size == 0:
            continue
        root = root_of(in_key)
        if root == out_key:  # a cycle of candidates: the input already lives in out's buffer
            continue
        # Buffers are chains: the input is the tail of its chain (it was never consumed) and the
        # output heads its own (it was never aliased), so the two chains join end to end.
        first, _, size = span[root]
        span[root] = (first, span.pop(out_key)[1], size)
        parent[out_key] = root
        aliases[out_key] = in_key
        consumed.add(in_key)
    buffer_of = {key: root_of(key) for key in parent}
    buffers = [Lifetime(k, size, first, last) for k, (first, last, size) in span.items()]
    return buffers, buffer_of, aliases


# ----- placement strategies ----------------------------------------------------------------------


def _conflicts(buffers: Sequence[Lifetime]) -> list[list[int]]:
    """For each buffer (by position), the positions of the buffers whose lifetimes overlap."""
    order = sorted(range(len(buffers)), key=lambda i: buffers[i].first)
    out: list[list[int]] = [[] for _ in buffers]
    active: list[int] = []
    for i in order:
        b = buffers[i]
        active = [j for j in active if buffers[j].last >= b.first]
        for j in active:
            out[i].append(j)
            out[j].append(i)
        active.append(i)
    return out


def _place(
    order: Sequence[int], sizes: Sequence[int], conflicts: Sequence[Sequence[int]]
) -> tuple[list[int], int]:
    """Place buffers in ``order``: each into the smallest gap between the already placed
    buffers it conflicts with that holds it, else on top of them. Returns offsets and arena."""
    offsets = [-1] * len(sizes)
    arena = 0
    for i in order:
        size = sizes[i]
        busy = sorted((offsets[j], offsets[j] + sizes[j]) for j in conflicts[i] if offsets[j] >= 0)
        best = -1
        best_gap = 0
        cursor = 0
        for start, end in busy:
            gap = start - cursor
            if gap >= size and (best < 0 or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, end)
        offset = best if best >= 0 else cursor
        offsets[i] = offset
        arena = max(arena, offset + size)
    return offsets, arena


def _by_size(buffers: Sequence[Lifetime], sizes: Sequence[int]) -> list[int]:
    return sorted(
        range(len(buffers)),
        key=lambda i: (-sizes[i], -(buffers[i].last - buffers[i].first), buffers[i].first),
    )


def _by_area(buffers: Sequence[Lifetime], sizes: Sequence[int]) -> list[int]:
    return sorted(
        range(len(buffers)),
        key=lambda i: (-sizes[i] * (buffers[i].last - buffers[i].first + 1), buffers[i].first),
    )


def _by_first_use(buffers: Sequence[Lifetime], sizes: Sequence[int]) -> list[int]:
    return sorted(range(len(buffers)), key=lambda i: (buffers[i].first, -sizes[i]))


def _by_breadth(buffers: Sequence[Lifetime], sizes: Sequence[int]) -> list[int]:
    """TFLite's "greedy by breadth": the busiest task's buffers first, largest first."""
    live: dict[int, list[int]] = {}
    for i, b in enumerate(buffers):
        for step in range(b.first, b.last + 1):
            live.setdefault(step, []).append(i)
    totals = sorted(live, key=lambda s: (-sum(sizes[i] for i in live[s]), s))
    seen: set[int] = set()
    order: list[int] = []
    for step in totals:
        for i in sorted(live[step], key=lambda i: -sizes[i]):
            if i not in seen:
                seen.add(i)
                order.append(i)
    return order


#: The placement strategies tried, by name; the smallest arena wins (ties: the first listed).
STRATEGIES: dict[str, Callable[[Sequence[Lifetime], Sequence[int]], list[int]]] = {
    "size": _by_size,
    "breadth": _by_breadth,
    "area": _by_area,
    "first-use": _by_first_use,
}


def plan_memory(
    tensors: Sequence[Lifetime],
    *,
    reuse: bool = True,
    inplace: Iterable[tuple[int, int]] = (),
    strategies: Sequence[str] | None = None,
) -> MemoryPlan:
    """Place every tensor in one arena (512-byte aligned offsets).

    Args:
        tensors: the arena tensors with their lifetimes (task indexes).
        reuse: False gives every tensor its own bytes (``ge.exec.disableReuseMemory=1``); no
            in-place either.
        inplace: candidate pairs ``(output key, input key)`` where the output's task may write
            over the input; taken when the input dies there and sizes match.
        strategies: names from :data:`STRATEGIES` to try (default: all).
    """
    no_reuse = sum(align_up(t.size) for t in tensors)
    if not reuse:
        offsets: dict[int, int] = {}
        cursor = 0
        for t in tensors:
            offsets[t.key] = cursor
            cursor += align_up(t.size)
        return MemoryPlan(offsets, cursor, live_lower_bound(tensors), no_reuse, "no-reuse")
    buffers, buffer_of, aliases = merge_inplace(tensors, inplace)
    sizes = [align_up(b.size) for b in buffers]
    conflicts = _conflicts(buffers)
    names = list(strategies) if strategies is not None else list(STRATEGIES)
    best: tuple[int, str, list[int]] | None = None
    for name in names:
        try:
            order_fn = STRATEGIES[name]
        except KeyError:
            raise GeError(
                INTERNAL_ERROR,
                f"unknown memory strategy {name!r}; known: {', '.join(STRATEGIES)}",
            ) from None
        placed, arena = _place(order_fn(buffers, sizes), sizes, conflicts)
        if best is None or arena < best[0]:
            best = (arena, name, placed)
    arena, winner, placed = best if best is not None else (0, "", [])
    buffer_offset = {b.key: placed[i] for i, b in enumerate(buffers)}
    offsets = {t.key: buffer_offset[buffer_of[t.key]] for t in tensors}
    return MemoryPlan(offsets, arena, live_lower_bound(buffers), no_reuse, winner, aliases)


# ----- verification ------------------------------------------------------------------------------


def check_plan(tensors: Sequence[Lifetime], plan: MemoryPlan) -> None:
    """Raise GeError when two tensors live at the same task share bytes (other than a declared
    in-place alias that dies where its successor is born), or one is misaligned or leaves the
    arena. Used on every model the compiler produces."""
    by_key = {t.key: t for t in tensors}
    for out_key, in_key in plan.aliases.items():
        out, src = by_key.get(out_key), by_key.get(in_key)
        if out is None or src is None:
            raise GeError(INTERNAL_ERROR, f"memory plan alias {out_key} <- {in_key}: unknown key")
        if src.last != out.first or plan.offsets[out_key] != plan.offsets[in_key]:
            raise GeError(
                INTERNAL_ERROR,
                f"memory plan alias {out_key} <- {in_key} is not in-place: the input lives "
                f"{src.first}..{src.last}, the output {out.first}..{out.last}",
            )
    missing = [t.key for t in tensors if t.key not in plan.offsets]
    if missing:
        raise GeError(INTERNAL_ERROR, f"memory plan has no offset for tensors {missing[:10]}")
    items = sorted(tensors, key=lambda t: (t.first, t.key))
    for i, a in enumerate(items):
        off_a = plan.offsets[a.key]
        if off_a % ARENA_ALIGN or off_a + a.size > plan.arena_size:
            raise GeError(
                INTERNAL_ERROR,
                f"tensor {a.key} misplaced at {off_a} (+{a.size}) in a {plan.arena_size}-byte "
                f"arena aligned to {ARENA_ALIGN}",
            )
        for b in items[i + 1 :]:
            if b.first > a.last:
                break
            off_b = plan.offsets[b.key]
            if not (a.size and b.size and off_a < off_b + b.size and off_b < off_a + a.size):
                continue
            if plan.aliases.get(b.key) == a.key or plan.aliases.get(a.key) == b.key:
                continue
            raise GeError(
                INTERNAL_ERROR,
                f"memory plan overlap: tensors {a.key} (tasks {a.first}..{a.last}) and {b.key} "
                f"(tasks {b.first}..{b.last}) are live together but share bytes "
                f"({off_a}+{a.size} vs {off_b}+{b.size})",
            )


def plan_from_stats(stats: Mapping[str, Any], arena_size: int) -> tuple[list[Lifetime], MemoryPlan]:
    """Rebuild the lifetimes and plan a CompiledModel's ``stats`` carry (for checking)."""
    lifetimes = [Lifetime(*entry) for entry in stats.get("lifetimes", ())]
    plan = MemoryPlan(
        offsets={int(k): int(v) for k, v in stats.get("arena_offsets", {}).items()},
        arena_size=arena_size,
        lower_bound=int(stats.get("arena_lower_bound", 0)),
        no_reuse_size=int(stats.get("arena_no_reuse", 0)),
        strategy=str(stats.get("arena_strategy", "")),
        aliases={int(k): int(v) for k, v in stats.get("arena_aliases", {}).items()},
    )
    return lifetimes, plan


__all__ = [
    "INPLACE_OPS",
    "STRATEGIES",
    "Lifetime",
    "MemoryPlan",
    "align_up",
    "can_run_in_place",
    "check_plan",
    "live_lower_bound",
    "merge_inplace",
    "plan_from_stats",
    "plan_memory",
]
