"""Relevance heatmaps: sensitivity, Deconvnet, Guided Backprop, Input×Gradient, Integrated Gradients,
SmoothGrad, Grad-CAM, Occlusion and LRP, side by side, scored by region perturbation and sanity checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from nnreport.analyses import analysis

if TYPE_CHECKING:
    from nnreport.context import Context

MethodKey = Literal["sensitivity", "saliency", "gradient", "deconvnet", "guided_backprop", "input_x_gradient",
                    "integrated_gradients", "smoothgrad", "gradcam", "occlusion", "lrp_epsilon_plus_flat",
                    "lrp_epsilon_gamma_box", "lrp_epsilon_alpha2_beta1", "lrp_epsilon_plus"]
Replacement = Literal["uniform", "zero", "blur"]


@dataclass(frozen=True)
class MethodText:
    title: str
    signed: bool
    shows: str
    weaknesses: str
    reference: str


METHOD_TEXT: dict[str, MethodText] = {
    "sensitivity": MethodText(
        "Sensitivity (g²)", False,
        "How strongly the score reacts to a small change of each input: the squared partial derivative.",
        "Explains the local slope, not the decision itself; noisy and often off the object (Samek et al. 2017).",
        "Simonyan et al. 2014; Samek et al. 2017"),
    "saliency": MethodText(
        "Saliency (|g|)", False, "The absolute gradient of the score: where a small change matters most.",
        "Same as sensitivity: local slope only, shattered gradients in deep ReLU nets.", "Simonyan et al. 2014"),
    "gradient": MethodText(
        "Gradient", True, "The signed gradient: which direction of change raises the score.",
        "Local, noisy; positive does not mean 'evidence present'.", "Baehrens et al. 2010"),
    "deconvnet": MethodText(
        "Deconvnet", True,
        "Backward pass where each ReLU lets only positive signals through, ignoring the forward activation.",
        "Largely class-insensitive: it reconstructs input structure rather than the decision (Nie et al. 2018).",
        "Zeiler & Fergus 2014"),
    "guided_backprop": MethodText(
        "Guided Backprop", True,
        "Backward pass that keeps positive gradients at active ReLUs only: sharp, image-like maps.",
        "Fails the parameter-randomisation check on many nets (Adebayo et al. 2018): edges, not evidence.",
        "Springenberg et al. 2015"),
    "input_x_gradient": MethodText(
        "Input × Gradient", True, "Each input times its gradient: a first-order contribution to the score.",
        "Equals LRP-0 on ReLU nets and inherits its noise; zero inputs never get relevance.", "Shrikumar et al. 2016"),
    "integrated_gradients": MethodText(
        "Integrated Gradients", True,
        "Gradients averaged along the straight path from a baseline to the input, times the input difference; "
        "the map sums to f(x) − f(baseline).",
        "Depends on the baseline; costs one gradient per step; can attribute to baseline-like regions.",
        "Sundararajan et al. 2017"),
    "smoothgrad": MethodText(
        "SmoothGrad", False, "The absolute gradient averaged over noisy copies of the input: a denoised saliency.",
        "Still a slope, not a contribution; noise level changes the picture; many forward/backward passes.",
        "Smilkov et al. 2017"),
    "gradcam": MethodText(
        "Grad-CAM", False,
        "The last convolution's feature maps weighted by their average gradient, ReLU'd and upsampled.",
        "Coarse (the last conv's resolution); only positive evidence; needs a convolutional net.",
        "Selvaraju et al. 2017"),
    "occlusion": MethodText(
        "Occlusion", True, "How much the score drops when a patch is replaced by the baseline.",
        "Patch size sets the resolution; replacing with a constant creates unnatural inputs; many forward passes.",
        "Zeiler & Fergus 2014"),
    "lrp_epsilon_plus_flat": MethodText(
        "LRP ε-z⁺-flat", True,
        "Relevance propagated layer by layer from the score: z⁺ on convolutions, ε on dense layers, flat on the "
        "input layer. Conservative: the map sums (nearly) to the score.",
        "Rules are chosen per layer type; z⁺ shows only positive evidence below the top; biases absorb relevance; "
        "the flat input rule ignores the input values (on feature vectors every feature of a first-layer neuron "
        "gets the same share).",
        "Bach et al. 2015; Montavon et al. 2019"),
    "lrp_epsilon_gamma_box": MethodText(
        "LRP ε-γ-box", True,
        "LRP with γ on convolutions (favours positive contributions), ε on dense layers and z^B on the input "
        "layer, which respects the input's value bounds.",
        "γ and the bounds are settings; relevance is absorbed where γ-normalisers exceed the output.",
        "Montavon et al. 2019; Kohlbrenner et al. 2020"),
    "lrp_epsilon_alpha2_beta1": MethodText(
        "LRP ε-α2β1", True,
        "LRP with α=2, β=1 on convolutions: positive contributions counted twice, negative ones subtracted.",
        "Not conservative where a neuron has only positive (or only negative) inputs; can over-amplify.",
        "Bach et al. 2015"),
    "lrp_epsilon_plus": MethodText(
        "LRP ε-z⁺", True, "LRP with z⁺ on convolutions and ε on dense layers (no special input rule).",
        "As ε-z⁺-flat, but the input layer's rule depends on the input's signs.", "Montavon et al. 2019"),
}
SIGNED = {k: v.signed for k, v in METHOD_TEXT.items()}


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
                     "mask_samples": 200, "methods": tuple(METHOD_TEXT)},
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
    kind: Literal["image", "vector"]
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


@analysis("relevance", title="Relevance heatmaps", config=RelevanceConfig, result=RelevanceResult, order=30)
def relevance(ctx: Context, config: RelevanceConfig) -> RelevanceResult:
    """Relevance maps of many methods side by side, scored by region perturbation and sanity checks."""
    from nnreport.relevance.report import run

    return run(ctx, config)
