"""Neurons: activation maps and top dataset examples per unit, activation maximisation, class facets.

Three analyses share the layer choice made by `activations`: `featvis` optimises an input per unit
(Yosinski et al. 2015 regularisers, or a Fourier parameterisation), `facets` clusters each class's
training inputs (Nguyen et al. 2016). The torch code lives in nnreport.neurons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

Normalise = Literal["channel", "layer"]
Split = Literal["train", "test"]
Method = Literal["yosinski", "fourier", "auto"]
HyperSet = Literal["yosinski1", "yosinski2", "yosinski3", "yosinski4"]


@dataclass(frozen=True)
class ActivationsConfig:
    # Module paths to show (as in the layer table); empty: the end of each stage and the output layer.
    layers: tuple[str, ...] = ()
    max_layers: int = 5
    # Units analysed per layer (the first ones); the gallery page shows at most 16 of them per layer.
    max_units: int = 32
    # Sample inputs whose activation maps are drawn; maps are scaled per channel or per layer.
    samples: int = 3
    normalise: Normalise = "channel"
    # Top-k inputs per unit, from one streaming pass over at most `max_examples` inputs of `split`.
    top_k: int = 9
    max_examples: int = 2000
    split: Split = "train"
    batch_size: int = 256
    # Crops bigger than this many pixels per side are subsampled.
    max_crop: int = 32

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"max_layers": 3, "max_units": 12, "samples": 2, "top_k": 6, "max_examples": 400},
        "thorough": {"max_layers": 8, "max_units": 64, "samples": 4, "max_examples": 10_000},
    }


@dataclass(frozen=True)
class UnitStats:
    """Per unit, over the streamed inputs (and positions, for spatial units)."""

    mean: np.ndarray
    std: np.ndarray
    maximum: np.ndarray
    minimum: np.ndarray
    frac_active: np.ndarray  # inputs on which the unit is positive somewhere
    frac_always_on: np.ndarray  # inputs on which it is positive at every position


@dataclass(frozen=True)
class TopExamples:
    values: np.ndarray  # (U, k) score (max over positions) of each top input, best first
    index: np.ndarray  # (U, k) index into the split
    labels: np.ndarray | None  # (U, k) their labels
    # Image inputs: (U, k, C, h, w) display-space crops around the arg-max (NaN outside the image);
    # other inputs: (U, k, *input_shape) in model space.
    crops: np.ndarray
    windows: np.ndarray  # (U, k, axes, 2) input window [start, end) per spatial axis (empty for non-spatial)


@dataclass(frozen=True)
class LayerActivations:
    path: str
    type: str
    shape: tuple[int, ...]  # one sample's output: (F,) or (C, H, W)
    units: int  # units in the layer
    shown: int  # units analysed (the first `shown`)
    maps: np.ndarray  # (samples, shown, *spatial) activations for the sample inputs
    # Receptive field per spatial input axis as (size, jump, start); None when global or not spatial.
    receptive: tuple[tuple[int, int, int], ...] | None
    dead: np.ndarray  # (shown,) bool
    saturated: np.ndarray  # (shown,) bool
    flag_basis: str  # what dead/saturated mean for this layer, for the reader
    stats: UnitStats | None
    top: TopExamples | None
    # The module gives (N, H, W, C); `shape`, `maps` and every capture are channels first.
    channels_last: bool = False


@dataclass(frozen=True)
class ActivationsResult:
    layers: tuple[LayerActivations, ...]
    input_kind: str  # "image" (C, H, W inputs), "vector" (F,) or "other"
    input_shape: tuple[int, ...]
    samples: np.ndarray  # the sample inputs: display space for images, model space otherwise
    sample_labels: tuple[str, ...]
    normalise: Normalise
    examples_split: str  # "" when there was no data
    examples_seen: int
    class_names: tuple[str, ...] | None
    feature_names: tuple[str, ...] | None
    note: str = ""


@dataclass(frozen=True)
class FeatvisConfig:
    # "yosinski": gradient ascent in pixel space with the regulariser set `hyper`;
    # "fourier": Adam on a decorrelated Fourier parameterisation with jitter, scale and rotation.
    # "auto": the Fourier recipe for images of 128 px and more (where pixel-space ascent gives noise), else yosinski.
    method: Method = "auto"
    hyper: HyperSet = "yosinski3"
    steps: int = 48
    # Optimise the first this many units of each layer (0: every unit the activations analysis shows).
    max_units: int = 0
    # Units whose receptive field is smaller than the input are optimised at the centre position only and
    # shown as their field plus this fraction of it on every side (0 < margin); "whole": never crop.
    field_margin: float = 0.25
    crop_fields: bool = True
    lr: float = 0.05
    jitter: float = 1.0
    scale: float = 0.05
    rotate_deg: float = 5.0
    # Model-space value range and per-channel normalisation; default: from the data (or example inputs).
    value_range: tuple[float, float] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"steps": 16}, "thorough": {"steps": 128}}


@dataclass(frozen=True)
class LayerFeatvis:
    path: str
    units: int
    images: np.ndarray  # (U, *input_shape): display space [0, 1] for images, model space for vectors
    trace: np.ndarray  # (U, steps + 1) the unit's activation before and after each step
    # For units with a receptive field smaller than the input: the input window [start, end) per axis that
    # `images` show (the centre unit's field plus a margin), and the field's side; () when the whole input.
    window: tuple[tuple[int, int], ...] = ()
    field: tuple[int, ...] = ()


@dataclass(frozen=True)
class FeatvisResult:
    layers: tuple[LayerFeatvis, ...]
    method: str
    hyper: str
    input_kind: str
    value_range: tuple[float, float]
    steps: int
    note: str = ""


@dataclass(frozen=True)
class FacetsConfig:
    k: int = 4  # facets (k-means clusters) per class, at most 10
    per_class: int = 100  # training inputs embedded per class
    max_classes: int = 10
    # Embedding layer (module path); default: the last layer shown before the output.
    layer: str = ""
    nearest: int = 4
    perplexity: float = 20.0
    # Optimisation of the class score from each facet's mean image (pixel-space method); a small step
    # keeps it near the facet, as in Nguyen et al.
    steps: int = 48
    lr: float = 0.03
    hyper: HyperSet = "yosinski1"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"k": 3, "per_class": 50, "max_classes": 3, "steps": 12},
        "thorough": {"k": 6, "per_class": 300, "steps": 128, "nearest": 6},
    }


@dataclass(frozen=True)
class Facet:
    size: int
    members: np.ndarray  # (size,) indices into the training split
    nearest: np.ndarray  # (m,) indices of the members nearest the cluster centre (t-SNE space)
    nearest_images: np.ndarray  # (m, C, H, W) display space as uint8 (0-255)
    mean_image: np.ndarray  # (C, H, W) display space as uint8 (0-255)
    optimised: np.ndarray  # (C, H, W) display space, started from the mean image
    start_value: float  # the class score of the mean image
    end_value: float  # ... and of the optimised image


@dataclass(frozen=True)
class ClassFacets:
    index: int
    name: str
    points: np.ndarray  # (n, 2) t-SNE embedding
    cluster: np.ndarray  # (n,) facet of each point
    facets: tuple[Facet, ...]


@dataclass(frozen=True)
class FacetsResult:
    layer: str  # embedding layer
    output: str  # output layer whose units are the classes
    classes: tuple[ClassFacets, ...]
    note: str = ""
