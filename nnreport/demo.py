"""The embedded defaults: the digits CNN demo and the spiral playground demo."""

from __future__ import annotations

from typing import Any

from nnreport.datasets import Dataset, load_builtin
from nnreport.progress import ProgressFn, silent
from nnreport.subject import Subject


def demo_subject(playground: bool = False, seed: int = 0, progress: ProgressFn = silent) -> tuple[Subject, Dataset, str]:
    """The trained demo model (cached after the first run), its data and its name."""
    from nnreport import zoo

    if playground:
        data = load_builtin("spiral", seed)
        model: Any = zoo.trained_playground_mlp(seed=seed, progress=progress)
        return Subject(model, class_names=data.class_names, name="spiral-mlp"), data, "spiral-mlp"
    data = load_builtin("digits", seed)
    model = zoo.trained_digits_cnn(seed=seed, progress=progress)
    return Subject(model, class_names=data.class_names, name="digits-cnn"), data, "digits-cnn"
