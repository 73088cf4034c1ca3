"""The evaluation analysis and page: metrics against scikit-learn and direct computations on fixed
models, calibration properties, the probability transform, regression, chart JSON without NaN, the
bundle's plain lists, determinism, and the page in Chromium in every theme."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from torch import nn

import nnreport
from nnreport import codec
from nnreport.config import ReportConfig
from nnreport.datasets import Dataset
from nnreport.errors import SpecError
from nnreport.evaluation import metrics as M
from nnreport.evaluation.results import EvaluationResult
from nnreport.site.build import render_files

from models import MLP, TinyCNN

ONLY = ("evaluation",)


def _evaluate(model: nn.Module, data: Any, **options: Any) -> EvaluationResult:
    config = ReportConfig(preset="quick", only=ONLY, cache=False, analyses={"evaluation": options})
    insp = nnreport.inspect(model, data, config)
    record = insp.record("evaluation")
    assert record is not None and record.status == "ok", record
    return insp.result("evaluation")  # type: ignore[no-any-return]


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return TinyCNN()


def _outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).double().numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _ece_loop(probs: np.ndarray, y: np.ndarray, bins: int) -> tuple[float, float]:
    """ECE and MCE one sample at a time, bins (lo, hi] with 0 in the first: the slow, obvious version."""
    members: list[list[int]] = [[] for _ in range(bins)]
    for i in range(len(y)):
        c = float(probs[i].max())
        b = 0 if c <= 0 else min(bins - 1, int(np.ceil(c * bins)) - 1)
        members[b].append(i)
    ece, mce = 0.0, 0.0
    for m in members:
        if m:
            acc = np.mean([probs[i].argmax() == y[i] for i in m])
            conf = np.mean([probs[i].max() for i in m])
            ece += abs(acc - conf) * len(m) / len(y)
            mce = max(mce, abs(acc - conf))
    return ece, mce


def test_metrics_match_scikit_learn_and_a_direct_computation_on_a_fixed_model() -> None:
    data = nnreport.load_builtin("digits")
    model = _tiny_cnn()
    res = _evaluate(model, data, embedding_samples=0)
    assert data.y_test is not None
    y = data.y_test
    probs = _softmax(_outputs(model, data.x_test))
    pred = probs.argmax(1)
    assert res.task == "classification" and res.samples == len(y)
    assert np.array_equal(np.array(res.confusion), skm.confusion_matrix(y, pred, labels=range(10)))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=range(10), zero_division=0)
    np.testing.assert_allclose([c.precision for c in res.per_class], p, atol=1e-12)
    np.testing.assert_allclose([c.recall for c in res.per_class], r, atol=1e-12)
    np.testing.assert_allclose([c.f1 for c in res.per_class], f, atol=1e-12)
    assert [c.support for c in res.per_class] == list(s)
    assert res.macro is not None and res.weighted is not None
    assert res.macro.f1 == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)
    assert res.weighted.f1 == pytest.approx(skm.f1_score(y, pred, average="weighted", zero_division=0), abs=1e-12)
    assert res.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert res.top_k == 5
    assert res.top_k_accuracy == pytest.approx(skm.top_k_accuracy_score(y, probs, k=5, labels=range(10)), abs=1e-9)
    for c, row in enumerate(res.per_class):
        assert row.auc == pytest.approx(skm.roc_auc_score(y == c, probs[:, c]), abs=1e-6)
        assert row.average_precision == pytest.approx(skm.average_precision_score(y == c, probs[:, c]), abs=1e-6)
    assert res.calibration is not None and res.calibration.transform == "softmax"
    ece, mce = _ece_loop(probs, y, 15)
    assert res.ece == pytest.approx(ece, abs=1e-6) and res.calibration.mce == pytest.approx(mce, abs=1e-6)
    assert sum(res.calibration.counts) == len(y) and len(res.calibration.edges) == 16
    assert res.train_counts == tuple(np.bincount(data.y_train, minlength=10))  # type: ignore[arg-type]


def test_gallery_picks_the_most_confident_mistakes_and_least_confident_hits() -> None:
    data = nnreport.load_builtin("iris")
    torch.manual_seed(1)
    model = MLP()
    res = _evaluate(model, data, gallery=3, embedding_samples=30)
    probs = _softmax(_outputs(model, data.x_test))
    conf, pred = probs.max(1), probs.argmax(1)
    g = res.gallery
    assert g is not None and g.kind == "features" and g.maps is not None and g.maps.shape == (len(g.samples), 4)
    mistakes = [s for s in g.samples if s.group == "mistake"]
    unsure = [s for s in g.samples if s.group == "unsure"]
    wrong = np.flatnonzero(pred != data.y_test)
    right = np.flatnonzero(pred == data.y_test)
    assert [s.index for s in mistakes] == list(wrong[np.argsort(-conf[wrong], kind="stable")][:3])
    assert [s.index for s in unsure] == list(right[np.argsort(conf[right], kind="stable")][:3])
    assert all(s.prediction != s.label for s in mistakes) and all(s.prediction == s.label for s in unsure)
    e = res.embedding
    assert e is not None and e.layer == "net.4" and e.dimensions == 16 and len(e.x) == 30
    assert "t-SNE" in e.method and np.isfinite(e.x).all() and e.thumbnails.size == 0


def test_a_perfectly_calibrated_predictor_has_ece_near_zero() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4) * 0.7, size=60_000)
    y = np.array([rng.choice(4, p=p) for p in probs])
    cal = M.calibration(probs, y, "identity")
    assert cal.ece < 0.01
    # The same predictor made over-confident is not calibrated.
    sharp = _softmax(np.log(probs) * 3)
    assert M.calibration(sharp, y, "identity").ece > 0.05


class Probabilities(nn.Module):
    """A classifier whose last layer is a softmax (or log-softmax): its outputs are already probabilities."""

    def __init__(self, log: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = MLP()
        self.out = nn.LogSoftmax(dim=1) if log else nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x) * 20)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_probabilities_are_not_softmaxed_twice(log: bool) -> None:
    data = nnreport.load_builtin("iris")
    model = Probabilities(log)
    res = _evaluate(model, data, embedding_samples=0, gallery=0)
    out = _outputs(model, data.x_test)
    probs = np.exp(out) if log else out
    assert res.calibration is not None and res.calibration.transform == ("exp" if log else "identity")
    assert "no softmax" in res.calibration.transform_text or log
    ece, _ = _ece_loop(probs, data.y_test, 15)  # type: ignore[arg-type]
    assert res.ece == pytest.approx(ece, abs=1e-6)
    twice, _ = _ece_loop(_softmax(probs), data.y_test, 15)  # type: ignore[arg-type]
    assert abs(twice - ece) > 0.05, "softmax of probabilities flattens them; the test must tell the two apart"
    confs = [c for c in res.calibration.confidence if c is not None]
    assert max(confs) > 0.6  # a softmax of probabilities in [0, 1] over 3 classes never exceeds e/(e+2) ≈ 0.58


def test_probability_transform_detection() -> None:
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    assert M.probability_transform(logits) == "softmax"
    assert M.probability_transform(_softmax(logits)) == "identity"
    assert M.probability_transform(np.log(_softmax(logits))) == "exp"
    assert M.probability_transform(np.array([[0.2, 0.3, 0.5], [0.9, 0.2, -0.1]])) == "softmax"  # negative entry
    assert M.probability_transform(np.array([[0.3], [0.9]])) == "binary"
    assert M.probability_transform(np.array([[-2.0], [3.0]])) == "sigmoid"


def _regression_data() -> Dataset:
    iris = nnreport.load_builtin("iris")
    w = np.array([0.5, -1.0, 2.0, 0.3], np.float32)
    return replace(iris, name="iris-regression", y_train=(iris.x_train @ w).astype(np.float32),
                   y_test=(iris.x_test @ w).astype(np.float32), class_names=None)


def test_regression_outputs_get_mae_rmse_and_r2() -> None:
    data = _regression_data()
    torch.manual_seed(0)
    model = MLP(classes=1)
    res = _evaluate(model, data)
    pred = _outputs(model, data.x_test)[:, 0]
    assert res.task == "regression" and res.regression is not None and res.confusion == () and res.ece is None
    r = res.regression
    assert r.mae == pytest.approx(skm.mean_absolute_error(data.y_test, pred), rel=1e-6)
    assert r.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(data.y_test, pred)), rel=1e-6)
    assert r.r2 == pytest.approx(skm.r2_score(data.y_test, pred), rel=1e-5)
    files = render_files(nnreport.inspect(model, data, ReportConfig(preset="quick", only=ONLY, cache=False)))
    html = files["evaluation.html"].decode()
    assert "Residuals" in html and "RMSE" in html and "Reliability" not in html
    assert "MAE" in files["summary.md"].decode()


def test_one_logit_with_0_1_labels_is_a_binary_classifier() -> None:
    data = nnreport.load_builtin("moons")
    torch.manual_seed(0)
    model = MLP(2, 8, 1)
    res = _evaluate(model, data, embedding_samples=0, gallery=2)
    logit = _outputs(model, data.x_test)[:, 0]
    p1 = 1 / (1 + np.exp(-logit))
    probs = np.stack([1 - p1, p1], 1)
    pred = probs.argmax(1)
    assert res.calibration is not None and res.calibration.transform == "sigmoid"
    assert np.array_equal(np.array(res.confusion), skm.confusion_matrix(data.y_test, pred, labels=[0, 1]))
    assert res.ece == pytest.approx(_ece_loop(probs, data.y_test, 15)[0], abs=1e-6)  # type: ignore[arg-type]
    g = res.gallery
    assert g is not None and g.maps is not None
    idx = [s.index for s in g.samples]
    lrp = nnreport.attribute(model, data.x_test[idx], 0, method="lrp", low=float(data.value_range()[0]),
                             high=float(data.value_range()[1]))
    sign = np.where(pred[idx] == 1, 1.0, -1.0)[:, None]
    np.testing.assert_allclose(g.maps, lrp * sign, rtol=1e-4, atol=1e-6)  # class 0's map is the logit's, negated


def test_regression_leaves_out_non_finite_labels_with_a_note() -> None:
    data = _regression_data()
    assert data.y_test is not None
    y = data.y_test.copy()
    y[:3] = np.nan
    res = _evaluate(MLP(classes=1), replace(data, y_test=y))
    assert res.regression is not None and np.isfinite(res.regression.mae) and res.samples == len(y) - 3
    assert "3 test sample(s)" in res.notes[0]


def test_labels_outside_the_models_classes_are_refused_up_front() -> None:
    # The up-front label check (issue 17) refuses them before any analysis runs, so the evaluation never
    # reports accuracies against classes the model does not have.
    data = nnreport.load_builtin("iris")
    data = replace(data, y_train=data.y_train + 5, y_test=data.y_test + 5)  # type: ignore[operator]
    with pytest.raises(SpecError, match="go up to 7, but the data names 3 classes"):
        nnreport.inspect(MLP(), data, ReportConfig(preset="quick", only=ONLY, cache=False))


def _chart_specs(html: str) -> list[Any]:
    specs = re.findall(r'<script type="application/json" id="spec-[^"]+">(.*?)</script>', html, re.S)
    assert specs

    def refuse(name: str) -> None:
        raise AssertionError(f"chart JSON holds {name}")

    return [json.loads(s, parse_constant=refuse) for s in specs]


def test_a_class_that_never_occurs_leaves_no_nan_in_the_charts_or_bundle(tmp_path: Path) -> None:
    data = nnreport.load_builtin("iris")
    assert data.y_test is not None
    keep = data.y_test != 2
    data = replace(data, x_test=data.x_test[keep], y_test=data.y_test[keep])
    torch.manual_seed(0)
    insp = nnreport.inspect(MLP(), data, ReportConfig(preset="quick", only=ONLY, cache=False))
    res: Any = insp.result("evaluation")
    assert res.per_class[2].support == 0 and res.per_class[2].auc is None
    assert "a class needs both positive and negative test samples" in res.curves_note
    files = render_files(insp)
    specs = _chart_specs(files["evaluation.html"].decode())
    assert len(specs) >= 6
    text = files["inspection/evaluation.json"].decode()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"evaluation.json holds {name}"))


def test_the_bundle_holds_plain_lists_and_the_output_is_deterministic(tmp_path: Path) -> None:
    data = nnreport.load_builtin("digits")
    config = ReportConfig(preset="quick", only=ONLY, cache=False, timings=False,
                          analyses={"evaluation": {"embedding_samples": 120}})
    first = nnreport.inspect(_tiny_cnn(), data, config)
    second = nnreport.inspect(_tiny_cnn(), data, config)
    a, b = render_files(first.without_timings()), render_files(second.without_timings())
    assert a == b, [k for k in a if a[k] != b.get(k)]
    tree = json.loads(a["inspection/evaluation.json"])
    assert isinstance(tree["ece"], float)
    conf = tree["confusion"]
    assert len(conf) == 10 and all(len(row) == 10 and all(isinstance(v, int) for v in row) for row in conf)
    assert sum(map(sum, conf)) == len(data.x_test)
    assert isinstance(tree["per_class"][0]["f1"], float) and isinstance(tree["roc"][0]["x"], list)
    assert isinstance(tree["calibration"]["counts"], list)
    decoded = codec.from_files(EvaluationResult, a["inspection/evaluation.json"].decode(),
                               a["inspection/evaluation.npz"])
    assert decoded.confusion == first.result("evaluation").confusion
    assert "macro-F1" in a["summary.md"].decode() and "ECE" in a["summary.md"].decode()


def test_many_classes_show_ranked_pairs_instead_of_the_grid() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = rng.integers(0, 40, 400)
    data = Dataset("many", "tabular", x, y, x, y, class_names=tuple(f"c{i}" for i in range(40)))
    torch.manual_seed(0)
    insp = nnreport.inspect(MLP(8, 16, 40), data, ReportConfig(preset="quick", only=ONLY, cache=False))
    res: Any = insp.result("evaluation")
    counts = [p.count for p in res.most_confused]
    assert counts == sorted(counts, reverse=True) and len(counts) == 25
    assert all(p.true != p.predicted for p in res.most_confused)
    html = render_files(insp)["evaluation.html"].decode()
    assert "most confused pairs" in html and "Confusion matrix: counts" not in html
    assert "first 20 of 40 classes" in res.curves_note and len(res.roc) == 20


def _pair() -> tuple[Any, Any]:
    data = nnreport.load_builtin("iris")
    config = ReportConfig(preset="quick", only=ONLY, cache=False, analyses={"evaluation": {"embedding_samples": 0}})
    insps = []
    for seed in (0, 3):
        torch.manual_seed(seed)
        insps.append(nnreport.inspect(MLP(), data, config))
    return insps[0], insps[1]


def test_compare_shows_f1_deltas_the_confusion_difference_and_both_reliability_diagrams(tmp_path: Path) -> None:
    from nnreport.api import compare

    a, b = _pair()
    ra, rb = a.result("evaluation"), b.result("evaluation")
    report = compare(a, b, names=("base", "head"))
    out = report.save(tmp_path / "cmp")
    html = (out / "index.html").read_text()
    assert 'id="compare-evaluation"' in html and "Evaluations are not compared" not in html
    specs = {s.get("title", {}).get("text", s.get("title")) if isinstance(s.get("title"), dict) else s.get("title"): s
             for s in _chart_specs(html)}
    diff = specs["Confusion matrix change (head − base)"]
    cells = {(v["true"], v["predicted"]): v["change"] for v in _values(diff)}
    names = ra.class_names
    for t in range(3):
        for p in range(3):
            assert cells[(names[t], names[p])] == rb.confusion[t][p] - ra.confusion[t][p]
    f1 = {v["class"]: v["delta"] for v in _values(specs["Per-class F1 change"])}
    assert f1 == {x.name: pytest.approx(y.f1 - x.f1, abs=1e-6) for x, y in zip(ra.per_class, rb.per_class, strict=True)}
    models = {v["model"] for v in _values(specs["Reliability diagrams"]) if "model" in v}
    assert models == {"base", "head"}
    md = (out / "summary.md").read_text()
    assert "Macro F1" in md and "ECE" in md and f"{ra.ece:.4f}" in md


def test_compare_says_why_evaluations_are_not_compared(tmp_path: Path) -> None:
    from nnreport.api import compare

    a, _ = _pair()
    regression = nnreport.inspect(MLP(classes=1), _regression_data(),
                                  ReportConfig(preset="quick", only=ONLY, cache=False))
    html = (compare(a, regression).save(tmp_path / "cmp") / "index.html").read_text()
    assert "Evaluations are not compared: per-class scores need two classifiers" in html
    other = nnreport.inspect(MLP(classes=1), _regression_data(), ReportConfig(preset="quick", only=ONLY, cache=False))
    report = compare(regression, other)
    html = (report.save(tmp_path / "cmp2") / "index.html").read_text()
    ra, rb = regression.result("evaluation").regression, other.result("evaluation").regression
    assert "RMSE" in html and f"{ra.rmse:.4f}" in html and f"{rb.rmse:.4f}" in html
    assert "RMSE" in report.markdown()


def _values(spec: Any) -> list[dict[str, Any]]:
    """Every inline data row of a (layered) Vega-Lite spec."""
    rows: list[dict[str, Any]] = []
    for part in [spec] + spec.get("layer", []) + spec.get("hconcat", []):
        rows += part.get("data", {}).get("values", [])
        if part is not spec:
            rows += _values(part)
    return rows


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["light", "dark", "paper"])
def test_the_page_is_clean_in_chromium_in_every_theme(browser: object, theme: str, report_bundle: Path,
                                                      tmp_path: Path) -> None:
    from nnreport.cli import main

    from browser import assert_clean, visit

    out = tmp_path / theme
    assert main(["render", str(report_bundle), "--out", str(out), "--theme", theme]) == 0
    seen: dict[str, Any] = {}

    def hover(page: Any) -> None:
        seen["text"] = page.inner_text("main")
        seen["nav"] = page.eval_on_selector_all("nav a", "els => els.map(e => e.textContent.trim())")
        point = page.query_selector("#eval-embedding .vega-chart svg path[role='graphics-symbol']") or \
            page.query_selector("#eval-embedding .vega-chart svg .mark-symbol path")
        assert point is not None
        point.hover()
        page.wait_for_selector("#vg-tooltip-element.visible img", timeout=5_000)
        seen["tooltip"] = page.inner_html("#vg-tooltip-element")

    v = visit(browser, out / "evaluation.html", action=hover)
    assert_clean(v)
    assert v.charts >= 7 and v.charts_rendered == v.charts
    for expected in ("Per class", "macro average", "Most confident mistakes", "ECE", "Class balance"):
        assert expected in seen["text"]
    assert seen["nav"][:2] == ["Overview", "Evaluation"]
    assert 'src="data:image/png;base64,' in seen["tooltip"]
    html = (out / "evaluation.html").read_text()
    assert html.count('alt="LRP map of test sample') >= 2  # the relevance analysis ran, so the maps show


@pytest.fixture(scope="module")
def report_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Digits with the tiny CNN: the evaluation plus a one-method relevance run (so the gallery has maps)."""
    config = ReportConfig(preset="quick", only=("evaluation", "relevance"), cache=False, analyses={
        "evaluation": {"embedding_samples": 150},
        "relevance": {"methods": ["lrp_epsilon_plus_flat"], "max_rows": 2, "perturbation_samples": 4, "steps": 2,
                      "randomisation_samples": 2, "cascade_steps": 1}})
    out = tmp_path_factory.mktemp("evaluation") / "bundle"
    nnreport.inspect(_tiny_cnn(), "digits", config).save(out)
    return out


