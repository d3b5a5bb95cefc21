"""The Python snippets in README.md, docs/workflow.md and docs/dynamic.md run, in order, as
written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("doc", ["docs/workflow.md", "README.md", "docs/dynamic.md"])
def test_doc_snippets_run(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASCEND_WORK_PATH", str(tmp_path))
    blocks = python_blocks(ROOT / doc)
    assert blocks, f"{doc} has no python blocks"
    namespace: dict = {"__name__": "__doc_snippet__"}
    for i, block in enumerate(blocks):
        code = compile(block, f"{doc}[block {i}]", "exec")
        exec(code, namespace)
