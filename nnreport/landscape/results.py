"""Loss landscape: filter-normalised random planes, 1-D slices, checkpoint interpolation, the PCA
training path and Hessian sharpness (Li et al. 2018). Torch-free at import; the work is in nnreport.landscape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np


@dataclass(frozen=True)
class LandscapeConfig:
    # The random plane: steps × steps points over [-span, span]² in units of the normalised directions.
    steps: int = 17
    span: float = 1.0
    # The 1-D slice along the first direction (0 turns it off).
    slice_steps: int = 33
    # Fixed subset of the test split every point is evaluated on, and its batch size.
    samples: int = 128
    batch_size: int = 256
    normalisation: Literal["filter", "layer", "model", "none"] = "filter"
    # Li et al. leave biases and BatchNorm parameters where they are; True moves them too.
    include_bias_bn: bool = False
    # "running": BatchNorm in eval mode with the model's running statistics; "recompute": fresh
    # statistics at every point from `recompute_samples` training samples (about twice the cost).
    batchnorm: Literal["running", "recompute"] = "running"
    recompute_samples: int = 256
    # Linear interpolation from the oldest training snapshot to the final model over α in [-0.25, 1.25]
    # (0 turns it off; 6k + 1 steps put α = 0 and 1 on the line).
    interpolation_steps: int = 19
    # The plane of the top two PCA directions of the training snapshots, with the path (0: off).
    trajectory_steps: int = 9
    # Top Hessian eigenvalues by Lanczos on Hessian-vector products (0 eigenvalues: off).
    hessian_eigenvalues: int = 3
    lanczos_iterations: int = 16
    hessian_samples: int = 128
    # Li et al.'s map of |λmin/λmax| over the random plane, at this many steps per axis (0: off).
    sharpness_map_steps: int = 0
    # The directions are stored in the bundle when they hold at most this many numbers (the seed always is).
    store_directions_max: int = 100_000

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"steps": 9, "slice_steps": 17, "samples": 128, "interpolation_steps": 7,
                  "trajectory_steps": 5, "hessian_eigenvalues": 2, "lanczos_iterations": 8, "hessian_samples": 64},
        "thorough": {"steps": 41, "slice_steps": 81, "samples": 512, "batch_size": 512, "interpolation_steps": 37,
                     "trajectory_steps": 25, "lanczos_iterations": 30, "hessian_samples": 512,
                     "sharpness_map_steps": 9},
    }


@dataclass(frozen=True)
class Surface:
    """Loss and accuracy on a grid: loss[iy, ix] at (x[ix], y[iy]). NaN/inf are kept (drawn as gaps)."""

    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray


@dataclass(frozen=True)
class Curve:
    """Loss and accuracy along a line; t is the coordinate (direction units, or α for interpolation)."""

    t: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    label: str


@dataclass(frozen=True)
class Directions:
    """How the random directions were made; `vectors` (2 × moved entries, float16 to keep the bundle small;
    the seed reproduces them exactly) when they hold at most `store_directions_max` numbers."""

    normalisation: str
    include_bias_bn: bool
    seed: int
    total_params: int
    moved_params: int
    moved_tensors: tuple[str, ...]
    fixed_tensors: tuple[str, ...]
    vectors: np.ndarray | None = None
    # Cosine between the two directions (random Gaussian directions are nearly orthogonal).
    cosine: float = 0.0


@dataclass(frozen=True)
class Trajectory:
    """The plane of the first two PCA directions of the training snapshots, and the path in it."""

    surface: Surface
    path_x: np.ndarray
    path_y: np.ndarray
    path_loss: tuple[float, ...]
    explained: tuple[float, float]
    snapshots: int


@dataclass(frozen=True)
class Sharpness:
    """Extreme Hessian eigenvalues of the loss at the trained weights (Lanczos Ritz values)."""

    top: tuple[float, ...]
    lambda_min: float
    lambda_max: float
    ratio: float
    iterations: int
    samples: int
    # |λmin/λmax| over a coarse grid of the random plane (thorough preset).
    map: Surface | None = None


@dataclass(frozen=True)
class Shape:
    """Numbers that describe the plane: what Li et al. compare between networks."""

    centre_loss: float
    centre_accuracy: float
    local_minima: int
    growth_at_half: float
    growth_ratio_at_half: float
    negative_curvature_fraction: float
    nonfinite_points: int


@dataclass(frozen=True)
class LandscapeResult:
    directions: Directions
    plane: Surface
    shape: Shape
    samples: int
    batchnorm: str
    span: float
    steps: int
    slice: Curve | None = None
    interpolation: Curve | None = None
    trajectory: Trajectory | None = None
    sharpness: Sharpness | None = None
    notes: tuple[str, ...] = ()
