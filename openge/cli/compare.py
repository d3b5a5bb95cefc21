"""``openge compare A B``: compare two data dumps tensor by tensor (docs/dump.md).

Either side is a dump folder (searched recursively) of GE binary dump files and/or golden
``{op_name}.{output_index}.{timestamp}.npy`` files. Outputs are matched by source op name and
output index (a fused task's outputs by the source op they compute, ``original_op``); the
table follows A's execution order. Metrics per tensor, as Ascend's accuracy comparison:
cosine similarity, max absolute error, accumulated relative error Σ|a−b| / Σ|b|, and relative
Euclidean distance ‖a−b‖₂ / ‖b‖₂ (B is the reference). The first op whose cosine similarity is
below ``--cosine`` (default 0.99) is marked as the first divergence.
"""

from __future__ import annotations

import argparse
import csv
import html
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from openge.errors import PARAM_INVALID, GeError

#: Most dump files a side may hold.
MAX_FILES = 200_000
_NPY = re.compile(r"^(?P<op>.+)\.(?P<idx>\d+)\.(?P<ts>\d+)\.npy$")
_BIN = re.compile(r"^(?P<type>[^.]+)\.(?P<op>.+)\.(?P<task>\d+)\.(?P<stream>\d+)\.(?P<ts>\d+)$")


@dataclass
class Entry:
    """One dumped output: where it came from and its value."""

    key: tuple[str, int]
    order: tuple[int, int]
    op_type: str
    array: np.ndarray


@dataclass
class Row:
    """One compared output."""

    index: int
    op_name: str
    output_index: int
    op_type: str
    shape: str
    cosine: float
    max_abs: float
    acc_rel: float
    rel_euclid: float
    note: str = ""
    divergent: bool = False


def add_parser(sub: argparse._SubParsersAction, log_levels: tuple[str, ...]) -> None:
    """Register ``openge compare``."""
    p = sub.add_parser(
        "compare",
        help="compare two data dumps (GE binary or .npy) tensor by tensor",
        description="Compare dump A (e.g. a force_fp16 run) against dump B (the golden "
        "reference): cosine similarity, max absolute error, accumulated relative error and "
        "relative Euclidean distance per op output, in A's execution order.",
    )
    p.add_argument("a", help="dump folder (or file) to check")
    p.add_argument("b", help="reference dump folder (or file), e.g. the fp32 golden")
    p.add_argument("--cosine", type=float, default=0.99, help="divergence threshold")
    p.add_argument("--csv", default=None, help="write the table as CSV")
    p.add_argument(
        "--chart", default=None, help="per-layer chart: .png (needs openge[plot]) or .html"
    )
    p.add_argument("--log", default="warning", choices=log_levels)


def load_dump(path: str) -> dict[tuple[str, int], Entry]:
    """Every output of a dump folder by (op name, output index): the earliest execution."""
    from openge.runtime.dump_file import read_dump_file

    files = _files(path)
    entries: dict[tuple[str, int], Entry] = {}
    for file in files:
        base = os.path.basename(file)
        m = _NPY.match(base)
        found: list[Entry] = []
        if m:
            try:
                array = np.load(file, allow_pickle=False)
            except (OSError, ValueError) as err:
                raise GeError(PARAM_INVALID, f"cannot read {file}: {err}") from None
            key = (m["op"], int(m["idx"]))
            found.append(Entry(key, (int(m["ts"]), 0), "", array))
        else:
            m = _BIN.match(base)
            if not m:
                continue
            dump = read_dump_file(file)
            order = (int(m["ts"]), int(m["task"]))
            for k, t in enumerate(dump.outputs):
                key = (
                    t.original_op or dump.op_name or m["op"],
                    t.original_index if t.original_op else k,
                )
                found.append(Entry(key, order, m["type"], t.array))
        for e in found:
            if e.key not in entries or e.order < entries[e.key].order:
                entries[e.key] = e
    if not entries:
        raise GeError(PARAM_INVALID, f"{path} holds no dump files (GE binary or .npy)")
    return entries


def _files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise GeError(PARAM_INVALID, f"dump {path!r} does not exist")
    out = []
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs.sort()
        for n in sorted(names):
            out.append(os.path.join(root, n))
            if len(out) > MAX_FILES:
                raise GeError(PARAM_INVALID, f"{path} holds more than {MAX_FILES} files")
    return out


