"""The .om container and the plain-data compiled model it stores (no execution here)."""

from openge.om.buffer import ModelBufferData
from openge.om.plan import (
    ARENA_ALIGN,
    NO_SLOT,
    WEIGHT_ALIGN,
    CompiledModel,
    ExternalWeight,
    IODesc,
    Slot,
    SlotKind,
    Task,
    VariableDef,
)

__all__ = [
    "ARENA_ALIGN",
    "NO_SLOT",
    "WEIGHT_ALIGN",
    "CompiledModel",
    "ExternalWeight",
    "IODesc",
    "ModelBufferData",
    "Slot",
    "SlotKind",
    "Task",
    "VariableDef",
]
