"""``acl.rt``: devices, contexts, streams, events, memory and callback reports.

The "device" is this process: memory is process memory with real addresses, a stream is a
worker thread that runs its tasks in order. Calls check their arguments and return pyACL's
codes; nothing here raises for an operational failure.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from typing import Any

from openge.acl import _api
from openge.acl import _codes as codes
from openge.acl._memory import MEMORY as _MEMORY
from openge.acl._memory import copy as _copy
from openge.acl._state import STATE as _STATE
from openge.acl._streams import STREAMS as _STREAMS
from openge.acl._streams import Event as _Event

_MAX_ALLOC = 1 << 40

# ----- devices and contexts -----------------------------------------------------------------


def set_device(device_id: int) -> int:
    """``aclrtSetDevice``: any non-negative id is this CPU."""
    _api.need_int(device_id, "device_id")
    if not _STATE.initialized:
        return _api.not_initialized("acl.rt.set_device")
    if device_id < 0:
        return _api.fail(codes.INVALID_DEVICE, f"acl.rt.set_device: device id {device_id} < 0")
    _STATE.devices.add(device_id)
    _STATE.local.device = device_id
    return codes.SUCCESS


def reset_device(device_id: int) -> int:
    """``aclrtResetDevice``."""
    _api.need_int(device_id, "device_id")
    if device_id < 0:
        return _api.fail(codes.INVALID_DEVICE, f"acl.rt.reset_device: device id {device_id} < 0")
    _STATE.devices.discard(device_id)
    return codes.SUCCESS


def reset_device_force(device_id: int) -> int:
    """``aclrtResetDeviceForce``."""
    return reset_device(device_id)


def get_device() -> tuple[int, int]:
    """``aclrtGetDevice`` → ``(device_id, ret)``."""
    device = getattr(_STATE.local, "device", None)
    if device is None:
        if not _STATE.devices:
            return 0, _api.fail(107002, "acl.rt.get_device: no device is set (call set_device)")
        device = min(_STATE.devices)
    return device, codes.SUCCESS


def get_device_count() -> tuple[int, int]:
    """``aclrtGetDeviceCount`` → ``(1, ret)``: one CPU device."""
    return 1, codes.SUCCESS


def synchronize_device() -> int:
    """``aclrtSynchronizeDevice``: wait for every stream."""
    error = codes.SUCCESS
    for stream in [s for _, s in _STREAMS.streams.items()]:
        error = stream.synchronize() or error
    default = _STREAMS.resolve(0)
    return (default.synchronize() if default is not None else 0) or error


def create_context(device_id: int) -> tuple[int, int]:
    """``aclrtCreateContext`` → ``(context, ret)``; the new context becomes current."""
    _api.need_int(device_id, "device_id")
    if not _STATE.initialized:
        return 0, _api.not_initialized("acl.rt.create_context")
    if device_id < 0:
        return 0, _api.fail(codes.INVALID_DEVICE, f"acl.rt.create_context: device id {device_id}")
    _STATE.devices.add(device_id)
    handle = _STATE.contexts.add(device_id)
    _STATE.current_context = handle
    return handle, codes.SUCCESS


def destroy_context(context: int) -> int:
    """``aclrtDestroyContext``."""
    code = _api.release(_STATE.contexts, context, "acl.rt.destroy_context")
    if code:
        return code
    if _STATE.current_context == context:
        _STATE.current_context = 0
    return codes.SUCCESS


def set_context(context: int) -> int:
    """``aclrtSetCurrentContext`` (per thread)."""
    _api.need_int(context, "context")
    if _STATE.contexts.get(context) is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.rt.set_context: unknown context {context:#x}")
    _STATE.current_context = context
    return codes.SUCCESS


def get_context() -> tuple[int, int]:
    """``aclrtGetCurrentContext`` → ``(context, ret)``."""
    context = _STATE.current_context
    if not context:
        return 0, _api.fail(107002, "acl.rt.get_context: this thread has no current context")
    return context, codes.SUCCESS


def get_run_mode() -> tuple[int, int]:
    """``aclrtGetRunMode`` → ``(ACL_HOST, 0)``: the application runs on the host (also before
    ``acl.init``; acllite asks at import)."""
    return codes.RUN_MODE_HOST, codes.SUCCESS


def get_soc_name() -> str:
    """``aclrtGetSocName``."""
    return codes.SOC_NAME


# ----- streams and events -------------------------------------------------------------------


def create_stream() -> tuple[int, int]:
    """``aclrtCreateStream`` → ``(stream, ret)``."""
    if not _STATE.initialized:
        return 0, _api.not_initialized("acl.rt.create_stream")
    from openge.acl._streams import Stream

    return _STREAMS.streams.add(Stream("acl-stream")), codes.SUCCESS


def create_stream_with_config(priority: int, flag: int) -> tuple[int, int]:
    """``aclrtCreateStreamWithConfig``: priority and flags are accepted and ignored."""
    _api.need_int(priority, "priority")
    _api.need_int(flag, "flag")
    return create_stream()


def destroy_stream(stream: int) -> int:
    """``aclrtDestroyStream``: queued tasks finish first."""
    _api.need_int(stream, "stream")
    target = _STREAMS.streams.pop(stream)
    if target is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.rt.destroy_stream: unknown stream {stream:#x}")
    target.close()
    return codes.SUCCESS


def destroy_stream_force(stream: int) -> int:
    """``aclrtDestroyStreamForce``."""
    return destroy_stream(stream)


def synchronize_stream(stream: int) -> int:
    """``aclrtSynchronizeStream``: wait until the stream's tasks ran; returns the first error
    of an asynchronous task since the last synchronize."""
    _api.need_int(stream, "stream")
    target = _STREAMS.resolve(stream)
    if target is None:
        return _api.fail(
            codes.INVALID_PARAM, f"acl.rt.synchronize_stream: unknown stream {stream:#x}"
        )
    return target.synchronize()


def synchronize_stream_with_timeout(stream: int, timeout: int) -> int:
    """``aclrtSynchronizeStreamWithTimeout`` (timeout in ms, -1 waits forever)."""
    _api.need_int(stream, "stream")
    _api.need_int(timeout, "timeout")
    target = _STREAMS.resolve(stream)
    if target is None:
        return _api.fail(codes.INVALID_PARAM, f"unknown stream {stream:#x}")
    return target.synchronize(None if timeout < 0 else timeout / 1000.0)


def create_event() -> tuple[int, int]:
    """``aclrtCreateEvent`` → ``(event, ret)``."""
    if not _STATE.initialized:
        return 0, _api.not_initialized("acl.rt.create_event")
    return _STREAMS.events.add(_Event()), codes.SUCCESS


def create_event_with_flag(flag: int) -> tuple[int, int]:
    """``aclrtCreateEventWithFlag``."""
    _api.need_int(flag, "flag")
    return create_event()


def destroy_event(event: int) -> int:
    """``aclrtDestroyEvent``."""
    return _api.release(_STREAMS.events, event, "acl.rt.destroy_event")


def _event(event: Any, call: str) -> Any:
    """The Event of ``event``, or the error code (logged) when it is unknown."""
    _api.need_int(event, "event")
    ev = _STREAMS.events.get(event)
    return ev if ev is not None else _api.fail(codes.INVALID_PARAM, f"{call}: unknown event")


def _event_and_stream(event: Any, stream: Any, call: str) -> Any:
    """``(stream, event)`` objects, or the error code when either is unknown."""
    _api.need_int(stream, "stream")
    ev = _event(event, call)
    target = _STREAMS.resolve(stream)
    if isinstance(ev, int):
        return ev
    if target is None:
        return _api.fail(codes.INVALID_PARAM, f"{call}: unknown stream {stream:#x}")
    return target, ev


def record_event(event: int, stream: int) -> int:
    """``aclrtRecordEvent``: the event is set when the stream reaches this point."""
    found = _event_and_stream(event, stream, "acl.rt.record_event")
    if isinstance(found, int):
        return found
    target, ev = found
    ev.done.clear()
    ev.recorded = True

    def task() -> int:
        ev.timestamp = time.perf_counter()
        ev.done.set()
        return codes.SUCCESS

    return target.submit(task)


def reset_event(event: int, stream: int) -> int:
    """``aclrtResetEvent``."""
    ev = _event(event, "acl.rt.reset_event")
    if isinstance(ev, int):
        return ev
    ev.done.clear()
    ev.recorded = False
    return codes.SUCCESS


def synchronize_event(event: int) -> int:
    """``aclrtSynchronizeEvent``: wait until the recorded event is reached."""
    ev = _event(event, "acl.rt.synchronize_event")
    if isinstance(ev, int):
        return ev
    if ev.recorded:
        ev.done.wait()
    return codes.SUCCESS


def query_event_status(event: int) -> tuple[int, int]:
    """``aclrtQueryEventStatus`` → ``(status, ret)``: 0 complete, 1 not ready."""
    ev = _event(event, "acl.rt.query_event_status")
    if isinstance(ev, int):
        return 0, ev
    return (0 if ev.done.is_set() or not ev.recorded else 1), codes.SUCCESS


def event_elapsed_time(start: int, end: int) -> tuple[float, int]:
    """``aclrtEventElapsedTime`` → ``(ms, ret)``."""
    a, b = _STREAMS.events.get(start), _STREAMS.events.get(end)
    if a is None or b is None or not a.done.is_set() or not b.done.is_set():
        return 0.0, _api.fail(codes.INVALID_PARAM, "acl.rt.event_elapsed_time: events not reached")
    return (b.timestamp - a.timestamp) * 1000.0, codes.SUCCESS


def stream_wait_event(stream: int, event: int) -> int:
    """``aclrtStreamWaitEvent``: the stream waits for the event before its next task."""
    found = _event_and_stream(event, stream, "acl.rt.stream_wait_event")
    if isinstance(found, int):
        return found
    target, ev = found
    return target.submit(lambda: (ev.done.wait(), codes.SUCCESS)[1])


# ----- memory -------------------------------------------------------------------------------


def _malloc(size: Any, host: bool, call: str) -> tuple[int, int]:
    _api.need_int(size, "size")
    if not _STATE.initialized:
        return 0, _api.not_initialized(call)
    if size <= 0 or size > _MAX_ALLOC:
        return 0, _api.fail(codes.INVALID_PARAM, f"{call}: size {size} is not in (0, 2**40]")
    try:
        return _MEMORY.allocate(size, host), codes.SUCCESS
    except MemoryError:
        return 0, _api.fail(codes.BAD_ALLOC, f"{call}: out of memory for {size} bytes")


def malloc(size: int, policy: int) -> tuple[int, int]:
    """``aclrtMalloc`` → ``(ptr, ret)``; the policy (huge pages …) is accepted and ignored."""
    _api.need_int(policy, "policy")
    if not 0 <= policy <= 0xFFFF:
        return 0, _api.fail(codes.INVALID_PARAM, f"acl.rt.malloc: policy {policy}")
    return _malloc(size, False, "acl.rt.malloc")


def malloc_cached(size: int, policy: int) -> tuple[int, int]:
    """``aclrtMallocCached``."""
    return malloc(size, policy)


def malloc_host(size: int) -> tuple[int, int]:
    """``aclrtMallocHost`` → ``(ptr, ret)``."""
    return _malloc(size, True, "acl.rt.malloc_host")


def _free(ptr: int, host: bool, call: str) -> int:
    _api.need_int(ptr, "ptr")
    if _MEMORY.free(ptr, host=host) != codes.SUCCESS:
        kind = "host" if host else "acl.rt.malloc"
        return _api.fail(codes.INVALID_PARAM, f"{call}: {ptr:#x} is not a live {kind} block")
    return codes.SUCCESS


def free(ptr: int) -> int:
    """``aclrtFree``: an unknown pointer or a second free returns ACL_ERROR_INVALID_PARAM."""
    return _free(ptr, False, "acl.rt.free")


def free_host(ptr: int) -> int:
    """``aclrtFreeHost``."""
    return _free(ptr, True, "acl.rt.free_host")


def _check_copy(call: str, dst: int, dest_max: int, src: int, count: int, kind: int) -> int:
    for value, name in ((dst, "dst"), (dest_max, "dest_max"), (src, "src"), (count, "count")):
        _api.need_int(value, name)
    _api.need_int(kind, "kind")
    if count < 0 or dest_max < 0:
        return _api.fail(codes.INVALID_PARAM, f"{call}: negative size")
    if count > dest_max:
        return _api.fail(codes.INVALID_PARAM, f"{call}: count {count} > dest_max {dest_max}")
    if not 0 <= kind <= 4:
        return _api.fail(codes.INVALID_PARAM, f"{call}: kind {kind} is not 0..4")
    for addr, size, name in ((dst, dest_max, "destination"), (src, count, "source")):
        why = _MEMORY.check(addr, size)
        if why:
            return _api.fail(codes.INVALID_PARAM, f"{call}: {name}: {why}")
    return codes.SUCCESS


def memcpy(dst: int, dest_max: int, src: int, count: int, kind: int) -> int:
    """``aclrtMemcpy``: ``count ≤ dest_max`` and both ranges inside the openge allocations
    they start in, else ACL_ERROR_INVALID_PARAM (never a crash on openge memory). The kind is
    checked for range only: the runtime knows every address's side."""
    if not _STATE.initialized:
        return _api.not_initialized("acl.rt.memcpy")
    code = _check_copy("acl.rt.memcpy", dst, dest_max, src, count, kind)
    if code:
        return code
    _copy(dst, src, count)
    return codes.SUCCESS


