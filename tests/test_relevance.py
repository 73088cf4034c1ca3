"""The relevance analysis and page: results, region perturbation, sanity checks, the zoo, the browser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nnreport import codec
from nnreport.config import ReportConfig
from nnreport.datasets import load_builtin
from nnreport.relevance.results import RelevanceResult

from models import ZOO, TinyCNN

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models run faster on one thread


def quick(**overrides: object) -> ReportConfig:
    return ReportConfig(preset="quick", only=("relevance",), timings=False, cache=False,
                        analyses={"relevance": dict(overrides)} if overrides else {})


def run_relevance(model: nn.Module, data: object = None, example_inputs: object = None, **overrides: object):  # type: ignore[no-untyped-def]
    import nnreport

    insp = nnreport.inspect(model, data, quick(**overrides), example_inputs=example_inputs)
    return insp, insp.result("relevance"), insp.record("relevance")


def test_modules_import_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import nnreport.relevance.results, nnreport.site.pages.relevance\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.fixture(scope="module")
def shapes_run():  # type: ignore[no-untyped-def]
    """A small CNN trained briefly on the built-in shapes (object masks known)."""
    from nnreport.zoo import train_classifier

    data = load_builtin("shapes")
    torch.manual_seed(0)
    model = TinyCNN(channels=3, classes=4, size=32)
    train_classifier(model, data, epochs=1, lr=0.01, seed=0)
    model.eval()
    return model, data, run_relevance(model, data)


def test_result_shapes_and_round_trip(shapes_run) -> None:  # type: ignore[no-untyped-def]
    model, data, (_insp, res, record) = shapes_run
    assert record.status == "ok", record.message
    assert isinstance(res, RelevanceResult) and res.kind == "image"
    ran = [m.key for m in res.methods if not m.skipped]
    assert len(ran) == len(res.methods) >= 8, [m.skipped for m in res.methods]
    rows = len(res.targets)
    assert rows == 4 and res.labels is not None and sorted(res.labels.tolist()) == [0, 1, 2, 3]
    for key in ran:
        assert res.maps[key].shape == (rows, 32, 32) and np.isfinite(res.maps[key]).all()
    assert res.inputs.shape == (rows, 3, 32, 32) and 0 <= res.inputs.min() and res.inputs.max() <= 1
    back = codec.from_files(RelevanceResult, *codec.to_files(res))
    assert back.methods == res.methods
    np.testing.assert_array_equal(back.maps["occlusion"], res.maps["occlusion"])
    assert back.perturbation is not None and back.perturbation.steps == res.perturbation.steps


def test_perturbation_mask_share_and_conservation_present(shapes_run) -> None:  # type: ignore[no-untyped-def]
    _model, _data, (_insp, res, _record) = shapes_run
    p = res.perturbation
    assert p is not None and p.replacement == "uniform" and p.region == 2 and p.regions_total == 256
    for c in p.curves:
        assert c.morf.shape == (p.steps + 1,) and c.morf[0] == 0 and np.isfinite(c.morf_aopc) and c.morf_se >= 0
    assert res.mask_area is not None and 0 < res.mask_area < 1
    shares = {m.method: m.share for m in res.mask_share}
    assert set(shares) == {m.key for m in res.methods if not m.skipped}
    assert all(0 <= s <= 1 for s in shares.values())
    lrp = [c for c in res.conservation if c.method.startswith("lrp_")]
    assert lrp and all(c.sums.shape == c.scores.shape for c in lrp)
    assert res.randomisation and all(len(r.similarity) == len(r.randomised) for r in res.randomisation)


def test_oracle_ordering_beats_random_in_aopc() -> None:
    """On a linear model with zero replacement, ordering regions by their true contribution w·x is optimal."""
    from nnreport.relevance import perturbation as P

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 1, bias=False)).eval()
    x = torch.randn(12, 1, 8, 8)

    def score(batch: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(batch)[:, 0]

    ids, count = P.region_index((1, 8, 8), 2)
    oracle = (x * model[1].weight.view(1, 1, 8, 8)).detach().numpy()
    morf, lerf = P.orderings(oracle, ids, count)
    fill = P.replacement_values(x, "zero", 0, 0, np.random.default_rng(0))
    t = torch.zeros(12, dtype=torch.long)
    rng = np.random.default_rng(1)
    rand = P.perturbation_curve(score, x, t, np.stack([rng.permutation(count) for _ in range(12)]), ids, 10, fill)
    best = P.perturbation_curve(score, x, t, morf, ids, 10, fill)
    worst = P.perturbation_curve(score, x, t, lerf, ids, 10, fill)
    assert best.aopc > rand.aopc + 2 * rand.se
    assert worst.aopc < rand.aopc - 2 * rand.se


def test_deterministic_for_a_seed(shapes_run) -> None:  # type: ignore[no-untyped-def]
    model, data, _run = shapes_run
    small = dict(methods=("smoothgrad", "occlusion", "lrp_epsilon_gamma_box"), cascade_steps=1, mask_samples=4)
    _i, res, _r = run_relevance(model, data, **small)
    _i, again, _r = run_relevance(model, data, **small)
    for key in res.maps:
        np.testing.assert_array_equal(res.maps[key], again.maps[key])
    assert [c.morf_aopc for c in res.perturbation.curves] == [c.morf_aopc for c in again.perturbation.curves]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_runs_or_skips_with_a_reason(name: str) -> None:
    model, inputs = ZOO[name]()
    insp, res, record = run_relevance(model, example_inputs=inputs, cascade_steps=1, steps=4, ig_steps=4,
                                      methods=("saliency", "integrated_gradients", "gradcam", "occlusion",
                                               "lrp_epsilon_plus_flat", "lrp_epsilon_gamma_box"))
    assert record is not None and record.status in ("ok", "skipped"), (record.status, record.message)
    if record.status == "skipped":
        assert len(record.message) > 20
        return
    assert any(not m.skipped for m in res.methods)
    for m in res.methods:
        assert m.skipped or np.isfinite(res.maps[m.key]).all(), m.key
    from nnreport.site.build import render_files

    files = render_files(insp)
    assert "relevance.html" in files and b"drawing the page failed" not in files["relevance.html"]
    if name == "nasty_names":
        assert b"<script>alert(1)</script>" not in files["relevance.html"]


def test_tabular_model_gets_bar_charts() -> None:
    from nnreport.site.build import render_files
    from nnreport.zoo import train_classifier

    data = load_builtin("iris")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    train_classifier(model, data, epochs=5, lr=0.05, seed=0)
    insp, res, record = run_relevance(model.eval(), data)
    assert record.status == "ok", record.message
    assert res.kind == "vector" and res.feature_names
    skipped = {m.key: m.skipped for m in res.methods if m.skipped}
    assert "gradcam" in skipped and "image" in skipped["gradcam"]
    html = render_files(insp)["relevance.html"].decode()
    assert "Mean relevance per feature" in html and "Grad-CAM" in html


def test_page_in_browser(browser, tmp_path: Path, shapes_run) -> None:  # type: ignore[no-untyped-def]
    from nnreport.site.build import render

    from browser import assert_clean, visit

    _model, _data, (insp, _res, _record) = shapes_run
    out = render(insp, tmp_path / "site")
    v = visit(browser, out.parent / "relevance.html" if out.is_file() else out / "relevance.html")
    assert_clean(v)
    assert v.charts >= 4
    html = (tmp_path / "site" / "relevance.html").read_text()
    for needle in ("AOPC MoRF", "uniform noise", "Known weaknesses", "LRP ε-γ-box", "relevance-card-occlusion"):
        assert needle in html


def test_token_ids_get_relevance_at_the_embedding() -> None:
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.head = nn.Embedding(20, 8), nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.embed(x).mean(1))

    _insp, res, record = run_relevance(Tokens().eval(), example_inputs=(torch.randint(0, 20, (3, 5)),))
    assert record.status == "ok" and res.kind == "tokens" and len(res.words) == len(res.targets)
    assert res.maps["input_x_gradient"].shape == (len(res.targets), 5)
    skipped = {m.key: m.skipped for m in res.methods if m.skipped}
    assert "guided_backprop" in skipped and "token ids" in skipped["guided_backprop"]
    _insp, _res, record = run_relevance(Tokens().eval(), example_inputs=(torch.randint(0, 20, (3, 5, 2)),))
    assert record.status == "skipped" and "not token sequences" in record.message


def test_single_file_report_has_the_page(shapes_run) -> None:  # type: ignore[no-untyped-def]
    from nnreport.site.build import SINGLE_FILE_NAME, render_files

    _model, _data, (insp, _res, _record) = shapes_run
    html = render_files(insp, single_file=True)[SINGLE_FILE_NAME].decode()
    assert 'id="relevance-grid"' in html and "data:image/png;base64," in html
    assert "drawing the page failed" not in html
