"""Input shapes with ranges: ATC's ``--input_shape`` / ``ge.inputShape`` syntax for dynamic shapes.

``"x:1~8,3,224,224;ids:-1,-1"``: a dim is a fixed size, ``-1`` (any size ≥ 0) or ``lo~hi`` (a
range; ``hi`` may be -1 for no upper bound). The parsed shape carries -1 for every dim that is
not fixed, and the range gives (min, max) per dim (max -1 = unbounded), as
``aclmdlGetInputDimsRange`` reports it.
"""

from __future__ import annotations

from collections.abc import Sequence

from openge.errors import PARAM_INVALID, GeError

#: Node attr (GE-private, kept as is) recording a Data node's per-dim ranges as a flat int list
#: ``[min0, max0, min1, max1, ...]``.
RANGE_ATTR = "_shape_range"

DimRange = tuple[int, int]


def _bad(text: str, part: str, why: str) -> GeError:
    return GeError(
        PARAM_INVALID,
        f'input_shape {text!r}: {why} in {part!r}; write "name:d0,d1,...;name2:..." where a dim '
        "is a size, -1 (any size) or lo~hi (a range, hi -1 = unbounded), e.g. "
        '"x:1~8,3,224,224;ids:-1,-1"',
    )


def parse_dim(text: str, token: str, part: str) -> tuple[int, DimRange]:
    """One dim of an input_shape entry: (dim, (min, max)); dim is -1 unless the size is fixed."""
    token = token.strip()
    lo_text, sep, hi_text = token.partition("~")
    try:
        if not sep:
            d = int(token)
            if d < -1:
                raise _bad(text, part, f"dim {d} is below -1")
            return d, ((0, -1) if d == -1 else (d, d))
        lo, hi = int(lo_text), int(hi_text)
    except ValueError:
        raise _bad(text, part, f"dim {token!r} is not a number, -1 or lo~hi") from None
    if lo < 0 or hi < -1 or (hi != -1 and hi < lo):
        raise _bad(text, part, f"range {token!r} needs 0 ≤ lo ≤ hi (or hi = -1)")
    if lo == hi:
        return lo, (lo, lo)
    return -1, (lo, hi)


def parse_shape_ranges(text: str) -> dict[str, tuple[tuple[int, ...], tuple[DimRange, ...]]]:
    """Parse ``"name:d0,d1;name2:..."`` with -1 and ``lo~hi`` dims into {name: (shape, range)}.

    A name may contain ``:`` (the last one separates the dims); an empty dim list is a scalar.
    GeError (PARAM_INVALID) names the malformed part.
    """
    out: dict[str, tuple[tuple[int, ...], tuple[DimRange, ...]]] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, dims = part.rpartition(":")
        name = name.strip()
        if not sep or not name:
            raise _bad(text, part, "no name:dims pair")
        if name in out:
            raise _bad(text, part, f"input {name!r} is given twice")
        parsed = [parse_dim(text, t, part) for t in dims.split(",")] if dims.strip() else []
        out[name] = (tuple(d for d, _ in parsed), tuple(r for _, r in parsed))
    return out


def default_range(shape: Sequence[int]) -> tuple[DimRange, ...]:
    """The range of a shape without explicit ranges: fixed dims (d, d), -1 dims (0, -1)."""
    return tuple((0, -1) if d < 0 else (int(d), int(d)) for d in shape)


def encode_range(ranges: Sequence[DimRange]) -> list[int]:
    """The flat ``[min0, max0, ...]`` list stored in :data:`RANGE_ATTR`."""
    return [int(v) for r in ranges for v in r]


def decode_range(flat: object, rank: int) -> tuple[DimRange, ...] | None:
    """The ranges of a :data:`RANGE_ATTR` value (None when absent or malformed)."""
    if not isinstance(flat, (list, tuple)) or len(flat) != 2 * rank:
        return None
    try:
        values = [int(v) for v in flat]
    except (TypeError, ValueError):
        return None
    pairs = tuple((values[2 * i], values[2 * i + 1]) for i in range(rank))
    if any(lo < 0 or hi < -1 or (hi != -1 and hi < lo) for lo, hi in pairs):
        return None
    return pairs


def check_in_range(
    name: str, shape: Sequence[int], ranges: Sequence[DimRange], declared: Sequence[int]
) -> str:
    """Empty when ``shape`` fits the declared shape and ranges, else what is wrong (naming the
    input, the dim and the range)."""
    if len(shape) != len(declared):
        return (
            f"input {name}: rank {len(shape)} (shape {list(shape)}) but the model takes rank "
            f"{len(declared)} (shape {list(declared)})"
        )
    for i, d in enumerate(shape):
        lo, hi = ranges[i] if i < len(ranges) else (0, -1)
        if declared[i] >= 0:
            lo = hi = declared[i]
        if d < lo or (hi != -1 and d > hi):
            bound = f"[{lo}, {'∞' if hi == -1 else hi}]"
            return f"input {name}: dim {i} is {d}, outside its range {bound} (shape {list(shape)})"
    return ""
