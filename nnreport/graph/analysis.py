"""The graph analysis's work: capture the dataflow graph, then lay out its first expansion states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnreport.graph.ir import Graph
from nnreport.graph.packed import pack
from nnreport.graph.results import GraphConfig, GraphResult

if TYPE_CHECKING:
    from nnreport.context import Context


def run(ctx: Context, config: GraphConfig) -> GraphResult:
    """Capture the model's graph and lay out the overview plus up to max_views - 1 opened groups."""
    from nnreport.graph import capture_graph
    from nnreport.graph.drawing import all_groups, draw_view

    rep = ctx.stage()
    rep.step(0, 3, "capturing the graph")
    graph = capture_graph(ctx.model, ctx.example_inputs, config.capture)
    openable = [g.id for g in sorted(graph.groups, key=_depth_key(graph)) if g.id]
    chosen, rest = openable[: max(config.max_views - 1, 0)], openable[max(config.max_views - 1, 0):]
    rep.step(1, 3, f"laying out {len(chosen) + 1} views")
    cache: dict = {}  # group layouts shared between views: opening a group re-lays out its ancestors only
    views = [draw_view(graph, (), key="", restarts=config.restarts, cache=cache)]
    ops = sum(1 for n in graph.nodes if n.kind == "op")
    if len(graph.groups) > 1 and ops <= config.full_view_max_ops:
        views.append(draw_view(graph, all_groups(graph), key="*", restarts=config.restarts, cache=cache))
    for k, gid in enumerate(chosen):
        if sum(len(v.boxes) + len(v.edges) for v in views) > config.max_items:
            rest = chosen[k:] + rest
            break
        views.append(draw_view(graph, (gid,), key=gid, restarts=config.restarts, cache=cache))
    rep.step(3, 3, "done")
    return GraphResult(pack(graph), tuple(views), tuple(rest), config.restarts)


def _depth_key(graph: Graph) -> Any:
    parent = {g.id: g.parent for g in graph.groups}
    order = {g.id: i for i, g in enumerate(graph.groups)}

    def depth(gid: str) -> int:
        d = 0
        while gid:
            gid = parent.get(gid, "")
            d += 1
        return d

    return lambda g: (depth(g.id), order[g.id])
