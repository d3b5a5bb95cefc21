"""docs/precision.md's per-op list table is what tools/gen_precision_doc.py writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_precision_doc_table_is_current():
    spec = importlib.util.spec_from_file_location(
        "gen_precision_doc", ROOT / "tools" / "gen_precision_doc.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "precision.md").read_text(encoding="utf-8")
    assert module.render(text) == text, (
        "docs/precision.md is out of date: run python tools/gen_precision_doc.py"
    )
    assert "| Conv2D | white | yes |" in text and "| Exp | black |  |" in text
