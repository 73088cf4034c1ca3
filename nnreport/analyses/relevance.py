"""Registers the relevance analysis (types: nnreport.relevance.results; work: nnreport.relevance.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.relevance.results import RelevanceConfig, RelevanceResult

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("relevance", title="Relevance heatmaps", config=RelevanceConfig, result=RelevanceResult, order=30)
def relevance(ctx: Context, config: RelevanceConfig) -> RelevanceResult:
    """Relevance maps of many methods side by side, scored by region perturbation and sanity checks."""
    from nnreport.relevance.analysis import run

    return run(ctx, config)
