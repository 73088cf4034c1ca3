"""The modified-gradient engine: one torch-function mode that, while a model runs, swaps the backward
pass of linear operations (LRP rules), of ReLUs (Deconvnet, Guided Backprop) and of element-wise
activations (identity relevance), and records which operations no rule covers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from nnreport.context import tensors_in
from nnreport.relevance.lrp import rules

if TYPE_CHECKING:
    import torch

    from nnreport.relevance.lrp.composites import Composite

ReluMode = Literal["gradient", "deconvnet", "guided"]

# What a transformer hook (`lrp.transformer.Rules.handle`) returns for an op it leaves to the engine.
NOT_HANDLED = object()

# Operations through which the plain gradient is also the right relevance flow (linear, structural,
# winner-takes-all pooling); they are neither modified nor reported.
SAFE_OPS = {
    "add", "__add__", "__radd__", "__iadd__", "add_", "sub", "__sub__", "__rsub__", "__isub__", "neg", "__neg__",
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "view", "view_as", "reshape", "reshape_as",
    "flatten", "unflatten", "permute", "transpose", "t", "contiguous", "squeeze", "unsqueeze", "__getitem__",
    "narrow", "select", "chunk", "split", "unbind", "expand", "expand_as", "repeat", "clone", "to", "float",
    "double", "type", "mean", "sum", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "_max_pool1d",
    "_max_pool2d", "_max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "_adaptive_max_pool1d",
    "_adaptive_max_pool2d", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "dropout",
    "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "pad", "_pad", "zero_pad2d",
    "constant_pad_nd", "identity", "movedim", "swapaxes", "flip", "roll", "tile", "__setitem__", "detach",
    "requires_grad_", "cpu", "zeros_like", "ones_like", "new_zeros", "new_ones", "new_empty", "new_full", "empty_like",
    "full_like", "__iter__", "split_with_sizes", "tensor_split", "argmax", "max", "eq", "ne", "gt", "lt", "ge", "le",
    "__eq__", "__ne__", "__gt__", "__lt__", "__ge__", "__le__", "sign", "long", "int", "item", "tolist", "numpy",
}
METADATA = {"__get__", "size", "dim", "numel", "__len__", "is_floating_point", "is_contiguous", "data_ptr",
            "__format__", "__bool__", "stride", "element_size", "__hash__", "__repr__", "ndimension", "nelement",
            "__set__", "storage_offset", "is_complex", "__index__", "__int__", "__float__", "get_device",
            "__reduce_ex__", "__deepcopy__", "__array__", "zeros", "ones", "empty", "full", "arange", "tensor",
            "as_tensor", "linspace", "randn", "rand", "eye", "batch_norm"}  # batch_norm: named by the canonizer
SCALING_OPS = {"mul", "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__", "__itruediv__", "div_"}
RELU_OPS = {"relu", "relu_"}
ACTIVATIONS = {"tanh", "sigmoid", "gelu", "silu", "elu", "selu", "celu", "leaky_relu", "softplus", "mish",
               "hardtanh", "relu6", "hardswish", "hardsigmoid", "leaky_relu_", "elu_", "tanh_", "sigmoid_"}


@dataclass
class Audit:
    """What the engine did to each kind of operation during one pass."""

    rules: Counter[str] = field(default_factory=Counter)       # "conv2d → zplus"
    activations: Counter[str] = field(default_factory=Counter)  # identity relevance
    unhandled: Counter[str] = field(default_factory=Counter)    # plain gradient, not an LRP rule
    input_layers: int = 0


def _linear_funcs() -> dict[Any, bool]:
    import torch
    import torch.nn.functional as F

    return {F.linear: False, torch.conv1d: True, torch.conv2d: True, torch.conv3d: True}


def _relu_fns() -> dict[str, Any]:
    import torch

    class DeconvReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
            return g.clamp(min=0)

    class GuidedReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
            (x,) = ctx.saved_tensors
            return g.clamp(min=0) * (x > 0).to(g.dtype)

    return {"deconvnet": DeconvReLU.apply, "guided": GuidedReLU.apply}


_CACHE: dict[str, Any] = {}


def mode(relu: ReluMode = "gradient", composite: Composite | None = None, model_input: torch.Tensor | None = None,
         cache: rules.WeightCache | None = None, capture_convs: bool = False, transformer: Any = None) -> Any:
    """A context manager (torch function mode); see `ExplainMode`. `transformer`: an `lrp.attention.Rules`
    (transformer rules, token-embedding leaf, attention recorder)."""
    if "type" not in _CACHE:
        _CACHE["type"] = _mode_type()
    m = _CACHE["type"](relu, composite, model_input, cache or rules.WeightCache(), capture_convs)
    m.transformer = transformer
    return m


def _mode_type() -> type:
    import torch
    from torch.overrides import TorchFunctionMode

    linear_funcs = _linear_funcs()
    relu_fns = _relu_fns()

    class ExplainMode(TorchFunctionMode):
        """While active: LRP rules on linear ops (if a composite is given), modified ReLU backward passes,
        identity relevance through other activations (LRP only), captured conv outputs (Grad-CAM)."""

        def __init__(self, relu: ReluMode, composite: Composite | None, model_input: torch.Tensor | None,
                     cache: rules.WeightCache, capture_convs: bool) -> None:
            super().__init__()
            self.relu, self.composite, self.model_input, self.cache = relu, composite, model_input, cache
            self.capture_convs = capture_convs
            self.pieces: list[torch.Tensor] = []
            self.convs: list[torch.Tensor] = []
            self.audit = Audit()
            self.transformer: Any = None

        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if self.transformer is not None:
                hit = self.transformer.handle(self, func, name, args, kwargs)
                if hit is not NOT_HANDLED:
                    return hit
            if func in linear_funcs:
                return self._linear(func, name, linear_funcs[func], args, kwargs)
            if name in RELU_OPS:
                x = args[0] if args else kwargs["input"]
                fn = relu_fns.get(self.relu)
                return fn(x) if fn is not None else torch.relu(x)
            if self.composite is not None and name in ACTIVATIONS:
                return self._activation(func, name, args, kwargs)
            out = func(*args, **kwargs)
            if (self.composite is not None and name not in SAFE_OPS and name not in METADATA
                    and isinstance(out, torch.Tensor) and out.requires_grad):  # ops on constants carry no relevance
                self._audit_other(name, args, kwargs)
            return out

        def _audit_other(self, name: str, args: Any, kwargs: Any) -> None:
            if name in SCALING_OPS:
                tensors = [t for t in tensors_in(list(args) + list(kwargs.values())) if t.numel() > 1]
                if len(tensors) <= 1:
                    return
                name = f"{name} (tensor × tensor)"
            self.audit.unhandled[name] += 1

        def _linear(self, func: Any, name: str, is_conv: bool, args: Any, kwargs: Any) -> Any:
            x = args[0] if args else kwargs["input"]
            w = args[1] if len(args) > 1 else kwargs["weight"]
            b = args[2] if len(args) > 2 else kwargs.get("bias")
            rest = args[3:]
            kw = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}

            def op(i: torch.Tensor, ww: torch.Tensor, bb: torch.Tensor | None) -> torch.Tensor:
                return func(i, ww, bb, *rest, **kw)

            z = op(x, w, b)
            if self.capture_convs and name == "conv2d" and z.requires_grad:
                z.retain_grad()
                self.convs.append(z)
            if self.composite is None:
                return z
            reads_input = self._reads_input(x)
            rule = self.composite.for_layer(is_conv, reads_input)
            out, pieces = rules.apply(rule, op, x, w, b, z, self.cache)
            self.pieces.extend(pieces)
            self.audit.rules[f"{name} → {rule.name}"] += 1
            self.audit.input_layers += int(reads_input)
            return out

        def _reads_input(self, x: torch.Tensor) -> bool:
            mi = self.model_input
            return (mi is not None and x.data_ptr() == mi.data_ptr() and x.numel() == mi.numel()
                    and x.is_contiguous() and mi.is_contiguous())

        def _activation(self, func: Any, name: str, args: Any, kwargs: Any) -> Any:
            kwargs = {k: v for k, v in kwargs.items() if k != "inplace"}
            name = name.rstrip("_")
            x = args[0] if args else kwargs.pop("input")
            fn = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}.get(name) or getattr(torch.nn.functional, name)
            fx = fn(x, *args[1:], **kwargs).detach()
            self.audit.activations[name] += 1
            out = x * (fx / rules.stabilise(x.detach(), rules.TINY))
            return out + (fx - out.detach())

    return ExplainMode
