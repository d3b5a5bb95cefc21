"""openge.ops.matmul_compiled and the MatMul ops' prepare: products with constant float32
weights run on openge's own GEMM (weights packed at load) and match the NumPy kernels within
float32 tolerance, run after run as the activations change; anything else keeps the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from openge import kernels
from openge.graph import DataType
from openge.ops import get_schema, matmul_compiled
from openge.ops.fused import encode_program

RNG = np.random.default_rng(9)


@pytest.fixture(autouse=True)
def _small_products_count(monkeypatch):
    """The tests' products are small: let them take the own GEMM."""
    monkeypatch.setattr(matmul_compiled, "MIN_WEIGHTS", 0)
    monkeypatch.setattr(matmul_compiled, "MIN_ROWS", 1)


def _uses_own_gemm(run) -> bool:
    """Whether a prepared closure runs openge.kernels.gemm (directly or under a wrapper)."""
    seen, todo = set(), [run]
    while todo:
        fn = todo.pop()
        if id(fn) in seen or not callable(fn):
            continue
        seen.add(id(fn))
        for cell in getattr(fn, "__closure__", None) or ():
            value = cell.cell_contents
            if "matmul_drive" in repr(value) or "gemm" in getattr(value, "__module__", ""):
                return True
            if callable(value):
                todo.append(value)
    return False


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(64, 96), (3, 40, 96)])  # 2-D, and batch entries as rows
def test_batch_matmul_with_constant_weights_runs_the_own_gemm(shape, threads, monkeypatch):
    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    monkeypatch.setattr(matmul_compiled, "SPLIT_FLOPS", 0)
    kernels.set_num_threads(threads)
    a = RNG.standard_normal(shape).astype(np.float32)
    w = RNG.standard_normal((96, 130)).astype(np.float32)
    bias = RNG.standard_normal(130).astype(np.float32)
    y = np.empty((*shape[:-1], 130), np.float32)
    schema = get_schema("BatchMatMulV2")
    run = schema.prepare([a, w, bias], [y], [False, True, True], adj_x1=False, adj_x2=False)
    assert run is not None and _uses_own_gemm(run)
    for _ in range(2):
        a[...] = RNG.standard_normal(shape)
        run()
        want = np.empty_like(y)
        schema.kernel([a, w, bias], [want], adj_x1=False, adj_x2=False)
        _close(y, want)


def test_matmul_with_transposed_constant_weights():
    a = RNG.standard_normal((50, 64)).astype(np.float32)
    w_t = RNG.standard_normal((33, 64)).astype(np.float32)  # Gemm's transB layout
    y = np.empty((50, 33), np.float32)
    schema = get_schema("MatMulV2")
    attrs = {"transpose_x1": False, "transpose_x2": True, "offset_x": 0}
    run = schema.prepare([a, w_t], [y], [False, True], **attrs)
    assert run is not None and _uses_own_gemm(run)
    run()
    want = np.empty_like(y)
    schema.kernel([a, w_t], [want], transpose_x1=False, transpose_x2=True)
    _close(y, want)


def test_fused_matmul_runs_the_own_gemm_then_its_epilogue():
    a = RNG.standard_normal((2, 24, 48)).astype(np.float32)
    w = RNG.standard_normal((48, 80)).astype(np.float32)
    bias = RNG.standard_normal(80).astype(np.float32)
    y = np.empty((2, 24, 80), np.float32)
    step = {"op": "Relu", "attrs": {}, "args": [0], "dtype": DataType.DT_FLOAT, "shape": y.shape}
    attrs = {"transpose_x1": False, "transpose_x2": False, "epilogue": encode_program([step])}
    schema = get_schema("FusedMatMul")
    run = schema.prepare([a, w, bias], [y], [False, True, True], **attrs)
    assert run is not None and _uses_own_gemm(run)
    run()
    _close(y, np.maximum(a @ w + bias, 0))


@pytest.mark.parametrize(
    "why", ["weights change", "float64", "transposed activations", "batched weights"]
)
def test_other_products_keep_blas(why):
    a = RNG.standard_normal((32, 16)).astype(np.float32)
    w = RNG.standard_normal((16, 24)).astype(np.float32)
    y = np.zeros((32, 24), np.float32)  # zeros: a cast of np.empty's garbage warns
    constant = True
    if why == "weights change":
        constant = False
    elif why == "float64":
        a, w, y = a.astype(np.float64), w.astype(np.float64), y.astype(np.float64)
    elif why == "transposed activations":
        a = np.asfortranarray(a)
    elif why == "batched weights":
        a, w, y = a[None], w[None], y[None]
    assert matmul_compiled.prepare_product(a, w, constant, y) is None


