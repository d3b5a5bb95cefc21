"""Graph ⇄ ``ge.proto.ModelDef`` (the MODEL_DEF partition, OM_FORMAT.md §4).

Layer: om. The API's ``DataType`` numbering is converted to ``ge.proto.DataType`` here and only
here. Constants are not stored in the ModelDef: a ``Const``'s ``value`` is a TensorDef with
empty ``data`` whose ``desc.data_offset`` / ``desc.weight_size`` point into WEIGHTS_DATA (the
layout is the writer's); reading re-attaches each as a Tensor viewing the weights, no copy.

Attr values map by Python type: None → empty AttrDef, bool → b, DataType → dt, int → i,
float → f (float32 on the wire: read back as the shortest decimal of that float32), str → s,
bytes → bt, Tensor/ndarray → t, Graph → g, dict → func (NamedAttrs), list/tuple → list with
its val_type (read back as a list). Protobuf maps keep no order: attrs and dicts are read back
sorted by key. No ``td`` is written: Netron cannot show a TensorDescriptor
attr and refuses the whole model (``td`` is still read, from other writers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, Format, Graph, Port, Tensor, TensorDesc
from openge.om import ge_ir_pb2 as pb
from openge.om.container import MAX_DIMS, MAX_NAME_BYTES

_LV = pb.AttrDef.ListValue

#: API DataType (ge::DataType) → ge.proto.DataType.
_TO_PROTO: dict[DataType, int] = {
    DataType.DT_FLOAT: pb.DT_FLOAT,
    DataType.DT_FLOAT16: pb.DT_FLOAT16,
    DataType.DT_INT8: pb.DT_INT8,
    DataType.DT_INT32: pb.DT_INT32,
    DataType.DT_UINT8: pb.DT_UINT8,
    DataType.DT_INT16: pb.DT_INT16,
    DataType.DT_UINT16: pb.DT_UINT16,
    DataType.DT_UINT32: pb.DT_UINT32,
    DataType.DT_INT64: pb.DT_INT64,
    DataType.DT_UINT64: pb.DT_UINT64,
    DataType.DT_DOUBLE: pb.DT_DOUBLE,
    DataType.DT_BOOL: pb.DT_BOOL,
    DataType.DT_STRING: pb.DT_STRING,
    DataType.DT_COMPLEX64: pb.DT_COMPLEX64,
    DataType.DT_COMPLEX128: pb.DT_COMPLEX128,
    DataType.DT_BF16: pb.DT_BF16,
    # ge.proto numbers the float8 types one below ge::DataType (34, 35); the enum is open, so
    # the ints are stored as they are.
    DataType.DT_FLOAT8_E5M2: 34,
    DataType.DT_FLOAT8_E4M3FN: 35,
}
_FROM_PROTO: dict[int, DataType] = {v: k for k, v in _TO_PROTO.items()}

#: GraphDef attr naming the NetOutput op the writer added for the graph outputs.
NETOUTPUT_MARK = "_openge_netoutput"
#: TensorDef desc attr marking a value that was a bare numpy array.
_NDARRAY_MARK = "_openge_ndarray"

#: ModelDef.version written by openge.
MODEL_DEF_VERSION = 1
SOC_VERSION = "openge-cpu"


def _invalid(message: str) -> GeError:
    return GeError(PARAM_INVALID, f"invalid om ModelDef: {message}")


def to_proto_dtype(dtype: DataType | int) -> int:
    """The ge.proto.DataType value of an API DataType."""
    try:
        return _TO_PROTO[DataType(dtype)]
    except (KeyError, ValueError):
        raise GeError(PARAM_INVALID, f"{dtype!r} is not a GE DataType") from None


def from_proto_dtype(value: int) -> DataType:
    """The API DataType of a ge.proto.DataType value (GeError for one openge lacks)."""
    try:
        return _FROM_PROTO[int(value)]
    except KeyError:
        raise _invalid(f"ge.proto.DataType {value} has no openge DataType") from None


def _f32(value: float) -> float:
    """A float read from a float32 field, as the shortest decimal that round-trips it."""
    return float(str(np.float32(value)))


# ----- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightRef:
    """Where a tensor value lives inside WEIGHTS_DATA."""

    offset: int
    nbytes: int


def tensor_bytes(value: Tensor | np.ndarray) -> memoryview:
    """The C-order bytes of a tensor's data (a view when the data is contiguous)."""
    array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    contiguous: Any = np.ascontiguousarray(array)
    if contiguous.size == 0:
        return memoryview(b"")
    if contiguous.dtype.kind == "V":  # ml_dtypes types have no buffer format: their bytes
        return memoryview(contiguous.reshape(-1).view(np.uint8))
    return memoryview(contiguous).cast("B")


