"""The .om container: round trip, byte layout, ModelDef content, robustness on bad input."""

from __future__ import annotations

import gc
import hashlib
import mmap
import random
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openge.errors import MODEL_DATA_SIZE_INVALID, PARAM_INVALID, GeError
from openge.graph import DataType, Graph, Tensor, TensorDesc
from openge.om import container as ct
from openge.om import ge_ir_pb2 as pb
from openge.om import task_pb2 as tp
from openge.om.plan import CompiledModel, Slot, SlotKind, Task
from openge.om.reader import deserialize, read_info, read_model_def
from openge.om.writer import serialize
from openge.version import PRODUCER
from tests.om.om_models import F32, build_model

# ----- helpers ------------------------------------------------------------------------------


def assert_value_equal(a, b, where="value"):
    """Deep equality for attr values (Tensors and arrays by dtype, shape and content)."""
    if isinstance(a, (Tensor, np.ndarray)):
        assert type(a) is type(b), where
        if isinstance(a, Tensor):
            assert a.desc == b.desc, where
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where)
        assert np.asarray(a).dtype == np.asarray(b).dtype, where
    elif isinstance(a, Graph):
        assert_graph_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where  # ModelDef maps: sorted
        for k in a:
            assert_value_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{where}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_value_equal(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} vs {b!r}"


def assert_graph_equal(a: Graph, b: Graph):
    assert a.dump() == b.dump()
    assert_value_equal(a.attrs, b.attrs, "graph attrs")
    assert [p for p in map(repr, a.outputs)] == [p for p in map(repr, b.outputs)]
    for node in a.nodes:
        other = b.node(node.name)
        assert other.op_type == node.op_type
        assert [repr(p) for p in node.inputs] == [repr(p) for p in other.inputs]
        assert [c.name for c in node.control_inputs] == [c.name for c in other.control_inputs]
        assert node.output_descs == other.output_descs
        assert [d.origin_shape for d in node.output_descs] == [
            d.origin_shape for d in other.output_descs
        ]
        assert_value_equal(node.attrs, other.attrs, f"node {node.name} attrs")


def assert_tasks_equal(a: list[Task], b: list[Task]):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.name, x.op_type, x.inputs, x.outputs) == (y.name, y.op_type, y.inputs, y.outputs)
        assert list(x.attrs) == list(y.attrs)  # the task list keeps attr order
        assert_value_equal(x.attrs, y.attrs, f"task {x.name} attrs")


def partition_table(data: bytes) -> list[tuple[int, int, int]]:
    (count,) = struct.unpack_from("<I", data, 256)
    return [struct.unpack_from("<I4xQQ", data, 264 + 24 * i) for i in range(count)]


def payload(data: bytes, ptype: int) -> bytes:
    table = partition_table(data)
    base = 264 + 24 * len(table)
    for t, off, size in table:
        if t == ptype:
            return data[base + off : base + off + size]
    raise AssertionError(f"no partition {ptype}")


def rechecksum(buf: bytearray) -> bytearray:
    """Recompute the header checksum (to test the checks behind it)."""
    buf[12:44] = hashlib.sha256(bytes(buf[256:])).digest()
    return buf


# ----- round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("online", [True, False])
def test_round_trip_every_field(model: CompiledModel, online: bool):
    data = serialize(model, online=online)
    back = deserialize(data)
    assert back.name == model.name
    assert_graph_equal(model.graph, back.graph)
    assert_tasks_equal(model.tasks, back.tasks)
    assert back.inputs == model.inputs
    assert back.outputs == model.outputs
    assert back.variables == model.variables
    assert back.external_weights == model.external_weights
    assert back.memory_size == model.memory_size
    assert back.options == model.options
    assert back.producer == model.producer
    assert back.online is online
    assert back.is_dynamic is model.is_dynamic
    # The writer appended c2 (not in const_offsets) after the compiler's blob, 64-aligned.
    assert bytes(back.weights[: len(model.weights)]) == bytes(model.weights)
    expected_stats = dict(model.stats)
    expected_stats["const_offsets"] = {"c": [0, 24], "c2": [256, 12]}
    assert back.stats == expected_stats
    np.testing.assert_array_equal(
        np.frombuffer(back.weights, np.float32, 3, 256),
        model.graph.node("c2").attrs["value"].numpy().ravel(),
    )
    assert isinstance(back.weights, memoryview)
    # Serializing the loaded model gives the same bytes (deterministic writer).
    assert serialize(back, online=online) == data


