"""Evaluation: per-class metrics, confusion, ROC/PR curves, calibration, a gallery of mistakes with LRP
maps, the penultimate-layer embedding and class balance. Torch-free at import; the work is in
nnreport.evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.evaluation.config import EvaluationConfig
from nnreport.evaluation.results import EvaluationResult

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("evaluation", title="Evaluation", config=EvaluationConfig, result=EvaluationResult, order=5)
def evaluation(ctx: Context, config: EvaluationConfig) -> EvaluationResult:
    """How good the model is on the test split, where it errs and how sure it is."""
    from nnreport.evaluation.analysis import run

    return run(ctx, config)