def check_rank(shape: tuple[int, ...] | None, where: str) -> None:
    """GeError when a shape has more dims than an .om may hold (GE's limit, 8)."""
    if shape is not None and len(shape) > MAX_DIMS:
        raise GeError(
            PARAM_INVALID,
            f"{where}: shape {list(shape)} has {len(shape)} dims; an .om holds at most {MAX_DIMS}",
        )


def check_name(name: str, where: str) -> None:
    """GeError when a name is longer than an .om may hold (4 KiB)."""
    if len(name) > MAX_NAME_BYTES or len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        raise GeError(
            PARAM_INVALID, f"{where}: a name of more than {MAX_NAME_BYTES} bytes: {name[:40]!r}…"
        )


def desc_to_proto(desc: TensorDesc, out: Any = None, where: str = "tensor") -> Any:
    """A TensorDesc as a ge.proto.TensorDescriptor (origin format/shape as GE's attrs)."""
    check_rank(desc.shape, where)
    check_rank(desc.origin_shape, where)
    check_name(desc.name, where)
    td = pb.TensorDescriptor() if out is None else out
    td.name = desc.name
    td.dtype = to_proto_dtype(desc.dtype)
    td.shape.dim.extend(desc.shape)
    td.layout = desc.format.layout_name
    origin = desc.origin_format if desc.origin_format is not None else desc.format
    td.attr["origin_format"].s = origin.layout_name.encode()
    if desc.origin_shape is not None:
        lst = td.attr["origin_shape"].list
        lst.val_type = _LV.VT_LIST_INT
        lst.i.extend(desc.origin_shape)
    size = desc.size_bytes if desc.dtype in _SIZED else -1
    td.size = max(size, 0)
    return td


_SIZED = frozenset(DataType) - {DataType.DT_STRING}


def tensor_to_proto(
    value: Tensor | np.ndarray, ref: WeightRef | None, out: Any = None, where: str = "tensor"
) -> Any:
    """A TensorDef: the bytes inline, or (with ``ref``) empty data pointing into the weights."""
    tensor = value if isinstance(value, Tensor) else Tensor(value)
    tdef = pb.TensorDef() if out is None else out
    desc_to_proto(tensor.desc, tdef.desc, where)
    if not isinstance(value, Tensor):
        tdef.desc.attr[_NDARRAY_MARK].b = True
    if ref is not None:
        tdef.desc.data_offset = ref.offset
        tdef.desc.weight_size = ref.nbytes
    else:
        tdef.data = bytes(tensor_bytes(tensor))
        tdef.desc.weight_size = 0
    return tdef


def _list_kind(items: list[Any]) -> str:
    def kind(v: Any) -> str:
        if isinstance(v, (bool, np.bool_)):
            return "b"
        if isinstance(v, DataType):
            return "dt"
        if isinstance(v, (int, np.integer)):
            return "i"
        if isinstance(v, (float, np.floating)):
            return "f"
        if isinstance(v, str):
            return "s"
        if isinstance(v, (bytes, bytearray, memoryview)):
            return "bt"
        if isinstance(v, (Tensor, np.ndarray)):
            return "t"
        if isinstance(v, Graph):
            return "g"
        if isinstance(v, Mapping):
            return "na"
        return f"?{type(v).__name__}"

    kinds = {kind(v) for v in items}
    if kinds == {"i", "f"}:
        return "f"
    return kinds.pop() if len(kinds) == 1 else "mixed"