def metrics(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """(cosine similarity, max abs error, accumulated relative error, relative Euclidean
    distance) of ``a`` against the reference ``b`` (computed in float64)."""
    x = a.astype(np.float64).reshape(-1)
    y = b.astype(np.float64).reshape(-1)
    if x.size == 0:
        return 1.0, 0.0, 0.0, 0.0
    with np.errstate(all="ignore"):
        diff = x - y
        nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
        if nx == 0.0 and ny == 0.0:
            cos = 1.0
        elif nx == 0.0 or ny == 0.0:
            cos = 0.0
        else:
            cos = float(np.dot(x, y) / (nx * ny))
        max_abs = float(np.max(np.abs(diff)))
        sb = float(np.sum(np.abs(y)))
        sd = float(np.sum(np.abs(diff)))
        acc_rel = sd / sb if sb else (0.0 if sd == 0 else math.inf)
        nd = float(np.linalg.norm(diff))
        rel = nd / ny if ny else (0.0 if nd == 0 else math.inf)
    return cos, max_abs, acc_rel, rel


def compare_dumps(a: str, b: str, cosine: float = 0.99) -> list[Row]:
    """The comparison table of dump ``a`` against reference ``b`` (A's execution order)."""
    left, right = load_dump(a), load_dump(b)
    rows: list[Row] = []
    first = None
    for i, e in enumerate(sorted(left.values(), key=lambda e: (e.order, e.key))):
        ref = right.get(e.key)
        name, k = e.key
        shape = "x".join(str(d) for d in e.array.shape) or "scalar"
        if ref is None:
            rows.append(Row(i, name, k, e.op_type, shape, *(math.nan,) * 4, "not in B"))
            continue
        if ref.array.shape != e.array.shape:
            note = f"shape differs (B: {'x'.join(map(str, ref.array.shape))})"
            if ref.array.size != e.array.size:
                rows.append(Row(i, name, k, e.op_type, shape, *(math.nan,) * 4, note))
                continue
        else:
            note = ""
        if e.array.dtype.kind not in "fiubV" or ref.array.dtype.kind not in "fiubV":
            rows.append(Row(i, name, k, e.op_type, shape, *(math.nan,) * 4, "not numeric"))
            continue
        m = metrics(e.array, ref.array.reshape(e.array.shape))
        row = Row(i, name, k, e.op_type, shape, *m, note)
        if first is None and not (m[0] >= cosine):
            row.divergent = True
            first = row
        rows.append(row)
    return rows


def first_divergence(rows: list[Row]) -> Row | None:
    """The row marked as the first divergent op."""
    return next((r for r in rows if r.divergent), None)


def format_table(rows: list[Row]) -> str:
    """The table as text."""
    head = f"{'#':>5}  {'op':<40} {'out':>3} {'shape':<18} {'cosine':>9} {'max_abs':>10} "
    head += f"{'acc_rel':>10} {'rel_euc':>10}  note"
    lines = [head]
    for r in rows:
        mark = "*" if r.divergent else " "
        lines.append(
            f"{r.index:>5}{mark} {r.op_name[:40]:<40} {r.output_index:>3} {r.shape[:18]:<18} "
            f"{r.cosine:>9.6f} {r.max_abs:>10.4g} {r.acc_rel:>10.4g} {r.rel_euclid:>10.4g}  "
            f"{r.note}"
        )
    return "\n".join(lines)


FIELDS = (
    "index",
    "op_name",
    "output_index",
    "op_type",
    "shape",
    "cosine",
    "max_abs",
    "acc_rel",
    "rel_euclid",
    "first_divergent",
    "note",
)


def write_csv(rows: list[Row], path: str) -> None:
    """The table as CSV (one row per compared output)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for r in rows:
            w.writerow(
                [
                    r.index,
                    r.op_name,
                    r.output_index,
                    r.op_type,
                    r.shape,
                    f"{r.cosine:.8g}",
                    f"{r.max_abs:.8g}",
                    f"{r.acc_rel:.8g}",
                    f"{r.rel_euclid:.8g}",
                    int(r.divergent),
                    r.note,
                ]
            )


def write_chart(rows: list[Row], path: str, cosine: float) -> None:
    """Per-layer cosine similarity and relative error: PNG through matplotlib (the
    ``openge[plot]`` extra), else a self-contained HTML page with an SVG chart."""
    if path.lower().endswith(".png"):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise GeError(
                PARAM_INVALID,
                "a PNG chart needs matplotlib: pip install openge[plot], or write --chart "
                "x.html (no dependency)",
            ) from None
        xs = [r.index for r in rows]
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
        ax1.plot(xs, [r.cosine for r in rows], lw=1)
        ax1.axhline(cosine, color="red", lw=0.5)
        ax1.set_ylabel("cosine similarity")
        ax2.semilogy(xs, [max(r.rel_euclid, 1e-12) for r in rows], lw=1)
        ax2.set_ylabel("relative Euclidean distance")
        ax2.set_xlabel("op (execution order)")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(rows, cosine))


def render_html(rows: list[Row], cosine: float) -> str:
    """A self-contained HTML page: an SVG chart (cosine and log10 relative distance per
    layer) and the table."""
    width, height, pad = 1000, 200, 40
    n = max(len(rows) - 1, 1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * i / n

    def polyline(values: list[float], lo: float, hi: float, color: str) -> str:
        pts = []
        for i, v in enumerate(values):
            if not math.isfinite(v):
                continue
            t = (min(max(v, lo), hi) - lo) / (hi - lo)
            pts.append(f"{x(i):.1f},{height - pad - t * (height - 2 * pad):.1f}")
        return f'<polyline fill="none" stroke="{color}" points="{" ".join(pts)}"/>'

    cos = [r.cosine for r in rows]
    lo = min([v for v in cos if math.isfinite(v)] + [cosine]) - 1e-3
    red = [math.log10(max(r.rel_euclid, 1e-12)) for r in rows]
    first = first_divergence(rows)
    mark = ""
    if first is not None:
        mark = (
            f'<line x1="{x(rows.index(first)):.1f}" y1="{pad}" x2="{x(rows.index(first)):.1f}" '
            f'y2="{height - pad}" stroke="red"/>'
        )
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{2 * height}">',
        f'<text x="{pad}" y="20">cosine similarity ({lo:.4f} … 1)</text>',
        polyline(cos, lo, 1.0, "#1f77b4"),
        mark,
        f'<g transform="translate(0,{height})">',
        f'<text x="{pad}" y="20">log10 relative Euclidean distance (-12 … 1)</text>',
        polyline(red, -12.0, 1.0, "#d62728"),
        mark,
        "</g></svg>",
    ]
    cells = "".join(
        f"<tr{' style=background:#fcc' if r.divergent else ''}><td>{r.index}</td>"
        f"<td>{html.escape(r.op_name)}</td><td>{r.output_index}</td>"
        f"<td>{r.cosine:.6f}</td><td>{r.max_abs:.4g}</td><td>{r.acc_rel:.4g}</td>"
        f"<td>{r.rel_euclid:.4g}</td><td>{html.escape(r.note)}</td></tr>"
        for r in rows
    )
    title = "first divergence: " + (html.escape(first.op_name) if first else "none")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>openge compare</title>"
        "</head><body>"
        f"<h1>openge compare</h1><p>{title}</p>{''.join(svg)}"
        "<table border=1 cellspacing=0><tr><th>#</th><th>op</th><th>out</th><th>cosine</th>"
        "<th>max abs</th><th>acc rel</th><th>rel euclid</th><th>note</th></tr>"
        f"{cells}</table></body></html>\n"
    )


def compare_command(args: argparse.Namespace) -> int:
    """Run ``openge compare``; exit code 0 (1 when a divergence was found)."""
    rows = compare_dumps(args.a, args.b, args.cosine)
    print(format_table(rows))
    first = first_divergence(rows)
    compared = [r for r in rows if math.isfinite(r.cosine)]
    print(
        f"\n{len(compared)} of {len(rows)} outputs compared; minimum cosine "
        f"{min((r.cosine for r in compared), default=math.nan):.6f}"
    )
    if first is not None:
        print(f"first divergent op: {first.op_name} (output {first.output_index}, #{first.index})")
    else:
        print(f"no divergence (every cosine similarity >= {args.cosine})")
    if args.csv:
        write_csv(rows, args.csv)
    if args.chart:
        write_chart(rows, args.chart, args.cosine)
    return 1 if first is not None else 0
