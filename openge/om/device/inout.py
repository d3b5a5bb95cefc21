"""MODEL_INOUT_INFO of a device om: the model's inputs, outputs and gears (GE's TLV).

Layer: om. Records are ``i32 type, u32 len, value``: 0 inputs, 1 outputs (``u32 count`` then
per tensor ``u64 size, i32 format, i32 dtype, u32 name_len, u32 dims_len, u32 dimsV2_len,
u32 range_len`` and the name, int64 dims, dimsV2, (min, max) ranges), 2 dynamic batch
(``u32 n, u64[n]``), 3 dynamic HW and 4 dynamic dims (``u32 n, u32 len[n]``, then the u64
values), 5 dynamic output shapes and 6 the data-name order (``u32 n, u32 len[n]``, strings).
Format and dtype are the API's enum values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from openge.om.container import InOutDesc, parse_descs
from openge.om.device.binio import Cursor, invalid

_BASE = struct.Struct("<QiiIIII")
_TLV = struct.Struct("<iI")
MAX_TENSORS = 1 << 16
MAX_DIMS = 32
MAX_GEARS = 1 << 16
MAX_NAME = 4096


#: One input or output record: GE's record is the same in device and openge files.
IoTensor = InOutDesc


@dataclass
class IoInfo:
    """The parsed MODEL_INOUT_INFO."""

    inputs: list[IoTensor] = field(default_factory=list)
    outputs: list[IoTensor] = field(default_factory=list)
    dynamic_batch: list[int] = field(default_factory=list)
    dynamic_hw: list[list[int]] = field(default_factory=list)
    dynamic_dims: list[list[int]] = field(default_factory=list)
    dynamic_output_shape: list[str] = field(default_factory=list)
    data_name_order: list[str] = field(default_factory=list)
    #: Block types GE added later, by type: their sizes.
    other: dict[int, int] = field(default_factory=dict)

    @property
    def gears(self) -> list[list[int]]:
        """Every gear (batch sizes as one-element lists, HW pairs, dims lists)."""
        return [[b] for b in self.dynamic_batch] + self.dynamic_hw + self.dynamic_dims


def _tensors(value: memoryview, what: str) -> list[IoTensor]:
    return parse_descs(value, what)  # the one checked decoder of GE's tensor records


def _list_list(value: memoryview, what: str) -> list[list[int]]:
    cur = Cursor(value, what)
    n = cur.u32()
    if n > min(MAX_GEARS, cur.left // 4):
        raise invalid(f"{what}: {n} gears do not fit in {cur.left} bytes")
    lengths = [cur.u32() for _ in range(n)]
    return [
        list(cur.ints(8 * k, "Q", "values", MAX_DIMS)) if k <= MAX_DIMS else _too_many(what, k)
        for k in lengths
    ]


def _too_many(what: str, k: int) -> list[int]:
    raise invalid(f"{what}: a gear of {k} values; at most {MAX_DIMS}")


def _strings(value: memoryview, what: str) -> list[str]:
    cur = Cursor(value, what)
    n = cur.u32()
    if n > min(MAX_GEARS, cur.left // 4):
        raise invalid(f"{what}: {n} strings do not fit in {cur.left} bytes")
    lengths = [cur.u32() for _ in range(n)]
    return [cur.text(k, "string", MAX_NAME) for k in lengths]


def parse_inout(data: memoryview) -> IoInfo:
    """Parse a MODEL_INOUT_INFO payload (GeError on any length that does not fit)."""
    info = IoInfo()
    cur = Cursor(data, "MODEL_INOUT_INFO")
    while cur.left:
        btype, length = cur.unpack(_TLV)
        value = cur.take(length)
        if btype == 0:
            info.inputs = _tensors(value, "MODEL_INOUT_INFO inputs")
        elif btype == 1:
            info.outputs = _tensors(value, "MODEL_INOUT_INFO outputs")
        elif btype == 2:
            sub = Cursor(value, "MODEL_INOUT_INFO dynamic batch")
            n = sub.u32()
            info.dynamic_batch = list(sub.ints(8 * n, "Q", "batch sizes", MAX_GEARS))
        elif btype == 3:
            info.dynamic_hw = _list_list(value, "MODEL_INOUT_INFO dynamic HW")
        elif btype == 4:
            info.dynamic_dims = _list_list(value, "MODEL_INOUT_INFO dynamic dims")
        elif btype == 5:
            info.dynamic_output_shape = _strings(value, "MODEL_INOUT_INFO dynamic output shape")
        elif btype == 6:
            info.data_name_order = _strings(value, "MODEL_INOUT_INFO data name order")
        else:
            info.other[btype] = length
    return info


__all__ = ["IoInfo", "IoTensor", "parse_inout"]
