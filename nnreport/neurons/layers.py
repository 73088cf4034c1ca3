"""Which layers to show, and capturing their outputs with hooks that are always removed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from nnreport import scoped
from nnreport.errors import Skipped


@dataclass(frozen=True)
class LayerChoice:
    path: str
    type: str
    shape: tuple[int, ...]  # one sample's output shape: (F,) or (C, H, W)


class NotReached(Exception):
    """A wanted module was not called in the forward pass (data-dependent control flow)."""


class _Stop(Exception):
    """Raised by a hook once every wanted output is captured, to skip the rest of the forward pass."""


def _weighted(module: nn.Module) -> bool:
    """Holds a weight matrix or kernel (conv, linear, attention...); norms and biases alone don't count."""
    return any(p.dim() >= 2 for p in module.parameters())


def _trace(model: nn.Module, x: tuple[torch.Tensor, ...]) -> list[tuple[str, nn.Module, object]]:
    """Every module's first call, in the order the calls begin, with its output."""
    entered: list[str] = []
    outputs: dict[str, object] = {}
    names = {id(m): n for n, m in model.named_modules()}

    def pre(module: nn.Module, _inp: object) -> None:
        name = names.get(id(module))
        if name is not None and name not in entered:
            entered.append(name)

    def post(module: nn.Module, _inp: object, out: object) -> None:
        name = names.get(id(module))
        if name is not None and name not in outputs:
            outputs[name] = out

    modules = dict(model.named_modules())
    with torch.no_grad(), scoped.eval_mode(model), scoped.hooks() as h:
        for m in modules.values():
            h.forward_pre(m, pre)
            h.forward(m, post)
        model(*x)
    return [(n, modules[n], outputs.get(n)) for n in entered]


def _unit_shape(out: object) -> tuple[int, ...] | None:
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dim() in (2, 4):
        return tuple(out.shape[1:])
    return None


def _items(model: nn.Module, calls: list[tuple[str, nn.Module, object]]) -> list[str]:
    """The model's top-level children in call order, Sequentials with several weighted layers opened up."""
    called = [n for n, _, _ in calls]

    def expand(prefix: str, module: nn.Module) -> list[str]:
        kids = [(f"{prefix}.{k}" if prefix else k, m) for k, m in module.named_children()]
        weighted = [p for p, m in kids if _weighted(m)]
        is_root = prefix == ""
        if kids and (is_root or (isinstance(module, nn.Sequential) and len(weighted) > 1)):
            out: list[str] = []
            for path, child in kids:
                out.extend(expand(path, child))
            return out
        return [prefix]

    wanted = set(expand("", model))
    if len(wanted) == 1 and "" in wanted:
        return [""]
    return [n for n in called if n in wanted]


def representative(model: nn.Module, x: tuple[torch.Tensor, ...], budget: int) -> list[LayerChoice]:
    """The end of each stage (a weighted layer and the parameter-free layers after it that keep its shape)
    and the output layer, thinned evenly to `budget` layers (the output layer always stays)."""
    calls = _trace(model, x)
    by_name = {n: (m, out) for n, m, out in calls}
    groups: list[str] = []
    group_shape: tuple[int, ...] | None = None
    for name in _items(model, calls):
        module, out = by_name[name]
        shape = _unit_shape(out)
        if _weighted(module) or not groups:
            groups.append(name)
            group_shape = shape
        elif shape is not None and shape == group_shape:
            groups[-1] = name  # e.g. the ReLU after a conv: show what the next stage sees
    chosen = [LayerChoice(n, type(by_name[n][0]).__name__, s) for n in groups
              if (s := _unit_shape(by_name[n][1])) is not None]
    if not chosen:
        raise Skipped("no layer gives a (batch, features) or (batch, channels, height, width) output to show")
    return thin(chosen, budget)


def thin(layers: list[LayerChoice], budget: int) -> list[LayerChoice]:
    if len(layers) <= budget:
        return layers
    if budget <= 1:
        return layers[-1:]
    step = (len(layers) - 1) / (budget - 1)
    return [layers[round(i * step)] for i in range(budget)]


def named(model: nn.Module, x: tuple[torch.Tensor, ...], paths: Iterable[str]) -> list[LayerChoice]:
    """The layers the config names by module path, checked against the model."""
    modules = dict(model.named_modules())
    paths = list(paths)
    missing = [p for p in paths if p not in modules]
    if missing:
        known = ", ".join(list(n for n in modules if n)[:30])
        raise ValueError(f"[analyses.activations] layers: no module {', '.join(missing)}; modules: {known}")
    outs = capture(model, {p: modules[p] for p in paths}, x, grad=False)
    chosen = []
    for p in paths:
        shape = _unit_shape(outs.get(p))
        if shape is None:
            raise ValueError(f"[analyses.activations] layers: {p} does not output a (batch, features) or "
                             "(batch, channels, height, width) float tensor")
        chosen.append(LayerChoice(p, type(modules[p]).__name__, shape))
    return chosen


def capture(model: nn.Module, modules: dict[str, nn.Module], x: tuple[torch.Tensor, ...],
            grad: bool = False, copy: bool = False) -> dict[str, torch.Tensor]:
    """Outputs of `modules` (first call each) for inputs `x`; the forward pass stops once all are seen.
    The caller puts the model in eval mode (and freezes it when `grad`). Should a later in-place op (e.g.
    ReLU(inplace=True)) change a captured output, the pass is repeated with copies."""
    outs: dict[str, torch.Tensor] = {}
    versions: dict[str, int] = {}
    wanted = set(modules)

    def make(path: str):  # noqa: ANN202
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            if path not in outs and isinstance(out, torch.Tensor):
                outs[path] = out.detach().clone() if copy else out
                versions[path] = out._version
                if set(outs) >= wanted:
                    raise _Stop
        return hook

    with torch.set_grad_enabled(grad), scoped.hooks() as h:
        for path, module in modules.items():
            h.forward(module, make(path))
        try:
            model(*x)
        except _Stop:
            pass
    missing = sorted(wanted - set(outs))
    if missing:
        raise NotReached(f"{', '.join(missing)} not called for these inputs (data-dependent control flow?)")
    if not copy and any(outs[p]._version != v for p, v in versions.items()):
        return capture(model, modules, x, grad, copy=True)
    return outs


def module_map(model: nn.Module, paths: Iterable[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    return {p: modules[p] for p in paths}


