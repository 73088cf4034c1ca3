"""evaluation.html: per-class metrics, confusion, ROC/PR curves, calibration, the gallery of mistakes,
the embedding and class balance (or, for a regressor, its errors)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnreport.evaluation.results import EvaluationResult
from nnreport.formatting import fmt_float, fmt_percent
from nnreport.site import evaluation_charts as charts
from nnreport.site import images
from nnreport.site.pages import page

if TYPE_CHECKING:
    from nnreport.evaluation.results import ClassRow, Gallery
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets, ChartRef, ImageRef
    from nnreport.site.themes import Palette

GRID_MAX = 30          # more classes: the ranked most-confused pairs instead of the grid
FEATURES_SHOWN = 12    # feature rows in a gallery card (largest |relevance| first)


@dataclass(frozen=True)
class TableRow:
    name: str
    precision: str
    recall: str
    f1: str
    support: str
    auc: str
    ap: str


@dataclass(frozen=True)
class PairRow:
    true: str
    predicted: str
    count: int
    share: str


@dataclass(frozen=True)
class FeatureCell:
    name: str
    value: str
    relevance: str
    colour: str  # the palette's positive or negative colour; "" without relevance


@dataclass(frozen=True)
class Card:
    index: int
    true_name: str
    predicted_name: str
    confidence: str
    image: ImageRef | None
    relevance: ImageRef | None
    scale: int
    text: str
    features: tuple[FeatureCell, ...]


@dataclass(frozen=True)
class Metric:
    name: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class EvaluationPage:
    records: tuple[AnalysisRecord, ...]
    task: str
    samples: int
    notes: tuple[str, ...]
    metrics: tuple[Metric, ...]
    table: tuple[TableRow, ...] = ()
    averages: tuple[TableRow, ...] = ()
    grid: bool = True
    confusion_chart: ChartRef | None = None
    pairs: tuple[PairRow, ...] = ()
    roc_chart: ChartRef | None = None
    pr_chart: ChartRef | None = None
    curves_note: str = ""
    reliability_chart: ChartRef | None = None
    histogram_chart: ChartRef | None = None
    transform_text: str = ""
    bins: int = 0
    mistakes: tuple[Card, ...] = ()
    unsure: tuple[Card, ...] = ()
    gallery_kind: str = ""
    maps_text: str = ""
    maps_note: str = ""
    legend: ImageRef | None = None
    embedding_chart: ChartRef | None = None
    embedding_text: str = ""
    embedding_note: str = ""
    balance_chart: ChartRef | None = None
    scatter_chart: ChartRef | None = None
    residual_chart: ChartRef | None = None


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if math.isfinite(x) else "–"


def _table(rows: tuple[ClassRow, ...]) -> tuple[TableRow, ...]:
    return tuple(TableRow(r.name, _num(r.precision), _num(r.recall), _num(r.f1), f"{r.support:,}", _num(r.auc),
                          _num(r.average_precision)) for r in rows)


def _averages(res: EvaluationResult) -> tuple[TableRow, ...]:
    total = f"{sum(r.support for r in res.per_class):,}"
    out = []
    for name, avg in (("macro average", res.macro), ("weighted average", res.weighted)):
        if avg is not None:
            out.append(TableRow(name, _num(avg.precision), _num(avg.recall), _num(avg.f1), total, "", ""))
    return tuple(out)


def _pairs(res: EvaluationResult) -> tuple[PairRow, ...]:
    names = res.class_names
    return tuple(PairRow(names[p.true], names[p.predicted], p.count, fmt_percent(p.share)) for p in res.most_confused)


def _name(names: tuple[str, ...], i: int) -> str:
    return names[i] if 0 <= i < len(names) else str(i)


def _factor(h: int, w: int) -> int:
    return max(1, 72 // max(h, w, 1))


def _features(g: Gallery, k: int, maps: np.ndarray | None, palette: Palette) -> tuple[FeatureCell, ...]:
    if g.kind != "features" or g.features.size == 0:
        return ()
    row = g.features[k]
    names = g.feature_names if len(g.feature_names) == len(row) else tuple(f"x{j}" for j in range(len(row)))
    rel = maps[k] if maps is not None else None
    order = np.argsort(-np.abs(rel), kind="stable") if rel is not None else np.arange(len(row))
    cells = []
    for j in order[:FEATURES_SHOWN]:
        r = float(rel[j]) if rel is not None else None
        cells.append(FeatureCell(names[j], fmt_float(float(row[j]), 3), fmt_float(r, 3) if r is not None else "",
                                 "" if r is None or r == 0 else (palette.positive if r > 0 else palette.negative)))
    return tuple(cells)


def _cards(res: EvaluationResult, g: Gallery, maps: np.ndarray | None, assets: Assets) -> tuple[tuple[Card, ...], tuple[Card, ...]]:
    names = res.class_names
    groups: dict[str, list[Card]] = {"mistake": [], "unsure": []}
    for k, s in enumerate(g.samples):
        image = relevance = None
        scale = 1
        if g.kind == "image" and g.images.size:
            scale = _factor(*g.images.shape[-2:])
            image = assets.png(f"sample-{s.index}", images.to_rgb(g.images[k]),
                               f"test sample {s.index}: true {_name(names, s.label)}")
            if maps is not None:
                m = float(np.abs(maps[k]).max()) or 1.0
                relevance = assets.png(f"lrp-{s.index}", images.colourize(maps[k], assets.palette.diverging, -m, m),
                                       f"LRP map of test sample {s.index} for {_name(names, s.prediction)}")
        groups[s.group].append(Card(s.index, _name(names, s.label), _name(names, s.prediction), fmt_percent(s.confidence),
                                    image, relevance, scale, s.text, _features(g, k, maps, assets.palette)))
    return tuple(groups["mistake"]), tuple(groups["unsure"])


def _relevance_shown(insp: Inspection) -> str:
    """'' when gallery maps are shown, else why not (the relevance analysis was skipped or left out)."""
    record = insp.record("relevance")
    if record is None:
        return "Relevance maps are not shown: the relevance analysis did not run for this report."
    if record.status != "ok":
        what = "was skipped" if record.status == "skipped" else "failed"
        return f"Relevance maps are not shown: the relevance analysis {what} ({record.message})."
    return ""


def _legend(assets: Assets) -> ImageRef:
    ramp = np.tile(np.linspace(-1, 1, 160)[None, :], (10, 1))
    return assets.png("legend", images.colourize(ramp, assets.palette.diverging, -1, 1),
                      "colour scale from negative (left) through zero to positive (right)")


def _classification_page(res: EvaluationResult, records: tuple[AnalysisRecord, ...], insp: Inspection,
                         assets: Assets) -> EvaluationPage:
    metrics = [Metric("Accuracy", fmt_percent(res.accuracy)),
               Metric("Macro F1", _num(res.macro_f1), "unweighted mean over classes")]
    if res.top_k is not None:
        metrics.append(Metric(f"Top-{res.top_k} accuracy", fmt_percent(res.top_k_accuracy)))
    cal = res.calibration
    if cal is not None:
        metrics += [Metric("ECE", _num(cal.ece, 4), f"{len(cal.counts)} bins"), Metric("MCE", _num(cal.mce, 4))]
    grid = len(res.class_names) <= GRID_MAX
    g = res.gallery
    hidden = _relevance_shown(insp)
    maps = g.maps if g is not None and not hidden else None
    mistakes, unsure = _cards(res, g, maps, assets) if g is not None else ((), ())
    maps_note = (g.maps_note if g is not None and g.maps_note else hidden) if g is not None else ""
    return EvaluationPage(
        records=records, task=res.task, samples=res.samples, notes=res.notes, metrics=tuple(metrics),
        table=_table(res.per_class), averages=_averages(res), grid=grid,
        confusion_chart=charts.confusion_chart(res, assets) if grid else None, pairs=_pairs(res),
        roc_chart=charts.curve_chart(res.roc, res.class_names, "roc", assets),
        pr_chart=charts.curve_chart(res.pr, res.class_names, "pr", assets), curves_note=res.curves_note,
        reliability_chart=charts.reliability_chart(cal, assets) if cal else None,
        histogram_chart=charts.histogram_chart(cal, assets) if cal else None,
        transform_text=cal.transform_text if cal else "", bins=len(cal.counts) if cal else 0,
        mistakes=mistakes, unsure=unsure, gallery_kind=g.kind if g is not None else "",
        maps_text=g.maps_method if maps is not None and g is not None else "", maps_note=maps_note,
        legend=_legend(assets) if maps is not None and g is not None and g.kind == "image" else None,
        embedding_chart=charts.embedding_chart(res.embedding, res.class_names, assets) if res.embedding else None,
        embedding_text=res.embedding.method if res.embedding else "", embedding_note=res.embedding_note,
        balance_chart=charts.balance_chart(res, assets))


def evaluation_markdown(insp: Inspection) -> str:
    """Key numbers for summary.md: accuracy, macro-F1 and ECE (or MAE/RMSE/R² for a regressor)."""
    res = insp.get("evaluation", EvaluationResult)
    if res is None:
        return ""
    if res.regression is not None:
        r = res.regression
        return (f"- Evaluation (regression, {res.samples:,} test samples): MAE {fmt_float(r.mae, 4)}, "
                f"RMSE {fmt_float(r.rmse, 4)}, R² {_num(r.r2)}\n")
    cal = res.calibration
    ece = f", ECE {res.ece:.4f} ({len(cal.counts)} bins, {cal.transform})" if cal is not None and res.ece is not None else ""
    return (f"- Evaluation ({res.samples:,} test samples): accuracy {fmt_percent(res.accuracy)}, "
            f"macro-F1 {_num(res.macro_f1)}{ece}\n")


@page("evaluation", title="Evaluation", analyses=("evaluation",), order=5, markdown=evaluation_markdown)
def evaluation_page(insp: Inspection, assets: Assets) -> EvaluationPage:
    res = insp.require("evaluation", EvaluationResult)
    records = tuple(r for r in (insp.record("evaluation"),) if r is not None)
    if res.regression is not None:
        r = res.regression
        scatter, residual = charts.regression_charts(r, assets)
        metrics = (Metric("MAE", fmt_float(r.mae, 4), "mean absolute error"),
                   Metric("RMSE", fmt_float(r.rmse, 4), "root mean squared error"),
                   Metric("R²", _num(r.r2), "" if r.r2 is not None else "the labels are constant"))
        return EvaluationPage(records, res.task, res.samples, res.notes, metrics, scatter_chart=scatter,
                              residual_chart=residual)
    return _classification_page(res, records, insp, assets)
