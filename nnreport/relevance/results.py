"""Relevance heatmaps: sensitivity, Deconvnet, Guided Backprop, Input×Gradient, Integrated Gradients,
SmoothGrad, Grad-CAM, Occlusion and LRP, side by side, scored by region perturbation and sanity checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import numpy as np

MethodKey = Literal["sensitivity", "saliency", "gradient", "deconvnet", "guided_backprop", "input_x_gradient",
                    "integrated_gradients", "smoothgrad", "gradcam", "occlusion", "lrp_epsilon_plus_flat",
                    "lrp_epsilon_gamma_box", "lrp_epsilon_alpha2_beta1", "lrp_epsilon_plus", "lrp_epsilon",
                    "lrp_epsilon_cp"]
Replacement = Literal["uniform", "zero", "blur"]


@dataclass(frozen=True)
class RelevanceConfig:
    methods: tuple[MethodKey, ...] = (
        "sensitivity", "saliency", "deconvnet", "guided_backprop", "input_x_gradient", "integrated_gradients",
        "smoothgrad", "gradcam", "occlusion", "lrp_epsilon_plus_flat", "lrp_epsilon_gamma_box",
        "lrp_epsilon_alpha2_beta1")
    # Grid rows: this many test samples per class (or the first samples when there are no classes).
    per_class: int = 1
    max_rows: int = 10
    # LRP settings (z^B bounds come from the data's value range).
    epsilon: float = 1e-6
    gamma: float = 0.25
    ig_steps: int = 32
    smoothgrad_samples: int = 16
    smoothgrad_noise: float = 0.15
    # Occlusion patch and stride in pixels; 0 = a quarter of the image side, stride half the patch (7×7 positions).
    occlusion_patch: int = 0
    occlusion_stride: int = 0
    # Region perturbation (MoRF / LeRF / random) on this many test samples. region: the side of the square
    # regions in pixels, 0 = follow the image (about 9 at 224 px, 2 at 16-32 px); steps: forward passes per
    # sample, removing several regions per step where needed so that at least min_removed of the image goes.
    perturbation_samples: int = 32
    region: int = 0
    steps: int = 16
    min_removed: float = 0.1
    replacement: Replacement = "uniform"
    random_orderings: int = 2
    # Model-parameter randomisation check (cascading, output side first).
    randomisation_samples: int = 8
    cascade_steps: int = 3
    # Share of positive relevance inside the object mask, where the data has masks (built-in shapes).
    mask_samples: int = 48

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"max_rows": 4, "ig_steps": 8, "smoothgrad_samples": 4, "perturbation_samples": 8, "steps": 8,
                  "random_orderings": 1, "randomisation_samples": 4, "cascade_steps": 2, "mask_samples": 16,
                  "methods": ("sensitivity", "guided_backprop", "input_x_gradient", "integrated_gradients",
                              "gradcam", "occlusion", "lrp_epsilon_plus_flat", "lrp_epsilon_gamma_box")},
        "thorough": {"per_class": 2, "ig_steps": 64, "smoothgrad_samples": 32, "perturbation_samples": 96,
                     "steps": 32, "random_orderings": 4, "randomisation_samples": 16, "cascade_steps": 5,
                     "mask_samples": 200, "methods": get_args(MethodKey)},
    }


@dataclass(frozen=True)
class MethodResult:
    key: str
    title: str
    signed: bool
    settings: str
    skipped: str = ""                      # why the method did not run ("" when it ran)
    notes: tuple[str, ...] = ()            # e.g. what LRP canonicalisation did, layers without a rule
    seconds_per_sample: float | None = None


@dataclass(frozen=True)
class CurveResult:
    method: str
    morf: np.ndarray      # mean score drop after k regions (k = 0 … steps)
    lerf: np.ndarray
    morf_aopc: float
    morf_se: float
    lerf_aopc: float
    lerf_se: float


@dataclass(frozen=True)
class PerturbationResult:
    region: int
    steps: int
    replacement: str
    samples: int
    regions_total: int
    random: np.ndarray
    random_aopc: float
    random_se: float
    curves: tuple[CurveResult, ...]
    per_step: int = 1               # regions removed per step


@dataclass(frozen=True)
class RandomisationResult:
    method: str
    randomised: tuple[int, ...]     # number of top layers randomised at each step
    similarity: np.ndarray          # mean Spearman rank correlation of |maps| with the original's
    similarity_se: np.ndarray


@dataclass(frozen=True)
class ConservationResult:
    method: str
    scores: np.ndarray
    sums: np.ndarray


@dataclass(frozen=True)
class MaskShareResult:
    method: str
    share: float
    se: float


@dataclass(frozen=True)
class RelevanceResult:
    kind: Literal["image", "vector", "tokens"]
    inputs: np.ndarray                   # grid samples as shown (images in [0, 1]) or raw features
    labels: np.ndarray | None            # true classes of grid rows
    predictions: np.ndarray
    targets: np.ndarray                  # explained class per row
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    methods: tuple[MethodResult, ...]
    maps: dict[str, np.ndarray]          # method -> grid maps (rows, H, W) or (rows, features), channels summed
    perturbation: PerturbationResult | None
    randomisation: tuple[RandomisationResult, ...]
    layers: tuple[str, ...]              # parameter layers, output side first (for the randomisation axis)
    conservation: tuple[ConservationResult, ...]
    mask_share: tuple[MaskShareResult, ...]
    mask_area: float | None
    notes: tuple[str, ...] = ()
    words: tuple[tuple[str, ...], ...] = ()  # token inputs: each grid row's tokens (vocabulary words or ids)
