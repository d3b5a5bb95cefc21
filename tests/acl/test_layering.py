"""openge.acl sits above the runtime (DESIGN §2): it imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = (
    "openge.acl",
    "openge.runtime",
    "openge.om",
    "openge.graph",
    "openge.ops",
    "openge.errors",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("openge")}


def test_acl_imports_only_lower_layers():
    bad = {
        f"{p.name}: {name}"
        for p in (ROOT / "openge" / "acl").glob("*.py")
        for name in _imports(p)
        if not name.startswith(ALLOWED)
    }
    assert not bad, sorted(bad)


def test_aipp_compiler_modules_do_not_import_upward():
    for name in ("boundary.py", "insert_aipp.py", "aipp_config.py"):
        for imported in _imports(ROOT / "openge" / "compiler" / name):
            assert not imported.startswith(
                ("openge.runtime", "openge.session", "openge.acl", "openge.cli")
            ), (name, imported)
