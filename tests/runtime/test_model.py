"""runtime.Model: loading, io validation, caller memory, in-place outputs, debug values, threads."""

from __future__ import annotations

import mmap
import os
import sys
import threading

import numpy as np
import pytest

from openge.errors import GeError, Status
from openge.graph import Graph
from openge.offline_compile import build_finalize, build_initialize, build_model, save_model
from openge.runtime import Model, query_size
from tests.conftest import compiler_resident_kib, const, data, resident_pages
from tests.offline_compile.test_workflow import B, W, linear_graph, x_input


@pytest.fixture(scope="module")
def buf():
    build_initialize({})
    try:
        yield build_model(linear_graph())
    finally:
        build_finalize()


@pytest.fixture
def om_path(buf, tmp_path):
    return save_model(str(tmp_path / "linear"), buf)


def _saved(g, path) -> str:
    """``g`` built with default options and saved as ``<path>.om``; the .om's path."""
    build_initialize({})
    try:
        return save_model(str(path), build_model(g))
    finally:
        build_finalize()


def test_io_descriptors(buf):
    with Model.from_bytes(buf) as m:
        assert [(d.name, d.shape, d.dtype.name) for d in m.inputs] == [("x", (3, 8), "DT_FLOAT")]
        assert [d.shape for d in m.outputs] == [(3, 4), (3, 8)]
        assert m.inputs[0].size == 3 * 8 * 4


