"""Run the ONNX conformance suite and write docs/conformance.md (and, optionally, the
expected-pass list tests/conformance/expected_pass.txt).

    python tools/gen_conformance_doc.py [--update-expected] [--jobs N] [--check]

--update-expected  rewrite the expected-pass list from this run
--jobs N           worker processes (default: 2)
--check            exit 1 when any case gives a wrong result or crashes
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.util
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(ROOT, "tests", "conformance", "harness.py")
DOC = os.path.join(ROOT, "docs", "conformance.md")


def _harness():
    name = "openge_conformance_harness"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_WORKER_CASES: dict = {}


def _all_ids(h) -> dict:
    """Every run: ``kind/name`` (bound mode) and ``node-runtime/name`` (runtime mode, for node
    cases whose inputs decide shapes)."""
    runs = {}
    for c in h.all_cases():
        runs[h.case_id(c)] = c
        if h.runtime_differs(c):
            runs[h.runtime_id(c)] = c
    return runs


def _init_worker() -> None:
    _WORKER_CASES.update(_all_ids(_harness()))


def _run(case_id: str):
    h = _harness()
    mode = "runtime" if case_id.startswith(h.RUNTIME_KIND + "/") else "bound"
    out = h.run_case(_WORKER_CASES[case_id], mode)
    return case_id, out.status, out.detail, out.seconds


_MISSING = re.compile(r"cannot convert: (.*)$")
_OP = re.compile(r"(?:^|; )([A-Za-z0-9_]+) \((opset \d+|domain [^;)]*)")


def _missing_ops(detail: str) -> list[str]:
    m = _MISSING.search(detail)
    if not m:
        return []
    return sorted({op for op, _ in _OP.findall(m.group(1))})


def _reason(detail: str) -> str:
    text = re.sub(r"^\[[A-Z_]+\] ", "", detail.splitlines()[0] if detail else "")
    text = re.sub(r"ONNX node \S+ ", "ONNX node ", text)
    text = re.sub(r"node \S+ \(", "node (", text)
    text = re.sub(r"nodes: [^;)]*", "nodes: …", text)
    text = re.sub(r"graph input \S+", "graph input", text)
    text = re.sub(r"\d+ node\(s\) of \d+ op type\(s\)", "N nodes", text)
    return text[:150]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-expected", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--output", default=DOC)
    args = parser.parse_args(argv)

    sys.path.insert(0, ROOT)
    h = _harness()
    cases = _all_ids(h)
    start = time.perf_counter()
    results: dict[str, tuple[str, str, float]] = {}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, initializer=_init_worker) as pool:
            for cid, status, detail, secs in pool.map(_run, sorted(cases), chunksize=16):
                results[cid] = (status, detail, secs)
    else:
        _WORKER_CASES.update(cases)
        for cid in sorted(cases):
            _, status, detail, secs = _run(cid)
            results[cid] = (status, detail, secs)
    elapsed = time.perf_counter() - start

    import onnx

    lines = _render(h, cases, results, elapsed, onnx.__version__)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    passed = sorted(cid for cid, (st, _, _) in results.items() if st == "pass")
    if args.update_expected:
        h.write_expected(passed)
    bad = {cid: r for cid, r in results.items() if r[0] in ("wrong", "crash")}
    counts = collections.Counter(st for st, _, _ in results.values())
    print(
        f"{len(results)} cases in {elapsed:.1f}s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )
    for cid, (st, detail, _) in sorted(bad.items()):
        print(f"  {st}: {cid}: {detail.splitlines()[0] if detail else ''}")
    print(f"wrote {args.output}" + (" and the expected-pass list" if args.update_expected else ""))
    return 1 if args.check and bad else 0


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "n/a"


def _render(h, cases, results, elapsed: float, onnx_version: str) -> list[str]:
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    per_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    reasons: collections.Counter = collections.Counter()
    missing_any: collections.Counter = collections.Counter()
    missing_only: collections.Counter = collections.Counter()
    runtime_prefix = h.RUNTIME_KIND + "/"
    for cid, (status, detail, _) in results.items():
        case = cases[cid]
        if cid.startswith(runtime_prefix):
            continue  # in the runtime row below, not in the per-op and refusal tables
        by_kind[case.kind][status] += 1
        if case.kind == "node":
            per_op[case.main_op][status] += 1
        if status == "refused":
            reasons[_reason(detail)] += 1
            ops = _missing_ops(detail)
            for op in ops:
                missing_any[op] += 1
            if len(ops) == 1:
                missing_only[ops[0]] += 1
    # Runtime mode over every node case: the runtime run where it differs, else the bound one.
    runtime = collections.Counter()
    for cid, case in cases.items():
        if case.kind != "node" or cid.startswith(runtime_prefix):
            continue
        key = h.runtime_id(case) if h.runtime_id(case) in results else cid
        runtime[results[key][0]] += 1
    today = datetime.date.today().isoformat()
    out = [
        "# ONNX conformance",
        "",
        f"Generated by `python tools/gen_conformance_doc.py` on {today} with onnx {onnx_version} "
        f"({len(results)} cases, {elapsed:.0f} s). Do not edit by hand.",
        "",
        "Every case runs the real path: `parse_onnx` → `compile_graph` → serialize → "
        "`Model.from_bytes` → `execute`, and is compared with the expected outputs (floats: rtol "
        "1e-3, atol 1e-5 or the case's looser tolerance; float16 results rtol 2⁻⁹, two units in "
        "the last place, since 1e-3 is below one float16 ulp; integers and bools exactly; dtypes "
        "and shapes exactly). A case that does not pass must be *refused* with a clean `GeError`: "
        "`wrong` (a different result) and `crash` (another exception, or a kernel failing at run "
        "time) fail the suite. `tests/conformance/expected_pass.txt` lists the cases that must "
        "pass.",
        "",
        "Two modes. **bound**: inputs that decide output shapes (a Reshape's `shape`, Slice "
        "bounds, reduce axes, TopK's `k`, Resize's scales …) are bound to the case's values "
        "with `parse_onnx(..., constant_inputs=...)`, a static compile, as ATC without "
        "dynamic-shape options. **runtime**: every graph input is fed at run time, as the ONNX "
        "backend runner does; those inputs then make a dynamic-shape model "
        "([dynamic.md](dynamic.md)). Node cases without such inputs are the same run in both "
        "modes; the others run twice (ids `node/…` and `node-runtime/…` in the expected-pass "
        "list). Models of default-domain opsets below 7 (the "
        "pytorch-converted and pytorch-operator folders use opset 6) are upgraded to opset 7 with "
        "`onnx.version_converter` by the parser.",
        "",
        "How `parse_onnx` maps models (decisions a user may meet):",
        "",
        "- Symbolic input dims the `input_shape` option does not fix, and shape-deciding values "
        "fed as inputs, make a dynamic-shape model: the nodes that need them are kept as "
        "FrameworkOp and converted at run time with the actual shapes and values.",
        "- Every ONNX attribute a mapping does not understand, and any extra input a newer opset "
        "adds, makes the node refused rather than silently ignored.",
        "- Where a catalog op differs from ONNX the parser composes catalog ops (Gemm, integer "
        "Div/Mod, Selu/Celu/Gelu, LpNormalization, losses, Attention, RNN/GRU/LSTM, DFT, 3-D and "
        "dilated pooling, Conv3D …); what depends only on static shapes (masks, index tables, "
        "`auto_pad` pads) is computed at parse time.",
        "- Control flow is inlined: If needs a condition, Loop a trip count/condition and Scan a "
        "sequence length known when the model is planned (at compile time, or at run time in a "
        "dynamic-shape model); bodies are unrolled.",
        "- bfloat16 and float8 (e4m3fn, e5m2) are stored through ml_dtypes; every op computes "
        "them in float32 and rounds once (docs/precision.md); bfloat16 results are compared "
        "with rtol 2⁻⁶ (2–4 ulps: an expanded function rounds after every op), float8 exactly.",
        "- float16/bfloat16 Attention is computed in float32 and rounded once; "
        "Softmax/LogSoftmax/Hardmax "
        "before opset 13 work on ONNX's 2-D view (onnx.reference does not, so the parser tests "
        "check that rule with a hand-written formula).",
        "- Element types openge does not store (the FNUZ float8 variants, int4/int2, float4, "
        "strings) and random ops are refused. Data-dependent output shapes (NonZero, Unique, "
        "NonMaxSuppression …) are decided when the values are known.",
        "",
        "## Summary",
        "",
        "| suite | cases | pass | refused | wrong | crash | pass rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    total = collections.Counter()
    for kind in sorted(by_kind, key=lambda k: (k != "node", k)):
        c = by_kind[kind]
        n = sum(c.values())
        total.update(c)
        out.append(
            f"| {kind} | {n} | {c['pass']} | {c['refused']} | {c['wrong']} | "
            f"{c['crash']} | {_pct(c['pass'], n)} |"
        )
    n = sum(total.values())
    out.append(
        f"| **all** | {n} | {total['pass']} | {total['refused']} | {total['wrong']} | "
        f"{total['crash']} | {_pct(total['pass'], n)} |"
    )
    n = sum(runtime.values())
    out += [
        "",
        "Node cases as the ONNX backend runner runs them (**runtime** mode, every graph input "
        "fed at run time, no `constant_inputs`), beside the bound figure above:",
        "",
        "| suite | cases | pass | refused | wrong | crash | pass rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| node, runtime | {n} | {runtime['pass']} | {runtime['refused']} | "
        f"{runtime['wrong']} | {runtime['crash']} | {_pct(runtime['pass'], n)} |",
    ]
    out += [
        "",
        "## Ops still missing, ranked by the cases they would unlock",
        "",
        "`alone` counts refused cases where the op is the only unsupported one (adding it would "
        "unlock them); `any` counts every refused case that uses it.",
        "",
        "| op | alone | any |",
        "|---|---:|---:|",
    ]
    for op, cnt in sorted(
        missing_any.items(), key=lambda kv: (-missing_only[kv[0]], -kv[1], kv[0])
    ):
        out.append(f"| {op} | {missing_only[op]} | {cnt} |")
    out += [
        "",
        "## Most common refusal reasons",
        "",
        "| cases | reason |",
        "|---:|---|",
    ]
    for reason, cnt in reasons.most_common(40):
        out.append(f"| {cnt} | {reason.replace('|', '/')} |")
    bad = sorted((cid, r) for cid, r in results.items() if r[0] in ("wrong", "crash"))
    if bad:
        out += ["", "## Wrong results and crashes", ""]
        for cid, (st, detail, _) in bad:
            first = detail.splitlines()[0] if detail else ""
            out.append(f"- `{cid}` — {st}: {first}")
    out += [
        "",
        "## Node cases per op",
        "",
        "Multi-node cases (function expansions, `_expanded`) are filed under the op their name "
        "starts with.",
        "",
        "| op | cases | pass | refused | wrong | crash | pass rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for op in sorted(per_op):
        c = per_op[op]
        n = sum(c.values())
        out.append(
            f"| {op} | {n} | {c['pass']} | {c['refused']} | {c['wrong']} | {c['crash']} "
            f"| {_pct(c['pass'], n)} |"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
