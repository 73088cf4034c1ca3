"""Activation maximisation: all units of a layer optimised together, one image per unit in one batch.

The objective is the sum over the batch of each image's own unit, so (with the model in eval mode,
where batch items do not interact) each image follows exactly the gradient of its own unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnreport import scoped
from nnreport.neurons.layers import capture
from nnreport.neurons.param import FourierImage, InputSpace, random_affine
from nnreport.neurons.regularisers import Hyper, regularise

Method = Literal["yosinski", "fourier"]


@dataclass(frozen=True)
class Settings:
    method: Method = "yosinski"
    hyper: Hyper | None = None
    steps: int = 64
    lr: float = 0.05
    jitter: float = 1.0
    scale: float = 0.05
    rotate_deg: float = 5.0


@dataclass(frozen=True)
class Maximised:
    display: np.ndarray  # (U, *input_shape) in [0, 1] (images) or model space (vectors)
    trace: np.ndarray  # (U, steps + 1): each unit's activation before and after every step


@dataclass(frozen=True)
class Focus:
    """Optimise one spatial position's unit (not the mean over positions) and only its input window."""

    position: tuple[int, ...]              # in the layer's output
    window: tuple[tuple[int, int], ...]    # [start, end) per input axis, inside the input


def unit_values(act: torch.Tensor, units: torch.Tensor, position: tuple[int, ...] | None = None) -> torch.Tensor:
    """Each batch item's own unit: act[i, units[i]], averaged over positions for spatial units (or at `position`)."""
    own = act[torch.arange(act.shape[0], device=act.device), units.to(act.device)]
    if position is not None and own.dim() == 1 + len(position):
        index: tuple[slice | int, ...] = (slice(None), *position)
        return own[index]
    return own.flatten(1).mean(1) if own.dim() > 1 else own


def maximise(model: nn.Module, path: str, module: nn.Module, units: list[int], input_shape: tuple[int, ...],
             space: InputSpace, settings: Settings, generator: torch.Generator,
             init: torch.Tensor | None = None, target_batch: int | None = None, focus: Focus | None = None,
             channels_last: bool = False) -> Maximised:
    """Optimise one input per unit of `module`'s output. `init` (model space, (U, *input_shape)) starts
    the pixel-space method from given inputs (e.g. a facet's mean image); else small noise around the
    data's mean. `target_batch` caps how many units share one batch (None: all). `focus`: optimise the unit
    at one position, and return only its input window. `channels_last`: the module gives (N, H, W, C)."""
    size = target_batch or len(units)
    displays, traces = [], []
    with scoped.eval_mode(model), scoped.frozen(model):
        for start in range(0, len(units), size):
            chunk = units[start:start + size]
            x0 = init[start:start + size] if init is not None else None
            run = _fourier if settings.method == "fourier" and len(input_shape) == 3 else _pixels
            d, t = run(model, path, module, chunk, input_shape, space, settings, generator, x0, focus, channels_last)
            displays.append(d)
            traces.append(t)
    return Maximised(np.concatenate(displays), np.concatenate(traces))


def _objective(model: nn.Module, path: str, module: nn.Module, x: torch.Tensor, units: torch.Tensor,
               focus: Focus | None = None, channels_last: bool = False) -> torch.Tensor:
    act = capture(model, {path: module}, (x,), grad=True, last_axis=frozenset({path} if channels_last else ()))[path]
    return unit_values(act, units, focus.position if focus is not None else None)


def _crop(x: torch.Tensor, focus: Focus | None) -> torch.Tensor:
    if focus is None:
        return x
    (y0, y1), (x0, x1) = focus.window
    return x[..., y0:y1, x0:x1]


def _pixels(model: nn.Module, path: str, module: nn.Module, units: list[int], shape: tuple[int, ...],
            space: InputSpace, s: Settings, gen: torch.Generator, x0: torch.Tensor | None,
            focus: Focus | None = None, channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Yosinski et al.: gradient ascent in input space, x <- r(x + lr * g), clipped to the value range."""
    hyper = s.hyper or Hyper(0.0, 0.0, 0, 0.0, 0.0)
    dev = _device(model)
    u = torch.tensor(units, device=dev)
    n = len(units)
    base = space.to_model(torch.full((n, *shape), 0.5)) if len(shape) == 3 else torch.zeros((n, *shape))
    # Noise is drawn on the CPU generator and then moved, so every device starts from the same inputs.
    x = (x0.clone().float() if x0 is not None else base + 0.1 * (space.hi - space.lo) * torch.randn((n, *shape), generator=gen) / 4)
    x = x.to(dev)
    trace = []
    for step in range(s.steps + 1):
        x.requires_grad_(True)
        value = _objective(model, path, module, x, u, focus, channels_last)
        trace.append(value.detach())
        if step == s.steps:
            break
        (grad,) = torch.autograd.grad(value.sum(), x)
        with torch.no_grad():
            # Scale each image's step by its gradient's mean size: one learning rate then fits every model.
            # With a focus the gradient is zero outside the unit's field: scale by its size inside the window.
            seen = _crop(grad, focus) if len(shape) == 3 else grad
            g = grad / (seen.flatten(1).abs().mean(1).view(-1, *([1] * len(shape))) + 1e-12)
            y = x + s.lr * (space.hi - space.lo) * g
            y = _as_pixels(y, shape)
            y = regularise(y, _as_pixels(grad, shape), hyper, step + 1)
            x = y.view(n, *shape).clamp(space.lo, space.hi)
    x = x.detach()
    display = _crop(space.to_display(x), focus) if len(shape) == 3 else x
    return display.cpu().numpy().astype(np.float32), torch.stack(trace, 1).cpu().numpy().astype(np.float32)


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _as_pixels(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(N, C, H, W) images stay; anything else becomes (N, 1, F) so each feature is one pixel."""
    return x if len(shape) == 3 else x.reshape(x.shape[0], 1, -1)


def _fourier(model: nn.Module, path: str, module: nn.Module, units: list[int], shape: tuple[int, ...],
             space: InputSpace, s: Settings, gen: torch.Generator, _x0: torch.Tensor | None,
             focus: Focus | None = None, channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Olah et al.: Adam on a decorrelated Fourier parameterisation, through random jitter/scale/rotation.
    With a focus only the window is parameterised, on a mid-grey canvas."""
    c, h, w = shape
    dev = _device(model)
    (y0, y1), (x0, x1) = focus.window if focus is not None else ((0, h), (0, w))
    image = FourierImage(len(units), c, y1 - y0, x1 - x0, gen, device=dev)
    opt = torch.optim.Adam(image.params(), lr=s.lr)
    u = torch.tensor(units, device=dev)

    def canvas(img: torch.Tensor) -> torch.Tensor:
        return space.to_model(F.pad(img, (x0, w - x1, y0, h - y1), value=0.5))

    trace = []
    for step in range(s.steps + 1):
        with torch.no_grad():
            trace.append(_objective(model, path, module, canvas(image.image()), u, focus, channels_last))
        if step == s.steps:
            break
        opt.zero_grad()
        x = random_affine(image.image(), gen, s.jitter, s.scale, s.rotate_deg)
        (-_objective(model, path, module, canvas(x), u, focus, channels_last).sum()).backward()
        opt.step()
    with torch.no_grad():
        display = image.image()
    return display.cpu().numpy().astype(np.float32), torch.stack(trace, 1).cpu().numpy().astype(np.float32)
