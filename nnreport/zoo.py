"""Built-in models (the demo's digits CNN, the playground's MLP) and their deterministic training."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

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
        progress(ProgressEvent("training", epoch + 1, epochs, f"loss {losses[-1]:.3f}"))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    model.eval()
    return losses


def _source_hash(*funcs: Callable[..., object]) -> str:
    return hashlib.sha256("".join(inspect.getsource(f) for f in funcs).encode()).hexdigest()[:16]


def trained_digits_cnn(seed: int = 0, progress: ProgressFn = silent) -> nn.Module:
    """The demo model, trained on built-in digits (cached by code and seed after the first run)."""
    from nnreport.datasets import load_builtin

    path = cache_root() / "models" / f"digits-cnn-{_source_hash(DigitsCNN, ResidualBlock, train_classifier)}-s{seed}.pt"
    if path.is_file():
        model = digits_cnn()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = digits_cnn()
        train_classifier(model, load_builtin("digits", seed), epochs=12, lr=0.01, seed=seed, progress=progress)
    _atomic_save(model.state_dict(), path)
    return model


def _atomic_save(obj: object, path: Path) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def trained_playground_mlp(seed: int = 0, progress: ProgressFn = silent) -> nn.Module:
    """The playground demo: a 2-8-8-2 tanh MLP trained on the spiral data (cached by code and seed)."""
    from nnreport.datasets import load_builtin

    path = cache_root() / "models" / f"spiral-mlp-{_source_hash(playground_mlp, train_classifier)}-s{seed}.pt"
    if path.is_file():
        model = playground_mlp((8, 8))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = playground_mlp((8, 8))
        train_classifier(model, load_builtin("spiral", seed), epochs=300, lr=0.03, batch_size=64, seed=seed, progress=progress)
    _atomic_save(model.state_dict(), path)
    return model
