"""Playground: neuron maps against direct evaluation, feature pairs, skips, the page and its slider."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nnreport import api, codec
from nnreport.config import ReportConfig
from nnreport.datasets import load_builtin
from nnreport.playground.planes import dequantise, pick_snapshots, quantise
from nnreport.playground.results import PlaygroundResult
from nnreport.site.build import render
from nnreport.subject import Subject
from nnreport.zoo import playground_mlp

from browser import assert_clean, visit
from models import MLP, ZOO, TinyCNN


def _config(**options: object) -> ReportConfig:
    return ReportConfig(preset="quick", only=("playground",), cache=False, analyses={"playground": dict(options)})


def _snapshots(model: nn.Module, n: int, seed: int = 1) -> tuple[dict[str, torch.Tensor], ...]:
    """Perturbed copies of the model's weights, standing in for training snapshots."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n):
        state = {name: t.detach().clone() for name, t in model.state_dict().items()}
        for t in state.values():
            t.add_(torch.randn(t.shape, generator=g) * 0.5 * (n - k) / n)
        out.append(state)
    return tuple(out)


@pytest.fixture(scope="module")
def moons_run() -> tuple[nn.Module, tuple[dict[str, torch.Tensor], ...], PlaygroundResult, object]:
    torch.manual_seed(0)
    model = playground_mlp((6, 5)).eval()
    checkpoints = _snapshots(model, 3)
    data = load_builtin("moons")
    subject = Subject(model, checkpoints=checkpoints, history=(0.7, 0.5, 0.4))
    insp = api.inspect(subject, data, _config(grid=24, max_units=8))
    result = insp.result("playground")
    assert result is not None, insp.manifest.records
    return model, checkpoints, result, insp


def _direct(model: nn.Module, state: dict[str, torch.Tensor] | None, x: torch.Tensor) -> list[torch.Tensor]:
    """Hidden activations and logits of a Linear/Tanh stack, computed by hand."""
    m = copy.deepcopy(model)
    if state is not None:
        m.load_state_dict(state)
    linears = [layer for layer in m.modules() if isinstance(layer, nn.Linear)]
    h, outs = x.double(), []  # (no autograd needed)
    for i, lin in enumerate(linears):
        h = h @ lin.weight.double().T + lin.bias.double()
        if i < len(linears) - 1:
            h = torch.tanh(h)
        outs.append(h.detach())
    return outs


def test_maps_equal_direct_evaluation_at_sample_points(moons_run) -> None:
    model, checkpoints, r, _ = moons_run
    assert r.snapshot_labels[-1] == "final model" and len(r.snapshot_labels) == len(checkpoints) + 1
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, len(r.ys), 12), rng.integers(0, len(r.xs), 12)
    x = torch.tensor(np.stack([r.xs[cols], r.ys[rows]], 1))
    for k, state in enumerate(list(checkpoints) + [None]):
        expected = _direct(model, state, x)
        for layer, want in zip(r.layers[1:], expected, strict=True):
            got = dequantise(layer.frames[k], layer.scale[k])[:, rows, cols].T
            tol = layer.scale[k][None] / 255 + 1e-5
            assert np.all(np.abs(got - want.numpy()[:, list(layer.shown)]) <= tol), (k, layer.name)
        probs = torch.softmax(expected[-1], 1).numpy()
        assert np.allclose(r.decision_frames[k][:, rows, cols].T / 255, probs, atol=1 / 255 + 1e-6)
    # the weights drawn as edges are the model's own, per snapshot
    assert np.allclose(r.layers[2].weights[-1], model[2].weight.detach().numpy())
    assert np.allclose(r.layers[1].weights[0], checkpoints[0]["0.weight"].numpy())


def test_loss_curve_and_model_untouched(moons_run) -> None:
    model, checkpoints, r, _ = moons_run
    assert r.train_loss is not None and r.test_loss is not None
    data = load_builtin("moons")
    with torch.no_grad():
        logits = model(torch.from_numpy(data.x_test))
    loss = nn.functional.cross_entropy(logits, torch.from_numpy(data.y_test))
    assert r.test_loss[-1] == pytest.approx(float(loss), rel=1e-5)
    # the model still holds its own weights (snapshots were loaded only temporarily)
    assert not torch.equal(model[0].weight, checkpoints[0]["0.weight"])
    assert np.allclose(r.history[:3], [0.7, 0.5, 0.4])


def test_result_round_trips_and_is_deterministic(moons_run) -> None:
    model, checkpoints, r, _ = moons_run
    back = codec.from_files(PlaygroundResult, *codec.to_files(r))
    assert codec.to_files(back) == codec.to_files(r)
    again = api.inspect(Subject(model, checkpoints=checkpoints, history=(0.7, 0.5, 0.4)), load_builtin("moons"),
                        _config(grid=24, max_units=8)).result("playground")
    assert codec.to_files(again) == codec.to_files(r)


