"""openge.es: GraphBuilder, TensorHolder, scopes and the generated op functions.

Add/Sub/Mul/RealDiv/Neg/Relu come from ``openge.ops.elementwise``; while that family is not
registered yet, the fixture ``elementwise`` puts minimal stand-ins for exactly the missing ones
into the registry for the duration of a test (the real ops are used as soon as they exist).
"""

from __future__ import annotations

import inspect
import runpy
from pathlib import Path

import numpy as np
import pytest

import openge.es.all as es_all
from openge.errors import GeError
from openge.es import (
    DataType,
    Format,
    GraphBuilder,
    TensorHolder,
    attr_scope,
    control_dependency_scope,
)
from openge.es.all import (
    AssignAdd,
    ConcatV2,
    Const,
    Identity,
    MatMulV2,
    SplitV,
    TopKV2,
    TransData,
    Variable,
)
from openge.graph import Graph, Tensor, TensorDesc
from openge.ops import (
    REQUIRED,
    Input,
    OpSchema,
    Output,
    Trait,
    all_schemas,
    evaluate,
    get_schema,
    has_op,
    registry,
)
from openge.ops.common import broadcast_shapes, same_dtype

# ----- stand-ins for elementwise ops not registered yet ------------------------------------------


def _binary(op_type: str, fn) -> OpSchema:
    def infer(ctx):
        dtype = same_dtype(ctx, [0, 1])
        shape = broadcast_shapes(ctx, [ctx.input(0).shape, ctx.input(1).shape])
        return [TensorDesc(dtype, shape)]

    def kernel(inputs, outputs):
        np.copyto(outputs[0], fn(inputs[0], inputs[1]), casting="unsafe")

    return OpSchema(
        op_type,
        (Input("x1"), Input("x2")),
        (Output("y"),),
        (),
        infer,
        kernel,
        doc=f"test stand-in for {op_type}",
    )


def _unary(op_type: str, fn) -> OpSchema:
    def infer(ctx):
        return [TensorDesc(ctx.input(0).dtype, ctx.input(0).shape)]

    def kernel(inputs, outputs):
        np.copyto(outputs[0], fn(inputs[0]), casting="unsafe")

    return OpSchema(
        op_type,
        (Input("x"),),
        (Output("y"),),
        (),
        infer,
        kernel,
        doc=f"test stand-in for {op_type}",
    )


STAND_INS = {
    "Add": lambda: _binary("Add", np.add),
    "Sub": lambda: _binary("Sub", np.subtract),
    "Mul": lambda: _binary("Mul", np.multiply),
    "RealDiv": lambda: _binary("RealDiv", np.divide),
    "Neg": lambda: _unary("Neg", np.negative),
    "Relu": lambda: _unary("Relu", lambda x: np.maximum(x, 0)),
}


@pytest.fixture
def elementwise(monkeypatch):
    """Make sure Add/Sub/Mul/RealDiv/Neg/Relu exist (stand-ins only for the missing ones)."""
    missing = [name for name in STAND_INS if not has_op(name)]
    for name in missing:
        monkeypatch.setitem(registry._REGISTRY, name, STAND_INS[name]())
    return missing


# ----- a tiny reference interpreter for built graphs ----------------------------------------------


def run_graph(graph: Graph, feeds: list[np.ndarray]) -> list[np.ndarray]:
    """Evaluate ``graph`` node by node with each op's kernel (Variables start at their value)."""
    values: dict = {}
    for node in graph.topological_order():
        if node.op_type == "Data":
            out = [np.asarray(feeds[node.attrs["index"]])]
        elif node.op_type == "Const":
            out = [node.attrs["value"].numpy()]
        elif node.op_type == "Variable":
            value = node.attrs.get("value")
            d = node.output_descs[0]
            out = [
                value.numpy().copy() if value is not None else np.zeros(d.shape, d.dtype.np_dtype)
            ]
        else:
            schema = get_schema(node.op_type)
            args = [None if p is None else values[p] for p in node.inputs]
            out = evaluate(schema, node.attrs, args, node.output_descs)
            if schema.has(Trait.REF_OUTPUT):
                out = [args[0]]
        for i, v in enumerate(out):
            values[node.output(i)] = v
    return [values[p] for p in graph.outputs]