def test_inputs_by_name_and_outputs_in_place(buf):
    x = x_input()
    with Model.from_bytes(buf) as m:
        outs = [np.empty((3, 4), np.float32), np.empty((3, 8), np.float32)]
        result = m.execute({"x": x}, outs)
        assert result[0] is outs[0] and result[1] is outs[1]
        np.testing.assert_allclose(outs[0], x @ W + B, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(outs[1], x)
        with pytest.raises(GeError, match="no input named 'y'"):
            m.execute({"y": x})
        with pytest.raises(GeError, match="overlaps input 0"):
            m.execute([x], [np.empty((3, 4), np.float32), x])
        with pytest.raises(GeError, match=r"writable C-contiguous float32\[3, 4\]"):
            m.execute([x], [np.empty((4, 3), np.float32), np.empty((3, 8), np.float32)])


def test_non_contiguous_input_is_accepted(buf):
    big = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    view = big[:, ::2]
    with Model.from_bytes(buf) as m:
        np.testing.assert_allclose(m.execute([view])[0], view @ W + B, rtol=1e-5, atol=1e-6)


def test_bad_inputs_name_the_input_and_expected_value(buf):
    with Model.from_bytes(buf) as m:
        with pytest.raises(GeError) as info:
            m.execute([np.zeros((3, 8), np.float64)])
        assert "input x: expected dtype float32, given float64" in str(info.value)
        with pytest.raises(GeError) as info:
            m.execute([np.zeros((2, 8), np.float32)])
        assert info.value.code == Status.ACL_ERROR_GE_SHAPE_INVALID
        assert "expected shape [3, 8], given [2, 8]" in str(info.value)
        with pytest.raises(GeError, match="takes 1 inputs"):
            m.execute([x_input(), x_input()])


def test_caller_owned_work_and_weight_memory(tmp_path):
    g = linear_graph()
    y = g.add_node("Identity", [g.node("y").output(0)], name="y_copy")  # y now lives in the arena
    g.set_outputs([y.output(0), g.node("x").output(0)])
    om_path = _saved(g, tmp_path / "chain")
    work, weight = query_size(om_path)
    assert work > 0 and weight >= W.nbytes + B.nbytes
    work_mem = bytearray(work)
    weight_mem = np.zeros(weight, np.uint8)
    with Model.from_file(om_path, work_memory=work_mem, weight_memory=weight_mem) as m:
        np.testing.assert_allclose(m.execute([x_input()])[0], x_input() @ W + B, rtol=1e-5)
    assert weight_mem.any()  # the weights were placed in the caller's buffer
    with pytest.raises(GeError, match="needs"):
        Model.from_file(om_path, work_memory=bytearray(max(work - 1, 0)))
    with pytest.raises(GeError, match="read-only"):
        Model.from_file(om_path, weight_memory=bytes(weight))


def _plan_inputs(model: Model, shape: tuple[int, ...]) -> list[np.ndarray]:
    """The arrays of that shape the model's plan reads."""
    return [
        a for _, ins, _, _, _, _ in model._steps for a in ins if a is not None and a.shape == shape
    ]


def test_weights_are_views_into_the_mapped_file(om_path):
    with Model.from_file(om_path) as m:
        weight_views = _plan_inputs(m, W.shape)
        assert weight_views
        for a in weight_views:
            assert not a.flags.owndata and not a.flags.writeable
            np.testing.assert_array_equal(a, W)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_file_pages_are_released_at_load_and_small_vectors_read_from_copies(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(256, 2048)).astype(np.float32)  # 2 MiB: read in place or packed
    b = rng.normal(size=(2048,)).astype(np.float32)  # a bias: a private copy
    g = Graph("wide")
    x = data(g, 0, (4, 256), name="x")
    y = g.add_node(
        "MatMulV2",
        [x.output(0), const(g, w, name="w").output(0), const(g, b, name="b").output(0)],
        name="y",
    )
    g.set_outputs([y.output(0)])
    path = _saved(g, tmp_path / "wide")
    size = os.path.getsize(path)
    with Model.from_file(path) as m:
        # the header and tables may stay resident; the 2 MiB of weights may not
        assert resident_pages(m._source.mapping) * mmap.PAGESIZE < size - w.nbytes
        biases = _plan_inputs(m, b.shape)
        assert biases
        for a in biases:
            assert a.flags.owndata and not a.flags.writeable
            np.testing.assert_array_equal(a, b)
        xv = rng.normal(size=(4, 256)).astype(np.float32)
        (got,) = m.execute([xv])
        ref = xv.astype(np.float64) @ w.astype(np.float64) + b
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_a_compiled_model_runs_with_the_compilers_code_pages_released(tmp_path):
    from openge import kernels

    rng = np.random.default_rng(4)
    w = rng.normal(size=(8, 3, 3, 3)).astype(np.float32)
    g = Graph("conv")
    x = data(g, 0, (1, 3, 16, 16), name="x")
    y = g.add_node(
        "Conv2D",
        [x.output(0), const(g, w, name="w").output(0)],
        name="y",
        attrs={"strides": [1, 1, 1, 1], "pads": [1, 1, 1, 1], "data_format": "NCHW"},
    )
    g.set_outputs([y.output(0)])
    path = _saved(g, tmp_path / "conv")
    with Model.from_file(path) as m:
        assert kernels.imported()  # the convolution's kernel is compiled code
        # what stays of libllvmlite is its relocated and writable data (~2 MiB), not the
        # 50+ MiB of code that making numba's runtime and loading kernels map
        assert compiler_resident_kib() < 8 << 10
        xv = rng.normal(size=(1, 3, 16, 16)).astype(np.float32)
        (got,) = m.execute([xv])
    xp = np.pad(xv.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    ref = np.einsum("nchwij,ocij->nohw", windows, w.astype(np.float64))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_intermediates_returns_every_value(buf):
    with Model.from_bytes(buf) as m:
        outs, values = m.execute([x_input()], intermediates=True)
        assert "y:0" in values
        np.testing.assert_array_equal(values["y:0"], outs[0])


def test_closed_model_refuses_execute(buf):
    m = Model.from_bytes(buf)
    m.close()
    with pytest.raises(GeError, match="closed"):
        m.execute([x_input()])


def test_concurrent_execute_from_threads_is_correct(buf):
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(3, 8)).astype(np.float32) for _ in range(8)]
    errors = []
    with Model.from_bytes(buf) as m:

        def work(x):
            for _ in range(20):
                y = m.execute([x])[0]
                if not np.allclose(y, x @ W + B, rtol=1e-5, atol=1e-5):
                    errors.append("mismatch")

        threads = [threading.Thread(target=work, args=(x,)) for x in inputs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors


def test_memory_reuse_off_gives_identical_results(work_path):
    build_initialize({})
    try:
        on = build_model(linear_graph(), {"ge.exec.disableReuseMemory": "0"})
        off = build_model(linear_graph(), {"ge.exec.disableReuseMemory": "1"})
    finally:
        build_finalize()
    with Model.from_bytes(on) as a, Model.from_bytes(off) as b:
        x = x_input()
        assert a.execute([x])[0].tobytes() == b.execute([x])[0].tobytes()


def test_missing_file_and_garbage_give_clean_errors(tmp_path):
    with pytest.raises(GeError) as info:
        Model.from_file(str(tmp_path / "nope.om"))
    assert info.value.code == Status.ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID
    junk = tmp_path / "junk.om"
    junk.write_bytes(b"not a model")
    with pytest.raises(GeError):
        Model.from_file(str(junk))
    with pytest.raises(GeError):
        Model.from_bytes(12345)


@pytest.fixture
def numpy_kernels():
    """Compiled kernels off (openge.kernels.set_enabled): the NumPy prepared paths, whose
    results must equal the generic kernels' bit for bit."""
    import openge.kernels

    openge.kernels.set_enabled(False)
    yield
    openge.kernels.set_enabled(True)


def test_prepared_tasks_give_the_generic_kernels_bits(numpy_kernels):
    """Tasks whose op has a prepare hook (here a depthwise and a 1x1 convolution) run closures
    made at load; swapping the generic kernels back in gives the same bits."""
    from openge.compiler import compile_graph
    from openge.runtime.model import _Prepared
    from tests.compiler.models import Builder

    b = Builder("prepared")
    x = b.input((1, 16, 6, 6))
    first = b.op("Relu", x)  # keeps the convolutions off the model input
    conv_attrs = {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "data_format": "NCHW"}
    dw = b.op(
        "Conv2D",
        first,
        b.weight(16, 1, 3, 3),
        b.weight(16),
        pads=[1, 1, 1, 1],
        groups=16,
        **conv_attrs,
    )
    pw = b.op("Conv2D", dw, b.weight(8, 16, 1, 1), None, pads=[0, 0, 0, 0], groups=1, **conv_attrs)
    g = b.done(b.op("Sigmoid", pw))
    feeds = b.feeds()
    with Model(compile_graph(g, {"ge.oo.level": "O1"})) as model:
        prepared = [s for s in model._steps if isinstance(s[0], _Prepared)]
        assert sorted(s[5] for s in prepared) == ["Conv2D", "Conv2D"]
        fast = model.execute(feeds)[0]
        model._steps = [
            (s[0].kernel if isinstance(s[0], _Prepared) else s[0], *s[1:]) for s in model._steps
        ]
        np.testing.assert_array_equal(fast, model.execute(feeds)[0])


def test_a_task_writing_the_model_output_is_prepared_through_a_private_array(numpy_kernels):
    """The last task writes the caller's output, known only per call: it is prepared over a
    private array copied out after it runs (_Staged's unstage), run after run, into fresh or
    caller-given outputs, with the generic kernel's bits."""
    from openge.compiler import compile_graph
    from openge.runtime.model import _Prepared, _Staged
    from tests.compiler.models import Builder

    b = Builder("prepared_output")
    x = b.input((1, 16, 6, 6))
    first = b.op("Relu", x)
    conv_attrs = {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "data_format": "NCHW"}
    last = b.op(
        "Conv2D", first, b.weight(8, 16, 1, 1), None, pads=[0, 0, 0, 0], groups=1, **conv_attrs
    )
    g = b.done(last)
    with Model(compile_graph(g, {"ge.oo.level": "O1"})) as model:
        staged = [s for s in model._steps if isinstance(s[0], _Staged) and s[0].unstage]
        assert [s[5] for s in staged] == ["Conv2D"]
        rng = np.random.default_rng(3)
        runs = []
        for _ in range(2):
            feeds = [rng.standard_normal((1, 16, 6, 6)).astype(np.float32)]
            fresh = model.execute(feeds)[0]
            given = np.full_like(fresh, np.nan)
            assert model.execute(feeds, [given])[0] is given
            np.testing.assert_array_equal(given, fresh)
            runs.append((feeds, fresh))
        assert not np.array_equal(runs[0][1], runs[1][1])
        model._steps = [
            (s[0].kernel if isinstance(s[0], _Prepared) else s[0], *s[1:]) for s in model._steps
        ]
        for feeds, fresh in runs:
            np.testing.assert_array_equal(fresh, model.execute(feeds)[0])
