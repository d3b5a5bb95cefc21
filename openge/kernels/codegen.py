"""Elementwise programs compiled into one loop each (kernels layer, numba).

A program is plain data: a list of steps ``(op, args, params)`` where ``op`` names an entry of
the fixed vocabulary :data:`VOCABULARY`, ``args`` are operand indices (``k >= 0``) or earlier
steps (``k < 0`` is step ``-k - 1``, as in openge.ops.fused), and ``params`` are floats the
entry's template takes (an attr, a constant exponent). The source of a numba function is
assembled from the vocabulary's templates only: operand and step names are generated, numbers
are written with ``float.__repr__`` after a finiteness check, and op names must be keys of the
vocabulary — nothing read from a model file reaches the source as text. The source is written
to the kernel cache folder under its hash (an existing file is used only when its bytes are the
ones generated) and imported from there, so numba's ``cache=True`` keeps the machine code.

Operands are 1-D arrays of one of four kinds, over the output viewed as ``(rows, inner)``:

* ``"full"``: one element per output element (index ``k``);
* ``"scalar"``: one element (read once);
* ``"row"``: indexed by ``row % len`` (a per-channel bias over NCHW with ``inner = H·W``);
* ``"col"``: ``inner`` elements indexed by the position in the row (a last-axis bias).

Each step's value is rounded to the output dtype, as the NumPy kernels do step by step.
Functions compile with numba's NumPy error model: x / 0 gives ±inf or NaN as in NumPy (the
Python model raised ZeroDivisionError mid-run), and the division loops vectorize. Indices
are unsigned (``np.uint64``): numba then skips its negative-index wraparound and the loop
vectorizes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence

import numpy as np

from openge.kernels import cache_dir, skip_refresh_on_cached_loads

#: op → (arity, template). ``{0}``, ``{1}``, ``{2}`` are the arguments, ``{p0}``… the params,
#: ``{T}`` the dtype constructor. Every template is an expression over scalars.
VOCABULARY: dict[str, tuple[int, str]] = {
    "Add": (2, "{0} + {1}"),
    "AddV2": (2, "{0} + {1}"),
    "Sub": (2, "{0} - {1}"),
    "Mul": (2, "{0} * {1}"),
    "Div": (2, "{0} / {1}"),
    "RealDiv": (2, "{0} / {1}"),
    "Maximum": (2, "_max({0}, {1})"),
    "Minimum": (2, "_min({0}, {1})"),
    "SquaredDifference": (2, "({0} - {1}) * ({0} - {1})"),
    "Neg": (1, "-{0}"),
    "Abs": (1, "abs({0})"),
    "Square": (1, "{0} * {0}"),
    "Reciprocal": (1, "{T}(1.0) / {0}"),
    "Sqrt": (1, "math.sqrt({0})"),
    "Rsqrt": (1, "{T}(1.0) / math.sqrt({0})"),
    "Exp": (1, "_exp({0})"),
    "Log": (1, "math.log({0})"),
    "Tanh": (1, "_tanh({0})"),
    "Erf": (1, "_erf({0})"),
    "Sigmoid": (1, "_sigmoid({0})"),
    "Relu": (1, "_relu({0})"),
    "Relu6": (1, "_min(_max({0}, {T}(0.0)), {T}(6.0))"),
    "LeakyRelu": (1, "({0} if {0} >= {T}(0.0) else {0} * {T}({p0}))"),
    "HardSwish": (1, "{0} * (_min(_max({0} + {T}(3.0), {T}(0.0)), {T}(6.0)) / {T}(6.0))"),
    "HardSigmoid": (1, "_min(_max({T}({p0}) * {0} + {T}({p1}), {T}(0.0)), {T}(1.0))"),
    "Swish": (1, "{0} * _sigmoid({T}({p0}) * {0})"),
    "Gelu": (1, "_gelu_tanh({0})"),
    "GeluErf": (1, "_gelu_erf({0})"),
    "ClipByValue": (3, "_min(_max({0}, {1}), {2})"),
    "Pow": (2, "math.pow({0}, {1})"),
    "PowInt": (1, "_powi({0}, {p0})"),
    "PowHalf": (1, "math.sqrt({0})"),
}

_HELPERS = """
@njit(inline="always", error_model="numpy")
def _max(a, b):
    # NaN propagates, as np.maximum
    return a if (a > b or a != a) else b


@njit(inline="always", error_model="numpy")
def _min(a, b):
    return a if (a < b or a != a) else b


@njit(inline="always", error_model="numpy")
def _relu(a):
    return a if not (a < 0) else a * 0


#: 2**n for n in [-1100, 1023] (a gather the vectorizer handles, unlike libm's exp)
_P2 = 2.0 ** np.arange(-1100, 1024, dtype=np.float64)


