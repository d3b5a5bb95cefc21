"""GraphBuilder and TensorHolder: GE's eager-style ("ES") graph construction API (es layer).

Mirrors CANN's Python package ``ge.es``: a :class:`GraphBuilder` creates inputs, constants and
variables; op functions (``openge.es.all``) and the TensorHolder operators add nodes; every node
is shape/dtype-inferred when it is created, so a mistake raises a :class:`~openge.errors.GeError`
naming the node right at the line that made it. ``build_and_reset`` returns an
:class:`openge.graph.Graph` and leaves the builder empty, ready for the next graph.

Differences from CANN, on purpose: errors about values (shapes, dtypes, attrs, wiring) are
``GeError``; wrong Python argument types are ``TypeError`` (as in CANN). Python scalars in
operators (``x * 2``) become a Const of the other operand's dtype; in op-function inputs they
follow CANN's TensorLike rule (int → int64, float → float32, lists likewise).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from openge.errors import (
    DATATYPE_INVALID,
    INTERNAL_ERROR,
    PARAM_INVALID,
    SHAPE_INVALID,
    GeError,
)
from openge.graph import (
    DataType,
    Format,
    Graph,
    Node,
    Port,
    Tensor,
    TensorDesc,
    as_data_type,
    from_numpy_dtype,
    normalize_shape,
)
from openge.ops import Trait, get_schema, infer_node, normalize_attrs
from openge.ops.infer import MAX_PROPAGATED_ELEMENTS, propagate_value

logger = logging.getLogger(__name__)

#: Results of at most this many elements are computed while building when all inputs are known,
#: so ops that need a constant input (Reshape's shape …) can be inferred at construction.
#: Ops whose value depends only on the static shape of their input.

_local = threading.local()


def _scope_attrs() -> dict[str, Any]:
    return getattr(_local, "attrs", {})


def _scope_deps() -> list[TensorHolder]:
    return getattr(_local, "deps", [])


@contextlib.contextmanager
def attr_scope(attr_maps: Mapping[str, Any]) -> Iterator[None]:
    """Add ``attr_maps`` to every node created inside the ``with`` block (nests; inner wins).

    As in GE, scope attrs are set after the op's own attrs, so they override them. Attr names
    starting with ``_`` are private annotations and fit any op; other names must be attrs of
    every op created in the scope.
    """
    if not isinstance(attr_maps, Mapping):
        raise TypeError("attr_scope takes a dict of attr name -> value")
    previous = _scope_attrs()
    _local.attrs = {**previous, **attr_maps}
    try:
        yield
    finally:
        _local.attrs = previous


@contextlib.contextmanager
def control_dependency_scope(tensors: Sequence[TensorHolder]) -> Iterator[None]:
    """Make every node created inside the block run after the producers of ``tensors``."""
    if not isinstance(tensors, (list, tuple)) or not all(
        isinstance(t, TensorHolder) for t in tensors
    ):
        raise TypeError("control_dependency_scope takes a list of TensorHolder")
    previous = _scope_deps()
    _local.deps = previous + list(tensors)
    try:
        yield
    finally:
        _local.deps = previous


def _is_tensor_like(value: Any) -> bool:
    return isinstance(value, (bool, int, float, list, tuple, np.ndarray, np.generic, Tensor))


class TensorHolder:
    """One output of a node in a GraphBuilder's graph (CANN ``ge.es.TensorHolder``).

    Created by the builder's ``create_*`` methods, by op functions and by operators; never
    directly. Supports ``+ - * / @`` (Add, Sub, Mul, RealDiv, MatMulV2 — BatchMatMulV2 when an
    operand has rank > 2) and unary ``-`` (Neg). ``set_shape`` / ``set_data_type`` /
    ``set_format`` change the producer's output description (nodes created afterwards see it).
    """

    __slots__ = ("_builder", "_graph", "_index", "_node")
    _builder: GraphBuilder
    _graph: Graph
    _index: int
    _node: Node
    # NumPy defers to our reflected operators (np.float32(2) * t → t.__rmul__).
    __array_ufunc__ = None

    def __init__(self) -> None:
        raise TypeError(
            "TensorHolder objects are created by GraphBuilder.create_* methods and op functions"
        )

    @classmethod
    def _make(cls, builder: GraphBuilder, node: Node, index: int) -> TensorHolder:
        holder = cls.__new__(cls)
        holder._builder = builder
        holder._graph = node.graph
        holder._node = node
        holder._index = index
        return holder

    # ----- identity --------------------------------------------------------------------------
    @property
    def node(self) -> Node:
        """The producer node."""
        return self._node

    @property
    def index(self) -> int:
        """The producer's output index."""
        return self._index

    @property
    def port(self) -> Port:
        """The producer output as an :class:`openge.graph.Port` (node, index)."""
        return Port(self._node, self._index)

    @property
    def name(self) -> str:
        """The producer node's name."""
        return self._node.name

    def get_owner_builder(self) -> GraphBuilder:
        """The GraphBuilder this tensor belongs to."""
        return self._builder

    # ----- description -----------------------------------------------------------------------
    @property
    def desc(self) -> TensorDesc:
        """The producer's output description."""
        return self._node.output_descs[self._index]

    def get_shape(self) -> list[int]:
        """The dims (-1 where unknown)."""
        return list(self.desc.shape)

    def get_data_type(self) -> DataType:
        """The element type."""
        return self.desc.dtype

    def get_format(self) -> Format:
        """The layout."""
        return self.desc.format

    def _set_desc(self, operation: str, desc: TensorDesc) -> TensorHolder:
        self._builder._check_holder(self, operation)
        descs = list(self._node.output_descs)
        descs[self._index] = desc
        self._node.output_descs = descs
        self._builder._const_values.pop(self.port, None)
        return self

    def set_shape(self, shape: Sequence[int]) -> TensorHolder:
        """Set the shape (a list of ints, -1 for unknown); returns self for chaining."""
        if not isinstance(shape, (list, tuple)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape
        ):
            raise TypeError(f"shape must be a list of integers, got {shape!r}")
        dims = normalize_shape(shape, where=f"set_shape of {self._node.name}")
        return self._set_desc("set_shape", replace(self.desc, shape=dims))

    def set_data_type(self, data_type: DataType) -> TensorHolder:
        """Set the element type; returns self for chaining."""
        if not isinstance(data_type, DataType):
            raise TypeError(f"data_type must be a DataType, got {data_type!r}")
        return self._set_desc("set_data_type", replace(self.desc, dtype=data_type))

    def set_format(self, format: Format) -> TensorHolder:
        """Set the layout (format and origin format); returns self for chaining."""
        if not isinstance(format, Format):
            raise TypeError(f"format must be a Format, got {format!r}")
        return self._set_desc("set_format", replace(self.desc, format=format, origin_format=format))

    # ----- operators -------------------------------------------------------------------------
    def add(self, other: Any) -> TensorHolder:
        """``self + other`` (Add)."""
        return self._builder._binary("Add", self, other)

    def sub(self, other: Any) -> TensorHolder:
        """``self - other`` (Sub)."""
        return self._builder._binary("Sub", self, other)

    def mul(self, other: Any) -> TensorHolder:
        """``self * other`` (Mul)."""
        return self._builder._binary("Mul", self, other)

    def div(self, other: Any) -> TensorHolder:
        """``self / other`` (RealDiv)."""
        return self._builder._binary("RealDiv", self, other)

    def matmul(self, other: Any) -> TensorHolder:
        """``self @ other`` (MatMulV2, or BatchMatMulV2 when a rank exceeds 2)."""
        return self._builder._matmul(self, other)

    def _dispatch(self, op_type: str, other: Any, *, reflected: bool = False) -> Any:
        if not isinstance(other, TensorHolder) and not _is_tensor_like(other):
            return NotImplemented
        if reflected:
            return self._builder._binary(op_type, other, self)
        return self._builder._binary(op_type, self, other)

    def __add__(self, other: Any) -> TensorHolder:
        return self._dispatch("Add", other)

    def __radd__(self, other: Any) -> TensorHolder:
        return self._dispatch("Add", other, reflected=True)

    def __sub__(self, other: Any) -> TensorHolder:
        return self._dispatch("Sub", other)

    def __rsub__(self, other: Any) -> TensorHolder:
        return self._dispatch("Sub", other, reflected=True)

    def __mul__(self, other: Any) -> TensorHolder:
        return self._dispatch("Mul", other)

    def __rmul__(self, other: Any) -> TensorHolder:
        return self._dispatch("Mul", other, reflected=True)

    def __truediv__(self, other: Any) -> TensorHolder:
        return self._dispatch("RealDiv", other)

    def __rtruediv__(self, other: Any) -> TensorHolder:
        return self._dispatch("RealDiv", other, reflected=True)

    def __matmul__(self, other: Any) -> TensorHolder:
        if not isinstance(other, TensorHolder) and not _is_tensor_like(other):
            return NotImplemented
        return self._builder._matmul(self, other)

    def __rmatmul__(self, other: Any) -> TensorHolder:
        if not _is_tensor_like(other):
            return NotImplemented
        return self._builder._matmul(other, self)

    def __neg__(self) -> TensorHolder:
        return self._builder._single("Neg", [self], {})

    def __repr__(self) -> str:
        return f"TensorHolder({self._node.name}:{self._index} {self.desc.type_str()})"


