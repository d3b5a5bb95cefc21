"""openge.kernels.blas: products split over openge's threads give numpy's results, the BLAS
thread count is restored, errors in jobs reach the caller."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from openge import kernels
from openge.kernels import blas


@pytest.fixture
def two_threads(monkeypatch):
    """openge at 2 threads and numpy's BLAS at 2 (an earlier test may have limited it to 1,
    which turns the split off), both restored after the test."""
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(kernels, "_state", {**kernels._state})
    kernels.set_num_threads(2)
    with threadpool_limits(2, user_api="blas"):
        yield


def _ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An independent float64 product (einsum over broadcast batch dims)."""
    return np.einsum("...ik,...kj->...ij", a.astype(np.float64), b.astype(np.float64))


@pytest.mark.parametrize(
    ("ashape", "bshape"),
    [
        ((256, 300), (300, 200)),  # split rows
        ((40, 300), (300, 1000)),  # split columns
        ((3, 128, 64), (3, 64, 96)),  # split batch
        ((1, 4, 128, 64), (1, 4, 64, 128)),  # batch axis 1
        ((2, 128, 256), (256, 64)),  # b broadcast over the batch
        ((128, 256), (3, 256, 96)),  # a broadcast over the batch
        ((1, 128, 256), (4, 256, 64)),  # a's batch axis of size 1
        ((7, 9), (9, 5)),  # too small to split
        ((1, 512), (512, 1000)),  # one row
        ((33, 517), (517, 31)),  # odd sizes
    ],
)
def test_matmul_matches_reference(two_threads, ashape, bshape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(ashape).astype(np.float32)
    b = rng.standard_normal(bshape).astype(np.float32)
    ref = _ref(a, b)
    out = np.full(ref.shape, np.nan, dtype=np.float32)
    blas.matmul(a, b, out)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)


def test_matmul_transposed_views_and_strided_out(two_threads):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 256)).astype(np.float32).T  # (256, 300), F-ordered
    b = rng.standard_normal((200, 300)).astype(np.float32).T
    big = np.zeros((256, 400), dtype=np.float32)
    out = big[:, 100:300]
    blas.matmul(a, b, out)
    np.testing.assert_allclose(out, _ref(a, b), rtol=1e-4, atol=1e-3)
    assert not big[:, :100].any() and not big[:, 300:].any()  # nothing outside `out` written


def test_matmul_overlapping_out_matches_numpy(two_threads):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((256, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)
    ref = _ref(a, b)
    blas.matmul(a, b, a)  # out is a: numpy's buffered path, never parts reading what others wrote
    np.testing.assert_allclose(a, ref, rtol=1e-4, atol=1e-3)


def test_vector_operands_follow_numpy(two_threads):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((300, 400)).astype(np.float32)
    v = rng.standard_normal(400).astype(np.float32)
    out = np.empty(300, np.float32)
    blas.matmul(a, v, out)
    np.testing.assert_allclose(
        out, a.astype(np.float64) @ v.astype(np.float64), rtol=1e-4, atol=1e-3
    )


def test_float64_and_int(two_threads):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((200, 300))
    b = rng.standard_normal((300, 150))
    out = np.empty((200, 150))
    blas.matmul(a, b, out)
    np.testing.assert_allclose(out, _ref(a, b), rtol=1e-12, atol=1e-10)
    ai = rng.integers(-5, 5, (300, 200)).astype(np.int32)
    bi = rng.integers(-5, 5, (200, 100)).astype(np.int32)
    oi = np.empty((300, 100), dtype=np.int32)
    blas.matmul(ai, bi, oi)
    np.testing.assert_array_equal(oi, _ref(ai, bi).astype(np.int32))


def test_blas_thread_count_restored(two_threads):
    lib = blas._lib()
    if not lib.ok:
        pytest.skip("numpy's BLAS is not OpenBLAS here: nothing is split or changed")
    before = lib.get()
    seen = []
    blas.parallel([lambda: seen.append(lib.get()) for _ in range(4)])
    assert lib.get() == before
    assert seen == [1, 1, 1, 1]  # BLAS held at one thread while openge's jobs run


def test_parallel_runs_every_job_once_on_several_threads(two_threads):
    if blas.split_threads() < 2:
        pytest.skip("one thread only (BLAS not found or limited to 1)")
    done = []
    names = set()
    lock = threading.Lock()

    def job(i: int) -> None:
        with lock:
            done.append(i)
            names.add(threading.current_thread().name)

    blas.parallel([lambda i=i: job(i) for i in range(9)])
    assert sorted(done) == list(range(9))
    assert names <= {threading.current_thread().name, "openge-blas"}
    # job 0 (the caller's first claim) waits for job 1, which only a second thread can run
    started = threading.Event()
    waited = []
    blas.parallel([lambda: waited.append(started.wait(10)), started.set])
    assert waited == [True]


def test_a_late_pool_thread_leaves_its_jobs_to_the_caller(two_threads):
    if blas.split_threads() < 2:
        pytest.skip("one thread only (BLAS not found or limited to 1)")
    blas.parallel([lambda: None, lambda: None])  # the pool exists
    worker = blas._workers[0]
    gate = threading.Event()
    worker.queue.put(type("Stall", (), {"work": lambda self: gate.wait(10)})())  # busy worker
    ran = []
    blas.parallel([lambda i=i: ran.append(i) for i in range(4)])  # no wait for the worker
    assert sorted(ran) == [0, 1, 2, 3]
    gate.set()


def test_parallel_raises_a_jobs_error_and_stays_usable(two_threads):
    def bad() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        blas.parallel([lambda: None, bad, lambda: None, lambda: None])
    out = []
    blas.parallel([lambda: out.append(1), lambda: out.append(2)])
    assert sorted(out) == [1, 2]


def test_one_thread_setting_disables_the_split():
    before = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        assert blas.split_threads() == 1
    finally:
        kernels.set_num_threads(before)


@pytest.mark.parametrize(
    ("total", "parts", "most"), [(56, 2, 32), (7, 2, 7), (28, 2, 14), (5, 3, 1), (1, 2, 4)]
)
def test_chunks_cover_the_range(total, parts, most):
    spans = blas.chunks(total, parts, most)
    covered = [i for a, b in spans for i in range(a, b)]
    assert covered == list(range(total))
    if total >= parts and -(-total // most) <= total:
        assert all(b - a <= max(most, -(-total // len(spans))) for a, b in spans)


def test_single_blas_gives_the_count_it_found_and_holds_one(two_threads):
    lib = blas._lib()
    if not lib.ok:
        pytest.skip("numpy's BLAS is not OpenBLAS here: nothing is held")
    with blas.single_blas as outer:
        assert outer == 2 and lib.get() == 1
        with blas.single_blas as inner:  # nested: still the count found on the way in
            assert inner == 2 and lib.get() == 1
        assert lib.get() == 1
    assert lib.get() == 2
