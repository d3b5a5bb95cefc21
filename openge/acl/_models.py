"""Loaded models by id, and datasets turned into the arrays ``Model.execute`` takes (views of
the buffers' memory: no copies)."""

from __future__ import annotations

import threading

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


MODELS: Registry[ModelEntry] = Registry("model")


class DatasetError(Exception):
    """A dataset that does not fit the model (carries the ACL code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


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
    arrays = []
    for i, (buf_handle, desc) in enumerate(zip(dataset.buffers, descs)):
        buf = STATE.buffers.get(buf_handle)
        if buf is None:
            raise DatasetError(codes.INVALID_PARAM, f"{kind} buffer {i} was destroyed")
        need = desc.size
        if buf.size < need:
            raise DatasetError(
                mismatch,
                f"{kind} {i} ({desc.name}) needs {need} bytes; its buffer has {buf.size}",
            )
        raw = MEMORY.checked_view(buf.addr, need)
        if isinstance(raw, str):
            raise DatasetError(codes.INVALID_PARAM, f"{kind} {i} ({desc.name}): {raw}")
        arrays.append(raw.view(desc.dtype.np_dtype).reshape(desc.shape))
    return arrays
