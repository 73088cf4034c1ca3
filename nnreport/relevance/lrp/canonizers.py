"""Canonicalisation on a private copy of the model: BatchNorm folded into the conv/linear before it,
in-place operations made out-of-place, and an audit of the layer types that no LRP rule covers."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnreport.context import tensors_in

if TYPE_CHECKING:
    import torch
    from torch import nn

# Leaf module types (torch.nn classes and their subclasses) whose relevance flow is exact under the modified gradient (rules, pass-through,
# or identity relevance); anything else is named on the page.
KNOWN_LEAVES = {
    "Conv1d", "Conv2d", "Conv3d", "Linear", "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU",
    "Mish", "Tanh", "Sigmoid", "Softplus", "Hardtanh", "Hardswish", "Hardsigmoid", "MaxPool1d", "MaxPool2d",
    "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Flatten", "Unflatten",
    "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "ZeroPad2d", "ConstantPad2d",
    "LayerNorm", "RMSNorm", "Embedding",  # identity rule (lrp/attention.py); an embedding is where tokens start
}


@dataclass
class Canonical:
    """A canonical private copy of a model, with what was done to it and what no rule covers."""

    model: nn.Module
    folded: list[str] = field(default_factory=list)      # "conv ← bn" pairs folded
    unfolded: list[str] = field(default_factory=list)    # BatchNorm layers left in place, with why
    unknown_modules: dict[str, int] = field(default_factory=dict)  # leaf type -> count
    cache: Any = None


def canonicalize(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Canonical:
    """Copy `model` (the original is never touched), fold BatchNorms and list uncovered layer types."""
    import torch

    from nnreport.relevance.lrp.rules import WeightCache

    try:
        canon = copy.deepcopy(model)
    except Exception as exc:  # noqa: BLE001 - any copy failure means we cannot work on a private copy
        raise ValueError(f"the model cannot be copied for canonicalisation ({type(exc).__name__}: {exc})") from exc
    canon.eval()
    for p in canon.parameters():
        p.requires_grad_(False)
    for m in canon.modules():
        if getattr(m, "inplace", None) is True:
            setattr(m, "inplace", False)  # noqa: B010 - not every module declares the attribute
    result = Canonical(canon, cache=WeightCache())
    with torch.no_grad():
        pairs, left = _find_pairs(canon, inputs)
    for producer, bn in pairs:
        _fold(canon.get_submodule(producer), canon.get_submodule(bn))
        _replace(canon, bn, torch.nn.Identity())
        result.folded.append(f"{bn} → {producer}")
    result.unfolded = left
    known = tuple(getattr(torch.nn, n) for n in KNOWN_LEAVES if hasattr(torch.nn, n))
    for m in canon.modules():
        if m is canon or next(m.children(), None) is not None or isinstance(m, known) or _is_bn(m):
            continue
        if type(m).__module__.startswith("torch.nn"):  # custom leaves show up through the ops they call
            name = type(m).__name__
            result.unknown_modules[name] = result.unknown_modules.get(name, 0) + 1
    return result


def _is_bn(m: nn.Module) -> bool:
    from torch import nn

    return isinstance(m, nn.modules.batchnorm._BatchNorm)


def _find_pairs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[list[tuple[str, str]], list[str]]:
    """(producer, batchnorm) pairs where the BN is the only reader of a conv/linear output, both called once."""
    import torch
    from torch import nn

    from nnreport import scoped

    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}
    calls: dict[str, int] = {}
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    readers: dict[int, int] = {}
    candidates: list[tuple[str, str, int]] = []
    bns: list[str] = []

    def count_inputs(module: nn.Module, args: Any) -> None:
        name = names.get(id(module), "?")
        calls[name] = calls.get(name, 0) + 1
        if _is_bn(module) and args and isinstance(args[0], torch.Tensor):
            bns.append(name)
            hit = produced.get(id(args[0]))
            if hit is not None:
                candidates.append((hit[0], name, id(args[0])))

    def remember(module: nn.Module, args: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            produced[id(out)] = (names.get(id(module), "?"), out)
            readers[id(out)] = 0  # ids of freed tensors are reused: count only reads after this point

    linear = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    with scoped.hooks() as h, _ReadCounter(readers):
        for m in model.modules():
            if next(m.children(), None) is None:
                h.forward_pre(m, count_inputs)
                if isinstance(m, linear):
                    h.forward(m, remember)
        model(*inputs)
    pairs, left = [], []
    folded_bns = set()
    for producer, bn, tid in candidates:
        bn_mod = model.get_submodule(bn)
        if calls.get(producer) != 1 or calls.get(bn) != 1 or readers.get(tid, 0) != 1:
            continue
        if bn_mod.running_mean is None or bn_mod.running_var is None:
            continue
        pairs.append((producer, bn))
        folded_bns.add(bn)
    for bn in dict.fromkeys(bns):
        if bn not in folded_bns:
            left.append(bn)
    return pairs, left


def _fold(layer: Any, bn: Any) -> None:
    """W' = W·γ/σ, b' = (b − μ)·γ/σ + β, per output channel."""
    import torch

    with torch.no_grad():
        std = torch.sqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
        scale = gamma / std
        w = layer.weight
        layer.weight.copy_(w * scale.reshape(-1, *([1] * (w.dim() - 1))))
        old_bias = layer.bias if layer.bias is not None else torch.zeros_like(std)
        new_bias = (old_bias - bn.running_mean) * scale + beta
        if layer.bias is None:
            layer.bias = torch.nn.Parameter(new_bias.clone(), requires_grad=False)
        else:
            layer.bias.copy_(new_bias)


def _replace(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)


_METADATA = {"__get__", "size", "dim", "numel", "__len__", "is_floating_point", "is_contiguous", "data_ptr",
             "__format__", "__bool__", "stride", "element_size", "__hash__", "__repr__", "ndimension", "nelement"}


def _read_counter_type() -> type:
    from torch.overrides import TorchFunctionMode

    class ReadCounter(TorchFunctionMode):
        """Counts how often each tensor is read by a torch function (metadata queries aside)."""

        def __init__(self, readers: dict[int, int]) -> None:
            super().__init__()
            self.readers = readers

        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if getattr(func, "__name__", "") not in _METADATA:
                for a in tensors_in(list(args) + list((kwargs or {}).values())):
                    self.readers[id(a)] = self.readers.get(id(a), 0) + 1
            return func(*args, **(kwargs or {}))

    return ReadCounter


def _ReadCounter(readers: dict[int, int]) -> Any:  # noqa: N802 - reads like the context manager it returns
    return _read_counter_type()(readers)


