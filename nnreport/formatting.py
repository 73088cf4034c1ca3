"""Jinja filters for numbers, sizes and shapes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt_int(n: Any) -> str:
    return f"{int(n):,}" if n is not None else "–"


def fmt_bytes(n: Any) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def fmt_shape(shape: Sequence[int] | None) -> str:
    return "×".join(str(d) for d in shape) if shape else "–"


def fmt_shapes(shapes: Sequence[Sequence[int]]) -> str:
    return ", ".join(fmt_shape(s) for s in shapes) or "–"


def fmt_float(x: Any, digits: int = 3) -> str:
    """Significant digits; "–" for a missing or non-finite value (NaN/inf are gaps, not numbers)."""
    if x is None or not math.isfinite(float(x)):
        return "–"
    return f"{float(x):.{digits}g}"


def fmt_percent(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * float(x):.{digits}f} %"


def fmt_seconds(x: Any) -> str:
    if x is None:
        return "–"
    return f"{float(x):.2f} s" if x < 60 else f"{float(x) / 60:.1f} min"


def fmt_compact(n: Any) -> str:
    """1234567 -> 1.23 M"""
    if n is None:
        return "–"
    n = float(n)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f}"


FILTERS = {
    "int": fmt_int,
    "bytes": fmt_bytes,
    "shape": fmt_shape,
    "shapes": fmt_shapes,
    "float": fmt_float,
    "percent": fmt_percent,
    "seconds": fmt_seconds,
    "compact": fmt_compact,
}
