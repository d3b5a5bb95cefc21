"""``acl.util``: pointers of Python objects, and the callback threads of ``start_thread``."""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from openge.acl import _api
from openge.acl import _codes as codes
from openge.acl._memory import MEMORY as _MEMORY
from openge.acl._streams import STREAMS as _STREAMS

logger = logging.getLogger(__name__)

# Offset of a bytes object's storage from its address (CPython: the header, then ob_sval).
_BYTES_HEADER = bytes.__basicsize__ - 1


def bytes_to_ptr(data: bytes) -> int:
    """The address of the bytes object's own storage (no copy): writes through it are seen by
    the bytes object, as acllite relies on."""
    if not isinstance(data, bytes):
        raise TypeError(f"bytes_to_ptr needs bytes, not {type(data).__name__}")
    return id(data) + _BYTES_HEADER


def ptr_to_bytes(ptr: int, size: int) -> bytes:
    """A copy of ``size`` bytes at ``ptr``."""
    _api.need_int(ptr, "ptr")
    _api.need_int(size, "size")
    why = _MEMORY.check(ptr, size) if size else ""
    if why or size < 0:
        raise ValueError(f"ptr_to_bytes: {why or 'negative size'}")
    return ctypes.string_at(ptr, size) if size else b""


def numpy_to_ptr(array: np.ndarray) -> int:
    """The address of the array's data (deprecated in pyACL; warns like it)."""
    warnings.warn(
        "acl.util.numpy_to_ptr will be deprecated; use bytes_to_ptr", DeprecationWarning, 2
    )
    if not isinstance(array, np.ndarray):
        raise TypeError("numpy_to_ptr needs a numpy array")
    return int(array.ctypes.data)


def numpy_contiguous_to_ptr(array: np.ndarray) -> tuple[int, np.ndarray]:
    """``(ptr, contiguous_array)``: keep the returned array alive while using the pointer."""
    if not isinstance(array, np.ndarray):
        raise TypeError("numpy_contiguous_to_ptr needs a numpy array")
    contiguous = np.ascontiguousarray(array)
    return int(contiguous.ctypes.data), contiguous


def ptr_to_numpy(ptr: int, shape: tuple[int, ...], npy_type: int) -> np.ndarray:
    """A zero-copy array of ``shape`` and NumPy type number ``npy_type`` over ``ptr``."""
    _api.need_int(ptr, "ptr")
    _api.need_int(npy_type, "npy_type")
    dtype = next((t for t in np.sctypeDict.values() if np.dtype(t).num == npy_type), None)
    if dtype is None:
        raise ValueError(f"ptr_to_numpy: unknown numpy type number {npy_type}")
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    size = count * dtype.itemsize
    why = _MEMORY.check(ptr, size)
    if why:
        raise ValueError(f"ptr_to_numpy: {why}")
    return _MEMORY.view(ptr, size).view(dtype).reshape(tuple(shape))


def start_thread(fn: Callable[[Any], Any], args: Any) -> tuple[int, int]:
    """``(thread_id, ret)``: ``fn(args)`` on a new thread (the thread that serves
    ``process_report`` for the streams subscribed to it)."""
    if not callable(fn):
        raise TypeError("start_thread needs a callable")

    def run() -> None:
        try:
            fn(args)
        except Exception:
            logger.exception("acl thread function raised")

    thread = threading.Thread(target=run, name="acl-report-thread", daemon=True)
    thread.start()
    tid = int(thread.ident or 0)
    _STREAMS.threads[tid] = thread
    return tid, codes.SUCCESS


def stop_thread(thread_id: int) -> int:
    """Wait for a ``start_thread`` thread to end (up to 10 s; it is a daemon either way)."""
    _api.need_int(thread_id, "thread_id")
    thread = _STREAMS.threads.pop(thread_id, None)
    if thread is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.util.stop_thread: unknown thread {thread_id}")
    if thread is not threading.current_thread():
        thread.join(10.0)
        if thread.is_alive():
            logger.warning("acl thread %d still runs after stop_thread (left as daemon)", thread_id)
    return codes.SUCCESS