# ----- inputs ----------------------------------------------------------------------------------


def test_create_input_defaults_and_options() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0)
    assert isinstance(x, TensorHolder)
    assert x.name == "input_0" and x.node.op_type == "Data" and x.node.attrs["index"] == 0
    assert x.get_shape() == [] and x.get_data_type() == DataType.DT_FLOAT
    assert x.get_format() == Format.FORMAT_ND
    y = b.create_input(
        1, name="img", data_type=DataType.DT_FLOAT16, format=Format.FORMAT_NCHW, shape=[1, 3, -1, 8]
    )
    assert y.name == "img" and y.get_shape() == [1, 3, -1, 8]
    assert y.get_data_type() == DataType.DT_FLOAT16 and y.get_format() == Format.FORMAT_NCHW
    assert y.port == (y.node, 0) and y.index == 0 and y.get_owner_builder() is b


def test_create_inputs() -> None:
    b = GraphBuilder()
    b.create_input(0)
    xs = b.create_inputs(3, start_index=1)
    assert [x.node.attrs["index"] for x in xs] == [1, 2, 3]
    assert [x.name for x in xs] == ["input_1", "input_2", "input_3"]
    assert b.name == "graph"
    with pytest.raises(TypeError):
        b.create_inputs(0)


def test_bad_inputs() -> None:
    b = GraphBuilder("g")
    b.create_input(0)
    with pytest.raises(GeError, match="index 0 is already used by input_0"):
        b.create_input(0, name="again")
    with pytest.raises(GeError, match="must be ≥ 0"):
        b.create_input(-1)
    with pytest.raises(TypeError):
        b.create_input(1, shape=[2, "3"])  # type: ignore[list-item]
    with pytest.raises(GeError, match="already has a node named 'input_0'"):
        b.create_input(1, name="input_0")
    assert len(b.graph) == 1
    with pytest.raises(TypeError):
        TensorHolder()


# ----- constants -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "dtype"),
    [
        ("create_const_float", np.float32),
        ("create_const_int32", np.int32),
        ("create_const_int64", np.int64),
        ("create_const_uint32", np.uint32),
        ("create_const_uint64", np.uint64),
    ],
)
def test_create_const(method: str, dtype: type) -> None:
    b = GraphBuilder("g")
    create = getattr(b, method)
    scalar = create(7)
    assert scalar.node.op_type == "Const"
    value = scalar.node.attrs["value"]
    assert isinstance(value, Tensor) and value.numpy().dtype == dtype
    assert value.numpy().shape == () and value.numpy() == 7
    vec = create([1, 2, 3])
    assert vec.get_shape() == [3]
    mat = create([1, 2, 3, 4, 5, 6], shape=[2, 3])
    np.testing.assert_array_equal(
        mat.node.attrs["value"].numpy(), np.arange(1, 7, dtype=dtype).reshape(2, 3)
    )
    assert mat.get_shape() == [2, 3] and mat.get_data_type().np_dtype == dtype
    with pytest.raises(GeError, match=r"do not fill shape \[4\]"):
        create([1, 2, 3], shape=[4])


def test_const_value_checks() -> None:
    b = GraphBuilder("g")
    with pytest.raises(TypeError):
        b.create_const_int32(1.5)
    with pytest.raises(TypeError):
        b.create_const_float("1")
    with pytest.raises(GeError, match="do not fit int32"):
        b.create_const_int32(2**31)
    with pytest.raises(GeError, match="do not fit uint32"):
        b.create_scalar_uint32(-1)
    with pytest.raises(GeError, match="same length"):
        b.create_const_float([[1.0], [2.0, 3.0]])
    f = b.create_const_float([[1, 2], [3, 4]])  # nested lists give their shape
    assert f.get_shape() == [2, 2] and f.get_data_type() == DataType.DT_FLOAT