def test_round_trip_no_copy_from_mmap(model: CompiledModel, tmp_path):
    path = tmp_path / "m.om"
    path.write_bytes(serialize(model, online=False))
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    back = deserialize(mm)
    assert back.weights.obj is mm  # a view of the mapping, not a copy
    const = back.graph.node("c").attrs["value"].numpy()
    np.testing.assert_array_equal(const, model.graph.node("c").attrs["value"].numpy())
    assert not const.flags.writeable
    info = read_info(mm)
    assert info.weight_size == back.weights.nbytes
    del back, const
    gc.collect()  # Graph nodes point back at their graph: views are freed by the collector
    mm.close()


def test_graph_is_decoded_and_checked_at_load(model: CompiledModel, monkeypatch):
    """Loading decodes the ModelDef graph once and checks it against the task list (an .om
    whose graph does not decode or disagrees is refused at load, not at save_model:
    docs/security.md)."""
    from openge.om import reader

    data = serialize(model, online=True)
    calls = []
    real = reader.graph_from_proto
    monkeypatch.setattr(reader, "graph_from_proto", lambda *a: calls.append(1) or real(*a))
    back = deserialize(data)
    assert calls == [1]
    assert back.graph is back.graph
    assert calls == [1]
    assert_graph_equal(model.graph, back.graph)


def test_accepts_bytearray_and_memoryview(model: CompiledModel):
    data = serialize(model, online=True)
    for buf in (bytearray(data), memoryview(data), memoryview(bytearray(b"xx" + data))[2:]):
        assert deserialize(buf).name == model.name


def test_empty_weights_and_dynamic_flag():
    m = build_model("dyn")
    for n in [n for n in m.graph.nodes if n.op_type in ("Const", "Variable")]:
        n.attrs.pop("value", None)
    # no constants, no variables: nothing in WEIGHTS_DATA
    m.graph = Graph("g")
    x = m.graph.add_node(
        "Data", name="x", attrs={"index": 0}, output_descs=[TensorDesc(F32, (2, 3))]
    )
    r = m.graph.add_node("Relu", [x.output()], name="r", output_descs=[TensorDesc(F32, (2, 3))])
    m.graph.set_outputs([r.output()])
    m.tasks = [
        Task(
            "r",
            "Relu",
            (Slot(SlotKind.INPUT, 0, F32, (2, 3)),),
            (Slot(SlotKind.OUTPUT, 0, F32, (2, 3)),),
        )
    ]
    m.weights, m.variables, m.external_weights = b"", [], []
    m.outputs = m.outputs[:1]
    m.is_dynamic = True
    m.stats = {}
    data = serialize(m, online=False)
    assert [t for t, _, _ in partition_table(data)] == [8, 0, 2]
    assert data[193] == 1
    back = deserialize(data)
    assert back.is_dynamic and back.weights.nbytes == 0
    assert back.stats == {"const_offsets": {}}


# ----- byte layout --------------------------------------------------------------------------


def test_header_bytes(model: CompiledModel):
    data = serialize(model, online=True)
    assert data[0:4] == b"IMOD"
    assert struct.unpack_from("<III", data, 0) == (0x444F4D49, 256, 0x20000000)
    assert data[12:44] == hashlib.sha256(data[256:]).digest()
    assert data[44:76] == bytes(32)
    assert struct.unpack_from("<I", data, 76)[0] == 0
    assert data[80:84] == bytes([0, 0, 0, 1])  # is_encrypt, is_checksum, modeltype, genmode
    assert data[84:116] == b"round_trip_graph".ljust(32, b"\0")
    assert struct.unpack_from("<I", data, 116)[0] == len(model.tasks)
    assert data[120:152] == bytes(32)
    assert struct.unpack_from("<II", data, 152) == (2, 1)
    assert data[160:180] == PRODUCER.encode().ljust(20, b"\0")
    assert data[180:184] == bytes(4)
    assert struct.unpack_from("<Q", data, 184)[0] == len(data) - 256
    assert data[192:194] == bytes([0, 0])
    assert data[194:256] == bytes(62)
    assert serialize(model, online=False)[83] == 0


