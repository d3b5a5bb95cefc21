"""DESIGN §2's layering, checked over every module: a package imports only from layers below it
(or from itself), and there are no import cycles between packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "openge"

#: Layer of each package (lower imports nothing higher). Top-level helper modules sit at the
#: bottom (errors, version, fileio) or at the top (__main__).
LAYER = {
    "errors": 0, "version": 0, "fileio": 0, "weight_folders": 0, "__init__": 0,
    "graph": 1, "kernels": 1,
    "ops": 2,
    "es": 3, "parser": 3, "compiler": 3, "om": 3,
    "runtime": 4,
    "session": 5, "offline_compile": 5, "acl": 5, "ray": 5, "ge_global": 5,
    "cli": 6, "__main__": 6,
}  # fmt: skip
#: Same-layer imports DESIGN §2 allows: the compiler and parser use the om plain-data classes and
#: the es builder; the offline compiler and ge_global drive sessions.
SIDEWAYS = {
    ("compiler", "om"), ("parser", "om"), ("es", "om"), ("parser", "compiler"),
    ("offline_compile", "session"), ("ge_global", "session"), ("session", "ge_global"),
    ("acl", "session"), ("ray", "session"),
    ("__init__", "errors"), ("__init__", "version"), ("__main__", "cli"),
}  # fmt: skip


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "openge" and len(parts) > 1:
                found.add(parts[1])
    return found


def _edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        if path.name.endswith("_pb2.py"):
            continue
        source = _package(path)
        for target in _imported_packages(path):
            if target != source:
                edges.setdefault((source, target), []).append(str(path.relative_to(ROOT)))
    return edges


def test_every_package_has_a_layer():
    packages = {_package(p) for p in ROOT.rglob("*.py")}
    assert not packages - LAYER.keys(), sorted(packages - LAYER.keys())


def test_no_upward_imports():
    bad = [
        f"{files[0]} ({source}, layer {LAYER[source]}) imports openge.{target} "
        f"(layer {LAYER[target]})"
        for (source, target), files in _edges().items()
        if LAYER[target] > LAYER[source]
        or (LAYER[target] == LAYER[source] and (source, target) not in SIDEWAYS)
    ]
    assert not bad, "\n".join(sorted(bad))


def test_no_package_cycles():
    graph: dict[str, set[str]] = {}
    for source, target in _edges():
        graph.setdefault(source, set()).add(target)
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, nxt]))
                elif nxt not in path and len(path) < 8:
                    stack.append((nxt, [*path, nxt]))
    allowed = {"ge_global -> session -> ge_global", "session -> ge_global -> session"}
    assert not [c for c in cycles if c not in allowed], cycles
