"""Format 1.1 gear records: MODEL_INOUT_INFO DYNAMIC_BATCH / DYNAMIC_HW / DYNAMIC_DIMS as GE
writes them, and the TASK_INFO gear table read back exactly or refused when inconsistent."""

from __future__ import annotations

import struct

import pytest

from openge.errors import GeError
from openge.om import container as ct
from openge.om.gears import GearKind, GearPlan, GearSet, inout_gear_records


def _gears(kind: GearKind, values) -> GearSet:
    plans = [GearPlan(tuple(v), i, i + 1, ((1,),), ((1,),), 0) for i, v in enumerate(values)]
    return GearSet(kind, plans, [(-1,)], ["x"])


def test_hw_and_dims_records_use_ges_layout():
    data = ct.pack_inout_info([], [], dynamic_hw=[(416, 416), (832, 608)])
    blocks = {}
    pos = 0
    while pos < len(data):
        btype, length = struct.unpack_from("<II", data, pos)
        blocks[btype] = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
    # u32 count; u32 size of each gear; then every value as i64
    assert blocks[3] == struct.pack("<III4q", 2, 2, 2, 416, 416, 832, 608)
    info = ct.parse_inout_info(memoryview(data))
    assert info.dynamic_hw == [(416, 416), (832, 608)] and info.dynamic_dims == []


@pytest.mark.parametrize(
    ("kind", "field", "values"),
    [
        (GearKind.BATCH, "dynamic_batch", [1, 2, 4]),
        (GearKind.IMAGE, "dynamic_hw", [(16, 16), (32, 24)]),
        (GearKind.DIMS, "dynamic_dims", [(1, 2, 3), (4, 5, 6)]),
    ],
)
def test_each_kind_writes_its_record(kind, field, values):
    raw = [(v,) if isinstance(v, int) else v for v in values]
    data = ct.pack_inout_info([], [], **inout_gear_records(_gears(kind, raw)))
    assert getattr(ct.parse_inout_info(memoryview(data)), field) == values


def test_truncated_gear_record_is_refused():
    data = ct.pack_inout_info([], [], dynamic_dims=[(1, 2), (3, 4)])
    head = struct.unpack_from("<II", data, len(data) - 8 - (4 + 8 + 32))
    assert head[0] == 4
    bad = bytearray(data)
    struct.pack_into("<I", bad, len(data) - 44 + 4, 3)  # claim 3 values in the first gear
    with pytest.raises(GeError):
        ct.parse_inout_info(memoryview(bytes(bad)))


def test_gear_table_check_rejects_inconsistent_tables():
    good = _gears(GearKind.BATCH, [(1,), (2,)])
    good.check(num_tasks=2, num_inputs=2, num_outputs=1, memory_size=0)
    with pytest.raises(GeError, match="tasks end at 2"):
        good.check(num_tasks=3, num_inputs=2, num_outputs=1, memory_size=0)
    with pytest.raises(GeError, match="same values"):
        _gears(GearKind.BATCH, [(1,), (1,)]).check(
            num_tasks=2, num_inputs=2, num_outputs=1, memory_size=0
        )
    with pytest.raises(GeError, match=r"1 gears; a gear model has 2\.\.100"):
        _gears(GearKind.BATCH, [(1,)]).check(
            num_tasks=1, num_inputs=2, num_outputs=1, memory_size=0
        )
