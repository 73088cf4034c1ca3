"""The compare page's evaluation section: per-class F1 deltas, the confusion-matrix difference (B − A)
and both reliability diagrams on one chart (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnreport.formatting import md
from nnreport.site.evaluation_charts import bins, neutral, scheme
from nnreport.site.pages.evaluation import GRID_MAX

if TYPE_CHECKING:
    from nnreport.evaluation.results import EvaluationResult
    from nnreport.site.assets import Assets, ChartRef

CELLS_LISTED = 20  # above GRID_MAX classes: the confusion cells that changed most, as a list


@dataclass(frozen=True)
class Row:
    name: str
    a: str
    b: str
    change: str
    changed: bool


@dataclass(frozen=True)
class CellChange:
    true: str
    predicted: str
    a: int
    b: int
    change: int


@dataclass(frozen=True)
class EvaluationComparison:
    """The section's context. With `reason` set, nothing is drawn and the reason is the one-line note."""

    reason: str = ""
    samples: int = 0
    metrics: tuple[Row, ...] = ()
    classes: tuple[Row, ...] = ()
    f1_chart: ChartRef | None = None
    confusion_chart: ChartRef | None = None
    cells: tuple[CellChange, ...] = ()
    reliability_chart: ChartRef | None = None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _row(name: str, a: float | None, b: float | None, digits: int = 3) -> Row:
    both = a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
    change = f"{b - a:+.{digits}f}" if both and a != b else "–"  # type: ignore[operator]
    return Row(name, _fmt(a, digits), _fmt(b, digits), change, change != "–")


def why_not(a: EvaluationResult | None, b: EvaluationResult | None, names: tuple[str, str]) -> str:
    """Why the two evaluations cannot be compared class by class ('' when they can)."""
    for r, name in ((a, names[0]), (b, names[1])):
        if r is None:
            return f"{name} has no evaluation (the analysis did not run, was skipped or failed)"
    assert a is not None and b is not None
    if a.task != "classification" or b.task != "classification":
        return "per-class scores need two classifiers"
    if a.class_names != b.class_names:
        return "the two models have different classes"
    if a.samples != b.samples or a.test_counts != b.test_counts:
        return "the two reports were evaluated on different test samples"
    return ""


def _metrics(a: EvaluationResult, b: EvaluationResult) -> tuple[Row, ...]:
    rows = [_row("Accuracy", a.accuracy, b.accuracy), _row("Macro F1", a.macro_f1, b.macro_f1),
            _row("ECE", a.ece, b.ece, 4)]
    if a.calibration is not None and b.calibration is not None:
        rows.append(_row("MCE", a.calibration.mce, b.calibration.mce, 4))
    return tuple(rows)


def _regression_metrics(a: EvaluationResult, b: EvaluationResult) -> tuple[Row, ...]:
    ra, rb = a.regression, b.regression
    assert ra is not None and rb is not None
    return (_row("MAE", ra.mae, rb.mae, 4), _row("RMSE", ra.rmse, rb.rmse, 4), _row("R²", ra.r2, rb.r2))


def _f1_chart(a: EvaluationResult, b: EvaluationResult, names: tuple[str, str], assets: Assets) -> ChartRef:
    import altair as alt

    values = [{"class": ra.name, "delta": round(rb.f1 - ra.f1, 6), "a": ra.f1, "b": rb.f1}
              for ra, rb in zip(a.per_class, b.per_class, strict=True)]
    chart = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("class:N", sort=list(a.class_names), title=None, axis=alt.Axis(labels=len(values) <= 60)),
        y=alt.Y("delta:Q", title=f"F1 {names[1]} − {names[0]}"),
        color=alt.condition("datum.delta >= 0", alt.value(assets.palette.categorical[0]), alt.value(assets.palette.accent)),
        tooltip=["class:N", alt.Tooltip("a:Q", title=f"F1 {names[0]}", format=".3f"),
                 alt.Tooltip("b:Q", title=f"F1 {names[1]}", format=".3f"), alt.Tooltip("delta:Q", format="+.3f")],
    ).properties(width=max(240, min(900, 26 * len(values))), height=180, title="Per-class F1 change")
    return assets.chart(chart, "Per-class F1 change", f"F1 of {names[1]} minus F1 of {names[0]} per class; above zero: {names[1]} is better.")


def _differences(a: EvaluationResult, b: EvaluationResult) -> list[tuple[int, int, int, int]]:
    return [(t, p, a.confusion[t][p], b.confusion[t][p]) for t in range(len(a.confusion)) for p in range(len(a.confusion))]


