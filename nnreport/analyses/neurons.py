"""Registers activations, featvis and facets (types: nnreport.neurons.results; work: nnreport.neurons)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnreport.analyses import analysis
from nnreport.neurons.results import (
    ActivationsConfig,
    ActivationsResult,
    FacetsConfig,
    FacetsResult,
    FeatvisConfig,
    FeatvisResult,
)

if TYPE_CHECKING:
    from nnreport.context import Context


@analysis("activations", title="Neuron activations", config=ActivationsConfig, result=ActivationsResult, order=40)
def activations(ctx: Context, config: ActivationsConfig) -> ActivationsResult:
    """Activation maps for sample inputs and the top dataset examples per unit, for representative layers."""
    from nnreport.neurons.activations import run

    return run(ctx, config)


@analysis("featvis", title="Activation maximisation", config=FeatvisConfig, result=FeatvisResult,
          requires=("activations",), order=42)
def featvis(ctx: Context, config: FeatvisConfig) -> FeatvisResult:
    """One optimised input per unit, every unit of a layer in one batch."""
    from nnreport.neurons.featvis import run

    return run(ctx, config)


@analysis("facets", title="Class facets", config=FacetsConfig, result=FacetsResult, requires=("activations",), order=44)
def facets(ctx: Context, config: FacetsConfig) -> FacetsResult:
    """Multifaceted visualisation (Nguyen et al. 2016): k facets per class from a late layer's embedding."""
    from nnreport.neurons.facets import run

    return run(ctx, config)
