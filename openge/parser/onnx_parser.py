"""ONNX front end: ``parse_onnx`` turns an ONNX model into a Graph of catalog ops (parser layer).

The parser works on static shapes: graph inputs get their dims from the model or from the
``input_shape`` option (ATC syntax), and every value's dtype and shape is inferred as the
catalog nodes are emitted (with the catalog's own inference), so each ONNX op can be mapped
exactly onto catalog ops — attributes that depend on shapes (``auto_pad``, Flatten's 2-D view,
Softmax before opset 13 …) are resolved here. Values computable at parse time (constants,
shapes and small results of them) are tracked so that inputs ONNX passes as tensors (Reshape's
shape, reduce axes, Slice bounds …) become the compile-time constants the catalog needs.

The ONNX op → catalog mapping tables live in ``openge.parser.mappings``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openge.errors import DATATYPE_INVALID, PARAM_INVALID, SHAPE_INVALID, UNSUPPORTED, GeError
from openge.graph import DataType, Format, Graph, Port, Tensor, TensorDesc
from openge.graph.shape_range import RANGE_ATTR, encode_range, parse_shape_ranges
from openge.ops import Trait, evaluate, get_schema, has_op, infer_node
from openge.ops.schema import ValueNeededError
from openge.parser.limits import OPTION_KEYS as LIMIT_OPTION_KEYS
from openge.parser.limits import ParseBudget
from openge.parser.tensors import (
    MAX_TENSOR_BYTES,
    onnx_dtype,
    onnx_elem_type,
    sparse_to_array,
    tensor_to_array,
)

# Re-exported: mappings and callers import these from here.
__all__ = [
    "OnnxNode",
    "ParseContext",
    "onnx_dtype",
    "onnx_elem_type",
    "parse_onnx",
    "run_subgraph",
    "supported_ops",
    "tensor_to_array",
]
from openge.parser.topo import topological_order
from openge.parser.validate import check_model

logger = logging.getLogger(__name__)

#: Oldest default-domain opset the parser accepts (as GE's ONNX parser).
MIN_OPSET = 7
#: Results with at most this many elements are computed at parse time when all inputs are known.
MAX_FOLD_ELEMENTS = 1 << 16

_OPTION_KEYS = ("input_shape", "input_format", *LIMIT_OPTION_KEYS)


# ----- loading --------------------------------------------------------------------------------


def _load(model: Any) -> tuple[Any, str | None, int]:
    """(ModelProto without external data loaded, folder external data is relative to, the
    model's size in bytes)."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model, None, model.ByteSize()
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        try:
            return onnx.load_model_from_string(data), None, len(data)
        except Exception as err:  # protobuf raises its own DecodeError
            raise GeError(
                PARAM_INVALID, f"bytes given to parse_onnx are not an ONNX model: {err}"
            ) from err
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if isinstance(path, bytes) or "\0" in path:
            raise GeError(PARAM_INVALID, f"ONNX model path {path!r} is not a valid path")
        if not os.path.isfile(path):  # a FIFO or device would block or never end
            raise GeError(
                PARAM_INVALID, f"ONNX model file {path!r} does not exist or is not a file"
            )
        try:
            with open(path, "rb") as f:
                data = f.read()
            proto = onnx.load_model_from_string(data)
        except Exception as err:
            raise GeError(PARAM_INVALID, f"cannot read ONNX model {path!r}: {err}") from err
        return proto, os.path.dirname(os.path.abspath(path)), len(data)
    raise GeError(
        PARAM_INVALID,
        f"parse_onnx takes a file path, bytes or an onnx.ModelProto, not {type(model).__name__}",
    )


# ----- options ----------------------------------------------------------------------------------


def parse_input_shape(text: str) -> dict[str, tuple[int, ...]]:
    """Parse ATC's ``"name:1,3,224,224;name2:..."`` into {name: dims}; GeError when malformed."""
    shapes: dict[str, tuple[int, ...]] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, dims = part.rpartition(":")
        name = name.strip()
        try:
            values = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
        except ValueError:
            values = None  # type: ignore[assignment]
        if not sep or not name or values is None or any(d < -1 for d in values):
            raise GeError(
                PARAM_INVALID,
                f'option input_shape = {text!r} is not valid: write "name:d0,d1,...;name2:..." '
                f"(ATC syntax; -1 keeps a dim dynamic); bad part {part!r}",
            )
        shapes[name] = values
    return shapes


def _check_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise GeError(PARAM_INVALID, "parse_onnx options must be a dict of str to str")
    out: dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(value, str):
            raise GeError(
                PARAM_INVALID,
                f"parse_onnx option {key} = {value!r}: option values are strings",
            )
        if key not in _OPTION_KEYS:
            logger.warning(
                "parse_onnx option %r is not known; it is ignored (known: %s)",
                key,
                ", ".join(_OPTION_KEYS),
            )
        out[key] = value
    return out


# ----- the per-node view mappings see ----------------------------------------------------------


@dataclass
class OnnxNode:
    """One ONNX node as a mapping sees it: inputs as Ports, decoded attributes, the opset."""

    op_type: str
    name: str
    domain: str
    opset: int
    inputs: list[Port | None]
    input_names: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def attr(self, key: str, default: Any = None) -> Any:
        """An attribute's value (strings decoded, tensors as arrays), or ``default``."""
        return self.attrs.get(key, default)

    def input(self, index: int) -> Port:
        """Required input ``index``; GeError naming the node when it is absent."""
        port = self.opt(index)
        if port is None:
            raise GeError(PARAM_INVALID, f"{self.where}: input {index} is required")
        return port

    def opt(self, index: int) -> Port | None:
        """Optional input ``index`` (None when absent or given as the empty name)."""
        return self.inputs[index] if index < len(self.inputs) else None

    def has_input(self, index: int) -> bool:
        """True when input ``index`` is given."""
        return self.opt(index) is not None

    @property
    def num_outputs(self) -> int:
        """Outputs requested (trailing empty names dropped)."""
        return len(self.outputs)

    def wants_output(self, index: int) -> bool:
        """True when output ``index`` is requested by the model."""
        return index < len(self.outputs) and self.outputs[index] != ""

    @property
    def where(self) -> str:
        """``ONNX node NAME (OpType, opset N)`` for messages."""
        dom = f"{self.domain} v" if self.domain not in ("", "ai.onnx") else "opset "
        return f"ONNX node {self.name} ({self.op_type}, {dom}{self.opset})"


MappingFn = Callable[[OnnxNode, "ParseContext"], Sequence[Port | None]]


class ParseContext:
    """What a mapping uses to emit catalog nodes: descs, known values, naming and errors."""

    def __init__(
        self, graph: Graph, opsets: dict[str, int], budget: ParseBudget | None = None
    ) -> None:
        self.graph = graph
        self.opsets = opsets
        self.budget = budget or ParseBudget(0)
        self.values: dict[Port, np.ndarray] = {}
        self.node: OnnxNode | None = None
        self.scope: Any = None
        self._const_cache: dict[tuple, Port] = {}
        #: top-level nodes whose shapes or shape-deciding values are not known at parse time
        #: become FrameworkOp nodes, converted at run time (openge.parser.deferred)
        self.allow_defer = False
        self.proto: Any = None
        self._value_types: dict[str, tuple[DataType, list[int] | None]] | None = None
        self._consumed: set[str] | None = None

    # ----- errors ------------------------------------------------------------------------
    def error(self, message: str, code: int = PARAM_INVALID) -> GeError:
        """A GeError naming the ONNX node being converted."""
        where = self.node.where if self.node is not None else "ONNX model"
        return GeError(code, f"{where}: {message}")

    def unsupported(self, message: str) -> GeError:
        """A GeError (UNSUPPORTED) for a case openge refuses rather than risk a wrong result."""
        return self.error(f"not supported: {message}", UNSUPPORTED)

    # ----- value queries -----------------------------------------------------------------
    @staticmethod
    def desc(port: Port) -> TensorDesc:
        """The TensorDesc of ``port``."""
        return port.desc

    @staticmethod
    def shape(port: Port) -> tuple[int, ...]:
        """The static shape of ``port``."""
        return port.desc.shape

    @staticmethod
    def dtype(port: Port) -> DataType:
        """The dtype of ``port``."""
        return port.desc.dtype

    @staticmethod
    def rank(port: Port) -> int:
        """The rank of ``port``."""
        return len(port.desc.shape)

    def value(self, port: Port | None) -> np.ndarray | None:
        """The value of ``port`` when known at parse time, else None."""
        if port is None:
            return None
        return self.values.get(port)

    def require_value(self, port: Port | None, what: str) -> np.ndarray:
        """The parse-time value of ``port``; GeError telling how to make it constant."""
        if port is None:
            raise self.error(f"{what} is required")
        value = self.values.get(port)
        if value is None:
            source = _source_inputs(port)
            hint = (
                f"; it comes from graph input(s) {', '.join(source)}: make them initializers "
                "or bind their values with parse_onnx(..., constant_inputs={name: array})"
                if source
                else ""
            )
            if self.budget.exhausted:
                hint += (
                    "; parse-time values reached the parser's limit "
                    "(option openge.parser.maxGeneratedBytes)"
                )
            where = self.node.where if self.node is not None else "ONNX model"
            raise ValueNeededError(
                SHAPE_INVALID,
                f"{where}: {what} must be known at compile time (openge compiles static "
                f"shapes){hint}",
                port=port,
            )
        return value

    def int_list(self, port: Port | None, what: str) -> list[int]:
        """A constant integer tensor as a list of ints."""
        value = self.require_value(port, what)
        if value.dtype.kind not in "iu":
            raise self.error(
                f"{what} must be an integer tensor, got {value.dtype}", DATATYPE_INVALID
            )
        return [int(v) for v in value.reshape(-1)]

    # ----- emitting --------------------------------------------------------------------------
    def _name(self, hint: str) -> str:
        base = self.node.name if self.node is not None else "node"
        if not self.graph.has_node(base):
            return base
        return self.graph.unique_name(f"{base}/{hint}")

    def emit(
        self,
        op_type: str,
        inputs: Sequence[Port | None],
        attrs: Mapping[str, Any] | None = None,
        *,
        num_outputs: int | None = None,
        name: str | None = None,
    ) -> list[Port]:
        """Add a catalog node, infer its outputs (GeError naming the ONNX node) and return them.

        When every input is known at parse time and the result is small, the result is computed
        with the op's kernel and remembered (the node stays in the graph).
        """
        if not has_op(op_type):
            raise self.unsupported(f"needs catalog op {op_type}, which openge does not have yet")
        schema = get_schema(op_type)
        attrs = dict(attrs or {})
        if num_outputs is None:
            num_outputs = schema.output_count(attrs, len(inputs))
        budget = self.budget
        if budget.nodes >= budget.max_nodes:  # the message (an f-string) only when it is needed
            budget.add_node(self.node.where if self.node is not None else "ONNX model")
        budget.nodes += 1
        node = self.graph.add_node(
            op_type,
            list(inputs),
            name=name or self._name(op_type),
            attrs=attrs,
            num_outputs=num_outputs,
        )
        try:
            norm, descs = infer_node(node, self.values)
        except ValueNeededError:
            self._drop(node)
            raise
        except GeError as err:
            self._drop(node)
            raise self.error(err.message, err.code) from err
        for i, desc in enumerate(descs):
            if desc.size_bytes > MAX_TENSOR_BYTES:
                self._drop(node)
                raise self.error(
                    f"output {i} would be {desc.type_str()}, more bytes than int64 holds",
                    SHAPE_INVALID,
                )
        node.output_descs = descs
        ports = [node.output(i) for i in range(node.num_outputs)]
        self._fold(node, schema, norm, descs, ports)
        return ports

    def emit1(
        self,
        op_type: str,
        inputs: Sequence[Port | None],
        attrs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Port:
        """``emit`` for single-output ops: the output Port."""
        return self.emit(op_type, inputs, attrs, **kwargs)[0]

    def _drop(self, node: Any) -> None:
        with contextlib.suppress(GeError):  # a fresh node has no users
            self.graph.remove_node(node)

    def _fold(self, node, schema, attrs, descs, ports) -> None:
        if schema.kernel is None or schema.has(Trait.NO_FOLD) or schema.has(Trait.STATEFUL):
            return
        inputs: list[np.ndarray | None] = []
        for port in node.inputs:  # first, as most nodes have an input unknown at parse time
            if port is None:
                inputs.append(None)
                continue
            value = self.values.get(port)
            if value is None:
                return
            inputs.append(value)
        if not all(d.is_static for d in descs) or sum(d.numel for d in descs) > MAX_FOLD_ELEMENTS:
            return
        if not self.budget.try_charge(sum(d.size_bytes for d in descs)):
            return
        try:
            outs = evaluate(schema, attrs, inputs, descs)
        except GeError as err:  # the kernel rejects these constant inputs: say where
            raise self.error(f"{node.name} ({node.op_type}): {err.message}", err.code) from err
        except Exception as err:  # a kernel bug: leave it to run time, where it is reported
            logger.debug("parse-time evaluation of %s failed: %s", node.name, err)
            return
        for port, value in zip(ports, outs):
            self.values[port] = value

    def reserve_nodes(self, count: int) -> None:
        """Check, before a mapping unrolls ``count`` steps (one node or more each), that the
        node limit holds them (GeError naming the node otherwise)."""
        self.budget.check_nodes(int(count), self.node.where if self.node else "ONNX model")

    def reserve(self, nbytes: int, what: str) -> None:
        """Check, before a mapping computes arrays of ``nbytes``, that the parse budget holds
        them (GeError naming the node otherwise)."""
        where = self.node.where if self.node is not None else "ONNX model"
        if nbytes < 0:  # a negative dim or attribute went into the size
            raise GeError(
                PARAM_INVALID,
                f"{where}: {what}: the node's dims or attributes give a negative size",
            )
        self.budget.check(int(nbytes), f"{where}: {what}")

    def const(
        self,
        value: Any,
        dtype: DataType | np.dtype | None = None,
        *,
        name: str | None = None,
        from_file: bool = False,
    ) -> Port:
        """A Const node holding ``value`` (small equal constants are shared). Arrays a mapping
        computes count against the parse budget; ``from_file`` ones (initializers, Constant
        attributes) are the file's own data and do not."""
        array = np.asarray(value)
        if dtype is not None:
            target = dtype.np_dtype if isinstance(dtype, DataType) else np.dtype(dtype)
            array = array.astype(target)
        key = None
        if array.size <= 64 and name is None:
            key = (array.dtype.str, array.shape, array.tobytes())
            cached = self._const_cache.get(key)
            if cached is not None:
                return cached
        where = self.node.where if self.node is not None else "ONNX model"
        self.budget.add_node(where)
        if not from_file and array.nbytes > 64:
            self.budget.charge(array.nbytes, f"{where}: a {array.nbytes}-byte constant")
        node = self.graph.add_node(
            "Const",
            name=name or self._name("Const"),
            attrs={"value": Tensor(array)},
            output_descs=[TensorDesc(_dtype_of(array), array.shape)],
        )
        port = node.output(0)
        self.values[port] = array
        if key is not None:
            self._const_cache[key] = port
        return port

    def as_const(self, port: Port, what: str) -> Port:
        """``port`` itself when it is a Const, else a new Const with its parse-time value."""
        if port.node.op_type == "Const":
            return port
        return self.const(self.require_value(port, what))

    # ----- small composition helpers ---------------------------------------------------------
    def cast(self, port: Port, dtype: DataType) -> Port:
        """``port`` converted to ``dtype`` (no node when it already has it)."""
        if self.dtype(port) == dtype:
            return port
        return self.emit1("Cast", [port], {"dst_type": int(dtype)})

    def reshape(self, port: Port, shape: Sequence[int]) -> Port:
        """``port`` reshaped to the static ``shape`` (no node when unchanged)."""
        shape = tuple(int(d) for d in shape)
        if self.shape(port) == shape:
            return port
        return self.emit1("Reshape", [port, self.const(np.array(shape, dtype=np.int64))])

    def transpose(self, port: Port, perm: Sequence[int]) -> Port:
        """``port`` with axes permuted (no node for the identity permutation)."""
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return port
        return self.emit1("Transpose", [port, self.const(np.array(perm, dtype=np.int64))])

    def scalar(self, value: Any, like: Port | DataType) -> Port:
        """A 0-D constant of ``like``'s dtype."""
        dtype = like if isinstance(like, DataType) else self.dtype(like)
        return self.const(np.array(value, dtype=dtype.np_dtype))


def _dtype_of(array: np.ndarray) -> DataType:
    from openge.graph import from_numpy_dtype

    return from_numpy_dtype(array.dtype)


def _source_inputs(port: Port) -> list[str]:
    """Names of the Data nodes ``port`` is computed from."""
    seen: set[str] = set()
    found: list[str] = []
    stack = [port.node]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Data":
            found.append(node.name)
        stack.extend(p.node for p in node.inputs if p is not None)
    return sorted(found)


# ----- the parser ------------------------------------------------------------------------------


def _decode_attr(attr: Any, where: str, base_dir: str | None) -> Any:
    import onnx

    kind = attr.type
    A = onnx.AttributeProto
    if kind == A.FLOAT:
        return float(attr.f)
    if kind == A.INT:
        return int(attr.i)
    if kind == A.STRING:
        return attr.s.decode("utf-8", errors="replace")
    if kind == A.TENSOR:
        return tensor_to_array(attr.t, base_dir, f"{where}: attribute {attr.name}")
    if kind == A.FLOATS:
        return [float(v) for v in attr.floats]
    if kind == A.INTS:
        return [int(v) for v in attr.ints]
    if kind == A.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if kind == A.GRAPH:
        return _Subgraph(attr.name, attr.g)
    if kind == A.GRAPHS:
        return _Unsupported("GRAPHS")
    if kind == A.SPARSE_TENSOR:
        return _Sparse(attr.sparse_tensor)
    if kind in (A.TYPE_PROTO, A.TYPE_PROTOS, A.TENSORS, A.SPARSE_TENSORS):
        return _Unsupported(A.AttributeType.Name(kind))
    raise GeError(PARAM_INVALID, f"{where}: attribute {attr.name} has no value type")


@dataclass(frozen=True)
class _Subgraph:
    name: str
    proto: Any = None


@dataclass(frozen=True)
class _Sparse:
    proto: Any


@dataclass(frozen=True)
class _Unsupported:
    kind: str


def _domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def _node_name(proto: Any, index: int, used: dict[str, int]) -> str:
    """A unique display name for node ``index`` (its own name, else ``OpType_index``); ``used``
    maps each name taken to the next suffix to try, so repeated names cost O(1) each."""
    base = proto.name or f"{proto.op_type}_{index}"
    name = base
    k = used.get(base, 0)
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used[base] = k
    used.setdefault(name, 0)
    return name


def _initializers(graph: Any, where: str) -> dict[str, Any]:
    """A graph's initializers (dense and sparse) by name; GeError when a name repeats."""
    found: dict[str, Any] = {}
    for t in [*graph.initializer, *graph.sparse_initializer]:
        name = t.name if hasattr(t, "name") else t.values.name
        if name in found:
            raise GeError(PARAM_INVALID, f"{where}: initializer {name!r} is defined twice")
        found[name] = t
    return found


class _Scope:
    """ONNX value names → Ports, with initializers created on first use; a subgraph's scope
    falls back to its parent's (outer-scope values are visible inside subgraphs)."""

    def __init__(
        self,
        ctx: ParseContext,
        parent: _Scope | None,
        initializers: dict[str, Any],
        base_dir: str | None,
    ) -> None:
        self.ctx = ctx
        self.parent = parent
        self.initializers = initializers
        self.base_dir = base_dir
        self.values: dict[str, Port] = {}

    def defined(self, name: str) -> bool:
        """True when ``name`` is a value of this scope or an enclosing one."""
        if name in self.values or name in self.initializers:
            return True
        return self.parent is not None and self.parent.defined(name)

    def get(self, name: str) -> Port | None:
        """The Port of ``name`` (None for the empty name); GeError when nothing defines it."""
        if name == "":
            return None
        port = self.values.get(name)
        if port is None and name in self.initializers:
            proto = self.initializers[name]
            where = f"initializer {name}"
            if hasattr(proto, "indices"):  # a SparseTensorProto
                array = sparse_to_array(proto, self.base_dir, where, self.ctx.budget.charge)
            else:
                array = tensor_to_array(proto, self.base_dir, where)
            port = self.ctx.const(array, name=self.ctx.graph.unique_name(name), from_file=True)
            self.values[name] = port
        if port is None and self.parent is not None and self.parent.defined(name):
            return self.parent.get(name)
        if port is None:
            raise GeError(PARAM_INVALID, f"ONNX graph uses value {name!r} that nothing defines")
        return port


def _scan_unsupported(g: Any, opsets: dict[str, int], found: dict, prefix: str) -> None:
    """Record every node of ``g`` (and of its subgraphs) without a mapping."""
    import onnx

    from openge.parser.mappings import lookup

    used: dict[str, int] = {}
    known: dict[tuple[str, str], bool] = {}
    for i, n in enumerate(g.node):
        name = prefix + _node_name(n, i, used)
        dom = _domain(n.domain)
        opset = opsets.get(dom, 1)
        mapped = known.get((dom, n.op_type))
        if mapped is None:
            mapped = known[(dom, n.op_type)] = lookup(dom, n.op_type, opset) is not None
        if not mapped:
            found.setdefault((dom, n.op_type, opset), []).append(name)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _scan_unsupported(a.g, opsets, found, f"{name}/{a.name}/")
            elif a.type == onnx.AttributeProto.GRAPHS:
                for k, sub in enumerate(a.graphs):
                    _scan_unsupported(sub, opsets, found, f"{name}/{a.name}{k}/")


def _convert_nodes(ctx: ParseContext, nodes: list[Any], scope: _Scope, prefix: str) -> None:
    """Convert ONNX nodes (producers first) into catalog nodes, binding outputs in ``scope``."""
    from openge.parser.mappings import known_interface, lookup

    used: dict[str, int] = {}
    names = [prefix + _node_name(n, i, used) for i, n in enumerate(nodes)]
    outer = scope.ctx.scope
    local = set(scope.values) | set(scope.initializers)
    interfaces: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
    for k in topological_order(nodes, names, scope.defined, local):
        proto_node = nodes[k]
        name = names[k]
        dom = _domain(proto_node.domain)
        opset = ctx.opsets.get(dom, 1)
        where = f"ONNX node {name} ({proto_node.op_type})"
        attrs = {a.name: _decode_attr(a, where, scope.base_dir) for a in proto_node.attribute}
        outputs = list(proto_node.output)
        while outputs and outputs[-1] == "":
            outputs.pop()
        node = OnnxNode(
            op_type=proto_node.op_type,
            name=name,
            domain=dom,
            opset=opset,
            inputs=[scope.get(i) for i in proto_node.input],
            input_names=list(proto_node.input),
            outputs=outputs,
            attrs=attrs,
        )
        key = (dom, proto_node.op_type, opset)
        interface = interfaces.get(key)
        if interface is None:
            interface = interfaces[key] = (
                *known_interface(dom, proto_node.op_type, opset),
                lookup(dom, proto_node.op_type, opset),
            )
        known_attrs, max_inputs, fn = interface
        extra = sorted(set(attrs) - known_attrs)
        if extra:
            raise GeError(
                UNSUPPORTED,
                f"{node.where}: attribute(s) {', '.join(extra)} not supported by openge "
                f"(understood: {', '.join(sorted(known_attrs)) or 'none'})",
            )
        if max_inputs is not None and len(proto_node.input) > max_inputs:
            raise GeError(
                UNSUPPORTED,
                f"{node.where}: {len(proto_node.input)} inputs given; openge maps at most "
                f"{max_inputs}",
            )
        for key, value in attrs.items():
            if isinstance(value, (_Unsupported, _Sparse)) and not (
                node.op_type == "Constant" and isinstance(value, _Sparse)
            ):
                raise GeError(
                    UNSUPPORTED, f"{node.where}: attribute {key} of this kind is not supported"
                )
        if fn is None:
            raise GeError(UNSUPPORTED, f"{node.where}: no mapping for this op")
        ctx.node = node
        ctx.scope = scope
        try:
            if _must_defer(ctx, node, scope, proto_node):
                results = _defer(ctx, node, proto_node)
            else:
                try:
                    results = list(fn(node, ctx))
                except ValueNeededError:
                    if not _can_defer(ctx, proto_node, scope):
                        raise
                    results = _defer(ctx, node, proto_node)
        except GeError:
            raise
        except (Exception, RecursionError) as err:  # a mapping meeting a malformed node
            logger.debug("mapping of %s failed", node.where, exc_info=True)
            raise GeError(
                PARAM_INVALID,
                f"{node.where}: cannot convert this node ({type(err).__name__}: {err}); "
                "check its attributes and inputs against the ONNX operator spec",
            ) from err
        finally:
            ctx.node = None
            ctx.scope = outer
        for i, out_name in enumerate(outputs):
            if out_name == "":
                continue
            if i >= len(results) or results[i] is None:
                raise GeError(
                    UNSUPPORTED,
                    f"{node.where}: output {i} ({out_name}) is not supported by openge",
                )
            scope.values[out_name] = results[i]
            # ONNX node output → graph port, for ATC's --out_nodes="node:index" (compiler/boundary)
            produced = ctx.graph.attrs.setdefault("onnx_node_outputs", [])
            produced.append(f"{name}:{i}={results[i].node.name}:{results[i].index}")


def _defer(ctx: ParseContext, node: OnnxNode, proto_node: Any) -> list[Port | None]:
    from openge.parser.deferred import defer_node

    return defer_node(ctx, node, proto_node)


def _can_defer(ctx: ParseContext, proto_node: Any, scope: _Scope) -> bool:
    import onnx

    return (
        ctx.allow_defer
        and scope.parent is None
        and not any(a.type == onnx.AttributeProto.GRAPHS for a in proto_node.attribute)
    )


def _must_defer(ctx: ParseContext, node: OnnxNode, scope: _Scope, proto_node: Any = None) -> bool:
    """An input of unknown shape: the mapping (which may compute with shapes) runs at run time."""
    from openge.parser.deferred import outer_ports

    ports = list(node.inputs)
    if proto_node is not None and scope.parent is None and ctx.allow_defer:
        ports += [p for _, p in outer_ports(proto_node, scope)]
    if not any(p is not None and not p.desc.is_static for p in ports):
        return False
    if not ctx.allow_defer or scope.parent is not None:
        raise ctx.error(
            "inputs of unknown shape inside a subgraph (If/Loop/Scan body) are not supported; "
            "fix the shapes with the input_shape option",
            SHAPE_INVALID,
        )
    return True


def _all_proto_nodes(graph: Any):
    import onnx

    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_proto_nodes(a.g)


def run_subgraph(
    ctx: ParseContext, body: Any, inputs: Sequence[Port | None], prefix: str
) -> list[Port]:
    """Inline a subgraph (an If branch, one Loop/Scan iteration): its formal inputs bound to
    ``inputs``, outer values visible; returns the Ports of its outputs."""
    parent = ctx.scope
    sub = _Scope(
        ctx,
        parent,
        _initializers(body, f"subgraph {body.name}"),
        parent.base_dir if parent is not None else None,
    )
    if len(inputs) != len(body.input):
        raise ctx.error(f"subgraph {body.name} takes {len(body.input)} inputs, {len(inputs)} given")
    for vi, port in zip(body.input, inputs):
        if port is not None:
            sub.values[vi.name] = port
    saved = ctx.node
    try:
        _convert_nodes(ctx, list(body.node), sub, prefix)
    finally:
        ctx.node = saved
        ctx.scope = parent
    return [sub.get(vi.name) for vi in body.output]  # type: ignore[misc]


def parse_onnx(
    model: Any,
    options: Mapping[str, str] | None = None,
    *,
    constant_inputs: Mapping[str, Any] | None = None,
) -> Graph:
    """Parse an ONNX model into an openge Graph (``aclgrphParseONNX``).

    Args:
        model: a file path (external data files are read next to it, memory-mapped), the
            model's bytes, or an ``onnx.ModelProto``.
        options: string options: ``input_shape`` (ATC syntax ``"name:1,3,224,224;name2:..."``,
            fixes dynamic dims of the named inputs), ``input_format`` (layout recorded on the
            inputs: NCHW, NHWC, ND, NCDHW or NDHWC), and the limits that bound an untrusted
            file, ``openge.parser.maxNodes`` and ``openge.parser.maxGeneratedBytes``
            (docs/parser_limits.md).
        constant_inputs: graph inputs to bind to fixed values (they become Const nodes and are
            no longer model inputs) — for inputs that determine shapes, such as a Reshape's
            ``shape`` fed as an input.

    Returns:
        The Graph: ONNX inputs become ``Data`` nodes (index = position among the non-constant
        inputs), initializers ``Const`` nodes, ONNX ops catalog nodes; outputs in ONNX order.

    Raises:
        GeError: unreadable or malformed model (naming the node, initializer or field), opset
            out of range, unsupported ops (all listed at once), inputs with unresolved dynamic
            dims (pass ``input_shape``), a node that cannot be mapped exactly, or a limit
            passed. Nothing else escapes.
    """
    try:
        return _parse(model, options, constant_inputs)
    except GeError:
        raise
    except (Exception, RecursionError) as err:  # last resort: nothing else escapes
        logger.debug("parse_onnx failed", exc_info=True)
        raise GeError(
            PARAM_INVALID, f"ONNX model could not be parsed: {type(err).__name__}: {err}"
        ) from err


def _parse(
    model: Any, options: Mapping[str, str] | None, constant_inputs: Mapping[str, Any] | None
) -> Graph:
    from openge.parser.mappings import missing_needs

    proto, base_dir, size = _load(model)
    opts = _check_options(options)
    budget = ParseBudget(size, opts)
    check_model(proto)
    opsets = {_domain(o.domain): int(o.version) for o in proto.opset_import}
    default_opset = opsets.get("")
    import onnx.defs

    newest = onnx.defs.onnx_opset_version()
    if default_opset is not None and default_opset > newest:
        raise GeError(
            UNSUPPORTED,
            f"ONNX model uses default-domain opset {default_opset}; the installed onnx knows "
            f"opsets up to {newest} (upgrade the onnx package)",
        )
    if default_opset is not None and default_opset < MIN_OPSET:
        proto = _upgrade(proto, default_opset)
        opsets = {_domain(o.domain): int(o.version) for o in proto.opset_import}
        default_opset = opsets[""]
    g = proto.graph
    graph = Graph(g.name or "onnx_graph")
    ctx = ParseContext(graph, opsets, budget)

    # 1. every op must have a mapping (subgraphs included): one error listing all that do not.
    unsupported: dict[tuple[str, str, int], list[str]] = {}
    _scan_unsupported(g, opsets, unsupported, "")
    if unsupported:
        parts = []
        for (dom, op, opset), nodes in sorted(unsupported.items()):
            where = f"opset {opset}" if dom == "" else f"domain {dom} v{opset}"
            shown = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
            lacking = missing_needs(dom, op, opset)
            note = f"; catalog ops missing: {', '.join(lacking)}" if lacking else ""
            parts.append(f"{op} ({where}; nodes: {shown}{note})")
        raise GeError(
            UNSUPPORTED,
            f"ONNX model has {sum(len(v) for v in unsupported.values())} node(s) of "
            f"{len(unsupported)} op type(s) openge cannot convert: " + "; ".join(parts),
        )

    if default_opset is None:
        if any(_domain(n.domain) == "" for n in _all_proto_nodes(g)):
            raise GeError(PARAM_INVALID, "ONNX model imports no default-domain (ai.onnx) opset")
        default_opset = newest  # only other domains' nodes (e.g. ai.onnx.preview.training)

    # 2. initializers (created on first use) and graph inputs.
    initializers = _initializers(g, "ONNX graph")
    bound = dict(constant_inputs or {})
    input_names = [v.name for v in g.input]
    unknown_bound = [k for k in bound if k not in input_names]
    if unknown_bound:
        raise GeError(
            PARAM_INVALID,
            f"constant_inputs names {', '.join(unknown_bound)}; the model's inputs are "
            + ", ".join(input_names),
        )
    with_ranges = parse_shape_ranges(opts.get("input_shape", ""))
    shapes = {k: v[0] for k, v in with_ranges.items()}
    real_inputs = [v for v in g.input if v.name not in initializers and v.name not in bound]
    unknown = [k for k in shapes if k not in {v.name for v in real_inputs}]
    if unknown:
        raise GeError(
            PARAM_INVALID,
            f"input_shape names {', '.join(unknown)}; the model's inputs are "
            + (", ".join(v.name for v in real_inputs) or "(none)"),
        )
    fmt = Format.FORMAT_ND
    if "input_format" in opts:
        fmt = Format.from_layout_name(opts["input_format"])
    scope = _Scope(ctx, None, initializers, base_dir)
    ctx.scope = scope
    dynamic: list[str] = []
    for index, vi in enumerate(real_inputs):
        dtype, dims = _value_type(vi, f"graph input {vi.name}")
        given = shapes.get(vi.name)
        if given is not None:
            if dims is not None and len(dims) != len(given):
                raise GeError(
                    SHAPE_INVALID,
                    f"input_shape gives {vi.name} {len(given)} dims; the model declares "
                    f"{len(dims)} ({_dims_text(dims)})",
                )
            if dims is not None:
                for d, gd in zip(dims, given):
                    if d >= 0 and gd != d:
                        raise GeError(
                            SHAPE_INVALID,
                            f"input_shape gives {vi.name} shape {list(given)}; the model fixes "
                            f"it to {_dims_text(dims)}",
                        )
            dims = list(given)
        if dims is None:
            dynamic.append(f"{vi.name}: {_dims_text(dims)}")
            dims = []
        desc = TensorDesc(dtype, tuple(max(d, -1) for d in dims), fmt)
        if desc.size_bytes > MAX_TENSOR_BYTES:
            raise GeError(
                SHAPE_INVALID,
                f"graph input {vi.name}: {desc.type_str()} is more bytes than int64 holds",
            )
        budget.add_node(f"graph input {vi.name}")
        attrs: dict[str, Any] = {"index": index}
        if vi.name in with_ranges and any(d < 0 for d in with_ranges[vi.name][0]):
            attrs[RANGE_ATTR] = encode_range(with_ranges[vi.name][1])
        node = graph.add_node("Data", name=vi.name, attrs=attrs, output_descs=[desc])
        scope.values[vi.name] = node.output(0)
    if dynamic:
        example = ";".join(f"{d.split(':')[0]}:1,..." for d in dynamic[:2])
        raise GeError(
            SHAPE_INVALID,
            "ONNX model inputs have an unknown rank: "
            + "; ".join(dynamic)
            + f'. Give their shapes with the input_shape option (ATC syntax, e.g. "{example}"; '
            "-1 keeps a dim dynamic)",
        )
    for name, value in bound.items():
        vi = next(v for v in g.input if v.name == name)
        dtype, _ = _value_type(vi, f"graph input {name}")
        scope.values[name] = ctx.const(
            np.asarray(value, dtype=dtype.np_dtype), name=name, from_file=True
        )

    # 3. nodes in dependency order (what needs run-time shapes or values is deferred).
    ctx.allow_defer = True
    ctx.proto = proto
    _convert_nodes(ctx, list(g.node), scope, "")
    ctx.allow_defer = False

    # 4. outputs, checked against the model's declared types.
    outs = []
    for vi in g.output:
        if not scope.defined(vi.name):
            raise GeError(
                PARAM_INVALID,
                f"graph output {vi.name!r}: no node, graph input or initializer defines it",
            )
        port = scope.get(vi.name)
        if port is None:
            raise GeError(PARAM_INVALID, "graph output with an empty name")
        _check_declared(vi, port, bool(shapes))
        outs.append(port)
    graph.set_outputs(outs)
    graph.attrs["onnx_output_names"] = [vi.name for vi in g.output]
    graph.attrs["onnx_opset"] = default_opset
    # Parse-time helpers (Consts, folded chains) nothing uses are dropped.
    _prune(graph)
    graph.validate()
    return graph


def _upgrade(proto: Any, opset: int) -> Any:
    """A model of a default-domain opset below 7 converted to opset 7 with onnx's converter,
    checked first and run in a capped child process (openge.parser.upgrade)."""
    from openge.parser.upgrade import upgrade_model

    return upgrade_model(proto, opset, MIN_OPSET)


def _dims_text(dims: Sequence[int] | None) -> str:
    if dims is None:
        return "unknown rank"
    return "[" + ",".join("?" if d < 0 else str(d) for d in dims) + "]"


def _value_type(vi: Any, where: str) -> tuple[DataType, list[int] | None]:
    t = vi.type
    if t.HasField("optional_type") and t.optional_type.elem_type.HasField("tensor_type"):
        t = t.optional_type.elem_type  # an optional tensor fed at run time is present
    if not t.HasField("tensor_type"):
        kind = t.WhichOneof("value")
        raise GeError(UNSUPPORTED, f"{where} is of ONNX type {kind}; openge supports tensors only")
    tt = t.tensor_type
    dtype = onnx_dtype(tt.elem_type, where)
    if not tt.HasField("shape"):
        return dtype, None
    dims = [int(d.dim_value) if d.HasField("dim_value") else -1 for d in tt.shape.dim]
    return dtype, dims


def _check_declared(vi: Any, port: Port, shapes_overridden: bool) -> None:
    t = vi.type
    if not t.HasField("tensor_type"):
        raise GeError(UNSUPPORTED, f"graph output {vi.name}: only tensor outputs are supported")
    tt = t.tensor_type
    desc = port.desc
    if tt.elem_type:
        declared = onnx_dtype(tt.elem_type, f"graph output {vi.name}")
        if declared != desc.dtype:
            raise GeError(
                DATATYPE_INVALID,
                f"graph output {vi.name}: the model declares {declared.short_name} but the "
                f"converted graph computes {desc.dtype.short_name} (openge mapping error)",
            )
    if tt.HasField("shape") and not shapes_overridden and desc.is_static:
        dims = [int(d.dim_value) if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        if len(dims) != len(desc.shape) or any(d >= 0 and d != s for d, s in zip(dims, desc.shape)):
            raise GeError(
                SHAPE_INVALID,
                f"graph output {vi.name}: the model declares shape {_dims_text(dims)} but the "
                f"converted graph computes {list(desc.shape)}",
            )


def _prune(graph: Graph) -> None:
    """Remove nodes (not Data) that no graph output depends on."""
    live: set[str] = set()
    stack = [p.node for p in graph.outputs]
    while stack:
        node = stack.pop()
        if node.name in live:
            continue
        live.add(node.name)
        stack.extend(p.node for p in node.inputs if p is not None)
        stack.extend(node.control_inputs)
    if all(n.name in live or n.op_type == "Data" for n in graph):
        return  # nothing to prune: skip the ordering
    for node in reversed(graph.topological_order()):
        if node.name not in live and node.op_type != "Data":
            graph.remove_node(node)


def supported_ops(opset: int | None = None) -> list[str]:
    """The default-domain ONNX op types ``parse_onnx`` maps at ``opset`` (default: newest)."""
    import onnx.defs

    from openge.parser.mappings import registered

    opset = opset or onnx.defs.onnx_opset_version()
    return sorted(
        op for (dom, op) in registered() if dom == "" and registered()[(dom, op)].fn_for(opset)
    )
