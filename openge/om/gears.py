"""Gears (GE's dynamic batch / image size / dims) as plain data: what a gear model stores.

Layer: om. A gear model (``atc --dynamic_batch_size`` …) is compiled once per gear; its
CompiledModel holds every gear's tasks back to back in ``tasks`` and a :class:`GearSet` saying
which range of tasks, which input/output shapes and how much of the work arena each gear uses.
Weights are shared by every gear; the arena is sized for the largest. The extra last model input
``ascend_mbatch_shape_data`` (int32 ``[k]``) selects the gear, as in GE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from openge.errors import PARAM_INVALID, GeError

#: GE's name of the extra model input that carries the chosen gear (ACL_DYNAMIC_TENSOR_NAME).
SHAPE_DATA_NAME = "ascend_mbatch_shape_data"
#: Suffix GE gives every node of gear ``i``'s subgraph: ``<name>_ascend_mbatch_batch_<i>``.
NODE_SUFFIX = "_ascend_mbatch_batch_"
#: GE's limits on the gear count (ATC: "2 to 100 profiles").
MIN_GEARS = 2
MAX_GEARS = 100


class GearKind(IntEnum):
    """GE's ``mbatch_dynamic_type``: which option made the gears."""

    BATCH = 1  # --dynamic_batch_size
    IMAGE = 2  # --dynamic_image_size
    DIMS = 3  # --dynamic_dims

    @property
    def option(self) -> str:
        """The ATC flag that makes this kind."""
        return {1: "--dynamic_batch_size", 2: "--dynamic_image_size", 3: "--dynamic_dims"}[self]


@dataclass(frozen=True)
class GearPlan:
    """One gear: its values (what ``ascend_mbatch_shape_data`` holds), its tasks
    ``tasks[task_begin:task_end]``, the input/output shapes it runs with, and its arena bytes."""

    values: tuple[int, ...]
    task_begin: int
    task_end: int
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    memory_size: int
    graph_name: str = ""


def _invalid(message: str) -> GeError:
    return GeError(PARAM_INVALID, f"invalid om gear table: {message}")


@dataclass
class GearSet:
    """The gears of a model.

    ``origin_inputs`` are the model inputs' dims as the user gave them (-1 where the gear
    decides), one per real input (``ascend_mbatch_shape_data`` excluded); ``shape_order`` the
    input names in ``input_shape`` order (GE's user-designated shape order: the order of the
    values in a dims gear). ``graphs`` holds each gear's compiled graph, or a function decoding
    it on first use (``graph(i)``).
    """

    kind: GearKind
    gears: list[GearPlan]
    origin_inputs: list[tuple[int, ...]]
    shape_order: list[str]
    graphs: list[Any] = field(default_factory=list, compare=False, repr=False)

    @property
    def k(self) -> int:
        """Values per gear: the length of ``ascend_mbatch_shape_data``."""
        return len(self.gears[0].values) if self.gears else 0

    @property
    def values(self) -> list[tuple[int, ...]]:
        """Every gear's values, in gear order."""
        return [g.values for g in self.gears]

    @property
    def largest(self) -> int:
        """Index of the gear with the most input elements (GE runs it when no gear is set)."""

        def size(g: GearPlan) -> int:
            total = 0
            for shape in g.input_shapes:
                n = 1
                for d in shape:
                    n *= d
                total += n
            return total

        best = 0
        for i, g in enumerate(self.gears):
            if size(g) > size(self.gears[best]):
                best = i
        return best

    def graph(self, index: int) -> Any:
        """Gear ``index``'s compiled graph (decoded on first use), or None when not stored."""
        if index >= len(self.graphs):
            return None
        value = self.graphs[index]
        if callable(value):
            value = self.graphs[index] = value()
        return value

    def all_graphs(self) -> list[Any]:
        """Every gear's graph that is stored (decoded)."""
        return [g for g in (self.graph(i) for i in range(len(self.graphs))) if g is not None]

    def index_of(self, values: Sequence[int]) -> int | None:
        """The gear whose values are ``values``, or None."""
        key = tuple(int(v) for v in values)
        for i, g in enumerate(self.gears):
            if g.values == key:
                return i
        return None

    def check(self, *, num_tasks: int, num_inputs: int, num_outputs: int, memory_size: int) -> None:
        """GeError when the table does not fit the model it came with (an untrusted file)."""
        if not MIN_GEARS <= len(self.gears) <= MAX_GEARS:
            raise _invalid(f"{len(self.gears)} gears; a gear model has {MIN_GEARS}..{MAX_GEARS}")
        if len(self.origin_inputs) != num_inputs - 1:
            raise _invalid(
                f"{len(self.origin_inputs)} input shapes for a model of {num_inputs} inputs "
                f"(the last is {SHAPE_DATA_NAME})"
            )
        end = 0
        k = self.k
        for i, g in enumerate(self.gears):
            where = f"gear {i}"
            if len(g.values) != k or k == 0 or any(v <= 0 for v in g.values):
                raise _invalid(f"{where}: values {list(g.values)}; every gear has {k} values > 0")
            if g.task_begin != end or g.task_end < g.task_begin:
                raise _invalid(f"{where}: tasks {g.task_begin}..{g.task_end} do not follow {end}")
            end = g.task_end
            if len(g.input_shapes) != len(self.origin_inputs) or len(g.output_shapes) != (
                num_outputs
            ):
                raise _invalid(f"{where}: input/output shape counts differ from the model's")
            for origin, shape in zip(self.origin_inputs, g.input_shapes):
                if len(origin) != len(shape) or any(
                    d < 0 or (o >= 0 and o != d) for o, d in zip(origin, shape)
                ):
                    raise _invalid(
                        f"{where}: input shape {list(shape)} does not fit {list(origin)}"
                    )
            if any(d < 0 for s in g.output_shapes for d in s):
                raise _invalid(f"{where}: an output shape has a negative dim")
            if g.memory_size > memory_size:
                raise _invalid(
                    f"{where}: arena of {g.memory_size} bytes > the model's {memory_size}"
                )
        if end != num_tasks:
            raise _invalid(f"the gears' tasks end at {end}; the model has {num_tasks}")
        if len(set(self.values)) != len(self.gears):
            raise _invalid("two gears have the same values")


