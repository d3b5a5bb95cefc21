"""The AIPP config file of ATC's ``--insert_op_conf`` (``ge.insertOpFile``): a prototxt of
``aipp_op { key: value ... }`` blocks (GE's ``domi.InsertNewOps``), read by a small parser of our
own (no protobuf text_format needed; every error names the file and line)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from openge.errors import PARAM_INVALID, UNSUPPORTED, GeError

MAX_CONFIG_BYTES = 1 << 20

#: insert_op.proto's InputFormat values openge implements.
INPUT_FORMATS = {"YUV420SP_U8": 1, "XRGB8888_U8": 2, "RGB888_U8": 3, "YUV400_U8": 4}
_OTHER_FORMATS = (
    "RGB16",
    "RGB20",
    "RGB24",
    "RGB8_IR",
    "RGB16_IR",
    "RGB24_IR",
    "YUV422SP_U8",
    "AYUV444_U8",
    "YUYV_U8",
    "RAW10",
    "RAW12",
    "RAW16",
    "RAW24",
    "ARGB8888_U8",
    "NC1HWC0DI_FP16",
    "NC1HWC0DI_S8",
    "UNDEFINED",
)

_INT = "int"
_FLOAT = "float"
_BOOL = "bool"
_FIELDS: dict[str, str] = {
    "related_input_rank": _INT,
    "input_edge_idx": _INT,
    "src_image_size_w": _INT,
    "src_image_size_h": _INT,
    "crop": _BOOL,
    "load_start_pos_w": _INT,
    "load_start_pos_h": _INT,
    "crop_size_w": _INT,
    "crop_size_h": _INT,
    "resize": _BOOL,
    "resize_output_w": _INT,
    "resize_output_h": _INT,
    "padding": _BOOL,
    "left_padding_size": _INT,
    "right_padding_size": _INT,
    "top_padding_size": _INT,
    "bottom_padding_size": _INT,
    "padding_value": _FLOAT,
    "cpadding_value": _FLOAT,
    "csc_switch": _BOOL,
    "rbuv_swap_switch": _BOOL,
    "ax_swap_switch": _BOOL,
    "single_line_mode": _BOOL,
    "max_src_image_size": _INT,
    "support_rotation": _BOOL,
    **{f"matrix_r{r}c{c}": _INT for r in range(3) for c in range(3)},
    **{f"input_bias_{i}": _INT for i in range(3)},
    **{f"output_bias_{i}": _INT for i in range(3)},
    **{f"mean_chn_{i}": _INT for i in range(4)},
    **{f"min_chn_{i}": _FLOAT for i in range(4)},
    **{f"var_reci_chn_{i}": _FLOAT for i in range(4)},
}

#: GE's default YUV420SP → BGR matrix (ref/ge_dynamic_aipp_precision_dump.md §3) and biases.
DEFAULT_YUV2BGR = ((298, 516, 0), (298, -100, -208), (298, 0, 409))
DEFAULT_INPUT_BIAS = (16, 128, 128)


@dataclass
class AippParams:
    """One ``aipp_op`` block with GE's defaults filled in (see :func:`read_aipp_config`)."""

    line: int
    mode: str = "static"
    related_input_rank: int = 0
    input_format: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = 0) -> Any:
        """A field's value, or ``default`` when the file does not set it."""
        return self.values.get(key, default)


_TOKEN = re.compile(
    r'\s*(?:(#.*)|([{}:])|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_.]*)|'
    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))"
)


