"""openge.kernels.nrt_cache: numba's runtime module saved once and loaded by later processes;
a damaged, foreign or oversized file is never used, and the runtime then compiles as numba
would. NRT starts once per process, so each start runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from openge.kernels import nrt_cache

_CHILD = r"""
import json, sys
folder, forbid_compile = sys.argv[1], sys.argv[2] == "1"
import numpy as np
from numba import njit
from numba.core.registry import cpu_target
from numba.core.runtime import nrtdynmod, rtsys
from openge.kernels import nrt_cache
compiled = []
make = nrtdynmod.create_nrt_module
def counting(ctx):
    if forbid_compile:
        raise AssertionError("NRT's module compiled although a saved one matched")
    compiled.append(1)
    return make(ctx)
nrtdynmod.create_nrt_module = counting
started = nrt_cache.start(cpu_target.target_context, folder)

@njit
def fresh_arrays(n):  # NRT allocates, counts references and frees these arrays
    total = 0.0
    for i in range(n):
        total += np.arange(i + 1.0).sum()
    return total

print(json.dumps({"started": started, "compiled": len(compiled), "value": fresh_arrays(50),
                  "init": bool(rtsys._init)}))
"""


def _start_in_child(folder, forbid_compile: bool = False) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), "1" if forbid_compile else "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _saved(folder) -> list:
    return [p for p in os.listdir(folder) if p.startswith("openge-nrt-")]


# sum over i < 50 of i(i+1)/2, written out independently of numba
EXPECTED = float(sum(i * (i + 1) // 2 for i in range(50)))


def test_the_first_start_compiles_and_saves_the_next_loads(tmp_path):
    first = _start_in_child(tmp_path)
    assert first == {"started": True, "compiled": 1, "value": EXPECTED, "init": True}
    (name,) = _saved(tmp_path)
    assert nrt_cache.read(str(tmp_path / name)) is not None
    second = _start_in_child(tmp_path, forbid_compile=True)
    assert second == {"started": True, "compiled": 0, "value": EXPECTED, "init": True}


def test_a_damaged_file_is_compiled_again_and_replaced(tmp_path):
    _start_in_child(tmp_path)
    (name,) = _saved(tmp_path)
    path = tmp_path / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the checksum no longer matches
    path.write_bytes(bytes(data))
    again = _start_in_child(tmp_path)
    assert again == {"started": True, "compiled": 1, "value": EXPECTED, "init": True}
    assert nrt_cache.read(str(path)) is not None  # rewritten whole


def _valid_file(tmp_path, code=b"\x7fELF-code", bitcode=b"BC\xc0\xde-bits"):
    path = str(tmp_path / "m.bin")
    assert nrt_cache.write(path, code, bitcode)
    return path


def test_read_gives_back_what_write_saved(tmp_path):
    path = _valid_file(tmp_path)
    assert nrt_cache.read(path) == (b"\x7fELF-code", b"BC\xc0\xde-bits")
    assert [p for p in os.listdir(tmp_path) if p.startswith(".openge-nrt-")] == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:10],  # shorter than the header
        lambda d: d[:-1],  # a byte missing
        lambda d: d + b"x",  # a byte too many
        lambda d: b"XXXXXXXX" + d[8:],  # another magic
        lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:],  # the checksum changed
        lambda d: d[:-3] + b"abc",  # the contents changed
        lambda d: d + b"\0" * (nrt_cache.MAX_BYTES + 1),  # oversized
        lambda d: b"",  # empty
    ],
)
def test_read_refuses_files_that_do_not_match(tmp_path, damage):
    path = _valid_file(tmp_path)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    assert nrt_cache.read(path) is None


def test_read_of_a_missing_file_and_write_to_an_unwritable_place(tmp_path):
    assert nrt_cache.read(str(tmp_path / "none.bin")) is None
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    assert nrt_cache.write(str(blocker / "sub" / "m.bin"), b"a", b"b") is False
