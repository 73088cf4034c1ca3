"""Which layers to show, and capturing their outputs with hooks that are always removed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from nnreport import scoped
from nnreport.errors import Skipped

# The path of the model's own (primary) output, shown as a last layer when no module's output is it.
OUTPUT = ""
# Layers that keep channels on the last axis, (N, H, W, C): linear layers and layer norms applied per position.
LAST_AXIS = (nn.Linear, nn.LayerNorm, nn.RMSNorm) if hasattr(nn, "RMSNorm") else (nn.Linear, nn.LayerNorm)


@dataclass(frozen=True)
class LayerChoice:
    path: str
    type: str
    shape: tuple[int, ...]  # one sample's output shape: (F,) or (C, H, W), channels first
    # The module gives (N, H, W, C) (Swin's stages, per-position MLPs): captures are permuted to (N, C, H, W).
    channels_last: bool = False


def display_path(path: str) -> str:
    return path if path != OUTPUT else "(model)"


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


def _unit_shape(out: object, channels_last: bool = False) -> tuple[int, ...] | None:
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dim() in (2, 4):
        shape = tuple(out.shape[1:])
        return (shape[2], shape[0], shape[1]) if channels_last else shape
    return None


def _channels_last(name: str, calls: list[tuple[str, nn.Module, object]],
                   by_name: dict[str, tuple[nn.Module, object]]) -> bool:
    """Whether a 4-D output keeps its channels on the last axis: the module is (or the last module with
    weights called inside it is) a per-position linear layer or layer norm whose output has the same
    shape. ConvNeXt's blocks, which permute back, and LayerNorm2d-style subclasses stay channels first.
    `by_name` is `calls` by module path."""
    module, out = by_name[name]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        return False
    inside = [(m, o) for n, m, o in calls if (n.startswith(name + ".") or name == "") and n != name
              and any(True for _ in m.parameters(recurse=False))]
    m, o = (module, out) if not inside else inside[-1]
    return type(m) in LAST_AXIS and isinstance(o, torch.Tensor) and o.shape == out.shape


def _same_values(a: object, b: object) -> bool:
    return a is b or (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.numel() == b.numel()
                      and a.shape[0] == b.shape[0] and a.dtype == b.dtype and torch.equal(a.reshape(b.shape), b))


def _output_layer(by_name: dict[str, tuple[nn.Module, object]], chosen: list[LayerChoice]) -> LayerChoice | None:
    """The model's primary output as a layer of its own, when it is not the last chosen layer's output
    (e.g. a functional pooling or a temperature after the last module, or a dict whose logits come earlier)."""
    final = _primary(by_name[OUTPUT][1]) if OUTPUT in by_name else None
    shape = _unit_shape(final)
    if shape is None or (chosen and _same_values(by_name[chosen[-1].path][1], final)):
        return None
    return LayerChoice(OUTPUT, "output", shape)


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
    chosen = []
    for n in groups:
        last = _channels_last(n, calls, by_name)
        if (s := _unit_shape(by_name[n][1], last)) is not None:
            chosen.append(LayerChoice(n, type(by_name[n][0]).__name__, s, last))
    if (output := _output_layer(by_name, chosen)) is not None:
        chosen.append(output)
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
    calls = _trace(model, x)
    by_name = {n: (m, out) for n, m, out in calls}
    chosen = []
    for p in paths:
        if p not in by_name:
            raise NotReached(f"{p} not called for the example inputs (data-dependent control flow?)")
        last = _channels_last(p, calls, by_name)
        out = by_name[p][1]
        shape = _unit_shape(out if p != OUTPUT else _primary(out), last)
        if shape is None:
            raise ValueError(f"[analyses.activations] layers: {p} does not output a (batch, features) or "
                             "(batch, channels, height, width) float tensor")
        chosen.append(LayerChoice(p, type(modules[p]).__name__ if p != OUTPUT else "output", shape, last))
    return chosen


def _primary(out: object) -> object:
    from nnreport.context import primary_output

    try:
        return primary_output(out)
    except TypeError:
        return None


def channels_last(chosen: Iterable[LayerChoice]) -> frozenset[str]:
    return frozenset(c.path for c in chosen if c.channels_last)


def capture(model: nn.Module, modules: dict[str, nn.Module], x: tuple[torch.Tensor, ...],
            grad: bool = False, copy: bool = False, last_axis: frozenset[str] = frozenset()) -> dict[str, torch.Tensor]:
    """Outputs of `modules` (first call each) for inputs `x`; the forward pass stops once all are seen.
    The path OUTPUT ("", the model itself) captures the model's primary output; paths in `last_axis`
    (channels-last layers) come back as (N, C, H, W). The caller puts the model in eval mode (and freezes
    it when `grad`). Should a later in-place op (e.g. ReLU(inplace=True)) change a captured output, the pass
    is repeated with copies."""
    outs: dict[str, torch.Tensor] = {}
    versions: dict[str, int] = {}
    wanted = set(modules)

    def make(path: str):  # noqa: ANN202
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            if path == OUTPUT and not isinstance(out, torch.Tensor):
                out = _primary(out)
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
        return capture(model, modules, x, grad, copy=True, last_axis=last_axis)
    return {p: t.permute(0, 3, 1, 2) if p in last_axis and t.dim() == 4 else t for p, t in outs.items()}


def module_map(model: nn.Module, paths: Iterable[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    return {p: modules[p] for p in paths}


