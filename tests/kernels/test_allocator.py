"""openge.kernels.allocator: glibc's thresholds set once (unless the environment sets them),
and release_pages dropping only the pages of read-only file mappings, never changing data."""

from __future__ import annotations

import mmap
import platform
import sys

import numpy as np
import pytest

from openge.kernels import allocator
from tests.conftest import resident_pages


@pytest.fixture
def weights_file(tmp_path):
    data = np.arange(300_000, dtype=np.float32)
    path = tmp_path / "w.bin"
    data.tofile(path)
    return path, data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_release_pages_drops_a_read_only_mapping_and_keeps_its_data(weights_file):
    path, data = weights_file
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    w = np.frombuffer(mapping, np.float32)[1000:].reshape(-1, 100)
    assert w.sum() == data[1000:].sum()  # every page touched
    before = resident_pages(mapping)
    released = allocator.release_pages(w)
    # whole pages inside the array's bytes only: not the first partial page
    assert released == (w.nbytes - (-4000 % mmap.PAGESIZE)) // mmap.PAGESIZE * mmap.PAGESIZE
    assert resident_pages(mapping) <= before - released // mmap.PAGESIZE
    assert np.array_equal(w.reshape(-1), data[1000:])  # read back from the page cache
    del w
    mapping.close()


def test_release_pages_leaves_other_memory_alone(tmp_path, weights_file):
    path, data = weights_file
    anonymous = np.ones(1 << 20, np.float32)
    assert allocator.release_pages(anonymous) == 0
    assert anonymous.min() == 1.0  # DONTNEED on anonymous memory would have zeroed it
    with open(path, "r+b") as f:
        copy = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    arr = np.frombuffer(copy, np.float32)
    arr[5] = -1.0  # a private write DONTNEED would lose
    assert allocator.release_pages(arr) == 0
    assert arr[5] == -1.0 and np.array_equal(arr[6:], data[6:])
    del arr
    copy.close()
    assert allocator.release_pages(np.empty(0, np.float32)) == 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_thresholds_are_left_to_the_environment_when_it_sets_them(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert allocator._tune() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert allocator._tune() is True
