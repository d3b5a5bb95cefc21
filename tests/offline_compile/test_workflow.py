"""The GetCompiledModel workflow of DESIGN §1.1: compile → buffer → save → load → execute."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from openge.errors import GeError, Status
from openge.ge_global import GeApi
from openge.graph import DataType, Graph, Tensor, TensorDesc
from openge.offline_compile import (
    ModelBufferData,
    build_finalize,
    build_initialize,
    build_model,
    save_model,
)
from openge.runtime import Model
from openge.session import GeSession
from tests.conftest import const, counter_graph, data

RNG = np.random.default_rng(7)
W = RNG.normal(size=(8, 4)).astype(np.float32)
B = RNG.normal(size=(4,)).astype(np.float32)


def linear_graph(name: str = "linear") -> Graph:
    """y = x @ W + b (MatMulV2 with bias), plus a second output copying x."""
    g = Graph(name)
    x = data(g, 0, (3, 8), name="x")
    w = const(g, W, name="w")
    b = const(g, B, name="b")
    y = g.add_node("MatMulV2", [x.output(0), w.output(0), b.output(0)], name="y")
    g.set_outputs([y.output(0), x.output(0)])
    return g


def x_input() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)


@pytest.fixture
def session(ge, work_path):
    with GeSession({}) as s:
        yield s


@pytest.fixture
def builder(work_path):
    build_initialize({})
    yield
    build_finalize()


def test_get_compiled_model_unknown_graph_is_graph_not_exist(session):
    with pytest.raises(GeError) as info:
        session.get_compiled_model(5)
    assert info.value.code == Status.GE_GRAPH_GRAPH_NOT_EXIST


def test_get_compiled_model_before_compile_is_param_invalid(session):
    session.add_graph(1, linear_graph())
    with pytest.raises(GeError) as info:
        session.get_compiled_model(1)
    assert info.value.code == Status.ACL_ERROR_GE_PARAM_INVALID
    assert "graph 1 is not compiled; call compile_graph first" in str(info.value)


def test_get_compiled_model_with_variable_acc_true_is_unsupported(session):
    session.add_graph(1, linear_graph(), {"ge.exec.variable_acc": "True"})
    session.compile_graph(1)
    with pytest.raises(GeError) as info:
        session.get_compiled_model(1)
    assert info.value.code == Status.ACL_ERROR_FEATURE_UNSUPPORTED
    assert 'ge.exec.variable_acc to "False"' in str(info.value)


def test_get_compiled_model_checks_in_ge_order(session):
    # Unknown id wins over everything; "not compiled" wins over variable_acc.
    session.add_graph(1, linear_graph(), {"ge.exec.variable_acc": "True"})
    with pytest.raises(GeError) as info:
        session.get_compiled_model(1)
    assert info.value.code == Status.ACL_ERROR_GE_PARAM_INVALID


def test_buffer_owns_its_bytes_and_outlives_the_session(ge, work_path):
    with GeSession() as s:
        s.add_graph(1, linear_graph())
        s.compile_graph(1)
        buf = s.get_compiled_model(1)
        expected = s.run_graph(1, [x_input()])[0].numpy()
    assert isinstance(buf, ModelBufferData) and buf.length == len(bytes(buf)) > 256
    GeApi.ge_finalize()
    with Model.from_bytes(buf) as model:
        np.testing.assert_array_equal(model.execute([x_input()])[0], expected)


def test_three_load_paths_are_bit_identical(session, tmp_path):
    session.add_graph(1, linear_graph())
    session.compile_graph(1)
    buf = session.get_compiled_model(1)
    x = x_input()
    via_session = session.run_graph(1, [x])[0].numpy()
    with Model.from_bytes(buf) as model:
        via_buffer = model.execute([x])[0]
    path = save_model(str(tmp_path / "linear"), buf)
    with Model.from_file(path) as model:
        via_file = model.execute([x])[0]
    assert via_session.tobytes() == via_buffer.tobytes() == via_file.tobytes()
    np.testing.assert_allclose(via_file, x @ W + B, rtol=1e-5, atol=1e-5)


def test_save_model_always_appends_om(builder, tmp_path):
    buf = build_model(linear_graph())
    assert save_model(str(tmp_path / "x"), buf) == str(tmp_path / "x.om")
    assert save_model(str(tmp_path / "x.om"), buf) == str(tmp_path / "x.om.om")
    assert os.path.isfile(tmp_path / "x.om.om")


def test_save_model_creates_folders_writes_0600_and_marks_offline(builder, tmp_path):
    from openge.runtime import check_compatibility

    buf = build_model(linear_graph())
    assert check_compatibility(buf).online
    path = save_model(str(tmp_path / "a" / "b" / "model"), buf)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    compat = check_compatibility(path)
    assert compat.ok and not compat.online and compat.format == "1.1"
    assert not [f for f in os.listdir(tmp_path / "a" / "b") if f.startswith(".tmp_")]


def test_build_model_needs_build_initialize():
    build_finalize()
    with pytest.raises(GeError) as info:
        build_model(linear_graph())
    assert info.value.code == Status.GE_CLI_GE_NOT_INITIALIZED


def test_online_buffer_from_another_version_is_refused(builder, monkeypatch):
    buf = build_model(linear_graph())
    import openge.runtime.compat as compat

    monkeypatch.setattr(compat, "PRODUCER", "openge-9.9.9")
    with pytest.raises(GeError, match="save_model") as info:
        Model.from_bytes(buf)
    assert "openge-0.1.0" in str(info.value)


def test_offline_model_from_another_patch_version_loads(builder, tmp_path, monkeypatch):
    path = save_model(str(tmp_path / "m"), build_model(linear_graph()))
    import openge.runtime.compat as compat

    monkeypatch.setattr(compat, "PRODUCER", "openge-9.9.9")
    with Model.from_file(path) as model:
        assert model.execute([x_input()])[0].shape == (3, 4)


def test_newer_minor_and_other_major_format_are_refused(builder, monkeypatch):
    import openge.runtime.compat as compat

    buf = build_model(linear_graph())
    monkeypatch.setattr(compat, "OM_FORMAT_VERSION", (1, -1))
    result = compat.check_compatibility(buf)
    assert not result.ok and "newer" in result.reason and "upgrade openge" in result.reason
    monkeypatch.setattr(compat, "OM_FORMAT_VERSION", (2, 0))
    result = compat.check_compatibility(buf)
    assert not result.ok and "re-run openge atc" in result.reason
    with pytest.raises(GeError) as info:
        Model.from_bytes(buf)
    assert info.value.code == Status.ACL_ERROR_GE_LOAD_MODEL


def test_run_graph_and_loaded_model_share_one_plan(session):
    """run_graph executes the online .om bytes: the plan it runs is the one get_compiled_model
    returns (same tasks, same memory plan)."""
    session.add_graph(1, linear_graph())
    session.compile_graph(1)
    session.run_graph(1, [x_input()])
    loaded = session._graphs[1].model.compiled
    with Model.from_bytes(session.get_compiled_model(1)) as model:
        assert model.compiled.tasks == loaded.tasks
        assert model.compiled.memory_size == loaded.memory_size


# ----- variables -----------------------------------------------------------------------------


def test_compiled_model_carries_current_variable_values(session):
    session.add_graph(1, counter_graph(), {"ge.exec.variable_acc": "False"})
    one = np.ones(2, np.float32)
    session.run_graph(1, [one])
    session.run_graph(1, [one])
    buf = session.get_compiled_model(1)
    with Model.from_bytes(buf) as model:
        np.testing.assert_array_equal(model.execute([one])[0], [3.0, 3.0])
        # A loaded model keeps its own state across execute calls: the counter counts.
        np.testing.assert_array_equal(model.execute([one])[0], [4.0, 4.0])
        np.testing.assert_array_equal(model.get_variables()["count"], [4.0, 4.0])
    # ... and it does not touch the session's value.
    np.testing.assert_array_equal(session.get_variables()["count"], [2.0, 2.0])


def _cast_reader_graph(name: str, var: str = "v") -> Graph:
    """Reads variable ``var`` (float32) through Cast to float16: the pass stores it as fp16."""
    g = Graph(name)
    x = data(g, 0, (4,), DataType.DT_FLOAT16, name="x")
    v = g.add_node("Variable", name=var, attrs={"value": Tensor(np.arange(4, dtype=np.float32))})
    c = g.add_node("Cast", [v.output(0)], attrs={"dst_type": DataType.DT_FLOAT16})
    y = g.add_node("Identity", [c.output(0)])
    g.set_outputs([y.output(0), x.output(0)])
    return g


def _plain_reader_graph(name: str, var: str = "v") -> Graph:
    g = Graph(name)
    x = data(g, 0, (4,), name="x")
    v = g.add_node("Variable", name=var, output_descs=[TensorDesc(DataType.DT_FLOAT, (4,))])
    a = g.add_node("AssignAdd", [v.output(0), x.output(0)])
    g.set_outputs([a.output(0)])
    return g


def test_variable_format_pass_changes_format_once_and_flags_rebuild(session):
    session.add_graph(1, _plain_reader_graph("plain"))
    session.add_graph(2, _cast_reader_graph("reader"))
    ones = np.ones(4, np.float32)
    np.testing.assert_array_equal(session.run_graph(1, [ones])[0].numpy(), [1, 1, 1, 1])
    assert not session.is_graph_need_rebuild(1)
    session.compile_graph(2)  # variable_acc unset: the pass is on and stores v as float16
    assert session.is_graph_need_rebuild(1)
    assert session.get_variables(["v"])["v"].dtype == np.float16
    out = session.run_graph(2, [np.zeros(4, np.float16)])[0].numpy()
    np.testing.assert_array_equal(out, np.ones(4, np.float16))
    # The flagged graph is rebuilt on its next run and keeps working on the stored value.
    out = session.run_graph(1, [ones])[0].numpy()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [2, 2, 2, 2])
    assert not session.is_graph_need_rebuild(1)


def test_variable_acc_false_keeps_formats(session):
    session.add_graph(1, _plain_reader_graph("plain"), {"ge.exec.variable_acc": "False"})
    session.add_graph(2, _cast_reader_graph("reader"), {"ge.exec.variable_acc": "False"})
    session.run_graph(1, [np.ones(4, np.float32)])
    session.compile_graph(2)
    assert not session.is_graph_need_rebuild(1)
    assert session.get_variables(["v"])["v"].dtype == np.float32
