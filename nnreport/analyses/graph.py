"""Registers the graph analysis (types: nnreport.graph.results; work: nnreport.graph.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.graph.results import GraphConfig, GraphResult

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("graph", title="Graph", config=GraphConfig, result=GraphResult, order=10)
def graph_analysis(ctx: Context, config: GraphConfig) -> GraphResult:
    """The model's dataflow graph with collapsible module calls, laid out by nnreport's own layered layout."""
    from nnreport.graph.analysis import run

    return run(ctx, config)
