"""relevance.html: the samples × methods grid, AOPC curves and table, sanity checks, one card per method."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.formatting import fmt_float
from nnreport.relevance.catalogue import RECORDS
from nnreport.relevance.results import MethodResult, RelevanceResult
from nnreport.site import images
from nnreport.site.pages import page

if TYPE_CHECKING:
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets, ChartRef, ImageRef



@dataclass(frozen=True)
class Column:
    key: str
    title: str
    signed: bool
    scale: str


@dataclass(frozen=True)
class GridRow:
    class_name: str
    true_name: str | None
    predicted_name: str
    correct: bool | None
    input_image: ImageRef | None
    cells: tuple[ImageRef | None, ...]
    scale: int  # PNGs are stored at the input's resolution and enlarged (pixelated) by the browser


@dataclass(frozen=True)
class Token:
    word: str
    background: str  # "#rrggbb" on the diverging scale
    dark: bool       # a dark background: light text
    value: str       # the relevance, for the tooltip


@dataclass(frozen=True)
class TokenRow:
    """One sample of a token-id model: its words coloured by each method's relevance."""

    true_name: str | None
    predicted_name: str
    correct: bool | None
    lines: tuple[tuple[str, tuple[Token, ...]], ...]  # (method title, coloured words)


@dataclass(frozen=True)
class TableRow:
    key: str
    title: str
    morf: str
    lerf: str
    gap: str
    randomised: str
    mask_share: str
    seconds: str


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    signed: bool
    settings: str
    shows: str
    weaknesses: str
    reference: str
    notes: tuple[str, ...]
    skipped: str
    seconds: str


@dataclass(frozen=True)
class RelevancePage:
    records: tuple[AnalysisRecord, ...]
    notes: tuple[str, ...]
    kind: str
    columns: tuple[Column, ...]
    rows: tuple[GridRow, ...]
    legend_signed: ImageRef | None
    legend_unsigned: ImageRef | None
    vector_chart: ChartRef | None
    perturbation_settings: str
    random_aopc: str
    table: tuple[TableRow, ...]
    curves_chart: ChartRef | None
    randomisation_chart: ChartRef | None
    conservation_chart: ChartRef | None
    mask_chart: ChartRef | None
    runtime_chart: ChartRef | None
    cards: tuple[Card, ...]
    skipped: tuple[Card, ...]
    mask_area: str
    token_rows: tuple[TokenRow, ...] = ()


def _pm(value: float, se: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3f} ± {se:.3f}"


def _scale(maps: np.ndarray, signed: bool) -> tuple[float, float]:
    """A per-method colour scale shared by all rows: the 99.5th percentile of |R| (signed: symmetric)."""
    finite = maps[np.isfinite(maps)]
    if signed:
        m = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
        return -(m or 1.0), (m or 1.0)
    hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    return 0.0, hi or 1.0


