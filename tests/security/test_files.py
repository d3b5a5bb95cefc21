"""Files that are not regular files, and files that change under a loaded model.

Every job runs in a capped child with a timeout: a hang on a FIFO fails the test instead of
blocking the suite, and a SIGBUS kills only the child (reported as a failure).
"""

from __future__ import annotations

import os

import pytest

from tests.security.capped import assert_bounded, run_jobs
from tests.security.craft import seed


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "model.om"
    os.mkfifo(path)
    return str(path)


def _entries(target: str, tmp_path) -> dict[str, tuple[str, list]]:
    return {
        "from_file": ("tests.security.jobs:load_file", [target]),
        "query_size": ("tests.security.jobs:query", [target]),
        "check_compatibility": ("tests.security.jobs:compat", [target]),
        "run": ("tests.security.jobs:cli", [["run", "--model", target]]),
        "atc_mode_6": ("tests.security.jobs:cli", [["atc", "--mode=6", f"--om={target}"]]),
        "atc_mode_1": (
            "tests.security.jobs:cli",
            [["atc", "--mode=1", f"--om={target}", f"--json={tmp_path / 'o.json'}"]],
        ),
        "atc_mode_0": (
            "tests.security.jobs:cli",
            [["atc", f"--model={target}", "--framework=5", f"--output={tmp_path / 'o'}"]],
        ),
    }


def _check_refused(results: dict, expect: str) -> None:
    for name, out in results.items():
        if name in ("from_file", "query_size", "check_compatibility"):
            assert out.error == "GeError", f"{name}: {out.error} {out.message}"
            assert expect in out.message, f"{name}: {out.message}"
        else:
            assert out.error is None, f"{name}: {out.error} {out.message}"
            assert out.value["code"] == 1 and len(out.value["stderr"]) == 1, (name, out.value)
            assert expect in out.value["stderr"][0], (name, out.value)
        assert_bounded(out, name)


def test_a_fifo_is_refused_everywhere_without_hanging(fifo, tmp_path):
    entries = _entries(fifo, tmp_path)
    outs = run_jobs(list(entries.values()), tmp_path, timeout=120)
    _check_refused(dict(zip(entries, outs)), "FIFO")


def test_a_folder_is_refused_everywhere(tmp_path):
    folder = tmp_path / "a_folder.om"
    folder.mkdir()
    entries = _entries(str(folder), tmp_path)
    outs = run_jobs(list(entries.values()), tmp_path, timeout=120)
    _check_refused(dict(zip(entries, outs)), "folder")


def test_a_device_file_is_refused(tmp_path):
    entries = _entries("/dev/zero", tmp_path)
    outs = run_jobs(list(entries.values()), tmp_path, timeout=120)
    _check_refused(dict(zip(entries, outs)), "device")


@pytest.mark.parametrize("keep", [0, 256, 4096, 8000])
def test_a_mapped_model_truncated_on_disk_gives_ge_error_not_sigbus(tmp_path, keep):
    path = tmp_path / "m.om"
    data = seed()
    assert len(data) > 8000
    path.write_bytes(data)
    (out,) = run_jobs([("tests.security.jobs:shrink_then_execute", [str(path), keep])], tmp_path)
    assert out.error == "GeError", out.message
    assert "shrank" in out.message


def test_a_file_replaced_by_rename_does_not_affect_the_loaded_model(tmp_path):
    """The documented way to update a model: rename a new file over it."""
    import numpy as np

    from openge.runtime import Model

    path = tmp_path / "m.om"
    path.write_bytes(seed())
    x = [np.ones((1, 3, 8, 8), np.float32)]
    with Model.from_file(str(path)) as model:
        before = model.execute(x)[0].copy()
        other = tmp_path / "other.om"
        other.write_bytes(seed("transformer"))
        os.replace(other, path)
        np.testing.assert_array_equal(model.execute(x)[0], before)


def test_an_empty_file_is_refused(tmp_path):
    from openge.errors import GeError
    from openge.runtime import Model, query_size

    path = tmp_path / "empty.om"
    path.write_bytes(b"")
    with pytest.raises(GeError, match="empty"):
        Model.from_file(str(path))
    with pytest.raises(GeError):
        query_size(str(path))
