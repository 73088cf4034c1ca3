"""The evaluation on the torch side: one streamed, batched pass over the test split (eval mode, no_grad)
that keeps the outputs and the input of the last Linear layer, then the metrics, gallery maps and embedding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.errors import Skipped
from nnreport.evaluation import embedding as E
from nnreport.evaluation import metrics as M
from nnreport.evaluation.config import EvaluationConfig
from nnreport.evaluation.results import Embedding, EvaluationResult, Gallery, GallerySample, InputKind

if TYPE_CHECKING:
    import torch

    from nnreport.context import Context
    from nnreport.datasets import Dataset, Inputs


@dataclass(frozen=True)
class Pass:
    """What the streamed pass kept: outputs (N, C) and the last Linear's inputs for the first samples."""

    outputs: np.ndarray
    features: np.ndarray | None
    layer: str
    kind: str = "linear"  # or "conv": a model without Linear layers gives its last convolution's pooled input


def run(ctx: Context, config: EvaluationConfig) -> EvaluationResult:
    """Evaluate the model on the test split: a classifier, a regressor, or skipped with the reason."""
    data = ctx.require_labels("the evaluation compares predictions with labels")
    assert data.y_test is not None
    n = min(len(data.x_test), config.max_samples)
    if n == 0:
        raise Skipped("the test split is empty")
    y = np.asarray(data.y_test[:n])
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise Skipped(f"the labels have shape {tuple(y.shape[1:])} per sample; the evaluation needs one class index "
                      "or one float value per sample")
    task: list[str] = []
    # The first batch decides classifier or regressor, so that a model the evaluation does not apply to
    # is skipped before the whole split has run.
    p = stream(ctx, data.x_test, n, config.batch_size, config.embedding_samples,
               first=lambda out: task.append(_task(out, y)))
    if task[0] == "regression":
        return _regression(y, p.outputs[:, 0], config)
    return _classification(ctx, data, config, p, y.astype(np.int64))


def _regression(y: np.ndarray, pred: np.ndarray, config: EvaluationConfig) -> EvaluationResult:
    """Errors over the samples whose label and prediction are both finite (the others are counted in a note)."""
    ok = np.isfinite(y) & np.isfinite(pred)
    if not ok.any():
        raise Skipped("no test sample has both a finite label and a finite prediction")
    dropped = int((~ok).sum())
    notes = (f"{dropped:,} test sample(s) with a non-finite label or prediction are left out of the errors.",) if dropped else ()
    return EvaluationResult("regression", int(ok.sum()), regression=M.regression(y[ok], pred[ok], config.regression_points),
                            notes=notes)


