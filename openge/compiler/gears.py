"""Gear options (GE's dynamic batch / image size / dims): parsing and every check GE applies.

Layer: compiler. ``gear_spec(options)`` reads ``ge.inputShape`` (with -1), ``ge.dynamicBatchSize``
(``"1,2,4,8"``), ``ge.dynamicImageSize`` (``"416,416;832,832"``), ``ge.dynamicDims``
(``"20,20,1,1;40,40,2,2"``), ``ge.inputFormat`` and ``ge.dynamicNodeType`` and returns a
:class:`GearSpec` (None when no gear option is set). Each rule of GE's ATC / option checks
(``option_utils.cc``, ``multi_batch_options.cc``) raises a GeError (PARAM_INVALID) that names
the rule and the offending value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from openge.errors import PARAM_INVALID, UNSUPPORTED, GeError
from openge.om.gears import MAX_GEARS, MIN_GEARS, GearKind

BATCH_KEY = "ge.dynamicBatchSize"
IMAGE_KEY = "ge.dynamicImageSize"
DIMS_KEY = "ge.dynamicDims"
SHAPE_KEY = "ge.inputShape"
FORMAT_KEY = "ge.inputFormat"
NODE_TYPE_KEY = "ge.dynamicNodeType"
#: The option keys that make gears, by kind.
KIND_KEYS = {GearKind.BATCH: BATCH_KEY, GearKind.IMAGE: IMAGE_KEY, GearKind.DIMS: DIMS_KEY}
#: Options that only describe gears: the per-gear compilations run without them.
GEAR_OPTION_KEYS = (BATCH_KEY, IMAGE_KEY, DIMS_KEY, SHAPE_KEY, NODE_TYPE_KEY)


def _error(rule: str, message: str) -> GeError:
    return GeError(PARAM_INVALID, f"gear rule '{rule}': {message}")


@dataclass(frozen=True)
class GearSpec:
    """Validated gear options.

    ``input_shapes`` are the inputs of ``ge.inputShape`` in its order (name → dims, -1 where a
    gear decides; ``()`` for a scalar listed as ``"B:"``); ``gears`` the gear values, one tuple
    per gear (``(batch,)``, ``(h, w)`` or the values of every -1 in ``input_shape`` order).
    """

    kind: GearKind
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    gears: tuple[tuple[int, ...], ...]
    input_format: str = ""

    @property
    def names(self) -> list[str]:
        """The input names in ``input_shape`` order (GE's user-designated order)."""
        return [name for name, _ in self.input_shapes]

    def shapes(self, gear: int) -> dict[str, tuple[int, ...]]:
        """Every listed input's shape at gear ``gear`` (the -1 dims filled in)."""
        values = self.gears[gear]
        out: dict[str, tuple[int, ...]] = {}
        pos = 0
        for name, dims in self.input_shapes:
            if self.kind == GearKind.DIMS:
                filled = []
                for d in dims:
                    if d < 0:
                        filled.append(values[pos])
                        pos += 1
                    else:
                        filled.append(d)
                out[name] = tuple(filled)
            elif self.kind == GearKind.BATCH:
                out[name] = tuple(values[0] if d < 0 else d for d in dims)
            else:  # IMAGE: -1 only at H and W, in that order
                hw = iter(values)
                out[name] = tuple(next(hw) if d < 0 else d for d in dims) if -1 in dims else dims
        return out


def parse_shape_text(text: str, key: str = SHAPE_KEY) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``"name:-1,3,224,224;B:"`` → ((name, dims), …), as GE's ParseInputShape (digits and -1;
    an empty value is a scalar)."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.rpartition(":")
        name = name.strip()
        if not sep or not name:
            raise _error(
                "input_shape syntax",
                f'{key} part {part!r} must be name:dims (e.g. "data:-1,3,224,224")',
            )
        dims: list[int] = []
        if value.strip():
            for raw in value.split(","):
                item = raw.strip()
                if "~" in item:
                    raise _error(
                        "no ranges with gears",
                        f"{key} {text!r} has a range {item!r}; with gears, dynamic dims are "
                        "-1 (ranges make a dynamic-shape model: drop the gear option to use one)",
                    )
                digits = item[1:] if item.startswith("-") else item
                if not digits.isdigit() or (item.startswith("-") and item != "-1"):
                    raise _error(
                        "input_shape digits",
                        f"{key} value {item!r} of input {name!r} is not a non-negative integer "
                        "or -1",
                    )
                dims.append(int(item))
        if any(n == name for n, _ in out):
            raise _error("input_shape names", f"{key} lists input {name!r} twice")
        out.append((name, tuple(dims)))
    return tuple(out)