def test_header_name_cut_to_31_bytes(model: CompiledModel):
    model.name = "n" * 30 + "é" + "tail"  # the 2-byte é straddles byte 31
    data = serialize(model, online=True)
    assert data[84:116] == (b"n" * 30).ljust(32, b"\0")
    model.name = "a" * 40
    data = serialize(model, online=True)
    assert data[84:116] == b"a" * 31 + b"\0"
    assert deserialize(data).name == "a" * 40  # the full name is kept in the ModelDef


def test_partition_order_and_weight_alignment(model: CompiledModel):
    data = serialize(model, online=True)
    table = partition_table(data)
    assert [t for t, _, _ in table] == [8, 0, 2, 1]
    running = 0
    for _, off, size in table:
        assert off == running
        running += size
    base = 264 + 24 * len(table)
    assert base + running == len(data)
    weights_at = base + table[3][1]
    assert weights_at % 4096 == 0
    task_info = payload(data, 2)
    magic, major, body_len = struct.unpack_from("<IIQ", task_info)
    assert (magic, major) == (0x4B53544F, 1) and task_info[:4] == b"OTSK"
    assert task_info[16 + body_len :] == bytes(len(task_info) - 16 - body_len)
    tl = tp.TaskList.FromString(task_info[16 : 16 + body_len])
    assert [t.op_type for t in tl.tasks] == ["Add", "Add", "Relu", "AssignAdd"]


def test_model_def_decodes_with_generated_module(model: CompiledModel):
    data = serialize(model, online=True)
    md = pb.ModelDef.FromString(payload(data, 0))
    assert md.name == model.name
    graph = md.graph[0]
    ops = {op.name: op for op in graph.op}
    assert [op.type for op in graph.op].count("NetOutput") == 1
    assert ops["x"].type == "Data" and ops["x"].attr["index"].i == 0
    assert ops["x"].output_desc[0].dtype == pb.DT_FLOAT
    assert ops["x"].output_desc[0].layout == "NCHW"
    assert list(ops["x"].output_desc[0].shape.dim) == [2, 3]
    assert ops["add"].type == "Add" and list(ops["add"].input) == ["x:0", "c:0"]
    assert len(ops["add"].input_desc) == 2 and len(ops["add"].output_desc) == 1
    assert list(ops["relu"].input) == ["add2:0", "c2:-1"]
    net = next(op for op in graph.op if op.type == "NetOutput")
    assert list(net.input) == ["relu:0", "upd:0"]
    weights = payload(data, 1)
    for name in ("c", "c2"):
        value = ops[name].attr["value"].t
        assert value.data == b""
        off, size = value.desc.data_offset, value.desc.weight_size
        assert off % 64 == 0 and size == model.graph.node(name).attrs["value"].numpy().nbytes
        assert weights[off : off + size] == model.graph.node(name).attrs["value"].numpy().tobytes()
    assert ops["v"].attr["value"].t.desc.data_offset == 64  # the variable's init bytes
    fc = ops["fc"].attr
    assert fc["location"].s == b"weight_ext" and fc["dtype"].dt == pb.DT_FLOAT
    assert list(fc["shape"].list.i) == [1, 3] and fc["offset"].i == 0
    attrs = md.attr
    assert attrs["memory_size"].i == 1024 and attrs["weight_size"].i == len(weights)
    assert attrs["stream_num"].i == 1 and attrs["event_num"].i == 0
    assert attrs["soc_version"].s == b"openge-cpu"
    assert attrs["openge_producer"].s == b"openge-0.1.0"
    assert attrs["openge_format"].s == b"1.1" and attrs["openge_online"].b is True
    assert attrs["build_options"].func.attr["ge.graphRunMode"].s == b"0"


