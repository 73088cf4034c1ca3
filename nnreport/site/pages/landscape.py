"""landscape.html: contour plots with labelled levels, a shaded 3-D surface, 1-D curves, accuracy,
the training path, sharpness, and the settings that made them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.formatting import fmt_float
from nnreport.landscape import drawing
from nnreport.landscape.results import Curve, LandscapeResult, Surface
from nnreport.site import images
from nnreport.site.pages import page
from nnreport.site.themes import Palette

if TYPE_CHECKING:
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets, ChartRef

SIZE = 300
PALETTE = Palette()  # the default (light) theme's, for callers outside a site build


@dataclass(frozen=True)
class Fact:
    name: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class LandscapePage:
    records: tuple[AnalysisRecord, ...]
    settings: tuple[Fact, ...]
    numbers: tuple[Fact, ...]
    plane: ChartRef
    surface: drawing.SurfaceView
    accuracy: ChartRef | None
    slice: ChartRef | None
    interpolation: ChartRef | None
    path: ChartRef | None
    path_facts: tuple[Fact, ...]
    sharpness: tuple[Fact, ...]
    sharpness_map: ChartRef | None
    gaps: int
    notes: tuple[str, ...]


def _scheme(name: str) -> Any:
    """A palette colour map as a Vega colour scheme (viridis and magma are named alike in both)."""
    return name


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def contour_chart(surface: Surface, title: str, path: tuple[np.ndarray, np.ndarray] | None = None,
                  x_title: str = "direction 1", y_title: str = "direction 2", palette: Palette = PALETTE) -> Any:
    """Loss as a heatmap (log colour) with contour lines, each level labelled, and an optional path."""
    import altair as alt

    x, y, z = surface.x, surface.y, surface.loss
    cells = [{"x": float(x[j]), "y": float(y[i]), "loss": _num(float(z[i, j])),
              "accuracy": _num(float(surface.accuracy[i, j]))}
             for i in range(len(y)) for j in range(len(x)) if math.isfinite(z[i, j]) and z[i, j] > 0]
    dx = float(np.mean(np.diff(x))) if len(x) > 1 else 1.0
    dy = float(np.mean(np.diff(y))) if len(y) > 1 else 1.0
    for c in cells:
        cx, cy = c["x"], c["y"]
        assert cx is not None and cy is not None  # set from float(...) above; only loss/accuracy may be None
        c.update(x0=cx - dx / 2, x1=cx + dx / 2, y0=cy - dy / 2, y1=cy + dy / 2)
    xs = alt.Scale(domain=[float(x[0] - dx / 2), float(x[-1] + dx / 2)], nice=False, zero=False)
    ys = alt.Scale(domain=[float(y[0] - dy / 2), float(y[-1] + dy / 2)], nice=False, zero=False)
    heat = alt.Chart(alt.Data(values=cells)).mark_rect().encode(
        x=alt.X("x0:Q", scale=xs, title=x_title), x2="x1:Q",
        y=alt.Y("y0:Q", scale=ys, title=y_title), y2="y1:Q",
        color=alt.Color("loss:Q", scale=alt.Scale(type="log", scheme=_scheme(palette.sequential)), title="loss"),
        tooltip=[alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".3f"),
                 alt.Tooltip("loss:Q", format=".4g"), alt.Tooltip("accuracy:Q", format=".1%")])
    levels = drawing.contour_levels(np.where(z > 0, z, np.nan))
    pieces = [drawing.contour_segments(x, y, z, level) for level in levels]
    segs = [{"x": a, "y": b, "x2": c, "y2": d, "level": lv} for lv, ps in zip(levels, pieces, strict=True)
            for a, b, c, d in ps]
    labels = [{"x": pos[0], "y": pos[1], "text": f"{lv:.2g}"} for lv, pos in
              zip(levels, drawing.label_positions(pieces, float(np.ptp(x)), float(np.ptp(y))), strict=True) if pos]
    layers = [heat]
    if segs:
        layers.append(alt.Chart(alt.Data(values=segs)).mark_rule(color="white", strokeWidth=1.1, opacity=0.9).encode(
            x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys), x2="x2:Q", y2="y2:Q"))
        text = alt.Chart(alt.Data(values=labels)).encode(x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys),
                                                         text="text:N")
        layers += [text.mark_text(stroke="#222", strokeWidth=3, fontSize=10, fontWeight="bold"),
                   text.mark_text(color="white", fontSize=10, fontWeight="bold")]
    if path is not None:
        px, py = path
        rows = [{"x": float(a), "y": float(b), "step": i, "what": "final model" if i == len(px) - 1 else f"snapshot {i}"}
                for i, (a, b) in enumerate(zip(px, py, strict=True))]
        line = alt.Chart(alt.Data(values=rows)).encode(x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys),
                                                       order="step:Q")
        layers += [line.mark_line(color=palette.accent, strokeWidth=2),
                   line.mark_point(color=palette.accent, filled=True, size=40).encode(tooltip=["what:N", "step:Q"])]
    centre = alt.Chart(alt.Data(values=[{"x": 0.0, "y": 0.0}])).mark_point(
        shape="cross", color=palette.accent if path is None else "black", size=90, strokeWidth=2).encode(
        x=alt.X("x:Q", scale=xs), y=alt.Y("y:Q", scale=ys))
    layers.append(centre)
    return alt.layer(*layers).properties(width=SIZE, height=SIZE, title=title)


def accuracy_chart(surface: Surface, palette: Palette = PALETTE) -> Any:
    import altair as alt

    x, y, a = surface.x, surface.y, surface.accuracy
    dx = float(np.mean(np.diff(x))) if len(x) > 1 else 1.0
    dy = float(np.mean(np.diff(y))) if len(y) > 1 else 1.0
    cells = [{"x0": float(x[j] - dx / 2), "x1": float(x[j] + dx / 2), "y0": float(y[i] - dy / 2),
              "y1": float(y[i] + dy / 2), "x": float(x[j]), "y": float(y[i]), "accuracy": float(a[i, j])}
             for i in range(len(y)) for j in range(len(x)) if math.isfinite(a[i, j])]
    if not cells:
        return None
    return alt.Chart(alt.Data(values=cells)).mark_rect().encode(
        x=alt.X("x0:Q", title="direction 1", scale=alt.Scale(nice=False, zero=False)), x2="x1:Q",
        y=alt.Y("y0:Q", title="direction 2", scale=alt.Scale(nice=False, zero=False)), y2="y1:Q",
        color=alt.Color("accuracy:Q", scale=alt.Scale(domain=[0, 1], scheme=_scheme(palette.heat)), title="accuracy"),
        tooltip=[alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".3f"),
                 alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(width=SIZE, height=SIZE, title="Accuracy on the same plane")


def curve_chart(curve: Curve, title: str, x_title: str, marks: tuple[float, ...] = (), palette: Palette = PALETTE) -> Any:
    """Loss (log axis) and accuracy along a line; a non-finite loss breaks the line (a gap)."""
    import altair as alt

    rows = []
    segment = 0
    for t, loss, acc in zip(curve.t, curve.loss, curve.accuracy, strict=True):
        if not (math.isfinite(loss) and loss > 0):
            segment += 1
            continue
        rows.append({"t": float(t), "loss": float(loss), "accuracy": _num(float(acc)), "segment": segment})
    base = alt.Chart(alt.Data(values=rows)).encode(x=alt.X("t:Q", title=x_title),
                                                   detail="segment:N")
    loss_colour, acc_colour = palette.categorical[:2]
    loss = base.mark_line(color=loss_colour, point=True).encode(
        y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title="loss (log)", axis=alt.Axis(titleColor=loss_colour)),
        tooltip=[alt.Tooltip("t:Q", format=".3f"), alt.Tooltip("loss:Q", format=".4g"),
                 alt.Tooltip("accuracy:Q", format=".1%")])
    acc = base.mark_line(color=acc_colour, strokeDash=[4, 3]).encode(
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), title="accuracy",
                axis=alt.Axis(titleColor=acc_colour, format="%")))
    layers = [loss, acc]
    if marks:
        rules = alt.Chart(alt.Data(values=[{"t": m} for m in marks])).mark_rule(color="#888", strokeDash=[2, 2]
                                                                                ).encode(x="t:Q")
        layers.append(rules)
    return alt.layer(*layers).resolve_scale(y="independent").properties(width=2 * SIZE, height=200, title=title)


def _settings(r: LandscapeResult) -> tuple[Fact, ...]:
    d = r.directions
    norm = {"filter": "per filter (conv output channel / linear row)", "layer": "per layer", "model": "whole model",
            "none": "none (raw Gaussian)"}.get(d.normalisation, d.normalisation)
    grid = f"{r.steps} × {r.steps} over [−{r.span:g}, {r.span:g}]²"
    return (
        Fact("Directions", f"2 Gaussian, seed {d.seed}", f"cosine between them {d.cosine:.3f}"),
        Fact("Normalisation", norm),
        Fact("Moved", f"{d.moved_params:,} of {d.total_params:,} parameters",
             "biases and norm parameters included" if d.include_bias_bn else "biases and BatchNorm/LayerNorm parameters fixed"),
        Fact("Grid", grid, f"1-D slice: {len(r.slice.t)} points" if r.slice else ""),
        Fact("Samples", f"{r.samples} test samples", "the same fixed subset at every point"),
        Fact("BatchNorm", "eval mode, running statistics" if r.batchnorm == "running"
             else "statistics recomputed at every point"),
        Fact("Stored", "directions in the bundle (float16)" if d.vectors is not None
             else "seed only (directions too large to store)"),
    )


def _numbers(r: LandscapeResult) -> tuple[Fact, ...]:
    s = r.shape
    out = [
        Fact("Loss at the centre", fmt_float(s.centre_loss, 4), f"accuracy {fmt_float(100 * s.centre_accuracy, 3)}%"),
        Fact("Loss growth at radius 0.5", f"+{fmt_float(s.growth_at_half)}", f"{fmt_float(s.growth_ratio_at_half)}× the centre"),
        Fact("Local minima on the plane", str(s.local_minima), "interior grid points below all 8 neighbours"),
        Fact("Non-convex share", f"{fmt_float(100 * s.negative_curvature_fraction, 3)}%",
             "grid points where the surface curves down in some direction"),
    ]
    if r.sharpness is not None:
        out.append(Fact("|λmin / λmax|", fmt_float(r.sharpness.ratio), "near 0: convex around the minimum"))
    if s.nonfinite_points:
        out.append(Fact("Non-finite losses", str(s.nonfinite_points), "drawn as gaps"))
    return tuple(out)


@page("landscape", title="Loss landscape", analyses=("landscape",), order=50,
      markdown=lambda insp: landscape_markdown(insp))
def landscape_page(insp: Inspection, assets: Assets) -> LandscapePage:
    r = insp.require("landscape", LandscapeResult)
    record = insp.record("landscape")
    plane = assets.chart(contour_chart(r.plane, "Loss on a random plane", palette=assets.palette), "Contour plot of the loss on a random plane",
                         "Colour: loss (log scale); white lines: labelled loss levels; cross: the trained weights.")
    acc = accuracy_chart(r.plane, assets.palette)
    lut = images.colourize(np.linspace(0, 1, 256)[None, :], "viridis")[0]
    notes = list(r.notes)
    path = None
    path_facts: tuple[Fact, ...] = ()
    if r.trajectory is not None:
        t = r.trajectory
        path = assets.chart(contour_chart(t.surface, "Training path on the PCA plane", (t.path_x, t.path_y),
                                          f"PC 1 ({100 * t.explained[0]:.1f}%)", f"PC 2 ({100 * t.explained[1]:.1f}%)",
                                          assets.palette),
                            "Training path over the loss contours of its two principal directions",
                            "Red: the training snapshots, oldest first, ending at the final model (black cross).")
        path_facts = (Fact("Snapshots", str(t.snapshots)),
                      Fact("Variance explained", f"{100 * t.explained[0]:.1f}% + {100 * t.explained[1]:.1f}%"),
                      Fact("Loss along the path", " → ".join(fmt_float(v) for v in t.path_loss)))
    sharp: tuple[Fact, ...] = ()
    smap = None
    if r.sharpness is not None:
        s = r.sharpness
        sharp = (Fact("Top eigenvalues", ", ".join(fmt_float(v, 4) for v in s.top)),
                 Fact("λmin", fmt_float(s.lambda_min, 4)), Fact("|λmin / λmax|", fmt_float(s.ratio)),
                 Fact("Method", f"Lanczos, {s.iterations} Hessian-vector products on {s.samples} samples"))
        if s.map is not None:
            smap = assets.chart(_ratio_map(s.map, assets.palette), "Map of |λmin/λmax| over the random plane",
                                "Li et al.: blue (near 0) is locally convex, yellow has large negative curvature.")
    return LandscapePage(
        records=(record,) if record else (),
        settings=_settings(r), numbers=_numbers(r), plane=plane,
        surface=drawing.surface_view(r.plane.x, r.plane.y, r.plane.loss, lut),
        accuracy=assets.chart(acc, "Accuracy on the random plane", "Fraction of the fixed samples classified correctly.")
        if acc is not None else None,
        slice=assets.chart(curve_chart(r.slice, "1-D slice along direction 1", "step along direction 1",
                                       palette=assets.palette),
                           "Loss and accuracy along one direction", "Blue: loss (log axis); orange dashes: accuracy.")
        if r.slice is not None else None,
        interpolation=assets.chart(curve_chart(r.interpolation, "From the oldest snapshot to the final model",
                                               "α (0: oldest snapshot, 1: final model)", (0.0, 1.0), assets.palette),
                                   "Loss on the straight line between two checkpoints",
                                   "Parameters at (1−α)·oldest + α·final; BatchNorm statistics interpolated within [0, 1].")
        if r.interpolation is not None else None,
        path=path, path_facts=path_facts, sharpness=sharp, sharpness_map=smap,
        gaps=r.shape.nonfinite_points, notes=tuple(notes))


def _ratio_map(surface: Surface, palette: Palette) -> Any:
    import altair as alt

    x, y, z = surface.x, surface.y, surface.loss
    d = float(np.mean(np.diff(x))) if len(x) > 1 else 1.0
    cells = [{"x0": float(x[j] - d / 2), "x1": float(x[j] + d / 2), "y0": float(y[i] - d / 2),
              "y1": float(y[i] + d / 2), "ratio": float(z[i, j])}
             for i in range(len(y)) for j in range(len(x)) if math.isfinite(z[i, j])]
    return alt.Chart(alt.Data(values=cells)).mark_rect().encode(
        x=alt.X("x0:Q", title="direction 1"), x2="x1:Q", y=alt.Y("y0:Q", title="direction 2"), y2="y1:Q",
        color=alt.Color("ratio:Q", scale=alt.Scale(scheme=_scheme(palette.sequential)), title="|λmin/λmax|"),
        tooltip=[alt.Tooltip("ratio:Q", format=".3f")]).properties(width=SIZE, height=SIZE, title="|λmin / λmax|")


def landscape_markdown(insp: Inspection) -> str:
    r = insp.get("landscape", LandscapeResult)
    if r is None:
        return ""
    s = r.shape
    line = (f"**Loss landscape**: loss {fmt_float(s.centre_loss, 4)} at the weights, +{fmt_float(s.growth_at_half)} "
            f"at radius 0.5, {s.local_minima} local minim{'um' if s.local_minima == 1 else 'a'} on a "
            f"{r.steps}×{r.steps} random plane")
    if r.sharpness is not None:
        line += f", λmax {fmt_float(r.sharpness.lambda_max)}, |λmin/λmax| {fmt_float(r.sharpness.ratio)}"
    return line + "."
