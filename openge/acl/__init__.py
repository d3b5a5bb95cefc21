"""openge.acl: pyACL's ``import acl`` on the CPU, over openge.runtime (layer: acl).

Like pyACL it exports functions only (no constants): ``acl.init`` / ``finalize``, the data
buffer calls, and the submodules ``acl.rt``, ``acl.mdl``, ``acl.util`` (and a small
``acl.media`` for the memory calls acllite makes). ``install()`` makes ``import acl`` resolve
here; ``python -m openge.acl SCRIPT [ARGS]`` runs a script that way. docs/acl.md lists every
call and each difference from the device.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from openge.acl import _api, _codes, _dump, mdl
from openge.acl import media as media
from openge.acl import rt as rt
from openge.acl import util as util
from openge.acl._memory import MEMORY as _MEMORY
from openge.acl._state import STATE as _STATE
from openge.acl._state import DataBuffer as _DataBuffer
from openge.acl._streams import STREAMS as _STREAMS
from openge.acl._tensor_desc import (  # noqa: F401 (part of acl)
    create_tensor_desc,
    destroy_tensor_desc,
    get_tensor_desc_dim,
    get_tensor_desc_dim_v2,
    get_tensor_desc_element_count,
    get_tensor_desc_format,
    get_tensor_desc_name,
    get_tensor_desc_num_dims,
    get_tensor_desc_size,
    get_tensor_desc_type,
    set_tensor_desc_name,
)

_app_logger = logging.getLogger("acl.app")
_LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)


def init(config_path: str | None = None) -> int:
    """``aclInit``: start the runtime; ``config_path`` is an acl.json (its "dump" section is
    kept for the data dump; other sections are logged and ignored)."""
    with _STATE.lock:
        if _STATE.initialized:
            return _api.fail(_codes.REPEAT_INITIALIZE, "acl.init: already initialized")
        config: dict[str, Any] = {}
        if config_path:
            if not isinstance(config_path, str):
                raise TypeError("config_path must be a str")
            try:
                with open(config_path, encoding="utf-8") as f:
                    text = f.read(1 << 20)
            except OSError as err:
                return _api.fail(_codes.INVALID_FILE, f"acl.init: cannot read {config_path}: {err}")
            if text.strip():
                try:
                    config = json.loads(text)
                except ValueError as err:
                    return _api.fail(
                        _codes.PARSE_FILE, f"acl.init: {config_path} is not JSON: {err}"
                    )
                if not isinstance(config, dict):
                    return _api.fail(
                        _codes.PARSE_FILE, f"acl.init: {config_path} is not a JSON object"
                    )
            for key in config:
                if key != "dump":
                    _app_logger.info("acl.json section %r is not used by openge; ignored", key)
        _STATE.config = config
        code = _dump.configure(config.get("dump"))
        if code:
            return code
        _STATE.initialized = True
    return _codes.SUCCESS


def finalize() -> int:
    """``aclFinalize``: streams stop and models unload; memory stays valid until freed."""
    with _STATE.lock:
        if not _STATE.initialized:
            return _api.fail(_codes.REPEAT_FINALIZE, "acl.finalize: not initialized")
        _STREAMS.close_all()
        for model_id in [h for h, _ in mdl._MODELS.items()]:
            mdl.unload(model_id)
        _STATE.initialized = False
        _STATE.devices.clear()
        _STATE.contexts.clear()
    return _codes.SUCCESS


def get_soc_name() -> str:
    """``aclrtGetSocName``: says this is openge on the CPU."""
    return _codes.SOC_NAME


def get_version() -> tuple[int, int, int, int]:
    """``aclrtGetVersion`` → ``(major, minor, patch, ret)`` (openge.acl's interface version)."""
    return (*_codes.VERSION, _codes.SUCCESS)


def get_recent_err_msg() -> str:
    """The calling thread's last error message ("" when none), then cleared."""
    return _STATE.take_error()


def app_log(level: int, message: str) -> None:
    """``aclAppLog``: levels 0-3 (debug, info, warning, error) to the ``acl.app`` logger."""
    _api.need_int(level, "level")
    _app_logger.log(_LEVELS[min(max(level, 0), 3)], "%s", message)


def create_data_buffer(data: int, size: int) -> int:
    """``aclCreateDataBuffer`` → buffer handle (0 on failure)."""
    _api.need_int(data, "data")
    _api.need_int(size, "size")
    if size < 0 or (size and _MEMORY.check(data, size)):
        _api.fail(_codes.INVALID_PARAM, f"acl.create_data_buffer: bad range {data:#x}+{size}")
        return 0
    return _STATE.buffers.add(_DataBuffer(data, size))


def destroy_data_buffer(data_buffer: int) -> int:
    """``aclDestroyDataBuffer`` (the memory is not freed)."""
    return _api.release(_STATE.buffers, data_buffer, "acl.destroy_data_buffer")


def get_data_buffer_addr(data_buffer: int) -> int:
    """The buffer's address (0 when unknown)."""
    buf = _STATE.buffers.get(_api.need_int(data_buffer, "data_buffer"))
    return buf.addr if buf is not None else 0


def get_data_buffer_size_v2(data_buffer: int) -> int:
    """The buffer's size in bytes (0 when unknown)."""
    buf = _STATE.buffers.get(_api.need_int(data_buffer, "data_buffer"))
    return buf.size if buf is not None else 0


def get_data_buffer_size(data_buffer: int) -> int:
    """Deprecated name of ``get_data_buffer_size_v2``."""
    return get_data_buffer_size_v2(data_buffer)


def update_data_buffer(data_buffer: int, data: int, size: int) -> int:
    """``aclUpdateDataBuffer``: point the buffer at other memory."""
    _api.need_int(data, "data")
    _api.need_int(size, "size")
    buf = _STATE.buffers.get(_api.need_int(data_buffer, "data_buffer"))
    if buf is None:
        return _api.fail(_codes.INVALID_PARAM, f"acl.update_data_buffer: unknown {data_buffer:#x}")
    if size < 0 or (size and _MEMORY.check(data, size)):
        return _api.fail(
            _codes.INVALID_PARAM, f"acl.update_data_buffer: bad range {data:#x}+{size}"
        )
    buf.addr, buf.size = data, size
    return _codes.SUCCESS


def install() -> None:
    """Make ``import acl`` (and ``acl.rt`` …) resolve to openge.acl in this process."""
    module = sys.modules[__name__]
    sys.modules["acl"] = module
    for name in ("rt", "mdl", "util", "media"):
        sys.modules[f"acl.{name}"] = getattr(module, name)
