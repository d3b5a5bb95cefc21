"""Exactly accumulated cube ops: the float32 accumulator of the precision modes, made exact.

In the float16 / bfloat16 precision modes (docs/precision.md) a cube op — convolution or
matrix product — multiplies float16 (or bfloat16) values and accumulates them in float32, as
the NPU's cube unit does. The device's float32 summation order is unknown and differs from
every CPU BLAS (whose own order changes with the CPU's kernel and the thread count), so no
fixed float32 order is "right". openge computes the limit every float32 order approximates:
the products summed in float64 (a product of two float16 or bfloat16 values is exact in
float64, and a float64 sum of up to millions of them is within ~1e-16 of the exact sum),
rounded once to float32 — the correctly rounded float32 accumulator — and then to the op's
output dtype. The result no longer depends on the CPU, the BLAS or the thread count.

The precision pass marks the cube ops it sets to float16 / bfloat16 with
:data:`EXACT_ACCUMULATION_ATTR` (a task attr, stored in the .om); :func:`task_kernel` picks
the kernel a task runs — this one, the low-precision emulation (``openge.ops.lowp``) or the
op's own — for every execution path (a loaded model, constant folding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from openge.ops.fused import decode_program
from openge.ops.lowp import emulated, is_low_precision, needs_emulation

#: Task / node attr: this cube op accumulates exactly (set by the compiler's PrecisionPass).
EXACT_ACCUMULATION_ATTR = "_exact_accumulation"

#: The epilogue program of a fused cube op that computes nothing more.
_NO_EPILOGUE = '{"steps": []}'
#: A fused cube op's inputs: the main op's (x, filter/x2, bias), then epilogue operands.
_N_MAIN = 3


def _wide(x: Any) -> Any:
    """A float array as float64 (exact for float16, bfloat16 and float32 values)."""
    if isinstance(x, np.ndarray) and (x.dtype.kind == "f" or is_low_precision(x.dtype)):
        return x.astype(np.float64)
    return x


def _round_into(y: np.ndarray, acc: np.ndarray) -> None:
    """``acc`` (float64) rounded to float32 — the cube's accumulator — then to ``y``'s dtype."""
    acc32 = acc.astype(np.float32)
    if y.dtype == np.float32:
        np.copyto(y, acc32)
    else:
        np.copyto(y, acc32.astype(y.dtype))


def _run_epilogue(epilogue: str, inputs: Sequence[Any], y: np.ndarray) -> None:
    """A fused op's epilogue on its rounded main result ``y``, as an unfused graph would
    compute it (bfloat16 / float8 steps through float32, rounded once: openge.ops.lowp)."""
    program = decode_program(epilogue)
    if not program.steps:
        return

    def run(ins: list, outs: list) -> None:
        program.run(ins, outs[0])

    operands = [y, *inputs[_N_MAIN:]]
    low = needs_emulation([a.dtype for a in operands if isinstance(a, np.ndarray)])
    (emulated(run) if low else run)(operands, [y])


def exact_accumulation(kernel: Callable[..., None]) -> Callable[..., None]:
    """``kernel`` (a cube op's) computing in float64 on widened inputs, each float output
    rounded to float32 and then to its dtype. A fused op (kwarg ``epilogue``) computes its
    main op so, then runs its epilogue on the rounded result."""

    def run(inputs: list, outputs: list, **kwargs: Any) -> None:
        epilogue = kwargs.get("epilogue")
        if epilogue is None:
            ins = [_wide(x) for x in inputs]
        else:
            kwargs = {**kwargs, "epilogue": _NO_EPILOGUE}
            ins = [_wide(x) for x in inputs[:_N_MAIN]] + [None] * (len(inputs) - _N_MAIN)
        accs = [
            np.empty(y.shape, dtype=np.float64) if isinstance(y, np.ndarray) else y for y in outputs
        ]
        kernel(ins, accs, **kwargs)
        for y, acc in zip(outputs, accs):
            if acc is not y:
                _round_into(y, acc)
        if epilogue is not None:
            _run_epilogue(epilogue, inputs, outputs[0])

    run.__wrapped__ = kernel  # type: ignore[attr-defined]
    return run


def task_kernel(
    kernel: Callable[..., None],
    attrs: Mapping[str, Any],
    dtypes: Sequence[np.dtype | None],
) -> Callable[..., None] | None:
    """The kernel a task (or node) with these attrs and (input and output) array dtypes runs
    when it is not the op's own: exactly accumulated (a marked cube op), or through float32
    (bfloat16 / float8 arrays); None for the op's own kernel (which may then be prepared)."""
    if attrs.get(EXACT_ACCUMULATION_ATTR):
        return exact_accumulation(kernel)
    if needs_emulation(dtypes):
        return emulated(kernel)
    return None


__all__ = ["EXACT_ACCUMULATION_ATTR", "exact_accumulation", "task_kernel"]
