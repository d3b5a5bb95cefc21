"""Streams, events and callbacks: tasks run in order on a per-stream worker; callbacks run on
the subscribed thread; codes for the misuses the device reports."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import openge.acl as acl


@pytest.fixture
def stream():
    assert acl.init() == 0
    handle, ret = acl.rt.create_stream()
    assert ret == 0
    yield handle
    acl.rt.destroy_stream(handle)


def test_memcpy_async_runs_in_order(stream):
    a = np.arange(256, dtype=np.uint8)
    dev, _ = acl.rt.malloc(256, 0)
    out = np.zeros(256, dtype=np.uint8)
    assert acl.rt.memset_async(dev, 256, 0, 256, stream) == 0
    assert acl.rt.memcpy_async(dev, 256, a.ctypes.data, 256, 1, stream) == 0
    assert acl.rt.memcpy_async(out.ctypes.data, 256, dev, 256, 2, stream) == 0
    assert acl.rt.synchronize_stream(stream) == 0
    np.testing.assert_array_equal(out, a)
    assert acl.rt.memcpy_async(dev, 256, a.ctypes.data, 512, 1, stream) == 100000


def test_callbacks_run_on_the_subscribed_thread(stream):
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def loop(args):
        assert args == ["ctx", 20]
        while not stop.is_set():
            acl.rt.process_report(20)

    def callback(data):
        seen.append((data, threading.get_ident()))

    assert acl.rt.launch_callback(callback, 0, 1, stream) == 107015  # nobody subscribed
    tid, ret = acl.util.start_thread(loop, ["ctx", 20])
    assert ret == 0
    assert acl.rt.subscribe_report(tid, stream) == 0
    assert acl.rt.subscribe_report(tid, stream) != 0  # twice
    for i in range(5):
        assert acl.rt.launch_callback(callback, i, i % 2, stream) == 0
    assert acl.rt.synchronize_stream(stream) == 0
    assert acl.rt.unsubscribe_report(tid, stream) == 0
    stop.set()
    assert acl.util.stop_thread(tid) == 0
    assert acl.util.stop_thread(tid) != 0
    assert [d for d, _ in seen] == [0, 1, 2, 3, 4]
    assert {t for _, t in seen} == {tid}


def test_process_report_times_out(stream):
    assert acl.rt.process_report(10) == 507012


def test_events_and_contexts(stream):
    start, ret = acl.rt.create_event()
    end, _ = acl.rt.create_event()
    assert ret == 0
    assert acl.rt.record_event(start, stream) == 0
    assert acl.rt.record_event(end, stream) == 0
    assert acl.rt.synchronize_event(end) == 0
    ms, ret = acl.rt.event_elapsed_time(start, end)
    assert ret == 0 and ms >= 0
    assert acl.rt.query_event_status(end) == (0, 0)
    assert acl.rt.destroy_event(start) == 0 and acl.rt.destroy_event(end) == 0
    ctx, ret = acl.rt.create_context(0)
    assert ret == 0 and acl.rt.get_context() == (ctx, 0)
    other = []
    t = threading.Thread(target=lambda: other.append(acl.rt.get_context()[1]))
    t.start()
    t.join()
    assert other == [107002]  # contexts are per thread
    assert acl.rt.destroy_context(ctx) == 0
    assert acl.rt.set_context(ctx) == 100000
    assert acl.rt.destroy_stream(stream + 16) == 100000
