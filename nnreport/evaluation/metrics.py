"""Classification and regression metrics on numpy arrays (torch-free): confusion, per-class scores,
one-vs-rest curves, reliability bins and the probability transform."""

from __future__ import annotations

import math

import numpy as np

from nnreport.evaluation.results import (
    Average,
    Calibration,
    ClassRow,
    ConfusedPair,
    Curve,
    Regression,
    Transform,
)

# Rows count as probabilities when every entry is >= -TOL and every row sums to 1 within TOL.
TOL = 1e-4
TRANSFORM_TEXT: dict[str, str] = {
    "softmax": "The outputs are logits (not rows of probabilities), so the confidences are their softmax.",
    "identity": "The outputs are already probabilities (non-negative rows summing to 1), so they are used as they are "
                "(no softmax on top).",
    "exp": "The outputs are log-probabilities (each row's log-sum-exp is 0), so the confidences are their exponential.",
    "sigmoid": "The model has one output, a logit for the positive class, so the confidence is its sigmoid.",
    "binary": "The model has one output in [0, 1], the positive class's probability, used as it is.",
}


def probability_transform(outputs: np.ndarray) -> Transform:
    """Which transform turns these outputs (N, C) into probabilities; decided once for all rows."""
    x = np.asarray(outputs, dtype=np.float64)
    if x.shape[1] == 1:
        return "binary" if bool(((x >= -TOL) & (x <= 1 + TOL)).all()) else "sigmoid"
    if bool((x >= -TOL).all()) and bool(np.allclose(x.sum(1), 1.0, rtol=0, atol=TOL)):
        return "identity"
    if bool((x <= TOL).all()) and bool(np.allclose(_logsumexp(x), 0.0, rtol=0, atol=TOL)):
        return "exp"
    return "softmax"


def to_probabilities(outputs: np.ndarray, transform: Transform) -> np.ndarray:
    """(N, C) probabilities (N, 2 for one binary output), in float64."""
    x = np.asarray(outputs, dtype=np.float64)
    if transform == "identity":
        return np.clip(x, 0.0, None)
    if transform == "exp":
        return np.exp(x)
    if transform in ("sigmoid", "binary"):
        p = 1.0 / (1.0 + np.exp(-x[:, 0])) if transform == "sigmoid" else np.clip(x[:, 0], 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)
    z = x - x.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(1, keepdims=True)))[:, 0]


