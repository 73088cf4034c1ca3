"""The clustering steps of CNNVis on plain arrays: layer similarity and segmentation, neuron clusters,
representative neurons, and the biclustering order of a cluster x class matrix (numpy + scikit-learn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment of two (samples, features) activation matrices, in [0, 1]."""
    x = x - x.mean(0)
    y = y - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else 0.0


def similarity_matrix(activations: list[np.ndarray]) -> np.ndarray:
    n = len(activations)
    sim = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            sim[i, j] = sim[j, i] = linear_cka(activations[i], activations[j])
    return sim


def segment_layers(sim: np.ndarray, max_groups: int, threshold: float) -> list[list[int]]:
    """Split the layer sequence into runs of consecutive layers: merge the most similar adjacent runs
    (average linkage) while there are more than `max_groups`, or while a pair is at least `threshold`."""
    groups = [[i] for i in range(len(sim))]
    while len(groups) > 1:
        links = [float(sim[np.ix_(a, b)].mean()) for a, b in zip(groups, groups[1:], strict=False)]
        best = int(np.argmax(links))
        if len(groups) <= max_groups and links[best] < threshold:
            break
        groups[best:best + 2] = [groups[best] + groups[best + 1]]
    return groups


def representative_layer(sim: np.ndarray, group: list[int]) -> int:
    """The member most similar on average to the others (ties: the later layer)."""
    if len(group) == 1:
        return group[0]
    scores = [(float(sim[i, group].sum() - 1.0), i) for i in group]
    return max(scores)[1]


def class_profiles(activations: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Each unit's mean activation per class, centred on the mean over classes and divided by the unit's
    spread over all samples (an effect size, so weakly selective units stay small): (units, classes)."""
    means = np.stack([activations[classes == c].mean(0) if (classes == c).any() else np.zeros(activations.shape[1])
                      for c in range(n_classes)], axis=1)
    centred = means - means.mean(1, keepdims=True)
    spread = activations.std(0)[:, None]
    return np.where(spread > 1e-12, centred / np.where(spread > 1e-12, spread, 1.0), 0.0)


@dataclass(frozen=True)
class NeuronClusters:
    labels: np.ndarray
    members: list[tuple[int, ...]]
    representatives: list[tuple[int, ...]]


def cluster_neurons(profiles: np.ndarray, k: int, representatives: int, seed: int, n_init: int = 4) -> NeuronClusters:
    """k-means on the units' class profiles; clusters numbered by their first unit; representatives are
    the units nearest the centre."""
    from sklearn.cluster import KMeans

    units = len(profiles)
    k = max(1, min(k, units, len(np.unique(profiles.round(6), axis=0))))
    if k == 1:
        raw = np.zeros(units, np.int64)
    else:
        raw = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(profiles.astype(np.float64))
    first = {c: int(np.flatnonzero(raw == c)[0]) for c in np.unique(raw)}
    relabel = {c: i for i, c in enumerate(sorted(first, key=first.__getitem__))}
    labels = np.array([relabel[c] for c in raw], np.int64)
    members, reps = [], []
    for c in range(len(relabel)):
        idx = np.flatnonzero(labels == c)
        centre = profiles[idx].mean(0)
        dist = np.linalg.norm(profiles[idx] - centre, axis=1)
        order = idx[np.lexsort((idx, dist.round(9)))]
        members.append(tuple(int(i) for i in idx))
        reps.append(tuple(int(i) for i in order[:representatives]))
    return NeuronClusters(labels, members, reps)


@dataclass(frozen=True)
class Biclustering:
    row_order: np.ndarray
    column_order: np.ndarray
    row_labels: np.ndarray
    column_labels: np.ndarray


def bicluster_order(matrix: np.ndarray, n: int, method: Literal["cocluster", "bicluster"], seed: int) -> Biclustering:
    """Reorder rows and columns of a matrix so that its biclusters form blocks (scikit-learn's spectral
    co-clustering or biclustering; the matrix is shifted to be positive first)."""
    rows, cols = matrix.shape
    n = min(n, rows, cols)
    if n < 2 or not np.isfinite(matrix).all() or np.ptp(matrix) == 0:
        return Biclustering(np.arange(rows), np.arange(cols), np.zeros(rows, np.int64), np.zeros(cols, np.int64))
    from sklearn.cluster import SpectralBiclustering, SpectralCoclustering

    positive = matrix - matrix.min() + 1e-3 * np.ptp(matrix)
    if method == "cocluster":
        model = SpectralCoclustering(n_clusters=n, random_state=seed, n_init=10).fit(positive)
    else:
        model = SpectralBiclustering(n_clusters=n, random_state=seed, n_init=10).fit(positive)
    raw_rows, raw_cols = np.asarray(model.row_labels_), np.asarray(model.column_labels_)
    if method == "cocluster":  # row block k goes with column block k: number them together
        both = _canonical(np.concatenate([raw_rows, raw_cols]))
        row_labels, col_labels = both[:rows], both[rows:]
    else:
        row_labels, col_labels = _canonical(raw_rows), _canonical(raw_cols)
    # rows by block, then by their strength inside the block; columns by block, then by index
    row_order = np.lexsort((-positive.mean(1), row_labels))
    col_order = np.lexsort((np.arange(cols), col_labels))
    return Biclustering(row_order, col_order, row_labels, col_labels)


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber labels in order of first appearance, so equal partitions give equal labels."""
    seen: dict[int, int] = {}
    return np.array([seen.setdefault(int(v), len(seen)) for v in labels], np.int64)