#: AttrDef kinds Netron's om.js renders; any other one makes it refuse the whole model.
_NETRON_ATTR_KINDS = {None, "i", "f", "b", "bt", "dt", "s", "g", "func", "list", "t"}


def _attr_kinds(graph) -> set:
    kinds = set()
    for op in graph.op:
        for a in op.attr.values():
            kinds.add(a.WhichOneof("value"))
            if a.WhichOneof("value") == "g":
                kinds |= _attr_kinds(a.g)
    return kinds


def test_model_def_is_netron_safe(model: CompiledModel):
    data = serialize(model, online=True)
    md = pb.ModelDef.FromString(payload(data, 0))
    assert _attr_kinds(md.graph[0]) <= _NETRON_ATTR_KINDS
    # Netron first tries the 32-bit table layout; ours must fail it (duplicate type 0) so that
    # it falls back to the 64-bit layout instead of misreading the partitions.
    count = struct.unpack_from("<I", data, 256)[0]
    tiny = [struct.unpack_from("<III", data, 260 + 12 * i) for i in range(count)]
    assert [t for t, _, _ in tiny].count(0) >= 2
    with pytest.raises(GeError, match="TensorDesc"):
        model.graph.node("add").attrs["_desc"] = TensorDesc(F32, (1,))
        serialize(model, online=True)


def test_inout_info_tlv(model: CompiledModel):
    data = serialize(model, online=True)
    info = ct.parse_inout_info(memoryview(payload(data, 8)))
    assert [d.name for d in info.inputs] == ["x"]
    x = info.inputs[0]
    assert (x.size, x.format, x.dtype, x.dims) == (24, 0, int(DataType.DT_FLOAT), (2, 3))
    assert x.dims_v2 == (2, 3) and x.shape_range == ((2, 2), (3, 3))
    assert [d.name for d in info.outputs] == ["relu", "upd"]


def test_read_info(model: CompiledModel):
    data = serialize(model, online=False)
    info = read_info(data)
    assert info.format == (1, 1) and info.producer == "openge-0.1.0"
    assert info.platform_version == PRODUCER and not info.online and not info.foreign
    assert (info.memory_size, info.weight_size) == (1024, 268)
    assert info.num_ops == 4 and info.options == model.options
    assert [p.type_name for p in info.partitions] == [
        "MODEL_INOUT_INFO",
        "MODEL_DEF",
        "TASK_INFO",
        "WEIGHTS_DATA",
    ]
    # read_info does not hash the weights: a damaged weight byte is seen only by deserialize
    bad = bytearray(data)
    bad[-1] ^= 0xFF
    assert read_info(bytes(bad)).weight_size == 268
    with pytest.raises(GeError, match="checksum"):
        deserialize(bytes(bad))


# ----- errors on write ----------------------------------------------------------------------


def test_write_refuses_bad_models(model: CompiledModel):
    model.tasks.append(Task("u", "NoSuchOp", (), ()))
    with pytest.raises(GeError, match="NoSuchOp"):
        serialize(model, online=True)
    model = build_model()
    model.tasks[0] = Task("add", "Add", (Slot(SlotKind.ARENA, 1020, F32, (2, 3)),), ())
    with pytest.raises(GeError, match="outside the work arena"):
        serialize(model, online=True)
    model = build_model()
    model.stats["const_offsets"] = {"c": [8, 24]}
    with pytest.raises(GeError, match="multiple of 64"):
        serialize(model, online=True)
    model = build_model()
    model.tasks[0].attrs["bad"] = object()
    with pytest.raises(GeError, match="cannot be stored"):
        serialize(model, online=True)
    model = build_model()
    model.graph.node("add").attrs["nested"] = [[1, 2], [3]]
    with pytest.raises(GeError, match="node add"):
        serialize(model, online=True)


