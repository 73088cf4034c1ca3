"""Jinja filters for numbers, sizes and shapes."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup


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


# Characters that hide or reorder text: C0 controls (but tab and newlines), DEL, and the bidirectional
# marks, embeddings, overrides and isolates. A name holding one is shown with the character spelled out.
_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_HIDDEN_JSON = re.compile(r"(?<!\\)((?:\\\\)*)\\u(00[01][0-9a-fA-F]|007[fF]|061[cC]|200[eEfF]|202[a-eA-E]|206[6-9])")


def _spell(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: U+2400 is "␀"
    return "\u2421" if code == 0x7F else f"[U+{code:04X}]"


def visible(text: str) -> str:
    """`text` with NUL, other controls and bidi overrides made visible (e.g. "␀", "[U+202E]")."""
    return _HIDDEN.sub(lambda m: _spell(ord(m.group())), text) if _HIDDEN.search(text) else text


def finalize(value: Any) -> Any:
    """Jinja `finalize`: every plain string a template prints goes through `visible` before escaping."""
    return visible(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def visible_json(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` for the `tojson` filter, with hidden characters in strings made visible."""
    text = json.dumps(obj, **kwargs)

    def spell(m: re.Match[str]) -> str:
        return m.group(1) + json.dumps(_spell(int(m.group(2), 16)))[1:-1]

    return _HIDDEN_JSON.sub(spell, text)


# Characters that start emphasis, code, links, images, headings, tables, strikethrough or an autolinked
# domain; with "[" escaped, "!" cannot start an image.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#|~.])")


def md(value: Any) -> str:
    """Plain text for Markdown: one line, no HTML, no emphasis, links, images, tables or mentions."""
    text = _MARKDOWN.sub(r"\\\1", " ".join(visible(str(value)).split()))
    return html.escape(text, quote=False).replace("@", "&#64;")


def md_code(value: Any) -> str:
    """A Markdown code span holding `value` literally (a fence longer than any run of backticks inside;
    "|" escaped, as a table cell needs even inside code)."""
    text = " ".join(visible(str(value)).split()).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


FILTERS = {
    "int": fmt_int,
    "bytes": fmt_bytes,
    "shape": fmt_shape,
    "shapes": fmt_shapes,
    "float": fmt_float,
    "percent": fmt_percent,
    "seconds": fmt_seconds,
    "compact": fmt_compact,
    "md": md,
    "md_code": md_code,
    "visible": visible,
}
