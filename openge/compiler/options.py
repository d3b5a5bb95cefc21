"""GE option keys openge knows, their accepted values, and validation of option dicts.

Options are string → string, as in GE. A known key with a bad value raises GeError naming the
key, the value and what is accepted; an unknown key is accepted with a warning (GE's behaviour).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from openge.compiler.passes.fold_limits import LIMIT_OPTIONS as _LIMIT_OPTIONS
from openge.errors import PARAM_INVALID, GeError

logger = logging.getLogger(__name__)

BOOL_VALUES = ("0", "1", "true", "false", "True", "False")


@dataclass(frozen=True)
class OptionSpec:
    """One known option: accepted values (a tuple) or a checker, and what it does."""

    key: str
    doc: str
    choices: tuple[str, ...] | None = None
    check: Callable[[str], bool] | None = None
    accepted: str = ""

    def validate(self, value: object) -> str:
        """The value as a string; GeError when it is not accepted."""
        if not isinstance(value, str):
            raise GeError(
                PARAM_INVALID,
                f"option {self.key} = {value!r}: option values are strings (GE passes "
                f"std::map<string, string>); write {str(value)!r}",
            )
        ok = value in self.choices if self.choices is not None else True
        if ok and self.check is not None:
            ok = self.check(value)
        if not ok:
            accepted = ", ".join(self.choices) if self.choices is not None else self.accepted
            raise GeError(
                PARAM_INVALID,
                f"option {self.key} = {value!r} is not valid; accepted values: {accepted}",
            )
        return value


def _is_uint(text: str) -> bool:
    return text.isdigit()


# One input: "name:d0,d1,..." (a dim: an integer, -1, or a range "1~8"); "name:" is a scalar.
_DIM = r"\s*-?\d+(\s*~\s*-?\d+)?\s*"
_ONE = rf"\s*[^:;]+:({_DIM}(,{_DIM})*)?\s*"
_SHAPE_RE = re.compile(rf"^{_ONE}(;{_ONE})*;?$")


def _is_shape_spec(text: str) -> bool:
    return text == "" or bool(_SHAPE_RE.match(text))


def _is_shape_range_spec(text: str) -> bool:
    """ATC input_shape with -1 and lo~hi dims (openge.graph.shape_range)."""
    from openge.graph.shape_range import parse_shape_ranges

    try:
        parse_shape_ranges(text)
    except GeError:
        return False
    return True


PRECISION_MODES = (
    "force_fp32",
    "allow_fp32_to_fp16",
    "force_fp16",
    "must_keep_origin_dtype",
    "allow_mix_precision",
    "allow_mix_precision_fp16",
    "allow_mix_precision_bf16",
    "cube_fp16in_fp32out",
    "force_lowerprecision",
    "allow_fp32_to_bf16",
)
PRECISION_MODES_V2 = (
    "fp16",
    "origin",
    "cube_fp16in_fp32out",
    "mixed_float16",
    "mixed_bfloat16",
    "mixed_hif8",
    "cube_hif8",
)

#: Precision lists / dtype files and data dump (docs/precision.md, docs/dump.md).
PRECISION_AND_DUMP_OPTIONS = (
    OptionSpec(
        "ge.exec.modify_mixlist",
        "mixed-precision list edits: a JSON file (or JSON text)",
        check=lambda v: v.strip() != "",
        accepted="a JSON file path",
    ),
    OptionSpec(
        "ge.keepDtype",
        "file of ops that keep their dtype (node names or OpType::X)",
        check=lambda v: v.strip() != "",
        accepted="a file path",
    ),
    OptionSpec(
        "ge.customizeDtypes",
        "file of per-op compute dtypes (name::InputDtype:...,OutputDtype:...)",
        check=lambda v: v.strip() != "",
        accepted="a file path",
    ),
    OptionSpec("ge.exec.enableDump", "1: dump every op's tensors at run time", ("0", "1")),
    OptionSpec(
        "ge.exec.dumpPath",
        "folder the dump goes to",
        check=lambda v: v.strip() != "",
        accepted="a folder path",
    ),
    OptionSpec("ge.exec.dumpMode", "which tensors to dump", ("input", "output", "all")),
    OptionSpec(
        "ge.exec.dumpStep",
        "executions to dump: 0|2-4|7 (all when unset)",
        check=lambda v: bool(re.fullmatch(r"\s*\d+(\s*-\s*\d+)?(\s*\|\s*\d+(\s*-\s*\d+)?)*\s*", v)),
        accepted='steps and ranges joined by "|", e.g. 0|2-4',
    ),
    OptionSpec(
        "ge.exec.dumpLayer",
        "op names to dump, space separated (all when unset)",
        check=lambda v: True,
    ),
    OptionSpec("ge.exec.dumpData", "tensor: the data; stats: not supported", ("tensor",)),
    OptionSpec(
        "ge.exec.dumpFormat",
        "openge: ge (GE's binary files, default) or npy (golden .npy files)",
        ("ge", "npy"),
    ),
)

KNOWN_OPTIONS: dict[str, OptionSpec] = {
    spec.key: spec
    for spec in (
        OptionSpec(
            "ge.exec.variable_acc",
            "variable-format pass (stores a variable in the layout its consumers want); "
            "get_compiled_model requires it to be False",
            ("True", "False"),
        ),
        OptionSpec(
            "ge.externalWeight",
            "0: weights inside the model; 1: one file per constant; 2: one combined file",
            ("0", "1", "2"),
        ),
        OptionSpec(
            "ge.externalWeightDir",
            "folder for external weight files (never deleted by openge)",
            check=lambda v: v.strip() != "",
            accepted="a non-empty folder path",
        ),
        OptionSpec("ge.oo.constantFolding", "constant folding pass", BOOL_VALUES),
        OptionSpec("ge.oo.deadCodeElimination", "dead code elimination pass", BOOL_VALUES),
        OptionSpec("ge.oo.level", "O1 turns fusion off; O3 (default) all passes", ("O1", "O3")),
        OptionSpec(
            "ge.disableOptimizations",
            "comma-separated pass names to skip",
            check=lambda v: all(p.strip() for p in v.split(",")) or v == "",
            accepted="a comma-separated list of pass names",
        ),
        OptionSpec("ge.exec.precision_mode", "precision mode (v1)", PRECISION_MODES),
        OptionSpec("ge.exec.precision_mode_v2", "precision mode (v2)", PRECISION_MODES_V2),
        *PRECISION_AND_DUMP_OPTIONS,
        OptionSpec("ge.exec.disableReuseMemory", "1: every tensor gets its own memory", ("0", "1")),
        OptionSpec("ge.graphRunMode", "0: inference, 1: training", ("0", "1")),
        OptionSpec(
            "ge.exec.deviceId",
            "device id (openge runs on the CPU; any id is accepted)",
            check=_is_uint,
            accepted="a non-negative integer",
        ),
        OptionSpec("ge.socVersion", "target SoC (informational on CPU)", check=lambda v: True),
        OptionSpec(
            "ge.inputShape",
            "input shapes, ATC syntax name:1,3,224,224;name2:... (-1 or lo~hi: dynamic dims)",
            check=_is_shape_range_spec,
            accepted='"name:d0,d1,...;name2:..." (a dim: size, -1 or lo~hi)',
        ),
        OptionSpec(
            "openge.dynamic.planCacheSize",
            "dynamic-shape models: input-shape signatures whose plans are kept (LRU, default 8)",
            check=lambda v: v.isdigit() and int(v) >= 1,
            accepted="an integer ≥ 1",
        ),
        OptionSpec(
            "openge.dynamic.memoryLimit",
            "dynamic-shape models: bytes one run may plan or allocate (default: half of RAM)",
            check=lambda v: v.isdigit() and int(v) >= 1,
            accepted="an integer ≥ 1 (bytes)",
        ),
        OptionSpec(
            "ge.dynamicBatchSize",
            'gears of the batch dim, "1,2,4,8" (checked by openge.compiler.gears)',
            check=lambda v: True,
        ),
        OptionSpec(
            "ge.dynamicImageSize",
            'gears of H,W, "416,416;832,832" (checked by openge.compiler.gears)',
            check=lambda v: True,
        ),
        OptionSpec(
            "ge.dynamicDims",
            'gears of every -1 of ge.inputShape, "20,20;40,40" (checked by openge.compiler.gears)',
            check=lambda v: True,
        ),
        OptionSpec(
            "ge.dynamicNodeType", "gear inputs: 1 Data (0 GetNext: unsupported)", ("0", "1")
        ),
        OptionSpec("ge.exec.formatMode", "1: keep the original formats", ("0", "1")),
        OptionSpec("ge.inputFormat", "input layout", ("NCHW", "NHWC", "ND", "NCDHW", "NDHWC")),
        OptionSpec("ge.graph_key", "graph identity for caches", check=lambda v: True),
        # model boundary (compiler/boundary.py): ATC's --out_nodes, --input_fp16_nodes,
        # --output_type, --insert_op_conf
        OptionSpec("ge.outputNodeName", 'outputs "node:0;node:1"', check=lambda v: True),
        OptionSpec("ge.INPUT_NODES_SET_FP16", 'float16 inputs "a;b"', check=lambda v: True),
        OptionSpec("ge.outputDatatype", 'FP32|FP16|... or "node:0:FP16;..."', check=lambda v: True),
        OptionSpec(
            "ge.insertOpFile",
            "AIPP config (prototxt)",
            check=lambda v: v.strip() != "",
            accepted="a file path",
        ),
        *(
            OptionSpec(key, doc, check=_is_uint, accepted="a byte count (decimal)")
            for key, doc in _LIMIT_OPTIONS.items()
        ),
        OptionSpec(
            "ge.session_device_id",
            "device id of the session",
            check=_is_uint,
            accepted="a non-negative integer",
        ),
    )
}


def validate_options(options: Mapping[str, object] | None, level: str) -> dict[str, str]:
    """Check an options dict at ``level`` (global, session, graph, build) and return a copy."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise GeError(PARAM_INVALID, f"{level} options must be a dict of str to str")
    out: dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise GeError(PARAM_INVALID, f"{level} option key {key!r} is not a string")
        spec = KNOWN_OPTIONS.get(key)
        if spec is None:
            logger.warning(
                "%s option %r is not known to openge; it is kept and ignored", level, key
            )
            out[key] = str(value)
            continue
        out[key] = spec.validate(value)
    return out


def option_enabled(options: Mapping[str, str], key: str, default: bool) -> bool:
    """Read a bool-like option ("1"/"true"/"True" on, "0"/"false"/"False" off)."""
    value = options.get(key)
    if value is None:
        return default
    return value in ("1", "true", "True")


def parse_input_shape(text: str) -> dict[str, tuple[int, ...]]:
    """Parse ATC's ``"name:1,3,224,224;name2:..."`` into {name: shape}."""
    if not _is_shape_spec(text):
        raise GeError(
            PARAM_INVALID,
            f'input_shape {text!r} is not valid; write "name:d0,d1,...;name2:d0,..."',
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, _, dims = part.rpartition(":")
        if "~" in dims:
            raise GeError(
                PARAM_INVALID,
                f"input_shape {text!r}: shape ranges (~) make a dynamic-shape model, which this "
                "compile path does not take; give fixed dims",
            )
        shapes[name.strip()] = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
    return shapes
