"""The compiled model as plain data: io descriptors, typed slots, tasks, weights, variables.

This is the contract between the compiler (which produces it), the .om writer/reader (which
serializes it) and the runtime (which executes it). Nothing here imports the compiler or the
runtime, and nothing here executes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, Format, Graph
from openge.om.gears import GearSet

#: Byte alignment of every tensor in the work arena.
ARENA_ALIGN = 512
#: Byte alignment of every tensor inside the weights blob.
WEIGHT_ALIGN = 64


class SlotKind(IntEnum):
    """Where a task reads or writes a tensor."""

    NONE = 0  # an omitted optional input
    ARENA = 1  # work arena; offset = byte offset
    WEIGHT = 2  # weights blob; offset = byte offset
    INPUT = 3  # model input; offset = input index
    OUTPUT = 4  # model output; offset = output index
    VARIABLE = 5  # variable table; offset = variable index
    EXTERNAL = 6  # external weight file; offset = index into CompiledModel.external_weights


@dataclass(frozen=True)
class Slot:
    """A typed reference to one tensor's storage."""

    kind: SlotKind
    offset: int = 0
    dtype: DataType = DataType.DT_FLOAT
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SlotKind(self.kind))
        object.__setattr__(self, "dtype", DataType(self.dtype))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.offset < 0 or any(d < 0 for d in self.shape):
            raise GeError(PARAM_INVALID, f"slot {self} has a negative offset or dim")

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies."""
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n


NO_SLOT = Slot(SlotKind.NONE)


@dataclass(frozen=True)
class Task:
    """One kernel call: op type, kernel attrs, input and output slots."""

    name: str
    op_type: str
    inputs: tuple[Slot, ...]
    outputs: tuple[Slot, ...]
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class IODesc:
    """A model input or output, as ``aclmdlGetDesc`` describes it."""

    name: str
    dtype: DataType
    shape: tuple[int, ...]
    format: Format = Format.FORMAT_ND
    #: per-dim (min, max) of a dynamic-shape input (max -1 = unbounded), as
    #: ``aclmdlGetInputDimsRange`` reports it; empty for static shapes
    range: tuple[tuple[int, int], ...] = ()

    @property
    def size(self) -> int:
        """Bytes of one tensor of this desc (for a -1 dim: at its range's max, as GE sizes a
        gear model's inputs for the largest gear; 0 when a dim is unbounded)."""
        n = self.dtype.itemsize
        for i, d in enumerate(self.shape):
            if d < 0:
                d = self.range[i][1] if i < len(self.range) else -1
                if d < 0:
                    return 0
            n *= d
        return n


@dataclass(frozen=True)
class VariableDef:
    """A variable: name, type, and its initial value's location in the weights blob."""

    name: str
    dtype: DataType
    shape: tuple[int, ...]
    format: Format = Format.FORMAT_ND
    init_offset: int = 0  # byte offset in the weights blob of the initial value

    @property
    def nbytes(self) -> int:
        """Bytes of the variable's value."""
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class ExternalWeight:
    """A constant whose bytes are in an external file (``ge.externalWeight`` 1 or 2)."""

    location: str  # file name only
    offset: int
    length: int
    sha256: str  # hex digest of the ``length`` bytes at ``offset``
    dtype: DataType
    shape: tuple[int, ...]
    directory: str = ""  # where the compiler wrote it (may be a removed session temp dir)


class _DeferredGraph:
    """The ``graph`` field of :class:`CompiledModel`: a Graph, or a function that decodes one,
    called on first access. Executing needs only the task list, so loading an .om leaves its
    graph (a large part of the load time) undecoded until something inspects it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"_{name}_value"

    def __get__(self, obj: Any, objtype: type | None = None) -> Graph:
        if obj is None:
            raise AttributeError("graph has no default")  # dataclass: a required field
        value = obj.__dict__[self._attr]
        if not isinstance(value, Graph):
            value = obj.__dict__[self._attr] = value()
        return value

    def __set__(self, obj: Any, value: Graph | Callable[[], Graph]) -> None:
        if not isinstance(value, Graph) and not callable(value):
            raise TypeError(f"graph must be a Graph or a function returning one, not {value!r}")
        obj.__dict__[self._attr] = value


@dataclass
class CompiledModel:
    """Everything needed to execute a compiled graph, as plain data.

    ``weights`` is a bytes-like blob (a bytearray after compiling, a view into the mapped file
    after loading); WEIGHT slots and ``VariableDef.init_offset`` are byte offsets into it.
    ``graph`` may be given as a function that decodes it: it is called on first access.
    """

    name: str
    graph: Graph = _DeferredGraph()  # type: ignore[assignment]
    tasks: list[Task]
    inputs: list[IODesc]
    outputs: list[IODesc]
    weights: Any = b""
    variables: list[VariableDef] = field(default_factory=list)
    external_weights: list[ExternalWeight] = field(default_factory=list)
    memory_size: int = 0
    options: dict[str, str] = field(default_factory=dict)
    producer: str = ""
    online: bool = True
    is_dynamic: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    #: The gears of a gear model (``ge.dynamicBatchSize`` …): ``tasks`` holds every gear's tasks
    #: back to back and the last input is ``ascend_mbatch_shape_data``; None for other models.
    gears: GearSet | None = None

    @property
    def weight_size(self) -> int:
        """Bytes of the weights blob."""
        return len(self.weights)
