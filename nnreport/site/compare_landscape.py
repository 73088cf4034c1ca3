"""The compare page's loss-landscape section: both planes on one colour scale, both 1-D slices in one
chart, and the shape numbers side by side (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.formatting import fmt_float
from nnreport.landscape import drawing

if TYPE_CHECKING:
    from nnreport.landscape.results import Curve, LandscapeResult, Surface
    from nnreport.site.assets import Assets, ChartRef

SIZE = 280


@dataclass(frozen=True)
class ShapeRow:
    name: str
    a: str
    b: str
    change: str


@dataclass(frozen=True)
class LandscapeComparison:
    """The section's context. With `reason` set, nothing is drawn and the reason is the one-line note."""

    reason: str = ""
    planes: ChartRef | None = None
    slices: ChartRef | None = None
    rows: tuple[ShapeRow, ...] = ()
    seed: str = ""
    grid: str = ""
    domain: tuple[float, float] = (0.0, 0.0)
    warnings: tuple[str, ...] = ()


def _signed(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:+.3g}"


def _change(a: float | None, b: float | None, digits: int = 3) -> str:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return "–"
    return "–" if a == b else f"{b - a:+.{digits}g}"


def _pp(a: float, b: float) -> str:
    """Change of a fraction in percentage points."""
    text = _change(100 * a, 100 * b)
    return text if text == "–" else text + " pp"


def _grid_text(r: LandscapeResult) -> str:
    return f"{r.steps} × {r.steps} over [−{r.span:g}, {r.span:g}]²"


def _same_grid(a: LandscapeResult, b: LandscapeResult) -> bool:
    pa, pb = a.plane, b.plane
    return (a.steps == b.steps and a.span == b.span and pa.x.shape == pb.x.shape and pa.y.shape == pb.y.shape
            and bool(np.allclose(pa.x, pb.x)) and bool(np.allclose(pa.y, pb.y)))


def why_not(a: LandscapeResult | None, b: LandscapeResult | None, names: tuple[str, str]) -> str:
    """Why the two planes cannot share a chart ('' when they can)."""
    if a is None and b is None:
        return "neither report has a loss landscape"
    for r, name in ((a, names[0]), (b, names[1])):
        if r is None:
            return f"{name} has no loss landscape (the analysis did not run, was skipped or failed)"
    assert a is not None and b is not None
    if not _same_grid(a, b):
        return (f"the grids differ ({names[0]}: {_grid_text(a)}; {names[1]}: {_grid_text(b)}), "
                "so the surfaces are not drawn on one scale; build both with the same landscape steps and span")
    return ""


def loss_domain(*surfaces: Surface) -> tuple[float, float]:
    """One log-scale colour domain covering the positive finite losses of every surface."""
    values = np.concatenate([s.loss[np.isfinite(s.loss) & (s.loss > 0)].ravel() for s in surfaces])
    if values.size == 0:
        return (1e-3, 1.0)
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo * 0.9, hi * 1.1)


