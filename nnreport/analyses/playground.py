"""Registers the playground analysis (types: nnreport.playground.results; work: nnreport.playground.planes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.playground.results import PlaygroundConfig, PlaygroundResult

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("playground", title="Playground", config=PlaygroundConfig, result=PlaygroundResult, order=70)
def playground(ctx: Context, config: PlaygroundConfig) -> PlaygroundResult:
    """Each neuron's response over a 2-D input plane, with the decision map, per training snapshot."""
    from nnreport.playground.planes import run_playground

    return run_playground(ctx, config)
