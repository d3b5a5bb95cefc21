"""ONNX backend conformance harness: collect the cases of the installed onnx and run them.

Cases come from the installed ``onnx`` package at run time: the node cases of
``onnx.backend.test.case.node.collect_testcases()`` and the model folders under
``onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}``. Each case runs the real
path — ``parse_onnx`` → ``compile_graph`` → serialize → ``Model.from_bytes`` → ``execute`` — and
is compared with the expected outputs (floats: rtol 1e-3 / atol 1e-5 or the case's looser
tolerance, float16 rtol 2⁻⁹ = two ulps; integers and bools exactly; dtypes and shapes exactly).

Outcomes: ``pass``; ``refused`` (a clean GeError: openge declines the case); ``wrong`` (ran but
gave a different result); ``crash`` (any other exception, or a GeError reporting an internal
error — a kernel failing at run time). Only ``pass`` and ``refused`` are acceptable.

Two modes. ``bound``: inputs that ONNX lets be tensors but that decide output shapes (a Reshape's
``shape``, Slice bounds, reduce axes, TopK's ``k`` …) are bound to the case's values with
``parse_onnx(..., constant_inputs=...)``, a static compile, as ATC without dynamic-shape
options. ``runtime``: every graph input is fed at run time, as the ONNX backend runner does;
such inputs make a dynamic-shape model (shapes decided per run).
"""

from __future__ import annotations

import glob
import os
import pickle
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MODEL_KINDS = ("pytorch-converted", "pytorch-operator", "simple")
RTOL = 1e-3
ATOL = 1e-5
#: float16 results: two units in the last place (float16 has 11 significant bits, so 1e-3 is
#: below one ulp for half of each binade; fused and step-wise evaluation differ by that much).
RTOL_FLOAT16 = 2.0**-9
#: bfloat16 results: 2-4 ulps (8 significant bits; an expanded function rounds after every
#: op, so a chain of them drifts by an ulp or two from the reference). float8 compare exactly
#: (rtol 1e-3 is below their ulp).
RTOL_BFLOAT16 = 2.0**-6


@dataclass
class Case:
    """One conformance case: a model, its input/output data sets, its op types."""

    name: str
    kind: str  # "node" or a data folder name
    model: Any  # onnx.ModelProto
    data_sets: list[tuple[list[Any], list[Any]]]
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def ops(self) -> list[str]:
        """The model's op types (sorted, unique)."""
        return sorted({n.op_type for n in self.model.graph.node})

    @property
    def main_op(self) -> str:
        """The op a per-op table files this case under: the single op, or the op named in the
        case name for multi-node (expanded / function) cases."""
        ops = self.ops
        if len(ops) == 1:
            return ops[0]
        base = self.name.removeprefix("test_").lower().replace("_", "")
        best = ""
        for op in _all_onnx_ops():
            key = op.lower()
            if base.startswith(key) and len(key) > len(best):
                best = op
        return best or "(multi-op)"


_OPS_CACHE: list[str] = []


def _all_onnx_ops() -> list[str]:
    if not _OPS_CACHE:
        import onnx.defs

        _OPS_CACHE.extend(sorted({s.name for s in onnx.defs.get_all_schemas_with_history()}))
    return _OPS_CACHE


#: Bump when the cached tuple layout changes.
_CACHE_FORMAT = 2