def _plane(surface: Surface, title: str, domain: tuple[float, float], levels: list[float]) -> Any:
    """One side: the heatmap on the shared domain, the shared contour levels (labelled), the weights' cross."""
    import altair as alt

    x, y, z = surface.x, surface.y, surface.loss
    dx = float(np.mean(np.diff(x))) if len(x) > 1 else 1.0
    dy = float(np.mean(np.diff(y))) if len(y) > 1 else 1.0
    cells = [{"x": float(x[j]), "y": float(y[i]), "loss": float(z[i, j]), "x0": float(x[j] - dx / 2),
              "x1": float(x[j] + dx / 2), "y0": float(y[i] - dy / 2), "y1": float(y[i] + dy / 2)}
             for i in range(len(y)) for j in range(len(x)) if math.isfinite(z[i, j]) and z[i, j] > 0]
    xs = alt.Scale(domain=[float(x[0] - dx / 2), float(x[-1] + dx / 2)], nice=False, zero=False)
    ys = alt.Scale(domain=[float(y[0] - dy / 2), float(y[-1] + dy / 2)], nice=False, zero=False)
    heat = alt.Chart(alt.Data(values=cells)).mark_rect().encode(
        x=alt.X("x0:Q", scale=xs, title="direction 1"), x2="x1:Q",
        y=alt.Y("y0:Q", scale=ys, title="direction 2"), y2="y1:Q",
        color=alt.Color("loss:Q", scale=alt.Scale(type="log", scheme="viridis", domain=list(domain), clamp=True),
                        title="loss"),
        tooltip=[alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".3f"),
                 alt.Tooltip("loss:Q", format=".4g")])
    layers = [heat]
    z_pos = np.where(z > 0, z, np.nan)
    pieces = [drawing.contour_segments(x, y, z_pos, level) for level in levels]
    segs = [{"x": p, "y": q, "x2": r, "y2": s} for ps in pieces for p, q, r, s in ps]
    if segs:
        layers.append(alt.Chart(alt.Data(values=segs)).mark_rule(color="white", strokeWidth=1, opacity=0.9).encode(
            x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys), x2="x2:Q", y2="y2:Q"))
        labels = [{"x": pos[0], "y": pos[1], "text": f"{lv:.2g}"} for lv, pos in
                  zip(levels, drawing.label_positions(pieces, float(np.ptp(x)), float(np.ptp(y))), strict=True) if pos]
        text = alt.Chart(alt.Data(values=labels)).encode(x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys),
                                                         text="text:N")
        layers += [text.mark_text(stroke="#222", strokeWidth=3, fontSize=10, fontWeight="bold"),
                   text.mark_text(color="white", fontSize=10, fontWeight="bold")]
    layers.append(alt.Chart(alt.Data(values=[{"x": 0.0, "y": 0.0}])).mark_point(
        shape="cross", color="#e45756", size=90, strokeWidth=2).encode(x=alt.X("x:Q", scale=xs),
                                                                       y=alt.Y("y:Q", scale=ys)))
    return alt.layer(*layers).properties(width=SIZE, height=SIZE, title=title)


def planes_chart(a: Surface, b: Surface, names: tuple[str, str]) -> Any:
    """Both planes side by side; one explicit colour domain and the same contour levels for both."""
    import altair as alt

    domain = loss_domain(a, b)
    both = np.concatenate([a.loss.ravel(), b.loss.ravel()])
    levels = drawing.contour_levels(np.where(both > 0, both, np.nan))
    return alt.hconcat(_plane(a, names[0], domain, levels), _plane(b, names[1], domain, levels)
                       ).resolve_scale(color="shared")


def slices_chart(a: Curve, b: Curve, names: tuple[str, str]) -> Any:
    """Both 1-D slices in one chart (log loss); a non-finite loss breaks a line."""
    import altair as alt

    rows = []
    for curve, name in ((a, names[0]), (b, names[1])):
        segment = 0
        for t, loss in zip(curve.t, curve.loss, strict=True):
            if not (math.isfinite(loss) and loss > 0):
                segment += 1
                continue
            rows.append({"t": float(t), "loss": float(loss), "model": name, "segment": f"{name}-{segment}"})
    return alt.Chart(alt.Data(values=rows)).mark_line(point=True).encode(
        x=alt.X("t:Q", title="step along direction 1"),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title="loss (log)"),
        color=alt.Color("model:N", title=None, sort=list(names)), detail="segment:N",
        tooltip=["model:N", alt.Tooltip("t:Q", format=".3f"), alt.Tooltip("loss:Q", format=".4g")],
    ).properties(width=2 * SIZE, height=200, title="1-D slices along direction 1")


