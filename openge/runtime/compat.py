"""Version rules for loading (OM_FORMAT.md §6): check_compatibility, query_size, check_loadable."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from openge.errors import LOAD_MODEL, PARAM_INVALID, GeError
from openge.om.container import as_byte_view, parse_container
from openge.om.limits import LoadLimits, resolve_limits
from openge.om.plan import CompiledModel
from openge.om.reader import OmInfo, deserialize, read_info
from openge.runtime.files import MappedFile, as_path
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


def _open_source(path_or_buffer: Any) -> tuple[memoryview, MappedFile | None]:
    """A byte view of a path (a regular file, mapped) or of a bytes-like buffer."""
    if isinstance(path_or_buffer, (str, os.PathLike)):
        path = as_path(path_or_buffer, "model file")
        source = MappedFile(path, "model file", resolve_limits(None).max_model_bytes)
        return source.view(), source
    if path_or_buffer is None:
        raise GeError(PARAM_INVALID, "expected a path, bytes, a memoryview or ModelBufferData")
    owner = getattr(path_or_buffer, "data", path_or_buffer)
    return as_byte_view(owner), None


def _with_source(path_or_buffer: Any, read: Any) -> Any:
    view, source = _open_source(path_or_buffer)
    try:
        return read(view)
    finally:
        # Views made while reading may still be alive (in a traceback): closing the mapping
        # then fails with BufferError, which must never hide the real error.
        with contextlib.suppress(BufferError):
            view.release()
        if source is not None:
            source.close()


def check_compatibility(path_or_buffer: Any) -> Compatibility:
    """Whether this openge can load the model, without loading its weights (GeError for a
    path that is not a readable regular file or a buffer that is not a well-formed .om)."""

    def answer(view: memoryview) -> Compatibility:
        if _device_om(view):  # made by Ascend ATC: loadable when its graph is complete
            from openge.runtime.device import device_compatibility

            return device_compatibility(view)
        return compatibility_of(read_info(view))

    return _with_source(path_or_buffer, answer)


def query_size(path_or_buffer: Any) -> tuple[int, int]:
    """``(work_size, weight_size)`` in bytes (``aclmdlQuerySize``): what a caller must provide
    for ``Model.from_file(..., work_memory=..., weight_memory=...)``."""

    def sizes(view: memoryview) -> tuple[int, int]:
        info = read_info(view)
        return info.memory_size, info.weight_size

    return _with_source(path_or_buffer, sizes)


def _device_om(buffer: memoryview) -> bool:
    """Whether ``buffer`` is a device .om (made by Ascend ATC). A container openge's own parser
    reads as openge's (header and partition table only, not foreign) answers False without
    importing the device reader (~15 ms with bytecode cached: a third of BERT-tiny's first
    run); anything else, malformed files included, asks the device reader."""
    try:
        if not parse_container(buffer, verify_checksum=False).foreign:
            return False
    except GeError:
        pass
    from openge.om.device import is_device_om

    return is_device_om(buffer)


def check_loadable(
    buffer: memoryview, *, source: str, limits: LoadLimits | None = None
) -> CompiledModel:
    """Parse a model after checking the version rules; GeError with the reason otherwise."""
    if _device_om(buffer):  # made by Ascend ATC: rebuilt and compiled when complete
        from openge.runtime.device import compile_device_om

        return compile_device_om(buffer, source=source)
    limits = resolve_limits(limits)
    compat = compatibility_of(read_info(buffer, limits=limits))
    if not compat.ok:
        raise GeError(LOAD_MODEL, f"cannot load {source}: {compat.reason}")
    return deserialize(buffer, limits=limits)