def _factor(h: int, w: int) -> int:
    return max(1, 64 // max(h, w, 1))


def _grid(res: RelevanceResult, assets: Assets) -> tuple[tuple[Column, ...], tuple[GridRow, ...]]:
    ran = [m for m in res.methods if not m.skipped]
    columns, scales = [], {}
    for m in ran:
        lo, hi = _scale(res.maps[m.key], m.signed)
        scales[m.key] = (lo, hi)
        columns.append(Column(m.key, m.title, m.signed, f"±{hi:.2g}" if m.signed else f"0 … {hi:.2g}"))
    rows = []
    names = res.class_names
    palette = assets.palette
    for i in range(len(res.targets)):
        target = int(res.targets[i])
        true = int(res.labels[i]) if res.labels is not None else None
        pred = int(res.predictions[i])
        cells: list[ImageRef | None] = []
        input_image = None
        f = 1
        if res.kind == "image":
            shown = res.inputs[i]
            f = _factor(*shown.shape[-2:])
            input_image = assets.png(f"input-{i}", images.to_rgb(shown),
                                     f"input {i}: {_name(names, true if true is not None else pred)}")
            for m in ran:
                lo, hi = scales[m.key]
                rgb = images.thumbnail(images.colourize(res.maps[m.key][i], palette.diverging if m.signed else palette.heat,
                                                        lo, hi))
                cells.append(assets.png(f"{m.key}-{i}", rgb, f"{m.title} for input {i}"))
        rows.append(GridRow(_name(names, target), _name(names, true) if true is not None else None,
                            _name(names, pred), None if true is None else true == pred, input_image, tuple(cells), f))
    return tuple(columns), tuple(rows)


def _token_rows(res: RelevanceResult, assets: Assets) -> tuple[TokenRow, ...]:
    """Each sample's words on the diverging scale (one scale per method, shared by all rows)."""
    ran = [m for m in res.methods if not m.skipped]
    scales = {m.key: _scale(res.maps[m.key], True)[1] for m in ran}
    rows = []
    for i, sample in enumerate(res.words):
        lines = []
        for m in ran:
            values = np.asarray(res.maps[m.key][i], dtype=np.float64)
            rgb = images.colourize(values[None, :], assets.palette.diverging, -scales[m.key], scales[m.key])[0]
            lines.append((m.title, tuple(
                Token(w, "#" + "".join(f"{int(c):02x}" for c in rgb[j]), abs(float(values[j])) > 0.6 * scales[m.key],
                      fmt_float(float(values[j]), 3))
                for j, w in enumerate(sample))))
        true = int(res.labels[i]) if res.labels is not None else None
        pred = int(res.predictions[i])
        rows.append(TokenRow(_name(res.class_names, true) if true is not None else None,
                             _name(res.class_names, pred), None if true is None else true == pred, tuple(lines)))
    return tuple(rows)


def _name(names: tuple[str, ...], idx: int | None) -> str:
    if idx is None:
        return "–"
    return names[idx] if 0 <= idx < len(names) else str(idx)


def _legend(assets: Assets, signed: bool, name: str) -> ImageRef:
    """The colour scale of signed maps (the palette's diverging map) or unsigned ones (its heat map)."""
    low = -1 if signed else 0
    ramp = np.tile(np.linspace(low, 1, 160)[None, :], (10, 1))
    cmap = assets.palette.diverging if signed else assets.palette.heat
    return assets.png(name, images.colourize(ramp, cmap, low, 1),
                      "colour scale: negative blue, zero white, positive red" if signed
                      else "colour scale: zero dark, high bright")


def _vector_chart(res: RelevanceResult, assets: Assets) -> ChartRef | None:
    """Feature relevance for non-image inputs: mean relevance per feature and method, as bars."""
    import altair as alt

    ran = [m for m in res.methods if not m.skipped]
    values = []
    for m in ran:
        mp = res.maps[m.key].reshape(len(res.targets), -1)
        scale = float(np.abs(mp).max()) or 1.0
        mean = mp.mean(0) / scale
        names = res.feature_names or tuple(f"x{j}" for j in range(mp.shape[1]))
        for j, v in enumerate(mean[:64]):
            values.append({"method": m.title, "feature": names[j] if j < len(names) else f"x{j}", "relevance": float(v),
                           "order": j})
    if not values:
        return None
    chart = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("feature:N", sort=alt.SortField("order"), title=None),
        y=alt.Y("relevance:Q", title="mean relevance (scaled per method)"),
        color=alt.condition("datum.relevance >= 0", alt.value(assets.palette.positive), alt.value(assets.palette.negative)),
        tooltip=["method:N", "feature:N", alt.Tooltip("relevance:Q", format=".3f")],
    ).properties(width=150, height=110).facet(facet=alt.Facet("method:N", title=None, sort=[m.title for m in ran]),
                                                columns=4)
    return assets.chart(chart, "Mean relevance per feature and method",
                        f"Mean over the {len(res.targets)} explained samples, divided by each method's largest |value|.")


