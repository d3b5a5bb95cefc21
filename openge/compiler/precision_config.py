"""The precision policy of one compilation, from the options (docs/precision.md).

``ge.exec.precision_mode`` (v1) and ``ge.exec.precision_mode_v2`` (exclusive) choose the mode;
``ge.exec.modify_mixlist`` edits the white/black/gray lists (a JSON file or JSON text, ATC's
``--modify_mixlist``); ``ge.keepDtype`` (ATC ``--keep_dtype``) names ops that keep their dtype;
``ge.customizeDtypes`` (ATC ``--customize_dtypes``) gives ops their compute dtype. Files are
untrusted: bounded size, GeError for anything malformed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from openge.compiler.precision_lists import LISTS, default_list
from openge.errors import PARAM_INVALID, UNSUPPORTED, GeError
from openge.graph import DataType

MODE_KEY = "ge.exec.precision_mode"
MODE_V2_KEY = "ge.exec.precision_mode_v2"
MIXLIST_KEY = "ge.exec.modify_mixlist"
KEEP_DTYPE_KEY = "ge.keepDtype"
CUSTOMIZE_KEY = "ge.customizeDtypes"

#: openge's default (GE's inference default is force_fp16: docs/decisions.md).
DEFAULT_MODE = "must_keep_origin_dtype"

#: v2 value → the v1 mode with the same behaviour.
V2_TO_V1 = {
    "fp16": "force_fp16",
    "origin": "must_keep_origin_dtype",
    "cube_fp16in_fp32out": "cube_fp16in_fp32out",
    "mixed_float16": "allow_mix_precision_fp16",
    "mixed_bfloat16": "allow_mix_precision_bf16",
}
MIX_MODES = {
    "allow_mix_precision": DataType.DT_FLOAT16,
    "allow_mix_precision_fp16": DataType.DT_FLOAT16,
    "allow_mix_precision_bf16": DataType.DT_BF16,
}
#: The largest list / dtype file openge reads.
MAX_FILE_BYTES = 1 << 20

_DTYPE_NAMES = {
    "float16": DataType.DT_FLOAT16,
    "fp16": DataType.DT_FLOAT16,
    "float": DataType.DT_FLOAT,
    "float32": DataType.DT_FLOAT,
    "fp32": DataType.DT_FLOAT,
    "bfloat16": DataType.DT_BF16,
    "bf16": DataType.DT_BF16,
}


@dataclass(frozen=True)
class PrecisionPolicy:
    """What the precision pass does: the v1 mode, the list of each op type changed by
    ``modify_mixlist``, the ops that keep their dtype and the customized compute dtypes."""

    mode: str = DEFAULT_MODE
    list_overrides: dict[str, str | None] = field(default_factory=dict)
    keep_names: frozenset[str] = frozenset()
    keep_types: frozenset[str] = frozenset()
    custom_names: dict[str, DataType] = field(default_factory=dict)
    custom_types: dict[str, DataType] = field(default_factory=dict)

    @property
    def changes_nothing(self) -> bool:
        """True when the pass has nothing to do."""
        return self.mode == DEFAULT_MODE and not self.custom_names and not self.custom_types

    @property
    def mix_dtype(self) -> DataType | None:
        """The lowered dtype of a mixed-precision mode (None for other modes)."""
        return MIX_MODES.get(self.mode)

    def op_list(self, op_type: str) -> str | None:
        """``"white"`` / ``"black"`` / ``"gray"`` (None: never changed) after the overrides."""
        if op_type in self.list_overrides:
            return self.list_overrides[op_type]
        return default_list(op_type)


def resolve_mode(options: Mapping[str, str]) -> str:
    """The v1 mode named by the options; GeError when v1 and v2 are both set."""
    v1, v2 = options.get(MODE_KEY), options.get(MODE_V2_KEY)
    if v1 and v2:
        raise GeError(
            PARAM_INVALID,
            f"{MODE_KEY}={v1!r} and {MODE_V2_KEY}={v2!r} are both set; they are exclusive "
            "(GE's rule): set only one",
        )
    if v2:
        if v2 not in V2_TO_V1:
            raise GeError(
                UNSUPPORTED,
                f"{MODE_V2_KEY}={v2!r} needs HiFloat8, which openge does not emulate; use "
                + ", ".join(V2_TO_V1),
            )
        return V2_TO_V1[v2]
    if v1 == "force_lowerprecision":
        return "force_fp16"
    return v1 or DEFAULT_MODE


def resolve_policy(options: Mapping[str, str]) -> PrecisionPolicy:
    """The policy of one compilation (GeError naming the option for bad values or files)."""
    mode = resolve_mode(options)
    overrides: dict[str, str | None] = {}
    if options.get(MIXLIST_KEY):
        overrides = parse_mixlist(_text(options[MIXLIST_KEY], MIXLIST_KEY, allow_inline=True))
    keep_names: set[str] = set()
    keep_types: set[str] = set()
    if options.get(KEEP_DTYPE_KEY):
        for line in _lines(_text(options[KEEP_DTYPE_KEY], KEEP_DTYPE_KEY)):
            if line.startswith("OpType::"):
                keep_types.add(line[len("OpType::") :].strip())
            else:
                keep_names.add(line)
    custom_names: dict[str, DataType] = {}
    custom_types: dict[str, DataType] = {}
    if options.get(CUSTOMIZE_KEY):
        for line in _lines(_text(options[CUSTOMIZE_KEY], CUSTOMIZE_KEY)):
            target, dtype = parse_customize_line(line)
            if target.startswith("OpType::"):
                custom_types[target[len("OpType::") :]] = dtype
            else:
                custom_names[target] = dtype
    return PrecisionPolicy(
        mode,
        overrides,
        frozenset(keep_names),
        frozenset(keep_types),
        custom_names,
        custom_types,
    )


def parse_mixlist(text: str) -> dict[str, str | None]:
    """``{"black-list": {"to-add": [...], "to-remove": [...]}, "white-list": …}`` → the new
    list of each named op type (to-remove makes an op gray)."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise GeError(PARAM_INVALID, f"{MIXLIST_KEY}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise GeError(PARAM_INVALID, f"{MIXLIST_KEY}: the JSON must be an object")
    out: dict[str, str | None] = {}
    for key, edits in data.items():
        lst = key.removesuffix("-list") if isinstance(key, str) else ""
        if lst not in LISTS or not isinstance(edits, dict):
            raise GeError(
                PARAM_INVALID,
                f"{MIXLIST_KEY}: unknown entry {key!r}; write "
                '{"white-list"|"black-list"|"gray-list": {"to-add": [...], "to-remove": [...]}}',
            )
        for action, ops in edits.items():
            if action not in ("to-add", "to-remove") or not isinstance(ops, list):
                raise GeError(
                    PARAM_INVALID,
                    f"{MIXLIST_KEY}: {key}.{action} must be to-add or to-remove with a list",
                )
            for op in ops:
                if not isinstance(op, str) or not op:
                    raise GeError(PARAM_INVALID, f"{MIXLIST_KEY}: {key}.{action}: {op!r}")
                if action == "to-add":
                    out[op] = lst
                elif out.get(op, default_list(op)) == lst:
                    out[op] = "gray"
    return out


