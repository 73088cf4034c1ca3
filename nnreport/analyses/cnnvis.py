"""Registers the CNNVis analysis (types: nnreport.cnnvis.results; work: nnreport.cnnvis.overview)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.cnnvis.results import CNNVisConfig, CNNVisResult

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("cnnvis", title="CNNVis overview", config=CNNVisConfig, result=CNNVisResult, order=60)
def cnnvis(ctx: Context, config: CNNVisConfig) -> CNNVisResult:
    """Cluster layers and neurons by class response; representative patches; bundled cluster edges."""
    from nnreport.cnnvis.overview import run_cnnvis

    return run_cnnvis(ctx, config)
