"""Neurons: top-k, receptive fields, regularisers, activation maximisation, facets, pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnreport import codec, scoped
from nnreport.config import ReportConfig
from nnreport.datasets import load_builtin
from nnreport.neurons.layers import capture, representative
from nnreport.neurons.maximise import Settings, maximise
from nnreport.neurons.param import InputSpace
from nnreport.neurons.receptive import receptive_fields, window
from nnreport.neurons.regularisers import (
    HYPER_SETS,
    clip_contribution,
    clip_pixel_norm,
    gaussian_blur,
    l2_decay,
)
from nnreport.neurons.results import ActivationsResult, FacetsResult, FeatvisResult
from nnreport.neurons.topk import TopK, argmax_positions, reduce_batch, stream

ROOT = Path(__file__).resolve().parents[1]
NEURONS = ("activations", "featvis", "facets")


def _inspect(model: nn.Module, data: str | None, inputs: tuple[torch.Tensor, ...] | None = None, **analyses: dict):
    from nnreport.api import inspect

    cfg = ReportConfig(preset="quick", only=NEURONS, cache=False, analyses=dict(analyses))
    return inspect(model, data, cfg, example_inputs=inputs)


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(8 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models run faster on one thread


@pytest.fixture(scope="module")
def digits_insp():
    return _inspect(TinyCNN().eval(), "digits")


# ---- top-k -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_streaming_topk_equals_brute_force_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, units, k = int(rng.integers(1, 80)), int(rng.integers(1, 6)), int(rng.integers(1, 12))
    # Integer scores make ties common: they must go to the earlier input, as in a stable sort.
    v = rng.integers(0, 5, (n, units)).astype(float) if seed % 2 else rng.normal(size=(n, units))
    top, offset = TopK(k, units), 0
    while offset < n:
        b = int(rng.integers(1, 10))
        top.update(v[offset:offset + b], offset)
        offset += b
    for u in range(units):
        brute = sorted(range(n), key=lambda i: (-v[i, u], i))[:k]
        assert top.index[:, u].tolist() == brute
        assert np.array_equal(top.values[:, u], v[brute, u])
    assert top.values.shape[0] == min(k, n)  # bounded memory: never more than k rows kept


def test_stream_over_a_model_matches_full_forward() -> None:
    model = TinyCNN().eval()
    x = torch.randn(70, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    mod = {"features.1": model.features[1]}

    def batches():
        for s in range(0, 70, 16):
            with torch.no_grad():
                acts = capture(model, mod, (x[s:s + 16],))
            yield {name: reduce_batch(act, s, 5) for name, act in acts.items()}

    state = stream(batches(), {"features.1": 6}, k=5)
    with torch.no_grad():
        full = model.features[1](model.features[0](x))
    values, where = full.flatten(2).max(2)
    for u in range(6):
        order = sorted(range(70), key=lambda i: (-float(values[i, u]), i))[:5]
        assert state["features.1"][0].index[:, u].tolist() == order
        pos = argmax_positions(full, np.array(order), np.full(5, u))
        assert pos.tolist() == where[order, u].tolist()
        assert state["features.1"][0].position[:, u].tolist() == where[order, u].tolist()  # found while streaming


# ---- receptive fields --------------------------------------------------------------------------------

def _rf(model: nn.Module, size: int = 32) -> tuple:
    out = receptive_fields(model, torch.randn(1, 1, size, size), {"out": model})["out"]
    return out


@pytest.mark.parametrize(("layers", "size", "jump"), [
    ([nn.Conv2d(1, 1, 3)], 3, 1),
    ([nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)], 5, 1),
    ([nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=1)], 8, 2),
    ([nn.Conv2d(1, 1, 5, stride=2), nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3)], 17, 4),
    ([nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3, dilation=4)], 13, 1),
    ([nn.Conv2d(1, 1, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, 1), nn.Conv2d(1, 1, 3, padding=1)], 19, 4),
    ([nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3)], 8, 2),
])
def test_receptive_field_sizes_on_known_stacks(layers: list[nn.Module], size: int, jump: int) -> None:
    field = _rf(nn.Sequential(*layers).eval())
    assert field is not None
    assert [(a.size, a.jump) for a in field] == [(size, jump), (size, jump)]


class Residual(nn.Module):
    """A 3x3 conv branch plus a 1x1 identity-like branch: the field is the union (the 3x3 one)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(1, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.b(self.a(x)) + self.c(x), 2)


