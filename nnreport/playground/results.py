"""Playground (Smilkov et al. 2017): every neuron's output over a 2-D input plane, through training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class PlaygroundConfig:
    # Points per side of the input plane each neuron is evaluated on.
    grid: int = 64
    # At most this many training snapshots (ctx.checkpoints, evenly thinned; the final model is always last).
    max_snapshots: int = 11
    # At most this many units drawn per layer (the ones whose output varies most over the plane).
    max_units: int = 16
    # Tabular data: the two features spanning the plane (names or column numbers); empty = the two the
    # model's output is most sensitive to. The other features are held at their training median.
    x_feature: str = ""
    y_feature: str = ""
    # Margin around the data, as a fraction of its range on each axis.
    margin: float = 0.1
    # Half-width of the plane when there is no data to take its extent from.
    extent: float = 3.0
    # At most this many train and test points drawn on the decision map.
    max_points: int = 600

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"grid": 32, "max_snapshots": 6, "max_units": 8, "max_points": 300},
        "thorough": {"grid": 96, "max_snapshots": 21, "max_units": 32, "max_points": 1500},
    }


@dataclass(frozen=True)
class NeuronLayer:
    """One column of the network diagram: the inputs, a hidden layer (after its activation) or the output."""

    name: str
    # Module path of the Linear layer whose output (after activation) this column shows; "" for the inputs.
    module: str
    kind: str  # "input", "hidden" or "output"
    units: int
    shown: tuple[int, ...]
    unit_names: tuple[str, ...]
    # Each shown unit's output over the plane (rows = ys, columns = xs) per snapshot, the final model
    # last, quantised symmetrically around zero (to keep the bundle small): value = (q / 255 * 2 - 1) * scale.
    frames: np.ndarray  # uint8 (snapshots, shown, grid_y, grid_x)
    scale: np.ndarray  # float32 (snapshots, shown): max |value| of each map
    # Weights from the previous column's shown units into this column's, per snapshot:
    # (snapshots, shown, previous shown); None where the connection is not a single Linear layer.
    weights: np.ndarray | None = None
    # Bias of each shown unit per snapshot (snapshots, shown), where there is one.
    bias: np.ndarray | None = None


@dataclass(frozen=True)
class PlaygroundResult:
    features: tuple[str, str]
    feature_index: tuple[int, int]
    # Plane coordinates in the model's input space (normalised features): x along columns, y along rows.
    xs: np.ndarray
    ys: np.ndarray
    # The full input vector the plane is embedded in (other features at their median).
    base: np.ndarray
    layers: tuple[NeuronLayer, ...]
    # Output decision map per snapshot: class probabilities (softmax) as uint8 (probability * 255),
    # (snapshots, classes, grid_y, grid_x); a single output is quantised like the neuron maps.
    decision_frames: np.ndarray
    output_kind: str  # "softmax" or "value"
    class_names: tuple[str, ...]
    snapshot_labels: tuple[str, ...]
    # Loss given with the snapshots (training history; NaN where unknown) and measured here per snapshot.
    history: np.ndarray
    train_loss: np.ndarray | None
    test_loss: np.ndarray | None
    train_accuracy: np.ndarray | None
    test_accuracy: np.ndarray | None
    # Points drawn on the decision map (the chosen pair of features) and their labels (-1 = none).
    train_points: np.ndarray
    train_labels: np.ndarray
    test_points: np.ndarray
    test_labels: np.ndarray
    notes: tuple[str, ...] = ()
