"""Op schemas: inputs, outputs, typed attrs with defaults, inference and kernel of one op type."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, Graph, Tensor, TensorDesc, as_data_type


class AttrType(Enum):
    """The value type of an op attribute (mirrors GE's attr kinds)."""

    INT = auto()
    FLOAT = auto()
    BOOL = auto()
    STR = auto()
    BYTES = auto()
    TYPE = auto()  # a DataType
    TENSOR = auto()
    GRAPH = auto()
    LIST_INT = auto()
    LIST_FLOAT = auto()
    LIST_BOOL = auto()
    LIST_STR = auto()
    LIST_TYPE = auto()


class Trait(Enum):
    """Properties of an op that passes and the runtime dispatch on."""

    SOURCE = auto()  # produces a value without a kernel task (Data, Const, Variable)
    SINK = auto()  # the graph's output collector (NetOutput)
    ELEMENTWISE = auto()  # output i depends only on input element i (after broadcasting)
    STATEFUL = auto()  # reads or writes session state: never folded, never deduplicated
    REF_OUTPUT = auto()  # output 0 is the same memory as input 0 (Assign*)
    NO_FOLD = auto()  # must not be constant-folded
    SHAPE_ONLY = auto()  # the value depends only on the input's static shape (Shape, Size, Rank)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Attr:
    """One attribute: name, type, default (``REQUIRED`` if none) and optional allowed values."""

    name: str
    type: AttrType
    default: Any = REQUIRED
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        """True when the attr has no default."""
        return self.default is REQUIRED


@dataclass(frozen=True)
class Input:
    """One input. ``dynamic`` inputs take any number of tensors (e.g. ConcatV2's ``x``)."""

    name: str
    optional: bool = False
    dynamic: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Output:
    """One output. A ``dynamic`` output yields a count decided by attrs (SplitV's ``y``)."""

    name: str
    dynamic: bool = False
    doc: str = ""


InferFn = Callable[["InferContext"], Sequence[TensorDesc]]
KernelFn = Callable[..., None]
#: ``prepare(inputs, outputs, constant, **attrs)``: a closure running the kernel on exactly these
#: arrays (see OpSchema).
PrepareFn = Callable[..., "Callable[[], None] | None"]


@dataclass(frozen=True)
class OpSchema:
    """The one definition of an op type: interface, inference and NumPy kernel.

    ``infer(ctx)`` returns the output TensorDescs (raising ``ctx.error(...)`` on bad input).
    ``kernel(inputs, outputs, **attrs)`` writes into preallocated ``outputs``; it declares the
    attrs it uses as keyword-only parameters. ``num_outputs(attrs, num_inputs)`` gives the output
    count when an output is dynamic.

    ``prepare(inputs, outputs, constant, **attrs)`` (optional, the same keyword attrs as the
    kernel) is called once when a model is loaded, with the very arrays the task will always
    use: their memory stays, their contents may change between runs except for the inputs with
    ``constant[i]`` True (weights). It returns a closure that computes exactly what ``kernel``
    computes on them — the same values, bit for bit — with what does not depend on the changing
    contents (views, scratch buffers, rearranged weights) made once; or None when it has no
    faster way for these arrays. A closure running a compiled kernel (openge.kernels, chosen
    only while ``openge.kernels.enabled()``) gives the same values within the conformance
    tolerances instead, and is compiled or loaded from the kernel cache inside ``prepare``.
    """

    op_type: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    attrs: tuple[Attr, ...] = ()
    infer: InferFn | None = None
    kernel: KernelFn | None = None
    doc: str = ""
    onnx: str = ""
    traits: frozenset[Trait] = field(default_factory=frozenset)
    num_outputs: Callable[[dict[str, Any], int], int] | None = None
    prepare: PrepareFn | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "attrs", tuple(self.attrs))
        object.__setattr__(self, "traits", frozenset(self.traits))
        names = [a.name for a in self.attrs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.op_type}: duplicate attr names {names}")
        dyn_in = [i for i in self.inputs if i.dynamic]
        if len(dyn_in) > 1:
            raise ValueError(f"{self.op_type}: at most one dynamic input")
        if any(o.dynamic for o in self.outputs) and self.num_outputs is None:
            raise ValueError(f"{self.op_type}: a dynamic output needs num_outputs")
        if Trait.SOURCE not in self.traits and Trait.SINK not in self.traits:
            if self.infer is None or self.kernel is None:
                raise ValueError(f"{self.op_type}: needs infer and kernel")
            object.__setattr__(self, "_kernel_attrs", _kernel_attr_names(self))
        else:
            object.__setattr__(self, "_kernel_attrs", ())

    @property
    def kernel_attrs(self) -> tuple[str, ...]:
        """Names of the attrs the kernel takes as keyword arguments."""
        return self._kernel_attrs  # type: ignore[attr-defined]

    def attr(self, name: str) -> Attr | None:
        """The Attr spec called ``name``."""
        for a in self.attrs:
            if a.name == name:
                return a
        return None

    def output_count(self, attrs: dict[str, Any], num_inputs: int) -> int:
        """How many outputs a node with these attrs and input count has."""
        if self.num_outputs is not None:
            return self.num_outputs(attrs, num_inputs)
        return len(self.outputs)

    def has(self, trait: Trait) -> bool:
        """True when the op has ``trait``."""
        return trait in self.traits


