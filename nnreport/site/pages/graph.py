"""graph.html: the interactive dataflow graph (precomputed views, switched by a small inline script)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnreport.analyses.graph import GraphResult
from nnreport.graph.drawing import compact, shape_label
from nnreport.site.pages import page

if TYPE_CHECKING:
    from nnreport.graph.ir import Graph, View
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets


@dataclass(frozen=True)
class LegendEntry:
    hue: int
    label: str


@dataclass(frozen=True)
class GraphPage:
    result: GraphResult
    views: tuple[View, ...]
    # id -> facts for the hover card, search and navigation (serialised with tojson: escaped).
    info: dict[str, dict[str, Any]]
    legend: tuple[LegendEntry, ...]
    capture: str
    note: str
    ops: int
    edges: int
    groups: int
    records: tuple[AnalysisRecord, ...]


def _info(graph: Graph, result: GraphResult) -> dict[str, dict[str, Any]]:
    views = {v.key for v in result.views}
    out: dict[str, dict[str, Any]] = {}
    for g in graph.groups:
        out[g.id] = {
            "t": "group", "label": g.name, "type": g.type, "module": g.module, "parent": g.parent,
            "params": compact(g.params), "macs": compact(g.mult_adds), "ops": g.ops, "key": g.key,
            "view": g.id in views, "series": g.series,
        }
    for n in graph.nodes:
        out[n.id] = {
            "t": n.kind, "label": n.label, "op": n.op, "module": n.module, "type": n.module_type, "parent": n.group,
            "shapes": [shape_label(s, graph.batch) for s in n.shapes], "dtypes": list(n.dtypes),
            "params": compact(n.params), "param_names": list(n.param_names[:8]), "macs": compact(n.mult_adds),
            "source": n.source, "aux": list(n.aux),
        }
    return out


def _legend(graph: Graph, views: tuple[View, ...]) -> tuple[LegendEntry, ...]:
    hues: dict[int, set[str]] = {}
    by_id = {g.id: g for g in graph.groups}
    for v in views:
        for b in v.boxes:
            if b.hue >= 0 and b.id in by_id:
                g = by_id[b.id]
                hues.setdefault(b.hue, set()).add(g.type if g.type != "series" else g.name.split(" ×")[0] + " series")
    return tuple(LegendEntry(h, ", ".join(sorted(names))[:60]) for h, names in sorted(hues.items()))


def _markdown(insp: Inspection) -> str:
    result = insp.get("graph", GraphResult)
    if result is None:
        return ""
    g = result.graph
    ops = sum(1 for n in g.nodes if n.kind == "op")
    how = "torch.export" if g.capture == "export" else "the eager recorder (torch.export failed)"
    return f"**Graph**: {ops} ops, {len(g.edges)} edges, {len(g.groups) - 1} module-call groups; captured with {how}."


@page("graph", title="Graph", analyses=("graph",), order=10, markdown=_markdown)
def graph_page(insp: Inspection, assets: Assets) -> GraphPage:
    result = insp.require("graph", GraphResult)
    graph = result.graph
    record = insp.record("graph")
    return GraphPage(
        result=result, views=result.views, info=_info(graph, result), legend=_legend(graph, result.views),
        capture="torch.export" if graph.capture == "export" else "the eager recorder", note=graph.capture_note,
        ops=sum(1 for n in graph.nodes if n.kind == "op"), edges=len(graph.edges), groups=len(graph.groups) - 1,
        records=(record,) if record is not None else (),
    )
