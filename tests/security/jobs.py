"""Functions the capped child runs (tests/security/capped.py): each does one hostile thing.

They return plain JSON values; an exception propagates and is reported by type and message.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np


def _zeros(model: Any) -> list[np.ndarray]:
    return [np.zeros(d.shape, d.dtype.np_dtype) for d in model.inputs]


def load_file(path: str, weight_dir: str | None = None, execute: bool = True) -> Any:
    """``Model.from_file`` (+ one execute on zeros); the outputs' sums."""
    from openge.runtime import Model

    with Model.from_file(path, weight_dir) as model:
        if not execute:
            return "loaded"
        return [float(np.asarray(o, np.float64).sum()) for o in model.execute(_zeros(model))]


def load_bytes(path: str, weight_dir: str | None = None) -> Any:
    """``Model.from_bytes`` of the file's bytes (+ one execute on zeros)."""
    from openge.runtime import Model

    with open(path, "rb") as f:
        data = f.read()
    with Model.from_bytes(data, weight_dir) as model:
        return [float(np.asarray(o, np.float64).sum()) for o in model.execute(_zeros(model))]


def outputs_of(path: str, weight_dir: str | None = None) -> Any:
    """Every output value (as lists) of one execute on zeros."""
    from openge.runtime import Model

    with Model.from_file(path, weight_dir) as model:
        return [np.asarray(o).tolist() for o in model.execute(_zeros(model))]


def query(path: str) -> Any:
    """``query_size``."""
    from openge.runtime import query_size

    return list(query_size(path))


def compat(path: str) -> Any:
    """``check_compatibility``."""
    from openge.runtime import check_compatibility

    return check_compatibility(path).ok


def reader(path: str) -> Any:
    """The .om reader's entry points and the CLI's JSON dump on the file's bytes."""
    from openge.cli.atc import om_to_dict
    from openge.om.reader import deserialize, read_info, read_model_def

    with open(path, "rb") as f:
        data = f.read()
    read_info(data)
    read_model_def(data)
    om_to_dict(memoryview(data))
    return deserialize(data).name


def cli(argv: list[str]) -> Any:
    """``openge ARGV``: the exit code and stderr lines."""
    from openge.cli.main import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(argv)
    return {"code": code, "stderr": err.getvalue().splitlines(), "stdout": out.getvalue()}


def shrink_then_execute(path: str, keep: int) -> Any:
    """Load a file, truncate it on disk to ``keep`` bytes, execute (must not SIGBUS)."""
    from openge.runtime import Model

    model = Model.from_file(path)
    with open(path, "r+b") as f:
        f.truncate(keep)
    try:
        model.execute(_zeros(model))
    finally:
        model.close()
    return "executed"


def leak_probe(path: str) -> Any:
    """Fill freed memory with a pattern, then load and run: the outputs must not show it."""
    from openge.runtime import Model

    junk = [np.full(n, 12345.0, np.float32) for n in (1024, 1024, 2048, 4096) * 16]
    del junk  # freed, pattern left behind for the allocator to hand out again
    with Model.from_file(path) as model:
        return [np.asarray(o).tolist() for o in model.execute(_zeros(model))]


def parse_onnx_file(path: str) -> Any:
    """``parse_onnx`` of an ONNX file; the graph's node count."""
    from openge.parser import parse_onnx

    return len(parse_onnx(path))