@pytest.mark.parametrize("build", [
    lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(2, 2, 3, stride=2, padding=2, dilation=2)),
    lambda: Residual(),
    lambda: nn.Sequential(nn.Conv2d(1, 2, 5, stride=3), nn.Conv2d(2, 1, 3, padding=1)),
])
def test_receptive_window_equals_gradient_support_of_linear_stacks(build) -> None:
    """Oracle: in a linear stack with positive weights, d(unit)/d(input) is non-zero exactly on the field."""
    torch.manual_seed(0)
    model = build().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.1, 1.0)
    field = _rf(model, 24)
    x = torch.randn(1, 1, 24, 24, requires_grad=True)
    out = model(x)
    h, w = out.shape[2:]
    for pos in [(0, 0), (h // 2, w // 2), (h // 2, 1), (h - 1, w - 1)]:
        (g,) = torch.autograd.grad(out[0, 0, pos[0], pos[1]], x, retain_graph=True)
        rows, cols = torch.nonzero(g[0, 0].abs() > 0, as_tuple=True)
        support = ((int(rows.min()), int(rows.max()) + 1), (int(cols.min()), int(cols.max()) + 1))
        win = tuple((max(a, 0), min(b, 24)) for a, b in window(field, pos))
        if pos != (h - 1, w - 1):
            assert support == win, pos
        else:
            # At the far edge an intermediate layer's padding can map onto real input pixels the unit never
            # sees: the field (the standard definition) is then a bound, not exact.
            assert all(a0 <= s0 and s1 <= a1 for (s0, s1), (a0, a1) in zip(support, win, strict=True))


def test_flatten_and_linear_make_the_field_global() -> None:
    model = TinyCNN().eval()
    mods = dict(model.named_modules())
    fields = receptive_fields(model, torch.randn(1, 1, 16, 16), {k: mods[k] for k in ("features.2", "classifier")})
    assert fields["classifier"] is None
    assert [(a.size, a.jump) for a in fields["features.2"]] == [(4, 2), (4, 2)]


# ---- regularisers ----------------------------------------------------------------------------------

def _high_energy(x: torch.Tensor) -> float:
    spec = torch.fft.fft2(x).abs() ** 2
    fy = torch.fft.fftfreq(x.shape[-2]).abs()[:, None]
    fx = torch.fft.fftfreq(x.shape[-1]).abs()[None, :]
    return float(spec[..., (fy > 0.25) | (fx > 0.25)].sum())


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_blur_lowers_high_frequency_energy(sigma: float) -> None:
    x = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    y = gaussian_blur(x, sigma)
    assert y.shape == x.shape
    assert _high_energy(y) < 0.6 * _high_energy(x)
    assert torch.allclose(gaussian_blur(torch.ones(1, 1, 8, 8), sigma), torch.ones(1, 1, 8, 8), atol=1e-5)


@pytest.mark.parametrize("pct", [20.0, 50.0, 90.0])
def test_norm_clipping_zeroes_exactly_the_weakest_pixels(pct: float) -> None:
    x = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    y = clip_pixel_norm(x, pct)
    for i in range(2):
        norm = x[i].norm(dim=0).flatten()
        zeroed = (y[i].abs().sum(0) == 0).flatten()
        assert abs(int(zeroed.sum()) - round(pct / 100 * 100)) <= 1
        assert float(norm[zeroed].max()) <= float(norm[~zeroed].min())  # the weakest, and only them
        assert torch.equal(y[i][:, ~zeroed.view(10, 10)], x[i][:, ~zeroed.view(10, 10)])


def test_contribution_clipping_and_decay() -> None:
    g = torch.Generator().manual_seed(2)
    x, grad = torch.randn(1, 3, 8, 8, generator=g), torch.randn(1, 3, 8, 8, generator=g)
    y = clip_contribution(x, grad, 75.0)
    contrib = (x * grad).sum(1).abs().flatten()
    zeroed = (y.abs().sum(1) == 0).flatten()
    assert int(zeroed.sum()) == 48
    assert float(contrib[zeroed].max()) <= float(contrib[~zeroed].min())
    assert torch.allclose(l2_decay(x, 0.3), 0.7 * x)


def test_the_four_published_hyperparameter_sets() -> None:
    assert sorted(HYPER_SETS) == ["yosinski1", "yosinski2", "yosinski3", "yosinski4"]
    assert (HYPER_SETS["yosinski2"].decay, HYPER_SETS["yosinski2"].norm_pct) == (0.3, 20.0)
    assert HYPER_SETS["yosinski4"].contrib_pct == 90.0


# ---- activation maximisation -------------------------------------------------------------------------

SPACE = InputSpace(-2.0, 2.0, (0.5,), (0.25,))


@pytest.mark.parametrize("how", ["yosinski1", "yosinski2", "yosinski3", "yosinski4", "fourier"])
def test_target_activation_rises_during_optimisation(how: str) -> None:
    model = TinyCNN().eval()
    for path, module, n in [("features.4", model.features[4], 8), ("classifier", model.classifier, 10)]:
        s = Settings(method="fourier", steps=20) if how == "fourier" else Settings(hyper=HYPER_SETS[how], steps=20)
        r = maximise(model, path, module, list(range(n)), (1, 16, 16), SPACE, s, torch.Generator().manual_seed(0))
        assert r.display.shape == (n, 1, 16, 16)
        rose = r.trace[:, -1] > r.trace[:, 0]
        # A unit that is zero after its ReLU at the start has no gradient (a dead start); every other rises.
        live = r.trace[:, 0] != 0
        assert rose[live].mean() >= 0.9 and rose.mean() >= 0.6, (how, path, r.trace[:, [0, -1]])
        assert r.trace[:, -1].mean() > r.trace[:, 0].mean()
        assert 0.0 <= r.display.min() and r.display.max() <= 1.0  # display space honours the value range


def test_vector_inputs_are_optimised_within_their_range() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    space = InputSpace(-1.5, 2.0)
    r = maximise(model, "2", model[2], [0, 1, 2], (4,), space, Settings(hyper=HYPER_SETS["yosinski3"], steps=30),
                 torch.Generator().manual_seed(0))
    assert r.display.shape == (3, 4)
    assert (r.trace[:, -1] > r.trace[:, 0]).all()
    assert r.display.min() >= -1.5 and r.display.max() <= 2.0


def test_batched_optimisation_equals_one_unit_at_a_time() -> None:
    """Optimising a layer as one batch gives each unit exactly its own optimisation (eval mode)."""
    model = TinyCNN().eval()
    init = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 0.1
    s = Settings(hyper=HYPER_SETS["yosinski1"], steps=8)
    args = (model, "features.4", model.features[4], list(range(8)), (1, 16, 16), SPACE, s)
    together = maximise(*args, torch.Generator().manual_seed(0), init=init)
    alone = maximise(*args, torch.Generator().manual_seed(0), init=init, target_batch=1)
    assert np.allclose(together.display, alone.display, atol=1e-4)
    assert np.allclose(together.trace, alone.trace, rtol=1e-3, atol=1e-4)


# ---- layer choice --------------------------------------------------------------------------------

def test_representative_layers_end_stages_and_keep_the_output() -> None:
    model = TinyCNN().eval()
    chosen = representative(model, (torch.randn(1, 1, 16, 16),), budget=5)
    assert [c.path for c in chosen] == ["features.1", "features.4", "classifier"]
    assert [c.path for c in representative(model, (torch.randn(1, 1, 16, 16),), budget=2)][-1] == "classifier"


# ---- the analyses end to end -------------------------------------------------------------------------

def test_analyses_on_digits(digits_insp) -> None:
    for name in NEURONS:
        assert digits_insp.record(name).status == "ok", digits_insp.record(name)
    acts: ActivationsResult = digits_insp.result("activations")
    data = load_builtin("digits")
    for layer in acts.layers:
        assert layer.maps.shape[:2] == (2, layer.shown)
        top = layer.top
        assert top is not None and top.values.shape == (layer.shown, 6)
        assert (np.diff(top.values, axis=1) <= 0).all()
        assert np.array_equal(top.labels, data.y_train[top.index])
    # Crops of the first conv layer are its 3x3 receptive field.
    assert acts.layers[0].top.crops.shape[-2:] == (3, 3)
    fv: FeatvisResult = digits_insp.result("featvis")
    assert [lf.path for lf in fv.layers] == [layer.path for layer in acts.layers]
    for cls in (ActivationsResult, FeatvisResult, FacetsResult):
        name = {ActivationsResult: "activations", FeatvisResult: "featvis", FacetsResult: "facets"}[cls]
        result = digits_insp.result(name)
        assert codec.to_files(codec.from_files(cls, *codec.to_files(result))) == codec.to_files(result)


def test_facets_are_computed_on_the_right_class(digits_insp) -> None:
    fc: FacetsResult = digits_insp.result("facets")
    data = load_builtin("digits")
    assert fc.output == "classifier" and fc.layer == "features.4"
    assert len(fc.classes) == 3
    for cf in fc.classes:
        assert len(cf.facets) == 3
        members = np.concatenate([f.members for f in cf.facets])
        assert (data.y_train[members] == cf.index).all()
        assert len(members) == len(set(members.tolist())) == len(cf.points)
        for f in cf.facets:
            assert set(f.nearest.tolist()) <= set(f.members.tolist())
            mean = data.to_display(data.x_train[f.members].mean(0, keepdims=True))[0]
            assert np.abs(f.mean_image / 255.0 - mean).max() <= 0.5 / 255 + 1e-6
            assert f.end_value > f.start_value


def test_same_seed_same_results(digits_insp) -> None:
    again = _inspect(TinyCNN().eval(), "digits")
    for name in NEURONS:
        assert codec.to_files(again.result(name)) == codec.to_files(digits_insp.result(name)), name


class InplaceBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(4 * 64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv(x)).flatten(1))


def test_captured_outputs_survive_later_inplace_ops() -> None:
    torch.manual_seed(0)
    model = InplaceBlock().eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        outs = capture(model, {"conv": model.conv, "head": model.head}, (x,))
        assert torch.equal(outs["conv"], model.conv(x))
        assert (outs["conv"] < 0).any()


def test_model_untouched() -> None:
    torch.manual_seed(0)
    model = TinyCNN()
    model.features.insert(1, nn.BatchNorm2d(6))
    model.train()
    model.classifier.weight.requires_grad_(False)
    x = torch.randn(3, 1, 16, 16)
    before = scoped.model_state(model)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.eval()
        out = model(x)
        model.train()
    insp = _inspect(model, "digits")
    assert all(insp.record(n).status == "ok" for n in NEURONS)
    assert scoped.model_state(model) == before
    for k, v in model.state_dict().items():
        assert torch.equal(v, params[k]), k
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x), out)


