"""Registers the attention and sequence_units analyses (types: nnreport.attention.results; work:
nnreport.attention.compute and nnreport.attention.units)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.attention.results import (
    AttentionConfig,
    AttentionResult,
    SequenceUnitsConfig,
    SequenceUnitsResult,
)

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("attention", title="Attention maps", config=AttentionConfig, result=AttentionResult, order=32)
def attention(ctx: Context, config: AttentionConfig) -> AttentionResult:
    """Per-head attention maps, attention rollout and AttnLRP for a few sample inputs."""
    from nnreport.attention.compute import run

    return run(ctx, config)


@analysis("sequence_units", title="Sequence units", config=SequenceUnitsConfig, result=SequenceUnitsResult, order=33)
def sequence_units(ctx: Context, config: SequenceUnitsConfig) -> SequenceUnitsResult:
    """Per unit of each sequence layer, the token windows of the data that excite it most."""
    from nnreport.attention.units import run

    return run(ctx, config)
