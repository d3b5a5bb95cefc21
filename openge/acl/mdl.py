"""``acl.mdl``: load, describe and execute models; datasets; dynamic gears; AIPP queries.

Each call checks its arguments, translates handles through the registries and calls one
``openge.runtime.Model`` method. Failures are return codes (pyACL's), never exceptions.
"""

from __future__ import annotations

import os
from typing import Any

from openge.acl import _api, _dump
from openge.acl import _codes as codes
from openge.acl._aipp import get_aipp_type, get_first_aipp_info  # noqa: F401 (acl.mdl)
from openge.acl._aipp_set import (  # noqa: F401 (part of acl.mdl)
    create_aipp,
    destroy_aipp,
    set_aipp_ax_swap_switch,
    set_aipp_by_input_index,
    set_aipp_crop_params,
    set_aipp_csc_params,
    set_aipp_dtc_pixel_mean,
    set_aipp_dtc_pixel_min,
    set_aipp_input_format,
    set_aipp_padding_params,
    set_aipp_pixel_var_reci,
    set_aipp_rbuv_swap_switch,
    set_aipp_scf_params,
    set_aipp_src_image_size,
    set_input_aipp,
)
from openge.acl._gears import (  # noqa: F401 (part of acl.mdl)
    get_dynamic_batch,
    get_dynamic_hw,
    get_input_dynamic_dims,
    get_input_dynamic_gear_count,
    set_dynamic_batch_size,
    set_dynamic_hw_size,
    set_input_dynamic_dims,
)
from openge.acl._memory import MEMORY as _MEMORY
from openge.acl._models import MODELS as _MODELS
from openge.acl._models import (
    DatasetError as _DatasetError,
)
from openge.acl._models import (
    ModelEntry as _ModelEntry,
)
from openge.acl._models import (
    dataset_arrays as _dataset_arrays,
)
from openge.acl._models import (
    io_size as _io_size,
)
from openge.acl._models import (
    run_datasets as _run_datasets,
)
from openge.acl._state import STATE as _STATE
from openge.acl._state import Dataset as _Dataset
from openge.acl._state import ModelDescHandle as _ModelDescHandle
from openge.acl._streams import STREAMS as _STREAMS
from openge.acl._tensor_desc import (  # noqa: F401 (part of acl.mdl)
    get_dataset_tensor_desc,
    set_dataset_tensor_desc,
)
from openge.errors import GeError
from openge.runtime import Model
from openge.runtime import query_size as _query_size

# ----- loading ------------------------------------------------------------------------------


def _register(model: Model) -> tuple[int, int]:
    model_id = _MODELS.add(_ModelEntry(model))
    _dump.attach(model, model_id)
    return model_id, codes.SUCCESS


def _read_memory(ptr: int, size: int, call: str) -> bytes | int:
    _api.need_int(ptr, "ptr")
    _api.need_int(size, "size")
    if size <= 0:
        return _api.fail(codes.INVALID_PARAM, f"{call}: size {size} must be > 0")
    why = _MEMORY.check(ptr, size)
    if why:
        return _api.fail(codes.INVALID_PARAM, f"{call}: {why}")
    # The device copies the model at load; the caller may free its buffer afterwards.
    return bytes(_MEMORY.view(ptr, size))


@_api.acl_call(lambda code: (0, code))
def load_from_file(model_path: str) -> tuple[int, int]:
    """``aclmdlLoadFromFile`` → ``(model_id, ret)``."""
    _api.need_str(model_path, "model_path")
    if not _STATE.initialized:
        return 0, _api.not_initialized("acl.mdl.load_from_file")
    return _register(Model.from_file(model_path))


@_api.acl_call(lambda code: (0, code))
def load_from_mem(model: int, model_size: int) -> tuple[int, int]:
    """``aclmdlLoadFromMem(ptr, size)`` → ``(model_id, ret)``: the bytes are copied."""
    if not _STATE.initialized:
        return 0, _api.not_initialized("acl.mdl.load_from_mem")
    data = _read_memory(model, model_size, "acl.mdl.load_from_mem")
    if isinstance(data, int):
        return 0, data
    return _register(Model.from_bytes(data))


def _caller_memory(ptr: int, size: int, call: str, what: str) -> Any:
    _api.need_int(ptr, f"{what}_ptr")
    _api.need_int(size, f"{what}_size")
    if ptr == 0:
        return None  # the runtime allocates it (as ACL does for a null pointer)
    why = _MEMORY.check(ptr, size)
    if why:
        raise GeError(codes.INVALID_PARAM, f"{call}: {what} memory: {why}")
    return _MEMORY.view(ptr, size)