def _kernel_attr_names(schema: OpSchema) -> tuple[str, ...]:
    sig = inspect.signature(schema.kernel)  # type: ignore[arg-type]
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != 2:
        raise ValueError(f"{schema.op_type}: kernel must take (inputs, outputs, *, attrs...)")
    kw = tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY)
    known = {a.name for a in schema.attrs}
    unknown = [k for k in kw if k not in known]
    if unknown:
        raise ValueError(f"{schema.op_type}: kernel takes attrs {unknown} the schema lacks")
    return kw


# ----- attribute values ----------------------------------------------------------------------


def _bad_attr(where: str, attr: Attr, value: Any, expected: str) -> GeError:
    return GeError(
        PARAM_INVALID,
        f"{where}: attr {attr.name!r} = {value!r} is not valid; expected {expected}",
    )


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError
    return int(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError
    return float(value)


def _as_bool(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError
    return bool(value)


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _as_list(value: Any, item: Callable[[Any], Any]) -> list[Any]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise TypeError
    return [item(v) for v in value]


_COERCE: dict[AttrType, Callable[[Any], Any]] = {
    AttrType.INT: _as_int,
    AttrType.FLOAT: _as_float,
    AttrType.BOOL: _as_bool,
    AttrType.STR: _as_str,
    AttrType.BYTES: lambda v: bytes(v) if isinstance(v, (bytes, bytearray)) else _raise_type(),
    AttrType.TYPE: lambda v: as_data_type(v),
    AttrType.TENSOR: lambda v: v if isinstance(v, Tensor) else Tensor(np.asarray(v)),
    AttrType.GRAPH: lambda v: v if isinstance(v, Graph) else _raise_type(),
    AttrType.LIST_INT: lambda v: _as_list(v, _as_int),
    AttrType.LIST_FLOAT: lambda v: _as_list(v, _as_float),
    AttrType.LIST_BOOL: lambda v: _as_list(v, _as_bool),
    AttrType.LIST_STR: lambda v: _as_list(v, _as_str),
    AttrType.LIST_TYPE: lambda v: _as_list(v, as_data_type),
}

_EXPECTED: dict[AttrType, str] = {
    AttrType.INT: "an int",
    AttrType.FLOAT: "a float",
    AttrType.BOOL: "a bool",
    AttrType.STR: "a str",
    AttrType.BYTES: "bytes",
    AttrType.TYPE: "a DataType",
    AttrType.TENSOR: "a Tensor",
    AttrType.GRAPH: "a Graph",
    AttrType.LIST_INT: "a list of ints",
    AttrType.LIST_FLOAT: "a list of floats",
    AttrType.LIST_BOOL: "a list of bools",
    AttrType.LIST_STR: "a list of str",
    AttrType.LIST_TYPE: "a list of DataTypes",
}


def _raise_type() -> Any:
    raise TypeError


def coerce_attr(attr: Attr, value: Any, where: str) -> Any:
    """Convert ``value`` to the attr's type, checking ``choices``; GeError when it does not fit."""
    try:
        out = _COERCE[attr.type](value)
    except (TypeError, ValueError, GeError):
        raise _bad_attr(where, attr, value, _EXPECTED[attr.type]) from None
    if attr.choices is not None and out not in attr.choices:
        raise _bad_attr(where, attr, value, "one of " + ", ".join(repr(c) for c in attr.choices))
    return out


def normalize_attrs(schema: OpSchema, attrs: dict[str, Any], where: str) -> dict[str, Any]:
    """Attrs with defaults filled in and values coerced; GeError for unknown or missing ones.

    Attr names starting with ``_`` are GE-private annotations: kept as they are, not checked.
    """
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key.startswith("_"):
            out[key] = value
            continue
        spec = schema.attr(key)
        if spec is not None and value is None and spec.default is None:
            out[key] = None  # an optional attr left unset (e.g. Variable's initial value)
            continue
        if spec is None:
            known = ", ".join(a.name for a in schema.attrs) or "none"
            raise GeError(
                PARAM_INVALID,
                f"{where}: {schema.op_type} has no attr {key!r} (its attrs: {known})",
            )
        out[key] = coerce_attr(spec, value, where)
    for spec in schema.attrs:
        if spec.name in out:
            continue
        if spec.required:
            raise GeError(
                PARAM_INVALID,
                f"{where}: {schema.op_type} needs attr {spec.name!r} ({_EXPECTED[spec.type]})",
            )
        default = spec.default
        out[spec.name] = list(default) if isinstance(default, (list, tuple)) else default
    return out


class ValueNeededError(GeError):
    """An output shape depends on the value of an input that is not known yet.

    ``index`` is the input of the node whose value is needed; ``port`` (set by ``infer_node`` or
    the ONNX parser) is that input's Port. A static compile reports it as the GeError it is; the
    dynamic-shape compiler catches it and decides the shape at run time instead.
    """

    def __init__(self, code: int, message: str, index: int = -1, port: Any = None) -> None:
        super().__init__(code, message)
        self.index = index
        self.port = port

    def __reduce__(self):
        return (type(self), (self.code, self.message, self.index))


# ----- inference context -----------------------------------------------------------------------


class InferContext:
    """What an op's ``infer`` sees: input descs, attrs, known constant input values.

    ``error(msg)`` builds a GeError naming the node and op type; raise it for any bad input.
    """

    __slots__ = ("_const_values", "attrs", "current_outputs", "input_descs", "name", "op_type")

    def __init__(
        self,
        name: str,
        op_type: str,
        input_descs: Sequence[TensorDesc | None],
        attrs: dict[str, Any],
        const_values: Sequence[np.ndarray | None] = (),
        current_outputs: Sequence[TensorDesc] = (),
    ) -> None:
        self.name = name
        self.op_type = op_type
        self.input_descs = list(input_descs)
        self.attrs = attrs
        self._const_values = list(const_values) + [None] * (
            len(self.input_descs) - len(const_values)
        )
        self.current_outputs = list(current_outputs)

    @property
    def num_inputs(self) -> int:
        """Number of inputs given (dynamic inputs counted one by one)."""
        return len(self.input_descs)

    def input(self, index: int) -> TensorDesc:
        """The desc of input ``index``; error when it is missing."""
        if index >= len(self.input_descs) or self.input_descs[index] is None:
            raise self.error(f"input {index} is required but not connected")
        return self.input_descs[index]  # type: ignore[return-value]

    def has_input(self, index: int) -> bool:
        """True when input ``index`` is connected."""
        return index < len(self.input_descs) and self.input_descs[index] is not None

    def const_value(self, index: int) -> np.ndarray | None:
        """The value of input ``index`` when it is known at compile time, else None."""
        if index >= len(self._const_values):
            return None
        return self._const_values[index]

    def require_const(self, index: int, what: str) -> np.ndarray:
        """The compile-time value of input ``index``; :class:`ValueNeededError` when it is not known
        (a dynamic-shape model then decides the shape at run time)."""
        value = self.const_value(index)
        if value is None:
            raise ValueNeededError(
                PARAM_INVALID,
                f"node {self.name} ({self.op_type}): input {index} ({what}) must be a constant "
                "known at compile time (a Const, or computed from constants and shapes)",
                index,
            )
        return value

    def error(self, message: str, code: int = PARAM_INVALID) -> GeError:
        """A GeError that names this node and op type."""
        return GeError(code, f"node {self.name} ({self.op_type}): {message}")


__all__ = [
    "REQUIRED",
    "Attr",
    "AttrType",
    "DataType",
    "InferContext",
    "Input",
    "OpSchema",
    "Output",
    "Trait",
    "ValueNeededError",
    "coerce_attr",
    "normalize_attrs",
]
