"""Up-front checks of what the user hands in: labels against the class list and the model's outputs,
non-finite inputs and outputs, and how the model card names a class from a model file.

Each failure is one line naming the mismatch (exit 2), instead of a wrong accuracy or a traceback later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.errors import SpecError, UsageError

if TYPE_CHECKING:
    import torch

    from nnreport.datasets import Dataset


def check_labels(name: str, y: np.ndarray, classes: Sequence[str] | None = None, targets: bool = True) -> np.ndarray:
    """Labels as int64 class indices: one per sample, whole, non-negative and below len(classes).

    With `targets`, fractional float labels without a class list pass as float32 regression targets."""
    y = np.asarray(y)
    where = f"data {name!r}: labels y"
    if y.ndim != 1:
        hint = " (one-hot? store the class index of each sample)" if y.ndim == 2 else ""
        raise SpecError(f"{where} have shape {y.shape}; give one class index per sample{hint}")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise SpecError(f"{where} have dtype {y.dtype}; give integer class indices 0, 1, 2, ...")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            if targets and classes is None:
                return y.astype(np.float32)  # regression targets; check_data_labels holds them against the model
            raise SpecError(f"{where} hold {y[bad][0]!r} (dtype {y.dtype}); give integer class indices 0, 1, 2, ...")
    if len(y) and y.min() < 0:
        raise SpecError(f"{where} hold the negative label {y.min()!r}; class indices start at 0")
    if classes is not None and len(y) and y.max() >= len(classes):
        raise SpecError(f"{where} go up to {int(y.max())}, but the data names {len(classes)} classes "
                        f"(indices 0 to {len(classes) - 1})")
    return y.astype(np.int64)


def check_output_width(width: int, labels_max: int | None, class_names: Sequence[str] | None, what: str) -> None:
    """A classifier's score count must fit the class list and the labels (a single score is binary)."""
    if width <= 1:
        return
    if labels_max is not None and labels_max >= width:
        raise UsageError(f"{what} has labels up to {labels_max}, but the model's output has only {width} scores per sample")
    if class_names is not None and len(class_names) != width:
        raise UsageError(f"{what} names {len(class_names)} classes, but the model's output has {width} scores per sample")


def check_data_labels(data: Dataset, output: Any) -> None:
    """The data's labels, class list and the model's output (on a couple of samples) agree."""
    from nnreport.context import primary_output

    try:
        out = primary_output(output)
    except TypeError:
        out = None  # no tensor output: nothing to hold the labels against
    labels_max = None
    if data.y_train is not None and data.y_test is not None:
        if _regression_targets(data) and out is not None and out.dim() <= 2 and out.shape[-1:].numel() == 1:
            return  # float targets and one output per sample: a regressor (the evaluation page reads it so)
        for y in (data.y_train, data.y_test):
            check_labels(data.name, y, data.class_names, targets=False)
        labels_max = int(max(data.y_train.max(initial=0), data.y_test.max(initial=0)))
    names = data.class_names
    if names is not None and names == tuple(str(i) for i in range(len(names))):
        names = None  # numbered from the labels, not a class list: the labels are checked instead
    if out is None:
        return
    if out.dim() == 2:
        check_output_width(int(out.shape[1]), labels_max, names, f"the data {data.name!r}")


def _regression_targets(data: Dataset) -> bool:
    """Labels that are floats with fractional values: targets of a regressor, not class indices."""
    y = data.y_train
    return y is not None and np.issubdtype(np.asarray(y).dtype, np.floating) and bool(
        (np.asarray(y) != np.round(np.asarray(y))).any())


# Analyses whose numbers rest on the model's scores (logits, loss): with NaN or inf there, they fail.
SCORE_ANALYSES = frozenset({"relevance", "landscape", "playground", "cnnvis", "evaluation"})


def _count_nonfinite(arrays: Any) -> int:
    """NaN and inf values in float arrays; a float64 sum first, so finite data costs no mask of its size."""
    total = 0
    for a in arrays:
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.inexact):
            continue
        if np.issubdtype(a.dtype, np.floating) and np.isfinite(a.sum(dtype=np.float64)):
            continue
        total += int(a.size - np.count_nonzero(np.isfinite(a)))
    return total


def nonfinite_note(inputs: tuple[torch.Tensor, ...], out: Any, data: Dataset | None) -> str:
    """'' when inputs, data and outputs are all finite; else which of them hold NaN or inf, and how many."""
    from nnreport.context import tensors_in

    parts = []
    counts = (("the example inputs", _count_nonfinite(t.detach().cpu().float().numpy() for t in inputs)),
              ("the data", 0 if data is None else _count_nonfinite((data.x_train, data.x_test))),
              ("the model's outputs", _count_nonfinite(t.detach().cpu().float().numpy() for t in tensors_in(out))))
    for what, n in counts:
        if n:
            parts.append(f"{what} hold{'s' if what == 'the data' else ''} {n:,} NaN or infinite value{'s' * (n != 1)}")
    return "; ".join(parts)


def class_path(cls: type) -> str:
    """`module.Class`; for a class from a model file, `file.py:Class` with the path relative to the working
    folder (or the bare file name), so the report neither leaks nor depends on where the file lives."""
    import os
    import sys

    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if not cls.__module__.startswith("nnreport_user_") or not file:
        return f"{cls.__module__}.{cls.__qualname__}"
    rel = os.path.relpath(file)
    shown = rel if not rel.startswith("..") and not os.path.isabs(rel) else os.path.basename(file)
    return f"{shown.replace(os.sep, '/')}:{cls.__qualname__}"