_LIST_TYPES = {
    "s": _LV.VT_LIST_STRING,
    "i": _LV.VT_LIST_INT,
    "f": _LV.VT_LIST_FLOAT,
    "b": _LV.VT_LIST_BOOL,
    "bt": _LV.VT_LIST_BYTES,
    "td": _LV.VT_LIST_TENSOR_DESC,
    "t": _LV.VT_LIST_TENSOR,
    "g": _LV.VT_LIST_GRAPH,
    "na": _LV.VT_LIST_NAMED_ATTRS,
    "dt": _LV.VT_LIST_DATA_TYPE,
}


def _check_int64(value: Any, where: str) -> int:
    v = int(value)
    if not -(1 << 63) <= v < (1 << 63):
        raise GeError(PARAM_INVALID, f"{where}: {v} does not fit in int64")
    return v


def attr_to_proto(value: Any, where: str, out: Any = None, ref: WeightRef | None = None) -> Any:
    """One attr value as a ge.proto.AttrDef (GeError naming ``where`` for unsupported types)."""
    a = pb.AttrDef() if out is None else out
    if value is None:
        return a
    if isinstance(value, (bool, np.bool_)):
        a.b = bool(value)
    elif isinstance(value, DataType):
        a.dt = to_proto_dtype(value)
    elif isinstance(value, (int, np.integer)):
        a.i = _check_int64(value, where)
    elif isinstance(value, (float, np.floating)):
        a.f = float(value)
    elif isinstance(value, str):
        a.s = _utf8(value, where)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        a.bt = bytes(value)
    elif isinstance(value, (Tensor, np.ndarray)):
        tensor_to_proto(value, ref, a.t, where)
    elif isinstance(value, Graph):
        graph_to_proto(value, out=a.g)
    elif isinstance(value, Mapping):
        _named_attrs(value, "", where, a.func)
    elif isinstance(value, (list, tuple)):
        _list_to_proto(list(value), where, a.list)
    else:
        raise GeError(
            PARAM_INVALID,
            f"{where}: a {type(value).__name__} value cannot be stored in an .om (supported: "
            "None, bool, int, float, str, bytes, DataType, Tensor, Graph, dict, flat lists of "
            "one of these)",
        )
    return a


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeError as err:
        raise GeError(PARAM_INVALID, f"{where}: {text!r} is not valid UTF-8 text") from err


def _list_to_proto(items: list[Any], where: str, lst: Any) -> None:
    lst.SetInParent()  # an empty list is still a list, not None
    if not items:
        lst.val_type = _LV.VT_LIST_NONE
        return
    kind = _list_kind(items)
    if kind not in _LIST_TYPES:
        raise GeError(
            PARAM_INVALID,
            f"{where}: a list of {kind.lstrip('?')} values cannot be stored in an .om; lists must "
            "hold one type (int, float, bool, str, bytes, DataType, Tensor, Graph, dict)",
        )
    lst.val_type = _LIST_TYPES[kind]
    if kind == "i":
        lst.i.extend(_check_int64(v, where) for v in items)
    elif kind == "f":
        lst.f.extend(float(v) for v in items)
    elif kind == "b":
        lst.b.extend(bool(v) for v in items)
    elif kind == "dt":
        lst.dt.extend(to_proto_dtype(v) for v in items)
    elif kind == "s":
        lst.s.extend(_utf8(v, where) for v in items)
    elif kind == "bt":
        lst.bt.extend(bytes(v) for v in items)
    elif kind == "t":
        for v in items:
            tensor_to_proto(v, None, lst.t.add(), where)
    elif kind == "g":
        for v in items:
            graph_to_proto(v, out=lst.g.add())
    else:  # "na"
        for v in items:
            _named_attrs(v, "", where, lst.na.add())