def test_vector_and_scalars() -> None:
    b = GraphBuilder("g")
    v = b.create_vector_int64([4, 5, 6])
    assert v.get_shape() == [3] and v.get_data_type() == DataType.DT_INT64
    for method, dt in [
        ("create_scalar_float", DataType.DT_FLOAT),
        ("create_scalar_int32", DataType.DT_INT32),
        ("create_scalar_int64", DataType.DT_INT64),
        ("create_scalar_uint32", DataType.DT_UINT32),
        ("create_scalar_uint64", DataType.DT_UINT64),
    ]:
        s = getattr(b, method)(3)
        assert s.get_shape() == [] and s.get_data_type() == dt
    with pytest.raises(TypeError):
        b.create_scalar_float([1.0])
    with pytest.raises(TypeError):
        b.create_vector_int64(3)  # type: ignore[arg-type]


# ----- variables -------------------------------------------------------------------------------


def test_create_variable_with_initial_value() -> None:
    b = GraphBuilder("g")
    init = np.arange(6, dtype=np.float16).reshape(2, 3)
    v = b.create_variable(0, "weights", initial_value=init)
    assert v.node.op_type == "Variable" and v.name == "weights"
    value = v.node.attrs["value"]
    assert isinstance(value, Tensor)
    np.testing.assert_array_equal(value.numpy(), init)
    assert value.numpy() is not init  # the builder keeps its own copy
    assert v.get_shape() == [2, 3] and v.get_data_type() == DataType.DT_FLOAT16
    with pytest.raises(GeError, match="already has a node named 'weights'"):
        b.create_variable(1, "weights", initial_value=init)
    with pytest.raises(GeError, match="shape"):
        b.create_variable(1, "w2", initial_value=init, shape=[3, 2])


def test_create_variable_without_initial_value() -> None:
    b = GraphBuilder("g")
    v = b.create_variable(0, "step")
    assert v.get_shape() == [] and v.get_data_type() == DataType.DT_FLOAT
    assert "value" not in v.node.attrs or v.node.attrs["value"] is None
    v.set_shape([4]).set_data_type(DataType.DT_INT32)
    assert v.get_shape() == [4] and v.get_data_type() == DataType.DT_INT32
    w = b.create_variable(1, "w", data_type=DataType.DT_INT64, shape=[2])
    assert w.get_data_type() == DataType.DT_INT64 and w.get_shape() == [2]


def test_variable_update_graph_runs() -> None:
    b = GraphBuilder("train_step")
    x = b.create_input(0, shape=[2, 2])
    v = b.create_variable(0, "acc", initial_value=np.ones((2, 2), np.float32))
    out = AssignAdd(v, x)
    graph = b.build_and_reset([out])
    feed = np.array([[1, 2], [3, 4]], np.float32)
    (y,) = run_graph(graph, [feed])
    np.testing.assert_array_equal(y, feed + 1)


# ----- outputs and build_and_reset -------------------------------------------------------------


def test_build_and_reset_with_set_graph_output() -> None:
    b = GraphBuilder("g")
    x0, x1 = b.create_inputs(2)
    i0 = Identity(x0)
    i1 = Identity(x1)
    b.set_graph_output(i1, 1)
    b.set_graph_output(i0, 0)
    graph = b.build_and_reset()
    assert isinstance(graph, Graph) and graph.name == "g"
    assert graph.outputs == [i0.port, i1.port]
    assert len(b.graph) == 0 and b.graph is not graph  # the builder is empty again
    # holders of the built graph are refused
    with pytest.raises(GeError, match="build_and_reset already returned"):
        Identity(x0)
    with pytest.raises(GeError, match="already returned"):
        b.set_graph_output(i0, 0)
    # the builder makes the next graph with the same names, independently
    y = b.create_input(0)
    g2 = b.build_and_reset([y])
    assert g2.node("input_0") is not graph.node("input_0")
    assert [p.node.name for p in g2.outputs] == ["input_0"]