@njit(inline="always", error_model="numpy")
def _exp(a):
    # float64 exp, branch-free: n = round(x / ln 2), r = x - n ln 2 (two-part ln 2), a degree-10
    # Taylor polynomial on |r| <= ln2 / 2 (relative error < 1e-13), times 2**n from the table
    x = min(max(np.float64(a), -745.0), 709.0)
    n = math.floor(x * 1.4426950408889634 + 0.5)
    r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r / 3628800)))))))))
    return p * _P2[np.int64(n) + 1100]


@njit(inline="always", error_model="numpy")
def _tanh(a):
    # tanh(|x|) = 1 - 2 / (exp(2|x|) + 1); below 1e-4, x - x³/3 (no cancellation)
    v = np.float64(a)
    m = abs(v)
    t = 1.0 - 2.0 / (_exp(2.0 * m) + 1.0)
    t = m * (1.0 - m * m * (1.0 / 3)) if m < 1e-4 else t
    t = t if v >= 0 else -t
    return t if v == v else v


@njit(inline="always", error_model="numpy")
def _sigmoid(a):
    return 1.0 / (1.0 + _exp(-np.float64(a)))


@njit(inline="always", error_model="numpy")
def _gelu_tanh(a):
    # 0.5·x·(1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi)·(x + 0.044715·x³)
    v = np.float64(a)
    t = v * v * -0.0713548162726008 - 1.5957691216057308
    return v / (1.0 + _exp(t * v))


@njit(inline="always", error_model="numpy")
def _powi(a, n):
    neg = n < 0
    m = -n if neg else n
    r = a * 0 + 1
    b = a
    while m:
        if m & 1:
            r = r * b
        b = b * b
        m >>= 1
    return 1 / r if neg else r
"""

#: erf and erf-GELU per program dtype. float32 erf: from a degree-4 Taylor expansion around
#: the nearest node of a grid of step 1/512 on [0, ERF_END], in float64 (truncation < 1e-11
#: relative, far below float32's half-ulp). The table holds erf and its derivative
#: 2/√π·e^(-n²) per node; the expansion's higher coefficients follow from the node and that
#: derivative, so each element reads two table entries (gathers where the loop vectorizes:
#: AVX-512 hosts; a scalar loop on AVX2, whose gathers LLVM does not use). float32 erf-GELU is
#: mathf32.gelu_erf32 (in VOCABULARY32: no table, vectorizes everywhere). The NumPy kernels,
#: which pay a whole pass per operation and a gather per table read, use a rational fit
#: instead (openge.ops.elementwise._erf_narrow). float64: libm's erf.
_ERF_HELPERS = {
    "float32": """
from openge.kernels.codegen import ERF_END, erf_table
_ERF_T = erf_table()


@njit(inline="always", error_model="numpy")
def _erf_taylor(n, s, d):
    # erf(n + d) - erf(n) to d^4: s·(d - n·d² + (2n² - 1)/3·d³ + (3n - 2n³)/6·d⁴)
    n2 = n * n
    c4 = (3.0 * n - 2.0 * n2 * n) * (1.0 / 6.0)
    c3 = (2.0 * n2 - 1.0) * (1.0 / 3.0)
    return s * ((((c4 * d + c3) * d - n) * d + 1.0) * d)


@njit(inline="always", error_model="numpy")
def _erf(a):
    v = np.float64(a)
    m = abs(v)
    m = m if m < ERF_END else ERF_END  # NaN too: a safe index, NaN returned below
    i = np.int64(m * 512.0 + 0.5)
    n = i * (1.0 / 512.0)
    r = _ERF_T[2 * i] + _erf_taylor(n, _ERF_T[2 * i + 1], m - n)
    r = math.copysign(r, v)
    return r if v == v else v


""",
    "float64": """
@njit(inline="always", error_model="numpy")
def _erf(a):
    return math.erf(a)


@njit(inline="always", error_model="numpy")
def _gelu_erf(a):
    return 0.5 * a * (1.0 + math.erf(a * 0.7071067811865476))
