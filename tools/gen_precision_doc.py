"""Write the op-list table of docs/precision.md from openge.compiler.precision_lists.

    python tools/gen_precision_doc.py          # rewrite the table
    python tools/gen_precision_doc.py --check  # exit 1 when the file is out of date

The table sits between the ``<!-- op-lists -->`` and ``<!-- /op-lists -->`` markers; a test
fails when it differs from what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openge.compiler.precision_lists import CUBE, default_list
from openge.ops import all_schemas

DOC = ROOT / "docs" / "precision.md"
START, END = "<!-- op-lists -->", "<!-- /op-lists -->"


def table() -> str:
    """The per-op table: list under allow_mix_precision and whether it is a cube op."""
    lines = [
        "| op | mixed-precision list | cube op |",
        "|---|---|---|",
    ]
    for schema in all_schemas():
        kind = default_list(schema.op_type) or "— (never changes dtype)"
        cube = "yes" if schema.op_type in CUBE else ""
        lines.append(f"| {schema.op_type} | {kind} | {cube} |")
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with the table between the markers replaced."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in argv:
        return 0 if new == text else 1
    DOC.write_text(new, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
