"""Attention maps: per-head and head-averaged attention for sample inputs, attention rollout across layers
and the AttnLRP relevance beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nnreport.analyses import analysis
from nnreport.attention.results import AttentionResult

if TYPE_CHECKING:
    from nnreport.context import Context


@dataclass(frozen=True)
class AttentionConfig:
    # Sample inputs shown (the first test samples, else the example inputs).
    samples: int = 4
    # Attention layers with more keys than this are left out (their maps would be too large to keep).
    max_tokens: int = 256

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"samples": 2}, "thorough": {"samples": 8}}


@analysis("attention", title="Attention maps", config=AttentionConfig, result=AttentionResult, order=32)
def attention(ctx: Context, config: AttentionConfig) -> AttentionResult:
    """Per-head attention maps, attention rollout and AttnLRP for a few sample inputs."""
    from nnreport.attention.compute import run

    return run(ctx, config)
