"""What differs between two inspections: layers, metrics, per-class accuracy and prediction flips (the
comparing itself, and ComparisonReport, are in nnreport.api)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nnreport.errors import UsageError
from nnreport.inspection import Inspection

if TYPE_CHECKING:
    from nnreport.analyses.summary import LayerRow, SummaryResult

Change = Literal["same", "changed", "added", "removed"]
MAX_FLIPS_SHOWN = 24


@dataclass(frozen=True)
class LayerDiff:
    """One module call matched by module path and call number across the two models."""

    path: str
    call: int
    status: Change
    type_a: str
    type_b: str
    params_a: int
    params_b: int
    output_a: str
    output_b: str
    detail: str


@dataclass(frozen=True)
class Metric:
    name: str
    a: float | None
    b: float | None
    # How to show it: an integer count, a fraction as a percentage, or bytes.
    kind: Literal["count", "percent", "bytes", "number"] = "number"


@dataclass(frozen=True)
class ClassAccuracy:
    name: str
    a: float
    b: float


@dataclass(frozen=True)
class Flip:
    """A test sample whose predicted class differs between the two models."""

    index: int
    label: int
    pred_a: int
    pred_b: int
    # Input image (display space, [0, 1], C×H×W) and each model's relevance map for its own prediction,
    # where the data and both models were at hand (empty arrays otherwise).
    image: np.ndarray
    relevance_a: np.ndarray
    relevance_b: np.ndarray


@dataclass(frozen=True)
class Comparison:
    names: tuple[str, str]
    metrics: tuple[Metric, ...]
    layers: tuple[LayerDiff, ...]
    per_class: tuple[ClassAccuracy, ...]
    flips: tuple[Flip, ...]
    flips_total: int
    fixed: int  # wrong under A, right under B
    broken: int  # right under A, wrong under B
    evaluated: int
    prediction_note: str
    relevance_method: str

    @property
    def layer_changes(self) -> tuple[LayerDiff, ...]:
        return tuple(d for d in self.layers if d.status != "same")

    @property
    def identical(self) -> bool:
        return not self.layer_changes and self.flips_total == 0 and all(m.a == m.b for m in self.metrics)


def _key_rows(summary: SummaryResult | None) -> dict[tuple[str, int], LayerRow]:
    return {(r.path, r.call): r for r in summary.rows} if summary else {}


def _shape_text(row: LayerRow | None) -> str:
    from nnreport.formatting import fmt_shapes

    return fmt_shapes([s[1:] for s in row.output_shapes]) if row is not None else ""


def diff_layers(a: SummaryResult | None, b: SummaryResult | None) -> tuple[LayerDiff, ...]:
    """Match rows by (module path, call); order follows B, with A's removed rows after their predecessor."""
    rows_a, rows_b = _key_rows(a), _key_rows(b)
    order = list(rows_b)
    for i, key in enumerate(rows_a):
        if key not in rows_b:
            before = list(rows_a)[:i]
            pos = max((order.index(k) + 1 for k in before if k in order), default=0)
            order.insert(pos, key)
    diffs = []
    for key in order:
        ra, rb = rows_a.get(key), rows_b.get(key)
        status: Change
        details = []
        if ra is None:
            status = "added"
        elif rb is None:
            status = "removed"
        else:
            if ra.type != rb.type:
                details.append(f"type {ra.type} → {rb.type}")
            if ra.params != rb.params:
                details.append(f"params {ra.params:,} → {rb.params:,}")
            if _shape_text(ra) != _shape_text(rb):
                details.append(f"output {_shape_text(ra)} → {_shape_text(rb)}")
            status = "changed" if details else "same"
        diffs.append(LayerDiff(
            key[0], key[1], status, ra.type if ra else "", rb.type if rb else "", ra.params if ra else 0,
            rb.params if rb else 0, _shape_text(ra), _shape_text(rb), "; ".join(details),
        ))
    return tuple(diffs)


