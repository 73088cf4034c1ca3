"""The dataflow graph: captured ops and module calls, plus precomputed layouts of its expansion states."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from nnreport.analyses import analysis
from nnreport.graph.ir import Graph, View
from nnreport.graph.packed import PackedGraph, pack, unpack

if TYPE_CHECKING:
    from nnreport.context import Context


@dataclass(frozen=True)
class GraphConfig:
    # "auto": torch.export (non-strict) first, the eager recorder when export fails.
    capture: Literal["auto", "export", "eager"] = "auto"
    # Expansion states laid out in advance in Python (the overview, then one per group, outermost first).
    # The page lays out any other state itself, so only the overview is needed for the first draw.
    max_views: int = 1
    # Also lay out the fully expanded graph when it has at most this many ops.
    full_view_max_ops: int = 0
    # Stop adding views once they hold this many boxes and edges in all (keeps big models' pages light).
    max_items: int = 6000
    # Crossing-reduction restarts per compound level.
    restarts: int = 4

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"restarts": 2},
        "thorough": {"restarts": 8},
    }


@dataclass(frozen=True)
class GraphResult:
    packed: PackedGraph  # the graph, compact (repeated blocks once): `graph` unpacks it
    # views[0] is the overview (only the model's direct children); a view's key is the group it opens.
    views: tuple[View, ...]
    # Groups that can be opened but were not laid out in advance (over max_views).
    unlaid: tuple[str, ...] = ()
    restarts: int = 4  # crossing-reduction restarts the views were laid out with (the page uses the same)

    @cached_property
    def graph(self) -> Graph:
        return unpack(self.packed)


@analysis("graph", title="Graph", config=GraphConfig, result=GraphResult, order=10)
def graph_analysis(ctx: Context, config: GraphConfig) -> GraphResult:
    """The model's dataflow graph with collapsible module calls, laid out by nnreport's own layered layout."""
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
