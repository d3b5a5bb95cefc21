"""Write docs/ops.md from the op catalog (run: python tools/gen_ops_doc.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openge.ops import FAMILIES, REQUIRED, Trait


def _attr_text(attr) -> str:
    if attr.default is REQUIRED:
        return f"`{attr.name}` ({attr.type.name.lower()}, required)"
    default = attr.default
    if hasattr(default, "name"):
        default = default.name
    return f"`{attr.name}` ({attr.type.name.lower()}, default `{default!r}`)"


def _inputs_text(schema) -> str:
    parts = []
    for spec in schema.inputs:
        mark = "*" if spec.dynamic else "?" if spec.optional else ""
        parts.append(f"`{spec.name}{mark}`")
    return ", ".join(parts) or "—"


def render() -> str:
    """The Markdown text of docs/ops.md."""
    lines = [
        "# Op catalog",
        "",
        "Generated from the op registry by `python tools/gen_ops_doc.py`; a test fails when",
        "this file is out of date. Names, inputs and attributes follow CANN's op prototypes",
        "(Ascend IR).",
        "Inputs: `name?` optional, `name*` dynamic (any number).",
        "",
    ]
    total = 0
    for family in FAMILIES:
        schemas = sorted(family.SCHEMAS, key=lambda s: s.op_type)
        if not schemas:
            continue
        title = family.__name__.rsplit(".", 1)[-1]
        lines += [f"## {title} ({len(schemas)} ops)", ""]
        lines += [
            "| op | inputs | outputs | attrs | semantics | ONNX / TF |",
            "|---|---|---|---|---|---|",
        ]
        for s in schemas:
            total += 1
            outputs = ", ".join(f"`{o.name}{'*' if o.dynamic else ''}`" for o in s.outputs) or "—"
            attrs = "; ".join(_attr_text(a) for a in s.attrs) or "—"
            doc = s.doc.replace("|", "\\|").replace("\n", " ")
            traits = sorted(t.name.lower() for t in s.traits if t != Trait.ELEMENTWISE)
            if traits:
                doc += f" _({', '.join(traits)})_"
            lines.append(
                f"| {s.op_type} | {_inputs_text(s)} | {outputs} | {attrs} | {doc} | "
                f"{s.onnx.replace('|', '/')} |"
            )
        lines.append("")
    lines.insert(6, f"{total} op types.\n")
    return "\n".join(lines)


if __name__ == "__main__":
    (ROOT / "docs" / "ops.md").write_text(render())
    print("wrote docs/ops.md")