def _named_attrs(mapping: Mapping[str, Any], name: str, where: str, out: Any) -> Any:
    out.SetInParent()  # an empty dict is still a dict, not None
    out.name = name
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise GeError(PARAM_INVALID, f"{where}: dict key {key!r} is not a str")
        attr_to_proto(value, f"{where}[{key!r}]", out.attr[key])
    return out


def _port_name(port: Port) -> str:
    return f"{port.node.name}:{port.index}"


def graph_to_proto(
    graph: Graph,
    weight_refs: Mapping[str, WeightRef] | None = None,
    out: Any = None,
) -> Any:
    """A Graph as a ge.proto.GraphDef, ops in topological order, closed by one NetOutput.

    ``weight_refs`` maps node name → WeightRef for nodes (Const, Variable) whose ``value``
    lives in WEIGHTS_DATA; every other tensor attr is stored inline.
    """
    gd = pb.GraphDef() if out is None else out
    refs = weight_refs or {}
    check_name(graph.name, "graph")
    gd.name = graph.name
    for key, value in graph.attrs.items():
        attr_to_proto(value, f"graph {graph.name} attr {key!r}", gd.attr[key])
    data_nodes = graph.inputs
    gd.input.extend(f"{n.name}:0" for n in data_nodes)
    gd.output.extend(_port_name(p) for p in graph.outputs)
    order = graph.topological_order()
    for op_id, node in enumerate(order):
        where = f"node {node.name} ({node.op_type})"
        check_name(node.name, where)
        check_name(node.op_type, where)
        op = gd.op.add()
        op.name = node.name
        op.type = node.op_type
        op.id = op_id
        op.stream_id = 0
        for i, port in enumerate(node.inputs):
            op.input.append("" if port is None else _port_name(port))
            desc = node.input_desc(i)
            if desc is None:
                op.input_desc.add()
            else:
                desc_to_proto(desc, op.input_desc.add(), f"{where} input {i}")
        op.input.extend(f"{c.name}:-1" for c in node.control_inputs)
        for i, desc in enumerate(node.output_descs):
            desc_to_proto(desc, op.output_desc.add(), f"{where} output {i}")
        attrs = dict(node.attrs)
        if node.op_type == "Data" and "index" not in attrs:
            attrs["index"] = data_nodes.index(node)
        ref = refs.get(node.name)
        for key, value in attrs.items():
            use_ref = ref if key == "value" else None
            attr_to_proto(value, f"{where} attr {key!r}", op.attr[key], use_ref)
    if not any(n.op_type == "NetOutput" for n in order):
        name = "NetOutput"
        suffix = 0
        while graph.has_node(name):
            suffix += 1
            name = f"NetOutput_{suffix}"
        op = gd.op.add()
        op.name = name
        op.type = "NetOutput"
        op.id = len(order)
        for port in graph.outputs:
            op.input.append(_port_name(port))
            desc_to_proto(port.desc, op.input_desc.add(), f"graph {graph.name} output")
        gd.attr[NETOUTPUT_MARK].s = name.encode()
    return gd


