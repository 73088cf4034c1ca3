"""graph.html: the interactive dataflow graph. Python's layout draws the first view; the page's own
copy of the layout (assets/nnreport-graph-layout.js) lays out whatever set of groups the reader opens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnreport.analyses.graph import GraphResult
from nnreport.resources import resource_dir
from nnreport.site.pages import page

if TYPE_CHECKING:
    from nnreport.graph.ir import Graph, View
    from nnreport.graph.packed import PackedGraph
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets

LAYOUT_SCRIPT = "nnreport-graph-layout.js"  # the layout (also run in the page's worker)
VIEWER_SCRIPT = "nnreport-graph.js"  # the page's interactions


@dataclass(frozen=True)
class LegendEntry:
    hue: int
    label: str


@dataclass(frozen=True)
class GraphPage:
    result: GraphResult
    view: View  # the first view, laid out in Python and drawn into the page as SVG
    # The compact graph and the layout settings for the page's script (serialised with tojson: escaped).
    data: dict[str, Any]
    scripts: tuple[str, ...]  # the layout module's and the viewer's asset paths
    script_text: str  # ... and their text, for the single-file report (inline: the CSP forbids data: scripts)
    legend: tuple[LegendEntry, ...]
    capture: str
    note: str
    ops: int
    edges: int
    groups: int
    records: tuple[AnalysisRecord, ...]


def page_data(packed: PackedGraph, restarts: int) -> dict[str, Any]:
    """What the page's layout module reads: the packed graph as plain lists, and the layout settings."""
    graph = {"strings": list(packed.strings), "shapes": [list(s) for s in packed.shapes],
             "records": [list(r) for r in packed.records], "types": [list(t) for t in packed.types],
             "root": packed.root, "batch": packed.batch}
    return {"graph": graph, "restarts": restarts}


def _legend(graph: Graph) -> tuple[LegendEntry, ...]:
    from nnreport.graph.drawing import hues

    hue = hues(graph)
    names: dict[int, set[str]] = {}
    for g in graph.groups:
        if g.id and g.hash in hue:
            names.setdefault(hue[g.hash], set()).add(g.type if g.type != "series" else g.name.split(" ×")[0] + " series")
    return tuple(LegendEntry(h, ", ".join(sorted(n))[:60]) for h, n in sorted(names.items()))


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
    names = (LAYOUT_SCRIPT, VIEWER_SCRIPT)
    texts = [(resource_dir("templates") / "static" / name).read_text(encoding="utf-8") for name in names]
    scripts = tuple(assets.add(name, text.encode("utf-8")) for name, text in zip(names, texts, strict=True))
    return GraphPage(
        result=result, view=result.views[0], data=page_data(result.packed, result.restarts), scripts=scripts,
        script_text="\n".join(texts), legend=_legend(graph),
        capture="torch.export" if graph.capture == "export" else "the eager recorder", note=graph.capture_note,
        ops=sum(1 for n in graph.nodes if n.kind == "op"), edges=len(graph.edges), groups=len(graph.groups) - 1,
        records=(record,) if record is not None else (),
    )
