"""Version rules for loading (OM_FORMAT.md §6): check_compatibility, query_size, check_loadable."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from typing import Any

from openge.errors import LOAD_MODEL, MODEL_PATH_INVALID, PARAM_INVALID, GeError
from openge.om.plan import CompiledModel
from openge.om.reader import OmInfo, deserialize, read_info
from openge.version import OM_FORMAT_VERSION, PRODUCER


@dataclass(frozen=True)
class Compatibility:
    """Whether this openge can load a model, and why not."""

    ok: bool
    reason: str
    format: str
    producer: str
    online: bool


def _format_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def compatibility_of(info: OmInfo) -> Compatibility:
    """Apply the version rules to a model's header/ModelDef info."""
    fmt = _format_text(info.format) if info.format is not None else "none"
    ours = _format_text(OM_FORMAT_VERSION)
    if info.foreign:
        return Compatibility(
            False,
            f"this is not an openge model (producer {info.producer or 'unknown'}): a device "
            "model made by Ascend ATC can be inspected (openge atc --mode=1/6) but its kernels "
            "only run on an Ascend device; convert the source model with openge atc instead",
            fmt,
            info.producer,
            info.online,
        )
    assert info.format is not None  # an openge model always records its format
    major, minor = info.format
    if major != OM_FORMAT_VERSION[0]:
        return Compatibility(
            False,
            f"model format {fmt} has another major version than this runtime's {ours}; "
            f"re-run openge atc with openge {PRODUCER.split('-', 1)[1]} to convert it",
            fmt,
            info.producer,
            info.online,
        )
    if minor > OM_FORMAT_VERSION[1]:
        return Compatibility(
            False,
            f"model format {fmt} is newer than this runtime's {ours} (made by "
            f"{info.producer}); upgrade openge to a version that reads format {fmt}",
            fmt,
            info.producer,
            info.online,
        )
    if info.online and info.producer != PRODUCER:
        return Compatibility(
            False,
            f"this is an in-memory compiled model (get_compiled_model / build_model) made by "
            f"{info.producer}; such buffers load only under the exact version that made them "
            f"(this is {PRODUCER}). Save it with openge.offline_compile.save_model to get a "
            "portable .om, or recompile it with this version",
            fmt,
            info.producer,
            info.online,
        )
    return Compatibility(True, "ok", fmt, info.producer, info.online)


def _open_source(path_or_buffer: Any) -> tuple[Any, Any]:
    if isinstance(path_or_buffer, (str, os.PathLike)):
        path = os.fspath(path_or_buffer)
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    return memoryview(b""), None
                mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as err:
            raise GeError(
                MODEL_PATH_INVALID, f"cannot open model file {path!r}: {err.strerror}"
            ) from err
        return memoryview(mapping), mapping
    owner = getattr(path_or_buffer, "data", path_or_buffer)
    try:
        return memoryview(owner).cast("B"), None
    except TypeError as err:
        raise GeError(
            PARAM_INVALID, "expected a path, bytes, a memoryview or ModelBufferData"
        ) from err


def check_compatibility(path_or_buffer: Any) -> Compatibility:
    """Whether this openge can load the model, without loading its weights."""
    view, mapping = _open_source(path_or_buffer)
    try:
        from openge.om.device import is_device_om

        if is_device_om(view):  # made by Ascend ATC: loadable when its graph is complete
            from openge.runtime.device import device_compatibility

            return device_compatibility(view)
        return compatibility_of(read_info(view))
    finally:
        view.release()
        if mapping is not None:
            mapping.close()


def query_size(path_or_buffer: Any) -> tuple[int, int]:
    """``(work_size, weight_size)`` in bytes (``aclmdlQuerySize``): what a caller must provide
    for ``Model.from_file(..., work_memory=..., weight_memory=...)``."""
    view, mapping = _open_source(path_or_buffer)
    try:
        info = read_info(view)
        return info.memory_size, info.weight_size
    finally:
        view.release()
        if mapping is not None:
            mapping.close()


def check_loadable(buffer: memoryview, *, source: str) -> CompiledModel:
    """Parse a model after checking the version rules; GeError with the reason otherwise."""
    from openge.om.device import is_device_om

    if is_device_om(buffer):  # made by Ascend ATC: rebuilt and compiled when complete
        from openge.runtime.device import compile_device_om

        return compile_device_om(buffer, source=source)
    compat = compatibility_of(read_info(buffer))
    if not compat.ok:
        raise GeError(LOAD_MODEL, f"cannot load {source}: {compat.reason}")
    return deserialize(buffer)
