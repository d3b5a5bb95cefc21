"""DataType ↔ NumPy dtype mapping; ml_dtypes imported only when a low-precision type is used."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from openge.errors import GeError
from openge.graph import DataType
from openge.graph.types import as_data_type, from_numpy_dtype, to_numpy_dtype


def _run(code: str) -> str:
    """``code`` in a fresh interpreter (a module import state of its own); its stdout."""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_importing_the_runtime_does_not_import_ml_dtypes():
    # importing ml_dtypes registers its types with NumPy: ~0.6 s a process pays for nothing
    # unless a model holds bfloat16 or float8
    out = _run(
        "import sys\n"
        "import openge.runtime, openge.graph, openge.ops\n"
        "print('ml_dtypes' in sys.modules)\n"
    )
    assert out == "False"


def test_low_precision_types_load_ml_dtypes_when_first_asked_for():
    out = _run(
        "import sys\n"
        "from openge.graph import DataType\n"
        "from openge.graph.types import from_numpy_dtype\n"
        "before = 'ml_dtypes' in sys.modules\n"
        "dtype = DataType.DT_BF16.np_dtype\n"
        "print(before, 'ml_dtypes' in sys.modules, dtype.name,\n"
        "      from_numpy_dtype(dtype).name, from_numpy_dtype('float8_e4m3fn').name)\n"
    )
    assert out == "False True bfloat16 DT_BF16 DT_FLOAT8_E4M3FN"


def test_threads_asking_at_once_all_get_every_low_precision_type():
    out = _run(
        "import threading\n"
        "from openge.graph import DataType\n"
        "types = [DataType.DT_FLOAT8_E4M3FN, DataType.DT_FLOAT8_E5M2, DataType.DT_BF16]\n"
        "got, start = [], threading.Barrier(8)\n"
        "def ask():\n"
        "    start.wait()\n"
        "    got.append(tuple(t.np_dtype.name for t in types))\n"
        "threads = [threading.Thread(target=ask) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(len(got), sorted(set(got)))\n"
    )
    assert out == "8 [('float8_e4m3fn', 'float8_e5m2', 'bfloat16')]"


def test_a_name_numpy_knows_only_through_ml_dtypes_maps_in_a_fresh_process():
    out = _run(
        "from openge.graph.types import from_numpy_dtype, as_data_type\n"
        "print(from_numpy_dtype('bfloat16').name, as_data_type('float8_e5m2').name)\n"
    )
    assert out == "DT_BF16 DT_FLOAT8_E5M2"


@pytest.mark.parametrize(
    ("data_type", "name"),
    [
        (DataType.DT_BF16, "bfloat16"),
        (DataType.DT_FLOAT8_E5M2, "float8_e5m2"),
        (DataType.DT_FLOAT8_E4M3FN, "float8_e4m3fn"),
        (DataType.DT_FLOAT, "float32"),
        (DataType.DT_INT64, "int64"),
    ],
)
def test_types_map_both_ways(data_type, name):
    import ml_dtypes  # noqa: F401 (the reference's own registration of the names)

    dtype = to_numpy_dtype(data_type)
    assert dtype == np.dtype(name)
    assert from_numpy_dtype(dtype) is data_type
    assert as_data_type(name) is data_type
    assert data_type.itemsize == np.dtype(name).itemsize


def test_unknown_types_name_the_low_precision_ones_too():
    with pytest.raises(GeError) as err:
        from_numpy_dtype(np.dtype("V3"))
    assert "bfloat16" in err.value.message and "float32" in err.value.message
    with pytest.raises(GeError) as err:
        to_numpy_dtype(DataType.DT_STRING)
    assert "DT_BF16" in err.value.message and "DT_FLOAT" in err.value.message