def stream(ctx: Context, x_all: Inputs, n: int, batch_size: int, keep: int,
           first: Callable[[np.ndarray], object] | None = None) -> Pass:
    """Forward the first `n` inputs in batches; keep every output and the input of the last Linear called
    (the penultimate features) for the first `keep` samples, via a scoped forward pre-hook. A model without
    a Linear layer (SqueezeNet's conv head) gives the input of its last convolution, averaged over positions.
    `first` sees the first batch's outputs (N, C) and may raise Skipped."""
    import torch
    from torch import nn

    from nnreport import distributed, scoped

    names = {id(m): name for name, m in ctx.model.named_modules()}
    seen: dict[str, Any] = {}

    def grab(module: nn.Module, args: Any) -> None:
        if args and isinstance(args[0], torch.Tensor):
            kind = "linear" if isinstance(module, nn.Linear) else "conv"
            seen[kind] = (names.get(id(module), type(module).__name__), args[0])

    def one(i: int) -> tuple[np.ndarray, np.ndarray | None, str, str]:
        """Batch i: its outputs, and the features of its samples among the first `keep` (with their layer)."""
        start = i * size
        x = ctx.tensor(x_all[start:min(start + size, n)])  # one batch on the analysis device
        seen.clear()
        with ctx.autocast():
            out = ctx.forward(x)
        _check_output(out, len(x))
        kept, name, kind = None, "", "linear"
        if start < keep and seen:
            kind = "linear" if "linear" in seen else "conv"
            name, feats = seen[kind]
            feats = feats.detach().float()
            if kind == "conv" and feats.dim() > 2:
                feats = feats.flatten(2).mean(2)
            if feats.shape[0] == len(x):
                kept = feats.reshape(len(x), -1)[:keep - start].cpu().numpy()
        return out.detach().float().reshape(len(x), -1).cpu().numpy(), kept, name, kind

    outputs: list[np.ndarray] = []
    features: list[np.ndarray] = []
    layer, kind = "", "linear"
    with scoped.hooks() as h, scoped.eval_mode(ctx.model), torch.no_grad():
        for m in ctx.model.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                h.forward_pre(m, grab)
        size = ctx.batch_size(batch_size)  # within the report's memory budget
        # Under torchrun the batches are shared out over the processes and gathered in order.
        for i, (out, kept, name, found) in enumerate(distributed.stream_shared(one, -(-n // size))):
            outputs.append(out)
            if first is not None and i == 0:
                first(out)
            if name and not layer:
                layer, kind = name, found
            if kept is not None:
                features.append(kept)
    usable = features and len({f.shape[1] for f in features}) == 1
    return Pass(np.concatenate(outputs), np.concatenate(features) if usable else None, layer, kind)


def _check_output(out: torch.Tensor, batch: int) -> None:
    if out.dim() not in (1, 2) or out.shape[0] != batch:
        raise Skipped(f"the output has shape {tuple(out.shape)}, neither one score per class nor one value per "
                      "sample, so there is nothing to evaluate against the labels")


def _task(outputs: np.ndarray, y: np.ndarray) -> str:
    classes = outputs.shape[1]
    integer = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if classes >= 2:
        if not integer:
            raise Skipped(f"the model gives {classes} values per sample but the labels are {y.dtype} numbers, "
                          "not class indices")
        if y.min() < 0 or y.max() >= classes:
            raise Skipped(f"the labels run from {y.min()} to {y.max()}, outside the model's {classes} classes")
        return "classification"
    if integer:
        if set(np.unique(y).tolist()) <= {0, 1}:
            return "classification"
        raise Skipped("the model gives one value per sample but the labels are integers other than 0/1: "
                      "neither a classifier nor a regression with float labels")
    return "regression"


def _names(ctx: Context, data: Dataset, classes: int) -> tuple[str, ...]:
    for names in (ctx.class_names, data.class_names):
        if names and len(names) == classes:
            return tuple(str(c) for c in names)
    return tuple(str(c) for c in range(classes))


def _classification(ctx: Context, data: Dataset, config: EvaluationConfig, p: Pass, y: np.ndarray) -> EvaluationResult:
    transform = M.probability_transform(p.outputs)
    probs = M.to_probabilities(p.outputs, transform)
    classes = probs.shape[1]
    names = _names(ctx, data, classes)
    pred = probs.argmax(1)
    matrix = M.confusion(y, pred, classes)
    rows, macro, weighted = M.per_class(matrix, names)
    curve_classes = list(range(min(classes, config.curve_classes)))
    roc, pr, areas = M.curves(probs, y, curve_classes, config.curve_points)
    rows = [replace(r, auc=areas[c][0], average_precision=areas[c][1]) for c, r in enumerate(rows)]
    missing = [names[c] for c in range(classes) if areas[c][0] is None]
    curves_note = (f"Curves for the first {config.curve_classes} of {classes} classes; the table has AUC and AP for all. "
                   if classes > config.curve_classes else "")
    if missing:
        curves_note += (f"No ROC/PR curve for {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}: "
                        "a class needs both positive and negative test samples.")
    cal = M.calibration(probs, y, transform, config.bins)
    k = config.top_k if classes > config.top_k else None
    conf = probs.max(1)
    ctx.stage().step(1, 3, "evaluation: gallery")
    gallery = _gallery(ctx, data, config, y, pred, conf, p.outputs.shape[1])
    ctx.stage().step(2, 3, "evaluation: embedding")
    emb, emb_note = _embedding(ctx, data, config, p, y, pred, conf)
    return EvaluationResult(
        task="classification", samples=len(y), class_names=names, accuracy=float((pred == y).mean()),
        top_k=k, top_k_accuracy=M.top_k_accuracy(probs, y, k) if k else None,
        per_class=tuple(rows), macro=macro, weighted=weighted,
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        most_confused=M.most_confused(matrix, config.confused_pairs),
        roc=roc, pr=pr, curves_note=curves_note.strip(), calibration=cal, ece=cal.ece,
        gallery=gallery, embedding=emb, embedding_note=emb_note,
        train_counts=_counts(data.y_train, classes), test_counts=_counts(data.y_test, classes))


def _counts(y: np.ndarray | None, classes: int) -> tuple[int, ...]:
    if y is None or not np.issubdtype(np.asarray(y).dtype, np.integer):
        return ()
    y = np.asarray(y, dtype=np.int64)
    return tuple(int(c) for c in np.bincount(y[(y >= 0) & (y < classes)], minlength=classes))


def _input_kind(data: Dataset, x: np.ndarray) -> InputKind:
    if not np.issubdtype(x.dtype, np.floating):
        return "tokens" if np.issubdtype(x.dtype, np.integer) else "other"
    if x.ndim == 4 and data.kind == "image":
        return "image"
    return "features" if x.ndim == 2 else "other"


def gallery_indices(y: np.ndarray, pred: np.ndarray, conf: np.ndarray, per_group: int) -> tuple[np.ndarray, np.ndarray]:
    """The most confident mistakes and the least confident correct predictions (ties: lower index first)."""
    wrong, right = np.flatnonzero(pred != y), np.flatnonzero(pred == y)
    mistakes = wrong[np.argsort(-conf[wrong], kind="stable")][:per_group]
    unsure = right[np.argsort(conf[right], kind="stable")][:per_group]
    return mistakes, unsure


def _gallery(ctx: Context, data: Dataset, config: EvaluationConfig, y: np.ndarray, pred: np.ndarray,
             conf: np.ndarray, outputs: int) -> Gallery | None:
    mistakes, unsure = gallery_indices(y, pred, conf, config.gallery)
    idx = np.concatenate([mistakes, unsure]).astype(np.int64)
    if config.gallery <= 0 or not len(idx):
        return None
    x = np.asarray(data.x_test[idx])
    kind = _input_kind(data, x)
    samples = tuple(GallerySample(int(i), "mistake" if k < len(mistakes) else "unsure", int(y[i]), int(pred[i]),
                                  round(float(conf[i]), 6), " ".join(str(t) for t in x[k].reshape(-1)[:64])
                                  if kind == "tokens" else "")
                    for k, i in enumerate(idx))
    targets = pred[idx] if outputs > 1 else np.zeros(len(idx), np.int64)
    maps, method, note = _maps(ctx, data, x, targets, kind, config, None if outputs > 1 else pred[idx])
    empty = np.zeros((0,), np.float32)
    return Gallery(
        kind=kind, samples=samples,
        images=display(data, x) if kind == "image" else empty,
        features=x.astype(np.float32) if kind == "features" else empty,
        feature_names=tuple(data.feature_names or ()) if kind == "features" else (),
        maps=maps, maps_method=method, maps_note=note)


def _maps(ctx: Context, data: Dataset, x: np.ndarray, targets: np.ndarray, kind: InputKind,
          config: EvaluationConfig, single_logit: np.ndarray | None = None) -> tuple[np.ndarray | None, str, str]:
    """LRP (ε-z⁺-flat, as on the relevance page) for each gallery sample's predicted class."""
    import torch

    if not config.maps:
        return None, "", "maps are turned off ([analyses.evaluation] maps = false)"
    if kind not in ("image", "features"):
        return None, "", "relevance maps explain floating-point images and feature vectors, not these inputs"
    from nnreport.relevance import explain

    low, high = data.value_range()
    try:
        e = explain(ctx.model, ctx.tensor(x), torch.from_numpy(targets), "lrp",
                    composite="epsilon_plus_flat", low=low, high=high, memory_budget=ctx.memory_budget)
    except Exception as exc:  # noqa: BLE001 - a model LRP cannot explain still gets its gallery
        return None, "", f"LRP does not apply to this model: {type(exc).__name__}: {exc}"
    r = e.relevance.detach().float().cpu().numpy()
    r = r.sum(1) if r.ndim == 4 else r
    if single_logit is not None:
        # One output: LRP explains its logit, evidence for class 1. Every rule is linear in the relevance it
        # starts from, so a prediction of class 0 (the logit's negative) gets the negated map.
        r = np.where((single_logit == 0).reshape(-1, *([1] * (r.ndim - 1))), -r, r)
    return r.astype(np.float32), "LRP ε-z⁺-flat for the predicted class", ""


def display(data: Dataset, x: np.ndarray) -> np.ndarray:
    """Images (N, C, H, W) as the eye saw them, in [0, 1]: the data's normalisation undone, or, where the
    data does not record one, the batch's own value range stretched to [0, 1]."""
    if data.mean is not None and data.std is not None:
        return data.to_display(x).astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    return ((x - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def _embedding(ctx: Context, data: Dataset, config: EvaluationConfig, p: Pass, y: np.ndarray, pred: np.ndarray,
               conf: np.ndarray) -> tuple[Embedding | None, str]:
    if config.embedding_samples <= 0:
        return None, "the embedding is turned off ([analyses.evaluation] embedding_samples = 0)"
    if p.features is None:
        return None, "the model has no Linear or convolution layer whose input holds one feature vector per sample"
    f = p.features
    m = len(f)
    xy, method = E.project(f, ctx.config.seed, config.perplexity, config.tsne_max)
    x = np.asarray(data.x_test[:m])
    thumbs = (E.thumbnails(display(data, x), config.thumbnail) if _input_kind(data, x) == "image"
              else np.zeros((0, 0, 0, 3), np.uint8))
    return Embedding(layer=p.layer, kind=p.kind, dimensions=int(f.shape[1]), method=method, indices=np.arange(m, dtype=np.int64),
                     x=xy[:, 0].copy(), y=xy[:, 1].copy(), labels=y[:m].astype(np.int64),
                     predictions=pred[:m].astype(np.int64), confidence=conf[:m].astype(np.float32),
                     thumbnails=thumbs), ""
