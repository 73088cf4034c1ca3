"""CNNVis (Liu et al. 2017): layers and neurons clustered by their class response, with bundled cluster edges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

BiclusterMethod = Literal["cocluster", "bicluster"]


@dataclass(frozen=True)
class CNNVisConfig:
    # Test samples whose activations describe the units.
    samples: int = 512
    batch_size: int = 256
    # Without labels the data is split into this many k-means clusters (of the last layer's activations).
    data_clusters: int = 8
    # Consecutive layers are merged into at most this many groups, and further while their
    # similarity (linear CKA) is at least `layer_similarity`.
    layer_groups: int = 4
    layer_similarity: float = 0.95
    # Neuron clusters per representative layer and representative neurons per cluster.
    neuron_clusters: int = 6
    representatives: int = 4
    # Top examples (image patches) shown per representative neuron, and their size in pixels.
    examples: int = 2
    patch: int = 16
    # Reordering of the neuron-cluster x class matrix (scikit-learn's spectral co-/bi-clustering).
    bicluster_method: BiclusterMethod = "cocluster"
    biclusters: int = 3
    # Samples used to measure the effective weights between neuron clusters of consecutive layers.
    edge_samples: int = 96
    # k-means restarts (more = steadier clusters, slower).
    n_init: int = 4

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"samples": 192, "neuron_clusters": 4, "representatives": 3, "examples": 1, "edge_samples": 48,
                  "n_init": 2},
        "thorough": {"samples": 1024, "layer_groups": 6, "neuron_clusters": 8, "representatives": 6, "examples": 3,
                     "edge_samples": 256, "n_init": 8},
    }


@dataclass(frozen=True)
class CNNVisLayer:
    """A conv or linear layer (its first call), described by its units' mean activation per class."""

    name: str
    type: str
    units: int
    group: int
    representative: bool


@dataclass(frozen=True)
class NeuronCluster:
    units: tuple[int, ...]
    # Closest units to the cluster centre, closest first.
    representatives: tuple[int, ...]
    # Mean over the cluster's units of their class profile (activation per class, standardised per unit).
    profile: np.ndarray
    # Top-example patches of the representatives (representative-major), uint8 (n, patch, patch, 3);
    # None when the data are not images.
    patches: np.ndarray | None
    # For each patch: (representative unit, test sample index).
    patch_sources: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class LayerGroup:
    """Consecutive layers with similar behaviour, shown through their representative layer."""

    layers: tuple[int, ...]
    representative: int
    # Each unit's neuron-cluster id (units of the representative layer).
    labels: np.ndarray
    clusters: tuple[NeuronCluster, ...]
    # Display order of the clusters (after biclustering) and each cluster's row bicluster.
    order: tuple[int, ...]
    row_bicluster: tuple[int, ...]


@dataclass(frozen=True)
class ClusterEdges:
    """Effective weights from the neuron clusters of one representative layer to the next one's:
    the mean, over units i of cluster a and j of cluster b, of d(mean activation of j)/d(shift of i)."""

    source: int  # group index
    target: int
    weights: np.ndarray  # (source clusters, target clusters)


@dataclass(frozen=True)
class CNNVisResult:
    layers: tuple[CNNVisLayer, ...]
    # Linear CKA between the layers' unit activations (layers x layers).
    similarity: np.ndarray
    groups: tuple[LayerGroup, ...]
    edges: tuple[ClusterEdges, ...]
    # Columns of the class profiles: class names, or "cluster k" for unlabelled data.
    classes: tuple[str, ...]
    by_label: bool
    class_order: tuple[int, ...]
    column_bicluster: tuple[int, ...]
    samples: int
    notes: tuple[str, ...] = ()
