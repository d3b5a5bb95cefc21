"""Gear selection at run time (GE's aclmdlSetDynamicBatchSize / HWSize / InputDynamicDims).

Layer: runtime. A gear model has one plan per gear; :class:`GearRuntime` says which gear a call
runs — from the ``ascend_mbatch_shape_data`` input (the ACL way) or, when that input is left
out, from the shapes of the other inputs — and fills that input for the ``set_*`` calls. Codes
as ACL's: a value that is no gear → 145013 (ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID), a batch
/ height / width of 0 → 100000 (ACL_ERROR_INVALID_PARAM), dims whose static positions differ
from the model's → 145012 (ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from openge.errors import (
    ACL_INVALID_PARAM,
    DYNAMIC_BATCH_SIZE_INVALID,
    DYNAMIC_INPUT_LENGTH_INVALID,
    PARAM_INVALID,
    GeError,
)
from openge.graph import Tensor
from openge.om.gears import SHAPE_DATA_NAME, GearKind, GearSet
from openge.om.plan import IODesc


def _gear_text(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


class GearRuntime:
    """The gears of one loaded model: their io descs, the current gear, selection."""

    def __init__(self, inputs: Sequence[IODesc], outputs: Sequence[IODesc], gears: GearSet):
        self.gears = gears
        self.inputs = list(inputs)  # the model's, the last being ascend_mbatch_shape_data
        self.outputs = list(outputs)
        self.shape_index = len(self.inputs) - 1
        #: The gear the last set_* call or execution chose (None: none yet).
        self.current: int | None = None
        self.in_descs = [
            [replace(d, shape=s, range=()) for d, s in zip(self.inputs, g.input_shapes)]
            for g in gears.gears
        ]
        self.out_descs = [
            [replace(d, shape=s, range=()) for d, s in zip(self.outputs, g.output_shapes)]
            for g in gears.gears
        ]

    # ----- description ------------------------------------------------------------------------
    def listing(self) -> str:
        """The gears as a user reads them: ``1 | 2 | 4 | 8`` or ``416,416 | 832,832``."""
        return " | ".join(_gear_text(v) for v in self.gears.values)

    def full_dims(self, gear: int) -> list[int]:
        """Every listed input's dims at ``gear``, concatenated in input_shape order."""
        by_name = {d.name: i for i, d in enumerate(self.inputs[:-1])}
        plan = self.gears.gears[gear]
        out: list[int] = []
        for name in self.gears.shape_order:
            out.extend(plan.input_shapes[by_name[name]])
        return out

    def origin_full_dims(self) -> list[int]:
        """Like :meth:`full_dims` with -1 where the gear decides."""
        by_name = {d.name: i for i, d in enumerate(self.inputs[:-1])}
        out: list[int] = []
        for name in self.gears.shape_order:
            out.extend(self.gears.origin_inputs[by_name[name]])
        return out

    def output_dims(self, index: int) -> list[int]:
        """Output ``index``'s dims at the current gear (the largest when none is set)."""
        if not 0 <= index < len(self.outputs):
            raise GeError(
                PARAM_INVALID, f"output index {index}; the model has {len(self.outputs)} outputs"
            )
        gear = self.current if self.current is not None else self.gears.largest
        return list(self.gears.gears[gear].output_shapes[index])

    # ----- choosing a gear ----------------------------------------------------------------------
    def _no_gear(self, value: str) -> GeError:
        return GeError(
            DYNAMIC_BATCH_SIZE_INVALID,
            f"{value} is not a gear of this model ({self.gears.kind.option}); its gears are "
            f"{self.listing()}",
        )

    def gear_of_values(self, values: Any) -> int:
        """The gear an ``ascend_mbatch_shape_data`` value selects (all zero: the largest)."""
        k = self.gears.k
        try:
            array = np.asarray(values.numpy() if isinstance(values, Tensor) else values)
        except (TypeError, ValueError) as err:
            raise GeError(PARAM_INVALID, f"{SHAPE_DATA_NAME} is not an array: {err}") from err
        if array.dtype.kind not in "iu" or array.size != k:
            raise GeError(
                PARAM_INVALID,
                f"{SHAPE_DATA_NAME} must hold {k} integer value(s) (int32 [{k}]), given "
                f"{array.dtype}{list(array.shape)}",
            )
        flat = [int(v) for v in array.reshape(-1)]
        if not any(flat):
            return self.gears.largest  # no gear set: GE runs the largest
        gear = self.gears.index_of(flat)
        if gear is None:
            raise self._no_gear(f"{SHAPE_DATA_NAME} = {_gear_text(flat)}")
        return gear

    def chosen_by(self) -> str:
        """Why the current gear runs (appended to an input-shape error)."""
        gear = self.current if self.current is not None else self.gears.largest
        values = _gear_text(self.gears.gears[gear].values)
        return (
            f"{SHAPE_DATA_NAME} chose gear {values} (all zero: the largest); set it with the "
            f"set_* calls, or leave it out to run the gear of the input shapes"
        )

    def gear_of_shapes(self, shapes: Sequence[tuple[int, ...]]) -> int:
        """The gear whose input shapes are ``shapes``."""
        for i, g in enumerate(self.gears.gears):
            if tuple(shapes) == g.input_shapes:
                return i
        given = "; ".join(f"{d.name}{list(s)}" for d, s in zip(self.inputs, shapes))
        gears = " | ".join(
            "; ".join(f"{list(s)}" for s in g.input_shapes) for g in self.gears.gears
        )
        raise GeError(
            DYNAMIC_BATCH_SIZE_INVALID,
            f"input shapes {given} are no gear of this model; the gears' input shapes are "
            f"{gears} (or pass {SHAPE_DATA_NAME} as the last input to choose the gear)",
        )

    def select(self, inputs: Any) -> tuple[int, Any]:
        """The gear a call runs and its inputs without ``ascend_mbatch_shape_data``."""
        n = self.shape_index
        if isinstance(inputs, Mapping):
            rest = {k: v for k, v in inputs.items() if k != SHAPE_DATA_NAME}
            if SHAPE_DATA_NAME in inputs:
                gear = self.gear_of_values(inputs[SHAPE_DATA_NAME])
            else:
                names = [d.name for d in self.inputs[:n]]
                gear = self.gear_of_shapes([_shape_of(rest.get(name)) for name in names])
            self.current = gear
            return gear, rest
        if isinstance(inputs, (np.ndarray, Tensor)):
            inputs = [inputs]
        items = list(inputs)
        if len(items) == n + 1:
            gear = self.gear_of_values(items[n])
            items = items[:n]
        elif len(items) == n:
            gear = self.gear_of_shapes([_shape_of(v) for v in items])
        else:
            raise GeError(
                PARAM_INVALID,
                f"this gear model takes {n} inputs (+ {SHAPE_DATA_NAME} last, optional); "
                f"{len(items)} given",
            )
        self.current = gear
        return gear, items

    # ----- set_* (they write ascend_mbatch_shape_data into the caller's input list) ------------
    def _check_call(self, kind: GearKind, index: int, call: str) -> None:
        if self.gears.kind != kind:
            raise GeError(
                PARAM_INVALID,
                f"{call}: this model's gears come from {self.gears.kind.option}, not {kind.option}",
            )
        if index != self.shape_index:
            raise GeError(
                PARAM_INVALID,
                f"{call}: index {index} is not the {SHAPE_DATA_NAME} input; it is input "
                f"{self.shape_index}",
            )

    def _write(self, inputs: Any, gear: int) -> np.ndarray:
        values = np.asarray(self.gears.gears[gear].values, dtype=np.int32)
        if isinstance(inputs, dict):
            inputs[SHAPE_DATA_NAME] = values
        elif isinstance(inputs, list):
            n = self.shape_index
            if len(inputs) == n:
                inputs.append(values)
            elif len(inputs) == n + 1:
                old = inputs[n]
                if (
                    isinstance(old, np.ndarray)
                    and old.dtype == np.int32
                    and old.shape == values.shape
                    and old.flags.writeable
                ):
                    old[...] = values
                    values = old
                else:
                    inputs[n] = values
            else:
                raise GeError(
                    PARAM_INVALID,
                    f"the input list has {len(inputs)} entries; give the model's {n} inputs "
                    f"(then {SHAPE_DATA_NAME} is appended) or all {n + 1}",
                )
        else:
            raise GeError(
                PARAM_INVALID,
                f"inputs must be a list or a dict to receive {SHAPE_DATA_NAME}, not "
                f"{type(inputs).__name__}",
            )
        self.current = gear
        return values

    def set_batch(self, inputs: Any, index: int, batch: int) -> np.ndarray:
        """``aclmdlSetDynamicBatchSize``."""
        call = "set_dynamic_batch_size"
        if int(batch) == 0:
            raise GeError(
                ACL_INVALID_PARAM, f"{call}: batch 0 is not valid; gears: {self.listing()}"
            )
        self._check_call(GearKind.BATCH, index, call)
        gear = self.gears.index_of([int(batch)])
        if gear is None:
            raise self._no_gear(f"batch {batch}")
        return self._write(inputs, gear)

    def set_hw(self, inputs: Any, index: int, height: int, width: int) -> np.ndarray:
        """``aclmdlSetDynamicHWSize``."""
        call = "set_dynamic_hw_size"
        if int(height) == 0 or int(width) == 0:
            raise GeError(
                ACL_INVALID_PARAM,
                f"{call}: height {height} / width {width}: 0 is not valid; gears: {self.listing()}",
            )
        self._check_call(GearKind.IMAGE, index, call)
        gear = self.gears.index_of([int(height), int(width)])
        if gear is None:
            raise self._no_gear(f"height,width {height},{width}")
        return self._write(inputs, gear)

    def set_dims(self, inputs: Any, index: int, dims: Any) -> np.ndarray:
        """``aclmdlSetInputDynamicDims``: ``dims`` are every listed input's dims, concatenated
        in input_shape order (as ``get_input_dynamic_dims`` gives them)."""
        call = "set_input_dynamic_dims"
        self._check_call(GearKind.DIMS, index, call)
        values = [int(v) for v in getattr(dims, "dims", dims)]
        origin = self.origin_full_dims()
        if len(values) != len(origin):
            raise GeError(
                DYNAMIC_INPUT_LENGTH_INVALID,
                f"{call}: {len(values)} dims given; the model's inputs have {len(origin)} "
                f"({_gear_text(origin)}, -1 where the gear decides)",
            )
        for pos, (v, o) in enumerate(zip(values, origin)):
            if o >= 0 and v != o:
                raise GeError(
                    DYNAMIC_INPUT_LENGTH_INVALID,
                    f"{call}: dim {pos} is {v} but the model fixes it to {o} (static dims must "
                    f"be the model's: {_gear_text(origin)})",
                )
        picked = [v for v, o in zip(values, origin) if o < 0]
        gear = self.gears.index_of(picked)
        if gear is None:
            raise self._no_gear(f"dims {_gear_text(values)}")
        return self._write(inputs, gear)


def _shape_of(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, Tensor):
        return tuple(value.shape)
    return tuple(np.shape(value))


__all__ = ["GearRuntime"]
