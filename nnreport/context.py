"""The context an analysis runs in: the model, its inputs and data, the seed, progress and earlier results."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.config import ReportConfig
from nnreport.datasets import Dataset
from nnreport.errors import Skipped
from nnreport.progress import ProgressFn, StageReporter, silent

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class Context:
    """Read-only view of the subject for analyses. Changes to `model` must go through `nnreport.scoped`."""

    model: nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    data: Dataset | None = None
    class_names: tuple[str, ...] | None = None
    config: ReportConfig = field(default_factory=ReportConfig)
    progress: ProgressFn = silent
    results: dict[str, Any] = field(default_factory=dict)
    scratch: Path | None = None
    stage_name: str = ""
    # Training snapshots (state dicts, oldest first) and the loss at each, when the model spec gave them.
    checkpoints: tuple[dict[str, torch.Tensor], ...] = ()
    history: tuple[float, ...] = ()
    # The resolved device the model sits on (the inspector moved it there once), the autocast precision
    # for forward-heavy work, and the working memory of one analysis in bytes.
    device: str = "cpu"
    precision: str = "fp32"
    memory_budget: int = 1 << 30
    _per_sample: dict[str, int] = field(default_factory=dict, repr=False)

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor on the analysis device (the same tensor when it is already there)."""
        return t.to(self.device)

    def tensor(self, array: Any) -> torch.Tensor:
        """A numpy array (or a slice of a dataset's arrays) as a tensor on the analysis device."""
        import torch

        return self.to_device(torch.from_numpy(np.ascontiguousarray(array)))

    def autocast(self) -> Any:
        """Mixed precision (`--precision`) for forward-heavy work; attribution gradients never use it."""
        from nnreport.device import autocast

        return autocast(self.device, self.precision)

    def batch_size(self, cap: int, backward: bool = False) -> int:
        """How many samples one forward (or forward + backward) pass may take within the memory budget, at
        most `cap` (the analysis's configured batch size)."""
        from nnreport import memory

        key = "backward" if backward else "forward"
        if key not in self._per_sample:
            one = tuple(t[:1] for t in self.example_inputs)
            self._per_sample[key] = memory.bytes_per_sample(self.model, one, backward)
        return memory.fit(self.memory_budget, self._per_sample[key], cap)

    def stage(self, name: str | None = None) -> StageReporter:
        return StageReporter(name or self.stage_name, self.progress)

    def rng(self, salt: str) -> np.random.Generator:
        """A numpy generator seeded by the report seed and `salt` (so analyses don't share streams)."""
        return np.random.default_rng([self.config.seed, _salt(salt)])

    def generator(self, salt: str) -> torch.Generator:
        import torch

        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + _salt(salt) % 1_000_003)

    @property
    def single_input(self) -> bool:
        return len(self.example_inputs) == 1

    def require_data(self, why: str = "it needs data") -> Dataset:
        if self.data is None:
            raise Skipped(f"no data was given ({why}); pass --data, e.g. --data digits")
        if not self.single_input:
            raise Skipped("the model takes several inputs; data sets feed single-input models only")
        return self.data

    def require_labels(self, why: str = "it needs labelled data") -> Dataset:
        data = self.require_data(why)
        if not data.has_labels:
            raise Skipped(f"the data has no labels ({why})")
        return data

    def samples(self, n: int, split: str = "test") -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first `n` inputs (and labels) of a split as tensors; deterministic."""
        data = self.require_data()
        x = data.x_test if split == "test" else data.x_train
        y = data.y_test if split == "test" else data.y_train
        n = min(n, len(x), self.config.max_samples if split == "test" else len(x))
        return self.tensor(x[:n]), (self.tensor(y[:n]) if y is not None else None)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the model and return its primary output tensor (see `primary_output`)."""
        return primary_output(self.model(*inputs))


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor from any device as numpy; half and bfloat16 values as float32 (numpy has no bfloat16)."""
    import torch

    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.cpu().numpy()


def primary_output(out: Any) -> torch.Tensor:
    """The tensor an analysis explains: the output itself, the first tensor of a tuple/list, or the
    first value of a dict (in insertion order)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        values = list(out.values())
    elif isinstance(out, (tuple, list)):
        values = list(out)
    else:
        values = [getattr(out, k) for k in getattr(out, "_fields", [])]  # namedtuple-like
    for v in values:
        try:
            return primary_output(v)
        except TypeError:
            continue
    raise TypeError(f"the model's output ({type(out).__name__}) holds no tensor")


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor in a (nested) tuple, list or dict of values, in order — a module's args or outputs."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    return []


def _salt(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
