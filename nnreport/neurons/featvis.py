"""The `featvis` analysis: an optimised input for every analysed unit, one batch per layer."""

from __future__ import annotations

import numpy as np

from nnreport import distributed
from nnreport.context import Context
from nnreport.errors import Skipped
from nnreport.neurons.layers import NotReached, display_path, module_map
from nnreport.neurons.maximise import Focus, Settings, maximise
from nnreport.neurons.param import InputSpace
from nnreport.neurons.regularisers import HYPER_SETS
from nnreport.neurons.results import (
    ActivationsResult,
    FeatvisConfig,
    FeatvisResult,
    LayerActivations,
    LayerFeatvis,
)


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


# From this input side on, "auto" uses the Fourier recipe (Olah et al. 2017): pixel-space ascent on large
# images gives high-frequency noise that no regulariser set in this package turns into a recognisable pattern.
FOURIER_FROM = 128


def resolved_method(config: FeatvisConfig, input_shape: tuple[int, ...]) -> str:
    """The method `auto` stands for on inputs of `input_shape`."""
    if config.method != "auto":
        return config.method
    return "fourier" if len(input_shape) == 3 and min(input_shape[1:]) >= FOURIER_FROM else "yosinski"


def settings(config: FeatvisConfig, input_shape: tuple[int, ...] = ()) -> Settings:
    return Settings(method=resolved_method(config, input_shape), hyper=HYPER_SETS[config.hyper],  # type: ignore[arg-type]
                    steps=config.steps, lr=config.lr, jitter=config.jitter, scale=config.scale,
                    rotate_deg=config.rotate_deg)


def focus(layer: LayerActivations, input_shape: tuple[int, ...], config: FeatvisConfig) -> Focus | None:
    """The centre unit of a spatial layer and its receptive field plus a margin, where that window is smaller than
    the input (None: optimise the mean over positions on the whole input, as for global units)."""
    if not config.crop_fields or layer.receptive is None or len(layer.shape) != 3 or len(input_shape) != 3:
        return None
    position = tuple(s // 2 for s in layer.shape[1:])
    window, smaller = [], False
    for (size, jump, start), p, side in zip(layer.receptive, position, input_shape[1:], strict=True):
        margin = max(2, round(size * config.field_margin))
        smaller = smaller or size + 2 * margin < side
        lo, hi = start + p * jump - margin, start + p * jump + size + margin
        window.append((max(0, lo), min(side, hi)))
    return Focus(position, tuple(window)) if smaller else None


def run(ctx: Context, config: FeatvisConfig) -> FeatvisResult:
    acts: ActivationsResult = ctx.results["activations"]
    if acts.input_kind == "other":
        raise Skipped("activation maximisation needs one floating-point input: an image (C, H, W) or a "
                      "feature vector; this model's inputs are neither")
    space = input_space(ctx, config.value_range, config.mean, config.std)
    modules = module_map(ctx.model, [layer.path for layer in acts.layers])
    rep = ctx.stage()
    how = settings(config, acts.input_shape)

    def units(shown: int) -> int:
        return min(shown, config.max_units) if config.max_units > 0 else shown

    def one(i: int) -> LayerFeatvis | str:
        """One layer's optimised inputs (or why it has none). Each layer draws from its own generator, so
        under torchrun the layers are shared out over the processes with the same result."""
        layer = acts.layers[i]
        rep.step(i, len(acts.layers), display_path(layer.path))
        f = focus(layer, acts.input_shape, config) if acts.input_kind == "image" else None
        try:
            m = maximise(ctx.model, layer.path, modules[layer.path], list(range(units(layer.shown))), acts.input_shape,
                         space, how, ctx.generator(f"featvis:{layer.path}"), focus=f, channels_last=layer.channels_last)
        except NotReached as exc:
            return f"Layer {exc}: the optimised inputs took another path, so it has no optimised inputs."
        field = tuple(a[0] for a in layer.receptive) if f is not None and layer.receptive is not None else ()
        return LayerFeatvis(layer.path, units(layer.shown), m.display.astype(np.float16), m.trace,
                            f.window if f is not None else (), field)

    done = distributed.map_shared(one, list(range(len(acts.layers))))
    out = [r for r in done if isinstance(r, LayerFeatvis)]
    notes = [r for r in done if isinstance(r, str)]
    rep.step(len(acts.layers), len(acts.layers))
    if not out:
        raise Skipped(" ".join(notes))
    if any(units(layer.shown) < layer.shown for layer in acts.layers):
        notes.append(f"Optimised inputs for the first {config.max_units} units of each layer (max_units); the "
                     "other units show their top examples only.")
    if how.method == "fourier" and acts.input_kind != "image":
        notes.append("The Fourier parameterisation applies to images only; feature vectors were optimised in input space.")
    note = " ".join(notes)
    return FeatvisResult(tuple(out), how.method, config.hyper if how.method == "yosinski" else "",
                         acts.input_kind, (space.lo, space.hi), config.steps, note)
