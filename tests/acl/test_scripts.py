"""``python -m openge.acl SCRIPT``: scripts written like the Ascend samples (tests/acl/scripts/)
run unchanged with ``import acl`` and print ONNX Runtime's top-5."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.acl.conftest import SHAPE

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _run(script: str, *args: str) -> list[list[int]]:
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "openge.acl", os.path.join(HERE, "scripts", script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [eval_list(line) for line in proc.stdout.splitlines() if line.startswith("top5:")]


def eval_list(line: str) -> list[int]:
    return [int(v) for v in line.split(":", 1)[1].strip(" []").split(",")]


@pytest.fixture
def sample(tmp_path, reference):
    x = np.random.default_rng(11).normal(size=SHAPE).astype(np.float32)
    path = str(tmp_path / "x.npy")
    np.save(path, x)
    top5 = reference(x)[0].flatten().argsort()[-1:-6:-1].tolist()
    return x, path, top5


def test_quickstart_style(models, sample):
    _, path, top5 = sample
    assert _run("quickstart_style.py", models["om"], path) == [top5]


def test_acllite_style(models, sample):
    _, path, top5 = sample
    assert _run("acllite_style.py", models["om"], path) == [top5]


def test_async_style_on_fp16_model(models, sample, tmp_path, reference):
    x, _, _ = sample
    x16 = x.astype(np.float16)
    path = str(tmp_path / "x16.npy")
    np.save(path, x16)
    top5 = reference(x16.astype(np.float32))[0].flatten().argsort()[-1:-6:-1].tolist()
    assert _run("async_style.py", models["om_fp16"], path, "4") == [top5] * 4


def test_install_and_usage(capsys):
    import openge.acl
    from openge.acl.__main__ import main

    openge.acl.install()
    import acl

    assert acl is openge.acl and sys.modules["acl.rt"] is openge.acl.rt
    assert main([]) == 2
    assert main(["/nonexistent/script.py"]) == 2