def _cache_path() -> str:
    import onnx

    folder = os.path.join(tempfile.gettempdir(), f"openge-conformance-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"node-cases-v{_CACHE_FORMAT}-onnx-{onnx.__version__}.pkl")


def node_cases() -> list[Case]:
    """The node cases of the installed onnx (collected once, then cached in the temp folder)."""
    path = _cache_path()
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        raw = None
    if raw is None:
        import onnx.backend.test.case.node as node_mod

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            collected = node_mod.collect_testcases()
        raw = [
            (c.name, c.model.SerializeToString(), _data_sets(c.data_sets), c.rtol, c.atol)
            for c in collected
        ]
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(raw, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    import onnx

    return [
        Case(name, "node", onnx.load_model_from_string(model), sets, rtol, atol)
        for name, model, sets, rtol, atol in raw
    ]


def _data_sets(sets: Any) -> list[tuple[list[Any], list[Any]]]:
    return [([_value(v) for v in ins], [_value(v) for v in outs]) for ins, outs in (sets or [])]


def _value(value: Any) -> Any:
    """Test data as NumPy (some cases store TensorProtos to keep exotic element types)."""
    import onnx
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        try:
            return numpy_helper.to_array(value)
        except Exception:  # an element type NumPy cannot hold: left to be refused
            return value
    return value


def model_cases(kinds: Iterable[str] = MODEL_KINDS) -> list[Case]:
    """The model-folder cases (pytorch-converted, pytorch-operator, simple)."""
    import onnx
    from onnx import numpy_helper
    from onnx.backend.test.loader import DATA_DIR

    cases = []
    for kind in kinds:
        for folder in sorted(glob.glob(os.path.join(DATA_DIR, kind, "*"))):
            model_path = os.path.join(folder, "model.onnx")
            if not os.path.isfile(model_path):
                continue
            model = onnx.load(model_path)
            sets = []
            for ds in sorted(glob.glob(os.path.join(folder, "test_data_set_*"))):
                ins = [
                    _read_pb(p, numpy_helper)
                    for p in sorted(glob.glob(os.path.join(ds, "input_*.pb")), key=_pb_index)
                ]
                outs = [
                    _read_pb(p, numpy_helper)
                    for p in sorted(glob.glob(os.path.join(ds, "output_*.pb")), key=_pb_index)
                ]
                sets.append((ins, outs))
            cases.append(Case(os.path.basename(folder), kind, model, sets))
    return cases


def _pb_index(path: str) -> int:
    return int(os.path.basename(path).split("_")[1].split(".")[0])


def _read_pb(path: str, numpy_helper: Any) -> Any:
    import onnx

    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


def all_cases() -> list[Case]:
    """Node cases then model cases."""
    return node_cases() + model_cases()


# ----- running ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """The result of one case."""

    name: str
    status: str  # pass | refused | wrong | crash
    detail: str = ""
    seconds: float = 0.0
    ops: list[str] = field(default_factory=list)


def shape_inputs_of(model: Any) -> list[str]:
    """Graph inputs feeding an ONNX input slot whose value must be a compile-time constant."""
    from openge.parser.mappings import shape_inputs

    opsets = {
        ("" if o.domain in ("", "ai.onnx") else o.domain): o.version for o in model.opset_import
    }
    names = {v.name for v in model.graph.input} - {t.name for t in model.graph.initializer}
    nodes = list(_all_nodes(model.graph))
    producer = {o: n for n in nodes for o in n.output if o}
    wanted: list[str] = []
    for node in nodes:
        dom = "" if node.domain in ("", "ai.onnx") else node.domain
        slots = shape_inputs(dom, node.op_type, opsets.get(dom, 1))
        wanted.extend(node.input[i] for i in slots if i < len(node.input) and node.input[i])
    # Follow the values back to graph inputs (a Shape/Size reads only its input's shape).
    found: list[str] = []
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in names:
            found.append(name)
            continue
        node = producer.get(name)
        if node is not None and node.op_type not in ("Shape", "Size"):
            wanted.extend(i for i in node.input if i)
            # values a subgraph reads from the enclosing scope are inputs of its node too
            for a in node.attribute:
                if a.type == 5:  # onnx.AttributeProto.GRAPH
                    wanted.extend(i for sub in _all_nodes(a.g) for i in sub.input if i)
    return sorted(found)


def _all_nodes(graph: Any):
    """The nodes of ``graph`` and of its subgraphs (If branches, Loop/Scan bodies)."""
    import onnx

    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(a.g)


def _serialize_and_load(compiled: Any) -> Any:
    from openge.runtime.model import Model

    try:
        from openge.om.writer import serialize
    except ImportError:  # the .om writer is not there yet: run the compiled plan directly
        return Model(compiled)
    return Model.from_bytes(serialize(compiled, online=True))


def compare(expected: Any, actual: np.ndarray, rtol: float, atol: float) -> str:
    """Empty when ``actual`` matches ``expected``, else what differs."""
    exp = np.asarray(expected)
    if exp.dtype != actual.dtype:
        return f"dtype {actual.dtype} != expected {exp.dtype}"
    if exp.shape != actual.shape:
        return f"shape {list(actual.shape)} != expected {list(exp.shape)}"
    if exp.dtype == np.float16:
        rtol = max(rtol, RTOL_FLOAT16)
    if exp.dtype.kind == "V" and exp.dtype.names is None:  # ml_dtypes bfloat16 / float8
        if exp.dtype.name == "bfloat16":
            rtol = max(rtol, RTOL_BFLOAT16)
        exp, actual = exp.astype(np.float32), actual.astype(np.float32)
    if exp.dtype.kind in "fc":
        with np.errstate(all="ignore"):
            nan_exp, nan_act = np.isnan(exp), np.isnan(actual)
            if not np.array_equal(nan_exp, nan_act):
                return "NaN positions differ"
            e, a = exp[~nan_exp], actual[~nan_act]
            inf = np.isinf(e)
            if not np.array_equal(e[inf], a[inf]):
                return "inf values differ"
            e64, a64 = (
                e[~inf].astype(np.complex128 if exp.dtype.kind == "c" else np.float64),
                a[~inf],
            )
            err = np.abs(a64 - e64)
            bad = err > atol + rtol * np.abs(e64)
            if bad.any():
                worst = float(err.max())
                return f"{int(bad.sum())} of {exp.size} values differ (max abs err {worst:.3g})"
        return ""
    if not np.array_equal(exp, actual):
        return f"{int((exp != actual).sum())} of {exp.size} values differ"
    return ""


#: Conformance modes: ``bound`` binds the inputs that decide shapes with ``constant_inputs``
#: (a static compile, as ATC without dynamic options); ``runtime`` feeds every graph input at
#: run time, as the ONNX backend runner does (shape-deciding values make a dynamic-shape model).
MODES = ("bound", "runtime")


#: Id prefix (in expected_pass.txt) of a node case run in ``runtime`` mode.
RUNTIME_KIND = "node-runtime"


def runtime_differs(case: Case) -> bool:
    """True for a node case whose ``runtime`` run differs from its ``bound`` run (it has
    inputs that decide shapes); for the others both modes are the same run."""
    return case.kind == "node" and bool(shape_inputs_of(case.model))


def runtime_id(case: Case) -> str:
    """``node-runtime/name``: the id of a case's runtime-mode run."""
    return f"{RUNTIME_KIND}/{case.name}"


def run_case(case: Case, mode: str = "bound") -> Outcome:
    """Run one case through parse → compile → serialize → load → execute and classify it."""
    from openge.compiler import compile_graph
    from openge.errors import INTERNAL_ERROR, GeError
    from openge.parser import parse_onnx

    start = time.perf_counter()
    out = Outcome(case.name, "pass", ops=case.ops)
    try:
        if not case.data_sets:
            raise GeError(0xFFFFFFFF, "case has no data set")
        ins0 = case.data_sets[0][0]
        real_inputs = [
            v.name
            for v in case.model.graph.input
            if v.name not in {t.name for t in case.model.graph.initializer}
        ]
        frozen = shape_inputs_of(case.model) if mode == "bound" else []
        bound = {}
        for name in frozen:
            k = real_inputs.index(name)
            if k < len(ins0):
                bound[name] = ins0[k]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = parse_onnx(case.model, constant_inputs=bound)
            compiled = compile_graph(graph)
            model = _serialize_and_load(compiled)
            for ins, outs in case.data_sets:
                feed = [ins[real_inputs.index(d.name)] for d in model.inputs]
                feed = [_as_array(x) for x in feed]
                results = model.execute(feed)
                if len(results) != len(outs):
                    out.status, out.detail = (
                        "wrong",
                        f"{len(results)} outputs, expected {len(outs)}",
                    )
                    break
                for i, (exp, act) in enumerate(zip(outs, results)):
                    msg = compare(exp, act, max(case.rtol, RTOL), max(case.atol, ATOL))
                    if msg:
                        out.status, out.detail = "wrong", f"output {i}: {msg}"
                        break
                if out.status != "pass":
                    break
    except GeError as err:
        out.status = "crash" if err.code == INTERNAL_ERROR else "refused"
        out.detail = str(err)
    except Exception as err:
        import traceback

        out.status = "crash"
        out.detail = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-4)}"
    out.seconds = time.perf_counter() - start
    return out


def _as_array(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(value)


# ----- the expected-pass list -----------------------------------------------------------------

EXPECTED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected_pass.txt")


def read_expected(path: str = EXPECTED_FILE) -> set[str]:
    """Case ids (``kind/name``) expected to pass."""
    if not os.path.isfile(path):
        return set()
    with open(path, encoding="utf-8") as f:
        return {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}


def case_id(case: Case) -> str:
    """``kind/name``, the id used in the expected-pass list."""
    return f"{case.kind}/{case.name}"


def write_expected(ids: Sequence[str], path: str = EXPECTED_FILE) -> None:
    """Write the expected-pass list (sorted)."""
    import onnx

    with open(path, "w", encoding="utf-8") as f:
        f.write(
            "# ONNX conformance cases openge passes (kind/name), onnx "
            f"{onnx.__version__}.\n# Regenerate: python tools/gen_conformance_doc.py "
            "--update-expected\n"
        )
        for i in sorted(ids):
            f.write(i + "\n")