def _gear_values(text: str, key: str, kind: GearKind) -> tuple[tuple[int, ...], ...]:
    """Split a gear option into gears; checks characters, signs and emptiness."""
    allowed = set("0123456789,") | ({" ", ";"} if kind != GearKind.BATCH else set())
    stripped = text.strip().rstrip(";")
    if kind == GearKind.BATCH:
        stripped = stripped.rstrip(",")
    if not stripped:
        raise _error("not empty", f"{key} is empty; give at least {MIN_GEARS} gears")
    negative = [p.strip() for p in stripped.replace(";", ",").split(",") if p.strip()[:1] == "-"]
    if negative:
        raise _error(
            "gear values > 0",
            f"{key} = {text!r} has the value {negative[0]}; every gear value must be greater "
            "than 0",
        )
    bad = sorted({c for c in stripped if c not in allowed})
    if bad:
        what = "digits and ','" if kind == GearKind.BATCH else "digits, ',', ' ' and ';'"
        raise _error(
            "digits and commas only",
            f"{key} = {text!r} contains {''.join(bad)!r}; it may only contain {what}",
        )
    if kind == GearKind.BATCH:
        groups = [[p] for p in stripped.split(",")]
    else:
        groups = [g.split(",") for g in stripped.split(";")]
    gears = []
    for group in groups:
        items = [p.strip() for p in group]
        if any(not p for p in items):
            raise _error(
                "digits and commas only", f"{key} = {text!r} has an empty value in {group!r}"
            )
        gears.append(tuple(int(p) for p in items))
    return tuple(gears)


def _check_gear_list(gears: tuple[tuple[int, ...], ...], key: str, text: str) -> None:
    """GE's CheckDynamicParams: count, equal lengths, values > 0, no duplicates."""
    if len(gears) < MIN_GEARS:
        raise _error(
            "at least 2 gears",
            f"{key} = {text!r} has {len(gears)} gear; give {MIN_GEARS} to {MAX_GEARS}",
        )
    if len(gears) > MAX_GEARS:
        raise _error(
            "at most 100 gears",
            f"{key} = {text!r} has {len(gears)} gears; at most {MAX_GEARS} are allowed",
        )
    first = len(gears[0])
    for g in gears:
        if len(g) != first:
            raise _error(
                "same length",
                f"{key} = {text!r}: gear {','.join(map(str, g))} has {len(g)} values, the first "
                f"gear {first}; every gear has the same number of values",
            )
        if any(v <= 0 for v in g):
            raise _error(
                "gear values > 0",
                f"{key} = {text!r}: gear {','.join(map(str, g))} has a value 0; every gear "
                "value must be greater than 0",
            )
    seen: set[tuple[int, ...]] = set()
    for g in gears:
        if g in seen:
            raise _error(
                "no duplicates", f"{key} = {text!r} lists the gear {','.join(map(str, g))} twice"
            )
        seen.add(g)


