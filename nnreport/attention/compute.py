"""The attention analysis on the torch side: record every attention call's probabilities at the operation
level, roll them out across layers and put the AttnLRP map beside the rollout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.attention.results import AttentionConfig, AttentionLayer, AttentionResult, InputKind
from nnreport.errors import Skipped

if TYPE_CHECKING:
    import torch

    from nnreport.context import Context


def _inputs(ctx: Context, count: int) -> tuple[np.ndarray, np.ndarray | None, Any]:
    if not ctx.single_input:
        raise Skipped("the model takes several inputs; attention maps are drawn for single-input models")
    if ctx.data is None:
        return ctx.example_inputs[0].detach().cpu().numpy()[:count], None, None
    return ctx.data.x_test[:count], None if ctx.data.y_test is None else ctx.data.y_test[:count], ctx.data


def as_heads(probs: torch.Tensor, batch: int) -> torch.Tensor | None:
    """Attention probabilities as (batch, heads, queries, keys); None for shapes that do not split so."""
    if probs.dim() == 4 and probs.shape[0] == batch:
        return probs
    if probs.dim() == 3 and probs.shape[0] % batch == 0:
        return probs.reshape(batch, probs.shape[0] // batch, *probs.shape[1:])
    if probs.dim() == 2 and batch == 1:
        return probs[None, None]
    return None


def _unsplit(probs: torch.Tensor, batch: int) -> str:
    """Why an attention call has no per-sample maps."""
    if probs.dim() == 4 and probs.shape[0] % batch == 0:
        windows = probs.shape[0] // batch
        return (f"it is windowed attention ({probs.shape[0]} = {batch} samples × {windows} windows of "
                f"{probs.shape[-1]} tokens, as in Swin), whose per-window maps do not form one map per image.")
    return "its shape does not split into heads."


def rollout(layers: list[np.ndarray]) -> np.ndarray | None:
    """Attention rollout (Abnar & Zuidema 2020): Ã = ½·mean over heads + ½·I (the residual), rows renormalised,
    multiplied from the first layer to the last. None unless every layer is square self-attention of one size."""
    sizes = {(m.shape[2], m.shape[3]) for m in layers}
    if not layers or len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        return None
    n = layers[0].shape[2]
    out = np.broadcast_to(np.eye(n), (layers[0].shape[0], n, n)).astype(np.float64)
    for m in layers:
        a = 0.5 * m.mean(1).astype(np.float64) + 0.5 * np.eye(n)[None]
        a /= a.sum(-1, keepdims=True)
        out = a @ out
    return out


def patch_grid(tokens: int, height: int, width: int) -> tuple[tuple[int, int], int] | None:
    """The patch grid (rows, columns) and the number of leading non-patch tokens (0–2) of an image's tokens."""
    for prefix in (1, 0, 2):
        patches = tokens - prefix
        for p in range(1, min(height, width) + 1):
            if height % p == 0 and width % p == 0 and (height // p) * (width // p) == patches:
                return (height // p, width // p), prefix
    return None


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two vectors (NaN when one is constant)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _kind(x: torch.Tensor) -> InputKind:
    from nnreport.relevance.tokens import is_tokens

    if is_tokens(x):
        return "tokens"
    if x.dim() == 4:
        return "image"
    if x.dim() == 3:
        return "sequence"
    raise Skipped(f"inputs of shape {tuple(x.shape[1:])} are neither images nor sequences")


def _labels(kind: InputKind, x_np: np.ndarray, data: Any, length: int) -> tuple[tuple[str, ...], ...]:
    from nnreport.relevance.tokens import vocabulary, words

    if kind == "tokens":
        return words(x_np, vocabulary(data))
    return tuple(tuple(f"t{j}" for j in range(length)) for _ in range(len(x_np)))


def _lrp(canon: Any, x: torch.Tensor, target: torch.Tensor, notes: list[str], budget: int | None = None) -> np.ndarray:
    """AttnLRP (ε composite) per input position: channels summed for images, features for sequences."""
    from nnreport.relevance.methods import explain

    try:
        rel = explain(canon, x, target, "lrp", composite="epsilon", attention="attnlrp",
                      memory_budget=budget).relevance.detach().float().cpu().numpy()
    except Exception as exc:  # noqa: BLE001 - the maps stay useful without the LRP column
        notes.append(f"AttnLRP failed on this model ({type(exc).__name__}: {exc}); no map beside the rollout.")
        return np.zeros(tuple(x.shape[:1]) + (tuple(x.shape[2:]) if x.dim() == 4 else tuple(x.shape[1:2])),
                        dtype=np.float32)
    if rel.ndim == 4:
        rel = rel.sum(1)
    elif rel.ndim == 3:
        rel = rel.sum(2)
    return rel.astype(np.float32)


def run(ctx: Context, config: AttentionConfig) -> AttentionResult:
    """Record, roll out and explain (see the module docstring)."""
    import torch

    from nnreport.context import primary_output
    from nnreport.relevance import prepare
    from nnreport.relevance.lrp.transformer import attention_maps
    from nnreport.relevance.methods import resolve_target

    x_np, _labels_true, data = _inputs(ctx, config.samples)
    x = ctx.tensor(x_np)  # on the analysis device
    kind = _kind(x)
    try:
        canon = prepare(ctx.model, x[:1])
    except ValueError as exc:
        raise Skipped(str(exc)) from exc
    raw = attention_maps(canon.model, x)
    if not raw:
        raise Skipped("the model has no attention (no nn.MultiheadAttention, scaled_dot_product_attention or "
                      "softmax over attention scores was called)")
    notes: list[str] = []
    layers = []
    for i, probs in enumerate(raw):
        heads = as_heads(probs, len(x))
        if heads is None or heads.shape[-1] > config.max_tokens:
            notes.append(f"Attention call {i + 1} (shape {tuple(probs.shape)}) is not shown: "
                         + ("too many keys." if heads is not None else _unsplit(probs, len(x))))
            continue
        layers.append(AttentionLayer(f"attention {i + 1}", int(heads.shape[1]), heads.float().cpu().numpy()))
    if not layers:
        raise Skipped("; ".join(notes))
    roll = rollout([layer.maps for layer in layers])
    tokens = layers[-1].maps.shape[-1]
    grid, prefix = None, 0
    if kind == "image":
        found = patch_grid(tokens, int(x.shape[2]), int(x.shape[3]))
        if found is None:
            notes.append(f"The {tokens} attention tokens do not tile the {x.shape[2]}×{x.shape[3]} image; "
                         "no patch-grid overlay.")
        else:
            grid, prefix = found
    scores = None
    if roll is not None:
        # a class token (prefix) is what the head reads; without one, the output pools every position
        scores = roll[:, 0] if prefix else roll.mean(1)
    with torch.no_grad():
        out = primary_output(canon.model(x))
    target = resolve_target(canon, x, None)
    preds = out.reshape(len(x), -1).argmax(1) if out.dim() > 1 else torch.zeros(len(x), dtype=torch.long)
    lrp = _lrp(canon, x, target, notes, ctx.memory_budget)
    shown = np.zeros((0,), dtype=np.float32)
    if kind == "image":
        shown = data.to_display(x_np) if data is not None and data.kind == "image" else _unit(x_np)
    names = (tuple(ctx.class_names) if ctx.class_names else tuple(data.class_names) if data is not None
             and data.class_names else tuple(str(c) for c in range(out.reshape(len(x), -1).shape[1])))
    return AttentionResult(
        kind=kind, inputs=np.asarray(shown, dtype=np.float32), words=_labels(kind, x_np, data, tokens)
        if kind != "image" else (), grid=grid, prefix=prefix, layers=tuple(layers),
        rollout=None if roll is None else roll.astype(np.float32),
        rollout_scores=None if scores is None else scores.astype(np.float32), lrp=lrp,
        targets=target.cpu().numpy().astype(np.int64), predictions=preds.cpu().numpy().astype(np.int64), class_names=names,
        agreement=_agreement(scores, lrp, kind, grid, prefix), notes=tuple(notes))


def _unit(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo if hi > lo else 1.0)


def _agreement(scores: np.ndarray | None, lrp: np.ndarray, kind: InputKind, grid: tuple[int, int] | None,
               prefix: int) -> np.ndarray | None:
    """Per sample: rank correlation of the rollout and |AttnLRP| over the input tokens (patches for images)."""
    if scores is None:
        return None
    if kind == "image":
        if grid is None:
            return None
        rows, cols = grid
        h, w = lrp.shape[1:]
        per_patch = np.abs(lrp).reshape(len(lrp), rows, h // rows, cols, w // cols).sum((2, 4)).reshape(len(lrp), -1)
        ranked = scores[:, prefix:]
    else:
        per_patch, ranked = np.abs(lrp), scores
        if per_patch.shape[1] != ranked.shape[1]:
            return None
    return np.array([spearman(a, b) for a, b in zip(ranked, per_patch, strict=True)], dtype=np.float64)
