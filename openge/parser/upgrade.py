"""Upgrading an untrusted ONNX model of opset 1..6 to opset 7, safely.

Layer: parser. ``onnx.version_converter`` is C++: on a hostile proto it can fail an assertion
(reported as an exception), but C++ code of onnx has also aborted the process outright (its
shape inference did, on a negative dim), and nothing bounds its memory or time. So the
conversion here:

1. runs only after the parser's own checks accepted the model (names are text, each value is
   produced once and every read value is defined, initializer dims are sane);
2. is given a *structural copy*: each initializer over ``KEEP_BYTES`` keeps its name, type and
   dims but none of its data (the converter's adapters below opset 7 read shapes, never weight
   values; small initializers keep their data, as onnx's shape inference, which the converter
   runs, reads shape-like tensors such as a Reshape's target shape), sparse initializers
   become such placeholders, and negative dims in value types become unknown;
3. runs in a child Python process with an address-space cap and a timeout, so an abort, a
   crash, a runaway allocation or a hang is a GeError, never the caller's process;
4. gets the original initializers back by name afterwards (each checked to have kept its type
   and dims in the upgraded model).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

from openge.errors import PARAM_INVALID, UNSUPPORTED, GeError
from openge.parser.tensors import checked_dims
from openge.parser.topo import topological_order

logger = logging.getLogger(__name__)

#: Address space of the converter's child process (bytes) and its wall-clock limit (seconds):
#: far above what the structure of any real model needs (its weights are not sent).
CHILD_ADDRESS_SPACE = 2 << 30
CHILD_TIMEOUT_S = 60.0
#: Initializers up to this size (serialized) are sent with their data.
KEEP_BYTES = 64 << 10

#: The child loads onnx's C++ extension module alone (importing the onnx package costs about
#: ten times as much) and calls the converter on the serialized model.
_CHILD = r"""
import sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
except (ImportError, ValueError, OSError):
    pass
try:
    import importlib.util
    spec = importlib.util.spec_from_file_location("onnx.onnx_cpp2py_export", {ext!r})
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    out = ext.version_converter.convert_version(sys.stdin.buffer.read(), {target})
except BaseException as err:
    sys.stderr.write(f"{{type(err).__name__}}: {{err}}"[:2000])
    sys.exit(3)
sys.stdout.buffer.write(out)
"""


def _check_structure(graph: Any) -> None:
    """The parser's own checks of the top-level graph, before any C++ code sees it."""
    local = {v.name for v in graph.input}
    for t in graph.initializer:
        checked_dims(t.dims, 1, f"initializer {t.name!r}")
        local.add(t.name)
    for sp in graph.sparse_initializer:
        checked_dims(sp.dims, 1, f"sparse initializer {sp.values.name!r}")
        local.add(sp.values.name)
    names = [n.name or f"#{k} ({n.op_type})" for k, n in enumerate(graph.node)]
    topological_order(list(graph.node), names, local.__contains__, local)


def _placeholder(dst: Any, name: str, data_type: int, dims: Any) -> None:
    dst.name, dst.data_type = name, data_type
    dst.dims.extend(dims)


def structural_copy(proto: Any) -> Any:
    """``proto`` without initializer data (see the module docstring); the original is kept."""
    import onnx

    copy = onnx.ModelProto()
    for fd, value in proto.ListFields():
        if fd.name != "graph":
            _copy_field(copy, fd, value)
    for fd, value in proto.graph.ListFields():
        if fd.name not in ("initializer", "sparse_initializer"):
            _copy_field(copy.graph, fd, value)
    for t in proto.graph.initializer:
        if t.ByteSize() <= KEEP_BYTES and not t.external_data:
            copy.graph.initializer.add().CopyFrom(t)
        else:
            _placeholder(copy.graph.initializer.add(), t.name, t.data_type, t.dims)
    for sp in proto.graph.sparse_initializer:
        _placeholder(copy.graph.initializer.add(), sp.values.name, sp.values.data_type, sp.dims)
    for vi in [*copy.graph.input, *copy.graph.output, *copy.graph.value_info]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            for dim in vi.type.tensor_type.shape.dim:
                if dim.HasField("dim_value") and dim.dim_value < 0:
                    dim.Clear()
    return copy


