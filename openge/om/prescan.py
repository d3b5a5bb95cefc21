"""Bound a protobuf payload's object count before decoding it (untrusted metadata).

Layer: om. Decoding a protobuf message builds one object per sub-message, ~50-80 bytes each even
for an empty one (2 bytes on the wire): a 60 MB TASK_INFO of 30 million empty tasks takes
gigabytes before any count can be checked on the decoded message. ``check_budget`` walks the
wire format first, guided by the message descriptors, without building anything: it counts
sub-messages (in total and per capped repeated field) and their nesting depth, and raises a
GeError as soon as one is over its limit. Scalars, strings, bytes and packed arrays are skipped
in O(1), so the walk costs a few milliseconds for a real model's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from openge.errors import PARAM_INVALID, GeError
from openge.om.limits import LoadLimits

_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def _invalid(what: str, message: str) -> GeError:
    return GeError(PARAM_INVALID, f"invalid om {what}: {message}")


def _varint(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _invalid(what, "a truncated or overlong varint (the payload does not decode)")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _message_fields(descriptor: Any, cache: dict[Any, dict[int, Any]]) -> dict[int, Any]:
    """Field number → sub-message descriptor, for the message-typed fields of ``descriptor``."""
    found = cache.get(descriptor)
    if found is None:
        found = cache[descriptor] = {
            f.number: f.message_type for f in descriptor.fields if f.type == _MESSAGE
        }
    return found


def check_budget(
    data: Any,
    descriptor: Any,
    limits: LoadLimits,
    what: str,
    caps: Mapping[tuple[str, int], tuple[str, str]] | None = None,
    max_depth: int | None = None,
) -> int:
    """Walk ``data`` (a serialized ``descriptor`` message) and return its sub-message count.

    GeError when the payload is malformed at the wire level, when it holds more sub-messages
    than ``limits.max_objects``, nests them deeper than ``3 * limits.max_nesting + 8``, or
    when a repeated field listed in ``caps`` ((message full name, field number) → (limit name,
    label)) has more entries in total than that limit. With ``max_depth`` the walk counts the
    messages down to that depth only (a quick walk of the top levels).
    """
    raw = bytes(data)
    total_cap = limits.max_objects
    depth_cap = 3 * limits.max_nesting + 8
    counts: dict[tuple[str, int], int] = {}
    cache: dict[Any, dict[int, Any]] = {}
    total = 0
    # Depth-first with the paused parents on the stack: memory stays O(depth), however many
    # sibling messages there are.
    stack: list[tuple[Any, int, int, int]] = []
    desc, pos, end, depth = descriptor, 0, len(raw), 0
    while True:
        fields = _message_fields(desc, cache)
        child = None
        while pos < end:
            tag = raw[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = _varint(raw, pos, end, what)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                _, pos = _varint(raw, pos, end, what)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                if pos < end and raw[pos] < 0x80:
                    length = raw[pos]
                    pos += 1
                else:
                    length, pos = _varint(raw, pos, end, what)
                if length > end - pos:
                    raise _invalid(what, f"a field of {length} bytes runs past its message")
                sub = fields.get(number)
                if sub is not None:
                    total += 1
                    if total > total_cap:
                        limits.check("max_objects", total, f"{what}: the number of objects")
                    if depth + 1 > depth_cap:
                        limits.check(
                            "max_nesting", (depth + 1 - 8) // 3 + 1, f"{what}: nesting depth"
                        )
                    cap = caps.get((desc.full_name, number)) if caps else None
                    if cap is not None:
                        key = (desc.full_name, number)
                        counts[key] = counts.get(key, 0) + 1
                        name, label = cap
                        if counts[key] > getattr(limits, name):
                            limits.check(name, counts[key], f"{what}: the number of {label}")
                    if length and (max_depth is None or depth + 1 < max_depth):
                        child = (sub, pos, pos + length, depth + 1)
                pos += length
                if child is not None:
                    break
            else:
                raise _invalid(what, f"wire type {wire} (groups are not used by openge)")
            if pos > end:
                raise _invalid(what, "a field runs past the end of its message")
        if child is not None:
            stack.append((desc, pos, end, depth))
            desc, pos, end, depth = child
            continue
        if not stack:
            break
        desc, pos, end, depth = stack.pop()
    return total


def check_metadata(pc: Any, limits: LoadLimits, *, tasks: bool) -> None:
    """The size checks of a parsed container before its protobufs are decoded: whole model
    bytes, metadata bytes, then the object budget of MODEL_DEF (and of TASK_INFO with
    ``tasks``)."""
    from openge.om import ge_ir_pb2, task_pb2

    limits.check("max_model_bytes", len(pc.buffer), "the model's size in bytes")
    task_len = 0 if pc.task_body is None else len(pc.task_body)
    limits.check(
        "max_metadata_bytes",
        len(pc.model_def) + task_len,
        "the model's metadata size (MODEL_DEF + TASK_INFO bytes)",
    )
    # A payload under FULL_WALK_BYTES holds at most half as many objects as bytes, which the
    # decoder handles in bounded memory: only the levels whose entries become Python objects
    # one by one (tasks, graph ops) are counted. A bigger payload is walked in full.
    md_depth = None if len(pc.model_def) > FULL_WALK_BYTES else 2
    check_budget(
        pc.model_def, ge_ir_pb2.ModelDef.DESCRIPTOR, limits, "MODEL_DEF", _MODEL_CAPS, md_depth
    )
    if tasks and pc.task_body is not None:
        task_depth = None if len(pc.task_body) > FULL_WALK_BYTES else 1
        check_budget(
            pc.task_body, task_pb2.TaskList.DESCRIPTOR, limits, "TASK_INFO", _TASK_CAPS, task_depth
        )


#: Metadata payloads above this size get the full object walk (below it, a walk of the top
#: levels: a real model's metadata is 3-200 KB).
FULL_WALK_BYTES = 1 << 20

#: TaskList repeated fields capped by ``max_tasks`` (inputs, outputs, variables, externals, tasks).
_TASK_CAPS = {
    ("openge.task.TaskList", 9): ("max_tasks", "model inputs"),
    ("openge.task.TaskList", 10): ("max_tasks", "model outputs"),
    ("openge.task.TaskList", 11): ("max_tasks", "variables"),
    ("openge.task.TaskList", 12): ("max_tasks", "external weights"),
    ("openge.task.TaskList", 14): ("max_tasks", "tasks"),
}
#: The ops of the ModelDef's graphs (each becomes a graph node at load) capped by ``max_tasks``.
_MODEL_CAPS = {("ge.proto.GraphDef", 6): ("max_tasks", "graph ops")}

__all__ = ["check_budget", "check_metadata"]
