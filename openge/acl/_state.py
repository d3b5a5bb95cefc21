"""The facade's state: small registries of handles (explicit ids) and the process-wide State.

Handles are plain ints like pyACL's pointers. All handle kinds draw their ids from one counter,
so a dataset id passed where a data buffer is expected is simply unknown (never another object).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Handles look like pointers (large, non-zero, 16-byte steps) and never collide across kinds.
_ids = itertools.count(0x7F0000001000, 16)
_ids_lock = threading.Lock()


def _next_id() -> int:
    with _ids_lock:
        return next(_ids)


class Registry(Generic[T]):
    """Objects of one kind by handle; thread-safe."""

    def __init__(self, kind: str, small_ids: bool = False) -> None:
        self.kind = kind
        self._items: dict[int, T] = {}
        self._lock = threading.Lock()
        # Model ids are small integers on the device (1, 2, ...), not pointers.
        self._own_ids = itertools.count(1) if small_ids else None

    def add(self, item: T) -> int:
        """Register ``item``; returns its new handle."""
        if self._own_ids is not None:
            with self._lock:
                handle = next(self._own_ids)
                self._items[handle] = item
            return handle
        handle = _next_id()
        with self._lock:
            self._items[handle] = item
        return handle

    def get(self, handle: Any) -> T | None:
        """The object of ``handle`` (None when unknown or not an int)."""
        if not isinstance(handle, int):
            return None
        return self._items.get(handle)

    def pop(self, handle: Any) -> T | None:
        """Remove and return the object of ``handle`` (None when unknown)."""
        if not isinstance(handle, int):
            return None
        with self._lock:
            return self._items.pop(handle, None)

    def items(self) -> list[tuple[int, T]]:
        """A snapshot of (handle, object) pairs."""
        with self._lock:
            return list(self._items.items())

    def clear(self) -> None:
        """Forget every object."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class DataBuffer:
    """``aclDataBuffer``: an address and a size (the memory is not owned)."""

    __slots__ = ("addr", "size")

    def __init__(self, addr: int, size: int) -> None:
        self.addr = addr
        self.size = size


class TensorDesc:
    """``aclTensorDesc``: type, dims, format and name (dims may hold -1)."""

    __slots__ = ("dims", "dtype", "format", "name")

    def __init__(self, dtype: int, dims: list[int], fmt: int) -> None:
        self.dtype = dtype
        self.dims = dims
        self.format = fmt
        self.name = ""


class Dataset:
    """``aclmdlDataset``: an ordered list of data buffer handles, and the tensor desc handles
    set on it (``set_dataset_tensor_desc``: the actual dims of a dynamic-shape run)."""

    __slots__ = ("buffers", "tensor_descs")

    def __init__(self) -> None:
        self.buffers: list[int] = []
        self.tensor_descs: dict[int, int] = {}


class ModelDescHandle:
    """``aclmdlDesc``: filled by ``get_desc`` with the model's io (and the model, for the
    gear and AIPP queries)."""

    __slots__ = ("inputs", "model", "model_id", "outputs")

    def __init__(self) -> None:
        self.model_id = 0
        self.model: Any = None
        self.inputs: list = []
        self.outputs: list = []


class State:
    """Everything the facade keeps between calls (one per process)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.initialized = False
        self.config: dict[str, Any] = {}
        self.dump: Any = None  # runtime.dump.DumpConfig from acl.json's "dump" section
        self.devices: set[int] = set()
        self.contexts: Registry[int] = Registry("context")  # handle -> device id
        self.buffers: Registry[DataBuffer] = Registry("data buffer")
        self.datasets: Registry[Dataset] = Registry("dataset")
        self.descs: Registry[ModelDescHandle] = Registry("model desc")
        self.aipp_sets: Registry[bytearray] = Registry("aipp parameter set")
        self.tensor_descs: Registry[TensorDesc] = Registry("tensor desc")
        self.local = threading.local()  # current context per thread, last error message

    @property
    def current_context(self) -> int:
        """The calling thread's context (0 when none is set)."""
        return getattr(self.local, "context", 0)

    @current_context.setter
    def current_context(self, value: int) -> None:
        self.local.context = value

    def set_error(self, message: str) -> None:
        """Remember the calling thread's last error (``acl.get_recent_err_msg``)."""
        self.local.error = message

    def take_error(self) -> str:
        """The calling thread's last error message, cleared."""
        message = getattr(self.local, "error", "")
        self.local.error = ""
        return message


STATE = State()


def dump_config() -> dict[str, Any]:
    """The "dump" section of the acl.json given to ``acl.init`` (empty when none)."""
    section = STATE.config.get("dump")
    return dict(section) if isinstance(section, dict) else {}
