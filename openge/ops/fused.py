"""Op family: fused ops the compiler's fusion passes create (ops layer).

Each fused op runs the kernels of the ops it replaces, in the same order and through
temporaries of the same dtypes, so its results are bit-for-bit those of the unfused graph:

* ``FusedConv2D`` — Conv2D (+ bias) followed by an *epilogue* of elementwise ops applied to the
  convolution's result in place (an activation, a residual ``Add`` …);
* ``FusedMatMul`` — BatchMatMulV2/MatMulV2 (+ bias) followed by an epilogue;
* ``FusedElementwise`` — a tree of elementwise ops evaluated as one task.

A *program* (attr ``epilogue`` / ``program``) is a JSON string
``{"steps": [{"op", "attrs", "args", "dtype", "shape"}, …]}``: each step names an op type of the
catalog, its attrs, and its arguments — ``k >= 0`` is operand ``k`` of the fused op (for an
epilogue operand 0 is the main op's result), ``k < 0`` the value of step ``-k - 1``. The last
step's value is the result. Programs are decoded once and cached.

In-place: :func:`inplace_safe` says whether an op's kernel gives the right result when
``outputs[0]`` is the very array of one of its inputs (a NumPy ufunc / ``copyto`` does):
:data:`INPLACE_SAFE_OPS` for every dtype, :data:`INPLACE_SAFE_FLOAT_OPS` for float results only.
The program evaluator writes steps straight into the output array when that is safe and uses
temporaries otherwise; the memory planner uses the same rule to run tasks in place.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from openge.errors import PARAM_INVALID, GeError
from openge.graph import DataType, TensorDesc
from openge.kernels import blas
from openge.ops.matmul_compiled import prepare_product
from openge.ops.registry import get_schema, has_op
from openge.ops.schema import (
    Attr,
    AttrType,
    InferContext,
    Input,
    OpSchema,
    Output,
    Trait,
    normalize_attrs,
)

#: Op types whose kernel tolerates ``outputs[0]`` aliasing an input of the same byte size.
#: Only ops whose kernel reads each input fully before (or while, elementwise) writing the output
#: belong here; tests/compiler/test_memory.py checks every registered one.
INPLACE_SAFE_OPS: frozenset[str] = frozenset(
    {
        # unary math
        "Abs",
        "Acos",
        "Acosh",
        "Asin",
        "Asinh",
        "Atan",
        "Atanh",
        "Ceil",
        "Cos",
        "Cosh",
        "Erf",
        "Erfc",
        "Exp",
        "Expm1",
        "Floor",
        "Log",
        "Log1p",
        "Neg",
        "Reciprocal",
        "Rint",
        "Round",
        "Rsqrt",
        "Sign",
        "Sin",
        "Sinh",
        "Sqrt",
        "Square",
        "Tan",
        "Tanh",
        "LogicalNot",
        # activations
        "Relu",
        "Relu6",
        "Elu",
        "Selu",
        "Sigmoid",
        "Softplus",
        "Softsign",
        "Gelu",
        "Swish",
        "HardSigmoid",
        "HardSwish",
        "Mish",
        # binary
        "Add",
        "AddV2",
        "Sub",
        "Mul",
        "Div",
        "Maximum",
        "Minimum",
        "SquaredDifference",
        "FloorDiv",
        "FloorMod",
        "Mod",
        "LogicalAnd",
        "LogicalOr",
        # conversion and copies (a Cast only when the byte size stays)
        "Cast",
        "Identity",
        "Reshape",
        "Squeeze",
        "SqueezeV2",
        "SqueezeV3",
        "Unsqueeze",
        "UnsqueezeV2",
        "UnsqueezeV3",
        "ExpandDims",
        "Flatten",
    }
)
#: Op types whose kernel tolerates aliasing only for a floating-point result (their integer
#: paths read the inputs again after writing the output).
INPLACE_SAFE_FLOAT_OPS: frozenset[str] = frozenset({"RealDiv", "Pow"})


def inplace_safe(op_type: str, dtype: DataType) -> bool:
    """True when ``op_type``'s kernel gives the right result with ``outputs[0]`` (of ``dtype``)
    being the very array of one of its inputs."""
    if op_type in INPLACE_SAFE_OPS:
        return True
    return op_type in INPLACE_SAFE_FLOAT_OPS and dtype.np_dtype.kind in "fc"


_EMPTY_PROGRAM = '{"steps": []}'


# ----- programs ----------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, DataType):
        return int(value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    raise TypeError(type(value).__name__)


def encode_program(steps: Sequence[dict[str, Any]]) -> str:
    """The JSON text of a program; each step: op, attrs, args, dtype, shape.

    Raises TypeError when an attr value cannot be written (a tensor attr, a graph …).
    """
    out = []
    for s in steps:
        attrs = {k: _json_value(v) for k, v in sorted(s["attrs"].items()) if not k.startswith("_")}
        out.append(
            {
                "op": s["op"],
                "attrs": attrs,
                "args": [int(a) for a in s["args"]],
                "dtype": int(s["dtype"]),
                "shape": [int(d) for d in s["shape"]],
            }
        )
    return json.dumps({"steps": out}, sort_keys=True, separators=(",", ":"))


#: Read-only zero vectors per dtype: the second operand of a fast Relu, chunk by chunk.
_ZEROS: dict[np.dtype, np.ndarray] = {}
_ZERO_CHUNK = 1 << 18


def _zeros(dtype: np.dtype) -> np.ndarray:
    """A read-only vector of ``_ZERO_CHUNK`` zeros of ``dtype`` (made once per dtype)."""
    buf = _ZEROS.get(dtype)
    if buf is None:
        buf = np.zeros(_ZERO_CHUNK, dtype=dtype)
        buf.flags.writeable = False
        _ZEROS[dtype] = buf
    return buf


def _fast_relu(kernel: Any) -> Any:
    """Relu as ``maximum(x, zeros)``: NumPy's SIMD maximum loop needs two array operands (with a
    scalar 0 it takes a loop ~4x slower). Same values (max with +0, NaN propagates)."""

    def relu(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        x, y = inputs[0], outputs[0]
        if not (
            x.dtype.kind == "f"
            and x.dtype == y.dtype
            and x.shape == y.shape
            and x.flags.c_contiguous
            and y.flags.c_contiguous
        ):
            kernel(inputs, outputs)
            return
        xf, yf, zeros = x.reshape(-1), y.reshape(-1), _zeros(x.dtype)
        for start in range(0, xf.size, _ZERO_CHUNK):
            stop = min(start + _ZERO_CHUNK, xf.size)
            np.maximum(xf[start:stop], zeros[: stop - start], out=yf[start:stop])

    return relu


#: Faster kernels with the same results, used for program steps of these op types.
_FAST_KERNELS = {"Relu": _fast_relu}


class _Step:
    __slots__ = ("args", "dtype", "kernel", "kwargs", "op", "safe", "shape")

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        try:
            self.op = str(raw["op"])
            self.args = tuple(int(a) for a in raw["args"])
            self.dtype = DataType(int(raw["dtype"]))
            self.shape = tuple(int(d) for d in raw["shape"])
            attrs = dict(raw["attrs"])
        except (KeyError, TypeError, ValueError) as err:
            raise GeError(PARAM_INVALID, f"{where}: malformed program step {raw!r}") from err
        if not has_op(self.op):
            raise GeError(PARAM_INVALID, f"{where}: program step uses unknown op {self.op!r}")
        schema = get_schema(self.op)
        if schema.kernel is None:
            raise GeError(PARAM_INVALID, f"{where}: program step op {self.op} has no kernel")
        norm = normalize_attrs(schema, attrs, f"{where} step {self.op}")
        fast = _FAST_KERNELS.get(self.op)
        self.kernel = schema.kernel if fast is None else fast(schema.kernel)
        self.kwargs = {k: norm[k] for k in schema.kernel_attrs}
        self.safe = inplace_safe(self.op, self.dtype)


class Program:
    """A decoded program: its steps and, per set of operands aliasing the output, a plan of
    which steps write straight into the output array."""

    def __init__(self, text: str, where: str = "program") -> None:
        try:
            raw = json.loads(text)
            steps = raw["steps"]
        except (ValueError, TypeError, KeyError) as err:
            raise GeError(PARAM_INVALID, f"{where}: program is not valid JSON: {err}") from err
        self.steps = [_Step(s, where) for s in steps]
        self.attrs = [dict(s["attrs"]) for s in steps]
        for j, s in enumerate(self.steps):
            for a in s.args:
                if a < 0 and -a - 1 >= j:
                    raise GeError(PARAM_INVALID, f"{where}: step {j} reads a later step")
        self._plans: dict[frozenset[int], list[bool]] = {}

    @property
    def num_operands(self) -> int:
        """1 + the largest operand index the steps read (0 when none)."""
        return 1 + max((a for s in self.steps for a in s.args if a >= 0), default=-1)

    def _plan(self, aliased: frozenset[int], out_dtype: np.dtype, out_shape: tuple) -> list[bool]:
        """Which steps write into the output: the last one, and back from it a spine of steps
        whose values have the output's type, are read by the next spine step only, and whose
        readers tolerate aliasing — as long as no later step still needs an operand that shares
        the output's memory."""
        steps = self.steps
        n = len(steps)
        writes = [False] * n
        reads = [any(a >= 0 and a in aliased for a in s.args) for s in steps]
        readers: list[set[int]] = [set() for _ in steps]
        for j, s in enumerate(steps):
            for a in s.args:
                if a < 0:
                    readers[-a - 1].add(j)
        if reads[-1] and not steps[-1].safe:
            return writes  # the last step computes into a temporary, then copies
        writes[-1] = True
        j = n - 1
        while steps[j].safe:
            spine = [
                -a - 1
                for a in steps[j].args
                if a < 0
                and readers[-a - 1] == {j}  # no other step needs the value out would hold
                and steps[-a - 1].dtype.np_dtype == out_dtype
                and steps[-a - 1].shape == out_shape
            ]
            if not spine:
                break
            p = spine[0]
            if any(reads[p + 1 :]) or (reads[p] and not steps[p].safe):
                break
            writes[p] = True
            j = p
        return writes

    def run(self, operands: Sequence[np.ndarray | None], out: np.ndarray) -> None:
        """Evaluate into ``out`` (which may be, or share memory with, some operands)."""
        aliased = frozenset(
            k for k, a in enumerate(operands) if a is not None and np.may_share_memory(a, out)
        )
        plan = self._plans.get(aliased)
        if plan is None:
            plan = self._plan(aliased, out.dtype, tuple(out.shape))
            self._plans[aliased] = plan
        values: list[np.ndarray] = []
        for s, direct in zip(self.steps, plan):
            ins = [operands[a] if a >= 0 else values[-a - 1] for a in s.args]
            target = out if direct else np.empty(s.shape, dtype=s.dtype.np_dtype)
            s.kernel(ins, [target], **s.kwargs)
            values.append(target)
        if values and not plan[-1]:
            np.copyto(out, values[-1])

    def infer(
        self,
        ctx: InferContext,
        operands: Sequence[TensorDesc | None],
        input_index: Sequence[int | None],
    ) -> TensorDesc:
        """The result desc, inferring every step with its op's own inference.

        ``input_index[k]`` is the node input that operand ``k`` is (None for a computed one),
        so that steps see the operands' compile-time values.
        """
        descs: list[TensorDesc] = []
        for j, (s, attrs) in enumerate(zip(self.steps, self.attrs)):
            schema = get_schema(s.op)
            norm = normalize_attrs(schema, attrs, f"node {ctx.name} ({ctx.op_type}) step {j}")
            ins: list[TensorDesc | None] = []
            consts: list[np.ndarray | None] = []
            for a in s.args:
                if a >= 0:
                    if a >= len(operands) or operands[a] is None:
                        raise ctx.error(f"program step {j} ({s.op}) reads missing operand {a}")
                    ins.append(operands[a])
                    index = input_index[a]
                    consts.append(None if index is None else ctx.const_value(index))
                else:
                    ins.append(descs[-a - 1])
                    consts.append(None)
            sub = InferContext(f"{ctx.name}/{j}", s.op, ins, norm, consts)
            try:
                (desc,) = schema.infer(sub)  # type: ignore[misc]
            except GeError as err:
                raise ctx.error(f"program step {j}: {err.message}", err.code) from err
            if desc.dtype != s.dtype or tuple(desc.shape) != s.shape:
                raise ctx.error(
                    f"program step {j} ({s.op}) records {s.dtype.short_name}{list(s.shape)} "
                    f"but infers {desc.type_str()}; re-run the fusion pass"
                )
            descs.append(desc)
        if not descs:
            raise ctx.error("program has no steps")
        return descs[-1]