class GraphBuilder:
    """Builds one Graph at a time, eagerly (CANN ``ge.es.GraphBuilder``).

    Example::

        builder = GraphBuilder("my_graph")
        x = builder.create_input(0, shape=[2, 2])
        y = x + builder.create_const_float(1.0)
        builder.set_graph_output(y, 0)
        graph = builder.build_and_reset()
    """

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError("graph name must be a str")
        self._name = name or "graph"
        self._reset()

    def _reset(self) -> None:
        self._graph = Graph(self._name)
        self._outputs: dict[int, TensorHolder] = {}
        self._const_values: dict[Port, np.ndarray] = {}

    @property
    def name(self) -> str:
        """The name of the graphs this builder makes."""
        return self._name

    @property
    def graph(self) -> Graph:
        """The graph under construction (read it; edit it through the builder)."""
        return self._graph

    def __repr__(self) -> str:
        return f"GraphBuilder({self._name!r}, {len(self._graph)} nodes)"

    # ----- checks ----------------------------------------------------------------------------
    def _check_holder(self, holder: Any, operation: str) -> TensorHolder:
        if not isinstance(holder, TensorHolder):
            raise TypeError(f"{operation}: expected a TensorHolder, got {type(holder).__name__}")
        if holder._builder is not self:
            raise GeError(
                PARAM_INVALID,
                f"{operation}: tensor {holder.name} belongs to GraphBuilder "
                f"{holder._builder.name!r}, not {self._name!r}; tensors of different builders "
                "cannot be combined",
            )
        if holder._graph is not self._graph:
            raise GeError(
                PARAM_INVALID,
                f"{operation}: tensor {holder.name} belongs to a graph that build_and_reset "
                f"already returned; create it again in GraphBuilder {self._name!r}",
            )
        return holder

    # ----- node creation ---------------------------------------------------------------------
    def _add_node(
        self,
        op_type: str,
        inputs: Sequence[TensorHolder | None],
        attrs: Mapping[str, Any],
        *,
        name: str | None = None,
        output_descs: Sequence[TensorDesc] | None = None,
    ) -> Node:
        """Create, wire and infer one node; on any error the graph is left unchanged."""
        schema = get_schema(op_type)
        ports = [None if h is None else self._check_holder(h, op_type).port for h in inputs]
        deps = [self._check_holder(h, f"control dependency of {op_type}") for h in _scope_deps()]
        if name is None:
            name = self._graph.unique_name(op_type)
        elif self._graph.has_node(name):
            raise GeError(PARAM_INVALID, f"graph {self._name} already has a node named {name!r}")
        where = f"node {name} ({op_type})"
        all_attrs = {**attrs, **_scope_attrs()}
        normalized = normalize_attrs(schema, all_attrs, where)
        if output_descs is None:
            try:
                count = schema.output_count(normalized, len(ports))
            except GeError:
                raise
            except Exception as err:
                raise GeError(PARAM_INVALID, f"{where}: bad attrs: {err}") from err
            output_descs = [TensorDesc() for _ in range(count)]
        node = self._graph.add_node(
            op_type,
            ports,
            name=name,
            attrs=_drop_none(normalized),
            output_descs=output_descs,
            control_inputs=[d.node for d in deps],
        )
        try:
            attrs_out, descs = infer_node(node, self._const_values)
        except GeError:
            self._graph.remove_node(node)
            raise
        except Exception as err:
            self._graph.remove_node(node)
            raise GeError(INTERNAL_ERROR, f"{where}: inference failed: {err!r}") from err
        node.attrs = _drop_none(attrs_out)
        node.output_descs = descs
        self._propagate(node, attrs_out, descs)
        return node

    def _propagate(self, node: Node, attrs: dict[str, Any], descs: list[TensorDesc]) -> None:
        """Record values known at build time (Consts and small results of known inputs)."""
        if node.op_type == "Const":
            self._const_values[Port(node, 0)] = attrs["value"].numpy()
            return
        try:
            results = propagate_value(node, attrs, descs, self._const_values)
        except Exception as err:  # a build-time convenience only: never fail construction
            logger.debug("not propagating %s (%s): %s", node.name, node.op_type, err)
            return
        for i, value in enumerate(results or ()):
            self._const_values[Port(node, i)] = value

    def _holders(self, node: Node) -> list[TensorHolder]:
        return [TensorHolder._make(self, node, i) for i in range(node.num_outputs)]

    def _single(
        self, op_type: str, inputs: Sequence[TensorHolder | None], attrs: Mapping[str, Any]
    ) -> TensorHolder:
        return TensorHolder._make(self, self._add_node(op_type, inputs, attrs), 0)

    # ----- tensor-like values --------------------------------------------------------------
    def _const(self, array: np.ndarray) -> TensorHolder:
        return self._single("Const", [], {"value": Tensor(np.asarray(array, order="C"))})

    def _to_holder(self, value: Any, where: str) -> TensorHolder:
        """A TensorHolder as is; a TensorLike (CANN rule) as a new Const."""
        if isinstance(value, TensorHolder):
            return self._check_holder(value, where)
        if isinstance(value, Tensor):
            return self._const(value.numpy())
        if isinstance(value, (np.ndarray, np.generic)):
            return self._const(np.asarray(value))
        if isinstance(value, bool):
            return self._const(np.array(value, dtype=np.bool_))
        if isinstance(value, int):
            return self.create_scalar_int64(value)
        if isinstance(value, float):
            return self.create_scalar_float(value)
        if isinstance(value, (list, tuple)):
            array = _nested_array(value, where)
            if array.dtype.kind == "f":
                return self.create_const_float(array)
            return self.create_const_int64(array)
        raise TypeError(
            f"{where}: expected a TensorHolder, a number or a (nested) list of numbers, "
            f"got {type(value).__name__}"
        )

    def _promote(self, value: Any, like: TensorHolder, where: str) -> TensorHolder:
        """A TensorHolder as is; a Python/NumPy value as a Const of ``like``'s dtype."""
        if isinstance(value, TensorHolder):
            return self._check_holder(value, where)
        dtype = like.get_data_type()
        raw = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"{where}: cannot use {value!r} as a tensor")
        target = dtype.np_dtype
        with np.errstate(invalid="ignore", over="ignore"):
            converted = raw.astype(target)
        if target.kind in "biu" and not np.array_equal(converted, raw):
            raise GeError(
                DATATYPE_INVALID,
                f"{where}: {value!r} cannot be represented in {like.name}'s dtype "
                f"{dtype.name}; Cast the tensor or use a value of that type",
            )
        return self._const(converted)

    def _binary(self, op_type: str, a: Any, b: Any) -> TensorHolder:
        if isinstance(a, TensorHolder):
            self._check_holder(a, op_type)
            b = self._promote(b, a, op_type)
        else:
            self._check_holder(b, op_type)
            a = self._promote(a, b, op_type)
        return self._single(op_type, [a, b], {})

    def _matmul(self, a: Any, b: Any) -> TensorHolder:
        if isinstance(a, TensorHolder):
            b = self._promote(b, self._check_holder(a, "matmul"), "matmul")
        else:
            a = self._promote(a, self._check_holder(b, "matmul"), "matmul")
        batched = len(a.get_shape()) > 2 or len(b.get_shape()) > 2
        return self._single("BatchMatMulV2" if batched else "MatMulV2", [a, b], {})

    # ----- inputs ----------------------------------------------------------------------------
    def create_input(
        self,
        index: int,
        name: str | None = None,
        data_type: DataType = DataType.DT_FLOAT,
        format: Format = Format.FORMAT_ND,
        shape: Sequence[int] | None = None,
    ) -> TensorHolder:
        """A graph input (a ``Data`` node, default name ``input_<index>``).

        ``shape`` None means a scalar, as in CANN; use -1 for dims not known yet.
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("input index must be an int")
        if index < 0:
            raise GeError(PARAM_INVALID, f"create_input: index {index} must be ≥ 0")
        if shape is not None and (
            not isinstance(shape, (list, tuple))
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        ):
            raise TypeError(f"shape must be a list of ints, got {shape!r}")
        for data in self._graph.inputs:
            if data.attrs.get("index") == index:
                raise GeError(
                    PARAM_INVALID,
                    f"create_input: input index {index} is already used by {data.name}; each "
                    "graph input needs its own index (0, 1, 2 …)",
                )
        desc = TensorDesc(as_data_type(data_type), normalize_shape(shape), Format(format))
        node = self._add_node(
            "Data",
            [],
            {"index": index},
            name=name or f"input_{index}",
            output_descs=[desc],
        )
        return TensorHolder._make(self, node, 0)

    def create_inputs(self, num: int, start_index: int = 0) -> list[TensorHolder]:
        """``num`` float32 scalar inputs with indexes ``start_index …``."""
        if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
            raise TypeError("number of inputs must be a positive int")
        if isinstance(start_index, bool) or not isinstance(start_index, int) or start_index < 0:
            raise TypeError("start_index must be a non-negative int")
        return [self.create_input(i) for i in range(start_index, start_index + num)]

    # ----- constants -------------------------------------------------------------------------
    def _create_const(
        self, value: Any, shape: Sequence[int] | None, dtype: np.dtype, what: str
    ) -> TensorHolder:
        array = _const_array(value, dtype, what)
        if shape is not None:
            dims = normalize_shape(shape, where=f"{what} shape")
            count = int(np.prod(dims, dtype=np.int64))
            if any(d < 0 for d in dims) or count != array.size:
                raise GeError(
                    SHAPE_INVALID,
                    f"{what}: {array.size} value(s) do not fill shape {list(dims)} "
                    f"({count} elements)",
                )
            array = array.reshape(dims)
        return self._const(array)

    def create_const_float(self, value: Any, shape: Sequence[int] | None = None) -> TensorHolder:
        """A float32 Const from a number or a list (``shape`` None: scalar or 1-D)."""
        return self._create_const(value, shape, np.dtype(np.float32), "create_const_float")

    def create_const_int32(self, value: Any, shape: Sequence[int] | None = None) -> TensorHolder:
        """An int32 Const from an int or a list of ints."""
        return self._create_const(value, shape, np.dtype(np.int32), "create_const_int32")

    def create_const_int64(self, value: Any, shape: Sequence[int] | None = None) -> TensorHolder:
        """An int64 Const from an int or a list of ints."""
        return self._create_const(value, shape, np.dtype(np.int64), "create_const_int64")

    def create_const_uint32(self, value: Any, shape: Sequence[int] | None = None) -> TensorHolder:
        """A uint32 Const from an int or a list of ints."""
        return self._create_const(value, shape, np.dtype(np.uint32), "create_const_uint32")

    def create_const_uint64(self, value: Any, shape: Sequence[int] | None = None) -> TensorHolder:
        """A uint64 Const from an int or a list of ints."""
        return self._create_const(value, shape, np.dtype(np.uint64), "create_const_uint64")

    def create_vector_int64(self, values: Sequence[int]) -> TensorHolder:
        """A 1-D int64 Const."""
        if not isinstance(values, (list, tuple)):
            raise TypeError("create_vector_int64 takes a list of ints")
        return self._create_const(
            list(values), [len(values)], np.dtype(np.int64), "create_vector_int64"
        )

    def _create_scalar(self, value: Any, dtype: np.dtype, what: str) -> TensorHolder:
        if isinstance(value, (list, tuple, np.ndarray)):
            raise TypeError(f"{what} takes a single number")
        return self._create_const(value, [], dtype, what)

    def create_scalar_float(self, value: float) -> TensorHolder:
        """A float32 scalar Const."""
        return self._create_scalar(value, np.dtype(np.float32), "create_scalar_float")

    def create_scalar_int32(self, value: int) -> TensorHolder:
        """An int32 scalar Const."""
        return self._create_scalar(value, np.dtype(np.int32), "create_scalar_int32")

    def create_scalar_int64(self, value: int) -> TensorHolder:
        """An int64 scalar Const."""
        return self._create_scalar(value, np.dtype(np.int64), "create_scalar_int64")

    def create_scalar_uint32(self, value: int) -> TensorHolder:
        """A uint32 scalar Const."""
        return self._create_scalar(value, np.dtype(np.uint32), "create_scalar_uint32")

    def create_scalar_uint64(self, value: int) -> TensorHolder:
        """A uint64 scalar Const."""
        return self._create_scalar(value, np.dtype(np.uint64), "create_scalar_uint64")

    # ----- variables -------------------------------------------------------------------------
    def create_variable(
        self,
        index: int,
        name: str,
        *,
        initial_value: Any = None,
        data_type: DataType | None = None,
        shape: Sequence[int] | None = None,
        format: Format = Format.FORMAT_ND,
    ) -> TensorHolder:
        """A ``Variable`` node called ``name`` (variables are shared by name in a session).

        ``initial_value`` (a NumPy array) gives dtype, shape and start value (attr ``value``).
        Without it the variable is ``data_type`` (default float32) of ``shape`` (default scalar)
        and starts at zeros; ``set_shape`` / ``set_data_type`` may refine it, as in CANN.
        """
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("variable index must be an int")
        if not isinstance(name, str) or not name:
            raise TypeError("variable name must be a non-empty str")
        attrs: dict[str, Any] = {"index": index}
        if initial_value is not None:
            array = np.asarray(
                initial_value.numpy() if isinstance(initial_value, Tensor) else initial_value
            )
            try:
                from_numpy_dtype(array.dtype)
            except GeError as err:
                raise GeError(
                    err.code, f"create_variable {name!r}: initial_value: {err.message}"
                ) from None
            if data_type is not None and as_data_type(data_type) != from_numpy_dtype(array.dtype):
                raise GeError(
                    DATATYPE_INVALID,
                    f"create_variable {name!r}: initial_value is {array.dtype} but data_type is "
                    f"{as_data_type(data_type).name}",
                )
            if shape is not None and tuple(normalize_shape(shape)) != array.shape:
                raise GeError(
                    SHAPE_INVALID,
                    f"create_variable {name!r}: initial_value has shape {list(array.shape)} but "
                    f"shape is {list(shape)}",
                )
            value = Tensor(np.array(array, copy=True, order="C"), format=Format(format))
            attrs["value"] = value
            desc = TensorDesc(value.dtype, value.shape, Format(format))
        else:
            dtype = DataType.DT_FLOAT if data_type is None else as_data_type(data_type)
            desc = TensorDesc(dtype, normalize_shape(shape), Format(format))
        node = self._add_node("Variable", [], attrs, name=name, output_descs=[desc])
        return TensorHolder._make(self, node, 0)

    # ----- outputs, control edges, attributes ------------------------------------------------
    def set_graph_output(self, tensor: TensorHolder, index: int) -> None:
        """Make ``tensor`` graph output number ``index``."""
        self._check_holder(tensor, "set_graph_output")
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("output index must be an int")
        if index < 0:
            raise GeError(PARAM_INVALID, f"set_graph_output: index {index} must be ≥ 0")
        self._outputs[index] = tensor

    def add_control_dependency(
        self, dst_tensor: TensorHolder, src_tensors: Sequence[TensorHolder]
    ) -> None:
        """Make the producer of ``dst_tensor`` run after the producers of ``src_tensors``."""
        dst = self._check_holder(dst_tensor, "add_control_dependency")
        if not isinstance(src_tensors, (list, tuple)):
            raise TypeError("src_tensors must be a list of TensorHolder")
        for src in src_tensors:
            self._check_holder(src, "add_control_dependency")
            if src.node is dst.node:
                raise GeError(
                    PARAM_INVALID, f"add_control_dependency: {dst.name} cannot depend on itself"
                )
        for src in src_tensors:
            self._graph.add_control_edge(src.node, dst.node)

    def _set_node_attr(self, tensor: TensorHolder, attr_name: str, value: Any) -> None:
        node = self._check_holder(tensor, "set_node_attr").node
        if not isinstance(attr_name, str):
            raise TypeError("attr name must be a str")
        where = f"node {node.name} ({node.op_type})"
        schema = get_schema(node.op_type)
        old = node.attrs
        node.attrs = _drop_none(normalize_attrs(schema, {**old, attr_name: value}, where))
        try:  # the attr may change the outputs: infer again, keep the old attrs on error
            attrs, node.output_descs = infer_node(node, self._const_values)
            node.attrs = _drop_none(attrs)
        except Exception:
            node.attrs = old
            raise

    def set_node_attr_int64(self, tensor: TensorHolder, attr_name: str, value: int) -> None:
        """Set an int attr on the producer node of ``tensor``."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("value must be an int")
        self._set_node_attr(tensor, attr_name, value)

    def set_node_attr_string(self, tensor: TensorHolder, attr_name: str, value: str) -> None:
        """Set a str attr on the producer node of ``tensor``."""
        if not isinstance(value, str):
            raise TypeError("value must be a str")
        self._set_node_attr(tensor, attr_name, value)

    def set_node_attr_bool(self, tensor: TensorHolder, attr_name: str, value: bool) -> None:
        """Set a bool attr on the producer node of ``tensor``."""
        if not isinstance(value, bool):
            raise TypeError("value must be a bool")
        self._set_node_attr(tensor, attr_name, value)

    def set_graph_attr_int64(self, attr_name: str, value: int) -> None:
        """Set an int attr on the graph."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("value must be an int")
        self._graph.attrs[attr_name] = value

    def set_graph_attr_string(self, attr_name: str, value: str) -> None:
        """Set a str attr on the graph."""
        if not isinstance(value, str):
            raise TypeError("value must be a str")
        self._graph.attrs[attr_name] = value

    def set_graph_attr_bool(self, attr_name: str, value: bool) -> None:
        """Set a bool attr on the graph."""
        if not isinstance(value, bool):
            raise TypeError("value must be a bool")
        self._graph.attrs[attr_name] = value

    # ----- build -----------------------------------------------------------------------------
    def build_and_reset(self, outputs: Sequence[TensorHolder] | None = None) -> Graph:
        """The finished Graph; the builder is then empty, ready for another graph.

        ``outputs`` (a list of TensorHolders, in order) replaces the outputs set with
        ``set_graph_output``. Output indexes must be 0..n-1; Data indexes likewise. Holders of
        the returned graph cannot be used with this builder any more.
        """
        if outputs is not None:
            if not isinstance(outputs, (list, tuple)):
                raise TypeError("outputs must be a list of TensorHolder")
            chosen = [self._check_holder(t, "build_and_reset") for t in outputs]
        else:
            indexes = sorted(self._outputs)
            if indexes != list(range(len(indexes))):
                raise GeError(
                    PARAM_INVALID,
                    f"graph {self._name}: outputs were set at indexes {indexes}; they must be "
                    f"0..{len(indexes) - 1} with none missing",
                )
            chosen = [self._check_holder(self._outputs[i], "build_and_reset") for i in indexes]
        graph = self._graph
        if not chosen and not any(
            get_schema(n.op_type).has(Trait.STATEFUL) and n.inputs for n in graph
        ):
            raise GeError(
                PARAM_INVALID,
                f"graph {self._name} has no outputs; call set_graph_output(tensor, index) or "
                "pass build_and_reset(outputs=[...])",
            )
        graph.set_outputs([t.port for t in chosen])
        graph.validate()
        self._reset()
        return graph


# ----- value helpers ----------------------------------------------------------------------------


def _drop_none(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attrs without the ones whose (default) value is None, i.e. "not set".

    ``normalize_attrs`` fills a None default (Variable's ``value``) but rejects an explicit None,
    so nodes keep only set attrs and can be normalized again by later passes.
    """
    return {k: v for k, v in attrs.items() if v is not None}


