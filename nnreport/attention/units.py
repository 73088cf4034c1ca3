"""Units of sequence layers (embeddings, transformer blocks, LSTM/GRU outputs, 1-D convolutions): per unit, the
top-k token windows of the data that excite it most, with the exciting token at the centre."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.attention.results import SequenceLayer, SequenceUnitsConfig, SequenceUnitsResult
from nnreport.errors import Skipped

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nnreport.context import Context


def per_position(out: Any, module: nn.Module, batch: int, length: int) -> torch.Tensor | None:
    """A module output as (batch, positions, units) when it is aligned with the input tokens, else None."""
    import torch
    from torch import nn

    t = out[0] if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor) else out
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() != 3 or t.shape[0] != batch:
        return None
    if isinstance(module, nn.Conv1d) and t.shape[2] == length:
        return t.transpose(1, 2)
    return t if t.shape[1] == length and t.shape[2] > 1 else None


# Containers are transparent: their children (the blocks of a stack) are listed instead.
CONTAINERS = ("Sequential", "ModuleList", "ModuleDict", "TransformerEncoder", "TransformerDecoder")


def candidates(model: nn.Module, x: torch.Tensor) -> list[tuple[str, str]]:
    """(path, type) of the outermost modules whose output is one value per input position and unit, in call
    order: a block's internals give way to the block; containers give way to their children."""
    import torch

    from nnreport import scoped

    found: dict[str, str] = {}
    names = {id(m): n for n, m in model.named_modules() if n}

    def hook(module: nn.Module, _args: Any, out: Any) -> None:
        if id(module) in names and per_position(out, module, len(x), x.shape[1]) is not None:
            found.setdefault(names[id(module)], type(module).__name__)

    with scoped.hooks() as h, torch.no_grad():
        for m in model.modules():
            if m is not model:
                h.forward(m, hook)
        model(x)
    blocks = {p for p, t in found.items() if t not in CONTAINERS}
    return [(p, t) for p, t in found.items() if p in blocks and not any(p.startswith(q + ".") for q in blocks)]


def _choose(found: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    if len(found) <= count:
        return found
    picks = np.linspace(0, len(found) - 1, count).round().astype(int)
    return [found[i] for i in dict.fromkeys(picks.tolist())]


def _activations(model: nn.Module, path: str, x: torch.Tensor) -> torch.Tensor:
    import torch

    from nnreport import scoped

    got: list[torch.Tensor] = []
    module = model.get_submodule(path)
    with scoped.hooks() as h, torch.no_grad():
        h.forward(module, lambda m, _a, out: got.append(per_position(out, m, len(x), x.shape[1])))  # type: ignore[arg-type]
        model(x)
    return got[-1]


def top_windows(acts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit, the k (sample, position) pairs with the highest activation: values, samples, positions,
    each (units, k), best first."""
    n, t, u = acts.shape
    flat = acts.reshape(n * t, u)
    k = min(k, n * t)
    best = np.argsort(-flat, axis=0, kind="stable")[:k].T  # (units, k)
    return np.take_along_axis(flat.T, best, 1), best // t, best % t


def run(ctx: Context, config: SequenceUnitsConfig) -> SequenceUnitsResult:
    """Choose the sequence layers, stream the data through them and keep each unit's top windows."""
    import torch

    from nnreport.relevance.tokens import is_tokens, vocabulary

    data = ctx.require_data("top token windows come from the data")
    x_all = torch.from_numpy(np.ascontiguousarray(data.x_train[:config.max_examples]))
    if not (is_tokens(x_all) or (x_all.is_floating_point() and x_all.dim() == 3)):
        raise Skipped(f"inputs of shape {tuple(x_all.shape[1:])} are not sequences (token ids or (T, F))")
    model = ctx.model
    found = candidates(model, ctx.to_device(x_all[:2]))
    if not found:
        raise Skipped("no layer gives one value per input position and unit")
    layers = []
    half = config.window // 2
    padded = np.pad(np.asarray(x_all.numpy() if is_tokens(x_all) else
                               np.broadcast_to(np.arange(x_all.shape[1]), x_all.shape[:2])), ((0, 0), (half, half)),
                    constant_values=-1)
    for path, kind in _choose(found, config.max_layers):
        size = ctx.batch_size(config.batch_size)  # batches moved to the analysis device one at a time
        acts = torch.cat([_activations(model, path, ctx.to_device(xb)).float().cpu()
                          for xb in x_all.split(size)]).numpy()
        shown = min(config.max_units, acts.shape[2])
        values, samples, positions = top_windows(acts[:, :, :shown], config.top_k)
        windows = np.stack([padded[samples, positions + j] for j in range(2 * half + 1)], -1)
        labels = None if data.y_train is None else np.asarray(data.y_train)[:len(x_all)][samples].astype(np.int64)
        layers.append(SequenceLayer(path, kind, int(acts.shape[2]), shown, values.astype(np.float32),
                                    samples.astype(np.int64), positions.astype(np.int64), windows.astype(np.int64),
                                    labels))
    return SequenceUnitsResult(tuple(layers), "tokens" if is_tokens(x_all) else "sequence",
                               vocabulary(data) or (), len(x_all), half)
