"""The compare page's loss landscapes: both planes on one colour domain (read back from the chart spec),
the same seed and grid, differences that are b − a, a one-line reason when the grids differ or one side
has no landscape, the summary.md line, and the browser checks."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnreport.api import ComparisonReport, compare
from nnreport.compare import compare_inspections
from nnreport.config import ReportConfig
from nnreport.site.assets import Assets
from nnreport.site.compare_landscape import compare_landscapes

from browser import assert_clean, visit

NETS = """
from torch import nn

class Net(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU())
        self.head = nn.Linear(width, 3)
    def forward(self, x):
        return self.head(self.body(x))

def base():
    return Net(16)

def wide():
    return Net(32)
"""

ONLY = ("summary", "landscape")
# The quick preset without the parts this page does not show, to keep the file fast.
LIGHT = {"interpolation_steps": 0, "trajectory_steps": 0}


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nets") / "nets.py"
    path.write_text(NETS)
    return path


@pytest.fixture(scope="module")
def report(nets: Path) -> ComparisonReport:
    config = ReportConfig(preset="quick", only=ONLY, analyses={"landscape": LIGHT})
    return compare(f"{nets}:base", f"{nets}:wide", data="iris", config=config, names=("base", "head"))


@pytest.fixture(scope="module")
def site(report: ComparisonReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report.save(tmp_path_factory.mktemp("cmp") / "out")


def _loss_colour_domains(spec: Any) -> list[list[float]]:
    """Every colour scale domain of an encoding coloured by the field `loss`, anywhere in the spec."""
    found = []
    if isinstance(spec, dict):
        colour = spec.get("encoding", {}).get("color") if isinstance(spec.get("encoding"), dict) else None
        if isinstance(colour, dict) and colour.get("field") == "loss":
            found.append(colour.get("scale", {}).get("domain"))
        for value in spec.values():
            found += _loss_colour_domains(value)
    elif isinstance(spec, list):
        for value in spec:
            found += _loss_colour_domains(value)
    return found


def _specs(page: str) -> list[dict[str, Any]]:
    return [json.loads(m) for m in re.findall(r'<script type="application/json" id="spec-[^"]+">(.*?)</script>',
                                              page, re.S)]


def test_both_planes_share_one_colour_domain_covering_both(report: ComparisonReport) -> None:
    la, lb = report.a.result("landscape"), report.b.result("landscape")
    view = compare_landscapes(la, lb, Assets().for_page("compare"), report.result.names)
    assert view is not None and not view.reason and view.planes is not None
    domains = _loss_colour_domains(view.planes.spec)
    assert len(domains) == 2 and domains[0] == domains[1]
    losses = np.concatenate([la.plane.loss.ravel(), lb.plane.loss.ravel()])
    losses = losses[np.isfinite(losses) & (losses > 0)]
    assert math.isclose(domains[0][0], float(losses.min())) and math.isclose(domains[0][1], float(losses.max()))
    # The two surfaces differ, so one shared domain is wider than at least one side's own range.
    own = [(float(np.nanmin(r.plane.loss)), float(np.nanmax(r.plane.loss))) for r in (la, lb)]
    assert any(o != tuple(domains[0]) for o in own)


def test_same_seed_and_grid_and_differences_are_b_minus_a(report: ComparisonReport) -> None:
    la, lb = report.a.result("landscape"), report.b.result("landscape")
    assert la.directions.seed == lb.directions.seed and np.array_equal(la.plane.x, lb.plane.x)
    view = compare_landscapes(la, lb, Assets(), report.result.names)
    assert view is not None and view.seed == str(la.directions.seed) and str(la.steps) in view.grid
    rows = {r.name: r for r in view.rows}
    centre = rows["Loss at the centre"]
    assert float(centre.a) == pytest.approx(la.shape.centre_loss, rel=1e-3)
    assert float(centre.change) == pytest.approx(lb.shape.centre_loss - la.shape.centre_loss, rel=1e-2)
    minima = rows["Local minima on the plane"]
    assert minima.change == ("–" if la.shape.local_minima == lb.shape.local_minima
                             else f"{lb.shape.local_minima - la.shape.local_minima:+d}")
    assert view.slices is not None and {row["model"] for row in _data_rows(view.slices.spec)} == {"base", "head"}


def _data_rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [r for d in spec.get("datasets", {}).values() for r in d]
    return rows + list(spec.get("data", {}).get("values", []))


def test_the_compare_page_and_summary_show_both_landscapes(report: ComparisonReport, site: Path) -> None:
    page = (site / "index.html").read_text()
    assert "Loss landscapes" in page and "not compared" not in page
    domains = [d for spec in _specs(page) for d in _loss_colour_domains(spec)]
    assert len(domains) == 2 and domains[0] == domains[1]
    la, lb = report.a.result("landscape"), report.b.result("landscape")
    summary = (site / "summary.md").read_text()
    line = next(x for x in summary.splitlines() if x.startswith("**Loss landscape**"))
    assert f"{la.shape.centre_loss:.4g} → {lb.shape.centre_loss:.4g}" in line
    assert str(la.directions.seed) in line


def test_different_grids_give_a_reason_instead_of_plots(report: ComparisonReport, nets: Path, tmp_path: Path) -> None:
    coarse = ReportConfig(preset="quick", only=ONLY, analyses={"landscape": {**LIGHT, "steps": 5}})
    other = compare(report.a, f"{nets}:wide", data="iris", config=coarse, names=("base", "head"))
    assert other.b.result("landscape").steps == 5 != report.a.result("landscape").steps
    out = other.save(tmp_path / "out")
    page = (out / "index.html").read_text()
    section = page[page.index('id="compare-landscape"'):]
    assert "not compared: the grids differ" in section and "5 × 5" in section
    assert not [d for spec in _specs(page) for d in _loss_colour_domains(spec)]
    assert "**Loss landscape:** not compared: the grids differ" in (out / "summary.md").read_text()


def test_one_side_without_a_landscape_says_so(report: ComparisonReport, tmp_path: Path) -> None:
    b = dataclasses.replace(report.b, results={k: v for k, v in report.b.results.items() if k != "landscape"})
    out = ComparisonReport(report.a, b, compare_inspections(report.a, b, ("base", "head"))).save(tmp_path / "out")
    assert "not compared: head has no loss landscape" in (out / "index.html").read_text()
    neither = dataclasses.replace(report.a, results={k: v for k, v in report.a.results.items() if k != "landscape"})
    assert compare_landscapes(None, None, Assets()) is None
    out = ComparisonReport(neither, b, compare_inspections(neither, b)).save(tmp_path / "none")
    assert "Loss landscapes" not in (out / "index.html").read_text()


@pytest.mark.browser
def test_the_compare_page_passes_the_browser_checks(browser: object, report: ComparisonReport, site: Path,
                                                    tmp_path: Path) -> None:
    v = visit(browser, site / "index.html")
    assert_clean(v)
    assert v.charts >= 3  # per-class accuracy, the two planes, the slices
    single = report.save(tmp_path / "single", single_file=True)
    assert "Loss landscapes" in (single / "report.html").read_text()
    assert_clean(visit(browser, single / "report.html"))