@functools.lru_cache(maxsize=1024)
def decode_program(text: str) -> Program:
    """The decoded (cached) program of a JSON text."""
    return Program(text)


def _program(ctx: InferContext, attr: str) -> Program:
    try:
        return decode_program(ctx.attrs[attr])
    except GeError as err:
        raise ctx.error(f"attr {attr}: {err.message}", err.code) from err


# ----- FusedElementwise --------------------------------------------------------------------------


def _infer_fused_elementwise(ctx: InferContext) -> Sequence[TensorDesc]:
    prog = _program(ctx, "program")
    if prog.num_operands > ctx.num_inputs:
        raise ctx.error(f"program reads {prog.num_operands} operands, {ctx.num_inputs} given")
    desc = prog.infer(ctx, ctx.input_descs, range(ctx.num_inputs))
    return [TensorDesc(desc.dtype, desc.shape, ctx.input(0).format)]


def _fused_elementwise_kernel(inputs, outputs, *, program):
    decode_program(program).run(inputs, outputs[0])


def _prepare_fused_elementwise(inputs, outputs, constant, *, program):
    """The program compiled into one loop (openge.ops.compiled), or None."""
    from openge.ops.compiled import program_closure

    steps = _program_steps(decode_program(program), 0)
    return program_closure(steps, list(inputs), list(constant), outputs[0])


