"""The evaluation's settings (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class EvaluationConfig:
    # Evaluate on at most this many test samples, streamed in batches.
    max_samples: int = 10_000
    batch_size: int = 256
    # Reliability diagram: equal-width bins of the top-label confidence.
    bins: int = 15
    # Top-k accuracy is reported when the model has more than k classes.
    top_k: int = 5
    # Ranked most-confused pairs kept (the page shows them instead of the grid above 30 classes).
    confused_pairs: int = 25
    # One-vs-rest ROC / PR curves for at most this many classes (AUC and AP are computed for all).
    curve_classes: int = 20
    curve_points: int = 200
    # Gallery: this many most-confident mistakes and as many least-confident correct predictions.
    gallery: int = 8
    # LRP maps for the gallery (shown unless the relevance analysis was skipped).
    maps: bool = True
    # Embedding: this many test samples (0: off); t-SNE after PCA up to `tsne_max` points, PCA alone above.
    embedding_samples: int = 1000
    tsne_max: int = 5000
    perplexity: float = 30.0
    thumbnail: int = 32
    # Regression plots show at most this many points.
    regression_points: int = 2000

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"embedding_samples": 300, "gallery": 6, "curve_points": 100},
        "thorough": {"embedding_samples": 5000, "gallery": 12, "curve_points": 400},
    }