def test_write_refuses_what_a_reader_would_refuse(model: CompiledModel):
    model.tasks[1] = Task("add2", "Add", (Slot(SlotKind.ARENA, 0, F32, (1,) * 9),), ())
    with pytest.raises(GeError, match="at most 8"):
        serialize(model, online=True)
    model = build_model()
    model.graph.node("add").output_descs = [TensorDesc(F32, (1,) * 9)]
    with pytest.raises(GeError, match="node add"):
        serialize(model, online=True)
    model = build_model()
    model.tasks[1] = Task("n" * 5000, "Add", (), ())
    with pytest.raises(GeError, match="4096 bytes"):
        serialize(model, online=True)


def test_unknown_op_type_in_file_is_refused(model: CompiledModel):
    data = bytearray(serialize(model, online=True))
    task_info = payload(bytes(data), 2)
    at = bytes(data).index(task_info)
    pos = at + task_info.index(b"Relu")
    data[pos : pos + 4] = b"Relx"
    with pytest.raises(GeError, match="Relx"):
        deserialize(bytes(rechecksum(data)))


def test_task_format_major_mismatch(model: CompiledModel):
    data = bytearray(serialize(model, online=True))
    table = partition_table(bytes(data))
    at = 264 + 24 * len(table) + table[2][1]
    struct.pack_into("<I", data, at + 4, 2)
    with pytest.raises(GeError, match="format 2"):
        deserialize(bytes(rechecksum(data)))


# ----- foreign (device) models --------------------------------------------------------------


def _ge_model(tiny: bool = False, model_num: int = 1) -> bytes:
    """A device-style .om: checksum zero, GE's own TASK_INFO, a TBE_KERNELS partition."""
    md = pb.ModelDef(name="resnet")
    g = md.graph.add(name="resnet")
    op = g.op.add(name="data", type="Data")
    op.attr["index"].i = 0
    op.output_desc.add(dtype=pb.DT_FLOAT16, layout="NC1HWC0").shape.dim.extend([1, 1, 4, 4, 16])
    g.op.add(name="conv", type="Conv2D", input=["data:0"])
    md.attr["memory_size"].i = 4096
    parts = [(0, md.SerializeToString()), (2, b"\x0a\x03abc"), (3, b"kernels!"), (1, bytes(64))]
    entry = struct.Struct("<III" if tiny else "<I4xQQ")
    head = struct.Struct("<I" if tiny else "<I4x")
    body = b""
    for _ in range(model_num):
        table = head.pack(len(parts))
        off = 0
        for t, p in parts:
            table += entry.pack(t, off, len(p))
            off += len(p)
        body += table + b"".join(p for _, p in parts)
    header = ct.OmHeader(
        name="resnet",
        platform_version="3.3.0",
        model_num=model_num,
        model_length=0 if tiny else len(body),
        length=len(body) if tiny else 0,
        ops=12,
    )
    return header.pack() + body


@pytest.mark.parametrize(("tiny", "model_num"), [(False, 1), (True, 1), (False, 2)])
def test_foreign_model_parses_but_does_not_load(tiny: bool, model_num: int):
    data = _ge_model(tiny, model_num)
    pc = ct.parse_container(data)
    assert pc.foreign and not pc.checksum_verified
    assert [p.type_name for p in pc.partitions] == [
        "MODEL_DEF",
        "TASK_INFO",
        "TBE_KERNELS",
        "WEIGHTS_DATA",
    ]
    assert len(pc.extra_models) == model_num - 1
    info = read_info(data)
    assert info.foreign and not info.executable and info.format is None
    assert info.memory_size == 4096 and info.weight_size == 64 and info.name == "resnet"
    md = read_model_def(data)
    assert [op.type for op in md.graph[0].op] == ["Data", "Conv2D"]
    with pytest.raises(GeError, match="not made by openge") as err:
        deserialize(data)
    assert err.value.code == PARAM_INVALID


# ----- robustness ---------------------------------------------------------------------------


def _only_ge_error(buf) -> GeError | None:
    """The GeError that loading ``buf`` and then decoding its graph raises, if any (anything
    else propagates and fails the test)."""
    try:
        _ = deserialize(buf).graph  # decoding the graph is part of loading it here
    except GeError as err:
        return err
    return None


def test_truncated_at_every_offset(model: CompiledModel):
    data = serialize(model, online=True)
    for n in range(len(data)):
        err = _only_ge_error(data[:n])
        assert err is not None, n
        assert err.code == MODEL_DATA_SIZE_INVALID, (n, err)


