"""Load limits (openge.om.limits): documented options, checked before allocating or decoding."""

from __future__ import annotations

import numpy as np
import pytest

from openge.errors import GeError
from openge.om.limits import ENV_VARS, LoadLimits, default_limits
from openge.runtime import Model
from tests.security.capped import assert_bounded, run_jobs
from tests.security.craft import edit, seed


def test_every_limit_has_an_environment_variable():
    assert set(ENV_VARS) == {
        "max_model_bytes",
        "max_arena_bytes",
        "max_metadata_bytes",
        "max_tasks",
        "max_objects",
        "max_nesting",
        "max_program_steps",
    }
    assert all(v == "OPENGE_" + k.upper() for k, v in ENV_VARS.items())


def test_environment_variables_change_the_defaults(monkeypatch):
    monkeypatch.setenv("OPENGE_MAX_TASKS", "3")
    assert default_limits().max_tasks == 3
    with pytest.raises(GeError, match="max_tasks"):
        Model.from_bytes(seed())
    monkeypatch.setenv("OPENGE_MAX_TASKS", "lots")
    with pytest.raises(GeError, match="OPENGE_MAX_TASKS"):
        default_limits()


@pytest.mark.parametrize(
    ("limit", "value"),
    [
        ("max_model_bytes", 1000),
        ("max_arena_bytes", 100),
        ("max_metadata_bytes", 1000),
        ("max_tasks", 2),
        ("max_nesting", 0),
    ],
)
def test_each_limit_refuses_the_seed_when_lowered_and_the_seed_loads_by_default(limit, value):
    with pytest.raises(GeError, match=limit):
        Model.from_bytes(seed(), limits=LoadLimits(**{limit: value}))
    with Model.from_bytes(seed()) as model:
        assert model.execute([np.zeros((1, 3, 8, 8), np.float32)])[0].shape == (1, 5)


def test_a_raised_limit_admits_a_trusted_model():
    """A model over a default limit loads when the caller raises that limit."""
    big = 5 << 30

    def tasks(tl):
        tl.memory_size = big

    def model_def(md):
        md.attr["memory_size"].i = big

    data = edit(seed(), tasks=tasks, model_def=model_def)
    with pytest.raises(GeError, match="max_arena_bytes"):
        Model.from_bytes(data)
    with Model.from_bytes(data, limits=LoadLimits(max_arena_bytes=8 << 30)) as model:
        assert model.memory_size == big  # calloc'd: no page is touched until used


def test_thirty_million_empty_tasks_are_refused_before_decoding(tmp_path):
    """Issue 15: a 60 MB .om of 30M empty tasks reached 2.4 GB before the count check."""
    from tests.security.craft import task_list

    body = task_list(seed()).SerializeToString() + b"\x72\x00" * 30_000_000
    path = tmp_path / "tasks.om"
    path.write_bytes(edit(seed(), task_body=body, keep_op_count=True))
    assert path.stat().st_size > 60_000_000
    (out,) = run_jobs([("tests.security.jobs:load_file", [str(path)])], tmp_path)
    assert out.error == "GeError" and "max_tasks" in out.message, out.message
    assert_bounded(out, "30M empty tasks")


def test_the_object_budget_bounds_nested_messages(tmp_path):
    """Not only tasks: a single task with millions of empty slots is refused too."""
    from openge.om import task_pb2 as tp
    from tests.security.craft import task_list

    tl = task_list(seed())
    task = tp.Task(name="t", op_type="Relu")
    raw = task.SerializeToString() + b"\x22\x00" * 4_000_000  # Task.inputs, empty slots
    body = tl.SerializeToString() + b"\x72" + _varint(len(raw)) + raw
    path = tmp_path / "slots.om"
    path.write_bytes(edit(seed(), task_body=body, keep_op_count=True))
    (out,) = run_jobs([("tests.security.jobs:load_file", [str(path)])], tmp_path)
    assert out.error == "GeError" and "max_objects" in out.message, out.message
    assert_bounded(out, "4M empty slots")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _padded_conv(big: int):
    from onnx import TensorProto, helper, numpy_helper

    from openge.compiler import compile_graph
    from openge.parser import parse_onnx

    w = numpy_helper.from_array(np.ones((8, 8, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[big, 1, 0, 1], strides=[big, 1])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 20, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    return compile_graph(parse_onnx(helper.make_model(graph)))


def test_padding_counts_against_the_arena_limit():
    """Pads of a million rows are valid ONNX (a pooling's must be smaller than its window, so
    only convolutions can ask for this); a kernel materializing the padded input of this 1 KB
    model took 731 MB. The padded input's bytes count against max_arena_bytes at load."""
    with pytest.raises(GeError, match=r"with pads .* over the load limit max_arena_bytes"):
        Model(_padded_conv(10**6), limits=LoadLimits(max_arena_bytes=256 << 20))
    with Model(_padded_conv(10**4)) as model:  # 7 MB padded: within the default limit
        (y,) = model.execute([np.ones((1, 8, 20, 20), np.float32)])
        assert y.shape == (1, 8, 2, 20) and (y[0, :, 0] == 0).all() and (y[0, :, 1] > 0).all()
