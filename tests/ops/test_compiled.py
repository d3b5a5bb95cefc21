"""openge.ops.compiled.launcher: at more than one openge thread a compiled kernel's items are
shared by openge's own threads (each part once, errors raised in the caller); at one thread or
for small work the serial kernel runs in the calling thread. The compiled paths give the same
values at 1 and 2 threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from openge import kernels
from openge.ops import get_schema
from openge.ops.compiled import launcher, row_parts


@pytest.fixture
def threads():
    before = kernels.get_num_threads()
    yield kernels.set_num_threads
    kernels.set_num_threads(before)


def _at_one_and_two_threads(run, out, threads) -> list[np.ndarray]:
    """``out`` after ``run()`` at 1 and at 2 threads, NaN-filled before each."""
    results = []
    for n in (1, 2):
        threads(n)
        out[...] = np.nan
        run()
        results.append(out.copy())
    return results


def test_ranged_parts_cover_every_item_once(threads):
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()
    calls = {"whole": 0}

    def part(tag, first, stop):
        assert tag == "t"
        with lock:
            seen.append((first, stop))

    def whole(tag):
        calls["whole"] += 1

    run = launcher(whole, True, "t", ranged=(part, 37))
    threads(2)
    run()
    covered = sorted(i for a, b in seen for i in range(a, b))
    assert covered == list(range(37)) and len(seen) > 2
    assert calls["whole"] == 0
    threads(1)
    run()
    assert calls["whole"] == 1
    small = launcher(whole, False, "t", ranged=(part, 37))
    threads(2)
    small()
    assert calls["whole"] == 2


def test_a_part_error_reaches_the_caller(threads):
    def part(first, stop):
        if first > 0:
            raise ValueError("boom")

    run = launcher(lambda: None, True, ranged=(part, 8))
    threads(2)
    with pytest.raises(ValueError, match="boom"):
        run()


def test_row_parts_cut_only_the_named_arguments():
    got = []

    def serial(a, keep, b, scale):
        got.append((a.tolist(), keep.tolist(), b.tolist(), scale))

    part = row_parts(serial, (0, 2))
    part(np.arange(5), np.arange(3), np.arange(10, 15), 2.0, 1, 4)
    assert got == [([1, 2, 3], [0, 1, 2], [11, 12, 13], 2.0)]


def test_compiled_paths_equal_at_one_and_two_threads(threads):
    """A depthwise convolution + SiLU (rows and channels-last kernels) and a ReduceMean, large
    enough to be shared by the threads: the same bits at 1 and 2 threads."""
    from openge.graph import DataType
    from openge.ops.fused import encode_program

    rng = np.random.default_rng(3)
    for side, c in ((56, 96), (7, 1152)):
        x = rng.standard_normal((1, c, side, side)).astype(np.float32)
        w = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        y = np.empty_like(x)
        shape = y.shape
        step = {"attrs": {}, "dtype": DataType.DT_FLOAT, "shape": shape}
        prog = encode_program(
            [{"op": "Sigmoid", "args": [0], **step}, {"op": "Mul", "args": [0, -1], **step}]
        )
        attrs = {
            "strides": [1, 1, 1, 1],
            "pads": [1, 1, 1, 1],
            "dilations": [1, 1, 1, 1],
            "groups": c,
            "data_format": "NCHW",
        }
        run = get_schema("FusedConv2D").prepare(
            [x, w, b], [y], [False, True, True], **attrs, epilogue=prog
        )
        assert run is not None
        results = _at_one_and_two_threads(run, y, threads)
        np.testing.assert_array_equal(results[0], results[1])
        assert np.isfinite(results[0]).all()
    x = rng.standard_normal((2, 256, 32, 32)).astype(np.float32)
    out = np.empty((2, 256, 1, 1), np.float32)
    run = get_schema("ReduceMean").prepare(
        [x, np.array([2, 3], np.int64)],
        [out],
        [False, True],
        keep_dims=True,
        noop_with_empty_axes=False,
    )
    assert run is not None
    results = _at_one_and_two_threads(run, out, threads)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], x.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)


def test_elementwise_program_shared_by_the_threads_gives_the_same_bits(threads, monkeypatch):
    """A program split over openge's pool (forced: programs with a team drive form share
    their rows on the team, and the pool's threshold keeps programs under 2 MiB whole)
    equals the serial pass and NumPy's formula."""
    from openge.ops import compiled

    monkeypatch.setattr(compiled, "PARALLEL_ELEMENTS", 1 << 10)
    monkeypatch.setattr(compiled, "warm_drive", lambda *args: False)
    rng = np.random.default_rng(9)
    x = (4 * rng.standard_normal((16, 112, 112))).astype(np.float32)
    y = np.empty_like(x)
    run = compiled.program_closure([("HardSwish", [0], {})], [x], [False], y)
    assert run is not None
    results = _at_one_and_two_threads(run, y, threads)
    np.testing.assert_array_equal(results[0], results[1])
    want = x * np.clip(x + 3, 0, 6) / 6
    np.testing.assert_allclose(results[0], want, rtol=1e-6, atol=1e-6)


