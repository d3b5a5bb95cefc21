"""CLI misuse: one clean error line and exit 1, checked before any work; --log=debug shows the
traceback; outputs are written atomically (issue 15 case 7)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from openge.cli.main import main
from tests.security.capped import run_jobs
from tests.security.craft import seed

#: A folder nobody can create files in, even root (the test suite may run as root).
UNWRITABLE = "/proc/openge_no_such_folder"


@pytest.fixture
def om(tmp_path):
    path = tmp_path / "m.om"
    path.write_bytes(seed())
    return str(path)


@pytest.fixture
def onnx_file(tmp_path):
    from tests.fuzz.seeds import cnn_onnx

    path = tmp_path / "m.onnx"
    path.write_bytes(cnn_onnx())
    return str(path)


def _one_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def _files(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("mode", ["1", "6"])
@pytest.mark.parametrize("content", ["garbage", "truncated", "header_only", "onnx_as_om", "empty"])
def test_atc_inspect_modes_on_bad_files(tmp_path, capsys, mode, content, onnx_file):
    data = {
        "garbage": b"\x00garbage" * 200,
        "truncated": seed()[:5000],
        "header_only": seed()[:256],
        "onnx_as_om": Path(onnx_file).read_bytes(),
        "empty": b"",
    }[content]
    path = _files(tmp_path, "bad.om", data)
    argv = ["atc", f"--mode={mode}", f"--om={path}"]
    if mode == "1":
        argv.append(f"--json={tmp_path / 'out.json'}")
    assert main(argv) == 1
    _one_line(capsys, "openge atc: error")
    assert not (tmp_path / "out.json").exists()


def test_atc_mode_6_on_an_onnx_file_says_what_to_do(onnx_file, capsys):
    assert main(["atc", "--mode=6", f"--om={onnx_file}"]) == 1
    assert "--mode=1" in _one_line(capsys, "ONNX")


def test_atc_mode_1_on_a_broken_onnx_file(tmp_path, capsys):
    path = _files(tmp_path, "broken.onnx", b"\x08\x07garbage")
    assert main(["atc", "--mode=1", f"--om={path}", f"--json={tmp_path / 'o.json'}"]) == 1
    _one_line(capsys, "error")


@pytest.mark.parametrize("where", ["folder", "parent_is_file", "unwritable"])
def test_atc_json_output_problems_are_reported_before_reading(om, tmp_path, capsys, where):
    target = {
        "folder": str(tmp_path),
        "parent_is_file": os.path.join(om, "out.json"),
        "unwritable": f"{UNWRITABLE}/out.json",
    }[where]
    assert main(["atc", "--mode=1", f"--om={om}", f"--json={target}"]) == 1
    _one_line(capsys, "--json")


@pytest.mark.parametrize("where", ["folder", "parent_is_file", "unwritable"])
def test_atc_convert_output_problems_are_reported_before_compiling(
    onnx_file, tmp_path, capsys, where
):
    (tmp_path / "dir.om").mkdir()
    prefix = {
        "folder": str(tmp_path / "dir"),
        "parent_is_file": os.path.join(onnx_file, "m"),
        "unwritable": f"{UNWRITABLE}/m",
    }[where]
    assert main(["atc", f"--model={onnx_file}", "--framework=5", f"--output={prefix}"]) == 1
    _one_line(capsys, "--output")


def test_atc_convert_writes_atomically(onnx_file, tmp_path, capsys):
    assert main(["atc", f"--model={onnx_file}", "--framework=5", f"--output={tmp_path / 'm'}"]) == 0
    assert (tmp_path / "m.om").is_file()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp_")]


def test_run_with_an_npz_input(om, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", x=np.zeros((1, 3, 8, 8), np.float32))
    assert main(["run", "--model", om, "--input", str(tmp_path / "x.npz")]) == 1
    _one_line(capsys, ".npz")


@pytest.mark.parametrize(
    "content",
    [
        b"garbage",
        b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, "
        b"'shape': (1099511627776, 1099511627776), }" + b" " * 40 + b"\n",
    ],
)
def test_run_with_a_bad_npy_input(om, tmp_path, capsys, content):
    path = _files(tmp_path, "x.npy", content)
    assert main(["run", "--model", om, "--input", path]) == 1
    _one_line(capsys, "input file")


def test_run_with_a_wrong_shape_input(om, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    assert main(["run", "--model", om, "--input", str(tmp_path / "x.npy")]) == 1
    _one_line(capsys, "shape")


def test_run_with_a_fifo_input_does_not_hang(om, tmp_path):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    (out,) = run_jobs(
        [("tests.security.jobs:cli", [["run", "--model", om, "--input", str(fifo)]])],
        tmp_path,
        timeout=120,
    )
    assert out.value["code"] == 1 and "FIFO" in out.value["stderr"][0], out


@pytest.mark.parametrize("where", ["file", "parent_is_file", "unwritable"])
def test_run_output_problems_are_reported_before_running(om, tmp_path, capsys, where):
    target = {
        "file": om,
        "parent_is_file": os.path.join(om, "out"),
        "unwritable": f"{UNWRITABLE}/out",
    }[where]
    assert main(["run", "--model", om, "--output", target]) == 1
    assert "inference" not in capsys.readouterr().out  # the model never ran
    # (capsys was read above; check the error line separately)
    assert main(["run", "--model", om, "--output", target]) == 1
    _one_line(capsys, "--output")


def test_run_saves_outputs_atomically(om, tmp_path, capsys):
    out = tmp_path / "outs"
    assert main(["run", "--model", om, "--output", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["output_0.npy"]
    assert np.load(out / "output_0.npy").shape == (1, 5)


def test_run_crafted_model_is_one_line(tmp_path, capsys):
    from tests.security.cases import hostile

    path = _files(tmp_path, "h.om", hostile("conv_groups_0"))
    assert main(["run", "--model", path]) == 1
    _one_line(capsys, "groups")


def test_log_debug_shows_the_traceback(tmp_path, capsys):
    path = _files(tmp_path, "bad.om", b"garbage" * 100)
    assert main(["atc", "--mode=6", f"--om={path}", "--log=debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "GeError" in err
    assert err.rstrip().splitlines()[-1].startswith("openge atc: error")


def test_an_unexpected_exception_is_one_line_too(monkeypatch, om, capsys):
    """The single top-level handler: even an openge bug prints one line and exits 1."""
    import openge.cli.run as run

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(run, "run_command", broken)
    assert main(["run", "--model", om]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError" in err and "--log=debug" in err
