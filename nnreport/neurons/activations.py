"""The `activations` analysis: layer choice, activation maps for sample inputs, and one streaming pass for
per-unit statistics and top-k examples (cropped to the receptive field around the arg-max)."""

from __future__ import annotations

import numpy as np
import torch

from nnreport import scoped
from nnreport.context import Context
from nnreport.errors import Skipped
from nnreport.neurons import layers as L
from nnreport.neurons.receptive import Axis, receptive_fields, window
from nnreport.neurons.results import (
    ActivationsConfig,
    ActivationsResult,
    LayerActivations,
    TopExamples,
    UnitStats,
)
from nnreport.neurons.topk import Partial, Stats, TopK, reduce_batch, stream
from nnreport.streaming import head


def input_kind(ctx: Context) -> str:
    if not ctx.single_input:
        return "other"
    x = ctx.example_inputs[0]
    if not x.is_floating_point():
        return "other"
    if ctx.data is not None:
        return {"image": "image", "points": "vector", "tabular": "vector"}.get(ctx.data.kind, "other") \
            if x.dim() in (2, 4) else "other"
    if x.dim() == 4 and x.shape[1] <= 4:
        return "image"
    return "vector" if x.dim() == 2 else "other"


def to_display(ctx: Context, x: np.ndarray) -> np.ndarray:
    """Image inputs (N, C, H, W) as the eye sees them, in [0, 1]."""
    if ctx.data is not None and ctx.data.mean is not None:
        return ctx.data.to_display(x).astype(np.float32)
    lo, hi = float(x.min()), float(x.max())
    return ((x - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def choose_layers(ctx: Context, config: ActivationsConfig) -> list[L.LayerChoice]:
    one = tuple(t[:1] for t in ctx.example_inputs)
    if config.layers:
        return L.named(ctx.model, one, config.layers)
    return L.representative(ctx.model, one, config.max_layers)


def run(ctx: Context, config: ActivationsConfig) -> ActivationsResult:
    try:
        return _run(ctx, config)
    except L.NotReached as exc:
        raise Skipped(f"layer {exc}: the model takes a different path for some inputs; name layers that every "
                      "input reaches with [analyses.activations] layers") from None


def _run(ctx: Context, config: ActivationsConfig) -> ActivationsResult:
    model = ctx.model
    if isinstance(model, torch.jit.ScriptModule):
        raise Skipped("TorchScript modules cannot be hooked, so their layers' activations cannot be read")
    rep = ctx.stage()
    rep.step(0, 3, "choosing layers")
    chosen = choose_layers(ctx, config)
    modules = L.module_map(model, [c.path for c in chosen])
    kind = input_kind(ctx)
    notes: list[str] = []
    samples, labels = _samples(ctx, config.samples)
    last_axis = L.channels_last(chosen)
    with torch.no_grad(), scoped.eval_mode(model):
        outs = L.capture(model, modules, samples, last_axis=last_axis)
    # The receptive-field tracker follows (N, C, H, W) tensors; channels-last layers get whole-input crops.
    fields = {p: f for p, f in _fields(ctx, modules).items() if p not in last_axis} if kind == "image" else {}
    rep.step(1, 3, "streaming the data for top examples")
    streamed, seen, split = _stream(ctx, config, chosen, modules, notes)
    rep.step(2, 3, "cropping top examples")
    result_layers = []
    for c in chosen:
        shown = min(config.max_units, c.shape[0])
        maps = outs[c.path][:, :shown].float().cpu().numpy()
        field = fields.get(c.path)
        top = stats = None
        if streamed is not None:
            tk, st = streamed[c.path]
            stats = _unit_stats(st)
            top = _top(ctx, config, tk, c, field, kind, split)
        dead, saturated, basis = _flags(stats, maps)
        result_layers.append(LayerActivations(
            path=c.path, type=c.type, shape=c.shape, units=c.shape[0], shown=shown, maps=maps.astype(np.float16),
            receptive=tuple((a.size, a.jump, a.start) for a in field) if field else None,
            dead=dead, saturated=saturated, flag_basis=basis, stats=stats, top=top, channels_last=c.channels_last))
    rep.step(3, 3)
    x0 = samples[0].cpu().numpy()
    data = ctx.data
    return ActivationsResult(
        layers=tuple(result_layers), input_kind=kind, input_shape=tuple(ctx.example_inputs[0].shape[1:]),
        samples=to_display(ctx, x0) if kind == "image" else x0.astype(np.float32), sample_labels=labels,
        normalise=config.normalise, examples_split=split, examples_seen=seen,
        class_names=ctx.class_names, feature_names=data.feature_names if data is not None else None,
        note=" ".join(notes))


def _samples(ctx: Context, n: int) -> tuple[tuple[torch.Tensor, ...], tuple[str, ...]]:
    if ctx.data is not None and ctx.single_input:
        x, y = ctx.samples(n)
        names = ctx.class_names
        if y is not None:
            labels = tuple(f"test #{i}: {names[int(v)] if names and 0 <= int(v) < len(names) else int(v)}"
                           for i, v in enumerate(y.tolist()))
        else:
            labels = tuple(f"test #{i}" for i in range(len(x)))
        return (x,), labels
    xs = tuple(t[:n] for t in ctx.example_inputs)
    return xs, tuple(f"example input {i}" for i in range(len(xs[0])))


def _fields(ctx: Context, modules: dict) -> dict[str, tuple[Axis, ...] | None]:  # type: ignore[type-arg]
    try:
        return receptive_fields(ctx.model, ctx.example_inputs[0], modules)
    except Exception:  # noqa: BLE001 - without fields, crops fall back to the whole input
        return {}


def _stream(ctx: Context, config: ActivationsConfig, chosen: list[L.LayerChoice], modules: dict,  # type: ignore[type-arg]
            notes: list[str]) -> tuple[dict[str, tuple[TopK, Stats]] | None, int, str]:
    """One pass over the split: each batch is reduced to its top-k candidates and sums as soon as it is
    captured (memory: one batch); under torchrun the batches are shared out and the reductions gathered."""
    from nnreport import distributed

    if ctx.data is None or not ctx.single_input:
        notes.append("No data was given (or the model takes several inputs), so there are no top examples or "
                     "dataset statistics; dead and saturated units are judged on the sample inputs only.")
        return None, 0, ""
    x = ctx.data.x_train if config.split == "train" else ctx.data.x_test
    x = head(x, config.max_examples)  # streamed data: still lazy, decoded batch by batch below
    units = {c.path: c.shape[0] for c in chosen}
    size = ctx.batch_size(config.batch_size)
    last_axis = L.channels_last(chosen)

    def reduce(i: int) -> dict[str, Partial]:
        with ctx.autocast():
            acts = L.capture(ctx.model, modules, (ctx.tensor(x[i * size:(i + 1) * size]),), last_axis=last_axis)
        return {name: reduce_batch(act, i * size, config.top_k) for name, act in acts.items()}

    with torch.no_grad(), scoped.eval_mode(ctx.model):
        state = stream(distributed.stream_shared(reduce, -(-len(x) // size)), units, config.top_k)
    return state, len(x), config.split


def _unit_stats(st: Stats) -> UnitStats:
    n = max(st.count, 1)
    mean = st.total / n
    std = np.sqrt(np.maximum(st.total_sq / n - mean * mean, 0))
    f = np.float32
    return UnitStats(mean.astype(f), std.astype(f), st.maximum.astype(f), st.minimum.astype(f),
                     (st.active / n).astype(f), (st.always_on / n).astype(f))


def _flags(stats: UnitStats | None, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Dead: never positive (layers that are never negative, e.g. after a ReLU) or constant (others).
    Saturated: positive at every position on at least 99% of inputs (its ReLU never switches off)."""
    if stats is not None:
        lo, hi, active, on = stats.minimum, stats.maximum, stats.frac_active, stats.frac_always_on
        where = "over the streamed data"
    else:
        per = maps.reshape(maps.shape[0], maps.shape[1], -1)
        lo, hi = per.min(axis=(0, 2)), per.max(axis=(0, 2))
        active, on = (per.max(2) > 0).mean(0), (per.min(2) > 0).mean(0)
        where = "on the sample inputs"
    shown = maps.shape[1]
    if lo.size and float(lo.min()) >= 0:
        dead = active[:shown] == 0
        saturated = on[:shown] >= 0.99
        basis = f"non-negative layer: dead = never positive, saturated = positive everywhere on ≥99% of inputs, {where}"
    else:
        dead = (hi - lo)[:shown] < 1e-6
        saturated = np.zeros(shown, dtype=bool)
        basis = f"signed layer: dead = constant {where}; saturation does not apply"
    return dead.astype(bool), saturated.astype(bool), basis


def _top(ctx: Context, config: ActivationsConfig, tk: TopK, c: L.LayerChoice, field: tuple[Axis, ...] | None,
         kind: str, split: str) -> TopExamples:
    data = ctx.data
    assert data is not None
    shown = min(config.max_units, c.shape[0])
    index, values = tk.index[:, :shown].T, tk.values[:, :shown].T
    xs = data.x_train if split == "train" else data.x_test
    ys = data.y_train if split == "train" else data.y_test
    labels = ys[index].astype(np.int64) if ys is not None and np.issubdtype(ys.dtype, np.integer) else None
    if kind != "image":
        crops = xs[index].astype(np.float16)
        return TopExamples(values.astype(np.float32), index, labels, crops, np.zeros((*index.shape, 0, 2), np.int64))
    images = to_display(ctx, xs[np.unique(index)])
    lookup = {int(i): j for j, i in enumerate(np.unique(index))}
    spatial = c.shape[1:]
    full = tuple(Axis(s, 0, 0) for s in xs.shape[2:])
    fld = field if (field is not None and len(spatial) == 2) else full
    # Crops are the field's size, subsampled by a whole step where that exceeds max_crop.
    step = tuple(-(-a.size // config.max_crop) for a in fld)
    out_shape = tuple(-(-a.size // st) for a, st in zip(fld, step, strict=True))
    crops = np.full((*index.shape, xs.shape[1], *out_shape), np.nan, dtype=np.float16)
    wins = np.zeros((*index.shape, 2, 2), dtype=np.int64)
    # Found during the streaming pass, while each batch's activations were at hand (no second pass).
    position = tk.position[:, :shown].T if fld is not full else np.zeros_like(index)
    for u in range(index.shape[0]):
        for r in range(index.shape[1]):
            pos = tuple(int(i) for i in np.unravel_index(int(position[u, r]), spatial)) if fld is not full else (0, 0)
            win = window(fld, pos)
            wins[u, r] = win
            crops[u, r] = _crop(images[lookup[int(index[u, r])]], win, step, out_shape)
    return TopExamples(values.astype(np.float32), index, labels, crops, wins)


def _crop(image: np.ndarray, win: tuple[tuple[int, int], ...], step: tuple[int, ...],
          out_shape: tuple[int, ...]) -> np.ndarray:
    """The window of a (C, H, W) image, subsampled by `step`; NaN where it lies outside the image."""
    (y0, y1), (x0, x1) = win
    h, w = image.shape[1:]
    ys = np.arange(y0, y1, step[0])[: out_shape[0]]
    xs = np.arange(x0, x1, step[1])[: out_shape[1]]
    out = np.full((image.shape[0], len(ys), len(xs)), np.nan, dtype=np.float32)
    iy, ix = (ys >= 0) & (ys < h), (xs >= 0) & (xs < w)
    out[:, np.ix_(iy, ix)[0], np.ix_(iy, ix)[1]] = image[:, ys[iy]][:, :, xs[ix]]
    return out