@_api.acl_call(lambda code: (0, code))
def load_from_file_with_mem(
    model_path: str, work_ptr: int, work_size: int, weight_ptr: int, weight_size: int
) -> tuple[int, int]:
    """``aclmdlLoadFromFileWithMem`` → ``(model_id, ret)``: the model's work and weight
    memory are the caller's blocks (null pointers: the runtime allocates)."""
    _api.need_str(model_path, "model_path")
    if not _STATE.initialized:
        return 0, _api.not_initialized("acl.mdl.load_from_file_with_mem")
    call = "acl.mdl.load_from_file_with_mem"
    work = _caller_memory(work_ptr, work_size, call, "work")
    weight = _caller_memory(weight_ptr, weight_size, call, "weight")
    return _register(Model.from_file(model_path, work_memory=work, weight_memory=weight))


@_api.acl_call(lambda code: (0, code))
def load_from_mem_with_mem(
    model: int, model_size: int, work_ptr: int, work_size: int, weight_ptr: int, weight_size: int
) -> tuple[int, int]:
    """``aclmdlLoadFromMemWithMem`` → ``(model_id, ret)``."""
    if not _STATE.initialized:
        return 0, _api.not_initialized("acl.mdl.load_from_mem_with_mem")
    call = "acl.mdl.load_from_mem_with_mem"
    data = _read_memory(model, model_size, call)
    if isinstance(data, int):
        return 0, data
    work = _caller_memory(work_ptr, work_size, call, "work")
    weight = _caller_memory(weight_ptr, weight_size, call, "weight")
    return _register(Model.from_bytes(data, work_memory=work, weight_memory=weight))


@_api.acl_call(lambda code: (0, 0, code))
def query_size(model_path: str) -> tuple[int, int, int]:
    """``aclmdlQuerySize`` → ``(work_size, weight_size, ret)``."""
    _api.need_str(model_path, "model_path")
    if not os.path.isfile(model_path):
        return 0, 0, _api.fail(145002, f"acl.mdl.query_size: no file {model_path!r}")
    work, weight = _query_size(model_path)
    return work, weight, codes.SUCCESS


@_api.acl_call(lambda code: (0, 0, code))
def query_size_from_mem(model: int, model_size: int) -> tuple[int, int, int]:
    """``aclmdlQuerySizeFromMem`` → ``(work_size, weight_size, ret)``."""
    data = _read_memory(model, model_size, "acl.mdl.query_size_from_mem")
    if isinstance(data, int):
        return 0, 0, data
    work, weight = _query_size(data)
    return work, weight, codes.SUCCESS


def unload(model_id: int) -> int:
    """``aclmdlUnload``; later use of the id returns ACL_ERROR_INVALID_MODEL_ID."""
    _api.need_int(model_id, "model_id")
    entry = _MODELS.pop(model_id)
    if entry is None:
        return _api.fail(codes.INVALID_MODEL_ID, f"acl.mdl.unload: unknown model id {model_id}")
    with entry.lock:
        entry.model.close()
    return codes.SUCCESS


def _entry(model_id: Any, call: str) -> _ModelEntry | int:
    _api.need_int(model_id, "model_id")
    entry = _MODELS.get(model_id)
    if entry is None:
        return _api.fail(codes.INVALID_MODEL_ID, f"{call}: model id {model_id} is not loaded")
    return entry


# ----- descriptions -------------------------------------------------------------------------


def create_desc() -> int:
    """``aclmdlCreateDesc`` → desc handle."""
    return _STATE.descs.add(_ModelDescHandle())


def destroy_desc(model_desc: int) -> int:
    """``aclmdlDestroyDesc``."""
    return _api.release(_STATE.descs, model_desc, "acl.mdl.destroy_desc")