def test_build_outputs_argument_wins() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0)
    ident = Identity(x)
    b.set_graph_output(x, 0)
    graph = b.build_and_reset([ident, x])
    assert graph.outputs == [ident.port, x.port]


def test_build_errors() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0)
    b.set_graph_output(x, 1)
    with pytest.raises(GeError, match=r"indexes \[1\]"):
        b.build_and_reset()
    b2 = GraphBuilder("empty")
    b2.create_input(0)
    with pytest.raises(GeError, match="no outputs"):
        b2.build_and_reset()
    b3 = GraphBuilder("gap")
    y = b3.create_input(1)
    with pytest.raises(GeError, match="Data node indexes"):
        b3.build_and_reset([y])
    with pytest.raises(TypeError):
        b3.build_and_reset(y)  # type: ignore[arg-type]


def test_mixing_builders_is_refused(elementwise) -> None:
    a, b = GraphBuilder("a"), GraphBuilder("b")
    xa, xb = a.create_input(0), b.create_input(0)
    with pytest.raises(GeError, match="belongs to GraphBuilder 'a', not 'b'"):
        _ = xb + xa
    with pytest.raises(GeError, match="different builders"):
        b.set_graph_output(xa, 0)


# ----- scopes ----------------------------------------------------------------------------------


def test_attr_scope(elementwise) -> None:
    b = GraphBuilder("g")
    outside = b.create_input(0, shape=[2])
    with attr_scope({"_stage": "pre", "_level": 1}):
        x = b.create_input(1, shape=[2])
        with attr_scope({"_level": 2, "_inner": True}):
            y = x + 1.0  # the Const made for 1.0 is in the scope too
        z = Identity(y)
    after = Identity(z)
    assert x.node.attrs["_stage"] == "pre" and x.node.attrs["_level"] == 1
    const = y.node.inputs[1].node
    for node in (y.node, const):
        assert node.attrs["_stage"] == "pre" and node.attrs["_level"] == 2
        assert node.attrs["_inner"] is True
    assert z.node.attrs["_level"] == 1 and "_inner" not in z.node.attrs
    assert not any(k.startswith("_") for k in outside.node.attrs)
    assert not any(k.startswith("_") for k in after.node.attrs)


def test_attr_scope_rejects_unknown_public_attr_and_restores() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0)
    with (
        pytest.raises(GeError, match=r"node Identity \(Identity\).*no attr 'color'"),
        attr_scope({"color": "red"}),
    ):
        Identity(x)
    assert len(b.graph) == 1
    assert "color" not in Identity(x).node.attrs  # the scope ended with the exception
    with pytest.raises(TypeError), attr_scope(["_a"]):  # type: ignore[arg-type]
        pass


def test_control_dependency_scope() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0, shape=[2])
    v = b.create_variable(0, "v", initial_value=np.zeros(2, np.float32))
    update = AssignAdd(v, x)
    with control_dependency_scope([update]):
        a = Identity(v)
        with control_dependency_scope([x]):
            c = Identity(a)
        d = Identity(a)
    e = Identity(d)
    assert a.node.control_inputs == (update.node,)
    assert set(c.node.control_inputs) == {update.node, x.node}
    assert d.node.control_inputs == (update.node,)
    assert e.node.control_inputs == ()
    graph = b.build_and_reset([e])
    assert "^AssignAdd" in graph.dump()
    order = [n.name for n in graph.topological_order()]
    assert order.index("AssignAdd") < order.index(a.name)


