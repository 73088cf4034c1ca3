"""The evaluation's results: frozen, torch-free dataclasses of plain values and numpy arrays.

Everything a script or `nnreport compare` reads (the confusion matrix, ECE, the per-class table, the
curves and the reliability bins) is a plain value or tuple, so it lands in evaluation.json as JSON lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Task = Literal["classification", "regression"]
# How the model's outputs became probabilities: softmax of logits, the outputs themselves (already
# rows of probabilities), exp of log-probabilities, or the sigmoid of one binary logit.
Transform = Literal["softmax", "identity", "exp", "sigmoid", "binary"]
InputKind = Literal["image", "tokens", "features", "other"]


@dataclass(frozen=True)
class ClassRow:
    """One class of the per-class table; AUC / AP are None where the class never occurs in the test split."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    auc: float | None = None
    average_precision: float | None = None


@dataclass(frozen=True)
class Average:
    """Macro (unweighted mean over classes) or weighted (by support) precision, recall and F1."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Curve:
    """One one-vs-rest curve: ROC (x = false positive rate, y = true positive rate) or precision-recall
    (x = recall, y = precision); points thinned evenly to at most `EvaluationConfig.curve_points`."""

    cls: int
    x: tuple[float, ...]
    y: tuple[float, ...]
    area: float


@dataclass(frozen=True)
class Calibration:
    """Reliability over equal-width bins of the top-label confidence; empty bins have None."""

    transform: Transform
    transform_text: str
    edges: tuple[float, ...]
    accuracy: tuple[float | None, ...]
    confidence: tuple[float | None, ...]
    counts: tuple[int, ...]
    correct: tuple[int, ...]
    ece: float
    mce: float


@dataclass(frozen=True)
class ConfusedPair:
    true: int
    predicted: int
    count: int
    share: float  # of the true class's test samples


@dataclass(frozen=True)
class GallerySample:
    """A test sample shown in the gallery: a confident mistake or an unsure correct prediction."""

    index: int
    group: Literal["mistake", "unsure"]
    label: int
    prediction: int
    confidence: float
    text: str = ""  # token ids, for token inputs


@dataclass(frozen=True)
class Gallery:
    kind: InputKind
    samples: tuple[GallerySample, ...]
    images: np.ndarray           # (n, C, H, W) in [0, 1], denormalised; empty unless kind == "image"
    features: np.ndarray         # (n, F) raw feature rows; empty unless kind == "features"
    feature_names: tuple[str, ...]
    maps: np.ndarray | None      # LRP for the predicted class: (n, H, W) channels summed, or (n, F)
    maps_method: str = ""
    maps_note: str = ""          # why there are no maps


@dataclass(frozen=True)
class Embedding:
    """Penultimate-layer features (the input of the last Linear; without one, of the last convolution,
    averaged over positions) projected to 2-D."""

    layer: str
    dimensions: int
    method: str
    indices: np.ndarray          # test-split indices of the points
    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    confidence: np.ndarray
    thumbnails: np.ndarray       # (n, h, w, 3) uint8, or empty for non-image inputs
    kind: str = "linear"         # "linear", or "conv": the last convolution's input averaged over positions


@dataclass(frozen=True)
class Regression:
    """One value per sample with float labels: errors and a thinned set of points for the plots."""

    mae: float
    rmse: float
    r2: float | None
    true: np.ndarray
    predicted: np.ndarray


@dataclass(frozen=True)
class EvaluationResult:
    task: Task
    samples: int                               # test samples evaluated
    class_names: tuple[str, ...] = ()
    accuracy: float | None = None
    top_k: int | None = None
    top_k_accuracy: float | None = None
    per_class: tuple[ClassRow, ...] = ()
    macro: Average | None = None
    weighted: Average | None = None
    confusion: tuple[tuple[int, ...], ...] = ()   # rows: true class, columns: predicted class
    most_confused: tuple[ConfusedPair, ...] = ()
    roc: tuple[Curve, ...] = ()
    pr: tuple[Curve, ...] = ()
    curves_note: str = ""
    calibration: Calibration | None = None
    ece: float | None = None
    gallery: Gallery | None = None
    embedding: Embedding | None = None
    embedding_note: str = ""
    train_counts: tuple[int, ...] = ()
    test_counts: tuple[int, ...] = ()
    regression: Regression | None = None
    notes: tuple[str, ...] = ()

    @property
    def macro_f1(self) -> float | None:
        return self.macro.f1 if self.macro is not None else None