def get_desc(model_desc: int, model_id: int) -> int:
    """``aclmdlGetDesc``: fill the desc with the model's inputs and outputs."""
    _api.need_int(model_desc, "model_desc")
    desc = _STATE.descs.get(model_desc)
    if desc is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.mdl.get_desc: unknown desc {model_desc:#x}")
    entry = _entry(model_id, "acl.mdl.get_desc")
    if isinstance(entry, int):
        return entry
    desc.model_id = model_id
    desc.model = entry.model
    desc.inputs = list(entry.model.inputs)
    desc.outputs = list(entry.model.outputs)
    return codes.SUCCESS


def _desc(model_desc: Any) -> _ModelDescHandle | None:
    _api.need_int(model_desc, "model_desc")
    return _STATE.descs.get(model_desc)


def _io(model_desc: Any, index: Any, output: bool):
    desc = _desc(model_desc)
    _api.need_int(index, "index")
    if desc is None:
        return None
    items = desc.outputs if output else desc.inputs
    return items[index] if 0 <= index < len(items) else None


def get_num_inputs(model_desc: int) -> int:
    """Number of model inputs (0 for an unknown or unfilled desc)."""
    desc = _desc(model_desc)
    return len(desc.inputs) if desc is not None else 0


def get_num_outputs(model_desc: int) -> int:
    """Number of model outputs."""
    desc = _desc(model_desc)
    return len(desc.outputs) if desc is not None else 0


def get_input_size_by_index(model_desc: int, index: int) -> int:
    """Bytes of input ``index`` (0 when out of range)."""
    io = _io(model_desc, index, False)
    return _io_size(io) if io is not None else 0


def get_output_size_by_index(model_desc: int, index: int) -> int:
    """Bytes of output ``index``."""
    io = _io(model_desc, index, True)
    return _io_size(io) if io is not None else 0


def _dims(io: Any, shape: Any = None) -> dict[str, Any]:
    dims = [int(d) for d in (io.shape if shape is None else shape)]
    return {"name": io.name, "dimCount": len(dims), "dims": dims}


def _dims_call(model_desc: int, index: int, output: bool, call: str) -> tuple[dict, int]:
    io = _io(model_desc, index, output)
    if io is None:
        return {}, _api.fail(codes.INVALID_PARAM, f"{call}: no {index} in this desc")
    return _dims(io), codes.SUCCESS


def get_input_dims(model_desc: int, index: int) -> tuple[dict, int]:
    """``({"name", "dimCount", "dims"}, ret)`` of input ``index`` (-1 for dynamic axes)."""
    return _dims_call(model_desc, index, False, "acl.mdl.get_input_dims")


def get_input_dims_v2(model_desc: int, index: int) -> tuple[dict, int]:
    """As ``get_input_dims`` (openge has no private device formats to unfold)."""
    return _dims_call(model_desc, index, False, "acl.mdl.get_input_dims_v2")


def get_output_dims(model_desc: int, index: int) -> tuple[dict, int]:
    """Dims of output ``index``."""
    return _dims_call(model_desc, index, True, "acl.mdl.get_output_dims")


def get_cur_output_dims(model_desc: int, index: int) -> tuple[dict, int]:
    """Dims of output ``index`` for the gear in use (the static dims for a static model)."""
    io = _io(model_desc, index, True)
    if io is None:
        return {}, _api.fail(codes.INVALID_PARAM, f"acl.mdl.get_cur_output_dims: no output {index}")
    method = getattr(_desc(model_desc).model, "get_cur_output_dims", None)
    if method is None:
        return _dims(io), codes.SUCCESS
    try:
        return _dims(io, method(index)), codes.SUCCESS
    except GeError as err:
        return {}, _api.fail(codes.from_error(err.code), str(err))


def get_input_name_by_index(model_desc: int, index: int) -> str:
    """Name of input ``index`` ("" when out of range)."""
    io = _io(model_desc, index, False)
    return io.name if io is not None else ""


def get_output_name_by_index(model_desc: int, index: int) -> str:
    """Name of output ``index``."""
    io = _io(model_desc, index, True)
    return io.name if io is not None else ""


def get_input_format(model_desc: int, index: int) -> int:
    """aclFormat of input ``index`` (-1 … ACL_FORMAT_UNDEFINED when out of range)."""
    io = _io(model_desc, index, False)
    return int(io.format) if io is not None else -1


def get_output_format(model_desc: int, index: int) -> int:
    """aclFormat of output ``index``."""
    io = _io(model_desc, index, True)
    return int(io.format) if io is not None else -1


def get_input_data_type(model_desc: int, index: int) -> int:
    """aclDataType of input ``index`` (-1 … ACL_DT_UNDEFINED when out of range)."""
    io = _io(model_desc, index, False)
    return int(io.dtype) if io is not None else -1


def get_output_data_type(model_desc: int, index: int) -> int:
    """aclDataType of output ``index``."""
    io = _io(model_desc, index, True)
    return int(io.dtype) if io is not None else -1


def _index_by_name(model_desc: int, name: str, output: bool) -> tuple[int, int]:
    desc = _desc(model_desc)
    _api.need_str(name, "name")
    items = [] if desc is None else (desc.outputs if output else desc.inputs)
    for i, io in enumerate(items):
        if io.name == name:
            return i, codes.SUCCESS
    return 0, codes.INVALID_PARAM  # absent: a normal question (acllite asks it), not logged


def get_input_index_by_name(model_desc: int, name: str) -> tuple[int, int]:
    """``(index, ret)`` of the input called ``name``; ret != 0 when absent."""
    return _index_by_name(model_desc, name, False)


def get_output_index_by_name(model_desc: int, name: str) -> tuple[int, int]:
    """``(index, ret)`` of the output called ``name``."""
    return _index_by_name(model_desc, name, True)


# ----- datasets -----------------------------------------------------------------------------


def create_dataset() -> int:
    """``aclmdlCreateDataset`` → dataset handle."""
    return _STATE.datasets.add(_Dataset())


def destroy_dataset(dataset: int) -> int:
    """``aclmdlDestroyDataset`` (its buffers are not destroyed)."""
    return _api.release(_STATE.datasets, dataset, "acl.mdl.destroy_dataset")


def add_dataset_buffer(dataset: int, data_buffer: int) -> tuple[int, int]:
    """``aclmdlAddDatasetBuffer`` → ``(dataset, ret)``."""
    _api.need_int(dataset, "dataset")
    _api.need_int(data_buffer, "data_buffer")
    ds = _STATE.datasets.get(dataset)
    if ds is None or _STATE.buffers.get(data_buffer) is None:
        return dataset, _api.fail(codes.INVALID_PARAM, "acl.mdl.add_dataset_buffer: unknown handle")
    ds.buffers.append(data_buffer)
    return dataset, codes.SUCCESS


def get_dataset_num_buffers(dataset: int) -> int:
    """Number of buffers in the dataset (0 when unknown)."""
    ds = _STATE.datasets.get(_api.need_int(dataset, "dataset"))
    return len(ds.buffers) if ds is not None else 0


def get_dataset_buffer(dataset: int, index: int) -> int:
    """Buffer handle ``index`` of the dataset (0 when out of range)."""
    ds = _STATE.datasets.get(_api.need_int(dataset, "dataset"))
    _api.need_int(index, "index")
    if ds is None or not 0 <= index < len(ds.buffers):
        return 0
    return ds.buffers[index]


# ----- execution ----------------------------------------------------------------------------


def _run(entry: _ModelEntry, inputs: int, outputs: int, call: str) -> int:
    try:
        _run_datasets(entry, inputs, outputs)
    except _DatasetError as err:
        return _api.fail(err.code, f"{call}: {err}")
    except GeError as err:
        return _api.fail(codes.from_error(err.code), f"{call}: {err}")
    return codes.SUCCESS


def execute(model_id: int, input: int, output: int) -> int:
    """``aclmdlExecute``: read the input buffers, write the output buffers (views of their
    memory; no copies)."""
    if not _STATE.initialized:
        return _api.not_initialized("acl.mdl.execute")
    entry = _entry(model_id, "acl.mdl.execute")
    if isinstance(entry, int):
        return entry
    return _run(entry, input, output, "acl.mdl.execute")


def execute_async(model_id: int, input: int, output: int, stream: int) -> int:
    """``aclmdlExecuteAsync``: queued on the stream; errors show at ``synchronize_stream``."""
    if not _STATE.initialized:
        return _api.not_initialized("acl.mdl.execute_async")
    _api.need_int(stream, "stream")
    entry = _entry(model_id, "acl.mdl.execute_async")
    if isinstance(entry, int):
        return entry
    target = _STREAMS.resolve(stream)
    if target is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.mdl.execute_async: unknown stream {stream:#x}")
    for handle, descs, out in (
        (input, entry.model.inputs, False),
        (output, entry.model.outputs, True),
    ):
        try:
            _dataset_arrays(handle, descs, output=out)  # the device checks the datasets at launch
        except _DatasetError as err:
            return _api.fail(err.code, f"acl.mdl.execute_async: {err}")
    return target.submit(lambda: _run(entry, input, output, "acl.mdl.execute_async"))
