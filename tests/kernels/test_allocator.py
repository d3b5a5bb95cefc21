"""openge.kernels.allocator: glibc's thresholds set once (unless the environment sets them),
and release_pages dropping only the pages of read-only file mappings, never changing data."""

from __future__ import annotations

import mmap
import platform
import sys

import numpy as np
import pytest

from openge.kernels import allocator
from tests.conftest import compiler_resident_kib, resident_pages


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


_SMAPS = """\
7f0000000000-7f0000010000 r--p 00000000 08:01 42 /venv/llvmlite/binding/libllvmlite.so
Rss:                  64 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Swap:                  0 kB
7f0000010000-7f0000050000 r-xp 00010000 08:01 42 /venv/llvmlite/binding/libllvmlite.so
Rss:                 200 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Swap:                  0 kB
7f0000050000-7f0000060000 r--p 00050000 08:01 42 /venv/llvmlite/binding/libllvmlite.so
Rss:                  64 kB
Anonymous:            64 kB
Private_Dirty:        64 kB
Shared_Dirty:          0 kB
Swap:                  0 kB
7f0000060000-7f0000061000 rw-p 00060000 08:01 42 /venv/llvmlite/binding/libllvmlite.so
Rss:                   4 kB
Anonymous:             4 kB
Private_Dirty:         4 kB
Shared_Dirty:          0 kB
Swap:                  0 kB
7f0000070000-7f0000080000 r--p 00000000 08:01 43 /venv/llvmlite/binding/libllvmlite.so
Rss:                  16 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
Shared_Dirty:         16 kB
Swap:                  0 kB
7f00000c0000-7f00000c8000 r--p 00000000 08:01 43 /venv/llvmlite/binding/libllvmlite.so
Rss:                   0 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Swap:                 32 kB
7f0000080000-7f0000090000 r-xp 00000000 08:01 44 /usr/lib/libother.so
Rss:                  64 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Swap:                  0 kB
7f0000090000-7f00000a0000 r-xs 00000000 08:01 42 /venv/llvmlite/binding/libllvmlite.so
Rss:                  64 kB
Anonymous:             0 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Swap:                  0 kB
7f00000a0000-7f00000b0000 r-xp 00000000 08:01 42 /venv/llvmlite/binding/libllvmlite.so
Rss:                  64 kB
Private_Dirty:         0 kB
"""


def test_only_clean_private_read_only_mappings_of_the_compiler_are_dropped():
    spans = allocator.clean_read_only_spans(_SMAPS.splitlines(keepends=True))
    # the header, the code and a mapping of page-cache pages not yet written back (dirty, yet
    # the file's own); not the relocated data (own pages), the writable data, a mapping with
    # own pages swapped out, another library, a shared mapping, or a mapping whose smaps
    # lacks a field to prove it clean
    assert spans == (
        (0x7F0000000000, 0x10000),
        (0x7F0000010000, 0x40000),
        (0x7F0000070000, 0x10000),
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_release_compiler_pages_drops_llvm_code_and_numba_still_compiles():
    import numba

    @numba.njit
    def scaled(x):
        return x * 2.0 + 1.0

    assert np.array_equal(scaled(np.arange(4.0)), [1.0, 3.0, 5.0, 7.0])  # a compile: code mapped
    before = compiler_resident_kib()
    assert before > 8 << 10
    assert allocator.release_compiler_pages() > 0
    after = compiler_resident_kib()
    # what stays is the relocated and the writable data (about 2 MiB with llvmlite 0.50)
    assert after < before // 4
    for start, size in allocator._compiler["spans"]:
        assert size > 0 and start % mmap.PAGESIZE == 0

    @numba.njit
    def total(x):
        return x.sum() * 3.0

    assert total(np.arange(10.0)) == 135.0  # the dropped code comes back from the page cache
    assert np.array_equal(scaled(np.arange(3.0)), [1.0, 3.0, 5.0])
    assert compiler_resident_kib() > after + (4 << 10)  # that compile mapped code again
    # between a model's tasks: the spans checked above, without reading /proc again
    assert allocator.release_compiler_pages(recheck=False) > 0
    assert compiler_resident_kib() < before // 4


def test_release_compiler_pages_is_a_no_op_without_the_library(monkeypatch):
    monkeypatch.delitem(sys.modules, "llvmlite.binding", raising=False)
    assert allocator.release_compiler_pages() == 0
