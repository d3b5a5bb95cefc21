"""Read .om bytes back into a CompiledModel, or just the model's info (OM_FORMAT.md).

Layer: om. ``deserialize`` checks everything (container rules, checksum, ModelDef, task list,
op types, slot bounds) and returns a CompiledModel whose ``weights`` is a memoryview into the
caller's buffer: nothing is copied, nothing from the file is executed. ``read_info`` reads the
header, partitions and ModelDef attrs only (no weights touched) for compatibility checks and
size queries; the version rules of OM_FORMAT.md §6 are applied by the runtime on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openge.errors import PARAM_INVALID, GeError
from openge.om import container as ct
from openge.om.agreement import check_inout_info, decode_graph_checked
from openge.om.gears import SHAPE_DATA_NAME, with_ranges
from openge.om.limits import LoadLimits, resolve_limits
from openge.om.modeldef import graph_from_proto, model_attr, parse_model_def
from openge.om.plan import CompiledModel
from openge.om.prescan import check_metadata
from openge.om.taskinfo import decode_task_info, validate_plan
from openge.ops import has_op
from openge.version import OM_FORMAT_VERSION


@dataclass(frozen=True)
class OmInfo:
    """What an .om says about itself, read without touching its weights.

    ``format`` is ``(MAJOR, MINOR)`` from the ModelDef's ``openge_format`` attr (None for a
    foreign model, e.g. a device .om made by Ascend's ATC, which openge cannot execute).
    ``producer`` is the openge version that compiled the model (``openge_producer``);
    ``platform_version`` the header's, i.e. the openge that wrote the file.
    """

    header: ct.OmHeader
    partitions: tuple[ct.Partition, ...]
    foreign: bool
    name: str
    producer: str
    platform_version: str
    format: tuple[int, int] | None
    online: bool
    is_dynamic: bool
    memory_size: int
    weight_size: int
    num_ops: int
    soc_version: str
    options: dict[str, str] = field(default_factory=dict)
    inputs: tuple[ct.InOutDesc, ...] = ()
    outputs: tuple[ct.InOutDesc, ...] = ()
    checksum_verified: bool = False
    #: A gear model's gears from MODEL_INOUT_INFO: ("batch" | "hw" | "dims", values per gear).
    gears: tuple[str, tuple[tuple[int, ...], ...]] | None = None

    @property
    def executable(self) -> bool:
        """True for an openge model (a foreign one can be inspected, not run)."""
        return not self.foreign


def parse_format(text: Any) -> tuple[int, int]:
    """``"MAJOR.MINOR"`` → ``(MAJOR, MINOR)`` (GeError 145000 when malformed)."""
    major, sep, minor = str(text).partition(".")
    if sep and major.isdigit() and minor.isdigit() and len(major) < 10 and len(minor) < 10:
        return int(major), int(minor)
    raise GeError(PARAM_INVALID, f"invalid om: openge_format {text!r} is not 'MAJOR.MINOR'")


def _int_attr(md: Any, key: str, default: int) -> int:
    value = model_attr(md, key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str_attr(md: Any, key: str) -> str:
    value = model_attr(md, key, "")
    return value if isinstance(value, str) else ""


def _options(md: Any) -> dict[str, str]:
    value = model_attr(md, "build_options", {})
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def read_model_def(
    buffer: Any, *, verify_checksum: bool = False, limits: LoadLimits | None = None
) -> Any:
    """The ``ge.proto.ModelDef`` of any .om (openge's or a device model's), for inspection."""
    pc = ct.parse_container(buffer, verify_checksum=verify_checksum)
    check_metadata(pc, resolve_limits(limits), tasks=False)
    return parse_model_def(pc.model_def)


def read_info(
    buffer: Any, *, verify_checksum: bool = False, limits: LoadLimits | None = None
) -> OmInfo:
    """Header, partitions, producer, format, online flag and sizes of an .om (bytes-like).

    The weights are not read (the checksum, which covers them, is checked only with
    ``verify_checksum=True``). Raises GeError for a buffer that is not a well-formed .om or
    that exceeds ``limits`` (docs/security.md).
    """
    pc = ct.parse_container(buffer, verify_checksum=verify_checksum)
    check_metadata(pc, resolve_limits(limits), tasks=False)
    md = parse_model_def(pc.model_def)
    weights_part = pc.partition(ct.PartitionType.WEIGHTS_DATA)
    fmt: tuple[int, int] | None = None
    if not pc.foreign:
        if "openge_format" not in md.attr:
            raise GeError(
                PARAM_INVALID, "invalid om: openge task list but no openge_format model attr"
            )
        fmt = parse_format(_str_attr(md, "openge_format"))
    online = bool(model_attr(md, "openge_online", False)) if not pc.foreign else False
    return OmInfo(
        header=pc.header,
        partitions=tuple(pc.partitions),
        foreign=pc.foreign,
        name=md.name or pc.header.name,
        producer=_str_attr(md, "openge_producer"),
        platform_version=pc.header.platform_version,
        format=fmt,
        online=online,
        is_dynamic=bool(pc.header.is_unknow_model),
        memory_size=_int_attr(md, "memory_size", 0),
        weight_size=_int_attr(
            md, "weight_size", weights_part.size if weights_part is not None else 0
        ),
        num_ops=pc.header.ops,
        soc_version=_str_attr(md, "soc_version"),
        options=_options(md),
        inputs=tuple(pc.inout.inputs),
        outputs=tuple(pc.inout.outputs),
        checksum_verified=pc.checksum_verified,
        gears=_gear_record(pc.inout),
    )


def _gear_record(inout: ct.InOutInfo) -> tuple[str, tuple[tuple[int, ...], ...]] | None:
    if inout.dynamic_batch:
        return "batch", tuple((int(b),) for b in inout.dynamic_batch)
    if inout.dynamic_hw:
        return "hw", tuple(inout.dynamic_hw)
    if inout.dynamic_dims:
        return "dims", tuple(inout.dynamic_dims)
    return None


def _mismatch(what: str, a: Any, b: Any) -> GeError:
    return GeError(PARAM_INVALID, f"invalid om: {what} disagree ({a!r} vs {b!r})")


def deserialize(
    buffer: Any, *, verify_checksum: bool = True, limits: LoadLimits | None = None
) -> CompiledModel:
    """The CompiledModel stored in an openge .om; ``weights`` is a view into ``buffer``.

    Raises GeError: 145006 for a truncated or mis-sized buffer, 145000 for a corrupted or
    invalid model, a foreign (device) model, an unknown op type, an out-of-range slot, or a
    model over ``limits`` (checked before its metadata is decoded).
    """
    limits = resolve_limits(limits)
    view = ct.as_byte_view(buffer)
    limits.check("max_model_bytes", len(view), "the model's size in bytes")
    pc = ct.parse_container(view, verify_checksum=verify_checksum)
    check_metadata(pc, limits, tasks=True)
    if pc.foreign:
        raise GeError(
            PARAM_INVALID,
            f"model {pc.header.name!r} was not made by openge (no openge task list; e.g. a "
            "device .om from Ascend ATC): openge can show its graph and header but cannot "
            "execute it; convert the original model with `openge atc` instead",
        )
    ours = OM_FORMAT_VERSION
    if pc.task_format_major != ours[0]:
        raise GeError(
            PARAM_INVALID,
            f"the om task list has format {pc.task_format_major}.x; this openge reads "
            f"{ours[0]}.x: re-run openge atc with this openge, or use a matching openge",
        )
    md = parse_model_def(pc.model_def)
    fmt = parse_format(_str_attr(md, "openge_format"))
    assert pc.task_body is not None
    plan = decode_task_info(pc.task_body)
    header = pc.header
    checks = [
        ("task-list and ModelDef formats", (plan.format_major, plan.format_minor), fmt),
        ("task-list format and TASK_INFO head", plan.format_major, pc.task_format_major),
        ("task-list weight size and WEIGHTS_DATA", plan.weight_size, len(pc.weights)),
        ("ModelDef and actual weight size", _int_attr(md, "weight_size", -1), len(pc.weights)),
        ("header genmode and task-list online", header.genmode, int(plan.online)),
        ("ModelDef and task-list online", model_attr(md, "openge_online", None), plan.online),
        ("header op count and task count", header.ops, len(plan.tasks)),
        ("header and task-list dynamic flags", header.is_unknow_model, int(plan.is_dynamic)),
        ("ModelDef and task-list memory size", _int_attr(md, "memory_size", -1), plan.memory_size),
    ]
    for what, a, b in checks:
        if a != b:
            raise _mismatch(what, a, b)
    if len(md.graph) < 1:
        raise GeError(PARAM_INVALID, "invalid om: the ModelDef has no graph")
    validate_plan(
        plan.tasks,
        num_inputs=len(plan.inputs),
        num_outputs=len(plan.outputs),
        variables=plan.variables,
        num_external=len(plan.external_weights),
        memory_size=plan.memory_size,
        weight_size=plan.weight_size,
        known_op=has_op,
    )
    check_inout_info(pc.inout.inputs, pc.inout.outputs, plan.inputs, plan.outputs)
    graph_def, weights = md.graph[0], pc.weights
    inputs, outputs = plan.inputs, plan.outputs
    if plan.gears is not None:
        inputs, outputs = attach_gears(plan, md, weights)
    graph = decode_graph_checked(
        graph_def, lambda: graph_from_proto(graph_def, weights), plan.inputs, plan.outputs, limits
    )
    return CompiledModel(
        name=plan.name,
        graph=graph,
        tasks=plan.tasks,
        inputs=inputs,
        outputs=outputs,
        weights=pc.weights,
        variables=plan.variables,
        external_weights=plan.external_weights,
        memory_size=plan.memory_size,
        options=plan.options,
        producer=plan.producer,
        online=plan.online,
        is_dynamic=plan.is_dynamic,
        stats=plan.stats,
        gears=plan.gears,
    )


def attach_gears(plan: Any, md: Any, weights: memoryview) -> tuple[list, list]:
    """Check a gear model's gear table against its task list, hook up its per-gear graphs
    (``md.graph[1:]``, decoded on first use) and return its io descs with their ranges."""
    gears = plan.gears
    gears.check(
        num_tasks=len(plan.tasks),
        num_inputs=len(plan.inputs),
        num_outputs=len(plan.outputs),
        memory_size=plan.memory_size,
    )
    shape_data = plan.inputs[-1]
    if shape_data.name != SHAPE_DATA_NAME or shape_data.shape != (gears.k,):
        raise GeError(
            PARAM_INVALID,
            f"invalid om: the last input of a gear model is {SHAPE_DATA_NAME} [{gears.k}], "
            f"not {shape_data.name} {list(shape_data.shape)}",
        )
    subs = list(md.graph[1:])
    gears.graphs = [lambda gd=gd: graph_from_proto(gd, weights) for gd in subs]
    return (
        with_ranges(plan.inputs, [g.input_shapes for g in gears.gears]),
        with_ranges(plan.outputs, [g.output_shapes for g in gears.gears]),
    )


__all__ = ["OmInfo", "deserialize", "parse_format", "read_info", "read_model_def"]
