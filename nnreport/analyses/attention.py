"""Attention maps: per-head and head-averaged attention for sample inputs, attention rollout across layers
and the AttnLRP relevance beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nnreport.analyses import analysis
from nnreport.attention.results import AttentionResult, SequenceUnitsResult

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


@dataclass(frozen=True)
class SequenceUnitsConfig:
    # Sequence layers shown (evenly chosen among those aligned with the input tokens), units per layer.
    max_layers: int = 4
    max_units: int = 12
    # Top windows per unit, their width in tokens (odd: the exciting token in the middle), from at most
    # `max_examples` training inputs.
    top_k: int = 5
    window: int = 7
    max_examples: int = 2000
    batch_size: int = 256

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"max_layers": 3, "max_units": 8, "top_k": 4, "max_examples": 400},
        "thorough": {"max_layers": 8, "max_units": 32, "top_k": 8, "max_examples": 10_000},
    }


@analysis("sequence_units", title="Sequence units", config=SequenceUnitsConfig, result=SequenceUnitsResult, order=33)
def sequence_units(ctx: Context, config: SequenceUnitsConfig) -> SequenceUnitsResult:
    """Per unit of each sequence layer, the token windows of the data that excite it most."""
    from nnreport.attention.units import run

    return run(ctx, config)
