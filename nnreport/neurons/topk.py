"""One streaming pass over the data: per unit, the top-k inputs (bounded memory) and activation statistics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch


def unit_scores(act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's score on each input (its maximum over positions) and the flat arg-max position.
    `act` is (N, F) or (N, C, *spatial)."""
    if act.dim() == 2:
        return act, torch.zeros_like(act, dtype=torch.long)
    flat = act.flatten(2)
    values, where = flat.max(dim=2)
    return values, where


@dataclass
class TopK:
    """The k best (value, input index, position) per unit seen so far; ties go to the earlier input."""

    k: int
    units: int
    values: np.ndarray = field(init=False)
    index: np.ndarray = field(init=False)
    position: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.values = np.empty((0, self.units), dtype=np.float64)
        self.index = np.empty((0, self.units), dtype=np.int64)
        self.position = np.empty((0, self.units), dtype=np.int64)

    def update(self, values: np.ndarray, position: np.ndarray, offset: int) -> None:
        """Merge a batch: `values`, `position` are (B, units) for inputs offset, offset+1, ..."""
        b = values.shape[0]
        idx = np.broadcast_to(np.arange(offset, offset + b)[:, None], values.shape)
        vals = np.concatenate([self.values, values.astype(np.float64)])
        index = np.concatenate([self.index, idx])
        pos = np.concatenate([self.position, position])
        keep = np.lexsort((index, -vals), axis=0)[: self.k]  # by value, ties to the earlier input
        self.values, self.index, self.position = (np.take_along_axis(a, keep, 0) for a in (vals, index, pos))


@dataclass
class Stats:
    """Running per-unit statistics over inputs (and positions, for spatial units)."""

    units: int
    count: int = 0
    total: np.ndarray = field(init=False)
    total_sq: np.ndarray = field(init=False)
    maximum: np.ndarray = field(init=False)
    minimum: np.ndarray = field(init=False)
    active: np.ndarray = field(init=False)  # inputs where the unit is positive somewhere
    always_on: np.ndarray = field(init=False)  # inputs where the unit is positive everywhere

    def __post_init__(self) -> None:
        z = np.zeros(self.units)
        self.total, self.total_sq, self.active, self.always_on = z.copy(), z.copy(), z.copy(), z.copy()
        self.maximum, self.minimum = np.full(self.units, -np.inf), np.full(self.units, np.inf)

    def update(self, act: torch.Tensor, best: torch.Tensor) -> None:
        a = act.double().flatten(2).mean(2) if act.dim() > 2 else act.double()
        low = act.flatten(2).amin(2) if act.dim() > 2 else act
        self.count += act.shape[0]
        self.total += a.sum(0).numpy()
        self.total_sq += (a * a).sum(0).numpy()
        self.maximum = np.maximum(self.maximum, best.amax(0).double().numpy())
        self.minimum = np.minimum(self.minimum, low.amin(0).double().numpy())
        self.active += (best > 0).sum(0).numpy()
        self.always_on += (low > 0).sum(0).numpy()


def stream(batches: Iterator[tuple[int, dict[str, torch.Tensor]]], units: dict[str, int], k: int,
           step: Callable[[int], None] | None = None) -> dict[str, tuple[TopK, Stats]]:
    """Consume (offset, {layer: activations}) batches; keep the top-k and statistics for every layer."""
    state = {name: (TopK(k, n), Stats(n)) for name, n in units.items()}
    for i, (offset, acts) in enumerate(batches):
        for name, act in acts.items():
            top, stats = state[name]
            act = act.detach().float()
            best, where = unit_scores(act)
            top.update(best.numpy(), where.numpy(), offset)
            stats.update(act, best)
        if step is not None:
            step(i)
    return state
