"""`openge batch` refuses hostile paths before any Ray work: one error line, nothing written."""

from __future__ import annotations

import os

from openge.cli.main import main
from tests.ray.models import compile_onnx, mlp_onnx


def test_fifo_and_folder_paths_are_one_line_errors(tmp_path, capsys):
    om = tmp_path / "m.om"
    om.write_bytes(compile_onnx(mlp_onnx(batch=4)))
    fifo = tmp_path / "rows.parquet"
    os.mkfifo(fifo)
    out = tmp_path / "out.parquet"
    cases = [
        (["--model", str(om), "--input", str(fifo), "--output", str(out)], "FIFO"),
        (["--model", str(fifo), "--input", str(tmp_path), "--output", str(out)], "FIFO"),
        (["--model", str(om), "--input", str(tmp_path), "--output", str(tmp_path)], "folder"),
    ]
    for args, word in cases:
        assert main(["batch", *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("openge batch: error"), err
        assert word in err[0], err
        assert not out.exists()
