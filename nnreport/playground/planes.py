"""Evaluate every neuron of a 2-D-input model over a grid of the plane, for each training snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nnreport import scoped
from nnreport.context import primary_output
from nnreport.errors import Skipped
from nnreport.playground.results import NeuronLayer, PlaygroundConfig, PlaygroundResult

if TYPE_CHECKING:
    from nnreport.context import Context
    from nnreport.datasets import Dataset


@dataclass
class LinearCall:
    """One call of an nn.Linear during a forward pass: its input (the previous layer's activations)."""

    path: str
    module: nn.Linear
    input: torch.Tensor
    output: torch.Tensor


@dataclass
class Trace:
    calls: list[LinearCall]
    output: torch.Tensor


def trace_linear(model: nn.Module, x: torch.Tensor) -> Trace:
    """Run `model(x)` recording the input and output of every nn.Linear call, in call order."""
    paths = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    calls: list[LinearCall] = []

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
            calls.append(LinearCall(paths.get(id(module), "?"), module, args[0], output))  # type: ignore[arg-type]

    with scoped.hooks() as h:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                h.forward(m, hook)
        out = primary_output(model(x))
    return Trace(calls, out.reshape(len(x), -1))


def hidden_chain(trace: Trace, in_features: int) -> tuple[list[int], bool]:
    """Indices of the Linear calls forming a chain from the input (each one's input has as many features
    as the previous one's outputs), and whether the last of them produces the model's output."""
    chain: list[int] = []
    for i, call in enumerate(trace.calls):
        expected = in_features if not chain else trace.calls[chain[-1]].module.out_features
        if call.input.dim() != 2 or call.input.shape[1] != expected or call.module.in_features != expected:
            break
        chain.append(i)
    ends_at_output = bool(chain) and _same(trace.calls[chain[-1]].output, trace.output)
    return chain, ends_at_output


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.equal(a, b))


def plane_features(data: Dataset | None, example: torch.Tensor, config: PlaygroundConfig) -> int:
    """The number of input features, or Skip when the model does not take a flat feature vector."""
    shape = tuple(example.shape[1:])
    if len(shape) != 1 or shape[0] < 2:
        raise Skipped(f"the playground needs a model whose input is 2-D points or a row of tabular features; "
                      f"this model's input has shape {tuple(example.shape)}")
    if data is not None and data.kind not in ("points", "tabular"):
        raise Skipped(f"the playground needs 2-D points or tabular data; the data is {data.kind}")
    if data is not None and tuple(data.input_shape) != shape:
        raise Skipped(f"the data's inputs have shape {data.input_shape}, the model takes {shape}")
    return shape[0]


def _feature_names(data: Dataset | None, n: int) -> tuple[str, ...]:
    if data is not None and data.feature_names is not None and len(data.feature_names) == n:
        return tuple(data.feature_names)
    return tuple(f"x{i + 1}" for i in range(n))


def _resolve(name: str, names: tuple[str, ...]) -> int:
    if name in names:
        return names.index(name)
    if name.isdigit() and int(name) < len(names):
        return int(name)
    raise Skipped(f"the playground feature {name!r} is not one of the data's features ({', '.join(names)})")


def choose_pair(model: nn.Module, base: torch.Tensor, lo: np.ndarray, hi: np.ndarray,
                names: tuple[str, ...], config: PlaygroundConfig) -> tuple[int, int]:
    """The configured features, else the two whose sweep (others at the median) moves the output most."""
    if len(names) == 2:
        return 0, 1
    if config.x_feature and config.y_feature:
        i, j = _resolve(config.x_feature, names), _resolve(config.y_feature, names)
        if i == j:
            raise Skipped(f"the playground needs two different features, got {names[i]!r} twice")
        return i, j
    steps = torch.linspace(0, 1, 32, device=base.device)
    spread = []
    for f in range(len(names)):
        x = base.repeat(len(steps), 1)
        x[:, f] = float(lo[f]) + steps * float(hi[f] - lo[f])
        out = primary_output(model(x)).reshape(len(x), -1)
        out = torch.softmax(out, 1) if out.shape[1] > 1 else out
        spread.append(float(out.std(0).sum()))
    order = np.argsort(-np.asarray(spread), kind="stable")[:2]
    chosen = sorted(int(i) for i in order)
    if config.x_feature or config.y_feature:
        fixed = _resolve(config.x_feature or config.y_feature, names)
        other = next(int(i) for i in np.argsort(-np.asarray(spread), kind="stable") if int(i) != fixed)
        chosen = [fixed, other] if config.x_feature else [other, fixed]
    return chosen[0], chosen[1]