def _nested_array(value: Sequence[Any], where: str) -> np.ndarray:
    """A NumPy array from a (nested) list of numbers; GeError when ragged."""
    try:
        array = np.array(value)
    except ValueError:
        raise GeError(
            SHAPE_INVALID, f"{where}: nested lists must all have the same length"
        ) from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected numbers, got {value!r}")
    return array


def _const_array(value: Any, dtype: np.dtype, what: str) -> np.ndarray:
    """``value`` (number / list / array) as an array of ``dtype``, checking type and range."""
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, (list, tuple)):
        raw = _nested_array(value, what) if value else np.zeros((0,), dtype=dtype)
    elif isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what}: expected a number, got a bool")
    elif isinstance(value, (int, float, np.integer, np.floating, np.ndarray)):
        raw = np.asarray(value)
    else:
        raise TypeError(f"{what}: expected a number or a list of numbers, got {value!r}")
    if dtype.kind in "iu":
        if raw.dtype.kind not in "iu" and raw.size:
            raise TypeError(f"{what}: expected integers, got {raw.dtype} values")
        if raw.size:
            info = np.iinfo(dtype)
            low, high = int(raw.min()), int(raw.max())
            if low < info.min or high > info.max:
                raise GeError(
                    PARAM_INVALID,
                    f"{what}: values [{low}, {high}] do not fit {dtype} ([{info.min}, {info.max}])",
                )
    elif raw.dtype.kind not in "iuf" and raw.size:
        raise TypeError(f"{what}: expected numbers, got {raw.dtype} values")
    return raw.astype(dtype)


__all__ = [
    "MAX_PROPAGATED_ELEMENTS",
    "DataType",
    "Format",
    "GraphBuilder",
    "TensorHolder",
    "attr_scope",
    "control_dependency_scope",
]
