"""The .om container and the plain-data compiled model it stores (no execution here)."""

# The writer/reader modules import the op registry (to check op types), so they are imported
# lazily by their users: openge.om.writer.serialize, openge.om.reader.deserialize/read_info.

from openge.om.buffer import ModelBufferData
from openge.om.container import parse_container
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
    "parse_container",
]