def _curves_chart(res: RelevanceResult, titles: dict[str, str], assets: Assets) -> ChartRef | None:
    import altair as alt

    p = res.perturbation
    if p is None:
        return None
    values = []
    for c in p.curves:
        for order, curve in (("MoRF", c.morf), ("LeRF", c.lerf)):
            values += [{"method": titles[c.method], "order": order, "step": k, "drop": float(v)} for k, v in enumerate(curve)]
    for order in ("MoRF", "LeRF"):
        values += [{"method": "random", "order": order, "step": k, "drop": float(v)} for k, v in enumerate(p.random)]
    chart = alt.Chart(alt.Data(values=values)).mark_line(point=False).encode(
        x=alt.X("step:Q", title="regions removed" if p.per_step == 1 else f"steps ({p.per_step} regions removed per step)"),
        y=alt.Y("drop:Q", title="mean score drop f(x₀) − f(xₖ)"),
        color=alt.Color("method:N", title="method", scale=alt.Scale(scheme="tableau20")),
        strokeDash=alt.condition("datum.method == 'random'", alt.value([4, 3]), alt.value([1, 0])),
        tooltip=["method:N", "order:N", "step:Q", alt.Tooltip("drop:Q", format=".3f")],
    ).properties(width=300, height=220).facet(column=alt.Column("order:N", title=None, sort=["MoRF", "LeRF"]))
    return assets.chart(chart, "Region perturbation curves (MoRF and LeRF)",
                        "MoRF: most relevant regions first (a steep, high curve is good). LeRF: least relevant first "
                        "(a flat, low curve is good). Dashed: random order.")


def _randomisation_chart(res: RelevanceResult, titles: dict[str, str], assets: Assets) -> ChartRef | None:
    import altair as alt

    if not res.randomisation:
        return None
    values = []
    for r in res.randomisation:
        for k, s, se in zip(r.randomised, r.similarity, r.similarity_se, strict=True):
            if math.isfinite(float(s)):
                values.append({"method": titles[r.method], "layers": int(k), "similarity": float(s), "se": float(se)})
    if not values:
        return None
    chart = alt.Chart(alt.Data(values=values)).mark_line(point=True).encode(
        x=alt.X("layers:Q", title="top layers randomised (cascading)"),
        y=alt.Y("similarity:Q", title="rank correlation with original map", scale=alt.Scale(domain=[-0.2, 1])),
        color=alt.Color("method:N", title="method", scale=alt.Scale(scheme="tableau20")),
        tooltip=["method:N", "layers:Q", alt.Tooltip("similarity:Q", format=".3f"), alt.Tooltip("se:Q", format=".3f")],
    ).properties(width=360, height=220)
    return assets.chart(chart, "Model-parameter randomisation check",
                        "Spearman rank correlation of |map| before and after re-initialising the top layers "
                        f"({len(res.layers)} layers with parameters). A method that explains the model should lose "
                        "similarity quickly; one that stays high shows the input, not the model (Adebayo et al. 2018).")


def _conservation_chart(res: RelevanceResult, titles: dict[str, str], assets: Assets) -> ChartRef | None:
    import altair as alt

    if not res.conservation:
        return None
    values: list[dict[str, Any]] = [{"method": titles[c.method], "score": float(s), "sum": float(r)}
              for c in res.conservation for s, r in zip(c.scores, c.sums, strict=True)]
    lo = min(min(v["score"], v["sum"]) for v in values)
    hi = max(max(v["score"], v["sum"]) for v in values)
    points = alt.Chart(alt.Data(values=values)).mark_point(filled=True, opacity=0.7).encode(
        x=alt.X("score:Q", title="explained score (logit)"), y=alt.Y("sum:Q", title="sum of input relevance"),
        color=alt.Color("method:N", title="composite"),
        tooltip=["method:N", alt.Tooltip("score:Q", format=".3f"), alt.Tooltip("sum:Q", format=".3f")])
    diagonal = alt.Chart(alt.Data(values=[{"score": lo, "sum": lo}, {"score": hi, "sum": hi}])).mark_line(
        color=assets.palette.neutral, strokeDash=[4, 3]).encode(x="score:Q", y="sum:Q")
    text = ("Each point is one sample. On the dashed line the relevance sums exactly to the score; below "
            "it, biases (and BatchNorm shifts folded into them) absorbed relevance.")
    if any(c.method == "lrp_epsilon" for c in res.conservation):
        text += (" AttnLRP's softmax rule is not conservative by design: its Taylor bias term s·ΣR absorbs "
                 "relevance, so its points leave the line further than CP-LRP's (attention held constant), which "
                 "loses only what the biases take.")
    return assets.chart((diagonal + points).properties(width=320, height=240), "LRP conservation", text)


