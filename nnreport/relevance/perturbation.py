"""Region perturbation (Samek et al. 2017): remove regions in relevance order, track the explained score,
and summarise each ordering by its area over the perturbation curve (AOPC)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

Replacement = Literal["uniform", "zero", "blur"]
ScoreFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class Curve:
    """Mean score drop f(x₀) − f(x_k) after k removed regions (k = 0 … steps), and the AOPC with its standard
    error over samples."""

    drop: np.ndarray
    aopc: float
    se: float


def region_index(shape: tuple[int, ...], region: int) -> tuple[np.ndarray, int]:
    """For an input of `shape` (without batch): each element's region id and the number of regions.
    Images (C, H, W) use a grid of region×region squares across all channels; other inputs, single elements."""
    if len(shape) == 3:
        _, h, w = shape
        rows, cols = -(-h // region), -(-w // region)
        ids = (np.arange(h)[:, None] // region) * cols + (np.arange(w)[None, :] // region)
        return np.broadcast_to(ids, shape).copy(), rows * cols
    n = int(np.prod(shape))
    return np.arange(n).reshape(shape), n


def region_scores(maps: np.ndarray, ids: np.ndarray, count: int) -> np.ndarray:
    """Summed relevance per region, per sample: (N, regions)."""
    flat_ids = ids.reshape(-1)
    return np.stack([np.bincount(flat_ids, weights=m.reshape(-1), minlength=count) for m in maps])


def replacement_values(x: torch.Tensor, how: Replacement, low: float, high: float, rng: np.random.Generator) -> torch.Tensor:
    """What a removed region is replaced with: uniform noise in the data's range, zero, or a blurred copy."""
    import torch
    import torch.nn.functional as F

    if how == "uniform":
        # Drawn by numpy on the CPU, then moved: the same noise on every device.
        return torch.from_numpy(rng.uniform(low, high, size=tuple(x.shape)).astype(np.float32)).to(x.device, x.dtype)
    if how == "zero":
        return torch.zeros_like(x)
    if x.dim() != 4:
        return x.mean(0, keepdim=True).expand_as(x).clone()  # blur of a feature vector: the batch mean
    return F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)


def auto_region(side: int) -> int:
    """Region side for an image whose shorter side is `side`: about 9×9 at 224 px (Samek et al. 2017 used 9×9
    regions on 224-px images), never below 2×2 (so 16- and 32-px images keep 2×2)."""
    return max(2, round(side * 9 / 224))


def schedule(count: int, steps: int, min_removed: float) -> tuple[int, int]:
    """(steps, regions removed per step): at most `steps` forward passes per sample that together remove at
    least `min_removed` of the `count` regions (several regions per step where one per step would not)."""
    steps = max(1, min(steps, count))
    need = min(count, math.ceil(min_removed * count))
    per_step = max(1, math.ceil(need / steps))
    return max(1, min(steps, count // per_step)), per_step


# Perturbed inputs scored per forward pass are capped by size (≈64 MB of float32), so memory stays bounded at 224 px.
CHUNK_BYTES = 64 * 2**20


def perturbation_curve(score: ScoreFn, x: torch.Tensor, target: torch.Tensor, order: np.ndarray, ids: np.ndarray,
                       steps: int, fill: torch.Tensor, batch: int = 256, per_step: int = 1) -> Curve:
    """Remove `per_step` regions per step in `order` (N, regions); return the mean drop curve and AOPC ± SE.
    `score(inputs, targets)` gives the explained score per input.

    The perturbed inputs (sample i after k steps is row i·(steps+1) + k) are built one chunk at a time (at most
    `batch` rows and about CHUNK_BYTES), so memory does not grow with samples × steps; under torchrun the
    chunks are split over the processes."""
    import torch

    from nnreport import distributed

    n = len(x)
    steps = min(steps, order.shape[1] // per_step)
    removed = steps * per_step
    rank = np.full(order.shape, steps + 1, dtype=np.int32)
    np.put_along_axis(rank, order[:, :removed], (np.arange(removed) // per_step + 1)[None].repeat(n, 0).astype(np.int32),
                      axis=1)
    removed_at = torch.from_numpy(rank[:, ids]).to(x.device)  # (N, *shape): the step at which each element goes
    rows_total = n * (steps + 1)
    spatial = (1,) * (x.dim() - 1)
    chunk = max(1, min(batch, CHUNK_BYTES // max(1, x[0].numel() * x.element_size())))

    def scores_of(start: int) -> np.ndarray:
        rows = torch.arange(start, min(start + chunk, rows_total), device=x.device)
        i, k = rows // (steps + 1), rows % (steps + 1)
        pert = torch.where(removed_at[i] <= k.view(-1, *spatial), fill[i], x[i])
        return score(pert, target[i]).double().cpu().numpy()

    out = np.concatenate(distributed.map_shared(scores_of, list(range(0, rows_total, chunk))))
    scores = out.reshape(n, steps + 1)
    drops = scores[:, :1] - scores
    per_sample = drops.mean(1)
    se = float(per_sample.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return Curve(drops.mean(0), float(per_sample.mean()), se)


def orderings(maps: np.ndarray, ids: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Most-relevant-first and least-relevant-first region orders (stable ties)."""
    scores = region_scores(maps, ids, count)
    morf = np.argsort(-scores, axis=1, kind="stable")
    lerf = np.argsort(scores, axis=1, kind="stable")
    return morf, lerf
