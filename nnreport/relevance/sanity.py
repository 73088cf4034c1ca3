"""Sanity checks: model-parameter randomisation (Adebayo et al. 2018), conservation, object-mask share."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import nn


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of modules that own parameters, output side first (reverse registration order)."""
    names = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    return names[::-1]


def cascade_points(layers: list[str], steps: int) -> list[int]:
    """How many top layers are randomised at each cascade step: the top one, evenly spaced, then all."""
    n = len(layers)
    if n == 0:
        return []
    pts = sorted({int(round(v)) for v in np.linspace(1, n, max(1, min(steps, n)))})
    return pts


def randomised_copy(model: nn.Module, layers: list[str], seed: int) -> nn.Module:
    """A copy of `model` whose `layers` are re-initialised (reset_parameters, seeded; the original is untouched)."""
    import torch

    clone = copy.deepcopy(model)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for name in layers:
            module = clone.get_submodule(name)
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            else:
                for p in module.parameters(recurse=False):
                    p.normal_(0, 0.05)
            reset_stats = getattr(module, "reset_running_stats", None)
            if callable(reset_stats) and getattr(module, "track_running_stats", False):
                reset_stats()
    return clone


def rank_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of |a| and |b| per sample (rows), ties broken by position."""
    def ranks(v: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(np.abs(v), axis=1, kind="stable"), axis=1, kind="stable").astype(np.float64)

    ra, rb = ranks(a.reshape(len(a), -1)), ranks(b.reshape(len(b), -1))
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    return np.where(denom > 0, (ra * rb).sum(1) / np.where(denom > 0, denom, 1), 0.0)


def mask_share(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per sample: the share of positive relevance that falls inside the object mask."""
    pos = np.clip(maps, 0, None).reshape(len(maps), -1)
    inside = (pos * masks.reshape(len(masks), -1)).sum(1)
    total = pos.sum(1)
    return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)


def mean_se(values: np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0

