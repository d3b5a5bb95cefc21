"""Smoke test of the benchmark harness (bench/run.py): two small models, two runs each.

The cold-cache first run (every kernel compiled in a fresh cache) is measured on the MLP
only: squeezenet's took ~100 s of CI's time and adds nothing the MLP's does not check.

It checks that the harness runs end to end, that openge's outputs agree with ONNX Runtime's,
and that it writes its table where it is told to — never into bench/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
MODELS = ("mlp", "squeezenet")


def _snapshot(path: str) -> bytes | None:
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def test_harness_runs_and_agrees_with_onnxruntime(tmp_path):
    before = _snapshot(RESULTS)
    output, raw = tmp_path / "RESULTS.md", tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "bench", "run.py"),
            "--models",
            ",".join(MODELS),
            "--runs",
            "2",
            "--quick",
            "--output",
            str(output),
            "--json",
            str(raw),
            "--cache",
            str(tmp_path / "models"),
            "--cold-models",
            "mlp",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _snapshot(RESULTS) == before, "the smoke run must not touch bench/RESULTS.md"

    text = output.read_text(encoding="utf-8")
    assert text.startswith("# Benchmark results")
    assert "## Latency vs ONNX Runtime" in text
    assert "### Latency" in text and "### Load, memory, compile, size" in text
    assert "geometric mean of openge / ORT" in text
    for name in MODELS:
        assert f"| {name} |" in text
    assert "## Latency vs ONNX Runtime" in proc.stdout  # the table is printed too

    rows = {row["name"]: row for row in json.loads(raw.read_text(encoding="utf-8"))}
    assert set(rows) == set(MODELS)
    for name, row in rows.items():
        assert row["error"] is None, f"{name}: {row['error']}"
        # max |openge − ORT| / max |ORT| over the outputs
        assert row["diff_openge"] <= 1e-4, f"{name}: openge differs from ORT: {row['diff_openge']}"
        assert all(len(times) >= 2 for times in row["times"].values()), name
        assert row["om_bytes"] > 0 and row["onnx_bytes"] > 0
        assert row["load_openge_s"] > 0 and row["load_ort_s"] > 0
        assert row["rss_openge"]["peak_kib"] > 0 and row["rss_ort"]["peak_kib"] > 0
        assert row["diff_reference"] <= 1e-4, f"{name}: onnx.reference differs from ORT"
        assert row["rss_openge"]["first_s"] > 0, name  # the warm-cache first run
    # the cold-cache first run only where asked: a fresh cache, the MLP's kernels compiled
    assert rows["mlp"]["rss_openge_cold"]["first_s"] > rows["mlp"]["rss_openge"]["first_s"]
    assert rows["squeezenet"]["rss_openge_cold"] == {}
    assert "| squeezenet | yes |" in text  # its first-run row, the cold column "—"
