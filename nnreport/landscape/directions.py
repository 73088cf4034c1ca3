"""Directions in parameter space: filter-normalised Gaussian directions (Li et al. 2018) and PCA directions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

Normalisation = Literal["filter", "layer", "model", "none"]
NORMALISATIONS: tuple[str, ...] = ("filter", "layer", "model", "none")
_EPS = 1e-10


@dataclass
class Space:
    """The tensors a landscape moves (parameters, and buffers for checkpoint interpolation) and their values."""

    names: list[str]
    tensors: list[torch.Tensor]
    base: list[torch.Tensor]

    @property
    def size(self) -> int:
        return sum(t.numel() for t in self.tensors)


def parameter_space(model: nn.Module) -> Space:
    """Every floating-point parameter of the model (shared ones once), with a copy of its current value."""
    named = [(n, p) for n, p in model.named_parameters(remove_duplicate=True) if p.dtype.is_floating_point]
    return Space([n for n, _ in named], [p for _, p in named], [p.detach().clone() for _, p in named])


def state_space(model: nn.Module, space: Space | None = None) -> Space:
    """Parameters plus floating-point buffers (BatchNorm running statistics): what a checkpoint changes.
    `space`: the model's parameter_space, whose copies of the parameters are shared rather than made again
    (the parameters must not have changed since)."""
    space = space or parameter_space(model)
    buffers = [(n, b) for n, b in model.named_buffers(remove_duplicate=True)
               if b is not None and b.dtype.is_floating_point]
    return Space(space.names + [n for n, _ in buffers], space.tensors + [b for _, b in buffers],
                 space.base + [b.detach().clone() for _, b in buffers])


def is_filter_weight(t: torch.Tensor) -> bool:
    """Weights with filters (conv output channels, linear rows); 0/1-D tensors are biases and norm scales."""
    return t.dim() >= 2


def random_direction(space: Space, generator: torch.Generator, normalisation: Normalisation = "filter",
                     include_bias_bn: bool = False) -> list[torch.Tensor]:
    """A Gaussian direction, one tensor per parameter, normalised to the weights' scale.

    Every parameter draws its noise whether or not it is included, so switching `include_bias_bn` or
    the normalisation keeps the other parts of the direction unchanged. Excluded tensors are zero.
    """
    import torch

    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; choose one of {', '.join(NORMALISATIONS)}")
    out = []
    for w in space.base:  # one tensor's noise at a time: the raw draws of a large model are never all held
        # Drawn on the CPU generator, then moved: the same directions on every device.
        d = torch.randn(w.shape, generator=generator, dtype=torch.float32).to(w.device, w.dtype)
        if not is_filter_weight(w) and not include_bias_bn:
            out.append(torch.zeros_like(w))
        elif normalisation == "filter":
            out.append(_filter_normalised(d, w))
        elif normalisation == "layer":
            out.append(d * (w.norm() / (d.norm() + _EPS)))
        else:
            out.append(d)
    if normalisation == "model":
        moved = [i for i, w in enumerate(space.base) if is_filter_weight(w) or include_bias_bn]
        wn = torch.sqrt(sum((space.base[i].double() ** 2).sum() for i in moved) or torch.tensor(0.0))
        dn = torch.sqrt(sum((out[i].double() ** 2).sum() for i in moved) or torch.tensor(0.0))
        scale = float(wn / (dn + _EPS))
        for d in out:  # in place: no second copy of the direction
            d.mul_(scale)
    return out


def _filter_normalised(d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Scale each filter of `d` to the norm of the matching filter of `w` (a 1-D tensor: d takes w itself,
    as in Li et al.'s code, since every entry is its own filter)."""
    if w.dim() <= 1:
        return w.clone()
    dn = d.flatten(1).norm(dim=1)
    wn = w.flatten(1).norm(dim=1)
    scale = wn / (dn + _EPS)
    return d * scale.view(-1, *([1] * (d.dim() - 1)))


def flatten(tensors: list[torch.Tensor]) -> np.ndarray:
    """One float32 vector of all tensors (for storing directions in the bundle)."""
    if not tensors:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([t.detach().reshape(-1).float().cpu().numpy() for t in tensors])


def pca_directions(space: Space, checkpoints: list[dict[str, torch.Tensor]], include_bias_bn: bool = False
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor], np.ndarray, np.ndarray]:
    """The top two principal directions of the training path (Li et al. §7), relative to the final weights.

    Returns the two directions (unit vectors, as per-tensor lists), their explained-variance ratios and
    the path projected on them (one (x, y) row per checkpoint, oldest first; the final model is (0, 0)).
    """
    import torch

    moved = [i for i, w in enumerate(space.base) if is_filter_weight(w) or include_bias_bn]
    final = np.concatenate([space.base[i].reshape(-1).double().cpu().numpy() for i in moved])
    rows = []
    for state in checkpoints:
        rows.append(np.concatenate([state[space.names[i]].reshape(-1).double().cpu().numpy() for i in moved]) - final)
    m = np.stack(rows)
    centred = m - m.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s ** 2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    comps = vt[:2]
    # A fixed sign per component (largest entry positive), so the picture does not flip between runs.
    for k in range(comps.shape[0]):
        if comps[k, np.argmax(np.abs(comps[k]))] < 0:
            comps[k] = -comps[k]
    path = m @ comps.T
    dirs: list[list[torch.Tensor]] = []
    for k in range(2):
        vec = comps[k] if k < comps.shape[0] else np.zeros(final.size)
        parts: list[torch.Tensor] = []
        offset = 0
        lookup = {i: None for i in moved}
        for i, w in enumerate(space.base):
            if i in lookup:
                n = w.numel()
                parts.append(torch.from_numpy(vec[offset:offset + n].copy()).reshape(w.shape).to(w.device, w.dtype))
                offset += n
            else:
                parts.append(torch.zeros_like(w))
        dirs.append(parts)
    if path.shape[1] < 2:
        path = np.concatenate([path, np.zeros((path.shape[0], 2 - path.shape[1]))], axis=1)
    return dirs[0], dirs[1], np.pad(ratio, (0, 2 - len(ratio))), path
