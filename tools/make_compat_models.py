"""Write tests/data/om/format_<MAJOR.MINOR>/: a small .om of the current format, its input and
its expected output (computed with NumPy, independently of openge); from 1.1 on the model has
batch gears 2,4 (the records format 1.1 added). Run once per released
format; the files are committed and every later openge must keep loading them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openge.graph import DataType, Graph, Tensor, TensorDesc
from openge.offline_compile import (
    build_finalize,
    build_initialize,
    build_model,
    save_model,
)
from openge.version import OM_FORMAT_VERSION


def main() -> None:
    rng = np.random.default_rng(2024)
    w = rng.normal(size=(6, 5)).astype(np.float32)
    b = rng.normal(size=(5,)).astype(np.float32)
    g = Graph("compat_mlp")
    x = g.add_node(
        "Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(DataType.DT_FLOAT, (2, 6))]
    )
    wn = g.add_node("Const", name="w", attrs={"value": Tensor(w)})
    bn = g.add_node("Const", name="b", attrs={"value": Tensor(b)})
    mm = g.add_node("MatMulV2", [x.output(0), wn.output(0), bn.output(0)], name="mm")
    act = g.add_node("Relu", [mm.output(0)], name="act")
    count = g.add_node("Variable", name="steps", attrs={"value": Tensor(np.zeros(1, np.float32))})
    one = g.add_node("Const", name="one", attrs={"value": Tensor(np.ones(1, np.float32))})
    inc = g.add_node("AssignAdd", [count.output(0), one.output(0)], name="inc")
    g.set_outputs([act.output(0), inc.output(0)])
    folder = (
        ROOT / "tests" / "data" / "om" / f"format_{OM_FORMAT_VERSION[0]}.{OM_FORMAT_VERSION[1]}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    # From format 1.1 on, the model also carries the records that format added: batch gears
    # (ge.dynamicBatchSize; the graph's input is [2, 6], the gears make it [-1, 6]).
    options = {}
    if OM_FORMAT_VERSION >= (1, 1):
        options = {"ge.inputShape": "x:-1,6", "ge.dynamicBatchSize": "2,4"}
    build_initialize({})
    try:
        save_model(str(folder / "compat_mlp"), build_model(g, options))
    finally:
        build_finalize()
    xv = rng.normal(size=(2, 6)).astype(np.float32)
    np.save(folder / "input_0.npy", xv)
    np.save(
        folder / "expected_0.npy", np.maximum(xv.astype(np.float64) @ w + b, 0).astype(np.float32)
    )
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()