def test_small_weights_keep_blas_and_few_rows_read_the_weights_in_place(monkeypatch):
    """Small weights keep BLAS (a model of small products never imports numba); products of
    few rows (a batch-1 classifier: reading the weights bounds them) are not packed for the
    own GEMM but read the weights in place; past both thresholds a row's result does not
    depend on how many rows there are."""
    monkeypatch.setattr(matmul_compiled, "MIN_WEIGHTS", 32 * 40)
    monkeypatch.setattr(matmul_compiled, "MIN_ROWS", 8)
    w = RNG.standard_normal((32, 40)).astype(np.float32)
    x = RNG.standard_normal((64, 32)).astype(np.float32)
    assert (
        matmul_compiled.prepare_product(x, w[:, :39].copy(), True, np.empty((64, 39), np.float32))
        is None
    )
    few = matmul_compiled.prepare_product(x[:7].copy(), w, True, np.empty((7, 40), np.float32))
    assert few is not None and not _uses_own_gemm(few)
    rows = {}
    for m in (8, 13, 64):
        y = np.empty((m, 40), np.float32)
        run = matmul_compiled.prepare_product(x[:m].copy(), w, True, y)
        assert run is not None
        run()
        rows[m] = y[0].copy()
    np.testing.assert_array_equal(rows[8], rows[13])
    np.testing.assert_array_equal(rows[8], rows[64])


def test_disabled_compiled_kernels_keep_blas(monkeypatch):
    monkeypatch.setattr(kernels, "enabled", lambda: False)
    a = RNG.standard_normal((64, 64)).astype(np.float32)
    assert matmul_compiled.prepare_product(a, a.copy(), True, np.empty_like(a)) is None


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("transposed", [False, True], ids=["k-by-n", "gemm-weights"])
def test_few_rows_split_by_columns_match_numpy(threads, rows, transposed, monkeypatch):
    """A batch-1 classifier's product (one row: BLAS's matrix-vector product; three: its
    GEMM) with the weights read in place, as stored (K, N) or as a Gemm's transposed (N, K):
    on two threads each takes a block of output columns. The values of a float64 product,
    run after run as the activations change."""
    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    monkeypatch.setattr(matmul_compiled, "MIN_ROWS", 24)
    kernels.set_num_threads(threads)
    k, n = 150, 1001  # n: column blocks that are not all the same width
    stored = RNG.standard_normal((n, k) if transposed else (k, n)).astype(np.float32)
    w = stored.T if transposed else stored
    a = np.empty((rows, k), np.float32)
    y = np.empty((rows, n), np.float32)
    run = matmul_compiled.prepare_product(a, w, True, y)
    assert run is not None and not _uses_own_gemm(run)
    for _ in range(2):
        a[...] = RNG.standard_normal(a.shape)
        run()
        _close(y, a.astype(np.float64) @ w.astype(np.float64))


@pytest.mark.parametrize("rows", [1, 3])
def test_few_rows_with_k_by_n_weights_are_cut_along_k_the_same_on_any_thread_count(
    rows, monkeypatch
):
    """Weights stored (K, N): the product is cut along K (each part one contiguous stretch
    of the weights), the parts shared by two threads or run on one, then added in order: the
    same values bit for bit on one and two threads, and those of a float64 product."""
    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    monkeypatch.setattr(matmul_compiled, "MIN_ROWS", 24)
    k, n = 1000, 300
    w = RNG.standard_normal((k, n)).astype(np.float32)
    a = np.empty((rows, k), np.float32)
    y = np.empty((rows, n), np.float32)
    run = matmul_compiled.prepare_product(a, w, True, y)
    assert run is not None and run.__qualname__.startswith("_by_depth.")
    for _ in range(2):
        a[...] = RNG.standard_normal(a.shape)
        got = {}
        for threads in (2, 1):
            kernels.set_num_threads(threads)
            y[...] = np.nan
            run()
            got[threads] = y.copy()
        np.testing.assert_array_equal(got[1], got[2])
        _close(got[2], a.astype(np.float64) @ w.astype(np.float64))


def test_few_rows_with_strided_weights_keep_blas(monkeypatch):
    """Weights neither row- nor column-major (a strided view) are not read in place."""
    monkeypatch.setattr(matmul_compiled, "MIN_ROWS", 24)
    w = RNG.standard_normal((40, 80)).astype(np.float32)[:, ::2]
    a = RNG.standard_normal((1, 40)).astype(np.float32)
    assert matmul_compiled.prepare_product(a, w, True, np.empty((1, 40), np.float32)) is None