def to_proto(gears: GearSet, out: Any) -> None:
    """Fill an ``openge.task.GearTable`` message from ``gears``."""
    out.kind = int(gears.kind)
    for g in gears.gears:
        m = out.gears.add()
        m.values.extend(g.values)
        m.task_begin = g.task_begin
        m.task_end = g.task_end
        for shape in g.input_shapes:
            m.input_shapes.add().dims.extend(shape)
        for shape in g.output_shapes:
            m.output_shapes.add().dims.extend(shape)
        m.memory_size = g.memory_size
        m.graph_name = g.graph_name
    for shape in gears.origin_inputs:
        out.origin_inputs.add().dims.extend(shape)
    out.shape_order.extend(gears.shape_order)


def _dims(msg: Any, where: str, limit: int) -> tuple[int, ...]:
    if len(msg.dims) > limit:
        raise _invalid(f"{where}: {len(msg.dims)} dims; at most {limit}")
    return tuple(msg.dims)


def from_proto(msg: Any, max_dims: int) -> GearSet | None:
    """The GearSet of an ``openge.task.GearTable`` (None when the message is empty). Structure
    only: :meth:`GearSet.check` checks it against its model."""
    if not msg.gears:
        return None
    try:
        kind = GearKind(msg.kind)
    except ValueError:
        raise _invalid(f"kind {msg.kind} is not 1 (batch), 2 (image size) or 3 (dims)") from None
    if len(msg.gears) > MAX_GEARS:
        raise _invalid(f"{len(msg.gears)} gears; at most {MAX_GEARS}")
    gears = []
    for i, m in enumerate(msg.gears):
        where = f"gear {i}"
        if len(m.values) > max_dims * 64:
            raise _invalid(f"{where}: {len(m.values)} values")
        gears.append(
            GearPlan(
                values=tuple(m.values),
                task_begin=m.task_begin,
                task_end=m.task_end,
                input_shapes=tuple(_dims(s, where, max_dims) for s in m.input_shapes),
                output_shapes=tuple(_dims(s, where, max_dims) for s in m.output_shapes),
                memory_size=m.memory_size,
                graph_name=m.graph_name,
            )
        )
    return GearSet(
        kind=kind,
        gears=gears,
        origin_inputs=[_dims(s, "input", max_dims) for s in msg.origin_inputs],
        shape_order=list(msg.shape_order),
    )


def inout_gear_records(gears: GearSet | None) -> dict[str, Any]:
    """The MODEL_INOUT_INFO gear record of a model (keyword arguments of
    ``container.pack_inout_info``): DYNAMIC_BATCH, DYNAMIC_HW or DYNAMIC_DIMS, as GE writes."""
    if gears is None:
        return {}
    if gears.kind == GearKind.BATCH:
        return {"dynamic_batch": [v[0] for v in gears.values]}
    if gears.kind == GearKind.IMAGE:
        return {"dynamic_hw": gears.values}
    return {"dynamic_dims": gears.values}


def with_ranges(descs: Sequence[Any], shapes: Sequence[Sequence[Sequence[int]]]) -> list[Any]:
    """``descs`` (IODesc) with ``range`` set from the shapes every gear gives them
    (``shapes[gear][i]``); descs past the gears' (the shape-data input) are left as they are."""
    out = list(descs)
    for i in range(len(shapes[0]) if shapes else 0):
        ranged = dims_range([s[i] for s in shapes])
        if any(lo != hi for lo, hi in ranged):
            out[i] = replace(out[i], range=ranged)
    return out


def dims_range(shapes: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    """Per-dim (min, max) over equally ranked shapes."""
    if not shapes:
        return ()
    return tuple((min(col), max(col)) for col in zip(*shapes))


__all__ = [
    "MAX_GEARS",
    "MIN_GEARS",
    "NODE_SUFFIX",
    "SHAPE_DATA_NAME",
    "GearKind",
    "GearPlan",
    "GearSet",
    "dims_range",
]
