"""Built-in models (the demo's digits CNN, the playground's MLP) and their deterministic training."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nnreport import scoped
from nnreport.cache import cache_root
from nnreport.datasets import Dataset
from nnreport.progress import ProgressEvent, ProgressFn, silent


class ResidualBlock(nn.Module):
    """conv-bn-relu-conv-bn plus the identity, then relu."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class DigitsCNN(nn.Module):
    """A small residual CNN for 1x16x16 digits: stem, two residual stages, global pooling, classifier."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.stage1 = ResidualBlock(16)
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.stage2 = ResidualBlock(32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.classifier(self.flatten(self.pool(x)))


def digits_cnn() -> nn.Module:
    return DigitsCNN()


def playground_mlp(hidden: tuple[int, ...] = (8, 8), inputs: int = 2, classes: int = 2) -> nn.Module:
    """A TensorFlow-Playground-sized MLP: tanh hidden layers on 2-D points."""
    layers: list[nn.Module] = []
    width = inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.Tanh()]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def train_classifier(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 0.0,
    progress: ProgressFn = silent,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train with Adam and cross-entropy, deterministically for a seed; returns the loss per epoch."""
    import torch.nn.functional as F

    assert data.y_train is not None
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(data.x_train))
    y = torch.from_numpy(np.ascontiguousarray(data.y_train))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * ((len(x) + batch_size - 1) // batch_size))
    g = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g)
        total = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
        progress(ProgressEvent("training", epoch + 1, epochs, f"loss {losses[-1]:.3f}", final=epoch + 1 == epochs))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    model.eval()
    return losses


def _source_hash() -> str:
    """This module's source: a change to any model class (e.g. ResidualBlock inside DigitsCNN) or to the
    training loop retrains, instead of loading weights into changed code."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Trained:
    """A trained model with its training snapshots (state dicts, oldest first) and the loss at each."""

    model: nn.Module
    checkpoints: tuple[dict[str, torch.Tensor], ...]
    history: tuple[float, ...]


def _trained(name: str, build: Callable[[], nn.Module], data: Dataset, seed: int, snapshots: int,
             progress: ProgressFn, **train: Any) -> Trained:
    """Train `build()` on `data` (or load the cached result); keep `snapshots` evenly spaced snapshots."""
    path = cache_root() / "models" / f"{name}-{_source_hash()}-{_kw_hash(train)}-s{seed}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = build()
            model.load_state_dict(saved["final"])
            return Trained(model.eval(), tuple(saved["checkpoints"]), tuple(saved["history"]))
        except Exception:  # a truncated or damaged cache file: train again and rewrite it
            path.unlink(missing_ok=True)
    epochs = train["epochs"]
    keep = set(np.linspace(0, epochs - 1, snapshots).round().astype(int).tolist()) if snapshots else set()
    checkpoints: list[dict[str, torch.Tensor]] = []
    history: list[float] = []
    with torch.random.fork_rng(), scoped.threads(1):  # one thread: faster for these sizes, and the same weights anywhere
        torch.manual_seed(seed)
        model = build()
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}

        def snapshot(epoch: int, loss: float) -> None:
            if epoch in keep:
                checkpoints.append({k: v.detach().clone() for k, v in model.state_dict().items()})
                history.append(loss)

        train_classifier(model, data, seed=seed, progress=progress, on_epoch=snapshot, **train)
    if snapshots:
        checkpoints.insert(0, initial)
        history.insert(0, float("nan"))
    try:
        _atomic_save({"final": model.state_dict(), "checkpoints": checkpoints, "history": history}, path)
    except OSError:
        pass  # a read-only cache: the demo works, it only trains again next time
    return Trained(model.eval(), tuple(checkpoints), tuple(history))


def _kw_hash(kw: dict[str, Any]) -> str:
    return hashlib.sha256(repr(sorted(kw.items())).encode()).hexdigest()[:8]


def trained_digits_cnn(seed: int = 0, progress: ProgressFn = silent) -> Trained:
    """The demo model, trained on built-in digits (cached by code, settings and seed after the first run)."""
    from nnreport.datasets import load_builtin

    return _trained("digits-cnn", DigitsCNN, load_builtin("digits", seed), seed, 6, progress, epochs=12, lr=0.01)


def _atomic_save(obj: object, path: Path) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def spiral_mlp() -> nn.Module:
    return playground_mlp((8, 8))


def trained_playground_mlp(seed: int = 0, progress: ProgressFn = silent) -> Trained:
    """The playground demo: a 2-8-8-2 tanh MLP trained on the spiral data, with 10 training snapshots."""
    from nnreport.datasets import load_builtin

    return _trained("spiral-mlp", spiral_mlp, load_builtin("spiral", seed), seed, 10, progress,
                    epochs=300, lr=0.03, batch_size=64)
