"""Streams, events and callback reports: each stream is a worker thread running its tasks in
order (as a device stream does); callbacks go to the thread subscribed to the stream and run
there when it calls ``process_report``."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from openge.acl import _codes as codes
from openge.acl._state import Registry

logger = logging.getLogger(__name__)

Task = Callable[[], int]


class Stream:
    """An in-order task queue served by one daemon thread."""

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[Task | None] = queue.Queue()
        self._error = codes.SUCCESS
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                code = task()
                if code and not self._error:
                    self._error = code
            except Exception:  # a task must never kill the stream
                logger.exception("stream task failed")
                if not self._error:
                    self._error = codes.INTERNAL_ERROR
            finally:
                self._queue.task_done()

    def submit(self, task: Task) -> int:
        """Queue ``task`` (returns an ACL code: the stream may be destroyed)."""
        if self._closed:
            return codes.INVALID_PARAM
        self._queue.put(task)
        return codes.SUCCESS

    def synchronize(self, timeout_s: float | None = None) -> int:
        """Wait until every queued task ran; returns the first task error since the last
        synchronize (then clears it)."""
        if threading.current_thread() is self._thread:
            return codes.INVALID_PARAM  # a task waiting for its own stream would deadlock
        if timeout_s is None:
            self._queue.join()
        else:
            deadline = time.monotonic() + timeout_s
            while self._queue.unfinished_tasks:
                if time.monotonic() > deadline:
                    return 107019  # ACL_ERROR_RT_WAIT_TIMEOUT
                time.sleep(0.001)
        error, self._error = self._error, codes.SUCCESS
        return error

    def close(self) -> None:
        """Finish queued tasks and stop the worker."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()


class Event:
    """``aclrtEvent``: set when a stream reaches its record task."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.timestamp = 0.0
        self.recorded = False


class _Report:
    __slots__ = ("done", "fn", "user_data")

    def __init__(self, fn: Callable[[Any], Any], user_data: Any) -> None:
        self.fn = fn
        self.user_data = user_data
        self.done = threading.Event()


class ReportHub:
    """Callback subscriptions: stream → thread id, and the pending reports of each thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed: dict[int, int] = {}  # stream handle -> thread id
        self._pending: dict[int, queue.Queue[_Report]] = {}

    def _queue_of(self, tid: int) -> queue.Queue[_Report]:
        with self._lock:
            return self._pending.setdefault(tid, queue.Queue())

    def subscribe(self, tid: int, stream: int) -> int:
        with self._lock:
            if stream in self._subscribed:
                return 107011  # ACL_ERROR_RT_STREAM_SUBSCRIBE: already subscribed
            self._subscribed[stream] = tid
        self._queue_of(tid)
        return codes.SUCCESS

    def unsubscribe(self, tid: int, stream: int) -> int:
        with self._lock:
            if self._subscribed.get(stream) != tid:
                return 107012  # ACL_ERROR_RT_THREAD_SUBSCRIBE: not subscribed
            del self._subscribed[stream]
        return codes.SUCCESS

    def subscriber(self, stream: int) -> int | None:
        """The thread subscribed to ``stream`` (None when none)."""
        with self._lock:
            return self._subscribed.get(stream)

    def post_task(self, stream: int, fn: Callable[[Any], Any], user_data: Any, block: bool) -> Task:
        """The stream task of ``launch_callback``: hand the callback to the subscribed thread
        and, when ``block``, wait until it ran (or the subscription ends)."""

        def task() -> int:
            tid = self.subscriber(stream)
            if tid is None:
                logger.warning("callback dropped: no thread is subscribed to stream %#x", stream)
                return codes.RT_STREAM_NO_CB_REG
            report = _Report(fn, user_data)
            self._queue_of(tid).put(report)
            while block and not report.done.wait(0.05):
                if self.subscriber(stream) != tid:
                    break
            return codes.SUCCESS

        return task

    def process(self, timeout_ms: int) -> int:
        """Run one pending callback of the calling thread (``aclrtProcessReport``)."""
        pending = self._queue_of(threading.get_ident())
        try:
            if timeout_ms is None or timeout_ms < 0:
                report = pending.get()
            else:
                report = pending.get(timeout=timeout_ms / 1000.0)
        except queue.Empty:
            return codes.RT_REPORT_TIMEOUT
        try:
            report.fn(report.user_data)
        except Exception:
            logger.exception("acl callback raised")
        finally:
            report.done.set()
        return codes.SUCCESS


class StreamSet:
    """Streams and events by handle, the default stream, callback subscriptions and the
    threads of ``acl.util.start_thread``."""

    def __init__(self) -> None:
        self.streams: Registry[Stream] = Registry("stream")
        self.events: Registry[Event] = Registry("event")
        self.threads: dict[int, threading.Thread] = {}
        self.reports = ReportHub()
        self._default: Stream | None = None
        self._lock = threading.Lock()

    def resolve(self, handle: Any) -> Stream | None:
        """The stream of ``handle``; 0 (NULL) is the default stream."""
        if handle == 0 and isinstance(handle, int):
            with self._lock:
                if self._default is None:
                    self._default = Stream("acl-default-stream")
                return self._default
        return self.streams.get(handle)

    def close_all(self) -> None:
        """Stop every stream (``acl.finalize``)."""
        for handle, stream in self.streams.items():
            stream.close()
            self.streams.pop(handle)
        with self._lock:
            if self._default is not None:
                self._default.close()
                self._default = None


STREAMS = StreamSet()
