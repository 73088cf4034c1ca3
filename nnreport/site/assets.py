"""Collects the files a site refers to (images, SVGs, chart specs), with stable names and ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnreport.site import charts, images
from nnreport.site.themes import Palette


@dataclass(frozen=True)
class ImageRef:
    src: str
    width: int
    height: int
    alt: str


@dataclass(frozen=True)
class ChartRef:
    """A chart for the `figure` macro: its Vega-Lite spec is inlined as JSON and drawn by vega-embed."""

    id: str
    spec: dict[str, Any]
    label: str
    caption: str = ""


@dataclass
class Assets:
    """Files under assets/, shared by all pages; `for_page` hands a page its own id prefix."""

    files: dict[str, bytes] = field(default_factory=dict)
    page: str = "page"
    _counter: dict[str, int] = field(default_factory=dict)
    palette: Palette = field(default_factory=Palette)  # the theme's colours, for the pages that draw

    def for_page(self, slug: str) -> Assets:
        return Assets(self.files, slug, self._counter, self.palette)

    def add(self, name: str, data: bytes) -> str:
        """Store `data` as assets/<name>; the same name with other content is a bug."""
        path = f"assets/{name}"
        if path in self.files and self.files[path] != data:
            raise ValueError(f"two different assets are named {name}")
        self.files[path] = data
        return path

    def png(self, name: str, rgb: np.ndarray, alt: str) -> ImageRef:
        """Add an RGB uint8 image as assets/<page>-<name>.png."""
        src = self.add(f"{self.page}-{name}.png", images.encode_png(rgb))
        return ImageRef(src, int(rgb.shape[1]), int(rgb.shape[0]), alt)

    def svg(self, name: str, text: str) -> str:
        return self.add(f"{self.page}-{name}.svg", text.encode("utf-8"))

    def chart(self, chart: Any, label: str, caption: str = "") -> ChartRef:
        """Turn an Altair chart into a ChartRef with an id unique across the site."""
        n = self._counter.get(self.page, 0) + 1
        self._counter[self.page] = n
        return ChartRef(f"{self.page}-chart-{n}", charts.spec_of(chart), label, caption)
