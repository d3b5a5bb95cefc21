"""numba is imported only when a loaded model needs a compiled kernel; its cache goes to the
user cache folder (XDG_CACHE_HOME here), never beside the package; the thread setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from openge import kernels

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code: str, env: dict[str, str]) -> str:
    full = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    full.update(env, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_numba_is_imported_only_for_a_compiled_kernel(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "import openge.runtime, openge.compiler, openge.es\n"
        "print('numba' in sys.modules)\n"
        "from openge import kernels\n"
        "kernels.load('pooling')\n"
        "print('numba' in sys.modules)\n"
        "print(kernels.cache_dir())\n"
    )
    lines = _run(code, {"XDG_CACHE_HOME": str(tmp_path)}).splitlines()
    assert lines[:2] == ["False", "True"]
    assert lines[2] == os.path.join(str(tmp_path), "openge", "numba", kernels.sources_digest())


def test_the_users_numba_cache_dir_wins(tmp_path):
    code = "from openge import kernels\nprint(kernels.cache_dir())\n"
    assert _run(code, {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}) == str(tmp_path / "mine")


def test_thread_setting():
    kernels.load("pooling")
    before = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        assert kernels.get_num_threads() == 1
        kernels.set_num_threads(None)
        assert kernels.get_num_threads() == kernels.default_num_threads()
        with pytest.raises(ValueError):
            kernels.set_num_threads(0)
    finally:
        kernels.set_num_threads(before if before != kernels.default_num_threads() else None)


def test_wide_vectors_only_on_avx512_hosts(monkeypatch):
    """On an AVX-512 host numba's CPU features prefer 512-bit loops; elsewhere, or when
    llvmlite cannot read the features, numba keeps its defaults (None)."""
    from llvmlite import binding

    class Features(dict):
        def flatten(self):
            return ",".join(("+" if on else "-") + name for name, on in self.items())

    monkeypatch.setattr(binding, "get_host_cpu_features", lambda: Features(avx512f=True, fma=True))
    assert kernels._wide_vector_features() == "+avx512f,+fma,-prefer-256-bit"
    monkeypatch.setattr(binding, "get_host_cpu_features", lambda: Features(avx2=True))
    assert kernels._wide_vector_features() is None

    def unreadable():
        raise RuntimeError("failed to get host cpu features")

    monkeypatch.setattr(binding, "get_host_cpu_features", unreadable)
    assert kernels._wide_vector_features() is None


def test_the_users_cpu_features_are_kept(tmp_path):
    code = (
        "from openge import kernels\n"
        "kernels.load('norm')\n"
        "from numba.core import config\n"
        "print(config.CPU_FEATURES)\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path), "NUMBA_CPU_FEATURES": "+sse2"}
    assert _run(code, env) == "+sse2"


def test_cached_kernels_load_without_numbas_lowering_library(tmp_path):
    """A kernel found in the cache loads and runs without numba's refresh of its target
    context, which imports numba's whole lowering library (numba.np.arraymath, and with it
    SciPy when installed): 0.2-0.4 s and tens of MiB at a model's first load. Its errors still
    surface, and a function that is not cached still compiles afterwards in that process."""
    code = (
        "import sys, numpy as np\n"
        "from openge import kernels\n"
        "m = kernels.load('pooling')\n"
        "x = np.arange(2 * 9 * 9, dtype=np.float32).reshape(1, 2, 9, 9)\n"
        "y = np.empty((1, 2, 4, 4), np.float32)\n"
        "m.max_pool_rows_3x3s2(x, y, 3, 3, 2, 2, 0, 0, 0, 2, 0, 4)\n"
        "print(repr(y.tolist()))\n"
        "try:\n"
        "    m.max_pool_rows_3x3s2(x, y, 2, 2, 2, 2, 0, 0, 0, 2, 0, 4)\n"
        "except ValueError:\n"
        "    print('ValueError')\n"
        "print('numba.np.arraymath' in sys.modules)\n"
        "from numba import njit\n"
        "print(njit(lambda a: a.sum())(np.ones(3)))\n"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    cold = _run(code, env).splitlines()
    warm = _run(code, env).splitlines()
    # a 3x3 window at stride 2 over an increasing plane: its largest is its bottom-right cell
    x = [[[c * 81 + 9 * r + k for k in range(9)] for r in range(9)] for c in range(2)]
    want = [
        [
            [[float(x[c][2 * i + 2][2 * j + 2]) for j in range(4)] for i in range(4)]
            for c in range(2)
        ]
    ]
    assert cold[0] == warm[0] == repr(want)
    assert cold[1] == warm[1] == "ValueError"
    assert cold[2] == "True"  # compiled: numba refreshed its context as it always does
    assert warm[2] == "False"  # loaded from the cache: no lowering library
    assert cold[3] == warm[3] == "3.0"