def _mask_chart(res: RelevanceResult, titles: dict[str, str], assets: Assets) -> ChartRef | None:
    import altair as alt

    if not res.mask_share or res.mask_area is None:
        return None
    values = [{"method": titles[m.method], "share": m.share, "se": m.se} for m in res.mask_share if math.isfinite(m.share)]
    bars = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        y=alt.Y("method:N", sort="-x", title=None), x=alt.X("share:Q", title="share of positive relevance inside the object",
                                                          scale=alt.Scale(domain=[0, 1])),
        tooltip=["method:N", alt.Tooltip("share:Q", format=".1%"), alt.Tooltip("se:Q", format=".1%")])
    area = alt.Chart(alt.Data(values=[{"area": res.mask_area}])).mark_rule(color=assets.palette.neutral, strokeDash=[4, 3]).encode(x="area:Q")
    return assets.chart((bars + area).properties(width=360, height=18 * len(values) + 20), "Relevance inside the object mask",
                        f"Dashed: the object's share of the image ({res.mask_area:.0%}), what a random map would get.")


def _runtime_chart(res: RelevanceResult, assets: Assets) -> ChartRef | None:
    import altair as alt

    values = [{"method": m.title, "ms": m.seconds_per_sample * 1000} for m in res.methods
              if m.seconds_per_sample is not None and not m.skipped]
    if not values:
        return None
    chart = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        y=alt.Y("method:N", sort="x", title=None), x=alt.X("ms:Q", title="milliseconds per sample"),
        tooltip=["method:N", alt.Tooltip("ms:Q", format=".2f")]).properties(width=360, height=18 * len(values) + 20)
    return assets.chart(chart, "Runtime per method", "Wall-clock time per explained sample on this machine (batched).")


def _table(res: RelevanceResult) -> tuple[TableRow, ...]:
    p = res.perturbation
    curves = {c.method: c for c in p.curves} if p else {}
    rand = {r.method: r for r in res.randomisation}
    share = {m.method: m for m in res.mask_share}
    rows = []
    for m in res.methods:
        if m.skipped:
            continue
        c = curves.get(m.key)
        r = rand.get(m.key)
        s = share.get(m.key)
        rows.append(TableRow(
            m.key, m.title,
            _pm(c.morf_aopc, c.morf_se) if c else "–", _pm(c.lerf_aopc, c.lerf_se) if c else "–",
            f"{c.morf_aopc - c.lerf_aopc:.3f}" if c else "–",
            fmt_float(float(r.similarity[-1]), 2) if r is not None and len(r.similarity) else "–",
            f"{s.share:.0%} ± {s.se:.0%}" if s is not None and math.isfinite(s.share) else "–",
            f"{m.seconds_per_sample * 1000:.2f} ms" if m.seconds_per_sample is not None else "–"))
    return tuple(rows)


def _card(m: MethodResult) -> Card:
    t = RECORDS[m.key]
    return Card(m.key, m.title, m.signed, m.settings, t.shows, t.weaknesses, t.reference, m.notes, m.skipped,
                f"{m.seconds_per_sample * 1000:.2f} ms per sample" if m.seconds_per_sample is not None else "")


