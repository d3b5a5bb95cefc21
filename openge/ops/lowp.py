"""Low-precision floats (bfloat16, float8 e4m3fn / e5m2) for every op, through float32.

NumPy stores these types through ``ml_dtypes`` but has no fast arithmetic for them, and the
compiled kernels take none of them. So an op whose task touches one of them runs its ordinary
kernel on float32 copies of those inputs, into float32 (float64 when an input is float64)
scratch outputs, and each low-precision output is rounded once (round to nearest even) — as
the NPU's vector and cube units compute bf16 in fp32 and round the result. Data movement
(Reshape, Transpose, Concat …) is exact through float32, so every op gets the same treatment
and no op module needs to know about these types.

The choice is made once per task (at model load, or per constant-folded node): a task without
low-precision arrays keeps its kernel untouched and pays nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openge.graph import LOW_PRECISION_TYPES

_LOW_NP: frozenset[np.dtype] = frozenset()


def _low_np() -> frozenset[np.dtype]:
    """The low-precision NumPy dtypes; empty until ml_dtypes is imported (no array of them can
    exist before, and importing it costs ~0.6 s: openge.graph.types)."""
    global _LOW_NP
    if not _LOW_NP and "ml_dtypes" in sys.modules:
        _LOW_NP = frozenset(t.np_dtype for t in LOW_PRECISION_TYPES)
    return _LOW_NP


def is_low_precision(dtype: np.dtype | None) -> bool:
    """True for the ml_dtypes storage types (bfloat16, float8)."""
    return dtype is not None and np.dtype(dtype) in _low_np()


def needs_emulation(dtypes: Sequence[np.dtype | None]) -> bool:
    """True when a task with arrays of ``dtypes`` must run through float32."""
    return any(is_low_precision(d) for d in dtypes)


def _widen(x: Any) -> Any:
    if isinstance(x, np.ndarray) and x.dtype in _low_np():
        return x.astype(np.float32)
    return x


def emulated(kernel: Callable[..., None]) -> Callable[..., None]:
    """``kernel`` run on float32 views of the low-precision arrays, results rounded once."""

    def run(inputs: list, outputs: list, **kwargs: Any) -> None:
        ins = [_widen(x) for x in inputs]
        wide = any(isinstance(x, np.ndarray) and x.dtype == np.float64 for x in ins)
        scratch = np.float64 if wide else np.float32
        outs = [
            np.empty(y.shape, dtype=scratch)
            if isinstance(y, np.ndarray) and y.dtype in _low_np()
            else y
            for y in outputs
        ]
        kernel(ins, outs, **kwargs)
        for y, tmp in zip(outputs, outs):
            if tmp is not y:
                np.copyto(y, tmp.astype(y.dtype))

    run.__wrapped__ = kernel  # type: ignore[attr-defined]
    return run