def test_quantisation_and_thinning_properties() -> None:
    maps = np.random.default_rng(1).normal(size=(3, 5, 7, 7)).astype(np.float32)
    q, scale = quantise(maps)
    assert np.all(np.abs(dequantise(q, scale) - maps) <= scale[..., None, None] / 255 + 1e-6)
    for count in range(1, 30):
        keep = pick_snapshots(count, 6)
        assert keep[0] == 0 and keep[-1] == count - 1 and len(keep) <= max(6, 1) and keep == sorted(set(keep))


def test_tabular_pair_and_median() -> None:
    torch.manual_seed(0)
    model = MLP(inputs=4, hidden=16, classes=3).eval()
    data = load_builtin("iris")
    r = api.inspect(model, data, _config(x_feature="petalLength", y_feature="sepalWidth")).result("playground")
    assert r.features == ("petalLength", "sepalWidth") and r.feature_index == (2, 1)
    assert np.allclose(r.base, np.median(data.x_train, 0))
    assert any("median" in n for n in r.notes)
    # direct evaluation at a corner: the other features sit at the median
    x = torch.from_numpy(r.base.copy())[None]
    x[0, 2], x[0, 1] = float(r.xs[-1]), float(r.ys[0])
    with torch.no_grad():
        probs = torch.softmax(model(x), 1).numpy()[0]
    assert np.allclose(r.decision_frames[-1][:, 0, -1] / 255, probs, atol=1 / 255 + 1e-6)
    auto = api.inspect(model, data, _config()).result("playground")
    assert len(set(auto.feature_index)) == 2


def test_image_model_is_skipped_with_a_reason() -> None:
    torch.manual_seed(0)
    insp = api.inspect(TinyCNN().eval(), load_builtin("digits"), _config())
    record = insp.record("playground")
    assert record.status == "skipped" and "2-D" in record.message


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_runs_or_skips(name: str) -> None:
    model, inputs = ZOO[name]()
    insp = api.inspect(model, None, _config(), example_inputs=inputs)
    record = insp.record("playground")
    assert record.status in ("ok", "skipped"), (name, record.message, record.traceback)
    if record.status == "skipped":
        assert record.message


def _slider_action(page) -> None:
    before = page.eval_on_selector("#playground-sprite", "e => e.getAttribute('href')")
    widths = page.eval_on_selector_all("#playground-network .pg-edge", "es => es.map(e => e.getAttribute('stroke-width'))")
    page.eval_on_selector("#playground-slider", "e => { e.value = 0; e.dispatchEvent(new Event('input')); }")
    after = page.eval_on_selector("#playground-sprite", "e => e.getAttribute('href')")
    widths_after = page.eval_on_selector_all("#playground-network .pg-edge", "es => es.map(e => e.getAttribute('stroke-width'))")
    stat = page.inner_text("#playground-stat")
    _slider_action.seen = (before, after, widths, widths_after, stat)  # type: ignore[attr-defined]


def test_page_is_clean_and_slider_steps_through_snapshots(moons_run, browser, tmp_path: Path) -> None:
    _, _, _, insp = moons_run
    out = render(insp, tmp_path / "site")
    html = (out / "playground.html").read_text()
    assert html.count('class="pg-edge"') == 2 * 6 + 6 * 5 + 5 * 2
    v = visit(browser, out / "playground.html", action=_slider_action)
    assert_clean(v)
    before, after, widths, widths_after, stat = _slider_action.seen  # type: ignore[attr-defined]
    assert before != after and after.endswith("neurons-0.png")
    assert widths != widths_after
    assert "initial" in stat
    single = render(insp, tmp_path / "single", single_file=True)
    assert_clean(visit(browser, single / "report.html", action=_slider_action))
    assert _slider_action.seen[1].startswith("data:image/png")  # type: ignore[attr-defined]


def test_demo_playground_builds_the_page(browser, one_thread: None, tmp_path: Path) -> None:
    """one_thread: training the tiny MLP is ~10x slower with two threads on a busy machine."""
    from nnreport.cli import main

    out = tmp_path / "pg"
    assert main(["demo", "--playground", "--preset", "quick", "--only", "summary,playground", "--out", str(out)]) == 0
    html = (out / "playground.html").read_text()
    assert "arm A" in html and 'id="playground-slider"' in html
    assert_clean(visit(browser, out / "playground.html", action=_slider_action))


def test_model_names_are_escaped(tmp_path: Path) -> None:
    from models import XSS

    model, inputs = ZOO["nasty_names"]()
    insp = api.inspect(model, None, _config(), example_inputs=inputs)
    html = (render(insp, tmp_path / "site") / "playground.html").read_text()
    assert "module &lt;script&gt;" in html and XSS not in html


def test_integer_inputs_skip_with_a_reason() -> None:
    import torch
    from torch import nn

    import nnreport
    from nnreport.config import ReportConfig

    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    insp = nnreport.inspect(model, config=ReportConfig(only=("playground",)),
                            example_inputs=torch.randint(0, 10, (5, 3)))
    record = insp.record("playground")
    assert record is not None and record.status == "skipped" and "floating point" in record.message