def memcpy_async(dst: int, dest_max: int, src: int, count: int, kind: int, stream: int) -> int:
    """``aclrtMemcpyAsync``: checked now, copied when the stream reaches it."""
    if not _STATE.initialized:
        return _api.not_initialized("acl.rt.memcpy_async")
    _api.need_int(stream, "stream")
    code = _check_copy("acl.rt.memcpy_async", dst, dest_max, src, count, kind)
    if code:
        return code
    target = _STREAMS.resolve(stream)
    if target is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.rt.memcpy_async: unknown stream {stream:#x}")
    return target.submit(lambda: (_copy(dst, src, count), codes.SUCCESS)[1])


def memset(ptr: int, max_count: int, value: int, count: int) -> int:
    """``aclrtMemset``."""
    for v, name in ((ptr, "ptr"), (max_count, "max_count"), (value, "value"), (count, "count")):
        _api.need_int(v, name)
    if count < 0 or count > max_count:
        return _api.fail(
            codes.INVALID_PARAM, f"acl.rt.memset: count {count} > max_count {max_count}"
        )
    why = _MEMORY.check(ptr, max_count)
    if why:
        return _api.fail(codes.INVALID_PARAM, f"acl.rt.memset: {why}")
    if count:
        ctypes.memset(ptr, value & 0xFF, count)
    return codes.SUCCESS


def memset_async(ptr: int, max_count: int, value: int, count: int, stream: int) -> int:
    """``aclrtMemsetAsync`` (checked now, written when the stream reaches it)."""
    target = _STREAMS.resolve(_api.need_int(stream, "stream"))
    if target is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.rt.memset_async: unknown stream {stream:#x}")
    code = memset(ptr, max_count, value, 0)
    if code:
        return code
    return target.submit(lambda: memset(ptr, max_count, value, count))


def get_mem_info(attr: int) -> tuple[int, int, int]:
    """``aclrtGetMemInfo`` → ``(free, total, ret)``: the machine's memory."""
    _api.need_int(attr, "attr")
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        free_bytes = os.sysconf("SC_AVPHYS_PAGES") * page
    except (ValueError, OSError, AttributeError):
        total = free_bytes = 0
    return free_bytes, total, codes.SUCCESS


# ----- callbacks ------------------------------------------------------------------------------


def subscribe_report(thread_id: int, stream: int) -> int:
    """``aclrtSubscribeReport``: callbacks launched on ``stream`` run on ``thread_id`` when it
    calls ``process_report``."""
    _api.need_int(thread_id, "thread_id")
    _api.need_int(stream, "stream")
    if _STREAMS.resolve(stream) is None:
        return _api.fail(
            codes.INVALID_PARAM, f"acl.rt.subscribe_report: unknown stream {stream:#x}"
        )
    code = _STREAMS.reports.subscribe(thread_id, stream)
    return _api.fail(code, "acl.rt.subscribe_report: stream already subscribed") if code else 0


def unsubscribe_report(thread_id: int, stream: int) -> int:
    """``aclrtUnSubscribeReport``: queued callbacks of the stream run first."""
    _api.need_int(thread_id, "thread_id")
    _api.need_int(stream, "stream")
    target = _STREAMS.resolve(stream)
    if target is None:
        return _api.fail(
            codes.INVALID_PARAM, f"acl.rt.unsubscribe_report: unknown stream {stream:#x}"
        )
    code = _STREAMS.reports.unsubscribe(thread_id, stream)
    return _api.fail(code, "acl.rt.unsubscribe_report: thread not subscribed") if code else 0


def launch_callback(fn: Callable[[Any], Any], user_data: Any, block_flag: int, stream: int) -> int:
    """``aclrtLaunchCallback``: when the stream reaches this point, ``fn(user_data)`` is
    handed to the subscribed thread; with ``block_flag`` 1 the stream waits for it."""
    if not callable(fn):
        raise TypeError("fn must be callable")
    _api.need_int(block_flag, "block_flag")
    _api.need_int(stream, "stream")
    target = _STREAMS.resolve(stream)
    if target is None:
        return _api.fail(codes.INVALID_PARAM, f"acl.rt.launch_callback: unknown stream {stream:#x}")
    if _STREAMS.reports.subscriber(stream) is None:
        return _api.fail(
            codes.RT_STREAM_NO_CB_REG,
            "acl.rt.launch_callback: no thread subscribed to the stream (subscribe_report)",
        )
    return target.submit(_STREAMS.reports.post_task(stream, fn, user_data, block_flag == 1))


def process_report(timeout: int) -> int:
    """``aclrtProcessReport``: run one callback for this thread, waiting up to ``timeout`` ms
    (-1: forever); ACL_ERROR_RT_REPORT_TIMEOUT when none came."""
    _api.need_int(timeout, "timeout")
    return _STREAMS.reports.process(timeout)
