"""Themes as data: themes/<name>/theme.toml (Vega config, colour maps) + theme.css over themes/common.css."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from nnreport.errors import UsageError
from nnreport.resources import resource_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Theme:
    name: str
    description: str
    css: str
    vega_config: dict[str, Any]
    # Colour maps for heatmap images: "sequential" and "diverging".
    colour_maps: dict[str, str]


def theme_names() -> list[str]:
    root = resource_dir("themes")
    return sorted(p.name for p in root.iterdir() if (p / "theme.toml").is_file())


def load_theme(name: str) -> Theme:
    """Load a theme by name; the error lists the available ones."""
    root = resource_dir("themes")
    folder = root / name
    if "/" in name or "\\" in name or not (folder / "theme.toml").is_file():
        raise UsageError(f"unknown theme {name!r}; available themes: {', '.join(theme_names())}")
    data = tomllib.loads((folder / "theme.toml").read_text(encoding="utf-8"))
    css = (root / "common.css").read_text(encoding="utf-8") + "\n" + (folder / "theme.css").read_text(encoding="utf-8")
    return Theme(
        name=name,
        description=data.get("description", ""),
        css=css,
        vega_config=data.get("vega", {}),
        colour_maps={"sequential": "viridis", "diverging": "rdbu", **data.get("colour_maps", {})},
    )
