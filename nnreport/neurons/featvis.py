"""The `featvis` analysis: an optimised input for every analysed unit, one batch per layer."""

from __future__ import annotations

import numpy as np

from nnreport.context import Context
from nnreport.errors import Skipped
from nnreport.neurons.layers import NotReached, module_map
from nnreport.neurons.maximise import Settings, maximise
from nnreport.neurons.param import InputSpace
from nnreport.neurons.regularisers import HYPER_SETS
from nnreport.neurons.results import ActivationsResult, FeatvisConfig, FeatvisResult, LayerFeatvis


def input_space(ctx: Context, value_range: tuple[float, float] | None = None, mean: tuple[float, ...] | None = None,
                std: tuple[float, ...] | None = None) -> InputSpace:
    """Value range and normalisation: the config's, else the data's, else the example inputs' range."""
    data = ctx.data
    if value_range is None:
        if data is not None:
            value_range = data.value_range()
        else:
            x = ctx.example_inputs[0]
            value_range = (float(x.min()), float(x.max()))
    if mean is None and data is not None and data.mean is not None and data.std is not None:
        mean, std = data.mean, data.std
    lo, hi = value_range
    if not hi > lo:
        hi = lo + 1.0
    return InputSpace(float(lo), float(hi), mean if std is not None else None, std if mean is not None else None)


def settings(config: FeatvisConfig) -> Settings:
    return Settings(method=config.method, hyper=HYPER_SETS[config.hyper], steps=config.steps, lr=config.lr,
                    jitter=config.jitter, scale=config.scale, rotate_deg=config.rotate_deg)


def run(ctx: Context, config: FeatvisConfig) -> FeatvisResult:
    acts: ActivationsResult = ctx.results["activations"]
    if acts.input_kind == "other":
        raise Skipped("activation maximisation needs one floating-point input: an image (C, H, W) or a "
                      "feature vector; this model's inputs are neither")
    space = input_space(ctx, config.value_range, config.mean, config.std)
    modules = module_map(ctx.model, [layer.path for layer in acts.layers])
    rep = ctx.stage()
    out, notes = [], []
    for i, layer in enumerate(acts.layers):
        rep.step(i, len(acts.layers), layer.path)
        try:
            m = maximise(ctx.model, layer.path, modules[layer.path], list(range(layer.shown)), acts.input_shape,
                         space, settings(config), ctx.generator(f"featvis:{layer.path}"))
        except NotReached as exc:
            notes.append(f"Layer {exc}: the optimised inputs took another path, so it has no optimised inputs.")
            continue
        out.append(LayerFeatvis(layer.path, layer.shown, m.display.astype(np.float16), m.trace))
    rep.step(len(acts.layers), len(acts.layers))
    if not out:
        raise Skipped(" ".join(notes))
    if config.method == "fourier" and acts.input_kind != "image":
        notes.append("The Fourier parameterisation applies to images only; feature vectors were optimised in input space.")
    note = " ".join(notes)
    return FeatvisResult(tuple(out), config.method, config.hyper if config.method == "yosinski" else "",
                         acts.input_kind, (space.lo, space.hi), config.steps, note)