def _perturbation_text(res: RelevanceResult) -> tuple[str, str]:
    p = res.perturbation
    if p is None:
        return "", ""
    what = {"uniform": "uniform noise over the data's value range", "zero": "zeros (the data mean)",
            "blur": "a 5×5 box-blurred copy"}.get(p.replacement, p.replacement)
    if p.replacement.startswith("token:"):
        what = f"the padding token (id {p.replacement[6:]})"
    region = (f"{p.region}×{p.region} regions" if res.kind == "image" else "single tokens (token deletion)"
              if res.kind == "tokens" else "single features")
    per = "one region per step" if p.per_step == 1 else f"{p.per_step} regions per step"
    unit = {"image": "image", "tokens": "tokens"}.get(res.kind, "input")
    share = f"{p.steps * p.per_step / max(p.regions_total, 1):.0%} of the {unit}"
    text = (f"{region} (of {p.regions_total}), {p.steps} steps ({per}, {share} removed by the last), replaced by {what}; "
            f"{p.samples} test samples; AOPC = mean over steps 0…{p.steps} of f(x₀) − f(xₖ), ± standard error over samples")
    return text, _pm(p.random_aopc, p.random_se)


def relevance_markdown(insp: Inspection) -> str:
    """Key numbers for summary.md: the best and worst MoRF AOPC against the random order."""
    res = insp.get("relevance", RelevanceResult)
    if res is None or res.perturbation is None or not res.perturbation.curves:
        return ""
    p = res.perturbation
    titles = {m.key: m.title for m in res.methods}
    ranked = sorted(p.curves, key=lambda c: -c.morf_aopc)
    best, worst = ranked[0], ranked[-1]
    return (f"- Relevance: highest AOPC (MoRF) {titles[best.method]} {_pm(best.morf_aopc, best.morf_se)}, lowest "
            f"{titles[worst.method]} {_pm(worst.morf_aopc, worst.morf_se)}, random order "
            f"{_pm(p.random_aopc, p.random_se)} ({p.region}×{p.region} regions, {p.steps} steps of {p.per_step}, {p.replacement} "
            f"replacement, {p.samples} samples)\n")


@page("relevance", title="Relevance", analyses=("relevance",), order=30, markdown=relevance_markdown)
def relevance_page(insp: Inspection, assets: Assets) -> RelevancePage:
    res = insp.require("relevance", RelevanceResult)
    record = insp.record("relevance")
    records = tuple(r for r in (record,) if r is not None)
    titles = {m.key: m.title for m in res.methods}
    columns, rows = _grid(res, assets) if res.kind == "image" else ((), ())
    signed_legend = (_legend(assets, True, "legend-signed") if any(c.signed for c in columns) or res.kind == "tokens"
                     else None)
    unsigned_legend = _legend(assets, False, "legend-unsigned") if any(not c.signed for c in columns) else None
    settings, random_aopc = _perturbation_text(res)
    return RelevancePage(
        records=records, notes=res.notes, kind=res.kind, columns=columns, rows=rows,
        legend_signed=signed_legend, legend_unsigned=unsigned_legend,
        vector_chart=_vector_chart(res, assets) if res.kind == "vector" else None,
        perturbation_settings=settings, random_aopc=random_aopc, table=_table(res),
        curves_chart=_curves_chart(res, titles, assets), randomisation_chart=_randomisation_chart(res, titles, assets),
        conservation_chart=_conservation_chart(res, titles, assets), mask_chart=_mask_chart(res, titles, assets),
        runtime_chart=_runtime_chart(res, assets),
        cards=tuple(_card(m) for m in res.methods if not m.skipped),
        skipped=tuple(_card(m) for m in res.methods if m.skipped),
        mask_area=f"{res.mask_area:.0%}" if res.mask_area is not None else "",
        token_rows=_token_rows(res, assets) if res.kind == "tokens" else (),
    )