def _copy_field(dst: Any, fd: Any, value: Any) -> None:
    if hasattr(value, "extend"):  # a repeated field (protobuf's label API varies by version)
        getattr(dst, fd.name).extend(value)
    elif fd.message_type is not None:
        getattr(dst, fd.name).CopyFrom(value)
    else:
        setattr(dst, fd.name, value)


def _convert_in_child(data: bytes, target: int, opset: int) -> bytes:
    import onnx.onnx_cpp2py_export as ext

    code = _CHILD.format(cap=CHILD_ADDRESS_SPACE, target=int(target), ext=ext.__file__)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-c", code],
            input=data,
            capture_output=True,
            timeout=CHILD_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise GeError(
            UNSUPPORTED,
            f"ONNX model uses default-domain opset {opset}; upgrading it to opset {target} with "
            f"onnx.version_converter took more than {CHILD_TIMEOUT_S:.0f} s (stopped)",
        ) from None
    except OSError as err:
        raise GeError(UNSUPPORTED, f"cannot start the ONNX opset converter: {err}") from None
    if result.returncode != 0:
        why = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = why[-1][:500] if why else f"exit status {result.returncode}"
        if result.returncode < 0:
            reason = f"the converter crashed (signal {-result.returncode})"
        raise GeError(
            UNSUPPORTED,
            f"ONNX model uses default-domain opset {opset}; openge parses opsets {target} and "
            f"later and onnx.version_converter could not upgrade it: {reason}. Export the "
            f"model at opset {target} or later",
        )
    return result.stdout


def upgrade_model(proto: Any, opset: int, target: int) -> Any:
    """``proto`` (default-domain ``opset`` < ``target``) converted to opset ``target``."""
    import onnx

    _check_structure(proto.graph)
    data = structural_copy(proto).SerializeToString()
    out = _convert_in_child(data, target, opset)
    upgraded = onnx.ModelProto()
    try:
        upgraded.ParseFromString(out)
    except Exception as err:  # DecodeError of what the child wrote
        raise GeError(PARAM_INVALID, f"the upgraded ONNX model does not decode: {err}") from err
    versions = {o.domain: o.version for o in upgraded.opset_import if o.domain in ("", "ai.onnx")}
    if not upgraded.HasField("graph") or target not in versions.values():
        raise GeError(
            PARAM_INVALID,
            f"the upgraded ONNX model is incomplete (no graph or no default-domain opset {target})",
        )
    _reattach(proto.graph, upgraded.graph)
    logger.info(
        "ONNX model upgraded from opset %d to %d with onnx.version_converter", opset, target
    )
    return upgraded


def _reattach(original: Any, upgraded: Any) -> None:
    """Put the original initializers (dense and sparse) back in place of the placeholders."""
    dense = {t.name: t for t in original.initializer}
    sparse = {sp.values.name: sp for sp in original.sparse_initializer}
    kept, back = [], []
    for t in upgraded.initializer:
        source = dense.get(t.name)
        if source is None and t.name in sparse:
            shape, dtype = list(sparse[t.name].dims), sparse[t.name].values.data_type
        elif source is not None:
            shape, dtype = list(source.dims), source.data_type
        else:  # made by the converter (e.g. a shape an attribute became): keep it
            kept.append(t)
            continue
        if list(t.dims) != shape or t.data_type != dtype:
            raise GeError(
                UNSUPPORTED,
                f"onnx.version_converter changed initializer {t.name!r} ({dtype} {shape} → "
                f"{t.data_type} {list(t.dims)}); openge cannot upgrade this model",
            )
        if source is not None:
            kept.append(source)
        else:
            back.append(sparse[t.name])
    del upgraded.initializer[:]
    upgraded.initializer.extend(kept)
    upgraded.sparse_initializer.extend(back)


__all__ = [
    "CHILD_ADDRESS_SPACE",
    "CHILD_TIMEOUT_S",
    "KEEP_BYTES",
    "structural_copy",
    "upgrade_model",
]