# ----- FusedConv2D / FusedMatMul -----------------------------------------------------------------

_N_MAIN = 3  # x, filter/x2, bias: the main op's inputs; operands 1 and 2 follow


def _infer_epilogue(ctx: InferContext, main: TensorDesc) -> TensorDesc:
    prog = _program(ctx, "epilogue")
    if not prog.steps:
        return main
    operands = [main] + [
        ctx.input_descs[i] if ctx.has_input(i) else None for i in range(_N_MAIN, ctx.num_inputs)
    ]
    desc = prog.infer(ctx, operands, [None, *range(_N_MAIN, ctx.num_inputs)])
    if desc.dtype != main.dtype or tuple(desc.shape) != tuple(main.shape):
        raise ctx.error(
            f"the epilogue gives {desc.type_str()}; it must keep the main result's "
            f"{main.type_str()}"
        )
    return TensorDesc(desc.dtype, desc.shape, main.format, main.origin_format)


def _main_context(ctx: InferContext, op_type: str, attrs: dict[str, Any]) -> InferContext:
    descs = [ctx.input_descs[i] if ctx.has_input(i) else None for i in range(_N_MAIN)]
    consts = [ctx.const_value(i) for i in range(_N_MAIN)]
    return InferContext(ctx.name, op_type, descs, attrs, consts)


