"""`nnreport compare`: self-comparison is empty, a widened layer is exactly the change, flips are counted
right, bundles equal models, the pages pass the browser checks, and the documented CI recipe runs."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

import nnreport
from nnreport.api import compare
from nnreport.cli import main
from nnreport.config import ReportConfig

from browser import assert_clean, visit

ROOT = Path(__file__).resolve().parents[1]

NETS = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, width=16, bias=0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU())
        self.head = nn.Linear(width, 3)
        with torch.no_grad():
            self.head.bias[0] += bias
    def forward(self, x):
        return self.head(self.body(x))

def base():
    return Net(16)

def wide():
    return Net(32)

def biased():
    return Net(16, bias=0.5)
"""

QUICK = ReportConfig(preset="quick", only=("summary",))


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nets") / "nets.py"
    path.write_text(NETS)
    return path


def test_a_model_compared_with_itself_shows_no_differences(nets: Path) -> None:
    report = compare(f"{nets}:base", f"{nets}:base", data="iris", config=QUICK)
    assert report.result.identical
    assert report.result.flips_total == 0 and not report.result.layer_changes
    assert "No differences" in report.markdown()


def test_widening_one_layer_shows_exactly_that_change(nets: Path) -> None:
    result = compare(f"{nets}:base", f"{nets}:wide", data="iris", config=QUICK).result
    changed = {d.path: d.detail for d in result.layer_changes}
    # body.0 is widened; the ReLU after it, their container, and the head it feeds see the new width.
    assert set(changed) == {"body", "body.0", "body.1", "head"}
    assert changed["body.0"] == "params 80 → 160; output 16 → 32"
    assert changed["head"] == "params 51 → 99"
    params = {m.name: (m.a, m.b) for m in result.metrics}["Parameters"]
    assert params == (131, 259)


def test_prediction_flips_are_counted_correctly(nets: Path) -> None:
    from nnreport.loading import load_model

    data = nnreport.load_builtin("iris")
    a, b = (load_model(f"{nets}:{n}") for n in ("base", "biased"))
    result = compare(a, b, data="iris", config=QUICK).result
    x, y = torch.from_numpy(data.x_test), data.y_test
    with torch.no_grad():
        pa, pb = a.model(x).argmax(1).numpy(), b.model(x).argmax(1).numpy()
    flipped = np.flatnonzero(pa != pb)
    assert result.flips_total == len(flipped) > 0
    assert [f.index for f in result.flips] == flipped[: len(result.flips)].tolist()
    assert result.fixed == int(((pb == y) & (pa != y)).sum())
    assert result.broken == int(((pa == y) & (pb != y)).sum())


def test_comparing_bundles_equals_comparing_models(nets: Path, tmp_path: Path) -> None:
    for name in ("base", "wide"):
        assert main(["build", f"{nets}:{name}", "--data", "iris", "--preset", "quick", "--only", "summary",
                     "--out", str(tmp_path / name)]) == 0
    from_bundles = compare(tmp_path / "base" / "inspection", tmp_path / "wide", config=QUICK)
    from_models = compare(f"{nets}:base", f"{nets}:wide", data="iris", config=QUICK)
    assert _same(from_bundles.result, from_models.result)
    assert from_bundles.markdown() == from_models.markdown()


def _same(a: object, b: object) -> bool:
    from nnreport import codec

    return codec.to_files(a) == codec.to_files(b)


@pytest.mark.browser
def test_compare_pages_pass_the_browser_checks(browser: object, nets: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    only = ["--only", os.environ["NNREPORT_TEST_ONLY"]] if os.environ.get("NNREPORT_TEST_ONLY") else []
    assert main(["compare", f"{nets}:base", f"{nets}:wide", "--data", "iris", "--preset", "quick",
                 "--names", "base,head", "--out", str(out), *only]) == 0
    pages = sorted(out.glob("*.html"))
    assert out / "index.html" in pages and any(p.name.startswith("side-") for p in pages)
    assert [p.relative_to(out).as_posix() for p in out.rglob("vega.js")] == ["assets/vega.js"]  # one shared runtime
    for page in (out / "a" / "index.html", out / "b" / "graph.html"):  # the embedded reports draw too
        assert_clean(visit(browser, page))
    for page in pages:
        assert_clean(visit(browser, page))
    single = tmp_path / "single"
    assert main(["compare", "--bundles", str(out / "a"), str(out / "b"), "--single-file", "--out", str(single)]) == 0
    assert_clean(visit(browser, single / "report.html"))


def test_the_documented_ci_recipe_runs(nets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = (ROOT / "docs" / "nnreport-compare.yml").read_text()
    commands = [line.strip() for line in recipe.splitlines() if line.strip().startswith("nnreport ")]
    assert [c.split()[1] for c in commands] == ["build", "build", "compare"]
    env = {"MODEL": f"{nets}:base", "DATA": "iris", "PRESET": "quick", "GITHUB_WORKSPACE": str(tmp_path)}
    monkeypatch.chdir(tmp_path)
    for i, command in enumerate(commands):
        text = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], command)
        if i == 1:
            text = text.replace(f"{nets}:base", f"{nets}:wide")  # the pull request widens a layer
        assert main(shlex.split(text)[1:]) == 0, text
    summary = (tmp_path / "compare" / "summary.md").read_text()
    assert (tmp_path / "compare" / "report.html").is_file() and len(summary) < 60_000
    assert "params 80 → 160" in summary