""",
}

#: Where the float32 erf table ends: erf rounds to ±1 well before (erfc(10.5) ≈ 1.1e-49).
ERF_END = 10.5
_erf_table_cache: list[np.ndarray] = []


def erf_table() -> np.ndarray:
    """Flat float64 [erf(n), 2/√π·e^(-n²)] at the nodes n = k/512, k = 0 .. 512·ERF_END (from
    math.erf; made once per process)."""
    if not _erf_table_cache:
        nodes = np.arange(int(ERF_END * 512) + 1) / 512.0
        table = np.empty((nodes.size, 2))
        table[:, 0] = [math.erf(v) for v in nodes]
        table[:, 1] = 2.0 / math.sqrt(math.pi) * np.exp(-nodes * nodes)
        _erf_table_cache.append(table.reshape(-1))
    return _erf_table_cache[0]


#: float32 forms of entries that have one (no libm call or table: their loops vectorize;
#: erf-GELU computes in float64 inside).
VOCABULARY32: dict[str, tuple[int, str]] = {
    "Sigmoid": (1, "_sigmoid32({0})"),
    "Swish": (1, "{0} * _sigmoid32({T}({p0}) * {0})"),
    "Tanh": (1, "_tanh32({0})"),
    "Gelu": (1, "_gelu_tanh32({0})"),
    "GeluErf": (1, "_gelu_erf32({0})"),
}

#: Digest of openge.kernels.mathf32's source, written into each generated module: a program's
#: file (and so numba's cache of it) changes when the helpers it imports change.
with open(os.path.join(os.path.dirname(__file__), "mathf32.py"), "rb") as _f:
    _MATHF32 = hashlib.sha256(_f.read()).hexdigest()[:16]

KINDS = ("full", "scalar", "row", "col")
_ROWS_LOOP = "    for r in ROWS:"  # the row loop as built, then made concrete (see source)
_ALL_ROWS = "    for r in range(rows):"
_RANGE_LOOP = "    for r in range(r_first, min(r_stop, rows)):"
_DTYPES = {"float32": "np.float32", "float64": "np.float64"}
_MAX_STEPS = 256

Step = tuple[str, Sequence[int], Sequence[float]]


def _number(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a program parameter must be finite, got {value!r}")
    return repr(value)


def _power_expression(base: str, n: int, T: str) -> str:
    """``base ** n`` for an integer ``n`` as a product written out by repeated squaring (the
    same products, in the same order, as ``_powi``): a loop inside the element loop kept the
    loop from vectorizing (GPT-2's tanh-GELU with its x³: 1.35 ms per 393k elements, 0.48
    with the products written out)."""
    m = abs(n)
    result = f"{T}(1.0)" if m == 0 else ""
    square = base
    while m:
        if m & 1:
            result = f"({result} * {square})" if result else square
        m >>= 1
        if m:
            square = f"({square} * {square})"
    return f"({T}(1.0) / {result})" if n < 0 else result


def source(steps: Sequence[Step], kinds: Sequence[str], dtype: str, buffered: bool = False) -> str:
    """The Python source of the compiled program (a function ``run(y, inner, *operands)``).

    ``buffered``: each row is computed into a scratch row, then copied into ``y``: for ``y``
    being an operand's very array (in place), where the compiler's runtime overlap check fails
    and the loop would run scalar (15x slower with an exp inside). The scratch row is made once
    per call: made per row, it cost more than a 7 × 7 plane's work (a squeeze-and-excitation
    scale over 960 × 7², one AVX2 Zen 3 core: 29 → 8 µs).

    Raises ValueError for anything outside the vocabulary (the caller keeps its NumPy path).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r} has no compiled programs")
    if not steps or len(steps) > _MAX_STEPS:
        raise ValueError("a program needs 1 to 256 steps")
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown operand kind {kind!r}")
    T = _DTYPES[dtype]
    names = [f"a{i}" for i in range(len(kinds))]
    hoisted, per_row, per_elem = [], [], []
    value: dict[int, str] = {}
    for i, kind in enumerate(kinds):
        if kind == "scalar":
            hoisted.append(f"    v{i} = {names[i]}[0]")
        elif kind == "row":
            per_row.append(f"        v{i} = {names[i]}[r % {names[i]}.shape[0]]")
        elif kind == "col":
            per_elem.append(f"            v{i} = {names[i]}[np.uint64(k - start)]")
        else:
            per_elem.append(f"            v{i} = {names[i]}[np.uint64(k)]")
        value[i] = f"v{i}"
    body = []
    for j, (op, args, params) in enumerate(steps):
        if op not in VOCABULARY:
            raise ValueError(f"op {op!r} has no compiled form")
        arity, template = (
            VOCABULARY32[op] if dtype == "float32" and op in VOCABULARY32 else VOCABULARY[op]
        )
        if len(args) != arity:
            raise ValueError(f"{op} takes {arity} arguments, got {len(args)}")
        refs = []
        for a in args:
            a = int(a)
            if a >= 0:
                if a >= len(kinds):
                    raise ValueError(f"step {j} reads missing operand {a}")
                refs.append(value[a])
            else:
                if -a - 1 >= j:
                    raise ValueError(f"step {j} reads a later step")
                refs.append(f"s{-a - 1}")
        if op == "PowInt":
            expr = _power_expression(refs[0], int(params[0]), T)
        else:
            p = {f"p{i}": _number(v) for i, v in enumerate(params)}
            expr = template.format(*refs, T=T, **p)
        body.append(f"            s{j} = {T}({expr})")
    loop = [
        f"(y, inner, {', '.join(names)}):",
        "    total = y.shape[0]",
        "    rows = (total + inner - 1) // inner",
        *hoisted,
        _ROWS_LOOP,
        "        start = r * inner",
        "        stop = min(start + inner, total)",
        *per_row,
        "        for k in range(start, stop):",
        *per_elem,
        *body,
        f"            y[np.uint64(k)] = s{len(steps) - 1}",
        "",
    ]
    if buffered:  # one scratch row per call (one per row cost more than the row's work)
        loop.insert(loop.index(_ROWS_LOOP), "    buf = np.empty(min(inner, total), y.dtype)")
        loop[-2] = (
            f"            buf[np.uint64(k - start)] = s{len(steps) - 1}\n"
            "        for k in range(start, stop):\n"
            "            y[np.uint64(k)] = buf[np.uint64(k - start)]"
        )
    lines = [
        "# generated by openge.kernels.codegen from its fixed vocabulary; do not edit",
        "import math",
        "import numpy as np",
        "from numba import njit",
        "from openge.kernels import sync as _sync",
        "from openge.kernels.mathf32 import gelu_erf32 as _gelu_erf32",
        "from openge.kernels.mathf32 import gelu_tanh32 as _gelu_tanh32",
        "from openge.kernels.mathf32 import tanh32 as _tanh32",
        f"from openge.kernels.mathf32 import sigmoid32 as _sigmoid32  # {_MATHF32}",
        _HELPERS,
        _ERF_HELPERS[dtype],
        "",
        # NumPy's error model: x / 0 gives inf or nan (not ZeroDivisionError) and the loop has
        # no exception branch, so it vectorizes; no GIL: openge's threads share the rows
        '@njit(cache=True, nogil=True, error_model="numpy")',
        "def run" + loop[0],
        *[_ALL_ROWS if line == _ROWS_LOOP else line for line in loop[1:]],
        "",
        "# rows r_first .. r_stop - 1: a part for one of openge's threads",
        '@njit(cache=True, nogil=True, error_model="numpy")',
        "def run_range" + loop[0].replace("):", ", r_first, r_stop):"),
        *[_RANGE_LOOP if line == _ROWS_LOOP else line for line in loop[1:]],
        "# the rows on openge's thread team: parts claimed with atomics (openge.kernels.sync)",
        '@njit(cache=True, nogil=True, error_model="numpy")',
        "def run_drive" + loop[0].replace("):", ", total, ctl, signal, worker, gen, spins):"),
        "    _sync.begin(ctl, signal, worker)",
        "    part = _sync.claim(ctl, worker)",
        "    while part >= 0:",
        "        first, stop = _sync.bounds(ctl, total, part)",
        f"        run_range(y, inner, {', '.join(names) + ', ' if names else ''}first, stop)",
        "        _sync.done(ctl)",
        "        part = _sync.claim(ctl, worker)",
        "    return _sync.end(ctl, signal, worker, gen, spins)",
        "",
    ]
    return "\n".join(lines)