def _conv_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {
        k: attrs[k] for k in ("strides", "pads", "dilations", "groups", "data_format", "offset_x")
    }


def _infer_fused_conv2d(ctx: InferContext) -> Sequence[TensorDesc]:
    (main,) = get_schema("Conv2D").infer(  # type: ignore[misc]
        _main_context(ctx, "Conv2D", _conv_attrs(ctx.attrs))
    )
    return [_infer_epilogue(ctx, main)]


def _run_epilogue(inputs: Sequence[np.ndarray | None], y: np.ndarray, epilogue: str) -> None:
    prog = decode_program(epilogue)
    if prog.steps:
        prog.run([y, *inputs[_N_MAIN:]], y)


def _fused_conv2d_kernel(
    inputs, outputs, *, strides, pads, dilations, groups, data_format, epilogue
):
    main = list(inputs[:_N_MAIN]) + [None] * (_N_MAIN - len(inputs[:_N_MAIN]))
    get_schema("Conv2D").kernel(  # type: ignore[misc]
        main,
        outputs,
        strides=strides,
        pads=pads,
        dilations=dilations,
        groups=groups,
        data_format=data_format,
    )
    _run_epilogue(inputs, outputs[0], epilogue)


def _program_steps(prog: Program, shift: int) -> list[tuple[str, list[int], dict[str, Any]]]:
    """The program's steps as (op, args, kernel attrs), operand 0 read from step -1 and the
    other operands and steps moved by ``shift`` (a leading bias step takes slot 1)."""
    out = []
    for s in prog.steps:
        args = []
        for a in s.args:
            if a == 0 and shift:
                args.append(-1)
            elif a > 0:
                args.append(a + shift)
            elif a < 0:
                args.append(a - shift)
            else:
                args.append(a)
        out.append((s.op, args, s.kwargs))
    return out