def quantise(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric uint8 quantisation per map (last two axes): q = round((v / s + 1) / 2 * 255)."""
    scale = np.abs(maps).max(axis=(-2, -1)).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0)[..., None, None]
    q = np.clip(np.round((maps / safe + 1.0) / 2.0 * 255.0), 0, 255).astype(np.uint8)
    return q, scale


def dequantise(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (q.astype(np.float32) / 255.0 * 2.0 - 1.0) * scale[..., None, None]


def pick_snapshots(count: int, limit: int) -> list[int]:
    """Evenly thinned snapshot indices, always keeping the first and the last."""
    if count <= limit:
        return list(range(count))
    return sorted(set(np.linspace(0, count - 1, max(limit, 2)).round().astype(int).tolist()))


def _states(ctx: Context, config: PlaygroundConfig) -> tuple[list[dict[str, torch.Tensor] | None], list[str], np.ndarray, list[str]]:
    """Snapshots to show (None = the model as given, always last), their labels and given losses."""
    notes = []
    final = {k: v.detach() for k, v in ctx.model.state_dict().items()}
    ckpts = list(ctx.checkpoints)
    history = list(ctx.history) + [float("nan")] * max(0, len(ckpts) - len(ctx.history))
    if ckpts and _state_equal(ckpts[-1], final):
        ckpts, last_loss = ckpts[:-1], history[len(ckpts) - 1]
    else:
        last_loss = float("nan")
    keep = pick_snapshots(len(ckpts) + 1, config.max_snapshots)
    if len(ckpts) + 1 > config.max_snapshots:
        notes.append(f"{len(ckpts) + 1} snapshots thinned to {len(keep)} (max_snapshots = {config.max_snapshots})")
    states: list[dict[str, torch.Tensor] | None] = []
    labels, losses = [], []
    for i in keep:
        if i == len(ckpts):
            states.append(None)
            labels.append("final model")
            losses.append(last_loss)
        else:
            states.append(ckpts[i])
            labels.append(f"snapshot {i + 1} of {len(ckpts) + 1}" + (" (initial)" if i == 0 else ""))
            losses.append(history[i])
    return states, labels, np.asarray(losses, dtype=np.float64), notes


def _state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def _extent(points: np.ndarray | None, config: PlaygroundConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    if points is None or not len(points):
        return np.full(n, -config.extent), np.full(n, config.extent)
    lo, hi = points.min(0), points.max(0)
    pad = (hi - lo) * config.margin + 1e-6
    return lo - pad, hi + pad


def run_playground(ctx: Context, config: PlaygroundConfig) -> PlaygroundResult:
    return _run(ctx, config)


def _run(ctx: Context, config: PlaygroundConfig) -> PlaygroundResult:
    if not ctx.single_input:
        raise Skipped("the playground needs a single-input model with 2-D (or tabular) inputs")
    if not ctx.example_inputs[0].is_floating_point():
        raise Skipped("the playground sweeps a plane of real-valued inputs; this model's input is not floating point "
                      "(e.g. token ids)")
    data = ctx.data
    n_features = plane_features(data, ctx.example_inputs[0], config)
    names = _feature_names(data, n_features)
    rep = ctx.stage()
    notes: list[str] = []
    all_x = None if data is None else np.concatenate([data.x_train, data.x_test]).astype(np.float32)
    lo, hi = _extent(all_x, config, n_features)
    base = np.zeros(n_features, np.float32) if data is None else np.median(data.x_train, 0).astype(np.float32)
    if data is None:
        notes.append(f"no data given: the plane spans ±{config.extent:g} on each axis")
    model = ctx.model
    with scoped.eval_mode(model), torch.no_grad():
        fi, fj = choose_pair(model, ctx.tensor(base)[None], lo, hi, names, config)
        if n_features > 2:
            others = [names[k] for k in range(n_features) if k not in (fi, fj)]
            held = "held at 0" if data is None else "held at their training median"
            notes.append(f"the plane spans {names[fi]} × {names[fj]}; {', '.join(others)} {held}")
        xs = np.linspace(lo[fi], hi[fi], config.grid, dtype=np.float32)
        ys = np.linspace(lo[fj], hi[fj], config.grid, dtype=np.float32)
        grid = ctx.to_device(_plane(base, fi, fj, xs, ys))
        states, labels, history, snap_notes = _states(ctx, config)
        notes += snap_notes
        frames = []
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        with scoped.restored_parameters(model):
            for k, state in enumerate(states):
                rep.step(k, len(states), labels[k])
                try:
                    model.load_state_dict(own if state is None else state)
                except (RuntimeError, KeyError) as exc:
                    notes.append(f"snapshot {k + 1} does not fit the model, skipped: {str(exc).splitlines()[0]}")
                    continue
                frames.append((labels[k], history[k], _evaluate(model, grid, ctx, config, fi, fj)))
    return _assemble(frames, ctx, config, names, (fi, fj), xs, ys, base, notes, data)


def _plane(base: np.ndarray, fi: int, fj: int, xs: np.ndarray, ys: np.ndarray) -> torch.Tensor:
    """Grid inputs, row-major with y along rows: point (r, c) = (xs[c], ys[r])."""
    gx, gy = np.meshgrid(xs, ys)
    x = np.repeat(base[None], gx.size, axis=0)
    x[:, fi] = gx.ravel()
    x[:, fj] = gy.ravel()
    return torch.from_numpy(x)


@dataclass
class Frame:
    """Everything measured on one snapshot."""

    columns: list[tuple[str, str, np.ndarray]]  # (name, module path, (units, grid, grid)) per hidden layer + output
    weights: list[np.ndarray | None]
    biases: list[np.ndarray | None]
    decision: np.ndarray
    output_kind: str
    losses: tuple[float, float, float, float] | None


def _evaluate(model: nn.Module, grid: torch.Tensor, ctx: Context, config: PlaygroundConfig, fi: int, fj: int) -> Frame:
    g = config.grid
    trace = trace_linear(model, grid)
    chain, ends = hidden_chain(trace, grid.shape[1])
    columns: list[tuple[str, str, np.ndarray]] = []
    weights: list[np.ndarray | None] = []
    biases: list[np.ndarray | None] = []
    first_w = None
    if chain:
        w = trace.calls[chain[0]].module.weight.detach()
        first_w = w[:, [fi, fj]].cpu().numpy()
    for depth, idx in enumerate(chain[1:], start=1):
        prev = trace.calls[chain[depth - 1]]
        act = trace.calls[idx].input
        columns.append((f"hidden {depth}", prev.path, act.T.reshape(-1, g, g).cpu().numpy()))
        weights.append(first_w if depth == 1 else trace.calls[chain[depth - 1]].module.weight.detach().cpu().numpy())
        biases.append(_bias(prev.module))
    out = trace.output
    columns.append(("output", trace.calls[chain[-1]].path if ends else "", out.T.reshape(-1, g, g).cpu().numpy()))
    if ends:
        last = trace.calls[chain[-1]].module
        weights.append(first_w if len(chain) == 1 else last.weight.detach().cpu().numpy())
        biases.append(_bias(last))
    else:
        weights.append(None)
        biases.append(None)
    if out.shape[1] > 1:
        decision, kind = torch.softmax(out, 1).T.reshape(-1, g, g).cpu().numpy(), "softmax"
    else:
        decision, kind = out.T.reshape(1, g, g).cpu().numpy(), "value"
    return Frame(columns, weights, biases, decision, kind, _losses(model, ctx) if kind == "softmax" else None)


def _bias(module: nn.Linear) -> np.ndarray | None:
    return None if module.bias is None else module.bias.detach().cpu().numpy().copy()


def _losses(model: nn.Module, ctx: Context) -> tuple[float, float, float, float] | None:
    data = ctx.data
    if data is None or not data.has_labels:
        return None
    values = []
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        out = primary_output(model(ctx.tensor(x))).reshape(len(x), -1)
        target = ctx.tensor(np.asarray(y)).long()
        if int(target.max()) >= out.shape[1]:
            return None
        values += [float(nn.functional.cross_entropy(out, target)), float((out.argmax(1) == target).float().mean())]
    return values[0], values[2], values[1], values[3]


def _assemble(frames: list[tuple[str, float, Frame]], ctx: Context, config: PlaygroundConfig, names: tuple[str, ...],
              pair: tuple[int, int], xs: np.ndarray, ys: np.ndarray, base: np.ndarray, notes: list[str],
              data: Dataset | None) -> PlaygroundResult:
    final = frames[-1][2]
    same = [f for f in frames if _structure(f[2]) == _structure(final)]
    if len(same) < len(frames):
        notes.append(f"{len(frames) - len(same)} snapshot(s) traced a different network and are left out")
        frames = same
    layers = [_input_layer(names, pair, xs, ys, len(frames))]
    prev_shown: tuple[int, ...] = (0, 1)  # the first layer's weights are already cut to the chosen pair
    for c, (name, module, maps) in enumerate(final.columns):
        units = maps.shape[0]
        stack = np.stack([f.columns[c][2] for _, _, f in frames])
        kind = "output" if c == len(final.columns) - 1 else "hidden"
        shown = _shown(maps, config.max_units if kind == "hidden" else max(config.max_units, 16))
        if len(shown) < units:
            notes.append(f"{name}: {len(shown)} of {units} units drawn (those varying most over the plane)")
        q, scale = quantise(stack[:, list(shown)])
        w = _stack_weights([f.weights[c] for _, _, f in frames], shown, prev_shown)
        b = _stack_bias([f.biases[c] for _, _, f in frames], shown)
        unit_names = tuple(f"{name} unit {u}" for u in shown) if kind == "hidden" else tuple(_output_names(ctx, units)[u] for u in shown)
        layers.append(NeuronLayer(name, module, kind, units, shown, unit_names, q, scale, w, b))
        prev_shown = shown
    decision = final.decision
    dec_stack = np.stack([f.decision for _, _, f in frames])
    if final.output_kind == "softmax":
        dec_frames = np.clip(np.round(dec_stack * 255), 0, 255).astype(np.uint8)
    else:
        dec_frames, _ = quantise(dec_stack)
    losses = [f.losses for _, _, f in frames]
    have = all(v is not None for v in losses)
    arr = np.asarray([v for v in losses if v is not None], dtype=np.float64) if have else None
    train_pts, train_lab = _points(data, "train", pair, config, ctx)
    test_pts, test_lab = _points(data, "test", pair, config, ctx)
    return PlaygroundResult(
        features=(names[pair[0]], names[pair[1]]), feature_index=pair, xs=xs, ys=ys, base=base,
        layers=tuple(layers), decision_frames=dec_frames, output_kind=final.output_kind,
        class_names=_output_names(ctx, decision.shape[0]),
        snapshot_labels=tuple(label for label, _, _ in frames),
        history=np.asarray([h for _, h, _ in frames], dtype=np.float64),
        train_loss=None if arr is None else arr[:, 0], test_loss=None if arr is None else arr[:, 1],
        train_accuracy=None if arr is None else arr[:, 2], test_accuracy=None if arr is None else arr[:, 3],
        train_points=train_pts, train_labels=train_lab, test_points=test_pts, test_labels=test_lab,
        notes=tuple(notes),
    )


def _structure(frame: Frame) -> tuple[Any, ...]:
    return (tuple(m.shape for _, _, m in frame.columns), tuple(None if w is None else w.shape for w in frame.weights),
            tuple(None if b is None else b.shape for b in frame.biases), frame.decision.shape)


def _input_layer(names: tuple[str, ...], pair: tuple[int, int], xs: np.ndarray, ys: np.ndarray, n: int) -> NeuronLayer:
    gx, gy = np.meshgrid(xs, ys)
    maps = np.stack([gx, gy]).astype(np.float32)
    q, scale = quantise(np.repeat(maps[None], n, axis=0))
    return NeuronLayer("input", "", "input", 2, pair, (names[pair[0]], names[pair[1]]), q, scale)


def _shown(maps: np.ndarray, limit: int) -> tuple[int, ...]:
    if maps.shape[0] <= limit:
        return tuple(range(maps.shape[0]))
    spread = maps.reshape(maps.shape[0], -1).std(1)
    return tuple(sorted(int(i) for i in np.argsort(-spread, kind="stable")[:limit]))


def _stack_weights(ws: list[np.ndarray | None], shown: tuple[int, ...], prev: tuple[int, ...]) -> np.ndarray | None:
    if any(w is None for w in ws):
        return None
    arr = np.stack([w for w in ws if w is not None])
    return arr[:, list(shown)][:, :, list(prev)].astype(np.float32)


def _stack_bias(bs: list[np.ndarray | None], shown: tuple[int, ...]) -> np.ndarray | None:
    if any(b is None for b in bs):
        return None
    return np.stack([b for b in bs if b is not None])[:, list(shown)].astype(np.float32)


def _output_names(ctx: Context, n: int) -> tuple[str, ...]:
    names = ctx.class_names or (ctx.data.class_names if ctx.data is not None else None)
    if names is not None and len(names) == n:
        return tuple(names)
    return tuple(f"output {i}" for i in range(n))


def _points(data: Dataset | None, split: str, pair: tuple[int, int], config: PlaygroundConfig,
            ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    if data is None:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.int64)
    x = data.x_train if split == "train" else data.x_test
    y = data.y_train if split == "train" else data.y_test
    idx = np.arange(len(x))
    if len(x) > config.max_points:
        idx = np.sort(ctx.rng(f"playground-{split}").choice(len(x), config.max_points, replace=False))
    labels = np.asarray(y)[idx].astype(np.int64) if y is not None and np.issubdtype(np.asarray(y).dtype, np.integer) else np.full(len(idx), -1, np.int64)
    return np.asarray(x)[idx][:, list(pair)].astype(np.float32), labels
