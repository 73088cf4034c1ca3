"""Themes as data: themes/<name>/theme.toml (palette, Vega config) + theme.css over themes/common.css."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from typing import Any, get_args

from nnreport.errors import UsageError
from nnreport.resources import resource_dir
from nnreport.site.images import ColourMap

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Palette:
    """The theme's colours, as every page and chart uses them ([palette] in theme.toml; these defaults are
    the light theme's)."""

    positive: str = "#b2182b"  # signed values above zero: relevance, weights, a binary class
    negative: str = "#2166ac"
    categorical: tuple[str, ...] = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2",
                                    "#ff9da6", "#9d755d", "#bab0ac")
    accent: str = "#e45756"  # what a chart points at: the trained weights, the training path
    # Colour maps (nnreport.site.images): magnitudes (loss), intensities (unsigned relevance, accuracy), signed values.
    sequential: ColourMap = "viridis"
    heat: ColourMap = "magma"
    diverging: ColourMap = "rdbu"


def _palette(data: dict[str, Any], where: str) -> Palette:
    unknown = set(data) - {f.name for f in fields(Palette)}
    if unknown:
        raise UsageError(f"{where}: unknown [palette] entries {', '.join(sorted(unknown))}")
    for key in ("sequential", "heat", "diverging"):
        if key in data and data[key] not in get_args(ColourMap):
            raise UsageError(f"{where}: palette {key} {data[key]!r} is not one of {', '.join(get_args(ColourMap))}")
    if "categorical" in data:
        data = {**data, "categorical": tuple(data["categorical"])}
    return Palette(**data)


@dataclass(frozen=True)
class Theme:
    name: str
    description: str
    css: str
    vega_config: dict[str, Any]
    palette: Palette = field(default_factory=Palette)

    @property
    def colour_maps(self) -> dict[str, ColourMap]:
        """Colour maps for heatmap images: "sequential" and "diverging" (from the palette)."""
        return {"sequential": self.palette.sequential, "diverging": self.palette.diverging}


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
        palette=_palette(data.get("palette", {}), f"theme {name}"),
    )
