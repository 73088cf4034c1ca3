"""Results of the attention analysis: frozen, torch-free dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

InputKind = Literal["image", "tokens", "sequence"]


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
