"""One execute of a model a fuzz harness loaded: zeros of each input's shape (unknown dims at
their range's low end), skipped when the tensors would pass a size bound. Shared by the .om and
device harnesses; GeError is the only failure an execute may raise."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from openge.errors import GeError

#: A model whose inputs and outputs need more than this is loaded but not executed.
MAX_EXEC_BYTES = 64 << 20


def concrete_shape(desc: Any) -> tuple[int, ...]:
    """The input's shape with each unknown dim at its range's low end (1 to 64)."""
    ranges = getattr(desc, "range", None) or ()
    shape = []
    for i, dim in enumerate(desc.shape):
        if dim >= 0:
            shape.append(dim)
        else:
            low = ranges[i][0] if i < len(ranges) else 1
            shape.append(min(max(int(low), 1), 64))
    return tuple(shape)


def execute_on_zeros(model: Any) -> None:
    """Run ``model`` once on zeros (a gear model by its input shapes); GeError is ignored."""
    inputs = list(model.inputs)
    if inputs and inputs[-1].name == "ascend_mbatch_shape_data":
        inputs.pop()
    shapes = [concrete_shape(d) for d in inputs]
    size = sum(int(np.prod(s)) * d.dtype.itemsize for s, d in zip(shapes, inputs))
    size += sum(max(d.size, 0) for d in model.outputs)
    if size > MAX_EXEC_BYTES:
        return
    with contextlib.suppress(GeError):
        model.execute([np.zeros(s, d.dtype.np_dtype) for s, d in zip(shapes, inputs)])


#: One input may raise the process's peak RSS by at most this much (the issue's bound for a
#: hostile file under 1 MB is 256 MB in total); the input that does is reported as a crash.
#: Measured with the kernel's per-process high-water mark (VmHWM), reset before each input:
#: ``getrusage``'s maxrss cannot be used, as Linux carries it over from the process that
#: started the harness (a large pytest worker then looks like an out-of-memory at once).
RSS_GROWTH_KB = 512 * 1024
#: The work + io memory limit the harnesses load models under (OPENGE_MAX_ARENA_BYTES).
ARENA_LIMIT = 256 << 20


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def rss_bounded(target: Any) -> Any:
    """``target`` with the per-input peak-RSS check (a MemoryError past RSS_GROWTH_KB)."""

    def run(data: bytes) -> None:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := current RSS
        before = _status_kb("VmRSS:")
        target(data)
        grown = _status_kb("VmHWM:") - before
        if grown > RSS_GROWTH_KB:
            raise MemoryError(f"one input raised the peak RSS by {grown // 1024} MB")

    return run
