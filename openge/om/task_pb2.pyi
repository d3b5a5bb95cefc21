# ruff: noqa
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TensorValue(_message.Message):
    __slots__ = ("dtype", "shape", "data", "format", "ndarray")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    NDARRAY_FIELD_NUMBER: _ClassVar[int]
    dtype: int
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    format: int
    ndarray: bool
    def __init__(
        self,
        dtype: _Optional[int] = ...,
        shape: _Optional[_Iterable[int]] = ...,
        data: _Optional[bytes] = ...,
        format: _Optional[int] = ...,
        ndarray: _Optional[bool] = ...,
    ) -> None: ...

class AttrList(_message.Message):
    __slots__ = ("kind", "i", "f", "b", "s", "bt", "dt", "v", "tuple")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        EMPTY: _ClassVar[AttrList.Kind]
        INT: _ClassVar[AttrList.Kind]
        FLOAT: _ClassVar[AttrList.Kind]
        BOOL: _ClassVar[AttrList.Kind]
        STRING: _ClassVar[AttrList.Kind]
        BYTES: _ClassVar[AttrList.Kind]
        DATA_TYPE: _ClassVar[AttrList.Kind]
        VALUE: _ClassVar[AttrList.Kind]

    EMPTY: AttrList.Kind
    INT: AttrList.Kind
    FLOAT: AttrList.Kind
    BOOL: AttrList.Kind
    STRING: AttrList.Kind
    BYTES: AttrList.Kind
    DATA_TYPE: AttrList.Kind
    VALUE: AttrList.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    I_FIELD_NUMBER: _ClassVar[int]
    F_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    BT_FIELD_NUMBER: _ClassVar[int]
    DT_FIELD_NUMBER: _ClassVar[int]
    V_FIELD_NUMBER: _ClassVar[int]
    TUPLE_FIELD_NUMBER: _ClassVar[int]
    kind: AttrList.Kind
    i: _containers.RepeatedScalarFieldContainer[int]
    f: _containers.RepeatedScalarFieldContainer[float]
    b: _containers.RepeatedScalarFieldContainer[bool]
    s: _containers.RepeatedScalarFieldContainer[str]
    bt: _containers.RepeatedScalarFieldContainer[bytes]
    dt: _containers.RepeatedScalarFieldContainer[int]
    v: _containers.RepeatedCompositeFieldContainer[AttrValue]
    tuple: bool
    def __init__(
        self,
        kind: _Optional[_Union[AttrList.Kind, str]] = ...,
        i: _Optional[_Iterable[int]] = ...,
        f: _Optional[_Iterable[float]] = ...,
        b: _Optional[_Iterable[bool]] = ...,
        s: _Optional[_Iterable[str]] = ...,
        bt: _Optional[_Iterable[bytes]] = ...,
        dt: _Optional[_Iterable[int]] = ...,
        v: _Optional[_Iterable[_Union[AttrValue, _Mapping]]] = ...,
        tuple: _Optional[bool] = ...,
    ) -> None: ...

class AttrMap(_message.Message):
    __slots__ = ("attr",)
    ATTR_FIELD_NUMBER: _ClassVar[int]
    attr: _containers.RepeatedCompositeFieldContainer[Attr]
    def __init__(self, attr: _Optional[_Iterable[_Union[Attr, _Mapping]]] = ...) -> None: ...

class AttrValue(_message.Message):
    __slots__ = ("i", "f", "b", "s", "bt", "dt", "t", "list", "map")
    I_FIELD_NUMBER: _ClassVar[int]
    F_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    BT_FIELD_NUMBER: _ClassVar[int]
    DT_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    i: int
    f: float
    b: bool
    s: str
    bt: bytes
    dt: int
    t: TensorValue
    list: AttrList
    map: AttrMap
    def __init__(
        self,
        i: _Optional[int] = ...,
        f: _Optional[float] = ...,
        b: _Optional[bool] = ...,
        s: _Optional[str] = ...,
        bt: _Optional[bytes] = ...,
        dt: _Optional[int] = ...,
        t: _Optional[_Union[TensorValue, _Mapping]] = ...,
        list: _Optional[_Union[AttrList, _Mapping]] = ...,
        map: _Optional[_Union[AttrMap, _Mapping]] = ...,
    ) -> None: ...

