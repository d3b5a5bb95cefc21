"""Crafting hostile .om files: valid container and checksum, hostile content.

Edits work on the wire form (the TaskList and ModelDef protobufs, MODEL_INOUT_INFO), below
openge's writer, so nothing the writer would refuse is filtered out; the container is then
re-packed with a correct partition table, op count and SHA-256, as an attacker would.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from openge.om import container as ct
from openge.om import ge_ir_pb2 as pb
from openge.om import task_pb2 as tp


@functools.cache
def seed(name: str = "cnn") -> bytes:
    """A real .om openge writes (tests/fuzz/seeds.py): "cnn", "transformer", "counter"."""
    from tests.fuzz.seeds import seed_models

    return seed_models()[name]


def split(data: bytes) -> tuple[ct.OmHeader, list[tuple[int, bytes]]]:
    """Header and (type, payload) partitions of an .om."""
    pc = ct.parse_container(data, verify_checksum=False)
    return pc.header, [(p.type, bytes(pc.view(p))) for p in pc.partitions]


def task_list(data: bytes) -> tp.TaskList:
    """The decoded TaskList of an .om."""
    for ptype, payload in split(data)[1]:
        if ptype == ct.PartitionType.TASK_INFO:
            _, _, length = ct.TASK_INFO_HEAD.unpack_from(payload, 0)
            return tp.TaskList.FromString(payload[ct.TASK_INFO_HEAD.size :][:length])
    raise AssertionError("no TASK_INFO")


def edit(
    data: bytes,
    *,
    tasks: Callable[[tp.TaskList], Any] | None = None,
    model_def: Callable[[pb.ModelDef], Any] | None = None,
    inout: Callable[[ct.InOutInfo], Any] | None = None,
    task_body: bytes | None = None,
    keep_op_count: bool = False,
    weights: dict[int, bytes] | None = None,
) -> bytes:
    """``data`` with its task list / ModelDef / MODEL_INOUT_INFO changed in place by the given
    functions (or the TASK_INFO body replaced; ``weights``: offset → bytes written into
    WEIGHTS_DATA), re-packed with a valid table and checksum."""
    header, parts = split(data)
    out = []
    count = header.ops
    for ptype, payload in parts:
        if ptype == ct.PartitionType.TASK_INFO and (tasks is not None or task_body is not None):
            magic, major, length = ct.TASK_INFO_HEAD.unpack_from(payload, 0)
            if task_body is None:
                tl = tp.TaskList.FromString(payload[ct.TASK_INFO_HEAD.size :][:length])
                tasks(tl)
                count = len(tl.tasks)
                body = tl.SerializeToString()
            else:
                body = task_body
            payload = ct.TASK_INFO_HEAD.pack(magic, major, len(body)) + body
        elif ptype == ct.PartitionType.MODEL_DEF and model_def is not None:
            md = pb.ModelDef.FromString(payload)
            model_def(md)
            payload = md.SerializeToString()
        elif ptype == ct.PartitionType.MODEL_INOUT_INFO and inout is not None:
            info = ct.parse_inout_info(memoryview(payload))
            inout(info)
            payload = ct.pack_inout_info(info.inputs, info.outputs, info.dynamic_batch)
        elif ptype == ct.PartitionType.WEIGHTS_DATA and weights:
            blob = bytearray(payload)
            for offset, raw in weights.items():
                blob[offset : offset + len(raw)] = raw
            payload = bytes(blob)
        out.append((ptype, payload))
    if not keep_op_count:
        header = replace(header, ops=count)
    return ct.pack_container(header, out)


def set_attr(tl: tp.TaskList, op_type: str, name: str, value: Any, index: int = 0) -> None:
    """Set attr ``name`` of the ``index``-th task of ``op_type`` (int, str, float or int list)."""
    task = [t for t in tl.tasks if t.op_type == op_type][index]
    for entry in task.attrs:
        if entry.name == name:
            break
    else:
        entry = task.attrs.add()
        entry.name = name
    entry.value.Clear()
    if isinstance(value, bool):
        entry.value.b = value
    elif isinstance(value, int):
        entry.value.i = value
    elif isinstance(value, float):
        entry.value.f = value
    elif isinstance(value, str):
        entry.value.s = value
    else:
        entry.value.list.kind = tp.AttrList.INT
        entry.value.list.i.extend(value)


__all__ = ["edit", "seed", "set_attr", "split", "task_list"]
