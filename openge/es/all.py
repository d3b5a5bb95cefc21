"""One Python function per registered op type, generated from the op catalog (es layer).

``from openge.es.all import *`` (as CANN's ``from ge.es.all import *``) gives ``Add(x1, x2)``,
``Conv2D(x, filter, bias=None, offset_w=None, *, strides, pads, ...)``, ``TransData(src, *,
src_format, dst_format, ...)`` and so on:

* inputs are positional, in the op's order; optional inputs default to None; a dynamic input
  takes a list. Besides TensorHolders, an input may be a TensorLike (CANN's rule: an int becomes
  an int64 scalar Const, a float a float32 scalar Const, a (nested) list a Const — float32 if any
  element is a float, else int64; a NumPy array or openge Tensor a Const of its dtype);
* attrs are keyword-only, with the catalog's defaults (required attrs have none). For an op
  with a dynamic input and an int attr ``N``, ``N`` defaults to the length of the list;
* ops with no inputs (Const, Data, Variable …) take the GraphBuilder first:
  ``Const(builder, value=tensor)``; every other function also accepts ``owner_builder=`` to
  build from TensorLikes only;
* the result is a TensorHolder, a NamedTuple of TensorHolders named after the op's outputs
  (``TopKV2(...).values``) for multi-output ops, or a list for a dynamic output.

The functions are made at import (:func:`refresh`) from ``openge.ops.all_schemas()``; an op
registered later is resolved on first access through the module's ``__getattr__``, and
``__all__`` always lists the ops registered at the time it is read.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from openge.errors import PARAM_INVALID, GeError
from openge.es.builder import GraphBuilder, TensorHolder
from openge.ops import REQUIRED, AttrType, OpSchema, Trait, all_schemas, get_schema, has_op

_P = inspect.Parameter
_OWNER = "owner_builder"

# op type → (schema the function was made from, function)
_CACHE: dict[str, tuple[OpSchema, Callable[..., Any]]] = {}
# names refresh() bound in this module's namespace
_BOUND: set[str] = set()


def _py_name(name: str, taken: set[str]) -> str:
    """A valid, unused Python parameter name for a schema input/attr name."""
    out = re.sub(r"\W", "_", name)
    if not out or out[0].isdigit():
        out = "_" + out
    while keyword.iskeyword(out) or out in taken or out == _OWNER:
        out += "_"
    taken.add(out)
    return out


def _field_name(name: str, taken: set[str]) -> str:
    out = re.sub(r"\W", "_", name).lstrip("_") or "out"
    if out[0].isdigit() or keyword.iskeyword(out) or out in taken:
        out = f"out_{out}"
    while out in taken:
        out += "_"
    taken.add(out)
    return out


def _is_count_attr(schema: OpSchema, attr_name: str) -> bool:
    """The int attr ``N`` of an op with a dynamic input: it defaults to the list length."""
    spec = schema.attr(attr_name)
    return (
        attr_name == "N"
        and spec is not None
        and spec.type == AttrType.INT
        and any(i.dynamic for i in schema.inputs)
    )


def _attr_type_text(t: AttrType) -> str:
    return t.name.lower()


def _docstring(schema: OpSchema, sig: inspect.Signature, result: str) -> str:
    lines = [f"{schema.op_type}{sig}", "", schema.doc or f"The {schema.op_type} op.", ""]
    args: list[str] = []
    if not schema.inputs:
        args.append(f"    {_OWNER}: the GraphBuilder to add the node to.")
    for inp in schema.inputs:
        kind = "list of TensorHolder" if inp.dynamic else "TensorHolder"
        if inp.optional:
            kind += ", optional"
        args.append(f"    {inp.name} ({kind}): {inp.doc or 'input ' + repr(inp.name)}.")
    for attr in schema.attrs:
        default = "required" if attr.default is REQUIRED else f"default {attr.default!r}"
        if _is_count_attr(schema, attr.name):
            default = "default: the length of the dynamic input list"
        extra = f" One of {list(attr.choices)}." if attr.choices else ""
        text = attr.doc or "attribute"
        args.append(f"    {attr.name} ({_attr_type_text(attr.type)}, {default}): {text}.{extra}")
    if schema.inputs:
        args.append(f"    {_OWNER}: the GraphBuilder, when no input is a TensorHolder.")
    lines += ["Args:", *args, "", "Returns:", f"    {result}", ""]
    if schema.onnx:
        lines.append(f"ONNX / TF equivalent: {schema.onnx}")
    lines.append("Raises GeError (naming the node) on a bad input, dtype, shape or attr.")
    return "\n".join(lines)


def make_op_function(schema: OpSchema) -> Callable[..., Any]:
    """Build the op function for ``schema`` (signature, docstring, NamedTuple of outputs)."""
    op_type = schema.op_type
    taken: set[str] = set()
    params: list[inspect.Parameter] = []
    if not schema.inputs:
        params.append(_P(_OWNER, _P.POSITIONAL_OR_KEYWORD))
    input_names: list[str] = []
    optional_seen = False
    for inp in schema.inputs:
        pname = _py_name(inp.name, taken)
        input_names.append(pname)
        optional_seen = optional_seen or inp.optional
        default = None if optional_seen else _P.empty
        params.append(_P(pname, _P.POSITIONAL_OR_KEYWORD, default=default))
    attr_names: list[tuple[str, str]] = []
    for attr in schema.attrs:
        pname = _py_name(attr.name, taken)
        attr_names.append((pname, attr.name))
        if _is_count_attr(schema, attr.name):
            default = None
        elif attr.default is not REQUIRED:
            default = attr.default
        else:
            default = _P.empty
        params.append(_P(pname, _P.KEYWORD_ONLY, default=default))
    if schema.inputs:
        params.append(_P(_OWNER, _P.KEYWORD_ONLY, default=None))
    sig = inspect.Signature(params)

    dyn_out = [i for i, o in enumerate(schema.outputs) if o.dynamic]
    fields: set[str] = set()
    out_fields = [_field_name(o.name, fields) for o in schema.outputs]
    tuple_type: Any = (
        NamedTuple(
            f"{op_type}Outputs",
            [
                (f, list[TensorHolder] if o.dynamic else TensorHolder)
                for f, o in zip(out_fields, schema.outputs, strict=True)
            ],
        )
        if len(schema.outputs) > 1
        else None
    )
    if not schema.outputs:
        result_text = "None (the op has no outputs)."
    elif tuple_type is not None:
        result_text = f"a NamedTuple ({', '.join(out_fields)}) of TensorHolder" + (
            "; the dynamic output is a list." if dyn_out else "."
        )
    elif dyn_out:
        result_text = "a list of TensorHolder (one per output)."
    else:
        result_text = "TensorHolder."

    def op_function(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        builder = _resolve_builder(op_type, values.get(_OWNER), [values[n] for n in input_names])
        holders: list[TensorHolder | None] = []
        dynamic_len = 0
        for pname, spec in zip(input_names, schema.inputs, strict=True):
            value = values[pname]
            where = f"{op_type} input {spec.name!r}"
            if spec.dynamic:
                if not isinstance(value, (list, tuple)):
                    raise TypeError(f"{where} is dynamic: pass a list of tensors")
                dynamic_len = len(value)
                holders.extend(builder._to_holder(v, where) for v in value)
            elif value is None:
                holders.append(None)
            else:
                holders.append(builder._to_holder(value, where))
        attrs: dict[str, Any] = {}
        for pname, aname in attr_names:
            value = values[pname]
            if value is None and _is_count_attr(schema, aname):
                value = dynamic_len
            if value is not None:
                attrs[aname] = value
        node = builder._add_node(op_type, holders, attrs)
        outs = builder._holders(node)
        if not schema.outputs:
            return None
        if tuple_type is None:
            return outs if dyn_out else outs[0]
        if not dyn_out:
            return tuple_type(*outs)
        extra = len(outs) - len(schema.outputs)
        grouped: list[Any] = []
        pos = 0
        for i in range(len(schema.outputs)):
            if i in dyn_out:
                grouped.append(outs[pos : pos + extra + 1])
                pos += extra + 1
            else:
                grouped.append(outs[pos])
                pos += 1
        return tuple_type(*grouped)

    op_function.__name__ = op_type
    op_function.__qualname__ = op_type
    op_function.__module__ = __name__
    op_function.__signature__ = sig  # type: ignore[attr-defined]
    op_function.__doc__ = _docstring(schema, sig, result_text)
    op_function.schema = schema  # type: ignore[attr-defined]
    if tuple_type is not None:
        op_function.Outputs = tuple_type  # type: ignore[attr-defined]
    return op_function


def _resolve_builder(op_type: str, owner: Any, inputs: list[Any]) -> GraphBuilder:
    if owner is not None:
        if not isinstance(owner, GraphBuilder):
            raise TypeError(f"{op_type}: {_OWNER} must be a GraphBuilder, got {owner!r}")
        return owner
    for value in inputs:
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, TensorHolder):
                return item.get_owner_builder()
    raise GeError(
        PARAM_INVALID,
        f"{op_type}: no input is a TensorHolder, so the GraphBuilder is unknown; pass "
        f"{_OWNER}=builder",
    )


def _exported(schema: OpSchema) -> bool:
    return not schema.has(Trait.SINK) and schema.op_type.isidentifier()


def _function_for(op_type: str) -> Callable[..., Any]:
    schema = get_schema(op_type)
    cached = _CACHE.get(op_type)
    if cached is None or cached[0] is not schema:
        cached = (schema, make_op_function(schema))
        _CACHE[op_type] = cached
    return cached[1]


def refresh() -> dict[str, Callable[..., Any]]:
    """(Re)generate the functions of every registered op and bind them in this module.

    Functions of op types no longer registered are unbound.
    """
    functions = {s.op_type: _function_for(s.op_type) for s in all_schemas() if _exported(s)}
    namespace = globals()
    for stale in _BOUND - functions.keys():
        namespace.pop(stale, None)
        _CACHE.pop(stale, None)
    namespace.update(functions)
    _BOUND.clear()
    _BOUND.update(functions)
    return functions


def _names() -> list[str]:
    return [s.op_type for s in all_schemas() if _exported(s)]


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return _names()
    if has_op(name) and _exported(get_schema(name)):
        return _function_for(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (no such op type)")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_names()))


refresh()
