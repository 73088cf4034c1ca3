"""Altair charts -> deterministic Vega-Lite specs, embedded by the page script."""

from __future__ import annotations

import json
import re
from typing import Any

from nnreport.templating import dumps_finite

_AUTO_NAME = re.compile(r"\b(param|view|selector|concat|layer)_(\d+)\b")


def spec_of(chart: Any) -> dict[str, Any]:
    """The Vega-Lite spec of an Altair chart (or a spec dict), with auto-generated names made stable.

    Altair numbers parameters and views from a process-wide counter, so the same chart built twice gets
    different names; renumbering by first appearance makes the output byte-identical across builds.
    """
    if isinstance(chart, dict):
        spec = dict(chart)
    else:
        import altair as alt

        with alt.data_transformers.enable("default", max_rows=None):
            spec = chart.to_dict(validate=True)
    spec.pop("$schema", None)
    text = dumps_finite(spec, sort_keys=True)
    mapping: dict[str, str] = {}

    def rename(m: re.Match[str]) -> str:
        key = m.group(0)
        mapping.setdefault(key, f"{m.group(1)}_s{len(mapping) + 1}")
        return mapping[key]

    return json.loads(_AUTO_NAME.sub(rename, text))  # NaN/inf in the data became null above
