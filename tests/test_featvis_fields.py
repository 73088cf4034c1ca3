"""Activation maximisation at real resolutions: units with a small receptive field are optimised at one position
and shown as their field plus a margin; large images use the Fourier recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnreport.neurons.featvis import focus, resolved_method
from nnreport.neurons.layers import module_map
from nnreport.neurons.maximise import Focus, Settings, maximise
from nnreport.neurons.param import InputSpace
from nnreport.neurons.receptive import receptive_fields
from nnreport.neurons.regularisers import HYPER_SETS
from nnreport.neurons.results import FeatvisConfig


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


class _Layer:
    """The fields of LayerActivations that `focus` reads."""

    def __init__(self, shape: tuple[int, ...], receptive: tuple[tuple[int, int, int], ...] | None) -> None:
        self.shape, self.receptive = shape, receptive


def test_focus_is_the_centre_units_field_plus_margin() -> None:
    model = _net()
    fields = receptive_fields(model, torch.zeros(1, 3, 64, 64), module_map(model, ["1", "4"]))
    f1 = fields["1"]
    assert f1 is not None and f1[0].size == 5
    layer = _Layer((6, 64, 64), tuple((a.size, a.jump, a.start) for a in f1))
    got = focus(layer, (3, 64, 64), FeatvisConfig())  # type: ignore[arg-type]
    assert got is not None and got.position == (32, 32)
    # Field [30, 35) at position 32 (start -2), plus a margin of max(2, 5/4) pixels each side.
    assert got.window == ((28, 37), (28, 37))
    assert focus(_Layer((6, 64, 64), None), (3, 64, 64), FeatvisConfig()) is None  # type: ignore[arg-type]
    # A field as large as the input: no crop.
    assert focus(_Layer((8, 2, 2), ((64, 32, -10), (64, 32, -10))), (3, 64, 64), FeatvisConfig()) is None  # type: ignore[arg-type]
    assert focus(layer, (3, 64, 64), FeatvisConfig(crop_fields=False)) is None  # type: ignore[arg-type]


def test_focused_maximisation_raises_the_centre_unit_and_returns_its_window() -> None:
    model = _net()
    space = InputSpace(-2.0, 2.0, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    f = Focus((8, 8), ((10, 25), (12, 23)))  # layer 4 is 16×16
    for method in ("yosinski", "fourier"):
        s = Settings(method=method, hyper=HYPER_SETS["yosinski3"], steps=12, lr=0.05)  # type: ignore[arg-type]
        r = maximise(model, "4", model[4], [0, 1, 2], (3, 32, 32), space, s, torch.Generator().manual_seed(0), focus=f)
        assert r.display.shape == (3, 3, 15, 11)
        assert np.isfinite(r.display).all() and r.display.min() >= 0 and r.display.max() <= 1
        assert (r.trace[:, -1] >= r.trace[:, 0]).all(), method


def test_auto_method_uses_the_fourier_recipe_on_large_images() -> None:
    config = FeatvisConfig()
    assert config.method == "auto"
    assert resolved_method(config, (3, 224, 224)) == "fourier"
    assert resolved_method(config, (3, 32, 32)) == "yosinski" and resolved_method(config, (16,)) == "yosinski"
    assert resolved_method(FeatvisConfig(method="yosinski"), (3, 224, 224)) == "yosinski"


def test_the_neurons_page_states_the_cropped_fields(tmp_path: Path) -> None:
    from PIL import Image

    from nnreport.cli import main

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    model = tmp_path / "m.py"
    model.write_text("import torch\nfrom torch import nn\ndef build():\n    torch.manual_seed(0)\n"
                     "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
                     "                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
                     "                         nn.Flatten(), nn.Linear(4, 2))\n")
    out = tmp_path / "out"
    assert main(["build", f"{model}:build", "--data", str(tmp_path / "imgs"), "--only", "featvis", "--preset", "quick",
                 "--out", str(out), "--no-cache"]) == 0
    page = (out / "neurons.html").read_text()
    assert "shown as their field plus a margin" in page and "field 3×3 px, shown 7×7 px" in page
