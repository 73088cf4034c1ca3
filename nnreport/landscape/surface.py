"""Loss and accuracy at points of a plane in parameter space: parameters set in place, inference mode,
a fixed data subset; points checkpointed to a scratch file and split across torch.distributed ranks."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nnreport.distributed import maybe_init_distributed
from nnreport.landscape.directions import Space

if TYPE_CHECKING:
    import torch
    from torch import nn

BatchNormMode = Literal["running", "recompute"]
LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
Progress = Callable[[int, int], None]


def primary(out: Any) -> torch.Tensor:
    from nnreport.context import primary_output

    return primary_output(out)


@dataclass
class Batches:
    """The fixed evaluation subset, split into batches once."""

    x: list[torch.Tensor]
    y: list[torch.Tensor]
    # Mixed precision for the forward passes over these batches (the report's --precision); None: fp32.
    autocast: Callable[[], Any] | None = None

    @property
    def count(self) -> int:
        return sum(len(b) for b in self.y)


def make_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, autocast: Callable[[], Any] | None = None) -> Batches:
    """Views of `x` and `y` (no copies), split once."""
    size = max(1, batch_size)
    return Batches(list(x.split(size)), list(y.split(size)), autocast)


def default_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    return F.cross_entropy(out, y)


def accuracy_count(out: torch.Tensor, y: torch.Tensor) -> float:
    """Correct predictions in a batch, or NaN when the output is not one score per class."""
    if out.dim() != 2 or y.dim() != 1 or y.dtype.is_floating_point or len(out) != len(y):
        return float("nan")
    return float((out.argmax(1) == y).sum())


class Evaluator:
    """Loss and accuracy of the model with its tensors set to base + Σ cᵢ·dᵢ (in place, no copies)."""

    def __init__(self, model: nn.Module, space: Space, directions: Sequence[list[torch.Tensor]], batches: Batches,
                 loss_fn: LossFn | None = None, batchnorm: BatchNormMode = "running",
                 bn_batches: Batches | None = None) -> None:
        self.model = model
        self.space = space
        self.batches = batches
        self.loss_fn = loss_fn or default_loss
        self.batchnorm = batchnorm
        self.bn_batches = bn_batches or batches
        # Only tensors some direction moves are touched per point; the rest keep their values.
        keep = [i for i in range(len(space.tensors)) if any(bool(d[i].any()) for d in directions)]
        self._targets = [space.tensors[i] for i in keep]
        self._base = [space.base[i] for i in keep]
        self.directions = [[d[i] for i in keep] for d in directions]

    def set_point(self, coeffs: Sequence[float]) -> None:
        import torch

        with torch.no_grad():
            if not self._targets:
                return
            torch._foreach_copy_(self._targets, self._base)
            for c, d in zip(coeffs, self.directions, strict=True):
                if c != 0.0:
                    torch._foreach_add_(self._targets, d, alpha=float(c))

    def evaluate(self) -> tuple[float, float]:
        """(mean loss, accuracy) over the subset at the current parameters."""
        import torch

        if self.batchnorm == "recompute":
            self._recompute_statistics()
        total, correct, n = 0.0, 0.0, 0
        with torch.inference_mode(), (self.batches.autocast or nullcontext)():
            for x, y in zip(self.batches.x, self.batches.y, strict=True):
                out = primary(self.model(x)).float()  # the loss in fp32 also under autocast
                total += float(self.loss_fn(out, y)) * len(y)
                correct += accuracy_count(out, y)
                n += len(y)
        return total / max(n, 1), correct / max(n, 1)

    def at(self, coeffs: Sequence[float]) -> tuple[float, float]:
        self.set_point(coeffs)
        return self.evaluate()

    def _recompute_statistics(self) -> None:
        """Fresh BatchNorm running statistics for the current weights (a cumulative average over the
        statistics batches), as if the network had been trained to this point."""
        import torch
        from torch import nn

        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        saved = [(m, m.momentum, m.training) for m in norms]
        try:
            for m in norms:
                m.reset_running_stats()
                m.momentum = None
                m.train()
            with torch.inference_mode():
                for x in self.bn_batches.x:
                    self.model(x)
        finally:
            for m, momentum, training in saved:
                m.momentum = momentum
                m.training = training


# ---- distributed -----------------------------------------------------------------------------------


def _all_gather(values: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Combine each rank's points: every point was computed by exactly one rank."""
    import torch
    import torch.distributed as dist

    packed = torch.from_numpy(np.concatenate([values, done[:, None].astype(np.float64)], axis=1))
    if dist.get_backend() == "nccl":
        packed = packed.cuda()  # nccl gathers GPU tensors only
    parts = [torch.empty_like(packed) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, packed)
    out = np.full_like(values, np.nan)
    seen = np.zeros(len(values), dtype=bool)
    for part in parts:
        arr = part.cpu().numpy()
        mask = arr[:, -1] > 0.5
        out[mask] = arr[mask, :-1]
        seen |= mask
    return out, seen


# ---- resumable point sweeps -------------------------------------------------------------------------


def sweep_key(tag: str, coords: np.ndarray, directions: Sequence[list[torch.Tensor]], extra: str = "",
              tensors: Sequence[torch.Tensor] = ()) -> str:
    """A name for a sweep's scratch file: changes whenever the points, the directions, the settings or
    `tensors` (e.g. the weights and the data, where the scratch folder does not already depend on them) do."""
    h = hashlib.sha256()
    h.update(tag.encode())
    h.update(np.ascontiguousarray(coords, dtype=np.float64).tobytes())
    h.update(extra.encode())
    for t in [t for d in directions for t in d] + list(tensors):
        h.update((t.detach().float() if t.is_floating_point() else t.detach()).contiguous().cpu().numpy().tobytes())
    return f"{tag}-{h.hexdigest()[:16]}"


@contextmanager
def _checkpointing(path: Path | None, values: np.ndarray, done: np.ndarray) -> Iterator[Callable[[bool], None]]:
    """Yield `save(force)`; saves every couple of seconds, and always on the way out (also on errors)."""
    last = [time.monotonic()]

    def save(force: bool = False) -> None:
        if path is None or (not force and time.monotonic() - last[0] < 2.0):
            return
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            np.savez(fh, values=values, done=done)
        os.replace(tmp, path)
        last[0] = time.monotonic()

    try:
        yield save
    finally:
        save(True)


def sweep(evaluator: Evaluator, coords: np.ndarray, scratch: Path | None = None, key: str = "",
          progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate (loss, accuracy) at each row of `coords`; resumable from `scratch`, split across ranks.

    Rank r takes points r, r + W, r + 2W, …; the result is gathered so every rank holds the whole grid.
    """
    rank, world = maybe_init_distributed()
    n = len(coords)
    values = np.full((n, 2), np.nan)
    done = np.zeros(n, dtype=bool)
    path = None
    if scratch is not None and key:
        Path(scratch).mkdir(parents=True, exist_ok=True)
        path = Path(scratch) / f"{key}-r{rank}of{world}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as saved:
                    if saved["values"].shape == values.shape:
                        values[:], done[:] = saved["values"], saved["done"]
            except Exception:  # a damaged checkpoint (truncated zip, bad header...): start over
                pass
    mine = [i for i in range(n) if i % world == rank]
    total = len(mine)
    with _checkpointing(path, values, done) as save:
        for j, i in enumerate(mine):
            if not done[i]:
                values[i] = evaluator.at(coords[i])
                done[i] = True
                save(False)
            if progress is not None:
                progress(j + 1, total)
    if world > 1:
        values, done = _all_gather(values, done)
    return values[:, 0], values[:, 1]
