"""Model summary: the per-layer table (shapes, parameters, mult-adds, memory) and test accuracy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.analyses import analysis

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nnreport.context import Context


@dataclass(frozen=True)
class SummaryConfig:
    # Evaluate accuracy on at most this many test samples.
    max_eval_samples: int = 10_000
    batch_size: int = 256


@dataclass(frozen=True)
class LayerRow:
    """One module call (a module called twice gives two rows; its parameters count once)."""

    path: str
    label: str
    type: str
    depth: int
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    params: int
    trainable_params: int
    mult_adds: int
    output_bytes: int
    leaf: bool
    call: int


@dataclass(frozen=True)
class SummaryResult:
    rows: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    param_bytes: int
    total_mult_adds: int
    output_bytes: int
    input_bytes: int
    # Accuracy on the data's test split, where there are labels and the output is one score per class.
    accuracy: float | None = None
    eval_samples: int = 0
    per_class_accuracy: tuple[float, ...] | None = None
    accuracy_note: str = ""
    # Predicted and true class of each evaluated test sample (the first `eval_samples`), for comparisons.
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    # Why some columns are empty (e.g. a TorchScript module cannot be hooked, so no shapes).
    note: str = ""


@analysis("summary", title="Model summary", config=SummaryConfig, result=SummaryResult, order=0)
def summarize(ctx: Context, config: SummaryConfig) -> SummaryResult:
    """A torchinfo-style layer table with totals, for one sample, plus test accuracy."""
    import torch

    single = tuple(t[:1] for t in ctx.example_inputs)
    note = ""
    if isinstance(ctx.model, torch.jit.ScriptModule):
        rows = _static_rows(ctx.model)
        note = "TorchScript modules cannot be hooked: the table lists modules and parameters, without shapes or mult-adds."
    else:
        try:
            rows = _trace_rows(ctx.model, single)
        except Exception:  # e.g. an exported program specialised to its example batch size
            batch = ctx.example_inputs[0].shape[0] if ctx.example_inputs[0].dim() else 1
            single = ctx.example_inputs
            rows = [replace(r, mult_adds=r.mult_adds // max(batch, 1)) for r in _trace_rows(ctx.model, single)]
            note = (f"The model does not run on a batch of one, so shapes are for the example batch of {batch}; "
                    "mult-adds are per sample.")
    params = list(ctx.model.parameters())
    accuracy, n, per_class, acc_note, preds, labels = _accuracy(ctx, config)
    return SummaryResult(
        rows=tuple(rows),
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        total_mult_adds=sum(r.mult_adds for r in rows if r.leaf),
        output_bytes=sum(r.output_bytes for r in rows if r.leaf),
        input_bytes=sum(t.numel() * t.element_size() for t in single),
        accuracy=accuracy,
        eval_samples=n,
        per_class_accuracy=per_class,
        accuracy_note=acc_note,
        predictions=preds,
        labels=labels,
        note=note,
    )


def _trace_rows(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[LayerRow]:
    """Record every module call with forward hooks; rows come out in call (pre-hook) order."""
    import torch

    from nnreport import scoped
    from nnreport.context import tensors_in

    paths = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    depth_counters: dict[int, int] = {}
    rows: list[dict[str, Any]] = []
    stack: list[int] = []
    seen_params: set[int] = set()
    calls: dict[int, int] = {}

    def pre(module: nn.Module, args: Any) -> None:
        path = paths.get(id(module), "?")
        depth = 0 if not path else path.count(".") + 1
        depth_counters[depth] = depth_counters.get(depth, 0) + 1
        for d in [d for d in depth_counters if d > depth]:
            del depth_counters[d]
        own = [p for p in module.parameters(recurse=False)]
        fresh = [p for p in own if id(p) not in seen_params]
        seen_params.update(id(p) for p in own)
        leaf = not any(True for _ in module.children())
        calls[id(module)] = calls.get(id(module), -1) + 1
        stack.append(len(rows))
        rows.append(dict(
            path=path or "(model)", label=f"{type(module).__name__}: {depth}-{depth_counters[depth]}",
            type=type(module).__name__, depth=depth,
            input_shapes=tuple(tuple(t.shape) for t in tensors_in(args)),
            params=sum(p.numel() for p in fresh), trainable_params=sum(p.numel() for p in fresh if p.requires_grad),
            leaf=leaf, call=calls[id(module)], module=module,
        ))

    def post(module: nn.Module, args: Any, output: Any) -> None:
        row = rows[stack.pop()]
        outs = tensors_in(output)
        row["output_shapes"] = tuple(tuple(t.shape) for t in outs)
        row["output_bytes"] = sum(t.numel() * t.element_size() for t in outs)
        row["mult_adds"] = mult_adds(module, tensors_in(args), outs) if row["leaf"] else 0

    with scoped.hooks() as h, scoped.eval_mode(model), torch.no_grad():
        for m in model.modules():
            h.forward_pre(m, pre)
            h.forward(m, post)
        model(*inputs)
    for row in rows:
        row.pop("module")
        row.setdefault("output_shapes", ())
        row.setdefault("output_bytes", 0)
        row.setdefault("mult_adds", 0)
    _roll_up_mult_adds(rows)
    return [LayerRow(**row) for row in rows]


def _static_rows(model: nn.Module) -> list[LayerRow]:
    """Rows from the module tree alone, for models that cannot run hooks."""
    rows = []
    counters: dict[int, int] = {}
    for path, module in model.named_modules():
        depth = 0 if not path else path.count(".") + 1
        counters[depth] = counters.get(depth, 0) + 1
        own = list(module.parameters(recurse=False))
        kind = getattr(module, "original_name", type(module).__name__)
        rows.append(LayerRow(path or "(model)", f"{kind}: {depth}-{counters[depth]}", kind, depth, (), (),
                             sum(p.numel() for p in own), sum(p.numel() for p in own if p.requires_grad), 0, 0,
                             not any(True for _ in module.children()), 0))
    return rows


def _roll_up_mult_adds(rows: list[dict[str, Any]]) -> None:
    """A container's mult-adds are the sum over the leaf calls beneath it (by path prefix)."""
    for row in rows:
        if not row["leaf"]:
            prefix = "" if row["path"] == "(model)" else row["path"] + "."
            row["mult_adds"] = sum(r["mult_adds"] for r in rows if r["leaf"] and (r["path"].startswith(prefix)))


