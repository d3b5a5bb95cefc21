"""Graph IR invariants: names, edges, users, ordering, clone, text form, validation."""

from __future__ import annotations

import numpy as np
import pytest

from openge.errors import GeError
from openge.graph import DataType, Format, Graph, Port, Tensor, TensorDesc
from tests.conftest import const, data


def test_unique_names_and_generated_names():
    g = Graph("g")
    a = g.add_node("Identity", name="n")
    with pytest.raises(GeError, match="already has a node named 'n'"):
        g.add_node("Identity", name="n")
    b = g.add_node("Identity")
    c = g.add_node("Identity")
    assert len({a.name, b.name, c.name}) == 3


def test_users_track_inputs_and_replace_all_uses():
    g = Graph("g")
    x = data(g, 0, [2])
    y = g.add_node("Identity", [x.output(0)], name="y")
    z = g.add_node("Identity", [x.output(0)], name="z")
    g.set_outputs([x.output(0), y.output(0)])
    assert sorted(n.name for n, _ in x.users(0)) == ["y", "z"]
    w = g.add_node("Identity", [y.output(0)], name="w")
    g.replace_all_uses(x.output(0), w.output(0))
    # y now reads w which reads y: a cycle the validator must report.
    with pytest.raises(GeError, match="cycle"):
        g.validate()
    assert g.outputs[0] == Port(w, 0)
    assert z.inputs[0] == Port(w, 0)


def test_remove_node_in_use_fails_and_unused_succeeds():
    g = Graph("g")
    x = data(g, 0, [2])
    y = g.add_node("Identity", [x.output(0)], name="y")
    g.set_outputs([y.output(0)])
    with pytest.raises(GeError, match="still used by graph outputs"):
        g.remove_node(y)
    with pytest.raises(GeError, match="still used by y"):
        g.remove_node(x)
    extra = g.add_node("Identity", [x.output(0)], name="extra")
    g.remove_node(extra)
    assert not g.has_node("extra")
    assert x.users(0) == [(y, 0)]


def test_topological_order_respects_data_and_control_edges():
    g = Graph("g")
    x = data(g, 0, [2])
    late = g.add_node("Identity", [x.output(0)], name="late")
    early = g.add_node("Identity", [x.output(0)], name="early")
    g.add_control_edge(early, late)
    order = [n.name for n in g.topological_order()]
    assert order.index("early") < order.index("late")
    assert order[0] == "x0"


def test_validate_rejects_sparse_data_indexes_and_foreign_ports():
    g = Graph("g")
    data(g, 0, [1])
    data(g, 2, [1])
    with pytest.raises(GeError, match="Data node indexes"):
        g.validate()
    other = Graph("other")
    foreign = data(other, 0, [1])
    with pytest.raises(GeError, match="does not belong"):
        g.add_node("Identity", [foreign.output(0)])


def test_clone_is_deep_and_independent():
    g = Graph("g")
    x = data(g, 0, [2])
    c = const(g, np.ones(2, np.float32), name="c")
    y = g.add_node("AssignAdd", [x.output(0), c.output(0)], name="y")
    g.set_outputs([y.output(0)])
    copy = g.clone("copy")
    assert copy.name == "copy" and [n.name for n in copy] == [n.name for n in g]
    copy.add_node("Identity", [copy.node("y").output(0)], name="more")
    assert not g.has_node("more")
    assert copy.node("y").inputs[0].node is copy.node("x0")
    assert g.dump().replace("graph g", "graph copy") != copy.dump()


def test_dump_is_deterministic_text():
    g = Graph("g")
    x = data(g, 0, [1, 64])
    y = g.add_node("Identity", [x.output(0)], name="y")
    y.output_descs = [TensorDesc(DataType.DT_FLOAT, (1, 64))]
    g.set_outputs([y.output(0)])
    text = g.dump()
    assert "%y:float32[1,64] = Identity(%x0)" in text
    assert text.endswith("return %y\n}")
    assert text == g.clone().dump()


def test_rename_node_keeps_edges():
    g = Graph("g")
    x = data(g, 0, [1])
    y = g.add_node("Identity", [x.output(0)], name="y")
    g.set_outputs([y.output(0)])
    g.rename_node(y, "renamed")
    assert g.node("renamed") is y and not g.has_node("y")
    assert g.outputs[0].node is y
    with pytest.raises(GeError):
        g.rename_node(y, "x0")


def test_tensor_accepts_cann_signature_and_numpy():
    t = Tensor([1, 2, 3, 4], data_type=DataType.DT_FLOAT, format=Format.FORMAT_NCHW, shape=[2, 2])
    assert t.numpy().dtype == np.float32 and t.shape == (2, 2)
    assert t.format == Format.FORMAT_NCHW
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert Tensor(a).numpy() is a
    desc = TensorDesc(DataType.DT_INT32, (3,))
    assert Tensor(np.zeros(3, np.int32), tensor_desc=desc).dtype == DataType.DT_INT32
    with pytest.raises(GeError, match="needs 4"):
        Tensor([1, 2, 3], data_type=DataType.DT_FLOAT, shape=[2, 2])
    raw = np.arange(4, dtype=np.float32).tobytes()
    assert Tensor(raw, data_type=DataType.DT_FLOAT, shape=[4]).numpy()[3] == 3.0


def test_tensor_desc_validates():
    with pytest.raises(GeError):
        TensorDesc(DataType.DT_FLOAT, (2, -3))
    d = TensorDesc(DataType.DT_FLOAT16, (2, -1), Format.FORMAT_NCHW)
    assert not d.is_static and d.numel == -1 and d.origin_format == Format.FORMAT_NCHW
    assert TensorDesc(DataType.DT_INT64, (2, 3)).size_bytes == 48


def test_enum_values_match_ge():
    assert DataType.DT_FLOAT == 0 and DataType.DT_FLOAT16 == 1 and DataType.DT_INT64 == 9
    assert DataType.DT_BOOL == 12 and DataType.DT_BF16 == 27 and DataType.DT_COMPLEX128 == 17
    assert Format.FORMAT_NCHW == 0 and Format.FORMAT_NC1HWC0 == 3 and Format.FORMAT_NDHWC == 27
    assert Format.FORMAT_FRACTAL_NZ == 29 and Format.FORMAT_NCDHW == 30
