"""Partition tables of a device om: "tiny" (u32 fields) and "wide" (u64), one or more blocks.

Layer: om. A table is ``u32 num`` then ``num`` entries; payloads follow the table back to back,
each entry's offset (relative to the end of its table; GE's bundle writer counts from the table
start) equals the sum of the sizes before it, and GE's loader walks them by size. Multi-model
files (``model_num`` > 1) hold ``model_num`` consecutive [table + payloads] blocks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from openge.errors import GeError
from openge.om.device.binio import invalid, size_error
from openge.om.device.header import HEADER_SIZE, DeviceHeader, ModelType

#: At most this many partitions in one table, and this many model blocks in one file.
MAX_PARTITIONS = 256
MAX_MODELS = 64

_WIDE_HEAD = struct.Struct("<I4x")
_WIDE_ENTRY = struct.Struct("<I4xQQ")
_TINY_HEAD = struct.Struct("<I")
_TINY_ENTRY = struct.Struct("<III")


class PartType(IntEnum):
    """GE's ModelPartitionType numbering."""

    MODEL_DEF = 0
    WEIGHTS_DATA = 1
    TASK_INFO = 2
    TBE_KERNELS = 3
    CUST_AICPU_KERNELS = 4
    SO_BINS = 5
    FLOW_MODEL = 6
    FLOW_SUBMODEL = 7
    MODEL_INOUT_INFO = 8
    STATIC_TASK_DESC = 9
    DYNAMIC_TASK_DESC = 10
    TASK_PARAM = 11
    TILING_DATA = 12
    PRE_MODEL_DESC = 20
    PRE_MODEL_SQE = 21
    PRE_KERNEL_ARGS = 22
    PRE_MODEL_DESC_EXTEND = 23
    BUNDLE_MODEL_INFO = 24
    BUNDLE_MODEL_VAR_INFO = 25
    CUSTOM_OPS = 26


#: Types that may appear more than once in one table.
_REPEATABLE = {PartType.FLOW_SUBMODEL, PartType.BUNDLE_MODEL_INFO}


@dataclass(frozen=True)
class DevicePartition:
    """One partition: type, absolute offset in the buffer, size."""

    type: int
    offset: int
    size: int

    @property
    def name(self) -> str:
        """GE's name of the type (``TYPE_<n>`` for one not in GE's list)."""
        try:
            return PartType(self.type).name
        except ValueError:
            return f"TYPE_{self.type}"

    @property
    def end(self) -> int:
        """Offset one past the last byte."""
        return self.offset + self.size


def table_form(header: DeviceHeader) -> str:
    """``"wide"`` (u64 offsets) or ``"tiny"`` (u32), by GE's rule."""
    wide = header.modeltype in (ModelType.FLOW, ModelType.BUNDLE) or header.model_length != 0
    return "wide" if wide else "tiny"


def _read_table(
    view: memoryview, start: int, wide: bool, bundle: bool, what: str
) -> tuple[list[DevicePartition], int]:
    head, entry = (_WIDE_HEAD, _WIDE_ENTRY) if wide else (_TINY_HEAD, _TINY_ENTRY)
    end = len(view)
    if end - start < head.size:
        raise size_error(f"{what}: no room for a partition table at offset {start}")
    (count,) = head.unpack_from(view, start)
    if count == 0 or count > MAX_PARTITIONS:
        raise invalid(f"{what}: partition count {count}; it must be 1..{MAX_PARTITIONS}")
    tsize = head.size + entry.size * count
    if tsize > end - start:
        raise size_error(f"{what}: a table of {count} partitions does not fit in the file")
    pos = start + tsize
    # GE's loader walks the sizes; writers count offsets from the end of the table (GE's
    # bundle writer: from the table start). Either is accepted when every entry agrees.
    bases = (tsize, 0) if bundle else (0, tsize)
    base: int | None = None
    parts: list[DevicePartition] = []
    seen: set[int] = set()
    for i in range(count):
        ptype, offset, size = entry.unpack_from(view, start + head.size + entry.size * i)
        running = pos - start - tsize
        if base is None:
            base = next((b for b in bases if offset == running + b), None)
        if base is None or offset != running + base:
            raise invalid(
                f"{what}: partition {i} (type {ptype}) has offset {offset}; the sizes before it "
                f"add up to {running} (partitions are back to back, in table order)"
            )
        if size > end - pos:
            raise size_error(
                f"{what}: partition {i} (type {ptype}) of {size} bytes at file offset {pos} runs "
                f"past the end of the file ({end} bytes)"
            )
        if ptype in seen and ptype not in _REPEATABLE:
            raise invalid(f"{what}: partition type {ptype} appears twice")
        seen.add(ptype)
        parts.append(DevicePartition(ptype, pos, size))
        pos += size
    return parts, pos


def read_tables(view: memoryview, header: DeviceHeader) -> tuple[str, list[list[DevicePartition]]]:
    """The table form and the partition list of each model block of a checked header.

    The form follows GE's rule; when the file does not parse that way but does in the other
    form, the other is used (older and newer ATC differ), so the answer names the form read.
    """
    first = table_form(header)
    try:
        return first, _read_blocks(view, header, first == "wide")
    except GeError as err:  # retried in the other form; this error is re-raised if that fails
        if header.modeltype == ModelType.BUNDLE:
            raise
        other = "tiny" if first == "wide" else "wide"
        try:
            return other, _read_blocks(view, header, other == "wide")
        except GeError:  # the first form's error is the meaningful one
            raise err from None


def _read_blocks(view: memoryview, header: DeviceHeader, wide: bool) -> list[list[DevicePartition]]:
    count = header.model_num if header.model_num > 1 else 1
    if header.modeltype in (ModelType.FLOW, ModelType.BUNDLE):
        count = 1  # their model_num counts submodels, which are nested oms
    if count > MAX_MODELS:
        raise invalid(f"model_num {header.model_num}; at most {MAX_MODELS}")
    bundle = header.modeltype == ModelType.BUNDLE
    blocks = []
    pos = HEADER_SIZE
    for index in range(count):
        what = "partition table" if count == 1 else f"partition table of model {index}"
        parts, pos = _read_table(view, pos, wide, bundle, what)
        blocks.append(parts)
    if pos != len(view):
        raise size_error(
            f"the partitions end at offset {pos} but the file has {len(view)} bytes"
            + ("" if count > 1 else " (a multi-model file needs model_num > 1)")
        )
    return blocks


__all__ = [
    "MAX_MODELS",
    "MAX_PARTITIONS",
    "DevicePartition",
    "PartType",
    "read_tables",
    "table_form",
]
