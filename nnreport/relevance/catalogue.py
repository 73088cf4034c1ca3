"""The relevance methods of the page, one record each: name, title, signedness, what it shows, its
weaknesses, the library method and typed options behind it, and its settings text (torch-free)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from nnreport.relevance.options import (
    IntegratedGradientsOptions,
    LRPOptions,
    NoOptions,
    OcclusionOptions,
    SmoothGradOptions,
)
from nnreport.relevance.results import MethodKey, RelevanceConfig


@dataclass(frozen=True)
class Setting:
    """What a method's options may depend on besides the config."""

    low: float   # the data's value range (the z^B bounds)
    high: float
    seed: int
    side: int    # the image's shorter side (1 for non-images)


@dataclass(frozen=True)
class MethodRecord:
    key: MethodKey
    title: str
    signed: bool
    shows: str
    weaknesses: str
    reference: str
    method: str  # the library method (nnreport.relevance.methods) that computes it
    options: Callable[[RelevanceConfig, Setting], Any] = lambda c, s: NoOptions()
    extra: str = ""  # settings the options do not show

    def settings(self, options: Any) -> str:
        """The exact settings, as printed on the method's card."""
        if isinstance(options, LRPOptions):
            from nnreport.relevance.lrp import composites

            comp = composites.composite(options.composite, options.epsilon, options.gamma, _bound(options.low, 0.0),
                                        _bound(options.high, 1.0))
            rows = [f"{where}: {rule}" for where, rule in comp.describe()]
            if self.key in TRANSFORMER_METHODS:
                from nnreport.relevance.lrp.attention import DESCRIPTIONS

                rows += [DESCRIPTIONS["layer_norm"], DESCRIPTIONS["product"], DESCRIPTIONS[options.attention]]
            return "; ".join(rows)
        values = [(f.name, getattr(options, f.name)) for f in fields(options)]
        parts = [f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in values]
        return "; ".join(parts + ([self.extra] if self.extra else [])) or "no settings"


def _bound(value: float | None, default: float) -> float:
    return default if value is None else value


# Added to the configured methods when the model has attention (found at the operation level).
TRANSFORMER_METHODS = ("lrp_epsilon", "lrp_epsilon_cp")


def _lrp(composite: str, attention: Literal["attnlrp", "cp"] = "attnlrp",
         ) -> Callable[[RelevanceConfig, Setting], LRPOptions]:
    return lambda c, s: LRPOptions(composite=composite, epsilon=c.epsilon, gamma=c.gamma, low=s.low, high=s.high,
                                   attention=attention)