def test_truncated_with_consistent_header(model: CompiledModel):
    """Cut and fix model_length / drop the checksum, so the checks behind them run too."""
    data = serialize(model, online=True)
    for n in range(256, len(data), 3):
        buf = bytearray(data[:n])
        struct.pack_into("<Q", buf, 184, n - 256)
        buf[12:76] = bytes(64)
        assert _only_ge_error(bytes(buf)) is not None, n


def test_byte_flips(model: CompiledModel):
    data = serialize(model, online=True)
    rng = random.Random(0)
    for _ in range(500):
        pos = rng.randrange(len(data))
        buf = bytearray(data)
        buf[pos] ^= rng.randrange(1, 256)
        err = _only_ge_error(bytes(buf))
        if pos >= 256:
            assert err is not None and "checksum" in err.message, pos


def test_byte_flips_behind_the_checksum(model: CompiledModel):
    """With the checksum zeroed, flipped bytes reach the parsers: only GeError may come out."""
    data = bytearray(serialize(model, online=True))
    data[12:76] = bytes(64)
    rng = random.Random(1)
    for _ in range(500):
        pos = rng.randrange(256, len(data))
        buf = bytearray(data)
        buf[pos] ^= rng.randrange(1, 256)
        _only_ge_error(bytes(buf))


def test_bad_headers():
    with pytest.raises(GeError) as err:
        deserialize(b"IMOD" + bytes(100))
    assert err.value.code == MODEL_DATA_SIZE_INVALID
    data = bytearray(serialize(build_model(), online=True))
    data[0] = ord("X")
    with pytest.raises(GeError, match="magic"):
        deserialize(bytes(data))
    data = bytearray(serialize(build_model(), online=True))
    struct.pack_into("<I", data, 256, 33)
    with pytest.raises(GeError, match="partition count 33"):
        deserialize(bytes(rechecksum(data)))
    data = bytearray(serialize(build_model(), online=True))
    struct.pack_into("<Q", data, 264 + 24 + 8, 5)  # second partition's offset
    with pytest.raises(GeError, match="back to back"):
        deserialize(bytes(rechecksum(data)))
    with pytest.raises(GeError):
        deserialize(12345)


# ----- property: slot and attr values round trip --------------------------------------------

_int64 = st.integers(-(1 << 63), (1 << 63) - 1)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _int64,
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.sampled_from(list(DataType)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=8,
)
_dtypes = st.sampled_from([d for d in DataType if d not in (DataType.DT_STRING, DataType.DT_BF16)])


@st.composite
def _slots(draw):
    kind = draw(st.sampled_from(list(SlotKind)))
    dtype = draw(_dtypes)
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=4)))
    if kind in (SlotKind.ARENA, SlotKind.WEIGHT):
        offset = draw(st.integers(0, 64)) * 8
    elif kind == SlotKind.NONE:
        offset, dtype, shape = 0, DataType.DT_FLOAT, ()
    else:
        offset = 0
    return Slot(kind, offset, dtype, shape)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attrs=st.dictionaries(st.text(max_size=6), _values, max_size=5),
    inputs=st.lists(_slots(), max_size=4),
    outputs=st.lists(_slots(), max_size=3),
    tensor=st.lists(st.integers(-5, 5), max_size=6),
)
def test_property_task_round_trip(attrs, inputs, outputs, tensor):
    model = build_model()
    model.memory_size = 4096
    model.weights = bytearray(4096)
    model.weights[0:24] = model.graph.node("c").attrs["value"].numpy().tobytes()
    model.variables = [model.variables[0].__class__("v", F32, (3,), init_offset=64)]
    attrs = dict(attrs)
    attrs["_tensor"] = Tensor(np.array(tensor, dtype=np.int64))
    attrs["_array"] = np.array(tensor, dtype=np.float64)
    model.tasks = [Task("t", "Add", tuple(inputs), tuple(outputs), attrs)]
    back = deserialize(serialize(model, online=True))
    assert_tasks_equal(model.tasks, back.tasks)
