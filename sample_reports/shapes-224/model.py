"""The model of this sample: a small ResNet for 224-px images, with the weights make.py trained.

    python3 -m nnreport build sample_reports/shapes-224/model.py:build --data FOLDER ...
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nnreport import Subject

WEIGHTS = Path(__file__).resolve().parent / "weights.pt"
CLASSES = 4


class Block(nn.Module):
    """Basic residual block: conv-bn-relu-conv-bn plus the (projected, when the shape changes) input."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


class ShapesResNet(nn.Module):
    """7×7 stride-2 stem to 16 channels and a max-pool (224 → 56 px), three stages of 16/32/64 channels
    with stride 2 (→ 28, 14, 7 px), global average pool, linear."""

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.stages = nn.Sequential(Block(16, 16, 2), Block(16, 32, 2), Block(32, 64, 2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def build() -> Subject:
    """The trained model (run make.py first if weights.pt is missing)."""
    model = ShapesResNet()
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return Subject(model.eval(), name="ShapesResNet on 224-px shapes")