_modules: dict[str, tuple[Callable[..., None], Callable[..., None], Callable[..., bool]]] = {}
_lock = threading.Lock()


def compile_programs(
    steps: Sequence[Step], kinds: Sequence[str], dtype: str, buffered: bool = False
) -> tuple[Callable[..., None], Callable[..., None], Callable[..., bool]]:
    """The compiled ``run(y, inner, *operands)`` of a program (every row, in the calling
    thread), ``run_range(y, inner, *operands, r_first, r_stop)`` (a part of the rows for one
    of openge's threads) and ``run_drive(y, inner, *operands, total, ctl, signal, worker, gen,
    spins)`` (the rows on openge's thread team, openge.kernels.sync), all releasing the GIL,
    built once per source text (``buffered``: see :func:`source`)."""
    text = source(steps, kinds, dtype, buffered)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    with _lock:
        fns = _modules.get(digest)
        if fns is not None:
            return fns
        folder = os.path.join(cache_dir(), "openge_programs")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"p_{digest}.py")
        data = text.encode()
        try:
            with open(path, "rb") as f:
                same = f.read() == data
        except OSError:
            same = False
        if not same:
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        name = f"openge_programs.p_{digest}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import the generated program {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        skip_refresh_on_cached_loads(module)
        fns = (module.run, module.run_range, module.run_drive)
        _modules[digest] = fns
        return fns


__all__ = ["KINDS", "VOCABULARY", "VOCABULARY32", "compile_programs", "source"]