def shape_rows(a: LandscapeResult, b: LandscapeResult) -> tuple[ShapeRow, ...]:
    sa, sb = a.shape, b.shape
    rows = [
        ShapeRow("Loss at the centre", fmt_float(sa.centre_loss, 4), fmt_float(sb.centre_loss, 4),
                 _change(sa.centre_loss, sb.centre_loss)),
        ShapeRow("Accuracy at the centre", f"{fmt_float(100 * sa.centre_accuracy)}%", f"{fmt_float(100 * sb.centre_accuracy)}%",
                 _pp(sa.centre_accuracy, sb.centre_accuracy)),
        ShapeRow("Loss growth at radius 0.5", fmt_float(sa.growth_at_half), fmt_float(sb.growth_at_half),
                 _change(sa.growth_at_half, sb.growth_at_half)),
        ShapeRow("Growth ratio at radius 0.5", f"{fmt_float(sa.growth_ratio_at_half)}×", f"{fmt_float(sb.growth_ratio_at_half)}×",
                 _change(sa.growth_ratio_at_half, sb.growth_ratio_at_half)),
        ShapeRow("Local minima on the plane", str(sa.local_minima), str(sb.local_minima),
                 "–" if sa.local_minima == sb.local_minima else f"{sb.local_minima - sa.local_minima:+d}"),
        ShapeRow("Non-convex share", f"{fmt_float(100 * sa.negative_curvature_fraction)}%",
                 f"{fmt_float(100 * sb.negative_curvature_fraction)}%",
                 _pp(sa.negative_curvature_fraction, sb.negative_curvature_fraction)),
    ]
    ha, hb = a.sharpness, b.sharpness
    if ha is not None or hb is not None:
        rows.append(ShapeRow("λmax", fmt_float(ha.lambda_max if ha else None), fmt_float(hb.lambda_max if hb else None),
                             _change(ha.lambda_max if ha else None, hb.lambda_max if hb else None)))
        rows.append(ShapeRow("|λmin / λmax|", fmt_float(ha.ratio if ha else None), fmt_float(hb.ratio if hb else None),
                             _change(ha.ratio if ha else None, hb.ratio if hb else None)))
    return tuple(rows)


def _seed_text(a: LandscapeResult, b: LandscapeResult) -> str:
    da, db = a.directions.seed, b.directions.seed
    return str(da) if da == db else f"{da} / {db}"


def _warnings(a: LandscapeResult, b: LandscapeResult, names: tuple[str, str]) -> tuple[str, ...]:
    da, db = a.directions, b.directions
    out = []
    if da.seed != db.seed:
        out.append(f"The direction seeds differ ({names[0]}: {da.seed}, {names[1]}: {db.seed}).")
    if da.normalisation != db.normalisation:
        out.append(f"The direction normalisations differ ({da.normalisation} vs {db.normalisation}).")
    if a.samples != b.samples or a.batchnorm != b.batchnorm:
        out.append("The two planes were evaluated with different sample counts or BatchNorm handling.")
    return tuple(out)


def compare_landscapes(a: LandscapeResult | None, b: LandscapeResult | None, assets: Assets,
                       names: tuple[str, str] = ("A", "B")) -> LandscapeComparison | None:
    """The section's context; None when neither report has a landscape, a `reason` when they cannot share
    one colour scale."""
    if a is None and b is None:
        return None
    reason = why_not(a, b, names)
    if reason:
        return LandscapeComparison(reason=reason)
    assert a is not None and b is not None
    seed = _seed_text(a, b)
    planes = assets.chart(planes_chart(a.plane, b.plane, names),
                          f"Loss on the random plane of {names[0]} and of {names[1]}, on one colour scale",
                          "Colour: loss (log scale), one domain for both; white lines: the same labelled loss "
                          "levels on both; cross: the trained weights.")
    slices = None
    if a.slice is not None and b.slice is not None:
        slices = assets.chart(slices_chart(a.slice, b.slice, names), "Both models' loss along direction 1",
                              "Loss (log axis) along the first direction of each model's plane.")
    return LandscapeComparison(planes=planes, slices=slices, rows=shape_rows(a, b), seed=seed,
                               grid=_grid_text(a), domain=loss_domain(a.plane, b.plane),
                               warnings=_warnings(a, b, names))


def landscape_markdown(a: LandscapeResult | None, b: LandscapeResult | None, names: tuple[str, str]) -> str:
    """One line for summary.md with both sides' key numbers ('' when neither has a landscape)."""
    if a is None and b is None:
        return ""
    reason = why_not(a, b, names)
    if reason:
        return f"**Loss landscape:** not compared: {reason}."
    assert a is not None and b is not None
    parts = [f"loss at the weights {fmt_float(a.shape.centre_loss, 4)} → {fmt_float(b.shape.centre_loss, 4)}",
             f"growth at radius 0.5 {_signed(a.shape.growth_at_half)} → {_signed(b.shape.growth_at_half)}",
             f"local minima {a.shape.local_minima} → {b.shape.local_minima}"]
    if a.sharpness is not None and b.sharpness is not None:
        parts.append(f"|λmin/λmax| {fmt_float(a.sharpness.ratio)} → {fmt_float(b.sharpness.ratio)}")
    return (f"**Loss landscape** ({_grid_text(a)}, direction seed {_seed_text(a, b)}): "
            + "; ".join(parts) + ".")
