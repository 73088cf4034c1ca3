"""Up-front checks of what the user hands in: labels against the class list and the model's outputs.

Each failure is one line naming the mismatch (exit 2), instead of a wrong accuracy or a traceback later.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnreport.errors import SpecError, UsageError


def check_labels(name: str, y: np.ndarray, classes: Sequence[str] | None = None) -> np.ndarray:
    """Labels as int64 class indices: one per sample, whole, non-negative and below len(classes)."""
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