def test_add_control_dependency_and_node_attrs() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0)
    y = Identity(x)
    z = Identity(x)
    b.add_control_dependency(z, [y])
    assert z.node.control_inputs == (y.node,)
    with pytest.raises(GeError, match="itself"):
        b.add_control_dependency(z, [z])
    b.set_node_attr_string(y, "_note", "hi")
    assert y.node.attrs["_note"] == "hi"
    with pytest.raises(GeError, match="no attr 'note'"):
        b.set_node_attr_string(y, "note", "hi")
    b.set_graph_attr_int64("_version", 3)
    assert b.graph.attrs["_version"] == 3


# ----- inference at construction -----------------------------------------------------------------


def test_mistakes_surface_at_construction_naming_the_node() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0, shape=[2, 3, 4], format=Format.FORMAT_NCHW)
    before = len(b.graph)
    with pytest.raises(GeError, match=r"node TransData \(TransData\).*rank 4"):
        TransData(x, src_format="NCHW", dst_format="NC1HWC0")
    with pytest.raises(GeError, match=r"node TransData \(TransData\).*not supported"):
        TransData(x, src_format="NCHW", dst_format="HWCN")
    with pytest.raises(GeError, match=r"node TransData \(TransData\).*groups"):
        TransData(x, src_format="NCHW", dst_format="NHWC", groups="2")
    assert len(b.graph) == before  # failed nodes are not left behind
    v = b.create_variable(0, "v", initial_value=np.zeros((2, 2), np.float32))
    with pytest.raises(GeError, match=r"node AssignAdd \(AssignAdd\)"):
        AssignAdd(v, x)
    with pytest.raises(TypeError):
        TransData(x)  # required attrs are keyword-only without default


