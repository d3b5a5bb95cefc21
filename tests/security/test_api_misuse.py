"""API misuse gives GeError, never TypeError/BufferError/ValueError (issue 15 case 4)."""

from __future__ import annotations

import numpy as np
import pytest

from openge.errors import GeError
from openge.om.limits import LoadLimits
from openge.runtime import Model, check_compatibility, query_size
from tests.security.craft import seed


@pytest.fixture(scope="module")
def model():
    with Model.from_bytes(seed()) as m:
        yield m


@pytest.mark.parametrize(
    "inputs",
    [None, 5, "x", b"x", [None], [object()], [["a", "b"]], [np.zeros(3, np.float32)], {"nope": 1}],
)
def test_execute_with_bad_inputs(model, inputs):
    with pytest.raises(GeError):
        model.execute(inputs)


@pytest.mark.parametrize("outputs", [5, np.zeros((1, 5), np.float32), [None], [np.zeros(5)]])
def test_execute_with_bad_outputs(model, outputs):
    with pytest.raises(GeError):
        model.execute([np.zeros((1, 3, 8, 8), np.float32)], outputs)


def test_a_non_contiguous_input_is_copied_not_misread(model):
    base = np.random.default_rng(0).normal(size=(1, 3, 8, 16)).astype(np.float32)
    strided = base[..., ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(
        model.execute([strided])[0], model.execute([np.ascontiguousarray(strided)])[0]
    )


@pytest.mark.parametrize("path", [None, 5, b"\0", "", ["x"], "/nonexistent/m.om"])
def test_from_file_with_a_bad_path(path):
    with pytest.raises(GeError):
        Model.from_file(path)


@pytest.mark.parametrize("bad", [None, 5, "a path", ["x"], object()])
def test_from_bytes_with_a_non_buffer(bad):
    with pytest.raises(GeError):
        Model.from_bytes(bad)


def test_from_bytes_of_a_non_contiguous_view():
    data = np.frombuffer(seed() * 2, np.uint8)[::2]
    with pytest.raises(GeError, match="contiguous"):
        Model.from_bytes(memoryview(data))


@pytest.mark.parametrize("fn", [query_size, check_compatibility])
@pytest.mark.parametrize(
    "source", [None, 5, b"", b"garbage" * 100, seed()[:300], seed()[:-1], bytearray(1000)]
)
def test_query_size_and_check_compatibility_on_malformed_input(fn, source):
    with pytest.raises(GeError):
        fn(source)


def test_query_size_on_a_truncated_file(tmp_path):
    path = tmp_path / "t.om"
    path.write_bytes(seed()[:5000])
    with pytest.raises(GeError, match="truncated"):
        query_size(str(path))


def test_limits_must_be_load_limits():
    with pytest.raises(GeError, match="LoadLimits"):
        Model.from_bytes(seed(), limits={"max_tasks": 1})


def test_execute_after_close_and_close_twice():
    m = Model.from_bytes(seed())
    m.close()
    m.close()
    with pytest.raises(GeError, match="closed"):
        m.execute([np.zeros((1, 3, 8, 8), np.float32)])


def test_a_lowered_limit_refuses_the_seed_and_names_the_way_out():
    with pytest.raises(GeError) as info:
        Model.from_bytes(seed(), limits=LoadLimits(max_tasks=3))
    text = str(info.value)
    assert "max_tasks" in text and "OPENGE_MAX_TASKS" in text