def _compiled_epilogue(
    prog: Program,
    y: np.ndarray,
    bias: np.ndarray | None,
    bias_shape: tuple[int, ...],
    extra: Sequence[np.ndarray | None],
    extra_constant: Sequence[bool],
) -> Any:
    """One compiled pass over ``y``: ``+ bias`` (broadcast as ``bias_shape``) then the epilogue
    program (operand 0 = the result, then ``extra``); None when it does not compile."""
    from openge.ops.compiled import program_closure

    if bias is None and not prog.steps:
        return None
    if bias is not None and (bias.size != math.prod(bias_shape) or not bias.flags.c_contiguous):
        return None
    if bias is None:
        steps = _program_steps(prog, 0)
        operands: list[np.ndarray | None] = [y, *extra]
        constant = [False, *extra_constant]
    else:
        steps = [("Add", [0, 1], {}), *_program_steps(prog, 1)]
        operands = [y, bias.reshape(bias_shape), *extra]
        constant = [False, True, *extra_constant]
    return program_closure(steps, operands, constant, y)


def _depthwise_with_activation(main, y, prog, inputs, constant, attrs):
    """The compiled depthwise convolution with the epilogue's activation fused in, or None."""
    from openge.ops import conv_depthwise

    x, f = main[0], main[1]
    if x is None or f is None or f.ndim != 4 or f[0].size > conv_depthwise.MAX_TAPS:
        return None
    act = conv_depthwise.activation(
        _program_steps(prog, 0),
        [y, *inputs[_N_MAIN:]],
        [False, *constant[_N_MAIN : len(inputs)]],
    )
    if act is None:
        return None
    s, d = attrs["strides"], attrs["dilations"]
    fixed = len(constant) > 1 and bool(constant[1])
    return conv_depthwise.prepare(
        x, f, main[2], y, (s[2], s[3]), (d[2], d[3]), attrs["pads"], act, constant_filter=fixed
    )


def _residual_and_activation(y, prog, inputs, constant):
    """The epilogue as (residual, activation) for openge.ops.conv_pointwise's and
    conv_im2col's fused blocks (see conv_pointwise.epilogue), or None."""
    from openge.ops import conv_pointwise

    return conv_pointwise.epilogue(
        _program_steps(prog, 0),
        [y, *inputs[_N_MAIN:]],
        [False, *constant[_N_MAIN : len(inputs)]],
    )


def _pointwise_with_epilogue(main, y, prog, inputs, constant, attrs):
    """The 1×1 convolution of openge.ops.conv_pointwise with the epilogue fused in, or None."""
    from openge.ops import conv_pointwise

    x, f = main[0], main[1]
    if (
        x is None
        or f is None
        or f.ndim != 4
        or f.shape[2:] != (1, 1)
        or any(attrs["pads"])
        or list(attrs["strides"][2:]) != [1, 1]
    ):
        return None
    parsed = _residual_and_activation(y, prog, inputs, constant)
    if parsed is None:
        return None
    fixed = len(constant) > 1 and bool(constant[1])
    return conv_pointwise.prepare(
        x, f, main[2], y, *parsed, groups=attrs["groups"], constant_filter=fixed
    )


def _strided_pointwise_with_epilogue(main, y, prog, inputs, constant, attrs):
    """An unpadded strided 1×1 convolution (openge.ops.conv_pointwise.prepare_strided) with
    the epilogue fused in, or None."""
    from openge.ops import conv_pointwise

    x, f = main[0], main[1]
    if x is None or f is None or f.ndim != 4 or f.shape[2:] != (1, 1) or any(attrs["pads"]):
        return None
    strides = list(attrs["strides"][2:])
    if strides == [1, 1]:
        return None
    parsed = _residual_and_activation(y, prog, inputs, constant)
    if parsed is None:
        return None
    fixed = len(constant) > 1 and bool(constant[1])
    return conv_pointwise.prepare_strided(x, f, main[2], y, strides, *parsed, constant_filter=fixed)