def test_zoo_runs_or_skips_with_a_reason() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from models import ZOO

    for name, build in ZOO.items():
        model, inputs = build()
        insp = _inspect(model, None, inputs)
        for a in NEURONS:
            rec = insp.record(a)
            assert rec.status in ("ok", "skipped"), (name, a, rec.message, rec.traceback)
            assert rec.status == "ok" or rec.message


def test_named_layers_and_tabular_data() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    insp = _inspect(model, "iris", activations={"layers": ["1", "2"]})
    acts: ActivationsResult = insp.result("activations")
    assert [layer.path for layer in acts.layers] == ["1", "2"]
    assert acts.input_kind == "vector"
    assert acts.layers[0].top.crops.shape == (8, 6, 4)  # whole input vectors
    assert insp.record("featvis").status == "ok"
    assert insp.record("facets").status == "skipped"


def test_torch_free_import() -> None:
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("blocked")
sys.meta_path.insert(0, Block())
import nnreport.neurons.results, nnreport.site.pages.neurons
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---- pages ------------------------------------------------------------------------------------------

def test_pages_in_the_browser(digits_insp, tmp_path: Path, browser) -> None:
    from nnreport.site.build import render

    from browser import assert_clean, visit

    out = render(digits_insp, tmp_path / "site")
    neurons, units = (out / "neurons.html").read_text(), (out / "units.html").read_text()
    acts: ActivationsResult = digits_insp.result("activations")
    for i, layer in enumerate(acts.layers):
        for u in range(layer.shown):
            assert f'id="units-L{i}-u{u}"' in units
            assert f'href="units.html#units-L{i}-u{u}"' in neurons
    assert 'id="neurons-L0-u0"' in neurons
    for page in ("neurons.html", "units.html"):
        v = visit(browser, out / page)
        assert_clean(v)
    v = visit(browser, out / "units.html")
    assert v.charts == 3  # one t-SNE chart per class with facets
    single = render(digits_insp, tmp_path / "single", single_file=True)
    text = (single / "report.html").read_text()
    assert 'href="#units-L0-u0"' in text and 'id="units-L0-u0"' in text
    assert_clean(visit(browser, single / "report.html"))


def test_featvis_max_units_optimises_the_first_units_of_each_layer() -> None:
    from nnreport import api

    from models import TinyCNN

    torch.manual_seed(0)
    insp = api.inspect(TinyCNN().eval(), "digits", ReportConfig(
        preset="quick", cache=False, only=("activations", "featvis"),
        analyses={"featvis": {"max_units": 2, "steps": 2}}))
    fv, acts = insp.require("featvis", FeatvisResult), insp.require("activations", ActivationsResult)
    assert [lf.units for lf in fv.layers] == [min(2, layer.shown) for layer in acts.layers]
    assert all(len(lf.images) == lf.units for lf in fv.layers)
    assert "first 2 units of each layer" in fv.note