@pytest.mark.browser
def test_regression_and_many_class_pages_are_clean_in_chromium(browser: object, tmp_path: Path) -> None:
    from browser import assert_clean, visit

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = rng.integers(0, 40, 300)
    many = Dataset("many", "tabular", x, y, x, y)
    torch.manual_seed(0)
    config = ReportConfig(preset="quick", only=ONLY, cache=False)
    for name, model, data in (("many", MLP(8, 16, 40), many), ("regression", MLP(classes=1), _regression_data())):
        out = nnreport.render(nnreport.inspect(model, data, config), tmp_path / name)
        v = visit(browser, out / "evaluation.html")
        assert_clean(v)
        assert v.charts >= (2 if name == "regression" else 6)


def test_images_without_recorded_normalisation_are_stretched_for_display() -> None:
    from nnreport.evaluation.analysis import display
    from nnreport.evaluation.embedding import thumbnails

    x = np.random.default_rng(0).normal(size=(3, 3, 64, 48)).astype(np.float32) * 4
    data = Dataset("raw", "image", x, np.zeros(3, np.int64), x, np.zeros(3, np.int64))
    shown = display(data, x)
    assert shown.min() == 0.0 and shown.max() == 1.0
    thumbs = thumbnails(shown, 32)
    assert thumbs.shape == (3, 32, 24, 3) and thumbs.dtype == np.uint8
    np.testing.assert_allclose(thumbs[0, 0, 0], shown[0, :, :2, :2].mean((1, 2)) * 255, atol=1)


def test_the_theme_palette_colours_the_page_and_charts(report_bundle: Path, tmp_path: Path) -> None:
    """The dark theme's palette, not the light one's, reaches the evaluation charts (no colour literals)."""
    from nnreport.cli import main
    from nnreport.site.themes import load_theme

    dark, light = load_theme("dark").palette, load_theme("light").palette
    assert main(["render", str(report_bundle), "--out", str(tmp_path / "dark"), "--theme", "dark"]) == 0
    html = (tmp_path / "dark" / "evaluation.html").read_text(encoding="utf-8")
    assert dark.accent in html and dark.categorical[0] in html and dark.categorical[-1] in html
    assert light.categorical[0] not in html and light.accent not in html