def parse_customize_line(line: str) -> tuple[str, DataType]:
    """``name::InputDtype:float16,float16,OutputDtype:float16`` (or ``OpType::Conv2D::…``) →
    (target, compute dtype: the first float input dtype listed)."""
    head, sep, spec = line.rpartition("::")
    if not sep or not head:
        raise GeError(
            PARAM_INVALID,
            f"{CUSTOMIZE_KEY}: line {line!r}: write name::InputDtype:dt,...,OutputDtype:dt,...",
        )
    inputs = spec.split("OutputDtype:", 1)[0]
    if not inputs.startswith("InputDtype:"):
        raise GeError(PARAM_INVALID, f"{CUSTOMIZE_KEY}: line {line!r} lacks InputDtype:")
    for name in inputs[len("InputDtype:") :].split(","):
        dtype = _DTYPE_NAMES.get(name.strip().lower())
        if dtype is not None:
            return head, dtype
    raise GeError(
        PARAM_INVALID,
        f"{CUSTOMIZE_KEY}: line {line!r} names no float input dtype ({', '.join(_DTYPE_NAMES)})",
    )


def _lines(text: str) -> list[str]:
    return [s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]


def _text(value: str, key: str, allow_inline: bool = False) -> str:
    """The content of the file ``value`` (or ``value`` itself when it is inline JSON)."""
    if allow_inline and value.lstrip().startswith("{"):
        return value
    try:
        size = os.path.getsize(value)
        if size > MAX_FILE_BYTES:
            raise GeError(
                PARAM_INVALID, f"{key}: file {value!r} has {size} bytes (limit {MAX_FILE_BYTES})"
            )
        with open(value, encoding="utf-8") as f:
            return f.read(MAX_FILE_BYTES)
    except OSError as err:
        raise GeError(PARAM_INVALID, f"{key}: cannot read {value!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise GeError(PARAM_INVALID, f"{key}: file {value!r} is not UTF-8 text") from None