def _winograd_with_epilogue(main, y, prog, inputs, constant, attrs):
    """The Winograd convolution of openge.ops.conv_winograd with the epilogue applied as each
    output is made, or None."""
    from openge.ops import conv_winograd

    x, f = main[0], main[1]
    if (
        x is None
        or f is None
        or f.ndim != 4
        or x.ndim != 4
        or f.shape[2:] != (3, 3)
        or list(attrs["strides"][2:]) != [1, 1]
        or list(attrs["dilations"][2:]) != [1, 1]
        or attrs["groups"] != 1
    ):
        return None
    fixed = len(constant) > 1 and bool(constant[1])
    if not conv_winograd.suitable(x, f, y, attrs["pads"], fixed):
        return None
    parsed = _residual_and_activation(y, prog, inputs, constant)
    if parsed is None:
        return None
    return conv_winograd.prepare_winograd(x, f, main[2], y, attrs["pads"], fixed, *parsed)


def _im2row_with_epilogue(main, y, prog, inputs, constant, attrs):
    """The small-plane convolution of openge.ops.conv_im2row with the epilogue fused in, or
    None (also for the 3×3 stride-1 convolutions Winograd takes)."""
    from openge.ops import conv_im2row

    x, f = main[0], main[1]
    if x is None or f is None or f.ndim != 4 or x.ndim != 4:
        return None
    if _winograd_takes(x, f, y, attrs, constant):
        return None
    parsed = _residual_and_activation(y, prog, inputs, constant)
    if parsed is None:
        return None
    s, d = attrs["strides"], attrs["dilations"]
    fixed = len(constant) > 1 and bool(constant[1])
    return conv_im2row.prepare(
        x, f, main[2], y, s[2:], d[2:], attrs["pads"], *parsed, constant_filter=fixed
    )


def _winograd_takes(x, f, y, attrs, constant) -> bool:
    """Whether openge.ops.conv_winograd takes this convolution (3×3, stride 1, suitable)."""
    from openge.ops import conv_winograd

    return (
        f.shape[2:] == (3, 3)
        and list(attrs["strides"][2:]) == [1, 1]
        and list(attrs["dilations"][2:]) == [1, 1]
        and attrs["groups"] == 1
        and conv_winograd.suitable(x, f, y, attrs["pads"], len(constant) > 1 and bool(constant[1]))
    )


def _im2col_with_epilogue(main, y, prog, inputs, constant, attrs):
    """The convolution of openge.ops.conv_im2col with the epilogue fused in, or None (also
    for the 3×3 stride-1 convolutions Winograd takes: Conv2D's prepare runs those)."""
    from openge.ops import conv_im2col, conv_winograd

    x, f = main[0], main[1]
    if x is None or f is None or f.ndim != 4 or x.ndim != 4:
        return None
    s, d, pads = attrs["strides"], attrs["dilations"], attrs["pads"]
    fixed = len(constant) > 1 and bool(constant[1])
    if (
        f.shape[2:] == (3, 3)
        and list(s[2:]) == [1, 1]
        and list(d[2:]) == [1, 1]
        and conv_winograd.suitable(x, f, y, pads, fixed)
    ):
        return None
    parsed = _residual_and_activation(y, prog, inputs, constant)
    if parsed is None:
        return None
    return conv_im2col.prepare(
        x, f, main[2], y, s[2:], d[2:], pads, *parsed, groups=attrs["groups"], constant_filter=fixed
    )


