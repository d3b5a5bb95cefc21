"""Loaded models by id, and datasets turned into the arrays ``Model.execute`` takes (views of
the buffers' memory: no copies)."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from openge.acl import _codes as codes
from openge.acl._memory import MEMORY
from openge.acl._state import STATE, Registry
from openge.om.plan import IODesc
from openge.runtime import Model


class ModelEntry:
    """A loaded model and the lock that orders its executions."""

    __slots__ = ("lock", "model")

    def __init__(self, model: Model) -> None:
        self.model = model
        self.lock = threading.Lock()


MODELS: Registry[ModelEntry] = Registry("model", small_ids=True)


class DatasetError(Exception):
    """A dataset that does not fit the model (carries the ACL code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


GEAR_INPUT = "ascend_mbatch_shape_data"


def largest_shape(desc: IODesc) -> tuple[int, ...]:
    """``desc``'s shape with each dynamic dim at its largest value (``IODesc.range``)."""
    shape = tuple(desc.shape)
    if all(d >= 0 for d in shape):
        return shape
    ranges = getattr(desc, "range", None) or [(d, d) for d in shape]
    return tuple(d if d >= 0 else int(r[1]) for d, r in zip(shape, ranges))


def io_size(desc: IODesc) -> int:
    """Bytes of ``desc`` at its largest shape (what a buffer for it must hold)."""
    return math.prod(largest_shape(desc)) * desc.dtype.itemsize


def _gear_shapes(dataset: Any, descs: list[IODesc]) -> list[tuple[int, ...]] | None:
    """The input shapes of the gear selected in the dataset's ``ascend_mbatch_shape_data``
    buffer (written by ``set_dynamic_batch_size`` / ``hw`` / ``dims``): its values fill the
    -1 dims in input order (a batch value fills every -1; an (h, w) pair each input's two).
    None when the model has no gear input or no gear was set (then: the largest gear)."""
    if not any(d < 0 for io in descs for d in io.shape):
        return None
    names = [d.name for d in descs]
    if GEAR_INPUT not in names:
        return None
    k = names.index(GEAR_INPUT)
    buf = STATE.buffers.get(dataset.buffers[k]) if k < len(dataset.buffers) else None
    size = io_size(descs[k])
    raw = None if buf is None or buf.size < size else MEMORY.checked_view(buf.addr, size)
    if raw is None or isinstance(raw, str):
        return None
    values = [int(v) for v in raw.view(np.int32)]
    if not any(values):
        return None
    holes = [sum(d < 0 for d in io.shape) for io in descs]
    it = iter(values)
    shapes = []
    for io, n in zip(descs, holes):
        if len(values) == 1:
            fill = values * n
        elif n and all(h in (0, len(values)) for h in holes) and sum(holes) != len(values):
            fill = values  # dynamic image size: every dynamic input takes (h, w)
        else:
            fill = [next(it, -1) for _ in range(n)]
        pos = iter(fill)
        shapes.append(tuple(next(pos) if d < 0 else d for d in io.shape))
    return shapes


def dataset_arrays(handle: int, descs: list[IODesc], output: bool) -> list[np.ndarray]:
    """One array per buffer of the dataset, typed and shaped as ``descs`` (views of the
    buffers' memory). Wrong count or a too small buffer → the input/output mismatch code."""
    mismatch = codes.MODEL_OUTPUT_NOT_MATCH if output else codes.MODEL_INPUT_NOT_MATCH
    kind = "output" if output else "input"
    dataset = STATE.datasets.get(handle)
    if dataset is None:
        raise DatasetError(codes.INVALID_PARAM, f"{kind} dataset {handle!r} is unknown")
    if len(dataset.buffers) != len(descs):
        raise DatasetError(
            mismatch,
            f"the {kind} dataset has {len(dataset.buffers)} buffers; the model has "
            f"{len(descs)} {kind}s",
        )
    gears = None if output else _gear_shapes(dataset, descs)
    arrays = []
    for i, (buf_handle, desc) in enumerate(zip(dataset.buffers, descs)):
        buf = STATE.buffers.get(buf_handle)
        if buf is None:
            raise DatasetError(codes.INVALID_PARAM, f"{kind} buffer {i} was destroyed")
        shape = tuple(desc.shape)
        if gears is not None or (
            not output and any(d < 0 for d in shape) and GEAR_INPUT in [d.name for d in descs]
        ):
            shape = gears[i] if gears is not None else largest_shape(desc)
        given = STATE.tensor_descs.get(dataset.tensor_descs.get(i, 0))
        if given is not None and not output:
            shape = tuple(given.dims)  # the actual dims of this run (set_dataset_tensor_desc)
        if any(d < 0 for d in shape):
            raise DatasetError(
                mismatch,
                f"{kind} {i} ({desc.name}) has dynamic dims {list(shape)}; give the actual dims "
                "with acl.mdl.set_dataset_tensor_desc",
            )
        need = math.prod(shape) * desc.dtype.itemsize
        if buf.size < need:
            raise DatasetError(
                mismatch,
                f"{kind} {i} ({desc.name}) needs {need} bytes; its buffer has {buf.size}",
            )
        raw = MEMORY.checked_view(buf.addr, need)
        if isinstance(raw, str):
            raise DatasetError(codes.INVALID_PARAM, f"{kind} {i} ({desc.name}): {raw}")
        arrays.append(raw.view(desc.dtype.np_dtype).reshape(shape))
    return arrays


def _set_output_desc(dataset: int, index: int, desc: IODesc, shape: tuple[int, ...]) -> None:
    from openge.acl._state import TensorDesc

    ds = STATE.datasets.get(dataset)
    if ds is None:
        return
    handle = ds.tensor_descs.get(index)
    current = STATE.tensor_descs.get(handle) if handle else None
    if current is None:
        ds.tensor_descs[index] = STATE.tensor_descs.add(
            TensorDesc(int(desc.dtype), list(shape), int(desc.format))
        )
    else:
        current.dims = list(shape)


def run_datasets(entry: ModelEntry, inputs: int, outputs: int) -> None:
    """Execute ``entry``'s model on the datasets: outputs are written in place; a gear model or
    one whose outputs have dynamic dims writes its results into the buffers and records their
    actual dims as the output dataset's tensor descs (``get_dataset_tensor_desc``)."""
    model = entry.model
    with entry.lock:
        in_arrays = dataset_arrays(inputs, model.inputs, output=False)
        dynamic = getattr(model, "gears", None) is not None  # outputs at the gear's shapes
        if not dynamic and not any(d < 0 for out in model.outputs for d in out.shape):
            model.execute(in_arrays, dataset_arrays(outputs, model.outputs, output=True))
            return
        results = model.execute(in_arrays)
        dataset = STATE.datasets.get(outputs)
        if dataset is None or len(dataset.buffers) != len(model.outputs):
            raise DatasetError(codes.MODEL_OUTPUT_NOT_MATCH, "output dataset does not fit")
        for i, (result, handle) in enumerate(zip(results, dataset.buffers)):
            buf = STATE.buffers.get(handle)
            raw = None if buf is None else MEMORY.checked_view(buf.addr, result.nbytes)
            if buf is None or buf.size < result.nbytes or isinstance(raw, str):
                raise DatasetError(
                    codes.MODEL_OUTPUT_NOT_MATCH,
                    f"output {i} needs {result.nbytes} bytes; its buffer cannot hold them",
                )
            raw[:] = np.ascontiguousarray(result).reshape(-1).view(np.uint8)
            _set_output_desc(outputs, i, model.outputs[i], tuple(result.shape))
