"""GeSession semantics of DESIGN §1.1 / §1.2: init, options, graphs, run modes, variables."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from openge.errors import GeError, Status
from openge.ge_global import GeApi
from openge.graph import DataType, Graph, Tensor, TensorDesc
from openge.session import GeSession, Session
from tests.conftest import counter_graph, data


def identity_graph(name="g", shape=(2, 3)) -> Graph:
    g = Graph(name)
    x = data(g, 0, shape)
    y = g.add_node("Identity", [x.output(0)], name="y")
    g.set_outputs([y.output(0)])
    return g


def test_session_before_initialize_raises_not_initialized():
    GeApi.ge_finalize()
    with pytest.raises(GeError) as info:
        GeSession({})
    assert info.value.code == Status.GE_CLI_GE_NOT_INITIALIZED == 1343229963
    assert "ge_initialize" in str(info.value)


def test_finalize_closes_every_session(ge):
    a, b = GeSession(), GeSession()
    a.add_graph(1, identity_graph())
    GeApi.ge_finalize()
    with pytest.raises(GeError, match="closed"):
        a.add_graph(2, identity_graph())
    with pytest.raises(GeError):
        b.run_graph(1, [np.zeros((2, 3), np.float32)])


def test_initialize_is_a_singleton_and_instance_calls_work():
    api = GeApi()
    assert api.ge_initialize({}) == 0
    assert GeApi.ge_initialize({"ge.exec.deviceId": "0"}) == 0  # second call: no-op
    assert GeApi.is_initialized()
    assert api.ge_finalize() == 0
    assert not GeApi.is_initialized()


def test_unknown_option_key_warns_and_is_accepted(ge, caplog):
    with caplog.at_level(logging.WARNING):
        s = GeSession({"ge.someFutureOption": "1"})
    assert "ge.someFutureOption" in caplog.text
    s.close()


def test_bad_option_value_names_key_value_and_accepted_values(ge):
    with pytest.raises(GeError) as info:
        GeSession({"ge.externalWeight": "3"})
    text = str(info.value)
    assert "ge.externalWeight" in text and "'3'" in text and "0, 1, 2" in text
    assert info.value.code == Status.ACL_ERROR_GE_PARAM_INVALID
    with pytest.raises(GeError, match=r"ge\.exec\.variable_acc"):
        GeSession().add_graph(1, identity_graph(), {"ge.exec.variable_acc": "yes"})


def test_option_layering_narrowest_wins(ge):
    GeApi.ge_finalize()
    GeApi.ge_initialize({"ge.oo.level": "O1", "ge.exec.disableReuseMemory": "1"})
    with GeSession({"ge.oo.level": "O3", "ge.externalWeight": "0"}) as s:
        s.add_graph(1, identity_graph(), {"ge.externalWeight": "1"})
        s.add_graph(2, identity_graph())
        merged = s.options_for(1)
        assert merged["ge.oo.level"] == "O3"  # session over global
        assert merged["ge.exec.disableReuseMemory"] == "1"  # global kept
        assert merged["ge.externalWeight"] == "1"  # graph over session
        assert s.options_for(2)["ge.externalWeight"] == "0"


def test_add_remove_and_unknown_ids(ge):
    with Session() as s:
        g = identity_graph()
        assert s.add_graph(7, g) == 0
        with pytest.raises(GeError, match="already used"):
            s.add_graph(7, g)
        s.remove_graph(7)
        with pytest.raises(GeError) as info:
            s.remove_graph(7)
        assert info.value.code == Status.GE_GRAPH_GRAPH_NOT_EXIST
        with pytest.raises(GeError) as info:
            s.run_graph(99, [])
        assert info.value.code == Status.GE_GRAPH_GRAPH_NOT_EXIST


def test_add_graph_sees_later_edits_but_clone_does_not(ge):
    with GeSession() as s:
        shared, cloned = identity_graph("a"), identity_graph("b")
        s.add_graph(1, shared)
        s.add_graph_clone(2, cloned)
        for g in (shared, cloned):
            y = g.node("y")
            z = g.add_node("Identity", [y.output(0)], name="z")
            g.set_outputs([y.output(0), z.output(0)])
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        assert len(s.run_graph(1, [x])) == 2
        assert len(s.run_graph(2, [x])) == 1


def test_run_graph_returns_tensors_matching_input(ge):
    with GeSession() as s:
        s.add_graph(1, identity_graph())
        x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
        out = s.run_graph(1, [Tensor(x)])
        assert isinstance(out[0], Tensor)
        np.testing.assert_array_equal(out[0].numpy(), x)


def test_run_graph_validates_inputs(ge):
    with GeSession() as s:
        s.add_graph(1, identity_graph())
        with pytest.raises(GeError, match=r"expected dtype float32"):
            s.run_graph(1, [np.zeros((2, 3), np.int32)])
        with pytest.raises(GeError, match=r"expected shape \[2, 3\]"):
            s.run_graph(1, [np.zeros((3, 2), np.float32)])
        with pytest.raises(GeError, match="takes 1 inputs"):
            s.run_graph(1, [])


def test_run_mode_is_fixed_by_the_first_run(ge):
    with GeSession() as s:
        s.add_graph(1, identity_graph())
        s.add_graph(2, identity_graph())
        x = np.zeros((2, 3), np.float32)
        s.run_graph(1, [x])
        with pytest.raises(GeError, match="first run with run_graph"):
            s.run_graph_async(1, [x], lambda status, outs: None)
        done = threading.Event()
        s.run_graph_async(2, [x], lambda status, outs: done.set())
        assert done.wait(10)
        with pytest.raises(GeError, match="first run with run_graph_async"):
            s.run_graph(2, [x])


def test_run_graph_async_calls_back_in_order_with_status(ge):
    results = []
    done = threading.Event()
    with GeSession() as s:
        s.add_graph(1, identity_graph())

        def callback(status, outputs):
            results.append(
                (status, [o.numpy().copy() for o in outputs], threading.current_thread().name)
            )
            if len(results) == 4:
                done.set()

        for i in range(3):
            s.run_graph_async(1, [np.full((2, 3), i, np.float32)], callback)
        s.run_graph_async(1, [np.zeros((5,), np.float32)], callback)  # bad shape
        assert done.wait(20)
    assert [r[0] for r in results[:3]] == [0, 0, 0]
    assert [float(r[1][0][0, 0]) for r in results[:3]] == [0.0, 1.0, 2.0]
    assert results[3][0] == Status.ACL_ERROR_GE_SHAPE_INVALID and results[3][1] == []
    assert all(r[2] != threading.main_thread().name for r in results)


def test_variables_persist_across_runs_and_are_shared_between_graphs(ge):
    with GeSession() as s:
        s.add_graph(1, counter_graph("inc"))
        s.add_graph(2, counter_graph("inc_too"))
        one = np.ones(2, np.float32)
        s.run_graph(1, [one])
        s.run_graph(1, [one])
        out = s.run_graph(2, [one * 10])
        np.testing.assert_array_equal(out[0].numpy(), [12.0, 12.0])
        np.testing.assert_array_equal(s.get_variables(["count"])["count"], [12.0, 12.0])
        assert list(s.get_variables()) == ["count"]
        with pytest.raises(GeError, match="no variable named 'nope'"):
            s.get_variables(["nope"])


def test_variables_are_per_session(ge):
    one = np.ones(2, np.float32)
    with GeSession() as a, GeSession() as b:
        a.add_graph(1, counter_graph())
        b.add_graph(1, counter_graph())
        a.run_graph(1, [one])
        a.run_graph(1, [one])
        np.testing.assert_array_equal(b.run_graph(1, [one])[0].numpy(), [1.0, 1.0])


def test_variable_declared_twice_with_other_shape_is_refused(ge):
    with GeSession() as s:
        s.add_graph(1, counter_graph(shape=(2,)))
        s.add_graph(2, counter_graph(shape=(3,)))
        s.run_graph(1, [np.ones(2, np.float32)])
        with pytest.raises(GeError, match="must agree on its type and shape"):
            s.run_graph(2, [np.ones(3, np.float32)])


def test_compile_graph_with_inputs_fixes_unknown_dims(ge):
    g = Graph("dyn")
    x = g.add_node(
        "Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(DataType.DT_FLOAT, (-1, 3))]
    )
    y = g.add_node("Identity", [x.output(0)], name="y")
    g.set_outputs([y.output(0)])
    with GeSession() as s:
        s.add_graph(1, g)
        assert s.is_graph_need_rebuild(1)
        s.compile_graph(1, [TensorDesc(DataType.DT_FLOAT, (4, 3))])
        assert not s.is_graph_need_rebuild(1)
        assert s.get_compiled_graph_summary(1).output_shapes == [[4, 3]]
        # run_graph with another batch recompiles for that shape.
        out = s.run_graph(1, [np.ones((5, 3), np.float32)])
        assert out[0].shape == (5, 3)
        with pytest.raises(GeError, match=r"declared shape \[-1, 3\]"):
            s.compile_graph(1, [TensorDesc(DataType.DT_FLOAT, (4, 4))])


def test_graph_with_dynamic_dims_runs_at_each_shape(ge):
    g = Graph("dyn")
    x = g.add_node(
        "Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(DataType.DT_FLOAT, (-1, 3))]
    )
    g.set_outputs([g.add_node("Relu", [x.output(0)]).output(0)])
    with GeSession() as s:
        s.add_graph(1, g)
        for n in (1, 5, 2):
            value = np.linspace(-1, 1, n * 3, dtype=np.float32).reshape(n, 3)
            (y,) = s.run_graph(1, [value])
            np.testing.assert_array_equal(y.numpy(), np.maximum(value, 0))


def test_graph_with_variables_and_dynamic_dims_is_compiled_per_shape(ge):
    g = Graph("dyn_var")
    x = g.add_node(
        "Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(DataType.DT_FLOAT, (-1,))]
    )
    v = g.add_node("Variable", name="scale", attrs={"value": Tensor(np.float32(2))})
    g.set_outputs([g.add_node("Mul", [x.output(0), v.output(0)]).output(0)])
    with GeSession() as s:
        s.add_graph(1, g)
        for n in (3, 5):
            (y,) = s.run_graph(1, [np.ones(n, np.float32)])
            np.testing.assert_array_equal(y.numpy(), np.full(n, 2, np.float32))
