"""The precision modes' cube ops accumulate exactly (docs/precision.md): the precision pass
marks them, the mark reaches the task (and the .om), and every execution path — a compiled
model, a saved and loaded .om, a session's run_graph — computes the same bytes, which are the
float16 products summed in float64 here, rounded to float32 and then float16."""

from __future__ import annotations

import numpy as np
import pytest

from openge.compiler import compile_graph
from openge.graph import DataType
from openge.ops.exact_cube import EXACT_ACCUMULATION_ATTR
from openge.runtime import Model

from .models import Builder, cnn, mlp

MODE = "ge.exec.precision_mode"
CUBE_TASKS = ("Conv2D", "FusedConv2D", "MatMulV2", "BatchMatMulV2", "FusedMatMul")


def _marks(compiled) -> list[bool]:
    return [
        bool(t.attrs.get(EXACT_ACCUMULATION_ATTR))
        for t in compiled.tasks
        if t.op_type in CUBE_TASKS
    ]


@pytest.mark.parametrize(
    "mode",
    [
        "force_fp16",
        "allow_mix_precision",
        "allow_mix_precision_bf16",
        "allow_fp32_to_fp16",
        "allow_fp32_to_bf16",
        "cube_fp16in_fp32out",
    ],
)
@pytest.mark.parametrize("build", [cnn, mlp])
def test_every_cube_task_is_marked_in_the_low_precision_modes(mode, build):
    marks = _marks(compile_graph(build().g, {MODE: mode}))
    assert marks and all(marks)


@pytest.mark.parametrize("build", [cnn, mlp])
def test_default_mode_marks_nothing(build):
    g = build().g
    for options in ({}, {MODE: "must_keep_origin_dtype"}):
        c = compile_graph(g, options)
        assert not any(EXACT_ACCUMULATION_ATTR in t.attrs for t in c.tasks)


def _fp16_matmul() -> Builder:
    b = Builder("mm16")
    x = b.input((4, 96), dtype=DataType.DT_FLOAT16)
    w = (b.rng.normal(size=(96, 8)) * 0.3).astype(np.float16)
    b.done(b.op("MatMulV2", x, b.const(w)))
    return b


def test_a_float16_graph_is_marked_only_in_a_precision_mode():
    # its float32 accumulation (fast, BLAS) stays in the default mode
    g = _fp16_matmul().g
    assert _marks(compile_graph(g)) == [False]
    assert _marks(compile_graph(g, {MODE: "force_fp16"})) == [True]


def _exact_mlp(rows: int = 8, k: int = 256, n: int = 128) -> tuple[Builder, np.ndarray, np.ndarray]:
    """x @ w1 → Relu → @ w2, with the float16 result of each layer computed here: float64
    sum of the float16 products, rounded to float32 then float16. The first and last terms
    of each first-layer sum are ±2^15, so a float32 accumulator in any order that does not
    pair them first loses the small terms' low bits (a float32 GEMM gets other values)."""
    b = Builder("exact")
    x = b.input((rows, k))
    w1 = (b.rng.normal(size=(k, n)) / 16).astype(np.float32)
    w1[0], w1[-1] = 16.0, 16.0
    w2 = (b.rng.normal(size=(n, 16)) / np.sqrt(n)).astype(np.float32)
    h = b.op("Relu", b.op("MatMulV2", x, b.const(w1)))
    b.done(b.op("MatMulV2", h, b.const(w2)))
    feed = b.feeds()[0]
    feed[:, 0], feed[:, -1] = 2048.0, -2048.0

    def layer(a: np.ndarray, w: np.ndarray) -> np.ndarray:
        acc = a.astype(np.float16).astype(np.float64) @ w.astype(np.float16).astype(np.float64)
        return acc.astype(np.float32).astype(np.float16)

    want = layer(np.maximum(layer(feed, w1), 0), w2).astype(np.float32)
    return b, feed, want


def test_compiled_om_and_session_paths_give_the_exact_result(tmp_path):
    from openge.ge_global import GeApi
    from openge.offline_compile import build_finalize, build_initialize, build_model, save_model
    from openge.session import GeSession

    b, feed, want = _exact_mlp()
    options = {MODE: "force_fp16"}
    with Model(compile_graph(b.g, options)) as model:
        direct = np.array(model.execute([feed])[0])
    np.testing.assert_array_equal(direct, want)
    build_initialize({})
    try:
        buf = build_model(b.g, options)
        path = save_model(str(tmp_path / "exact"), buf)
    finally:
        build_finalize()
    with Model.from_file(path) as loaded:
        assert loaded.execute([feed])[0].tobytes() == direct.tobytes()
    with Model.from_bytes(buf) as loaded:
        assert loaded.execute([feed])[0].tobytes() == direct.tobytes()
    GeApi.ge_initialize({})
    try:
        with GeSession(options) as s:
            s.add_graph(1, b.g)
            (out,) = s.run_graph(1, [feed])
            assert np.asarray(out.numpy()).tobytes() == direct.tobytes()
    finally:
        GeApi.ge_finalize()


def digest(threads: int) -> str:
    """sha256 of the force_fp16 output of a model big enough for a threaded BLAS (a GEMM of
    64×1024×512 and a 3×3 convolution of 32 channels), at ``threads`` intra-op threads; run in
    a child process (the BLAS kernel, OPENBLAS_CORETYPE, is chosen at import)."""
    import hashlib

    from openge.runtime import set_num_threads

    set_num_threads(threads)
    b, feed, _ = _exact_mlp(64, 1024, 512)
    conv = Builder("conv")
    x = conv.input((1, 32, 40, 40))
    w = conv.weight(32, 32, 3, 3, scale=0.1)
    conv.done(conv.op("Conv2D", x, w, strides=[1, 1, 1, 1], pads=[1, 1, 1, 1], data_format="NCHW"))
    h = hashlib.sha256()
    for builder, data in ((b, feed), (conv, conv.feeds()[0])):
        with Model(compile_graph(builder.g, {MODE: "force_fp16"})) as model:
            h.update(model.execute([data])[0].tobytes())
    return h.hexdigest()


def test_results_do_not_depend_on_threads_or_the_blas_kernel():
    """force_fp16 results are the same bytes at 1 and 2 threads and with OpenBLAS's Haswell
    kernels instead of the CPU's own (each configuration in its own process; on this AVX-512
    machine OpenBLAS picks SkylakeX kernels by default)."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys; from tests.compiler.test_precision_exact import digest; "
        "print(digest(int(sys.argv[1])))"
    )
    runs = []
    # (at 5a07f33, float32 accumulation: three different digests)
    for threads, coretype in ((1, None), (2, None), (2, "Haswell")):
        env = dict(os.environ)
        env.pop("OPENBLAS_CORETYPE", None)
        if coretype:
            env["OPENBLAS_CORETYPE"] = coretype
        runs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(threads)],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    digests = []
    for p in runs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        digests.append(out.strip().splitlines()[-1])
    assert len(set(digests)) == 1, digests
