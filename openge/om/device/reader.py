"""Read a device .om (made by Ascend ATC or GE's serializer) under untrusted-file rules.

Layer: om. ``read_device_om`` checks the header (1.0 / 2.0, ``model_length`` vs ``length``),
the partition tables (tiny / wide, one block per model), then opens flow and bundle models'
nested oms recursively (depth-limited). Payloads stay views into the caller's buffer; the
ModelDef of a model is decoded (and its attribute compression undone) on first use. Nothing
from the file is executed; every failure is a GeError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openge.errors import GeError
from openge.om.device import wire
from openge.om.device.binio import invalid
from openge.om.device.compress import decompress
from openge.om.device.header import DeviceHeader, ModelType, is_device_magic, parse_header
from openge.om.device.inout import IoInfo, parse_inout
from openge.om.device.kernels import KernelBin, parse_kernel_store
from openge.om.device.lenient import decode_lenient
from openge.om.device.partitions import DevicePartition, PartType, read_tables
from openge.om.ge_ir_pb2 import ModelDef

#: Nested oms (flow submodels, bundle members) are opened this many levels deep at most.
MAX_DEPTH = 4
#: At most this many nested oms in one file, all levels together.
MAX_NESTED = 256
_KERNEL_STORES = (PartType.TBE_KERNELS, PartType.CUST_AICPU_KERNELS, PartType.CUSTOM_OPS)


@dataclass
class NestedOm:
    """A complete om inside another one (a flow submodel or a bundle member)."""

    kind: str
    name: str
    model_type: str
    size: int
    om: DeviceOm | None
    note: str = ""


@dataclass
class DeviceModel:
    """One [partition table + payloads] block of a device om."""

    index: int
    partitions: list[DevicePartition]

    def part(self, ptype: int) -> DevicePartition | None:
        """The first partition of that type, or None."""
        for p in self.partitions:
            if p.type == ptype:
                return p
        return None


@dataclass
class DeviceOm:
    """A parsed device om: header, model blocks, nested oms; payloads decoded on demand."""

    header: DeviceHeader
    table_form: str
    models: list[DeviceModel]
    buffer: memoryview
    depth: int = 0
    nested: list[NestedOm] = field(default_factory=list)
    flow_name: str = ""
    var_size: int | None = None
    _model_defs: dict[int, Any] = field(default_factory=dict, repr=False)
    _restored: dict[int, int] = field(default_factory=dict, repr=False)

    def view(self, part: DevicePartition) -> memoryview:
        """A partition's payload (no copy)."""
        return self.buffer[part.offset : part.end]

    def has_model_def(self, index: int = 0) -> bool:
        """True when model block ``index`` has a MODEL_DEF partition."""
        return index < len(self.models) and self.models[index].part(PartType.MODEL_DEF) is not None

    def model_def(self, index: int = 0) -> Any:
        """The ``ge.proto.ModelDef`` of model block ``index``, decompressed (cached)."""
        if index not in self._model_defs:
            part = self.models[index].part(PartType.MODEL_DEF)
            if part is None:
                raise invalid(f"model {index} has no MODEL_DEF partition")
            md = parse_model_def(self.view(part), f"MODEL_DEF of model {index}")
            self._restored[index] = decompress(md)
            self._model_defs[index] = md
        return self._model_defs[index]

    def restored_attrs(self, index: int = 0) -> int:
        """How many compressed attrs were restored in model ``index``'s ModelDef."""
        self.model_def(index)
        return self._restored[index]

    def weights(self, index: int = 0) -> memoryview:
        """Model ``index``'s WEIGHTS_DATA (empty when it has none)."""
        part = self.models[index].part(PartType.WEIGHTS_DATA)
        return self.view(part) if part is not None else self.buffer[0:0]

    def kernels(self, index: int = 0) -> list[KernelBin]:
        """The kernels listed in model ``index``'s kernel stores (names and sizes only)."""
        out: list[KernelBin] = []
        for part in self.models[index].partitions:
            if part.type in _KERNEL_STORES:
                out += parse_kernel_store(self.view(part), part.type, part.offset)
        return out

    def io_info(self, index: int = 0) -> IoInfo | None:
        """Model ``index``'s MODEL_INOUT_INFO, or None when it has none."""
        part = self.models[index].part(PartType.MODEL_INOUT_INFO)
        return parse_inout(self.view(part)) if part is not None else None

    def release(self) -> None:
        """Drop decoded data and nested views so the underlying buffer can be closed."""
        self._model_defs.clear()
        for n in self.nested:
            if n.om is not None:
                n.om.release()
        self.nested = []
        self.buffer = memoryview(b"")


def parse_model_def(data: memoryview, what: str) -> Any:
    """A ModelDef from bytes (GeError 145000 when they do not decode)."""
    try:
        return ModelDef.FromString(data)
    except Exception as err:  # DecodeError, or protobuf's own recursion / size limits
        if "UTF-8" in str(err):  # GE's C++ writer lets invalid UTF-8 through: replace it
            try:
                return decode_lenient(data)
            except Exception:  # the original error says more
                pass
        raise invalid(f"{what} does not decode as ge.proto.ModelDef: {err}") from None