def _runs_batch_on_team(run) -> bool:
    """Whether a prepared closure holds openge.kernels.pointwise's batch drive."""
    cells = [c.cell_contents for c in getattr(run, "__closure__", None) or ()]
    if any("batch_drive" in repr(value) for value in cells):
        return True
    return any(_runs_batch_on_team(value) for value in cells if callable(value))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("b_layout", "dtype"),
    [
        ("stored", np.float32),
        ("transposed", np.float32),
        ("strided-rows", np.float32),
        ("transposed", np.float64),
    ],
)
def test_batched_products_of_computed_operands_match_numpy(threads, b_layout, dtype, monkeypatch):
    """Attention's products (both operands computed by the run, one product per head): B as
    stored, as a transposed view (BatchMatMul's adj_x2 over Kᵀ) or with padded rows; A with
    padded rows. The values of a float64 product, run after run as the operands change, on
    one thread (numpy's BLAS) and on two (the team, row blocks of every entry)."""
    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    monkeypatch.setattr(matmul_compiled, "BATCH_FLOPS", 0)
    kernels.set_num_threads(threads)
    batch, m, k, n = (2, 3), 37, 24, 29
    a_store = np.empty((*batch, m, k + 5), dtype)
    a = a_store[..., :k]  # rows 5 elements apart: lda = k + 5
    if b_layout == "stored":
        b_store = np.empty((*batch, k, n), dtype)
        b = b_store
    elif b_layout == "transposed":
        b_store = np.empty((*batch, n, k), dtype)
        b = np.swapaxes(b_store, -1, -2)
    else:
        b_store = np.empty((*batch, k, n + 3), dtype)
        b = b_store[..., :n]
    y = np.empty((*batch, m, n), dtype)
    run = matmul_compiled.prepare_product(a, b, False, y)
    assert run is not None and _runs_batch_on_team(run)
    for _ in range(2):
        a_store[...] = RNG.standard_normal(a_store.shape)
        b_store[...] = RNG.standard_normal(b_store.shape)
        run()
        _close(y, a.astype(np.float64) @ b.astype(np.float64))


def test_batched_products_the_team_cannot_read_keep_numpy(monkeypatch):
    """Broadcast batches, rows that are not contiguous, an output overlapping an operand,
    integers and 2-D products keep the kernel (None)."""
    monkeypatch.setattr(matmul_compiled, "BATCH_FLOPS", 0)
    a = RNG.standard_normal((4, 16, 8)).astype(np.float32)
    b = RNG.standard_normal((4, 8, 12)).astype(np.float32)
    y = np.empty((4, 16, 12), np.float32)
    prepare = matmul_compiled.prepare_batched
    assert prepare(a, b[:1], y) is None  # b broadcast over the batch
    assert prepare(np.swapaxes(a.reshape(4, 8, 16), -1, -2), b, y) is None  # A's columns
    assert prepare(a, b[:, :, ::2], np.empty((4, 16, 6), np.float32)) is None  # strided B
    square = RNG.standard_normal((4, 16, 16)).astype(np.float32)
    assert prepare(square, square[:, :, ::-1].copy(), square) is None  # y is A
    ints = a.astype(np.int32)
    assert prepare(ints, b.astype(np.int32), np.empty((4, 16, 12), np.int32)) is None
    assert prepare(a[0], b[0], y[0]) is None  # one product: numpy's own split
    assert prepare(a, b, y) is not None


def test_batched_products_in_a_model_without_compiled_kernels_keep_numpy(monkeypatch):
    """Inside a model's build that has loaded no compiled kernel, the batch stays numpy's and
    the task is marked for a second look (openge.ops.compiled.take_deferred)."""
    from openge.ops import compiled

    monkeypatch.setattr(matmul_compiled, "BATCH_FLOPS", 0)
    a = RNG.standard_normal((4, 16, 8)).astype(np.float32)
    b = RNG.standard_normal((4, 8, 12)).astype(np.float32)
    y = np.empty((4, 16, 12), np.float32)
    with compiled.model_build():
        compiled.take_deferred()
        assert matmul_compiled.prepare_batched(a, b, y) is None
        assert compiled.take_deferred()
        assert not compiled.take_deferred()  # the mark is taken once


def test_fused_batched_product_of_computed_operands_then_its_epilogue(monkeypatch):
    """Attention's scores: QKᵀ over a transposed view of K, then the epilogue (a ReLU here),
    on the team at two threads."""
    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    monkeypatch.setattr(matmul_compiled, "BATCH_FLOPS", 0)
    kernels.set_num_threads(2)
    q = RNG.standard_normal((1, 2, 40, 16)).astype(np.float32)
    keys = RNG.standard_normal((1, 2, 40, 16)).astype(np.float32)
    y = np.empty((1, 2, 40, 40), np.float32)
    step = {"op": "Relu", "attrs": {}, "args": [0], "dtype": DataType.DT_FLOAT, "shape": y.shape}
    attrs = {"transpose_x1": False, "transpose_x2": True, "epilogue": encode_program([step])}
    run = get_schema("FusedMatMul").prepare([q, keys], [y], [False, False], **attrs)
    assert run is not None and _runs_batch_on_team(run)
    for _ in range(2):
        q[...] = RNG.standard_normal(q.shape)
        keys[...] = RNG.standard_normal(keys.shape)
        run()
        want = q.astype(np.float64) @ np.swapaxes(keys, -1, -2).astype(np.float64)
        _close(y, np.maximum(want, 0))
