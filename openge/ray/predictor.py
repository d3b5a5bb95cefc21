"""OmPredictor: a callable class for ``ray.data.Dataset.map_batches`` that runs an openge model.

Each actor loads the model once, from bytes that travel through Ray's object store (a read-only
uint8 array: ``Model.from_bytes`` views it without a copy), sets its intra-op threads from the
CPUs Ray gave it, and scores every batch it receives by cutting it into runs at the model's batch
gears (or its fixed batch), padding the last run and dropping the padded rows from the outputs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, SHAPE_INVALID, GeError
from openge.ray.chunking import Chunk, pad_rows, plan_chunks
from openge.ray.columns import as_model_rows, batch_columns, column_rows, resolve_mapping
from openge.runtime import Model

logger = logging.getLogger(__name__)

#: The extra input of a gear model (GE's name); the predictor never takes it from a column.
GEAR_INPUT = "ascend_mbatch_shape_data"


def load_model_bytes(model: Any) -> Any:
    """The model's serialized bytes from a path, bytes-like object, ModelBufferData, or a Ray
    ObjectRef to one of those."""
    if _is_object_ref(model):
        import ray

        model = ray.get(model)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise GeError(PARAM_INVALID, f"model file {path!r} does not exist or is not a file")
        with open(path, "rb") as f:
            return f.read()
    if hasattr(model, "length") and hasattr(model, "data"):  # ModelBufferData
        return model.data
    return model


def _is_object_ref(value: Any) -> bool:
    return type(value).__name__ == "ObjectRef" and type(value).__module__.startswith("ray")


def set_threads(count: int) -> None:
    """Limit this process's intra-op threads to ``count`` — openge's compiled kernels and BLAS,
    through ``openge.runtime.set_num_threads``: one actor per CPU group must not oversubscribe
    the machine."""
    from openge.runtime import set_num_threads

    set_num_threads(max(1, int(count)))


def _assigned_cpus() -> int:
    """CPUs Ray assigned to this worker; 1 outside Ray (never starts a Ray instance)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return 1
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:  # the driver, or a worker without CPU resources
        return 1
    return max(1, int(cpus))


