"""``openge run``: load an .om, feed inputs, time the runs, save outputs (like msame)."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np

from openge.cli.files import check_output_folder, load_array, save_array
from openge.errors import PARAM_INVALID, GeError
from openge.runtime import Model


def load_inputs(model: Model, spec: str) -> list[np.ndarray]:
    """Arrays from comma-separated .npy files, or zeros of each input's shape."""
    descs = list(model.inputs)
    if model.gears is not None:  # a gear model: its largest gear, chosen by the input shapes
        gear = model.gears.gears[model.gears.largest]
        descs = [replace(d, shape=s) for d, s in zip(descs, gear.input_shapes)]
    if not spec:
        return [np.zeros(d.shape, dtype=d.dtype.np_dtype) for d in descs]
    paths = [p for p in spec.split(",") if p]
    if len(paths) != len(model.inputs) and not (model.gears and len(paths) == len(descs)):
        raise GeError(
            PARAM_INVALID,
            f"--input gives {len(paths)} files; the model has {len(model.inputs)} inputs "
            f"({', '.join(d.name for d in model.inputs)})",
        )
    arrays = []
    for path, desc in zip(paths, model.inputs):
        array = load_array(path, "input file")
        if array.dtype != desc.dtype.np_dtype:
            raise GeError(
                PARAM_INVALID,
                f"input file {path} holds {array.dtype}; input {desc.name} needs "
                f"{desc.dtype.short_name}",
            )
        if len(array.shape) != len(desc.shape) or any(
            d >= 0 and d != a for d, a in zip(desc.shape, array.shape)
        ):  # -1 (a gear or dynamic dim): execute checks it against the gears and ranges
            raise GeError(
                PARAM_INVALID,
                f"input file {path} holds shape {list(array.shape)}; input {desc.name} needs "
                f"{list(desc.shape)}",
            )
        arrays.append(np.ascontiguousarray(array))
    return arrays


def run_command(args: argparse.Namespace) -> int:
    """Execute ``openge run``."""
    if args.loop < 1:
        raise GeError(PARAM_INVALID, f"--loop must be ≥ 1, got {args.loop}")
    output_dir = check_output_folder(args.output, "--output") if args.output else None
    start = time.perf_counter()
    model = Model.from_file(args.model, weight_dir=args.weight_dir)
    load_ms = (time.perf_counter() - start) * 1e3
    with model:
        inputs = load_inputs(model, args.input)
        outputs = model.execute(inputs)  # warm-up; its arrays (the run's shapes) are reused
        times = []
        for _ in range(args.loop):
            t0 = time.perf_counter()
            model.execute(inputs, outputs)
            times.append((time.perf_counter() - t0) * 1e3)
        print(f"model {args.model}: load {load_ms:.2f} ms")
        for desc, out in zip(model.outputs, outputs):
            print(
                f"  output {desc.name}: {out.dtype}{list(out.shape)} "
                f"min {out.min() if out.size else 0:.6g} max {out.max() if out.size else 0:.6g}"
            )
        t = np.array(times)
        print(
            f"inference {args.loop} runs: min {t.min():.3f} ms, median {np.median(t):.3f} ms, "
            f"max {t.max():.3f} ms"
        )
        if output_dir is not None:
            for i, out in enumerate(outputs):
                save_array(os.path.join(output_dir, f"output_{i}.npy"), out, "output file")
            print(f"outputs saved to {args.output}")
    return 0