def test_set_shape_data_type_format() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0)
    assert x.set_shape([2, 3, 4, 5]) is x
    x.set_data_type(DataType.DT_FLOAT16).set_format(Format.FORMAT_NCHW)
    assert x.desc == TensorDesc(DataType.DT_FLOAT16, (2, 3, 4, 5), Format.FORMAT_NCHW)
    assert x.desc.origin_format == Format.FORMAT_NCHW
    t = TransData(x, src_format="NCHW", dst_format="NC1HWC0")  # sees the new desc
    assert t.get_shape() == [2, 1, 4, 5, 16] and t.get_format() == Format.FORMAT_NC1HWC0
    assert t.get_data_type() == DataType.DT_FLOAT16
    with pytest.raises(TypeError):
        x.set_shape("2,3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        x.set_data_type(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        x.set_format("NCHW")  # type: ignore[arg-type]
    with pytest.raises(GeError, match="dims must be"):
        x.set_shape([-3])


def test_transdata_round_trip_graph_runs() -> None:
    b = GraphBuilder("layout")
    x = b.create_input(0, shape=[2, 17, 3, 3], format=Format.FORMAT_NCHW)
    five_hd = TransData(x, src_format="NCHW", dst_format="NC1HWC0")
    back = TransData(five_hd, src_format="NC1HWC0", dst_format="NHWC")
    assert back.get_shape() == [2, 3, 3, 17]  # C taken from the 5HD tensor's origin shape
    nz = TransData(
        b.create_const_float(np.arange(40.0).tolist(), shape=[5, 8]),
        src_format="ND",
        dst_format="FRACTAL_NZ",
    )
    graph = b.build_and_reset([five_hd, back, nz])
    feed = np.random.default_rng(1).random((2, 17, 3, 3)).astype(np.float32)
    y5, yh, ynz = run_graph(graph, [feed])
    assert y5.shape == (2, 2, 3, 3, 16)
    np.testing.assert_array_equal(y5[:, 0, :, :, 3], feed[:, 3])
    np.testing.assert_array_equal(y5[:, 1, :, :, 0], feed[:, 16])
    assert not y5[:, 1, :, :, 1:].any()
    np.testing.assert_array_equal(yh, feed.transpose(0, 2, 3, 1))
    assert ynz.shape == (1, 1, 16, 16)
    np.testing.assert_array_equal(ynz[0, 0, :5, :8], np.arange(40.0).reshape(5, 8))


# ----- generated op functions --------------------------------------------------------------------


def test_every_registered_op_has_a_function() -> None:
    names = es_all.__all__
    for schema in all_schemas():
        if schema.has(Trait.SINK):
            assert schema.op_type not in names
            continue
        fn = getattr(es_all, schema.op_type)
        assert fn.__name__ == schema.op_type and schema.op_type in names
        assert schema.doc.split(";")[0][:40] in fn.__doc__
        params = list(inspect.signature(fn).parameters.values())
        positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
        keyword = {p.name: p for p in params if p.kind == p.KEYWORD_ONLY}
        if not schema.inputs:
            assert [p.name for p in positional] == ["owner_builder"]
        else:
            assert len(positional) == len(schema.inputs)
            assert "owner_builder" in keyword
        for attr in schema.attrs:
            spec = next(p for k, p in keyword.items() if k.rstrip("_") == attr.name)
            if attr.name == "N" and any(i.dynamic for i in schema.inputs):
                assert spec.default is None
            elif attr.default is REQUIRED:
                assert spec.default is inspect.Parameter.empty
            else:
                assert spec.default == attr.default


def test_signatures_follow_the_catalog() -> None:
    sig = inspect.signature(TransData)
    assert str(sig) == (
        "(src, *, src_format, dst_format, src_subformat=0, dst_subformat=0, groups=1, "
        "owner_builder=None)"
    )
    assert str(inspect.signature(Const)) == "(owner_builder, *, value)"
    conv = inspect.signature(es_all.Conv2D).parameters
    assert list(conv)[:3] == ["x", "filter", "bias"] and conv["bias"].default is None
    assert conv["strides"].kind == inspect.Parameter.KEYWORD_ONLY
    assert conv["strides"].default is inspect.Parameter.empty
    assert "TransData" in TransData.__doc__ and "FRACTAL_NZ" in TransData.__doc__


def test_source_ops_take_the_builder() -> None:
    b = GraphBuilder("g")
    c = Const(b, value=Tensor([1.0, 2.0], None, DataType.DT_FLOAT, Format.FORMAT_ND, [2]))
    assert c.get_shape() == [2] and c.node.op_type == "Const"
    v = Variable(b, value=np.ones(3, np.int32))
    assert v.get_data_type() == DataType.DT_INT32
    with pytest.raises(GeError, match="no input is a TensorHolder"):
        Identity(1.0)
    s = Identity(1.5, owner_builder=b)  # TensorLike input with an explicit builder
    assert s.node.inputs[0].node.attrs["value"].numpy().dtype == np.float32


def test_tensor_like_inputs_follow_cann_rule() -> None:
    b = GraphBuilder("g")
    xs = [b.create_input(i, shape=[2, 3]) for i in range(3)]
    cat = ConcatV2(xs, 0)
    assert cat.get_shape() == [6, 3]
    assert cat.node.attrs["N"] == 3  # defaults to the list length
    dim = cat.node.inputs[3].node.attrs["value"].numpy()
    assert dim.dtype == np.int64 and dim.shape == ()
    assert ConcatV2(xs[:2], 1, N=2).get_shape() == [2, 6]
    with pytest.raises(TypeError, match="dynamic"):
        ConcatV2(xs[0], 0)


def test_multi_output_is_a_named_tuple() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0, shape=[4, 10])
    top = TopKV2(x, b.create_scalar_int32(3))
    assert isinstance(top, tuple) and top._fields == ("values", "indices")
    assert top.values.get_shape() == [4, 3] and top.indices.index == 1
    assert top.values.node is top.indices.node
    assert top.indices.get_data_type() == DataType.DT_INT32
    graph = b.build_and_reset([top.values, top.indices])
    feed = np.random.default_rng(2).random((4, 10)).astype(np.float32)
    values, indices = run_graph(graph, [feed])
    np.testing.assert_array_equal(values, -np.sort(-feed, axis=1)[:, :3])
    np.testing.assert_array_equal(np.take_along_axis(feed, indices, 1), values)