def _prepare_fused_conv2d(
    inputs, outputs, constant, *, strides, pads, dilations, groups, data_format, epilogue
):
    """The convolution (Conv2D's prepared closure, else its kernel) without its bias, then one
    compiled pass adding the bias and running the epilogue; else Conv2D's prepared closure
    followed by the epilogue program, in place."""
    main = list(inputs[:_N_MAIN]) + [None] * (_N_MAIN - len(inputs[:_N_MAIN]))
    attrs = {
        "strides": strides,
        "pads": pads,
        "dilations": dilations,
        "groups": groups,
        "data_format": data_format,
    }
    schema = get_schema("Conv2D")
    prog = decode_program(epilogue)
    y = outputs[0]
    bias = main[2]
    if data_format == "NCHW":
        # depthwise (or few taps per output) + activation: one compiled pass
        fused_dw = _depthwise_with_activation(main, y, prog, inputs, constant, attrs)
        if fused_dw is not None:
            return fused_dw
    if data_format == "NCHW" and groups == 1:
        # a strided 1×1: the strided input gathered, then the 1×1 product in blocks
        fused_strided = _strided_pointwise_with_epilogue(main, y, prog, inputs, constant, attrs)
        if fused_strided is not None:
            return fused_strided
        # a small output plane: the positions as the product's rows, the epilogue fused
        fused_rows = _im2row_with_epilogue(main, y, prog, inputs, constant, attrs)
        if fused_rows is not None:
            return fused_rows
        # 1x1: GEMM in column blocks, each finished by a compiled epilogue while in cache
        fused_pw = _pointwise_with_epilogue(main, y, prog, inputs, constant, attrs)
        if fused_pw is not None:
            return fused_pw
    if data_format == "NCHW" and groups > 1:
        # a grouped 1×1 (shufflenet): each group's GEMM in column blocks, epilogue fused
        fused_grouped = _pointwise_with_epilogue(main, y, prog, inputs, constant, attrs)
        if fused_grouped is not None:
            return fused_grouped
    if data_format == "NCHW":
        # 3×3 stride 1: Winograd, the epilogue in its output transform
        fused_wino = _winograd_with_epilogue(main, y, prog, inputs, constant, attrs)
        if fused_wino is not None:
            return fused_wino
        # any other filter: im2col panels on openge's GEMM, the epilogue fused per block
        fused_cols = _im2col_with_epilogue(main, y, prog, inputs, constant, attrs)
        if fused_cols is not None:
            return fused_cols
    c = y.shape[1] if data_format == "NCHW" else y.shape[-1]
    bias_shape = (c, 1, 1) if data_format == "NCHW" else (c,)
    fused = _compiled_epilogue(
        prog, y, bias, bias_shape, inputs[_N_MAIN:], constant[_N_MAIN : len(inputs)]
    )
    if fused is not None:
        nobias = [main[0], main[1], None]
        conv = schema.prepare(nobias, outputs, [*constant[:2], False], **attrs)  # type: ignore[misc]
        if conv is None:
            kernel = schema.kernel

            def conv() -> None:
                kernel(nobias, outputs, **attrs)  # type: ignore[misc]

        def conv_then_epilogue() -> None:
            conv()
            fused()

        return conv_then_epilogue
    conv = schema.prepare(main, outputs, constant[:_N_MAIN], **attrs)  # type: ignore[misc]
    if conv is None:
        return None
    if not prog.steps:
        return conv
    operands = [y, *inputs[_N_MAIN:]]

    def conv_and_epilogue() -> None:
        conv()
        prog.run(operands, y)

    return conv_and_epilogue


def _infer_fused_matmul(ctx: InferContext) -> Sequence[TensorDesc]:
    attrs = {
        "adj_x1": ctx.attrs["transpose_x1"],
        "adj_x2": ctx.attrs["transpose_x2"],
        "offset_x": ctx.attrs["offset_x"],
    }
    (main,) = get_schema("BatchMatMulV2").infer(  # type: ignore[misc]
        _main_context(ctx, "BatchMatMulV2", attrs)
    )
    return [_infer_epilogue(ctx, main)]


def _fused_matmul_kernel(inputs, outputs, *, transpose_x1, transpose_x2, epilogue):
    main = list(inputs[:_N_MAIN]) + [None] * (_N_MAIN - len(inputs[:_N_MAIN]))
    get_schema("BatchMatMulV2").kernel(  # type: ignore[misc]
        main, outputs, adj_x1=transpose_x1, adj_x2=transpose_x2
    )
    _run_epilogue(inputs, outputs[0], epilogue)


def _prepare_fused_matmul(inputs, outputs, constant, *, transpose_x1, transpose_x2, epilogue):
    """The product without its bias — openge's own GEMM on the packed weights when they are
    constant (openge.ops.matmul_compiled), else BLAS — then one compiled pass adding the bias
    and running the epilogue; when that pass does not compile, the kernel's steps bound once."""
    y = outputs[0]
    a, b = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    if a is None or b is None or a.dtype != y.dtype or b.dtype != y.dtype:
        return None
    fused = _compiled_epilogue(
        decode_program(epilogue),
        y,
        bias,
        (y.shape[-1],),
        inputs[_N_MAIN:],
        constant[_N_MAIN : len(inputs)],
    )
    a = np.swapaxes(a, -1, -2) if transpose_x1 else a
    b = np.swapaxes(b, -1, -2) if transpose_x2 else b
    product = prepare_product(a, b, bool(constant[1]), y)
    if fused is None:
        return _product_then_program(a, b, bias, y, decode_program(epilogue), inputs, product)
    if product is None:

        def product_then_epilogue() -> None:
            blas.matmul(a, b, y)
            fused()

        return product_then_epilogue

    def own_product_then_epilogue() -> None:
        product()
        fused()

    return own_product_then_epilogue