def _occlusion_options(c: RelevanceConfig, s: Setting) -> OcclusionOptions:
    """Patch and stride in pixels; 0 in the config: a quarter of the image side, stride half the patch."""
    patch = c.occlusion_patch or max(1, s.side // 4)
    return OcclusionOptions(patch=patch, stride=c.occlusion_stride or max(1, patch // 2), baseline=0.0)


RECORDS: dict[str, MethodRecord] = {r.key: r for r in (
    MethodRecord(
        "sensitivity", "Sensitivity (g²)", False,
        shows="How strongly the score reacts to a small change of each input: the squared partial derivative.",
        weaknesses="Explains the local slope, not the decision itself; noisy and often off the object (Samek et al. 2017).",
        reference="Simonyan et al. 2014; Samek et al. 2017",
        method="sensitivity"),
    MethodRecord(
        "saliency", "Saliency (|g|)", False,
        shows="The absolute gradient of the score: where a small change matters most.",
        weaknesses="Same as sensitivity: local slope only, shattered gradients in deep ReLU nets.",
        reference="Simonyan et al. 2014",
        method="saliency"),
    MethodRecord(
        "gradient", "Gradient", True,
        shows="The signed gradient: which direction of change raises the score.",
        weaknesses="Local, noisy; positive does not mean 'evidence present'.",
        reference="Baehrens et al. 2010",
        method="gradient"),
    MethodRecord(
        "deconvnet", "Deconvnet", True,
        shows="Backward pass where each ReLU lets only positive signals through, ignoring the forward activation.",
        weaknesses="Largely class-insensitive: it reconstructs input structure rather than the decision (Nie et al. 2018).",
        reference="Zeiler & Fergus 2014",
        method="deconvnet"),
    MethodRecord(
        "guided_backprop", "Guided Backprop", True,
        shows="Backward pass that keeps positive gradients at active ReLUs only: sharp, image-like maps.",
        weaknesses="Fails the parameter-randomisation check on many nets (Adebayo et al. 2018): edges, not evidence.",
        reference="Springenberg et al. 2015",
        method="guided_backprop"),
    MethodRecord(
        "input_x_gradient", "Input × Gradient", True,
        shows="Each input times its gradient: a first-order contribution to the score.",
        weaknesses="Equals LRP-0 on ReLU nets and inherits its noise; zero inputs never get relevance.",
        reference="Shrikumar et al. 2016",
        method="input_x_gradient"),
    MethodRecord(
        "integrated_gradients", "Integrated Gradients", True,
        shows="Gradients averaged along the straight path from a baseline to the input, times the input difference; the map sums to f(x) − f(baseline).",
        weaknesses="Depends on the baseline; costs one gradient per step; can attribute to baseline-like regions.",
        reference="Sundararajan et al. 2017",
        method="integrated_gradients", options=lambda c, s: IntegratedGradientsOptions(steps=c.ig_steps, baseline=0.0),
        extra="baseline 0 (the data mean after normalisation), midpoint Riemann sum"),
    MethodRecord(
        "smoothgrad", "SmoothGrad", False,
        shows="The absolute gradient averaged over noisy copies of the input: a denoised saliency.",
        weaknesses="Still a slope, not a contribution; noise level changes the picture; many forward/backward passes.",
        reference="Smilkov et al. 2017",
        method="smoothgrad", options=lambda c, s: SmoothGradOptions(samples=c.smoothgrad_samples, noise=c.smoothgrad_noise, seed=s.seed),
        extra="σ = noise × each sample's value range"),
    MethodRecord(
        "gradcam", "Grad-CAM", False,
        shows="The last convolution's feature maps weighted by their average gradient, ReLU'd and upsampled.",
        weaknesses="Coarse (the last conv's resolution); only positive evidence; needs a convolutional net.",
        reference="Selvaraju et al. 2017",
        method="gradcam",
        extra="at the last 2-D convolution, bilinear upsampling"),
    MethodRecord(
        "occlusion", "Occlusion", True,
        shows="How much the score drops when a patch is replaced by the baseline.",
        weaknesses="Patch size sets the resolution; replacing with a constant creates unnatural inputs; many forward passes.",
        reference="Zeiler & Fergus 2014",
        method="occlusion", options=_occlusion_options,
        extra="patch over all channels, replaced by 0 (the data mean)"),
    MethodRecord(
        "lrp_epsilon_plus_flat", "LRP ε-z⁺-flat", True,
        shows="Relevance propagated layer by layer from the score: z⁺ on convolutions, ε on dense layers, flat on the input layer. Conservative: the map sums (nearly) to the score.",
        weaknesses="Rules are chosen per layer type; z⁺ shows only positive evidence below the top; biases absorb relevance; the flat input rule ignores the input values (on feature vectors every feature of a first-layer neuron gets the same share).",
        reference="Bach et al. 2015; Montavon et al. 2019",
        method="lrp", options=_lrp("epsilon_plus_flat")),
    MethodRecord(
        "lrp_epsilon_gamma_box", "LRP ε-γ-box", True,
        shows="LRP with γ on convolutions (favours positive contributions), ε on dense layers and z^B on the input layer, which respects the input's value bounds.",
        weaknesses="γ and the bounds are settings; relevance is absorbed where γ-normalisers exceed the output.",
        reference="Montavon et al. 2019; Kohlbrenner et al. 2020",
        method="lrp", options=_lrp("epsilon_gamma_box")),
    MethodRecord(
        "lrp_epsilon_alpha2_beta1", "LRP ε-α2β1", True,
        shows="LRP with α=2, β=1 on convolutions: positive contributions counted twice, negative ones subtracted.",
        weaknesses="Not conservative where a neuron has only positive (or only negative) inputs; can over-amplify.",
        reference="Bach et al. 2015",
        method="lrp", options=_lrp("epsilon_alpha2_beta1")),
    MethodRecord(
        "lrp_epsilon_plus", "LRP ε-z⁺", True,
        shows="LRP with z⁺ on convolutions and ε on dense layers (no special input rule).",
        weaknesses="As ε-z⁺-flat, but the input layer's rule depends on the input's signs.",
        reference="Montavon et al. 2019",
        method="lrp", options=_lrp("epsilon_plus")),
    MethodRecord(
        "lrp_epsilon", "AttnLRP (ε)", True,
        shows="LRP for transformers: ε on every linear layer, LayerNorm and GELU pass relevance unchanged (identity), products of two activations (Q·Kᵀ, A·V) give each operand half, and relevance flows through the softmax into queries and keys (R_in = x ⊙ (R_out − s·ΣR_out)). One backward pass.",
        weaknesses="Not conservative by design: the softmax rule's bias term absorbs relevance (see the conservation plot); ε and the uniform split are choices.",
        reference="Achtibat et al. 2024 (AttnLRP)",
        method="lrp", options=_lrp("epsilon", "attnlrp")),
    MethodRecord(
        "lrp_epsilon_cp", "CP-LRP (ε)", True,
        shows="LRP for transformers with the attention probabilities held constant: relevance flows through the values only, never through queries and keys; LayerNorm and GELU as in AttnLRP. Conservative without biases.",
        weaknesses="Ignores what the attention pattern itself contributes to the decision.",
        reference="Ali et al. 2022 (CP-LRP); Achtibat et al. 2024",
        method="lrp", options=_lrp("epsilon", "cp")),
)}
if set(RECORDS) != set(get_args(MethodKey)):  # the Literal names the options; every name has its record
    raise AssertionError(f"relevance records and MethodKey differ: {set(RECORDS) ^ set(get_args(MethodKey))}")
