"""index.html: the model card, the layer table and how each analysis went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nnreport.analyses.summary import SummaryResult
from nnreport.site.pages import page

if TYPE_CHECKING:
    from nnreport.inspection import AnalysisRecord, Inspection, ModelInfo, Provenance
    from nnreport.site.assets import Assets, ChartRef


@dataclass(frozen=True)
class IndexPage:
    model: ModelInfo
    provenance: Provenance
    records: tuple[AnalysisRecord, ...]
    summary: SummaryResult | None
    summary_record: AnalysisRecord | None
    charts: tuple[ChartRef, ...]
    show_timings: bool


def _layer_chart(summary: SummaryResult, assets: Assets) -> ChartRef | None:
    import altair as alt

    rows = [{"layer": f"{r.path} ({r.type})", "parameters": r.params, "mult-adds": r.mult_adds, "order": i}
            for i, r in enumerate(summary.rows) if r.leaf and (r.params or r.mult_adds) and r.call == 0]
    if not rows:
        return None
    data = alt.Data(values=rows)
    base = alt.Chart(data).encode(y=alt.Y("layer:N", sort=alt.SortField("order"), title=None))
    bars = base.mark_bar().encode(x=alt.X("parameters:Q"), tooltip=["layer:N", "parameters:Q", "mult-adds:Q"])
    macs = base.mark_bar(color=assets.palette.accent).encode(x=alt.X("mult-adds:Q"), tooltip=["layer:N", "parameters:Q", "mult-adds:Q"])
    height = min(18 * len(rows), 600)
    chart = alt.hconcat(bars.properties(width=260, height=height, title="Parameters per layer"),
                        macs.properties(width=260, height=height, title="Mult-adds per layer (one sample)"))
    return assets.chart(chart, label="Parameters and mult-adds of each layer",
                        caption="Parameters and multiply-accumulates per leaf layer, for one input sample.")


def _accuracy_chart(summary: SummaryResult, model: ModelInfo, assets: Assets) -> ChartRef | None:
    import math

    import altair as alt

    if summary.per_class_accuracy is None:
        return None
    names = model.class_names or tuple(str(i) for i in range(len(summary.per_class_accuracy)))
    rows = [{"class": names[i] if i < len(names) else str(i), "accuracy": a, "order": i}
            for i, a in enumerate(summary.per_class_accuracy) if not math.isnan(a)]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("class:N", sort=alt.SortField("order")), y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
        tooltip=["class:N", alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(width=max(160, 28 * len(rows)), height=160, title="Test accuracy per class")
    return assets.chart(chart, label="Test accuracy per class", caption=f"On {summary.eval_samples} test samples.")


@page("index", title="Overview", analyses=(), order=0)
def index_page(insp: Inspection, assets: Assets) -> IndexPage:
    summary = insp.get("summary", SummaryResult)
    charts = []
    if summary is not None:
        charts = [c for c in (_layer_chart(summary, assets), _accuracy_chart(summary, insp.manifest.model, assets)) if c]
    return IndexPage(
        model=insp.manifest.model,
        provenance=insp.manifest.provenance,
        records=insp.manifest.records,
        summary=summary,
        summary_record=insp.record("summary"),
        charts=tuple(charts),
        show_timings=any(r.seconds is not None for r in insp.manifest.records),
    )
