"""The Jinja environment shared by the site and graph drawing (torch-free), and finite-only JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jinja2

from nnreport import formatting
from nnreport.resources import resource_dir


def finite(value: Any) -> Any:
    """`value` with every NaN and ±inf (Python or numpy floats, at any depth) replaced by None.

    Charts and embedded JSON must parse in a browser: JSON has no NaN, and a gap is written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy scalars and arrays
        return finite(value.tolist())
    return value


def dumps_finite(value: Any, **kwargs: Any) -> str:
    """json.dumps that writes NaN/inf as null, refuses anything else JSON cannot hold, and spells
    hidden characters (NUL, controls, bidi overrides) in strings visibly (`formatting.visible_json`)."""
    return formatting.visible_json(finite(value), allow_nan=False, **kwargs)


def environment() -> jinja2.Environment:
    """The templates' environment: autoescaped HTML/SVG, strict undefined, nnreport's filters, visible
    hidden characters, finite `tojson`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        autoescape=jinja2.select_autoescape(["html", "svg"], default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=formatting.finalize,  # NUL and bidi overrides in a name are shown, never acted on
    )
    env.filters.update(formatting.FILTERS)
    env.policies["json.dumps_function"] = dumps_finite
    return env