def _check_batch_shapes(shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> None:
    dynamic = 0
    for name, dims in shapes:
        if not dims:
            raise _error(
                "batch inputs have dims",
                f"{SHAPE_KEY} gives input {name!r} no dims; with {BATCH_KEY} every listed input "
                "has at least one dim (leave a scalar input out of input_shape)",
            )
        if -1 not in dims:
            continue
        if dims[0] != -1 or -1 in dims[1:]:
            pos = next(i for i, d in enumerate(dims) if d == -1 and i > 0)
            raise _error(
                "-1 only at dim 0 (batch)",
                f"{SHAPE_KEY} input {name!r} {list(dims)} has -1 at dim {pos}; with "
                f"{BATCH_KEY} only the batch dim N (dim 0) may be -1",
            )
        dynamic += 1
    if not dynamic:
        raise _error(
            "a dynamic input",
            f"{BATCH_KEY} is set but no input of {SHAPE_KEY} has -1 at dim 0",
        )


def _check_image_shapes(shapes: tuple[tuple[str, tuple[int, ...]], ...], fmt: str) -> None:
    if fmt not in ("NCHW", "NHWC"):
        raise _error(
            "image size needs NCHW or NHWC",
            f"{FORMAT_KEY} = {fmt or '(unset)'!r}; with {IMAGE_KEY} the input format must be "
            "NCHW or NHWC (it says where H and W are)",
        )
    h, w = (2, 3) if fmt == "NCHW" else (1, 2)
    dynamic = 0
    for name, dims in shapes:
        if -1 not in dims:
            continue
        if len(dims) != 4 or dims[h] != -1 or dims[w] != -1 or dims.count(-1) != 2:
            raise _error(
                "-1 only at H and W",
                f"{SHAPE_KEY} input {name!r} {list(dims)}: with {IMAGE_KEY} only H and W of a "
                f"4-D {fmt} input may be -1 (both of them)",
            )
        dynamic += 1
    if not dynamic:
        raise _error("a dynamic input", f"{IMAGE_KEY} is set but no input of {SHAPE_KEY} has -1")


def gear_spec(options: Mapping[str, str]) -> GearSpec | None:
    """The validated gears of ``options``, or None when no gear option is set."""
    given = [k for k in (BATCH_KEY, IMAGE_KEY, DIMS_KEY) if options.get(k, "").strip()]
    if not given:
        return None
    if len(given) > 1:
        raise _error(
            "mutually exclusive",
            f"{', '.join(given)} are all set; {BATCH_KEY}, {IMAGE_KEY} and {DIMS_KEY} are "
            "mutually exclusive: set one",
        )
    node_type = options.get(NODE_TYPE_KEY, "1").strip() or "1"
    if node_type != "1":
        raise GeError(
            UNSUPPORTED if node_type == "0" else PARAM_INVALID,
            f'{NODE_TYPE_KEY} = {node_type!r}: openge makes gears on Data inputs only ("1"); '
            '"0" (GetNext, a device data queue) has no CPU counterpart',
        )
    key = given[0]
    kind = next(k for k, v in KIND_KEYS.items() if v == key)
    text = options[key]
    shape_text = options.get(SHAPE_KEY, "").strip()
    if not shape_text:
        raise _error(
            "input_shape required",
            f"{key} is set but {SHAPE_KEY} is empty; give the inputs with -1 where the gear "
            'decides, e.g. "data:-1,3,224,224"',
        )
    shapes = parse_shape_text(shape_text)
    fmt = options.get(FORMAT_KEY, "").strip().upper()
    gears = _gear_values(text, key, kind)
    _check_gear_list(gears, key, text)
    if kind == GearKind.BATCH:
        _check_batch_shapes(shapes)
    elif kind == GearKind.IMAGE:
        _check_image_shapes(shapes, fmt)
        for g in gears:
            if len(g) != 2:
                raise _error(
                    "image size gears are h,w",
                    f"{key} = {text!r}: gear {','.join(map(str, g))} has {len(g)} values; each "
                    "gear is height,width",
                )
    else:
        if fmt and fmt != "ND":
            raise _error(
                "dims needs ND",
                f"{FORMAT_KEY} = {fmt!r}; with {DIMS_KEY} the input format is ND",
            )
        count = sum(dims.count(-1) for _, dims in shapes)
        if not count:
            raise _error("a dynamic input", f"{DIMS_KEY} is set but {SHAPE_KEY} has no -1")
        for g in gears:
            if len(g) != count:
                raise _error(
                    "one value per -1",
                    f"{key} = {text!r}: gear {','.join(map(str, g))} has {len(g)} values but "
                    f"{SHAPE_KEY} has {count} -1 dims; each gear gives one value per -1",
                )
    return GearSpec(kind, shapes, gears, fmt)


__all__ = [
    "BATCH_KEY",
    "DIMS_KEY",
    "GEAR_OPTION_KEYS",
    "IMAGE_KEY",
    "KIND_KEYS",
    "NODE_TYPE_KEY",
    "SHAPE_KEY",
    "GearSpec",
    "gear_spec",
    "parse_shape_text",
]