def _metrics(a: Inspection, b: Inspection) -> tuple[Metric, ...]:
    sa, sb = a.result("summary"), b.result("summary")
    ma, mb = a.manifest.model, b.manifest.model
    rows = [
        Metric("Parameters", ma.num_params, mb.num_params, "count"),
        Metric("Trainable parameters", ma.trainable_params, mb.trainable_params, "count"),
        Metric("Size of parameters", ma.param_bytes, mb.param_bytes, "bytes"),
    ]
    if sa is not None and sb is not None:
        rows.append(Metric("Mult-adds (one sample)", sa.total_mult_adds, sb.total_mult_adds, "count"))
        rows.append(Metric("Test accuracy", sa.accuracy, sb.accuracy, "percent"))
    return tuple(rows)


def _per_class(a: Inspection, b: Inspection) -> tuple[ClassAccuracy, ...]:
    sa, sb = a.result("summary"), b.result("summary")
    if sa is None or sb is None or sa.per_class_accuracy is None or sb.per_class_accuracy is None:
        return ()
    names = b.manifest.model.class_names or a.manifest.model.class_names or ()
    n = min(len(sa.per_class_accuracy), len(sb.per_class_accuracy))
    return tuple(ClassAccuracy(names[i] if i < len(names) else str(i), sa.per_class_accuracy[i], sb.per_class_accuracy[i])
                 for i in range(n))


@dataclass(frozen=True)
class _Predictions:
    labels: np.ndarray
    a: np.ndarray
    b: np.ndarray

    @property
    def flipped(self) -> np.ndarray:
        return np.flatnonzero(self.a != self.b)


def _predictions(a: Inspection, b: Inspection) -> _Predictions | str:
    """Both models' test predictions on the same samples, or why they cannot be matched."""
    sa, sb = a.result("summary"), b.result("summary")
    if sa is None or sb is None or sa.predictions is None or sb.predictions is None:
        return "predictions need labelled data and one score per class from both models"
    if a.manifest.model.data_name != b.manifest.model.data_name or sa.labels is None or sb.labels is None \
            or len(sa.labels) != len(sb.labels) or not np.array_equal(sa.labels, sb.labels):
        return "the two reports were evaluated on different data, so predictions cannot be matched"
    return _Predictions(sa.labels, sa.predictions, sb.predictions)


def compare_inspections(a: Inspection, b: Inspection, names: tuple[str, str] = ("A", "B"),
                        flip_details: Any = None) -> Comparison:
    """Compare two inspections. `flip_details(indices) -> (images, rel_a, rel_b, method)` adds pictures."""
    preds = _predictions(a, b)
    sa = a.result("summary")
    common = dict(names=names, metrics=_metrics(a, b), layers=diff_layers(sa, b.result("summary")),
                  per_class=_per_class(a, b))
    if isinstance(preds, str):
        return Comparison(**common, flips=(), flips_total=0, fixed=0, broken=0, evaluated=0,  # type: ignore[arg-type]
                          prediction_note=preds, relevance_method="")
    idx = preds.flipped
    shown = idx[:MAX_FLIPS_SHOWN]
    images = rel_a = rel_b = None
    method = ""
    if flip_details is not None and len(shown):
        images, rel_a, rel_b, method = flip_details(shown)
    empty = np.zeros(0, np.float32)
    flips = tuple(
        Flip(int(i), int(preds.labels[i]), int(preds.a[i]), int(preds.b[i]),
             images[k] if images is not None else empty, rel_a[k] if rel_a is not None else empty,
             rel_b[k] if rel_b is not None else empty)
        for k, i in enumerate(shown)
    )
    right_a, right_b = preds.a[idx] == preds.labels[idx], preds.b[idx] == preds.labels[idx]
    return Comparison(
        **common, flips=flips, flips_total=int(len(idx)), fixed=int(right_b.sum()),  # type: ignore[arg-type]
        broken=int(right_a.sum()), evaluated=len(preds.labels), prediction_note="", relevance_method=method,
    )


def parse_names(text: str | None) -> tuple[str, str]:
    if not text:
        return ("A", "B")
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UsageError(f"--names {text!r} needs two names, e.g. --names base,head")
    return parts[0], parts[1]
