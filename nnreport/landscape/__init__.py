"""Loss landscapes at the cost of forward passes: directions, surfaces, sharpness, and the public
`loss_landscape` entry point (torch is imported when a function runs, not here)."""

from __future__ import annotations

from nnreport.landscape.api import LandscapeGrid, interpolate, loss_landscape

__all__ = ["LandscapeGrid", "interpolate", "loss_landscape"]
