"""One streaming pass over the data: per unit, the top-k inputs (bounded memory) and activation statistics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch


def unit_scores(act: torch.Tensor) -> torch.Tensor:
    """Each unit's score on each input: its maximum over positions. `act` is (N, F) or (N, C, *spatial).
    (amax, not max: the arg-max costs ten times more, so it is found afterwards for the winners only.)"""
    return act if act.dim() == 2 else act.flatten(2).amax(2)


def argmax_positions(act: torch.Tensor, rows: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Flat arg-max position of unit units[i] in row rows[i] of `act` (N, C, *spatial)."""
    if act.dim() == 2:
        return np.zeros(len(rows), dtype=np.int64)
    return act.flatten(2)[torch.from_numpy(rows), torch.from_numpy(units)].argmax(1).numpy()


@dataclass
class TopK:
    """The k best (value, input index) per unit seen so far; ties go to the earlier input. Memory: k rows."""

    k: int
    units: int
    values: np.ndarray = field(init=False)
    index: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.values = np.empty((0, self.units), dtype=np.float64)
        self.index = np.empty((0, self.units), dtype=np.int64)

    def update(self, values: np.ndarray, offset: int) -> None:
        """Merge a batch: `values` is (B, units) for inputs offset, offset+1, ..."""
        b = values.shape[0]
        idx = np.broadcast_to(np.arange(offset, offset + b)[:, None], values.shape)
        vals = np.concatenate([self.values, values.astype(np.float64)])
        index = np.concatenate([self.index, idx])
        # A stable sort by value keeps equal values in row order, and the rows are in input order (the kept
        # rows, sorted the same way, all come from earlier inputs): ties go to the earlier input.
        keep = np.argsort(-vals, axis=0, kind="stable")[: self.k]
        self.values, self.index = np.take_along_axis(vals, keep, 0), np.take_along_axis(index, keep, 0)


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
        # Reduce over positions in float32 (one pass each), accumulate across batches in float64.
        a = (act.flatten(2).mean(2) if act.dim() > 2 else act).double()
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
            best = unit_scores(act)
            top.update(best.numpy(), offset)
            stats.update(act, best)
        if step is not None:
            step(i)
    return state
