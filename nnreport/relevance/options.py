"""Each attribution method's options as a frozen dataclass: a mistyped option is an error, never ignored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class NoOptions:
    """The method has no settings."""


@dataclass(frozen=True)
class IntegratedGradientsOptions:
    steps: int = 32
    baseline: float = 0.0


@dataclass(frozen=True)
class SmoothGradOptions:
    samples: int = 16
    noise: float = 0.15  # σ as a share of each sample's value range
    seed: int = 0


@dataclass(frozen=True)
class OcclusionOptions:
    patch: int = 4
    stride: int = 2
    baseline: float = 0.0


@dataclass(frozen=True)
class LRPOptions:
    composite: str = "epsilon_plus_flat"
    rule: str | None = None  # one rule on every layer instead of the composite
    epsilon: float = 1e-6
    gamma: float = 0.25
    # z^B bounds; None: the batch's min and max.
    low: float | None = None
    high: float | None = None
    # Attention layers: "attnlrp" (relevance through the softmax into queries and keys) or "cp" (the attention
    # probabilities held constant: relevance through the values only).
    attention: Literal["attnlrp", "cp"] = "attnlrp"


def make_options(kind: type[T], method: str, options: Mapping[str, Any]) -> T:
    """`kind(**options)`, with an error naming the method's options when one is unknown."""
    known = [f.name for f in fields(kind)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"{method} has no option {', '.join(map(repr, unknown))}; "
                        f"its options: {', '.join(known) or 'none'}")
    return kind(**options)