def _confusion_chart(a: EvaluationResult, b: EvaluationResult, names: tuple[str, str], assets: Assets) -> ChartRef:
    import altair as alt

    classes = list(a.class_names)
    # Colour says better or worse: more samples on the diagonal, fewer off it, is better.
    values: list[dict[str, Any]] = [{"true": classes[t], "predicted": classes[p], "a": na, "b": nb, "change": nb - na,
               "effect": (nb - na) if t == p else (na - nb)} for t, p, na, nb in _differences(a, b)]
    top = max((abs(v["change"]) for v in values), default=0) or 1
    cell = max(14, min(36, 420 // max(len(classes), 1)))
    base = alt.Chart(alt.Data(values=values)).encode(
        x=alt.X("predicted:N", sort=classes, title="predicted class"), y=alt.Y("true:N", sort=classes, title="true class"),
        tooltip=["true:N", "predicted:N", alt.Tooltip("a:Q", title=names[0]), alt.Tooltip("b:Q", title=names[1]),
                 alt.Tooltip("change:Q", format="+d")])
    rect = base.mark_rect().encode(color=alt.Color("effect:Q", title=f"{names[1]} better (+) / worse (−)",
                                                   scale=alt.Scale(**scheme(assets.palette.diverging), domain=[top, -top])))
    text = base.mark_text(fontSize=max(7, min(11, cell // 3))).encode(
        text=alt.condition("datum.change != 0", alt.Text("change:Q", format="+d"), alt.value("")))
    chart = (rect + text).properties(width=cell * len(classes), height=cell * len(classes),
                                     title=f"Confusion matrix change ({names[1]} − {names[0]})")
    return assets.chart(chart, "Confusion matrix difference", (
        f"Numbers: counts of {names[1]} minus counts of {names[0]} on the same test samples. Colour: blue where "
        f"{names[1]} is better (more right on the diagonal, fewer confusions off it), red where it is worse."))


def _cells(a: EvaluationResult, b: EvaluationResult) -> tuple[CellChange, ...]:
    names = a.class_names
    changed = [d for d in _differences(a, b) if d[2] != d[3] and d[0] != d[1]]
    changed.sort(key=lambda d: (-abs(d[3] - d[2]), d[0], d[1]))
    return tuple(CellChange(names[t], names[p], na, nb, nb - na) for t, p, na, nb in changed[:CELLS_LISTED])


def _reliability_chart(a: EvaluationResult, b: EvaluationResult, names: tuple[str, str],
                       assets: Assets) -> ChartRef | None:
    import altair as alt

    if a.calibration is None or b.calibration is None:
        return None
    values = [dict(r, model=name) for cal, name in ((a.calibration, names[0]), (b.calibration, names[1]))
              for r in bins(cal) if r["count"]]
    tip = ["model:N", alt.Tooltip("lo:Q", title="from", format=".3f"), alt.Tooltip("hi:Q", title="to", format=".3f"),
           alt.Tooltip("count:Q", format=","), alt.Tooltip("accuracy:Q", format=".3f"),
           alt.Tooltip("confidence:Q", title="mean confidence", format=".3f")]
    diagonal = alt.Chart(alt.Data(values=[{"confidence": 0, "accuracy": 0}, {"confidence": 1, "accuracy": 1}])).mark_line(
        color=neutral(assets.palette), strokeDash=[4, 3]).encode(x="confidence:Q", y="accuracy:Q")
    lines = alt.Chart(alt.Data(values=values)).mark_line(point=True).encode(
        x=alt.X("confidence:Q", title="mean confidence in the bin", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("model:N", title=None, sort=list(names), scale=alt.Scale(range=list(assets.palette.categorical[:2]))),
        order="lo:Q", tooltip=tip)
    chart = (diagonal + lines).properties(width=340, height=300, title="Reliability diagrams")
    return assets.chart(chart, "Reliability diagrams of both models", (
        f"Accuracy against mean confidence in each of {len(a.calibration.counts)} equal-width bins (empty bins left out); "
        f"dashed: perfect calibration. ECE {names[0]} {_fmt(a.ece, 4)}, {names[1]} {_fmt(b.ece, 4)}."))


def compare_evaluations(a: EvaluationResult | None, b: EvaluationResult | None, assets: Assets,
                        names: tuple[str, str]) -> EvaluationComparison | None:
    """The section's context; None when neither report has an evaluation (the section is left out)."""
    if a is None and b is None:
        return None
    if a is not None and b is not None and a.regression is not None and b.regression is not None:
        return EvaluationComparison(samples=a.samples, metrics=_regression_metrics(a, b))
    reason = why_not(a, b, names)
    if reason:
        return EvaluationComparison(reason=reason)
    assert a is not None and b is not None
    grid = len(a.class_names) <= GRID_MAX
    return EvaluationComparison(
        samples=a.samples, metrics=_metrics(a, b),
        classes=tuple(_row(ra.name, ra.f1, rb.f1) for ra, rb in zip(a.per_class, b.per_class, strict=True)),
        f1_chart=_f1_chart(a, b, names, assets), confusion_chart=_confusion_chart(a, b, names, assets) if grid else None,
        cells=() if grid else _cells(a, b), reliability_chart=_reliability_chart(a, b, names, assets))


def evaluation_markdown(a: EvaluationResult | None, b: EvaluationResult | None, names: tuple[str, str]) -> str:
    """Lines for the comparison's summary.md: macro-F1 and ECE of both, and the classes whose F1 moved most."""
    if a is None and b is None:
        return ""
    regression = a is not None and b is not None and a.regression is not None and b.regression is not None
    reason = "" if regression else why_not(a, b, names)
    if reason:
        return f"Evaluation not compared: {reason}."
    assert a is not None and b is not None
    rows = _regression_metrics(a, b) if regression else _metrics(a, b)
    lines = [f"**Evaluation** ({a.samples:,} test samples): " + "; ".join(
        f"{r.name} {r.a} → {r.b}" + (f" ({r.change})" if r.changed else "") for r in rows)]
    if regression:
        return lines[0]
    moved = sorted(zip(a.per_class, b.per_class, strict=True), key=lambda p: (-abs(p[1].f1 - p[0].f1), p[0].name))
    moved = [p for p in moved if p[0].f1 != p[1].f1][:5]
    if moved:
        lines.append("Largest per-class F1 changes: " + ", ".join(
            f"{md(ra.name)} {rb.f1 - ra.f1:+.3f}" for ra, rb in moved))
    return "\n\n".join(lines)
