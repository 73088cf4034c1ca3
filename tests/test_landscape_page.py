"""landscape.html: built from a real inspection, drawn in Chromium without errors; NaN points become gaps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import nnreport
from nnreport.config import ReportConfig
from nnreport.landscape import drawing
from nnreport.landscape.results import Curve, Surface
from nnreport.site import images
from nnreport.site.pages.landscape import contour_chart, curve_chart

from browser import assert_clean, visit
from models import TinyCNN


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TinyCNN(channels=1).eval()
    g = torch.Generator().manual_seed(2)
    snaps = [{k: v + (3 - i) * 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
              for k, v in model.state_dict().items()} for i in range(4)]
    subject = nnreport.Subject(model, checkpoints=snaps, history=[1.0, 0.8, 0.5, 0.3])
    config = ReportConfig(preset="quick", only=("summary", "landscape"), cache=False)
    out = tmp_path_factory.mktemp("landscape") / "site"
    nnreport.Report(subject, data="digits", config=config).save(out)
    torch.set_num_threads(old)
    return out


def test_page_has_every_part(report: Path) -> None:
    html = (report / "landscape.html").read_text(encoding="utf-8")
    for part in ("Settings", "Loss at the centre", "Loss growth at radius 0.5", "Local minima", "|λmin / λmax|",
                 "landscape-surface", "1-D slice", "Between two checkpoints", "Training path", "Sharpness"):
        assert part in html, part
    assert html.count("<polygon") >= 16, "the 3-D surface must be drawn"
    assert "Loss landscape" in (report / "summary.md").read_text(encoding="utf-8")


def test_page_draws_cleanly_in_chromium(report: Path, browser: object) -> None:
    v = visit(browser, report / "landscape.html")
    assert_clean(v)
    assert v.charts >= 5 and v.svgs >= v.charts


def _surface_with_gaps() -> Surface:
    x = np.linspace(-1, 1, 9)
    gx, gy = np.meshgrid(x, x)
    z = 1 + gx ** 2 + gy ** 2
    z[2, 3] = np.nan
    z[6, 6] = np.inf
    return Surface(x, x.copy(), z, np.where(np.isfinite(z), 0.5, np.nan))


def test_nonfinite_points_are_gaps_in_every_view() -> None:
    s = _surface_with_gaps()
    spec = contour_chart(s, "t").to_dict()
    cells = spec["layer"][0]["data"]["values"]
    assert len(cells) == 81 - 2 and all(math.isfinite(c["loss"]) for c in cells)
    lut = images.colourize(np.linspace(0, 1, 256)[None, :], "viridis")[0]
    view = drawing.surface_view(s.x, s.y, s.loss, lut)
    assert view.gaps == 2 and len(view.polygons) == 64 - 8  # each bad point removes the 4 quads around it
    t = np.linspace(-1, 1, 7)
    loss = np.array([2.0, 1.0, np.nan, 0.5, np.inf, 1.0, 2.0])
    spec = curve_chart(Curve(t, loss, np.full(7, 0.5), "x"), "t", "t").to_dict()
    rows = (spec.get("data") or spec["layer"][0]["data"])["values"]
    assert len(rows) == 5 and len({r["segment"] for r in rows}) == 3, "a gap must break the line"


def test_contour_segments_lie_on_the_level() -> None:
    """Oracle: on a plane z = x + 2y every contour point satisfies x + 2y = level."""
    x = np.linspace(-1, 1, 11)
    gx, gy = np.meshgrid(x, x)
    for a, b, c, d in drawing.contour_segments(x, x, gx + 2 * gy, 0.3):
        assert a + 2 * b == pytest.approx(0.3) and c + 2 * d == pytest.approx(0.3)