def test_dynamic_output_is_a_list() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0, shape=[7, 2])
    parts = SplitV(x, b.create_vector_int64([2, 5]), b.create_scalar_int32(0), num_split=2)
    assert isinstance(parts, list) and [p.get_shape() for p in parts] == [[2, 2], [5, 2]]
    assert [p.index for p in parts] == [0, 1]


def test_ops_registered_later_appear(monkeypatch) -> None:
    def infer(ctx):
        return [ctx.input(0)]

    def kernel(inputs, outputs, *, scale):
        np.multiply(inputs[0], scale, out=outputs[0])

    from openge.ops import Attr, AttrType

    schema = OpSchema(
        "TestOnlyScale",
        (Input("x"),),
        (Output("y"),),
        (Attr("scale", AttrType.FLOAT, 2.0),),
        infer,
        kernel,
        doc="y = x * scale (test only)",
    )
    assert "TestOnlyScale" not in es_all.__all__
    monkeypatch.setitem(registry._REGISTRY, "TestOnlyScale", schema)
    assert "TestOnlyScale" in es_all.__all__ and "TestOnlyScale" in dir(es_all)
    fn = es_all.TestOnlyScale
    assert str(inspect.signature(fn)) == "(x, *, scale=2.0, owner_builder=None)"
    b = GraphBuilder("g")
    y = fn(b.create_input(0, shape=[3]), scale=3.0)
    (out,) = run_graph(b.build_and_reset([y]), [np.ones(3, np.float32)])
    np.testing.assert_array_equal(out, [3, 3, 3])
    assert "TestOnlyScale" in es_all.refresh()
    assert es_all.TestOnlyScale is fn  # bound in the module now (the same cached function)
    namespace: dict = {}
    exec("from openge.es.all import *", namespace)  # checks the star import
    assert "TestOnlyScale" in namespace and "TransData" in namespace
    with pytest.raises(AttributeError):
        es_all.NoSuchOpType  # noqa: B018
    monkeypatch.delitem(registry._REGISTRY, "TestOnlyScale")
    assert "TestOnlyScale" not in es_all.refresh()
    with pytest.raises(AttributeError):
        es_all.TestOnlyScale  # noqa: B018


# ----- operators -------------------------------------------------------------------------------


def test_arithmetic_operators(elementwise) -> None:
    b = GraphBuilder("g")
    x = b.create_input(0, shape=[2, 3])
    y = b.create_input(1, shape=[3])
    cases = {"Add": x + y, "Sub": x - y, "Mul": x * y, "RealDiv": x / y}
    for op_type, h in cases.items():
        assert h.node.op_type == op_type
        assert [p.node.name for p in h.node.inputs] == ["input_0", "input_1"]
        assert h.get_shape() == [2, 3]
    n = -x
    assert n.node.op_type == "Neg" and n.get_shape() == [2, 3]
    graph = b.build_and_reset([*cases.values(), n])
    xv = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    yv = np.array([1, 2, 4], np.float32)
    outs = run_graph(graph, [xv, yv])
    for out, ref in zip(outs, [xv + yv, xv - yv, xv * yv, xv / yv, -xv], strict=True):
        np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_scalars_take_the_other_operands_dtype(elementwise) -> None:
    b = GraphBuilder("g")
    h = b.create_input(0, data_type=DataType.DT_FLOAT16, shape=[2])
    i = b.create_input(1, data_type=DataType.DT_INT32, shape=[2])
    s = h + 2
    const = s.node.inputs[1].node.attrs["value"].numpy()
    assert const.dtype == np.float16 and const == 2 and s.get_data_type() == DataType.DT_FLOAT16
    r = 1 - h  # reflected: Sub(Const, h)
    assert r.node.op_type == "Sub" and r.node.inputs[1].node is h.node
    assert r.node.inputs[0].node.attrs["value"].numpy().dtype == np.float16
    m = np.float32(3) * i  # NumPy scalars defer to TensorHolder
    assert m.node.op_type == "Mul" and m.get_data_type() == DataType.DT_INT32
    assert m.node.inputs[0].node.attrs["value"].numpy().dtype == np.int32
    d = 2.0 / h
    assert d.node.op_type == "RealDiv" and d.node.inputs[1].node is h.node
    with pytest.raises(GeError, match="cannot be represented"):
        _ = i * 0.5
    with pytest.raises(GeError, match="cannot be represented"):
        _ = i + 2**40
    with pytest.raises(TypeError):
        _ = h + "1"
    lst = h + [1, 2]  # noqa: RUF005 - a TensorHolder, not a list
    assert lst.node.inputs[1].node.attrs["value"].numpy().dtype == np.float16