def _tokens(text: str, where: str) -> list[tuple[str, str, int]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        pos = 0
        while pos < len(line):
            if line[pos:].strip() == "":
                break
            m = _TOKEN.match(line, pos)
            if m is None or m.end() == pos:
                raise GeError(
                    PARAM_INVALID, f"{where}:{lineno}: cannot read {line[pos:].strip()[:30]!r}"
                )
            pos = m.end()
            comment, punct, string, ident, number = m.groups()
            if comment:
                break
            if punct:
                out.append(("p", punct, lineno))
            elif string is not None:
                out.append(("s", string[1:-1], lineno))
            elif ident:
                out.append(("i", ident, lineno))
            else:
                out.append(("n", number, lineno))
    return out


def _value(kind: str, token: tuple[str, str, int], key: str, where: str) -> Any:
    tkind, text, line = token
    try:
        if kind == _BOOL:
            if text in ("true", "True", "1"):
                return True
            if text in ("false", "False", "0"):
                return False
            raise ValueError
        if tkind != "n":
            raise ValueError
        if kind == _INT:
            if not re.fullmatch(r"[-+]?\d+", text):
                raise ValueError
            return int(text)
        return float(text)
    except ValueError:
        raise GeError(PARAM_INVALID, f"{where}:{line}: {key} takes {kind}, got {text!r}") from None


def parse_aipp_config(text: str, where: str = "<aipp config>") -> list[AippParams]:
    """Parse the prototxt ``text`` into one AippParams per ``aipp_op`` block."""
    tokens = _tokens(text, where)
    blocks: list[AippParams] = []
    i = 0
    while i < len(tokens):
        kind, word, line = tokens[i]
        if word != "aipp_op":
            raise GeError(PARAM_INVALID, f"{where}:{line}: expected 'aipp_op {{', got {word!r}")
        if i + 1 >= len(tokens) or tokens[i + 1][1] != "{":
            raise GeError(PARAM_INVALID, f"{where}:{line}: 'aipp_op' must be followed by '{{'")
        params = AippParams(line=line)
        i += 2
        while True:
            if i >= len(tokens):
                raise GeError(PARAM_INVALID, f"{where}:{line}: aipp_op block is not closed by '}}'")
            kind, key, kline = tokens[i]
            if key == "}" and kind == "p":
                i += 1
                break
            if kind != "i":
                raise GeError(PARAM_INVALID, f"{where}:{kline}: expected a field name, got {key!r}")
            if i + 2 >= len(tokens) or tokens[i + 1][1] != ":":
                raise GeError(PARAM_INVALID, f"{where}:{kline}: expected '{key}: value'")
            token = tokens[i + 2]
            i += 3
            if key == "aipp_mode":
                if token[1] not in ("static", "dynamic"):
                    raise GeError(
                        PARAM_INVALID, f"{where}:{kline}: aipp_mode must be static or dynamic"
                    )
                params.mode = token[1]
            elif key == "input_format":
                if token[1] not in INPUT_FORMATS:
                    known = token[1] in _OTHER_FORMATS
                    raise GeError(
                        UNSUPPORTED if known else PARAM_INVALID,
                        f"{where}:{kline}: input_format {token[1]} is "
                        + ("not supported by openge" if known else "not an AIPP input format")
                        + f"; supported: {', '.join(INPUT_FORMATS)}",
                    )
                params.input_format = token[1]
            elif key in _FIELDS:
                if key in params.values:
                    raise GeError(PARAM_INVALID, f"{where}:{kline}: {key} is set twice")
                params.values[key] = _value(_FIELDS[key], token, key, where)
            else:
                raise GeError(PARAM_INVALID, f"{where}:{kline}: unknown AIPP field {key!r}")
        params.related_input_rank = int(params.values.pop("related_input_rank", 0))
        blocks.append(params)
    if not blocks:
        raise GeError(PARAM_INVALID, f"{where}: no aipp_op block")
    return blocks


def read_aipp_config(path: str) -> list[AippParams]:
    """Read and parse the AIPP config file ``path`` (at most 1 MiB)."""
    try:
        if os.path.getsize(path) > MAX_CONFIG_BYTES:
            raise GeError(PARAM_INVALID, f"AIPP config {path} is larger than 1 MiB")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise GeError(PARAM_INVALID, f"cannot read AIPP config {path}: {err}") from err
    return parse_aipp_config(text, path)