def as_view(buffer: Any) -> memoryview:
    """A flat byte memoryview of a bytes-like object (GeError for anything else)."""
    try:
        view = memoryview(buffer)
    except (TypeError, ValueError) as err:
        raise invalid(
            f"expected a bytes-like om buffer, got {type(buffer).__name__} ({err})"
        ) from None
    if not view.c_contiguous:
        raise invalid("an om buffer must be contiguous")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def read_device_om(buffer: Any, *, depth: int = 0, _budget: list[int] | None = None) -> DeviceOm:
    """Check and split a device om held in ``buffer`` (bytes, bytearray, memoryview, mmap)."""
    view = as_view(buffer)
    budget = _budget if _budget is not None else [MAX_NESTED]
    header = parse_header(view)
    form, blocks = read_tables(view, header)
    om = DeviceOm(header, form, [DeviceModel(i, b) for i, b in enumerate(blocks)], view, depth)
    main = om.models[0]
    if header.modeltype == ModelType.BUNDLE:
        _read_bundle(om, budget)
    elif main.part(PartType.MODEL_DEF) is None:
        raise invalid("no MODEL_DEF partition (the graph); every model has one")
    if main.part(PartType.FLOW_MODEL) is not None or header.modeltype == ModelType.FLOW:
        _read_flow(om, budget)
    return om


def _nested(om: DeviceOm, data: memoryview, what: str, budget: list[int]) -> DeviceOm:
    if om.depth + 1 > MAX_DEPTH:
        raise invalid(f"{what}: oms nested more than {MAX_DEPTH} levels deep")
    budget[0] -= 1
    if budget[0] < 0:
        raise invalid(f"more than {MAX_NESTED} nested oms")
    try:
        return read_device_om(data, depth=om.depth + 1, _budget=budget)
    except GeError as err:
        raise GeError(err.code, f"{what}: {err.message}") from None


def _read_flow(om: DeviceOm, budget: list[int]) -> None:
    main = om.models[0]
    flow = main.part(PartType.FLOW_MODEL)
    if flow is None:
        raise invalid("a flow model (modeltype 3) without a FLOW_MODEL partition")
    for number, _, value in wire.fields(om.view(flow), "FLOW_MODEL"):
        if number == 1:
            om.flow_name = wire.text(value, "FLOW_MODEL model_name")
    for i, part in enumerate(p for p in main.partitions if p.type == PartType.FLOW_SUBMODEL):
        what = f"flow submodel {i}"
        name, mtype, path, om_data = "", "", "", None
        for number, _, value in wire.fields(om.view(part), what):
            if number == 1:
                name = wire.text(value, f"{what} model_name")
            elif number == 2:
                mtype = wire.text(value, f"{what} model_type")
            elif number == 3 and not isinstance(value, int):
                om_data = value
            elif number == 9:
                path = wire.text(value, f"{what} om_data_file_path")
        what = f"flow submodel {i} ({name})"
        if om_data is not None and is_device_magic(om_data):
            sub = _nested(om, om_data, what, budget)
            om.nested.append(NestedOm("flow submodel", name, mtype, len(om_data), sub))
        elif om_data is not None and len(om_data):
            om.nested.append(
                NestedOm("flow submodel", name, mtype, len(om_data), None, "not an om (no IMOD)")
            )
        else:
            note = f"om data in external file {path!r} (not opened)" if path else "no om data"
            om.nested.append(NestedOm("flow submodel", name, mtype, 0, None, note))


def _read_bundle(om: DeviceOm, budget: list[int]) -> None:
    for i, part in enumerate(om.models[0].partitions):
        data = om.view(part)
        if part.type == PartType.BUNDLE_MODEL_VAR_INFO:
            if len(data) != 8:
                raise invalid(f"BUNDLE_MODEL_VAR_INFO of {len(data)} bytes; it holds one u64")
            om.var_size = int.from_bytes(data, "little")
        elif part.type == PartType.BUNDLE_MODEL_INFO:
            sub = _nested(om, data, f"bundle member {i}", budget)
            om.nested.append(NestedOm("bundle member", sub.header.name, "", len(data), sub))
    if not om.nested:
        raise invalid("a bundle model (modeltype 5) without BUNDLE_MODEL_INFO partitions")


def is_device_om(buffer: Any) -> bool:
    """True for an om file that openge did not write (no openge task list): a device om.

    Answers from the header and partition table only, never raising: a buffer that is not an
    om at all gives False (openge's own reader then reports what is wrong with it).
    """
    try:
        view = as_view(buffer)
        header = parse_header(view)
        _, blocks = read_tables(view, header)
    except GeError:
        return len(buffer) >= 12 and _looks_device(buffer)
    task = next((p for p in blocks[0] if p.type == PartType.TASK_INFO), None)
    if task is None or len(blocks) != 1 or task.size < 4:
        return True
    return bytes(view[task.offset : task.offset + 4]) != b"OTSK"


def is_openge_om(buffer: Any) -> bool:
    """True for a well-formed om that openge wrote (one model block with openge's task list)."""
    try:
        view = as_view(buffer)
        header = parse_header(view)
        _, blocks = read_tables(view, header)
    except GeError:
        return False
    task = next((p for p in blocks[0] if p.type == PartType.TASK_INFO), None)
    if task is None or len(blocks) != 1 or task.size < 4:
        return False
    return bytes(view[task.offset : task.offset + 4]) == b"OTSK"


def _looks_device(buffer: Any) -> bool:
    """A malformed file whose header is an old (1.0) device header: route it to this reader."""
    try:
        view = as_view(buffer)
    except GeError:
        return False
    return is_device_magic(view) and int.from_bytes(view[8:12], "little") != 0x20000000


__all__ = [
    "MAX_DEPTH",
    "MAX_NESTED",
    "DeviceModel",
    "DeviceOm",
    "NestedOm",
    "as_view",
    "is_device_om",
    "is_openge_om",
    "parse_model_def",
    "read_device_om",
]
