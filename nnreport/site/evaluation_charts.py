"""The evaluation page's charts (Altair -> Vega-Lite), shared with the compare page's evaluation section."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.site import images
from nnreport.site.build import data_uri

if TYPE_CHECKING:
    from nnreport.evaluation.results import Calibration, Curve, Embedding, EvaluationResult, Regression
    from nnreport.site.assets import Assets, ChartRef
    from nnreport.site.themes import Palette

LEGEND_MAX = 20  # more classes: the embedding's colours get no legend (the tooltip names the class)


def _finite(x: float | None) -> float | None:
    """Chart data never holds NaN/inf: gaps are null."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _name(names: tuple[str, ...], i: int) -> str:
    return names[i] if 0 <= i < len(names) else str(i)


def scheme(cmap: images.ColourMap) -> dict[str, Any]:
    """A palette colour map as Vega scale options, running low to high as nnreport.site.images draws it."""
    return {"rdbu": {"scheme": "redblue", "reverse": True}, "gray": {"scheme": "greys", "reverse": True}}.get(
        cmap, {"scheme": cmap})


def neutral(palette: Palette) -> str:
    """Reference lines (chance, perfect calibration, zero error): the theme's neutral grey."""
    return palette.neutral


def classes_scale(palette: Palette, count: int) -> Any:
    """Class colours: the palette's categorical colours, or Vega's tableau20 above their number."""
    import altair as alt

    return alt.Scale(range=list(palette.categorical)) if count <= len(palette.categorical) else alt.Scale(scheme="tableau20")