class Attr(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: AttrValue
    def __init__(
        self, name: _Optional[str] = ..., value: _Optional[_Union[AttrValue, _Mapping]] = ...
    ) -> None: ...

class Slot(_message.Message):
    __slots__ = ("kind", "offset", "dtype", "shape")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    kind: int
    offset: int
    dtype: int
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(
        self,
        kind: _Optional[int] = ...,
        offset: _Optional[int] = ...,
        dtype: _Optional[int] = ...,
        shape: _Optional[_Iterable[int]] = ...,
    ) -> None: ...

class Task(_message.Message):
    __slots__ = ("name", "op_type", "attrs", "inputs", "outputs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OP_TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    op_type: str
    attrs: _containers.RepeatedCompositeFieldContainer[Attr]
    inputs: _containers.RepeatedCompositeFieldContainer[Slot]
    outputs: _containers.RepeatedCompositeFieldContainer[Slot]
    def __init__(
        self,
        name: _Optional[str] = ...,
        op_type: _Optional[str] = ...,
        attrs: _Optional[_Iterable[_Union[Attr, _Mapping]]] = ...,
        inputs: _Optional[_Iterable[_Union[Slot, _Mapping]]] = ...,
        outputs: _Optional[_Iterable[_Union[Slot, _Mapping]]] = ...,
    ) -> None: ...

class IODesc(_message.Message):
    __slots__ = ("name", "dtype", "shape", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: int
    shape: _containers.RepeatedScalarFieldContainer[int]
    format: int
    def __init__(
        self,
        name: _Optional[str] = ...,
        dtype: _Optional[int] = ...,
        shape: _Optional[_Iterable[int]] = ...,
        format: _Optional[int] = ...,
    ) -> None: ...

class Variable(_message.Message):
    __slots__ = ("name", "dtype", "shape", "format", "init_offset")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    INIT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: int
    shape: _containers.RepeatedScalarFieldContainer[int]
    format: int
    init_offset: int
    def __init__(
        self,
        name: _Optional[str] = ...,
        dtype: _Optional[int] = ...,
        shape: _Optional[_Iterable[int]] = ...,
        format: _Optional[int] = ...,
        init_offset: _Optional[int] = ...,
    ) -> None: ...

class ExternalWeight(_message.Message):
    __slots__ = ("location", "offset", "length", "sha256", "dtype", "shape", "directory")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    location: str
    offset: int
    length: int
    sha256: str
    dtype: int
    shape: _containers.RepeatedScalarFieldContainer[int]
    directory: str
    def __init__(
        self,
        location: _Optional[str] = ...,
        offset: _Optional[int] = ...,
        length: _Optional[int] = ...,
        sha256: _Optional[str] = ...,
        dtype: _Optional[int] = ...,
        shape: _Optional[_Iterable[int]] = ...,
        directory: _Optional[str] = ...,
    ) -> None: ...

class Option(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Shape(_message.Message):
    __slots__ = ("dims",)
    DIMS_FIELD_NUMBER: _ClassVar[int]
    dims: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, dims: _Optional[_Iterable[int]] = ...) -> None: ...

class Gear(_message.Message):
    __slots__ = (
        "values",
        "task_begin",
        "task_end",
        "input_shapes",
        "output_shapes",
        "memory_size",
        "graph_name",
    )
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TASK_BEGIN_FIELD_NUMBER: _ClassVar[int]
    TASK_END_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_SIZE_FIELD_NUMBER: _ClassVar[int]
    GRAPH_NAME_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    task_begin: int
    task_end: int
    input_shapes: _containers.RepeatedCompositeFieldContainer[Shape]
    output_shapes: _containers.RepeatedCompositeFieldContainer[Shape]
    memory_size: int
    graph_name: str
    def __init__(
        self,
        values: _Optional[_Iterable[int]] = ...,
        task_begin: _Optional[int] = ...,
        task_end: _Optional[int] = ...,
        input_shapes: _Optional[_Iterable[_Union[Shape, _Mapping]]] = ...,
        output_shapes: _Optional[_Iterable[_Union[Shape, _Mapping]]] = ...,
        memory_size: _Optional[int] = ...,
        graph_name: _Optional[str] = ...,
    ) -> None: ...

class GearTable(_message.Message):
    __slots__ = ("kind", "gears", "origin_inputs", "shape_order")
    KIND_FIELD_NUMBER: _ClassVar[int]
    GEARS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_INPUTS_FIELD_NUMBER: _ClassVar[int]
    SHAPE_ORDER_FIELD_NUMBER: _ClassVar[int]
    kind: int
    gears: _containers.RepeatedCompositeFieldContainer[Gear]
    origin_inputs: _containers.RepeatedCompositeFieldContainer[Shape]
    shape_order: _containers.RepeatedScalarFieldContainer[str]
    def __init__(
        self,
        kind: _Optional[int] = ...,
        gears: _Optional[_Iterable[_Union[Gear, _Mapping]]] = ...,
        origin_inputs: _Optional[_Iterable[_Union[Shape, _Mapping]]] = ...,
        shape_order: _Optional[_Iterable[str]] = ...,
    ) -> None: ...

class TaskList(_message.Message):
    __slots__ = (
        "format_major",
        "format_minor",
        "name",
        "producer",
        "online",
        "is_dynamic",
        "memory_size",
        "weight_size",
        "inputs",
        "outputs",
        "variables",
        "external_weights",
        "options",
        "tasks",
        "stats",
        "gear_table",
    )
    FORMAT_MAJOR_FIELD_NUMBER: _ClassVar[int]
    FORMAT_MINOR_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    IS_DYNAMIC_FIELD_NUMBER: _ClassVar[int]
    MEMORY_SIZE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    GEAR_TABLE_FIELD_NUMBER: _ClassVar[int]
    format_major: int
    format_minor: int
    name: str
    producer: str
    online: bool
    is_dynamic: bool
    memory_size: int
    weight_size: int
    inputs: _containers.RepeatedCompositeFieldContainer[IODesc]
    outputs: _containers.RepeatedCompositeFieldContainer[IODesc]
    variables: _containers.RepeatedCompositeFieldContainer[Variable]
    external_weights: _containers.RepeatedCompositeFieldContainer[ExternalWeight]
    options: _containers.RepeatedCompositeFieldContainer[Option]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    stats: _containers.RepeatedCompositeFieldContainer[Attr]
    gear_table: GearTable
    def __init__(
        self,
        format_major: _Optional[int] = ...,
        format_minor: _Optional[int] = ...,
        name: _Optional[str] = ...,
        producer: _Optional[str] = ...,
        online: _Optional[bool] = ...,
        is_dynamic: _Optional[bool] = ...,
        memory_size: _Optional[int] = ...,
        weight_size: _Optional[int] = ...,
        inputs: _Optional[_Iterable[_Union[IODesc, _Mapping]]] = ...,
        outputs: _Optional[_Iterable[_Union[IODesc, _Mapping]]] = ...,
        variables: _Optional[_Iterable[_Union[Variable, _Mapping]]] = ...,
        external_weights: _Optional[_Iterable[_Union[ExternalWeight, _Mapping]]] = ...,
        options: _Optional[_Iterable[_Union[Option, _Mapping]]] = ...,
        tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...,
        stats: _Optional[_Iterable[_Union[Attr, _Mapping]]] = ...,
        gear_table: _Optional[_Union[GearTable, _Mapping]] = ...,
    ) -> None: ...
