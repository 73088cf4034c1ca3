"""The embedded defaults: the digits CNN demo and the spiral playground demo."""

from __future__ import annotations

from nnreport.datasets import Dataset, load_builtin
from nnreport.progress import ProgressFn, silent
from nnreport.subject import Subject


def demo_subject(playground: bool = False, seed: int = 0, progress: ProgressFn = silent) -> tuple[Subject, Dataset, str]:
    """The trained demo model (cached after the first run), its data and its name."""
    from nnreport import zoo

    name, data = ("spiral-mlp", load_builtin("spiral", seed)) if playground else ("digits-cnn", load_builtin("digits", seed))
    trained = (zoo.trained_playground_mlp if playground else zoo.trained_digits_cnn)(seed=seed, progress=progress)
    subject = Subject(trained.model, class_names=data.class_names, name=name,
                      checkpoints=trained.checkpoints, history=trained.history)
    return subject, data, name
