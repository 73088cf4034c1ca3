"""Registers the landscape analysis (types: nnreport.landscape.results; work: nnreport.landscape.analysis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.landscape.results import LandscapeConfig, LandscapeResult

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("landscape", title="Loss landscape", config=LandscapeConfig, result=LandscapeResult, order=50)
def landscape(ctx: Context, config: LandscapeConfig) -> LandscapeResult:
    """Loss and accuracy around the trained weights along filter-normalised random directions."""
    from nnreport.landscape.analysis import run

    return run(ctx, config)
