"""Receptive fields of spatial units, followed through every conv, pool and pad of the actual forward pass.

A torch-function mode watches the forward pass and attaches to each tensor, per spatial axis, the
receptive field of its first position: `size` (input pixels seen), `jump` (input pixels between two
neighbouring positions) and `start` (input coordinate of the field's first pixel; negative inside
padding). Convolutions and pools compose the usual way (r += (k-1)·d·j, start -= p·j, j *= s);
element-wise ops and concatenations that keep the spatial size take the union of their inputs' fields
(so residual branches count); any other op that changes the spatial size (adaptive pooling, resizing,
flattening) makes the field global.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnreport import scoped
from nnreport.context import tensors_in


@dataclass(frozen=True)
class Axis:
    size: int
    jump: int
    start: int


Field = tuple[Axis, ...] | None  # None: global (depends on the whole input)


def _tuple(v: object, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(a) for a in v) if len(v) == n else tuple(int(v[0]) for _ in range(n))
    return tuple(int(v) for _ in range(n))  # type: ignore[call-overload]


def _arg(args: Sequence[object], kwargs: dict[str, object], i: int, name: str, default: object) -> object:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _window(field: tuple[Axis, ...], k: tuple[int, ...], s: tuple[int, ...], p: tuple[int, ...],
            d: tuple[int, ...]) -> tuple[Axis, ...]:
    return tuple(Axis(a.size + (kk - 1) * dd * a.jump, a.jump * ss, a.start - pp * a.jump)
                 for a, kk, ss, pp, dd in zip(field, k, s, p, d, strict=True))


def union(fields: list[tuple[Axis, ...]]) -> tuple[Axis, ...]:
    """The smallest field holding every given one (for branches added or concatenated)."""
    out = []
    for axes in zip(*fields, strict=True):
        start = min(a.start for a in axes)
        end = max(a.start + a.size for a in axes)
        out.append(Axis(end - start, max(a.jump for a in axes), start))
    return tuple(out)


class _Tracker(TorchFunctionMode):
    def __init__(self, spatial: int) -> None:
        super().__init__()
        self.n = spatial
        self.fields: dict[int, tuple[torch.Tensor, Field]] = {}  # keeps tensors alive so ids stay unique

    def get(self, t: object) -> Field | Literal[False]:
        if isinstance(t, torch.Tensor) and id(t) in self.fields:
            return self.fields[id(t)][1]
        return False  # unknown tensor (a weight, a constant)

    def set(self, t: torch.Tensor, field: Field) -> None:
        self.fields[id(t)] = (t, field)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            self._follow(getattr(func, "__name__", ""), args, kwargs, out)
        except Exception:  # noqa: BLE001 - bookkeeping must never break the model's forward pass
            for t in tensors_in(out):
                self.set(t, None)
        return out

    def _follow(self, name: str, args: Sequence[object], kwargs: dict[str, object], out: object) -> None:
        outs = tensors_in(out)
        if not outs:
            return
        flat = [a for a in args if isinstance(a, torch.Tensor)] + [
            t for a in args if isinstance(a, (list, tuple)) for t in a if isinstance(t, torch.Tensor)]
        known = [(t, f) for t in flat if (f := self.get(t)) is not False]
        if not known:
            return
        n = self.n
        first, field = known[0]
        field = field if field is not False else None
        result: Field
        if field is None:
            result = None
        elif name in (f"conv{n}d",) and isinstance(args[1], torch.Tensor):
            k = tuple(args[1].shape[2:])
            s = _tuple(_arg(args, kwargs, 3, "stride", 1), n)
            d = _tuple(_arg(args, kwargs, 5, "dilation", 1), n)
            pad = _arg(args, kwargs, 4, "padding", 0)
            if pad == "same":
                p = tuple((kk - 1) * dd // 2 for kk, dd in zip(k, d, strict=True))
            else:
                p = (0,) * n if pad == "valid" else _tuple(pad, n)
            result = _window(field, k, s, p, d)
        elif name in (f"max_pool{n}d", f"_max_pool{n}d", f"max_pool{n}d_with_indices", f"avg_pool{n}d"):
            k = _tuple(_arg(args, kwargs, 1, "kernel_size", 1), n)
            stride = _arg(args, kwargs, 2, "stride", None)
            s = k if stride in (None, [], ()) else _tuple(stride, n)
            p = _tuple(_arg(args, kwargs, 3, "padding", 0), n)
            d = _tuple(_arg(args, kwargs, 4, "dilation", 1), n) if name.startswith(("max", "_max")) else (1,) * n
            result = _window(field, k, s, p, d)
        elif name == "pad":
            # F.pad's `pad` is a sequence of ints by its signature; `_arg` only knows it as an object.
            widths = list(cast("Sequence[int]", _arg(args, kwargs, 1, "pad", ())))
            lefts = [widths[2 * i] if 2 * i < len(widths) else 0 for i in range(n)][::-1]  # last axis first
            result = tuple(Axis(a.size, a.jump, a.start - p * a.jump) for a, p in zip(field, lefts, strict=True))
        else:
            same = [f for t, f in known if t.dim() >= n and t.shape[-n:] == first.shape[-n:]]
            if any(f is None or f is False for f in same):
                result = None
            else:
                result = union(same)  # type: ignore[arg-type]
        for t in outs:
            ok = t.dim() >= n + 1 and result is not None and (
                name in ("pad", f"conv{n}d") or "pool" in name or t.shape[-n:] == first.shape[-n:])
            self.set(t, result if ok else None)


def receptive_fields(model: nn.Module, x: torch.Tensor, modules: dict[str, nn.Module]) -> dict[str, Field]:
    """The receptive field (per spatial axis of the input `x`, shape (N, C, *spatial)) of the output of each
    module in `modules`; None where it is global or cannot be followed."""
    n = x.dim() - 2
    found: dict[str, Field] = {}
    tracker = _Tracker(n)

    def make(path: str):  # noqa: ANN202
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            if path not in found and isinstance(out, torch.Tensor):
                f = tracker.get(out)
                found[path] = None if f is False else f  # type: ignore[assignment]
        return hook

    x = x[:1].detach().clone()
    tracker.set(x, tuple(Axis(1, 1, 0) for _ in range(n)))
    with torch.no_grad(), scoped.eval_mode(model), scoped.hooks() as h:
        for path, module in modules.items():
            h.forward(module, make(path))
        with tracker:
            model(x)
    return found


def window(field: tuple[Axis, ...], position: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """The input window [start, end) seen by the unit at `position` (may extend past the input's edges)."""
    return tuple((a.start + i * a.jump, a.start + i * a.jump + a.size) for a, i in zip(field, position, strict=True))
