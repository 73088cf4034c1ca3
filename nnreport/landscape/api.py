"""`nnreport.loss_landscape(model, data, ...)`: the landscape as numpy arrays, for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.landscape.directions import Normalisation
from nnreport.landscape.surface import BatchNormMode

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class LandscapeGrid:
    """Coordinates along each direction, loss and accuracy (loss[iy, ix] at (x[ix], y[iy]) for dims=2;
    one row for dims=1), and the directions themselves (dims × parameters, float32, in the order of
    `names`; excluded tensors are zero). Accuracy is NaN where the output is not one score per class."""

    x: np.ndarray
    y: np.ndarray | None
    loss: np.ndarray
    accuracy: np.ndarray
    directions: np.ndarray
    names: tuple[str, ...]
    seed: int
    normalisation: str


def symmetric_coords(span: float, steps: int) -> np.ndarray:
    """`steps` points over [-span, span], exactly symmetric, with an exact 0 in the middle when steps is odd."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    c = span * np.linspace(-1.0, 1.0, steps) if steps > 1 else np.zeros(1)
    c = (c - c[::-1]) / 2
    if steps % 2:
        c[steps // 2] = 0.0
    return c


def grid_points(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-major (y outer, x inner) list of (x, y) points, matching loss[iy, ix]."""
    gx, gy = np.meshgrid(x, y)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def eval_tensors(data: Any, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation subset from a Dataset, a data spec, or (x, y) arrays/tensors (first `samples`)."""
    import torch

    from nnreport.datasets import Dataset

    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    else:
        if not isinstance(data, Dataset):
            from nnreport.loading import load_data

            data = load_data(data)
        if data.y_test is None:
            raise ValueError("the data has no labels; a loss landscape needs targets")
        x, y = data.x_test, data.y_test
    xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x[:samples]))
    yt = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(y[:samples]))
    return xt[:samples], yt[:samples]


def loss_landscape(
    model: nn.Module,
    data: Any,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    dims: int = 2,
    steps: int = 21,
    span: float = 1.0,
    seed: int = 0,
    *,
    samples: int = 256,
    batch_size: int = 256,
    normalisation: Normalisation = "filter",
    include_bias_bn: bool = False,
    batchnorm: BatchNormMode = "running",
    scratch: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    device: str | None = None,
) -> LandscapeGrid:
    """Loss (and accuracy) around the model's weights along `dims` (1 or 2) filter-normalised Gaussian
    directions; the model is in eval mode for the run and left exactly as it was.

    `data`: a Dataset or data spec (its test split), or `(x, y)`. `loss_fn(output, target)` returns the
    mean loss of a batch (default: cross-entropy). `scratch`: a folder where finished points are saved,
    so an interrupted call resumes. Under torchrun the points are split across the processes.
    `device`: auto, cpu, cuda, cuda:N or mps (default: where the model is); a model elsewhere is copied there.
    """
    import torch

    from nnreport import scoped
    from nnreport.landscape.directions import flatten, parameter_space, random_direction
    from nnreport.landscape.surface import Evaluator, make_batches, sweep, sweep_key

    if dims not in (1, 2):
        raise ValueError("dims must be 1 or 2")
    model, (x, y) = on_device(model, eval_tensors(data, samples), device)
    space = parameter_space(model)
    gen = torch.Generator().manual_seed(int(seed))
    dirs = [random_direction(space, gen, normalisation, include_bias_bn) for _ in range(dims)]
    coords = symmetric_coords(span, steps)
    points = grid_points(coords, coords) if dims == 2 else coords[:, None]
    with scoped.eval_mode(model), scoped.restored_parameters(model):
        ev = Evaluator(model, space, dirs, make_batches(x, y, batch_size), loss_fn, batchnorm)
        key = sweep_key(f"api{dims}d", points, dirs, f"{batchnorm}|{x.shape}", [x, y, *space.base])
        loss, acc = sweep(ev, points, Path(scratch) if scratch is not None else None, key, progress)
    shape = (steps, steps) if dims == 2 else (steps,)
    return LandscapeGrid(coords, coords.copy() if dims == 2 else None, loss.reshape(shape), acc.reshape(shape),
                         np.stack([flatten(d) for d in dirs]), tuple(space.names), int(seed), normalisation)


def on_device(model: nn.Module, tensors: tuple[torch.Tensor, ...], device: str | None) -> tuple[nn.Module, Any]:
    """The model and tensors on `device` (None: the model's own); the model is copied when it must move,
    so the caller's model stays where it is."""
    import copy

    from nnreport.device import model_device, resolve_device, same_device

    here = model_device(model)
    target = here if device is None else resolve_device(device)
    if not same_device(here, target):
        model = copy.deepcopy(model).to(target)
    return model, tuple(t.to(target) for t in tensors)


def interpolate(
    model: nn.Module,
    start: Mapping[str, torch.Tensor],
    data: Any,
    end: Mapping[str, torch.Tensor] | None = None,
    steps: int = 25,
    lo: float = -0.25,
    hi: float = 1.25,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    samples: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss and accuracy on the line (1-α)·start + α·end of two state dicts (end: the model's own state),
    parameters and floating-point buffers alike. Returns (α, loss, accuracy)."""
    from nnreport import scoped
    from nnreport.landscape.surface import make_batches

    x, y = eval_tensors(data, samples)
    alphas = np.linspace(lo, hi, steps)
    with scoped.eval_mode(model), scoped.restored_parameters(model):
        ev = line_evaluator(model, start, end, make_batches(x, y, samples), loss_fn)
        out = np.array([ev.at(c) for c in line_coords(alphas)])
    return alphas, out[:, 0], out[:, 1]


def line_coords(alphas: np.ndarray) -> np.ndarray:
    """Coefficients for `line_evaluator`: parameters move by α, buffers by α clipped to [0, 1] (running
    variances extrapolated past either checkpoint could turn negative)."""
    return np.stack([alphas, np.clip(alphas, 0.0, 1.0)], axis=1)


def line_evaluator(model: nn.Module, start: Mapping[str, torch.Tensor], end: Mapping[str, torch.Tensor] | None,
                   batches: Any, loss_fn: Any = None, batchnorm: BatchNormMode = "running") -> Any:
    """An Evaluator from state `start` (α=0) to `end` (α=1, default: the model's own state): two directions,
    the parameters' and the floating-point buffers', to be given the coefficients of `line_coords`."""
    import torch

    from nnreport.landscape.directions import Space, state_space
    from nnreport.landscape.surface import Evaluator

    space = state_space(model)
    target = end if end is not None else dict(zip(space.names, space.base, strict=True))
    missing = [n for n, b in zip(space.names, space.base, strict=True) if n not in start or n not in target
               or tuple(start[n].shape) != tuple(b.shape) or tuple(target[n].shape) != tuple(b.shape)]
    if missing:
        raise ValueError(f"the checkpoints do not match the model: {', '.join(missing[:5])}")
    params = {id(p) for p in model.parameters()}
    base = [start[n].detach().to(t.dtype).clone() for n, t in zip(space.names, space.tensors, strict=True)]
    diff = [target[n].detach().to(t.dtype) - b for n, t, b in zip(space.names, space.tensors, base, strict=True)]
    is_param = [id(t) in params for t in space.tensors]
    d_params = [d if p else torch.zeros_like(d) for d, p in zip(diff, is_param, strict=True)]
    d_buffers = [torch.zeros_like(d) if p else d for d, p in zip(diff, is_param, strict=True)]
    return Evaluator(model, Space(space.names, space.tensors, base), [d_params, d_buffers], batches, loss_fn,
                     batchnorm)