def mult_adds(module: nn.Module, inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> int:
    """Multiply-accumulate count of one call of a leaf module (the common layer types)."""
    from torch import nn

    if not outputs:
        return 0
    out = outputs[0]
    if isinstance(module, nn.modules.conv._ConvNd):
        per_output = module.weight[0].numel()  # in_channels / groups * prod(kernel)
        return out.numel() * per_output
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.Bilinear):
        return out.numel() * module.in1_features * module.in2_features
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)):
        return out.numel() if any(p is not None for p in (getattr(module, "weight", None),)) else 0
    if isinstance(module, nn.RNNBase):
        return _rnn_mult_adds(module, inputs[0] if inputs else out)
    if isinstance(module, nn.MultiheadAttention):
        return _mha_mult_adds(module, inputs)
    if isinstance(module, nn.Embedding):
        return 0
    return 0


def _rnn_mult_adds(module: nn.RNNBase, x: torch.Tensor) -> int:
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    steps = x.shape[1] if module.batch_first and x.dim() == 3 else x.shape[0]
    batch = (x.shape[0] if module.batch_first else x.shape[1]) if x.dim() == 3 else 1
    dirs = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        in_size = module.input_size if layer == 0 else module.hidden_size * dirs
        total += gates * module.hidden_size * (in_size + module.hidden_size) * dirs
    return total * steps * batch


def _mha_mult_adds(module: nn.MultiheadAttention, inputs: list[torch.Tensor]) -> int:
    if len(inputs) < 3:
        return 0
    q, k = inputs[0], inputs[1]
    seq_axis, batch_axis = (1, 0) if module.batch_first else (0, 1)
    lq, lk, b = q.shape[seq_axis], k.shape[seq_axis], q.shape[batch_axis]
    e = module.embed_dim
    projections = lq * e * e + lk * module.kdim * e + lk * module.vdim * e + lq * e * e  # q, k, v, out
    attention = 2 * lq * lk * e  # scores and the weighted sum
    return b * (projections + attention)


def _accuracy(ctx: Context, config: SummaryConfig) -> tuple[
        float | None, int, tuple[float, ...] | None, str, np.ndarray | None, np.ndarray | None]:
    import torch

    from nnreport import scoped

    data = ctx.data
    if data is None or not data.has_labels or not ctx.single_input:
        return None, 0, None, "no labelled data" if ctx.single_input else "the model takes several inputs", None, None
    from nnreport import distributed

    n = min(len(data.x_test), config.max_eval_samples)
    size = ctx.batch_size(config.batch_size)
    starts = list(range(0, n, size))

    def predict(start: int) -> np.ndarray | str:
        """Predicted classes of one batch (or why the output is not one score per class)."""
        with ctx.autocast():
            out = ctx.forward(ctx.tensor(data.x_test[start:min(start + size, n)]))
        if out.dim() != 2 or (data.num_classes and out.shape[1] != data.num_classes):
            return f"the output has shape {tuple(out.shape)}, not one score per class"
        if not torch.isfinite(out).all():
            return "the model's outputs hold NaN or infinite values"
        return out.argmax(1).cpu().numpy()

    with scoped.eval_mode(ctx.model), torch.no_grad():
        preds = distributed.map_shared(predict, starts)  # under torchrun each process takes its share of batches
    wrong = next((p for p in preds if isinstance(p, str)), None)
    if wrong is not None or not preds:
        return None, 0, None, wrong or "no test samples", None, None
    pred = np.concatenate(preds)  # type: ignore[arg-type]
    assert data.y_test is not None  # has_labels was checked above
    y = np.asarray(data.y_test[:n])
    classes = data.num_classes or int(y.max()) + 1
    per_class = tuple(float((pred[y == c] == c).mean()) if (y == c).any() else float("nan") for c in range(classes))
    return float((pred == y).mean()), n, per_class, "", pred.astype(np.int64), y.astype(np.int64)
