"""``openge atc --mode=6/1`` on device oms and ``openge om weights``: output and clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from openge.cli.main import main
from openge.om import ge_ir_pb2 as pb
from tests.om.device import devom_builder as b

W = np.arange(8 * 3 * 3 * 3, dtype=np.float16).reshape(8, 3, 3, 3) / 100


@pytest.fixture
def device_file(tmp_path):
    md = b.simple_model_def("cli_model", 2)
    weights = b.Weights()
    b.add_const(
        md.graph[0],
        weights,
        "../../evil/filter",
        b.to_fractal_z(W, 16),
        pb.DT_FLOAT16,
        "FRACTAL_Z",
        "NCHW",
        list(W.shape),
    )
    b.add_const(
        md.graph[0], weights, "filter", W.reshape(-1)[:5].copy(), pb.DT_FLOAT16, "ND", "ND", [5]
    )
    md.graph[0].op[1].attr["fusion_scope"].i = 3
    tbe = b.kernel_store([("relu0", b"\x7fELF" + bytes(12))])
    data = b.device_om(
        [[(0, md.SerializeToString(deterministic=True)), (1, bytes(weights.data)), (3, tbe)]],
        version=b.V1,
    )
    path = tmp_path / "dev.om"
    path.write_bytes(data)
    return path


def test_mode_6_on_a_device_om(device_file, capsys):
    assert main(["atc", "--mode=6", f"--om={device_file}"]) == 0
    out = capsys.readouterr().out
    assert "version 1.0" in out and "tiny partition table" in out
    assert "producer:        8.0.RC1" in out and "Ascend310P3" in out and "ONNX" in out
    assert "Relu 2" in out and "Const 2" in out
    assert "fused nodes:     1" in out and "kernels:         1" in out
    assert "input 0:" in out and "x DT_FLOAT ND [1, 4]" in out
    assert "runs on openge:  no" in out and "relu0 (Relu): fused node" in out


def test_mode_1_json_with_and_without_shapes(device_file, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["atc", "--mode=1", f"--om={device_file}", f"--json={out}"]) == 0
    doc = json.loads(out.read_text())
    ops = doc["model_def"][0]["graph"][0]["op"]
    assert [op["type"] for op in ops].count("Relu") == 2
    assert "output_desc" not in ops[1]
    assert doc["header"]["version"] == "1.0" and doc["table_form"] == "tiny"
    assert doc["summary"][0]["kernel_list"] == [
        {"store": "TBE_KERNELS", "name": "relu0", "size": 16}
    ]
    assert [p["type"] for p in doc["partitions"][0]] == ["MODEL_DEF", "WEIGHTS_DATA", "TBE_KERNELS"]
    assert main(["atc", "--mode=1", f"--om={device_file}", f"--json={out}", "--dump_mode=1"]) == 0
    ops = json.loads(out.read_text())["model_def"][0]["graph"][0]["op"]
    assert ops[1]["output_desc"][0]["shape"]["dim"] == ["1", "4"] or ops[1]["output_desc"][0][
        "shape"
    ]["dim"] == [1, 4]


def test_om_weights_writes_one_npy_per_const_inside_the_folder(device_file, tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["om", "weights", str(device_file), "--out", str(out)]) == 0
    files = sorted(os.listdir(out))
    assert files == ["_.._evil_filter.npy", "filter.npy"]
    np.testing.assert_array_equal(np.load(out / "_.._evil_filter.npy"), W)
    np.testing.assert_array_equal(np.load(out / "filter.npy"), W.reshape(-1)[:5])
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    "content",
    [b"this is fake om\n", "truncated", "corrupted"],
)
def test_bad_files_give_one_error_line(device_file, tmp_path, content):
    good = device_file.read_bytes()
    if content == "truncated":
        content = good[: len(good) // 2]
    elif content == "corrupted":
        content = good[:260] + b"\xff\xff\xff\x7f" + good[264:]
    bad = tmp_path / "bad.om"
    bad.write_bytes(content)
    for args in (["--mode=6"], ["--mode=1", f"--json={tmp_path / 'x.json'}"]):
        proc = subprocess.run(
            [sys.executable, "-m", "openge", "atc", *args, f"--om={bad}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("openge atc: error 1450"), proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "openge", "om", "weights", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
