"""No NaN or infinity reaches a chart or embedded JSON: gaps are written as null (JSON has no NaN, and a
browser refuses the whole spec). The data has a class that never occurs, so per-class numbers are NaN."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from nnreport.cli import main
from nnreport.templating import dumps_finite, finite

EMBEDDED = re.compile(r'<script type="application/json"[^>]*>(.*?)</script>', re.S)

MODELS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(8 * 4 * 4, 4)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def narrow():
    torch.manual_seed(0)
    return Net(8)


def wide():
    torch.manual_seed(1)
    return Net(12)
'''


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"{token} in embedded JSON")

    return json.loads(text, parse_constant=refuse)


def _check_site(folder: Path) -> int:
    """Every embedded JSON block of every page parses as strict JSON; returns how many were checked."""
    checked = 0
    for page in sorted(folder.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        assert "drawing the page failed" not in html, page
        for block in EMBEDDED.findall(html):
            _strict(block)
            checked += 1
    return checked


@pytest.fixture(scope="module")
def never_class(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Images of classes a, b, c — and a fourth class, 'never', that no sample has — and two small CNNs."""
    root = tmp_path_factory.mktemp("never")
    rng = np.random.default_rng(0)
    y = np.arange(96) % 3
    x = rng.normal(size=(96, 1, 16, 16)).astype(np.float32) + y[:, None, None, None].astype(np.float32)
    np.savez(root / "shapes.npz", x=x, y=y, classes=np.array(["a", "b", "c", "never"]))
    (root / "nets.py").write_text(MODELS)
    return root / "nets.py", root / "shapes.npz"


def test_finite_replaces_every_nan_and_infinity() -> None:
    value = {"a": [1.0, float("nan"), np.float32("inf")], "b": (np.array([np.nan, 2.0]), -math.inf), "c": 3}
    assert finite(value) == {"a": [1.0, None, None], "b": [[None, 2.0], None], "c": 3}
    assert dumps_finite({"x": float("nan")}) == '{"x": null}'


def test_every_page_with_a_class_that_never_occurs(never_class: tuple[Path, Path], tmp_path: Path) -> None:
    nets, data = never_class
    out = tmp_path / "report"
    assert main(["build", f"{nets}:narrow", "--data", str(data), "--out", str(out), "--preset", "quick"]) == 0
    assert _check_site(out) > 5
    single = tmp_path / "single"
    assert main(["render", str(out / "inspection"), "--out", str(single), "--single-file"]) == 0
    assert _check_site(single) > 5


def test_compare_overview_with_a_class_that_never_occurs(never_class: tuple[Path, Path], tmp_path: Path) -> None:
    nets, data = never_class
    out = tmp_path / "compare"
    assert main(["compare", f"{nets}:narrow", f"{nets}:wide", "--data", str(data), "--preset", "quick",
                 "--only", "summary", "--out", str(out)]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    specs = [_strict(b) for b in EMBEDDED.findall(html)]
    per_class = [s for s in specs if isinstance(s, dict) and "Test accuracy per class" in json.dumps(s)]
    assert per_class, "the per-class accuracy chart is drawn"
    values = per_class[0]["data"]["values"]
    assert {v["accuracy"] for v in values if v["class"] == "never"} == {None}
    assert _check_site(out) >= len(specs)