def confusion(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class."""
    flat = np.asarray(labels, np.int64) * classes + np.asarray(predictions, np.int64)
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class(matrix: np.ndarray, names: tuple[str, ...]) -> tuple[list[ClassRow], Average, Average]:
    """Precision, recall, F1 and support per class, and their macro and weighted averages."""
    m = np.asarray(matrix, dtype=np.float64)
    tp, support, predicted = np.diag(m), m.sum(1), m.sum(0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    rows = [ClassRow(names[c], float(precision[c]), float(recall[c]), float(f1[c]), int(support[c]), int(predicted[c]))
            for c in range(len(m))]
    total = support.sum()
    w = support / total if total else np.zeros_like(support)
    macro = Average(float(precision.mean()), float(recall.mean()), float(f1.mean()))
    weighted = Average(float((precision * w).sum()), float((recall * w).sum()), float((f1 * w).sum()))
    return rows, macro, weighted


def most_confused(matrix: np.ndarray, limit: int) -> tuple[ConfusedPair, ...]:
    """Off-diagonal cells ranked by count (ties: by true, then predicted class)."""
    m = np.asarray(matrix)
    support = m.sum(1)
    cells = [(int(m[t, p]), t, p) for t, p in zip(*np.nonzero(m), strict=True) if t != p]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return tuple(ConfusedPair(t, p, n, n / int(support[t])) for n, t, p in cells[:limit])


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the k highest scores (ties count against)."""
    true_score = probs[np.arange(len(labels)), labels]
    higher = (probs > true_score[:, None]).sum(1)
    return float((higher < k).mean())


def thin(x: np.ndarray, y: np.ndarray, points: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """At most `points` of a curve's own points, evenly by index, first and last kept."""
    if len(x) > points:
        keep = np.unique(np.linspace(0, len(x) - 1, points).round().astype(np.int64))
        x, y = x[keep], y[keep]
    return tuple(round(float(v), 6) for v in x), tuple(round(float(v), 6) for v in y)


def curves(probs: np.ndarray, labels: np.ndarray, classes: list[int], points: int) -> tuple[
        tuple[Curve, ...], tuple[Curve, ...], dict[int, tuple[float | None, float | None]]]:
    """One-vs-rest ROC and PR curves for `classes`, and (AUC, AP) for every class with positives and negatives."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    roc, pr = [], []
    areas: dict[int, tuple[float | None, float | None]] = {}
    wanted = set(classes)
    for c in range(probs.shape[1]):
        positive = labels == c
        if not positive.any() or positive.all():
            areas[c] = (None, None)
            continue
        score = probs[:, c]
        auc, ap = float(roc_auc_score(positive, score)), float(average_precision_score(positive, score))
        areas[c] = (auc, ap)
        if c in wanted:
            fpr, tpr, _ = roc_curve(positive, score)
            precision, recall, _ = precision_recall_curve(positive, score)
            roc.append(Curve(c, *thin(fpr, tpr, points), auc))
            pr.append(Curve(c, *thin(recall[::-1], precision[::-1], points), ap))
    return tuple(roc), tuple(pr), areas


def calibration(probs: np.ndarray, labels: np.ndarray, transform: Transform, bins: int = 15) -> Calibration:
    """Reliability of the top-label confidence over `bins` equal-width bins of [0, 1]:
    ECE = Σ_b |acc_b − conf_b| · n_b / N, MCE = max_b |acc_b − conf_b| over non-empty bins."""
    conf = probs.max(1)
    hit = probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bins are (lo, hi], the first one [0, hi]: a confidence of exactly 1 falls in the last bin.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    correct = np.bincount(which, weights=hit.astype(np.float64), minlength=bins)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    acc = [correct[b] / counts[b] if counts[b] else None for b in range(bins)]
    mean_conf = [conf_sum[b] / counts[b] if counts[b] else None for b in range(bins)]
    gaps = [abs(a - c) for a, c in zip(acc, mean_conf, strict=True) if a is not None and c is not None]
    weights = [int(n) for n in counts if n]
    n = max(len(labels), 1)
    ece = float(sum(g * w for g, w in zip(gaps, weights, strict=True)) / n)
    return Calibration(
        transform=transform, transform_text=TRANSFORM_TEXT[transform], edges=tuple(float(e) for e in edges),
        accuracy=tuple(None if a is None else float(a) for a in acc),
        confidence=tuple(None if c is None else float(c) for c in mean_conf),
        counts=tuple(int(c) for c in counts), correct=tuple(int(round(c)) for c in correct),
        ece=ece, mce=float(max(gaps, default=0.0)))


def regression(true: np.ndarray, predicted: np.ndarray, points: int) -> Regression:
    """MAE, RMSE and R² (None when the labels are constant), with at most `points` points for the plots."""
    t, p = np.asarray(true, np.float64), np.asarray(predicted, np.float64)
    err = p - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    r2 = 1.0 - float((err ** 2).sum()) / ss_tot if ss_tot > 0 else None
    keep: np.ndarray = (np.unique(np.linspace(0, len(t) - 1, min(points, len(t))).round().astype(np.int64))
                        if len(t) else np.zeros(0, np.int64))
    return Regression(mae=float(np.abs(err).mean()), rmse=float(math.sqrt((err ** 2).mean())), r2=r2,
                      true=t[keep].astype(np.float32), predicted=p[keep].astype(np.float32))
