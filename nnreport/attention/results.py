"""Configs and results of the attention and sequence_units analyses: frozen, torch-free dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

InputKind = Literal["image", "tokens", "sequence"]


@dataclass(frozen=True)
class AttentionConfig:
    # Sample inputs shown (the first test samples, else the example inputs).
    samples: int = 4
    # Attention layers with more keys than this are left out (their maps would be too large to keep).
    max_tokens: int = 256

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"samples": 2}, "thorough": {"samples": 8}}


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


@dataclass(frozen=True)
class AttentionLayer:
    """One attention call: its probabilities for every shown sample and head."""

    name: str           # "attention 1", in call order
    heads: int
    maps: np.ndarray    # float32 (samples, heads, queries, keys); rows sum to 1


@dataclass(frozen=True)
class AttentionResult:
    kind: InputKind
    inputs: np.ndarray                       # images as shown (samples, C, H, W) in [0, 1]; empty otherwise
    words: tuple[tuple[str, ...], ...]       # token labels per sample (words, ids or positions)
    grid: tuple[int, int] | None             # patch grid (rows, columns) of an image's tokens
    prefix: int                              # leading tokens that are not patches (e.g. a class token)
    layers: tuple[AttentionLayer, ...]
    rollout: np.ndarray | None               # (samples, queries, keys): Ã_L ··· Ã_1, Ã = ½(mean over heads) + ½I
    rollout_scores: np.ndarray | None        # (samples, keys): the row the output reads (class token, else mean)
    lrp: np.ndarray                          # AttnLRP relevance per input position: (samples, H, W) or (samples, T)
    targets: np.ndarray
    predictions: np.ndarray
    class_names: tuple[str, ...]
    agreement: np.ndarray | None             # per sample: Spearman rank correlation of rollout and |LRP| per token
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SequenceLayer:
    """One sequence layer's units and the token windows that excite each most."""

    path: str
    type: str
    units: int
    shown: int                  # the first `shown` units
    values: np.ndarray          # (shown, k) activation at the window's centre, best first
    samples: np.ndarray         # (shown, k) index into the training inputs
    positions: np.ndarray       # (shown, k) the centre token's position
    windows: np.ndarray         # (shown, k, 2·half + 1) token ids (or positions for float sequences); −1 off the ends
    labels: np.ndarray | None   # (shown, k) labels of those inputs


@dataclass(frozen=True)
class SequenceUnitsResult:
    layers: tuple[SequenceLayer, ...]
    kind: Literal["tokens", "sequence"]
    vocab: tuple[str, ...]      # id -> word ("" entries never used); empty: ids are shown
    examples_seen: int
    half: int                   # tokens either side of the centre
