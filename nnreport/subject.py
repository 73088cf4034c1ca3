"""What a model spec provides: the module plus, optionally, example inputs, class names and data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Subject:
    """The model under inspection and what its provider knows about it.

    A `file.py:callable` model spec may return a bare `nn.Module` or a `Subject`:

        def build():
            model = MyNet()
            model.load_state_dict(torch.load("w.pt", weights_only=True))
            return nnreport.Subject(model, example_inputs=torch.randn(1, 3, 32, 32),
                                    class_names=["cat", "dog"], data="shapes")

    `example_inputs` is a tensor or a tuple of tensors (one per positional argument of `forward`),
    with a leading batch dimension. `data` is anything `--data` accepts (a spec string, a
    `nnreport.datasets.Dataset`, `(x, y)` arrays or tensors, or a torch `Dataset`).
    """

    model: Any
    example_inputs: Any = None
    class_names: Sequence[str] | None = None
    data: Any = None
    name: str | None = None
    # Training snapshots, oldest first, as state dicts of `model` (the model itself holds the final
    # weights). Used by analyses that show training: loss-landscape trajectories, playground slider.
    checkpoints: Sequence[Mapping[str, Any]] = ()
    # Optional training history: the training loss after each snapshot (same length as checkpoints).
    history: Sequence[float] = ()
    # The model's own preprocessing of images (a callable PIL image -> tensor, or "imagenet"), used when
    # `data` is an image folder or a Dataset of PIL images; and a separate test set (then `data` is not split).
    transform: Any = None
    eval_data: Any = None
