"""acl.rt memory and acl.util pointers: real addresses, tracked blocks, checked copies."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import openge.acl as acl

H2D, D2H, D2D = 1, 2, 3
INVALID_PARAM = 100000


@pytest.fixture
def inited():
    assert acl.init() == 0


def test_no_constants_exported():
    assert not [k for k in dir(acl) if k.isupper() and not k.startswith("_")]
    assert not [k for k in dir(acl.rt) if k.startswith("ACL_")]
    assert "bytes_to_ptr" in dir(acl.util)


def test_run_mode_before_init_and_codes_of_init():
    assert acl.rt.get_run_mode() == (1, 0)
    assert acl.rt.malloc(16, 0)[1] == 100001
    assert acl.init() == 0
    assert acl.init() == 100002
    assert acl.finalize() == 0
    assert acl.finalize() == 100037
    assert "CPU" in acl.get_soc_name()


def test_init_reads_acl_json(tmp_path):
    from openge.acl._state import dump_config

    cfg = tmp_path / "acl.json"
    cfg.write_text('{"dump": {"dump_path": "/x", "dump_list": []}, "profiler": {}}')
    assert acl.init(str(cfg)) == 0
    assert dump_config()["dump_path"] == "/x"
    acl.finalize()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert acl.init(str(bad)) != 0


def test_roundtrip_through_device_memory(inited):
    src = np.arange(64, dtype=np.float32)
    dev, ret = acl.rt.malloc(src.nbytes, 0)
    assert ret == 0 and dev != 0
    data = src.tobytes()
    assert acl.rt.memcpy(dev, src.nbytes, acl.util.bytes_to_ptr(data), src.nbytes, H2D) == 0
    out = bytes(src.nbytes)  # acllite copies D2H into a bytes object through bytes_to_ptr
    assert acl.rt.memcpy(acl.util.bytes_to_ptr(out), len(out), dev, src.nbytes, D2H) == 0
    np.testing.assert_array_equal(np.frombuffer(out, np.float32), src)
    view = acl.util.ptr_to_numpy(dev, (8, 8), 11)  # NPY_FLOAT32, zero-copy
    view[0, 0] = 42.0
    assert np.frombuffer(acl.util.ptr_to_bytes(dev, 4), np.float32)[0] == 42.0
    assert acl.rt.free(dev) == 0


def test_numpy_pointers_work_as_copy_ends(inited):
    a = np.arange(10, dtype=np.int32)
    b = np.zeros(10, dtype=np.int32)
    dev, _ = acl.rt.malloc(40, 2)
    assert acl.rt.memcpy(dev, 40, a.ctypes.data, 40, H2D) == 0
    assert acl.rt.memcpy(b.ctypes.data, 40, dev, 40, D2H) == 0
    np.testing.assert_array_equal(a, b)
    ptr, keep = acl.util.numpy_contiguous_to_ptr(a[::2])
    assert keep.flags.c_contiguous and ptr == keep.ctypes.data
    with pytest.warns(DeprecationWarning):
        assert acl.util.numpy_to_ptr(a) == a.ctypes.data


def test_copy_checks_return_codes_and_never_crash(inited):
    dev, _ = acl.rt.malloc(100, 0)
    host = bytes(400)
    src = acl.util.bytes_to_ptr(host)
    assert acl.rt.memcpy(dev, 100, src, 101, H2D) == INVALID_PARAM  # count > dest_max
    assert acl.rt.memcpy(dev, 200, src, 200, H2D) == INVALID_PARAM  # past the allocation
    assert acl.rt.memcpy(dev + 90, 20, src, 20, H2D) == INVALID_PARAM  # past the end, offset
    assert acl.rt.memcpy(src, 400, dev, 150, D2H) == INVALID_PARAM  # source past its block
    assert acl.rt.memcpy(0, 10, src, 10, H2H := 0) == INVALID_PARAM  # null
    assert H2H == 0
    assert acl.rt.memcpy(dev, 100, src, 10, 9) == INVALID_PARAM  # bad kind
    assert acl.rt.memset(dev, 100, 7, 100) == 0
    assert acl.rt.memset(dev, 200, 7, 200) == INVALID_PARAM
    assert acl.util.ptr_to_bytes(dev, 100) == bytes([7]) * 100
    assert acl.rt.free(dev) == 0
    assert acl.rt.free(dev) == INVALID_PARAM  # double free
    assert acl.rt.memcpy(dev, 10, src, 10, H2D) == INVALID_PARAM  # use after free
    assert acl.rt.memcpy(dev + 40, 10, src, 10, H2D) == INVALID_PARAM  # inside the freed block
    assert acl.rt.memcpy(1024, 10, src, 10, H2D) == INVALID_PARAM  # not a pointer
    assert acl.rt.free(12345678) == INVALID_PARAM  # unknown pointer
    host_ptr, _ = acl.rt.malloc_host(8)
    assert acl.rt.free(host_ptr) == INVALID_PARAM  # wrong kind
    assert acl.rt.free_host(host_ptr) == 0


def test_wrong_argument_types_raise(inited):
    with pytest.raises(TypeError):
        acl.rt.malloc("10", 0)
    with pytest.raises(TypeError):
        acl.util.bytes_to_ptr(bytearray(3))


def test_data_buffers(inited):
    dev, _ = acl.rt.malloc(32, 0)
    buf = acl.create_data_buffer(dev, 32)
    assert buf and acl.get_data_buffer_addr(buf) == dev
    assert acl.get_data_buffer_size(buf) == acl.get_data_buffer_size_v2(buf) == 32
    assert acl.create_data_buffer(dev, 64) == 0  # past the block
    assert acl.update_data_buffer(buf, dev + 16, 16) == 0
    assert acl.get_data_buffer_size_v2(buf) == 16
    assert acl.destroy_data_buffer(buf) == 0
    assert acl.destroy_data_buffer(buf) == INVALID_PARAM
    ds = acl.mdl.create_dataset()
    assert acl.mdl.add_dataset_buffer(ds, buf)[1] == INVALID_PARAM  # destroyed buffer
    assert acl.mdl.get_dataset_num_buffers(ds) == 0
    assert acl.mdl.destroy_dataset(ds) == 0


def test_bytes_to_ptr_is_the_objects_storage():
    data = b"abcdef"
    ptr = acl.util.bytes_to_ptr(data)
    assert ctypes.string_at(ptr, 6) == data


def test_app_log_goes_to_logging(caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="acl.app"):
        acl.app_log(3, "bad thing")
        acl.app_log(1, "note")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "bad thing"),
        (logging.INFO, "note"),
    ]