def test_elementwise_program_rows_on_the_thread_team(threads, monkeypatch):
    """From TEAM_ELEMENTS a program's rows run on openge's thread team (its generated drive
    form): the same bits as the serial pass at one and two threads, every row written."""
    from openge.kernels import team
    from openge.ops import compiled

    calls = []
    real_run = team.run

    def spy(drive, whole, args, total, parts, count):
        calls.append((total, parts, count))
        return real_run(drive, whole, args, total, parts, count)

    monkeypatch.setattr(team, "run", spy)
    rng = np.random.default_rng(11)
    x = (4 * rng.standard_normal((8, 96, 96))).astype(np.float32)  # 73728 ≥ TEAM_ELEMENTS
    bias = rng.standard_normal((8, 1, 1)).astype(np.float32)
    y = np.full_like(x, np.nan)
    steps = [("Add", [0, 1], {}), ("Relu", [-1], {})]
    run = compiled.program_closure(steps, [x, bias], [False, True], y)
    assert run is not None
    results = _at_one_and_two_threads(run, y, threads)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], np.maximum(x + bias, 0), rtol=1e-6, atol=1e-6)
    assert calls and calls[-1][2] == 2  # the two-thread run went through the team


def test_the_lower_size_rule_follows_the_model_being_built():
    """Once numba is loaded, mid-sized tasks compile — but only for a model that loaded
    compiled kernels itself: another model loaded earlier in the process must not change
    this one's kernels (or its results' bits)."""
    from openge.ops import compiled

    kernels.load("pooling")  # as if an earlier model had imported numba
    size = compiled.MIN_ELEMENTS_LOADED * 4
    assert size < compiled.MIN_ELEMENTS
    assert compiled.worth_compiling(size)  # an op prepared on its own: the process's state
    with compiled.model_build():
        assert not compiled.loaded_here()
        assert not compiled.worth_compiling(size)
        assert compiled.worth_compiling(compiled.MIN_ELEMENTS)
        with compiled.model_build():  # nested (a gear's plan): the same model
            assert compiled.load("pooling") is not None
        assert compiled.loaded_here()
        assert compiled.worth_compiling(size)
    with compiled.model_build():  # the next model starts afresh
        assert not compiled.worth_compiling(size)


def test_an_erf_program_compiles_from_its_own_lower_size():
    """A float32 program with an erf step compiles from ERF_MIN_ELEMENTS in a model that has
    loaded no compiled kernel (NumPy's float32 erf costs ~20× a plain step per element);
    other programs of that size, and float64 ones, keep their NumPy kernels."""
    import math

    from openge.ops import compiled

    size = compiled.ERF_MIN_ELEMENTS
    assert size < compiled.MIN_ELEMENTS
    x = np.random.default_rng(8).standard_normal(size).astype(np.float32) * 2
    with compiled.model_build():
        plain = compiled.program_closure([("Relu", [0], {})], [x], [False], np.empty_like(x))
        assert plain is None
        wide = x.astype(np.float64)
        assert compiled.program_closure([("Erf", [0], {})], [wide], [False], wide.copy()) is None
        assert not compiled.loaded_here()
        y = np.empty_like(x)
        run = compiled.program_closure([("Erf", [0], {})], [x], [False], y)
        assert run is not None
        run()
    ref = np.array([math.erf(v) for v in x.astype(np.float64)])
    np.testing.assert_allclose(y, ref, rtol=3e-7, atol=1e-7)
    with compiled.model_build():  # below its size, NumPy's
        small = x[: size // 2]
        assert compiled.program_closure([("Erf", [0], {})], [small], [False], small.copy()) is None