def build_model_def(
    graph: Graph,
    *,
    name: str,
    weight_refs: Mapping[str, WeightRef],
    memory_size: int,
    weight_size: int,
    producer: str,
    format_version: tuple[int, int],
    online: bool,
    options: Mapping[str, str],
    subgraphs: Sequence[Graph] = (),
) -> Any:
    """The ModelDef openge writes: ``graph[0]`` the compiled graph plus the model attrs; a gear
    model's per-gear graphs follow as ``graph[1:]`` (their constants also point into the
    weights: stored once)."""
    md = pb.ModelDef()
    md.name = name
    md.version = MODEL_DEF_VERSION
    graph_to_proto(graph, weight_refs, md.graph.add())
    for sub in subgraphs:
        graph_to_proto(sub, weight_refs, md.graph.add())
    attrs = md.attr
    attrs["memory_size"].i = _check_int64(memory_size, "memory_size")
    attrs["weight_size"].i = _check_int64(weight_size, "weight_size")
    attrs["stream_num"].i = 1
    attrs["event_num"].i = 0
    attrs["soc_version"].s = SOC_VERSION.encode()
    attrs["openge_producer"].s = _utf8(producer, "producer")
    attrs["openge_format"].s = f"{format_version[0]}.{format_version[1]}".encode()
    attrs["openge_online"].b = bool(online)
    opts = attrs["build_options"].func
    opts.name = "build_options"
    for key, value in options.items():
        opts.attr[str(key)].s = _utf8(str(value), f"option {key!r}")
    return md


def serialize_model_def(md: Any) -> bytes:
    """Deterministic bytes (map entries sorted), so one model always gives one file."""
    return md.SerializeToString(deterministic=True)


# ----- reading ------------------------------------------------------------------------------


def parse_model_def(data: Any) -> Any:
    """Decode a MODEL_DEF payload (GeError 145000 when it is not a valid ModelDef)."""
    try:
        return pb.ModelDef.FromString(data)
    except Exception as err:  # DecodeError, or the runtime's own recursion/size limits
        raise _invalid(f"MODEL_DEF does not decode as ge.proto.ModelDef: {err}") from err


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(f"{where}: string attr is not UTF-8") from None


def _check_name(name: str, where: str) -> str:
    if len(name.encode("utf-8", errors="replace")) > MAX_NAME_BYTES:
        raise _invalid(f"{where}: name of more than {MAX_NAME_BYTES} bytes")
    return name


def _dims(shape: Any, where: str) -> tuple[int, ...]:
    dims = tuple(shape.dim)
    if len(dims) > MAX_DIMS:
        raise _invalid(f"{where}: {len(dims)} dims; at most {MAX_DIMS}")
    return dims


def _format(layout: str, where: str) -> Format:
    if not layout:
        return Format.FORMAT_ND
    try:
        return Format.from_layout_name(layout)
    except GeError:
        raise _invalid(f"{where}: layout {layout!r} is not an openge Format") from None


#: Decoded TensorDescs by their serialized bytes (TensorDesc is immutable, so equal
#: descriptors share one object; graphs repeat a few descs many times). Bounded.
_DESC_CACHE: dict[bytes, TensorDesc] = {}
_DESC_CACHE_MAX = 4096


def desc_from_proto(td: Any, where: str) -> TensorDesc:
    """A TensorDesc from a ge.proto.TensorDescriptor."""
    key = td.SerializeToString(deterministic=True)
    desc = _DESC_CACHE.get(key)
    if desc is None:
        desc = _desc_from_proto(td, where)
        if len(_DESC_CACHE) >= _DESC_CACHE_MAX:
            _DESC_CACHE.clear()
        _DESC_CACHE[key] = desc
    return desc


def _desc_from_proto(td: Any, where: str) -> TensorDesc:
    shape = _dims(td.shape, where)
    fmt = _format(td.layout, where)
    origin = fmt
    origin_shape = None
    if "origin_format" in td.attr:
        origin = _format(_text(td.attr["origin_format"].s, where), where)
    if "origin_shape" in td.attr:
        origin_shape = tuple(td.attr["origin_shape"].list.i)
        if len(origin_shape) > MAX_DIMS:
            raise _invalid(f"{where}: origin shape of {len(origin_shape)} dims")
    try:
        return TensorDesc(
            from_proto_dtype(td.dtype),
            shape,
            fmt,
            origin,
            _check_name(td.name, where),
            origin_shape,
        )
    except GeError as err:
        raise _invalid(f"{where}: {err.message}") from None