def _product_then_program(
    a: np.ndarray,
    b: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    prog: Program,
    inputs: Sequence[np.ndarray | None],
    product: Callable[[], None] | None = None,
) -> Any:
    """The kernel's own steps (product, ``+= bias``, the epilogue program in NumPy) bound once:
    the same values, without the per-run schema lookups — or with ``product`` (the compiled
    GEMM of openge.ops.matmul_compiled) for the product, within the conformance tolerances.
    Float16 products (float32 accumulation) keep the kernel."""
    if y.dtype not in (np.float32, np.float64) or not y.flags.writeable:
        return None
    operands = [y, *inputs[_N_MAIN:]]

    def product_then_program() -> None:
        if product is None:
            blas.matmul(a, b, y)
        else:
            product()
        if bias is not None:
            np.add(y, bias, out=y)
        if prog.steps:
            prog.run(operands, y)

    return product_then_program


_EPILOGUE_INPUTS = (
    Input("operand1", optional=True, doc="epilogue operand 1 (e.g. a residual)"),
    Input("operand2", optional=True, doc="epilogue operand 2"),
)
_EPILOGUE_ATTR = Attr(
    "epilogue",
    AttrType.STR,
    _EMPTY_PROGRAM,
    doc="JSON program applied to the main result (operand 0) and operand1/operand2",
)

SCHEMAS = [
    OpSchema(
        "FusedConv2D",
        inputs=(Input("x"), Input("filter"), Input("bias", optional=True), *_EPILOGUE_INPUTS),
        outputs=(Output("y"),),
        attrs=(
            Attr("strides", AttrType.LIST_INT, doc="4 values in data_format order"),
            Attr("pads", AttrType.LIST_INT, doc="[top, bottom, left, right]"),
            Attr("dilations", AttrType.LIST_INT, [1, 1, 1, 1]),
            Attr("groups", AttrType.INT, 1),
            Attr("data_format", AttrType.STR, "NHWC", choices=("NCHW", "NHWC")),
            Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)"),
            _EPILOGUE_ATTR,
        ),
        infer=_infer_fused_conv2d,
        kernel=_fused_conv2d_kernel,
        prepare=_prepare_fused_conv2d,
        doc="Conv2D (+ bias) followed by an elementwise epilogue (activation, residual add …) "
        "applied in place; made by the compiler's FuseBiasActivationPass.",
        onnx="Conv + elementwise ops (onnxruntime's FusedConv)",
    ),
    OpSchema(
        "FusedMatMul",
        inputs=(Input("x1"), Input("x2"), Input("bias", optional=True), *_EPILOGUE_INPUTS),
        outputs=(Output("y"),),
        attrs=(
            Attr("transpose_x1", AttrType.BOOL, False),
            Attr("transpose_x2", AttrType.BOOL, False),
            Attr("offset_x", AttrType.INT, 0, doc="quantization (only 0)"),
            _EPILOGUE_ATTR,
        ),
        infer=_infer_fused_matmul,
        kernel=_fused_matmul_kernel,
        prepare=_prepare_fused_matmul,
        doc="(Batch) matmul y = op(x1) @ op(x2) + bias (batch dims broadcast) followed by an "
        "elementwise epilogue applied in place; made by the compiler's FuseBiasActivationPass.",
        onnx="MatMul/Gemm + elementwise ops (onnxruntime's FusedMatMul / FusedGemm)",
    ),
    OpSchema(
        "FusedElementwise",
        inputs=(Input("x", dynamic=True, doc="the operands the program reads"),),
        outputs=(Output("y"),),
        attrs=(Attr("program", AttrType.STR, doc="JSON program of elementwise steps"),),
        infer=_infer_fused_elementwise,
        kernel=_fused_elementwise_kernel,
        prepare=_prepare_fused_elementwise,
        doc="A tree of elementwise ops run as one task, each step by its op's own kernel "
        "(bit-exact); made by the compiler's FuseElementwisePass.",
        onnx="(none: several elementwise ops)",
        traits=frozenset({Trait.ELEMENTWISE}),
    ),
]

__all__ = [
    "INPLACE_SAFE_FLOAT_OPS",
    "INPLACE_SAFE_OPS",
    "SCHEMAS",
    "Program",
    "decode_program",
    "encode_program",
    "inplace_safe",
]