def confusion_chart(res: EvaluationResult, assets: Assets) -> ChartRef:
    import altair as alt

    names = list(res.class_names)
    values = []
    for t, row in enumerate(res.confusion):
        support = sum(row)
        for p, n in enumerate(row):
            values.append({"true": names[t], "predicted": names[p], "count": n,
                           "share": round(n / support, 6) if support else 0.0})
    cell = max(14, min(36, 420 // max(len(names), 1)))
    base = alt.Chart(alt.Data(values=values)).encode(
        x=alt.X("predicted:N", sort=names, title="predicted class"), y=alt.Y("true:N", sort=names, title="true class"),
        tooltip=["true:N", "predicted:N", alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")])
    size = {"width": cell * len(names), "height": cell * len(names)}

    def heat(field: str, title: str, fmt: str) -> Any:
        rect = base.mark_rect().encode(color=alt.Color(f"{field}:Q", title=title, scale=alt.Scale(**scheme(assets.palette.heat))))
        text = base.mark_text(fontSize=max(7, min(11, cell // 3))).encode(
            text=alt.Text(f"{field}:Q", format=fmt),
            # The sequential colour maps run dark to light: white numbers on the dark (low) cells.
            color=alt.condition("datum.share < 0.5", alt.value("white"), alt.value("black")))
        return (rect + text).properties(title=title, **size)

    chart = alt.hconcat(heat("count", "counts", "d"), heat("share", "share of the true class", ".0%")).resolve_scale(
        color="independent")
    return assets.chart(chart, "Confusion matrix: counts and row-normalised",
                        "Rows: true class; columns: predicted class. Right: each row divided by the class's test samples "
                        "(its recall on the diagonal).")


def curve_chart(curves: tuple[Curve, ...], names: tuple[str, ...], kind: str, assets: Assets) -> ChartRef | None:
    import altair as alt

    if not curves:
        return None
    area = "AUC" if kind == "roc" else "AP"
    values = []
    series = []
    for c in curves:
        label = f"{names[c.cls]} ({area} {c.area:.3f})"
        series.append(label)
        values += [{"class": label, "x": x, "y": y, "i": i} for i, (x, y) in enumerate(zip(c.x, c.y, strict=True))]
    xt, yt = ("false positive rate", "true positive rate") if kind == "roc" else ("recall", "precision")
    lines = alt.Chart(alt.Data(values=values)).mark_line(strokeWidth=1.5).encode(
        x=alt.X("x:Q", title=xt, scale=alt.Scale(domain=[0, 1])), y=alt.Y("y:Q", title=yt, scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("class:N", title=None, sort=series,
                        scale=classes_scale(assets.palette, len(series))),
        order="i:Q", tooltip=["class:N", alt.Tooltip("x:Q", title=xt, format=".3f"), alt.Tooltip("y:Q", title=yt, format=".3f")])
    ref = [{"x": 0, "y": 0}, {"x": 1, "y": 1}] if kind == "roc" else []
    chart = lines
    if ref:
        diagonal = alt.Chart(alt.Data(values=ref)).mark_line(color=neutral(assets.palette), strokeDash=[4, 3]).encode(
            x="x:Q", y="y:Q")
        chart = diagonal + lines
    title = "ROC curves (one class against the rest)" if kind == "roc" else "Precision–recall curves (one class against the rest)"
    caption = ("Dashed: a classifier that guesses. AUC: area under the curve." if kind == "roc" else
               "AP: average precision, the area under the step-wise curve (scikit-learn).")
    return assets.chart(chart.properties(width=320, height=300, title=title), title, caption)


def bins(cal: Calibration) -> list[dict[str, Any]]:
    """One chart row per bin (edges, counts, accuracy, mean confidence, gap); null for an empty bin's values."""
    rows = []
    for b in range(len(cal.counts)):
        acc, conf = _finite(cal.accuracy[b]), _finite(cal.confidence[b])
        rows.append({"lo": cal.edges[b], "hi": cal.edges[b + 1], "count": cal.counts[b], "correct": cal.correct[b],
                     "wrong": cal.counts[b] - cal.correct[b], "accuracy": acc, "confidence": conf,
                     "gap": None if acc is None or conf is None else round(acc - conf, 6)})
    return rows


def _reliability_layers(cal: Calibration, palette: Palette) -> tuple[Any, Any]:
    """The bars of accuracy per bin and the points at (mean confidence, accuracy)."""
    import altair as alt

    data = alt.Data(values=[r for r in bins(cal) if r["count"]])
    tip = [alt.Tooltip("lo:Q", title="from", format=".3f"), alt.Tooltip("hi:Q", title="to", format=".3f"),
           alt.Tooltip("count:Q", format=","), alt.Tooltip("accuracy:Q", format=".3f"),
           alt.Tooltip("confidence:Q", title="mean confidence", format=".3f"), alt.Tooltip("gap:Q", format="+.3f")]
    bars = alt.Chart(data).mark_bar(opacity=0.75, color=palette.categorical[0]).encode(
        x=alt.X("lo:Q", title="confidence (top label)", scale=alt.Scale(domain=[0, 1])), x2="hi:Q",
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])), y2=alt.datum(0), tooltip=tip)
    points = alt.Chart(data).mark_point(filled=True, size=30, color=palette.accent).encode(x="confidence:Q", y="accuracy:Q", tooltip=tip)
    return bars, points


def _diagonal(palette: Palette) -> Any:
    import altair as alt

    return alt.Chart(alt.Data(values=[{"lo": 0, "accuracy": 0}, {"lo": 1, "accuracy": 1}])).mark_line(
        color=neutral(palette), strokeDash=[4, 3]).encode(x="lo:Q", y="accuracy:Q")


def reliability_chart(cal: Calibration, assets: Assets) -> ChartRef:
    bars, points = _reliability_layers(cal, assets.palette)
    chart = (_diagonal(assets.palette) + bars + points).properties(width=320, height=300, title="Reliability diagram")
    return assets.chart(chart, "Reliability diagram", (
        f"{len(cal.counts)} equal-width bins of the top-label confidence; bars: accuracy in each bin, dots: the bin's "
        f"mean confidence. On the dashed line confidence equals accuracy. ECE {cal.ece:.4f}, MCE {cal.mce:.4f}."))


def histogram_chart(cal: Calibration, assets: Assets) -> ChartRef:
    import altair as alt

    rows = []
    for r in bins(cal):
        # Stacked by hand (correct at the bottom): Vega-Lite draws x/x2 bars horizontally when it stacks.
        for outcome, base in (("correct", 0), ("wrong", r["correct"])):
            rows.append({"lo": r["lo"], "hi": r["hi"], "outcome": outcome, "count": r[outcome], "base": base,
                         "top": base + r[outcome]})
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("lo:Q", title="confidence (top label)", scale=alt.Scale(domain=[0, 1])), x2="hi:Q",
        y=alt.Y("top:Q", title="test samples"), y2="base:Q",
        color=alt.Color("outcome:N", title=None, sort=["correct", "wrong"],
                        scale=alt.Scale(domain=["correct", "wrong"], range=[assets.palette.categorical[0], assets.palette.accent])),
        tooltip=[alt.Tooltip("lo:Q", title="from", format=".3f"), alt.Tooltip("hi:Q", title="to", format=".3f"),
                 "outcome:N", alt.Tooltip("count:Q", format=",")],
    ).properties(width=320, height=300, title="Confidence histogram")
    return assets.chart(chart, "Confidence histogram", "Test samples per confidence bin, split by whether the prediction was right.")


def _thumb_uri(rgb: np.ndarray) -> str:
    return data_uri("thumbnail.png", images.encode_png(rgb))


def embedding_chart(e: Embedding, names: tuple[str, ...], assets: Assets) -> ChartRef:
    import altair as alt

    thumbs = e.thumbnails if e.thumbnails.ndim == 4 and len(e.thumbnails) == len(e.x) else None
    values = []
    for i in range(len(e.x)):
        row: dict[str, Any] = {
            "x": _finite(float(e.x[i])), "y": _finite(float(e.y[i])), "sample": int(e.indices[i]),
            "true": _name(names, int(e.labels[i])), "predicted": _name(names, int(e.predictions[i])),
            "confidence": round(float(e.confidence[i]), 4),
            "outcome": "correct" if e.labels[i] == e.predictions[i] else "mistake"}
        if thumbs is not None:
            row["image"] = _thumb_uri(thumbs[i])
        values.append(row)
    tip = ([alt.Tooltip("image:N")] if thumbs is not None else []) + [
        "sample:Q", "true:N", "predicted:N", alt.Tooltip("confidence:Q", format=".1%"), "outcome:N"]
    chart = alt.Chart(alt.Data(values=values)).mark_point(filled=True, opacity=0.8).encode(
        x=alt.X("x:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title=None, axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("true:N", title="true class", sort=list(names),
                        scale=classes_scale(assets.palette, len(names)),
                        legend=alt.Legend() if len(names) <= LEGEND_MAX else None),
        shape=alt.Shape("outcome:N", title=None, sort=["correct", "mistake"],
                        scale=alt.Scale(domain=["correct", "mistake"], range=["circle", "cross"]),
                        legend=alt.Legend(symbolFillColor=neutral(assets.palette),
                                          symbolStrokeColor=neutral(assets.palette))),
        size=alt.condition("datum.outcome == 'mistake'", alt.value(90), alt.value(22)),
        tooltip=tip,
    ).properties(width=520, height=420, title="Penultimate-layer embedding")
    return assets.chart(chart, "Embedding of the test samples", (
        f"{len(e.x):,} test samples: {_features(e)} ({e.dimensions:,} features), projected by {e.method}. Colour: true class; crosses: mistakes. Hover a point for "
        f"{'its thumbnail, ' if thumbs is not None else ''}its prediction and confidence. The axes of t-SNE have no units."))


def balance_chart(res: EvaluationResult, assets: Assets) -> ChartRef | None:
    import altair as alt

    if not res.test_counts:
        return None
    names = list(res.class_names)
    values = []
    for split, counts in (("train", res.train_counts), ("test", res.test_counts)):
        total = sum(counts) or 1
        values += [{"class": names[c], "split": split, "count": n, "share": round(n / total, 6), "order": c}
                   for c, n in enumerate(counts)]
    many = len(names) > 60
    chart = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("class:N", sort=names, title=None, axis=alt.Axis(labels=not many, ticks=not many)),
        xOffset=alt.XOffset("split:N", sort=["train", "test"]),
        y=alt.Y("share:Q", title="share of the split", axis=alt.Axis(format="%")),
        color=alt.Color("split:N", title=None, sort=["train", "test"],
                        scale=alt.Scale(range=list(assets.palette.categorical[:2]))),
        tooltip=["class:N", "split:N", alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=max(240, min(900, 26 * len(names))), height=180, title="Class balance")
    return assets.chart(chart, "Class balance of the train and test splits",
                        "Each class's share of its split (the tooltip has the counts).")


def regression_charts(r: Regression, assets: Assets) -> tuple[ChartRef, ChartRef]:
    import altair as alt

    values = [{"true": _finite(float(t)), "predicted": _finite(float(p)), "residual": _finite(float(p - t))}
              for t, p in zip(r.true, r.predicted, strict=True)]
    finite = [v for v in values if v["true"] is not None and v["predicted"] is not None]
    ends = [e for v in finite for e in (v["true"], v["predicted"]) if e is not None]
    lo, hi = min(ends, default=0.0), max(ends, default=1.0)
    tip = [alt.Tooltip("true:Q", format=".4g"), alt.Tooltip("predicted:Q", format=".4g"),
           alt.Tooltip("residual:Q", format="+.4g")]
    points = alt.Chart(alt.Data(values=finite)).mark_point(filled=True, opacity=0.6, size=18,
                                                            color=assets.palette.categorical[0])
    ident = alt.Chart(alt.Data(values=[{"true": lo, "predicted": lo}, {"true": hi, "predicted": hi}])).mark_line(
        color=neutral(assets.palette), strokeDash=[4, 3]).encode(x="true:Q", y="predicted:Q")
    scatter = (ident + points.encode(x=alt.X("true:Q", title="true value"), y=alt.Y("predicted:Q", title="prediction"),
                                     tooltip=tip)).properties(width=320, height=300, title="Predicted against true")
    zero = alt.Chart(alt.Data(values=[{"residual": 0}])).mark_rule(color=neutral(assets.palette), strokeDash=[4, 3]).encode(y="residual:Q")
    resid = (zero + points.encode(x=alt.X("predicted:Q", title="prediction"),
                                  y=alt.Y("residual:Q", title="residual (prediction − true)"), tooltip=tip)
             ).properties(width=320, height=300, title="Residuals")
    n = len(finite)
    return (assets.chart(scatter, "Predicted against true values", f"{n:,} test samples; dashed: perfect predictions."),
            assets.chart(resid, "Residuals against predictions", f"{n:,} test samples; dashed: no error."))


def _features(e: Embedding) -> str:
    name = e.layer or "unnamed"
    if e.kind == "conv":
        return f"the input of the last convolution ({name}), averaged over positions (the model has no Linear layer)"
    return f"the input of the last Linear layer ({name})"