def tensor_from_proto(tdef: Any, weights: memoryview | None, where: str) -> Tensor | np.ndarray:
    """A Tensor from a TensorDef: inline bytes, or a read-only view into ``weights``."""
    desc = desc_from_proto(tdef.desc, where)
    if not desc.is_static:
        raise _invalid(f"{where}: a tensor value needs a static shape, got {list(desc.shape)}")
    try:
        np_dtype = desc.dtype.np_dtype
    except GeError:
        raise _invalid(f"{where}: tensor of {desc.dtype.name} cannot hold data") from None
    nbytes = desc.numel * np_dtype.itemsize
    try:
        array = _tensor_array(tdef, weights, desc, np_dtype, nbytes, where)
    except ValueError as err:  # numpy refusing an absurd shape
        raise _invalid(f"{where}: {err}") from None
    if tdef.desc.attr[_NDARRAY_MARK].b if _NDARRAY_MARK in tdef.desc.attr else False:
        return array
    return Tensor(array, format=desc.format)


def _tensor_array(
    tdef: Any,
    weights: memoryview | None,
    desc: TensorDesc,
    np_dtype: np.dtype,
    nbytes: int,
    where: str,
) -> np.ndarray:
    data = tdef.data
    if data:
        if len(data) != nbytes:
            raise _invalid(f"{where}: {len(data)} data bytes; {desc.type_str()} needs {nbytes}")
        array = np.frombuffer(data, dtype=np_dtype).reshape(desc.shape)
    elif tdef.desc.weight_size > 0:
        offset, size = tdef.desc.data_offset, tdef.desc.weight_size
        if weights is None:
            raise _invalid(f"{where}: refers to weights, but none are available here")
        if size != nbytes:
            raise _invalid(f"{where}: weight_size {size}; {desc.type_str()} needs {nbytes}")
        if offset < 0 or offset > len(weights) - size:
            raise _invalid(
                f"{where}: bytes {offset}..{offset + size} are outside WEIGHTS_DATA "
                f"({len(weights)} bytes)"
            )
        array = np.frombuffer(weights, dtype=np_dtype, count=desc.numel, offset=offset)
        array = array.reshape(desc.shape)
    elif nbytes == 0:
        array = np.empty(desc.shape, dtype=np_dtype)
    else:
        raise _invalid(f"{where}: a {desc.type_str()} tensor without data")
    return array


def attr_from_proto(a: Any, weights: memoryview | None, where: str) -> Any:
    """The Python value of a ge.proto.AttrDef (inverse of ``attr_to_proto``)."""
    kind = a.WhichOneof("value")
    if kind is None:
        return None
    if kind == "b":
        return a.b
    if kind == "i":
        return a.i
    if kind == "f":
        return _f32(a.f)
    if kind == "s":
        return _text(a.s, where)
    if kind == "bt":
        return a.bt
    if kind == "dt":
        return from_proto_dtype(a.dt)
    if kind == "t":
        return tensor_from_proto(a.t, weights, where)
    if kind == "td":
        return desc_from_proto(a.td, where)
    if kind == "g":
        return graph_from_proto(a.g, None)
    if kind == "func":
        return _attr_map(a.func.attr, None, where)
    return _list_from_proto(a.list, where)


def _attr_map(
    attrs: Any, weights: memoryview | None, where: str, skip: str | None = None
) -> dict[str, Any]:
    """A protobuf attr map as a dict in key order (map order on the wire is unspecified)."""
    return {
        k: attr_from_proto(attrs[k], weights, f"{where} {k!r}") for k in sorted(attrs) if k != skip
    }