def test_matmul_operator_picks_matmul_v2_or_batch() -> None:
    b = GraphBuilder("g")
    a = b.create_input(0, shape=[2, 3])
    w = b.create_input(1, shape=[3, 4])
    batch = b.create_input(2, shape=[5, 2, 3])
    mm = a @ w
    assert mm.node.op_type == "MatMulV2" and mm.get_shape() == [2, 4]
    bmm = batch @ w
    assert bmm.node.op_type == "BatchMatMulV2" and bmm.get_shape() == [5, 2, 4]
    assert MatMulV2(a, w, transpose_x2=False).get_shape() == [2, 4]
    with pytest.raises(GeError, match=r"node MatMulV2_\d+ \(MatMulV2\)"):
        _ = w @ a
    graph = b.build_and_reset([mm, bmm])
    rng = np.random.default_rng(3)
    av, wv, bv = (rng.random(s).astype(np.float32) for s in [(2, 3), (3, 4), (5, 2, 3)])
    out_mm, out_bmm = run_graph(graph, [av, wv, bv])
    np.testing.assert_allclose(out_mm, av @ wv, rtol=1e-5)
    np.testing.assert_allclose(out_bmm, bv @ wv, rtol=1e-5)


def test_values_known_at_build_time_feed_inference() -> None:
    b = GraphBuilder("g")
    x = b.create_input(0, shape=[2, 3, 4])
    target = b.create_input(1, shape=[6, 4])
    r = es_all.Reshape(x, es_all.Shape(target))  # Shape of a static input is known
    assert r.get_shape() == [6, 4]


# ----- the CANN sample script --------------------------------------------------------------------


def test_cann_sample_script_runs(elementwise, capsys) -> None:
    script = Path(__file__).with_name("cann_example_concat_relu.py")
    namespace = runpy.run_path(str(script), run_name="__main__")
    graph = namespace["graph"]
    assert isinstance(graph, Graph) and graph.name == "MakeConcatV2FedtoReluGraph"
    assert [n.name for n in graph.inputs] == ["tensor1", "tensor2", "tensor3"]
    (out,) = graph.outputs
    assert out.node.op_type == "Relu" and out.desc.shape == (16, 64, 128)
    concat = out.node.inputs[0].node
    assert concat.op_type == "ConcatV2" and concat.attrs["N"] == 3
    assert "save to air" in capsys.readouterr().out
    rng = np.random.default_rng(4)
    feeds = [
        rng.standard_normal(s).astype(np.float32)
        for s in [(8, 64, 128), (2, 64, 128), (6, 64, 128)]
    ]
    (y,) = run_graph(graph, feeds)
    np.testing.assert_array_equal(y, np.maximum(np.concatenate(feeds, 0), 0))