class OmPredictor:
    """Score batches with an openge model, for ``Dataset.map_batches(OmPredictor, ...)``.

    Args:
        model: the .om as bytes / uint8 array / ModelBufferData / path, or a Ray ObjectRef to it
            (what ``predict`` passes: the model travels through the object store once).
        input_columns: column of each model input: a dict model-input-name → column, a list in
            input order, or None for columns named like the inputs.
        output_columns: same for the outputs (None: the model's output names).
        passthrough_columns: columns copied unchanged to the result (ids, file names).
        num_threads: intra-op threads of this actor; default the CPUs Ray assigned to it.
        weight_dir: folder of external weight files, when the model has them.
        gear_column: if set, a result column with the batch size each row was run at.
    """

    def __init__(
        self,
        model: Any,
        *,
        input_columns: Mapping[str, str] | Sequence[str] | None = None,
        output_columns: Mapping[str, str] | Sequence[str] | None = None,
        passthrough_columns: Sequence[str] = (),
        num_threads: int | None = None,
        weight_dir: str | None = None,
        gear_column: str | None = None,
    ) -> None:
        set_threads(num_threads if num_threads is not None else _assigned_cpus())
        self.model = Model.from_bytes(load_model_bytes(model), weight_dir)
        self._inputs = [d for d in self.model.inputs if d.name != GEAR_INPUT]
        self._input_columns = resolve_mapping(
            input_columns, [d.name for d in self._inputs], "input"
        )
        self._output_columns = resolve_mapping(
            output_columns, [d.name for d in self.model.outputs], "output"
        )
        self._passthrough = list(passthrough_columns)
        self._gear_column = gear_column
        self._gears, self._max_rows = _batch_sizes(self.model, self._inputs)
        #: runs per batch size since the actor started (for monitoring and tests)
        self.runs_by_gear: dict[int, int] = {}

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        """Score one batch; returns a dict of columns (outputs, passthrough, gear)."""
        columns = batch_columns(batch)
        arrays = []
        rows = None
        for desc, column in zip(self._inputs, self._input_columns):
            if column not in columns:
                raise GeError(
                    PARAM_INVALID,
                    f"the batch has no column {column!r} for model input {desc.name!r}; its "
                    f"columns are {', '.join(columns)}",
                )
            array = as_model_rows(
                column_rows(columns[column], column),
                column,
                tuple(desc.shape[1:]),
                desc.dtype.np_dtype,
            )
            if rows is not None and array.shape[0] != rows:
                raise GeError(
                    SHAPE_INVALID, f"column {column!r} has {array.shape[0]} rows, not {rows}"
                )
            rows = array.shape[0]
            arrays.append(array)
        rows = rows or 0
        result: dict[str, list[np.ndarray]] = {c: [] for c in self._output_columns}
        gears_used: list[np.ndarray] = []
        for chunk in self._chunks(rows):
            outputs = self._run(arrays, chunk)
            for column, out in zip(self._output_columns, outputs):
                result[column].append(out[: chunk.rows])
            gears_used.append(np.full(chunk.rows, chunk.gear, dtype=np.int32))
            self.runs_by_gear[chunk.gear] = self.runs_by_gear.get(chunk.gear, 0) + 1
        out_columns: dict[str, np.ndarray] = {}
        for column, parts in result.items():
            out_columns[column] = np.concatenate(parts) if parts else self._empty_output(column)
        for column in self._passthrough:
            if column not in columns:
                raise GeError(PARAM_INVALID, f"passthrough column {column!r} is not in the batch")
            out_columns[column] = column_rows(columns[column], column)
        if self._gear_column:
            out_columns[self._gear_column] = (
                np.concatenate(gears_used) if gears_used else np.empty(0, np.int32)
            )
        return out_columns

    def _chunks(self, rows: int) -> list[Chunk]:
        if self._gears:
            return plan_chunks(rows, self._gears)
        step = self._max_rows or max(rows, 1)  # fully dynamic batch: whole runs, no padding
        return [Chunk(s, min(step, rows - s), min(step, rows - s)) for s in range(0, rows, step)]

    def _run(self, arrays: list[np.ndarray], chunk: Chunk) -> list[np.ndarray]:
        inputs = [pad_rows(a, chunk.start, chunk.rows, chunk.gear) for a in arrays]
        outputs = self.model.execute(inputs)
        for desc, out in zip(self.model.outputs, outputs):
            if out.ndim == 0 or out.shape[0] != chunk.gear:
                raise GeError(
                    SHAPE_INVALID,
                    f"output {desc.name} has shape {list(out.shape)} for a run of "
                    f"{chunk.gear} rows: batch scoring needs the batch as every output's "
                    "first dim",
                )
        return outputs

    def _empty_output(self, column: str) -> np.ndarray:
        desc = self.model.outputs[self._output_columns.index(column)]
        return np.empty((0, *(max(d, 0) for d in desc.shape[1:])), dtype=desc.dtype.np_dtype)


def _batch_sizes(model: Model, inputs: list) -> tuple[list[int], int]:
    """(gears, max rows per run): the model's batch gears, or its one fixed batch; for a fully
    dynamic batch dim, no gears and the range's maximum (0 = unbounded)."""
    if not inputs:
        raise GeError(PARAM_INVALID, f"model {model.name} has no inputs to feed from columns")
    for desc in inputs:
        if len(desc.shape) == 0:
            raise GeError(
                SHAPE_INVALID,
                f"model input {desc.name} is a scalar: batch scoring needs a batch dim first",
            )
    get_dynamic_batch = getattr(model, "get_dynamic_batch", None)
    gears = list(get_dynamic_batch()) if get_dynamic_batch is not None else []
    if gears:
        return sorted(int(g) for g in gears), 0
    firsts = {int(d.shape[0]) for d in inputs}
    if len(firsts) != 1:
        raise GeError(
            SHAPE_INVALID,
            f"model {model.name}'s inputs have different batch dims "
            f"({', '.join(f'{d.name}:{d.shape[0]}' for d in inputs)})",
        )
    batch = firsts.pop()
    if batch > 0:
        return [batch], 0
    ranges = getattr(inputs[0], "range", ()) or ()
    upper = int(ranges[0][1]) if ranges else -1
    return [], max(upper, 0)
