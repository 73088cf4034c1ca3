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
    return act.flatten(2)[torch.from_numpy(rows).to(act.device), torch.from_numpy(units).to(act.device)].argmax(1).cpu().numpy()


@dataclass
class TopK:
    """The k best (value, input index) per unit seen so far; ties go to the earlier input. Memory: k rows."""

    k: int
    units: int
    values: np.ndarray = field(init=False)
    index: np.ndarray = field(init=False)
    # Flat arg-max position of the unit on each kept input (0 for units without positions), when known.
    position: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.values = np.empty((0, self.units), dtype=np.float64)
        self.index = np.empty((0, self.units), dtype=np.int64)
        self.position = np.empty((0, self.units), dtype=np.int64)

    def update(self, values: np.ndarray, offset: int) -> None:
        """Merge a batch: `values` is (B, units) for inputs offset, offset+1, ..."""
        idx = np.broadcast_to(np.arange(offset, offset + values.shape[0])[:, None], values.shape)
        self.merge(values.astype(np.float64), idx)

    def merge(self, values: np.ndarray, index: np.ndarray, position: np.ndarray | None = None) -> None:
        """Merge candidates (rows in input order for equal values, all from inputs after the kept ones)."""
        vals = np.concatenate([self.values, values])
        index = np.concatenate([self.index, index])
        pos = np.concatenate([self.position, np.zeros_like(index[len(self.index):]) if position is None else position])
        # A stable sort by value keeps equal values in row order, and the rows are in input order (the kept
        # rows, sorted the same way, all come from earlier inputs): ties go to the earlier input.
        keep = np.argsort(-vals, axis=0, kind="stable")[: self.k]
        self.values, self.index = np.take_along_axis(vals, keep, 0), np.take_along_axis(index, keep, 0)
        self.position = np.take_along_axis(pos, keep, 0)


@dataclass(frozen=True)
class Partial:
    """One batch, reduced: its own top-k candidates per unit and its statistics sums (small: k + 6 rows)."""

    values: np.ndarray
    index: np.ndarray
    position: np.ndarray  # flat arg-max position of each candidate (found while the activations are here)
    count: int
    total: np.ndarray
    total_sq: np.ndarray
    maximum: np.ndarray
    minimum: np.ndarray
    active: np.ndarray
    always_on: np.ndarray


def reduce_batch(act: torch.Tensor, offset: int, k: int) -> Partial:
    """A batch of activations (N, F) or (N, C, *spatial) for inputs offset, offset+1, … as a Partial.
    Merging Partials in batch order gives exactly the state of one pass over all the batches."""
    act = act.detach().float()
    best = unit_scores(act)
    top = TopK(k, best.shape[1])
    top.update(best.cpu().numpy(), offset)
    units = np.broadcast_to(np.arange(best.shape[1])[None], top.index.shape)
    position = argmax_positions(act, (top.index - offset).ravel(), units.ravel()).reshape(top.index.shape)
    # Reduce over positions in float32 (one pass each), accumulate across batches in float64.
    a = (act.flatten(2).mean(2) if act.dim() > 2 else act).double()
    low = act.flatten(2).amin(2) if act.dim() > 2 else act
    return Partial(top.values, top.index, position, int(act.shape[0]), a.sum(0).cpu().numpy(), (a * a).sum(0).cpu().numpy(),
                   best.amax(0).double().cpu().numpy(), low.amin(0).double().cpu().numpy(),
                   (best > 0).sum(0).cpu().numpy(), (low > 0).sum(0).cpu().numpy())


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

    def add(self, p: Partial) -> None:
        """Fold in one batch's sums (in place: no new arrays per batch)."""
        self.count += p.count
        self.total += p.total
        self.total_sq += p.total_sq
        np.maximum(self.maximum, p.maximum, out=self.maximum)
        np.minimum(self.minimum, p.minimum, out=self.minimum)
        self.active += p.active
        self.always_on += p.always_on


def stream(partials: Iterator[dict[str, Partial]], units: dict[str, int], k: int,
           step: Callable[[int], None] | None = None) -> dict[str, tuple[TopK, Stats]]:
    """Fold per-batch Partials ({layer: Partial}, in batch order) into the top-k and statistics of every
    layer. Memory stays at k rows plus one batch however many batches there are."""
    state = {name: (TopK(k, n), Stats(n)) for name, n in units.items()}
    for i, batch in enumerate(partials):
        for name, p in batch.items():
            top, stats = state[name]
            top.merge(p.values, p.index, p.position)
            stats.add(p)
        if step is not None:
            step(i)
    return state