def _list_from_proto(lst: Any, where: str) -> list[Any]:
    vt = lst.val_type
    if vt == _LV.VT_LIST_NONE:  # old GE files leave val_type unset: take the filled field
        for kind, code in _LIST_TYPES.items():
            if len(getattr(lst, kind)):
                vt = code
                break
        else:
            return []
    if vt == _LV.VT_LIST_INT:
        return list(lst.i)
    if vt == _LV.VT_LIST_FLOAT:
        return [_f32(v) for v in lst.f]
    if vt == _LV.VT_LIST_BOOL:
        return list(lst.b)
    if vt == _LV.VT_LIST_STRING:
        return [_text(v, where) for v in lst.s]
    if vt == _LV.VT_LIST_BYTES:
        return list(lst.bt)
    if vt == _LV.VT_LIST_DATA_TYPE:
        return [from_proto_dtype(v) for v in lst.dt]
    if vt == _LV.VT_LIST_TENSOR:
        return [tensor_from_proto(v, None, where) for v in lst.t]
    if vt == _LV.VT_LIST_TENSOR_DESC:
        return [desc_from_proto(v, where) for v in lst.td]
    if vt == _LV.VT_LIST_GRAPH:
        return [graph_from_proto(v, None) for v in lst.g]
    if vt == _LV.VT_LIST_NAMED_ATTRS:
        return [_attr_map(na.attr, None, where) for na in lst.na]
    raise _invalid(f"{where}: unknown list value type {vt}")


def _parse_ref(text: str, where: str) -> tuple[str, int]:
    name, sep, index = text.rpartition(":")
    if not sep or not name:
        raise _invalid(f"{where}: input {text!r} is not 'producer:index'")
    try:
        return name, int(index)
    except ValueError:
        raise _invalid(f"{where}: input {text!r} has a non-integer index") from None


def graph_from_proto(gd: Any, weights: memoryview | None) -> Graph:
    """A Graph from a GraphDef written by openge (the added NetOutput becomes the outputs)."""
    gname = _check_name(gd.name, "graph")
    graph = Graph(gname)
    skip = _text(gd.attr[NETOUTPUT_MARK].s, "graph") if NETOUTPUT_MARK in gd.attr else None
    graph.attrs = _attr_map(gd.attr, weights, f"graph {gname} attr", skip=NETOUTPUT_MARK)
    ops = [op for op in gd.op if op.name != skip]
    try:
        for op in ops:
            where = f"op {_check_name(op.name, 'op')} ({op.type})"
            attrs = _attr_map(op.attr, weights, f"{where} attr")
            descs = [
                desc_from_proto(d, f"{where} output {i}") for i, d in enumerate(op.output_desc)
            ]
            op_type = _check_name(op.type, where)
            graph.add_node(op_type, name=op.name, attrs=attrs, output_descs=descs)
        for op in ops:
            node = graph.node(op.name)
            where = f"op {op.name} ({op.type})"
            for text in op.input:
                if not text:
                    graph.add_input(node, None)
                    continue
                producer, index = _parse_ref(text, where)
                source = graph.node(producer)
                if index == -1:
                    graph.add_control_edge(source, node)
                else:
                    graph.add_input(node, source.output(index))
        outputs = []
        for text in gd.output:
            producer, index = _parse_ref(text, f"graph {gname} output")
            outputs.append(graph.node(producer).output(index))
        graph.set_outputs(outputs)
        graph.validate()
    except GeError as err:
        if err.message.startswith("invalid om"):
            raise
        raise _invalid(err.message) from None
    return graph


def model_attr(md: Any, key: str, default: Any = None) -> Any:
    """A plain model attr (int, float, bool, str or dict of str) of a ModelDef, or ``default``."""
    if key not in md.attr:
        return default
    return attr_from_proto(md.attr[key], None, f"model attr {key!r}")


__all__ = [
    "MODEL_DEF_VERSION",
    "NETOUTPUT_MARK",
    "SOC_VERSION",
    "WeightRef",
    "attr_from_proto",
    "attr_to_proto",
    "build_model_def",
    "check_name",
    "check_rank",
    "desc_from_proto",
    "desc_to_proto",
    "from_proto_dtype",
    "graph_from_proto",
    "graph_to_proto",
    "model_attr",
    "parse_model_def",
    "serialize_model_def",
    "tensor_bytes",
    "tensor_from_proto",
    "tensor_to_proto",
    "to_proto_dtype",
]
