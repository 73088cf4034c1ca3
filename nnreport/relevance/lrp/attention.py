"""LRP rules for transformer operations (AttnLRP, Achtibat et al. 2024; CP-LRP, Ali et al. 2022), written as
modified gradients:

- LayerNorm / RMSNorm (and hand-written norms through ``sqrt``/``rsqrt``): identity rule, the normalising
  std is a constant in the backward pass.
- Product of two activations (``matmul``, ``bmm``, ``einsum``, element-wise ``mul``): ε-rule with a uniform
  split, each operand gets half of the relevance. A product with a constant (a weight) is a linear map: ε-rule.
- Softmax: the AttnLRP rule R_in = x ⊙ (R_out − s·ΣR_out), whose gradient form is the softmax's own gradient;
  under ``attention="cp"`` the attention probabilities are constants (queries and keys get no relevance).

`lrp.written` writes fused attention out with these rules; `lrp.transformer` applies them inside the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import torch

AttentionName = Literal["attnlrp", "cp"]
ATTENTION_NAMES: tuple[str, ...] = get_args(AttentionName)
Bilinear = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]

PRODUCT_OPS = {"matmul", "__matmul__", "__rmatmul__", "bmm", "einsum"}
MUL_OPS = {"mul", "__mul__", "__rmul__"}
NORMALISERS = {"sqrt", "rsqrt"}
# Softmax over attention scores: (batch·heads, queries, keys) or more dimensions. A 2-D softmax is a
# classifier's output and keeps its gradient even under CP.
ATTENTION_MIN_DIM = 3

DESCRIPTIONS = {
    "layer_norm": "LayerNorm: identity rule (the normalising std is a constant)",
    "rms_norm": "RMSNorm: identity rule (the root mean square is a constant)",
    "product": "product of two activations: ε-rule, half of the relevance to each operand",
    "attnlrp": "softmax: AttnLRP rule R_in = x ⊙ (R_out − s·ΣR_out) (not conservative: its bias term absorbs "
               "relevance)",
    "cp": "attention: CP-LRP, queries and keys held constant (relevance flows through the values only)",
}


def check_attention(name: str) -> None:
    """Raise for an unknown attention treatment, listing the known ones."""
    if name not in ATTENTION_NAMES:
        raise KeyError(f"unknown attention treatment {name!r}; known: {', '.join(ATTENTION_NAMES)}")


def _stabilise(z: torch.Tensor, eps: float) -> torch.Tensor:
    import torch

    return z + torch.copysign(torch.tensor(eps, dtype=z.dtype, device=z.device), z)


def _reroute(value: torch.Tensor, paths: list[tuple[torch.Tensor, Any]]) -> torch.Tensor:
    """A tensor equal to `value` whose gradient reaches each path tensor p scaled by its coefficient c."""
    mixed = sum(c * p for p, c in paths)
    return mixed + (value - mixed).detach()  # type: ignore[operator]


_FN: dict[str, Any] = {}


def product(op: Bilinear, a: torch.Tensor, b: torch.Tensor, eps: float) -> tuple[torch.Tensor, str]:
    """`op(a, b)` whose gradient is the ε-rule: uniform split when both operands carry relevance, the plain
    ε-rule when one of them is a constant (then the product is linear)."""
    import torch

    ga, gb = a.requires_grad, b.requires_grad
    if not (ga or gb):
        return op(a, b), ""
    label = "activation × activation → ε, uniform split" if ga and gb else "activation × constant → ε"
    if op is torch.matmul and a.dim() >= 2 and b.dim() >= 2:
        return matmul_fn()(a, b, eps, 0.5 if ga and gb else 1.0), label
    if ga and gb:
        za, zb = op(a, b.detach()), op(a.detach(), b)
        ratio = 0.5 * (za.detach() / _stabilise(za.detach(), eps))
        return _reroute(za.detach(), [(za, ratio), (zb, ratio)]), label
    z = op(a, b)
    ratio = z.detach() / _stabilise(z.detach(), eps)
    return _reroute(z.detach(), [(z, ratio)]), label


def matmul_fn() -> Any:
    """The product rule for matmul as one autograd function (one product forward, two backward, as a plain
    matmul): with g' = share · g · z / (z + ε·sign z), the gradients are g'·Bᵀ and Aᵀ·g'."""
    if "matmul" in _FN:
        return _FN["matmul"]
    import torch

    class ProductRule(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, eps: float, share: float) -> torch.Tensor:
            z = torch.matmul(a, b)
            ctx.save_for_backward(a, b, z)
            ctx.eps, ctx.share = eps, share
            return z

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> Any:
            a, b, z = ctx.saved_tensors
            den = torch.copysign(torch.tensor(ctx.eps, dtype=z.dtype, device=z.device), z).add_(z)
            g = torch.div(z, den).mul_(g)
            if ctx.share != 1.0:
                g.mul_(ctx.share)
            ga = torch.matmul(g, b.transpose(-2, -1)).sum_to_size(a.shape) if ctx.needs_input_grad[0] else None
            gb = torch.matmul(a.transpose(-2, -1), g).sum_to_size(b.shape) if ctx.needs_input_grad[1] else None
            return ga, gb, None, None

    _FN["matmul"] = ProductRule.apply
    return ProductRule.apply


def mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise product of two activations: each operand gets half (one contribution per output, so ε
    changes nothing)."""
    za, zb = a * b.detach(), a.detach() * b
    return _reroute(za.detach(), [(za, 0.5), (zb, 0.5)])


def softmax(x: torch.Tensor, dim: int, attention: str, dtype: Any = None) -> torch.Tensor:
    """Softmax under the chosen attention treatment. CP: the attention probabilities are constants. AttnLRP:
    with R_out = s ⊙ g, the rule R_in = x ⊙ (R_out − s·ΣR_out) asks for the gradient R_out − s·ΣR_out =
    s ⊙ (g − Σ s⊙g), which is the softmax's own gradient, so the native (fused) backward carries the rule
    exactly (tests/test_relevance_transformers.py checks it against the formula in float64)."""
    import torch

    if dtype is not None:
        x = x.to(dtype)
    if attention == "cp" and x.dim() >= ATTENTION_MIN_DIM:
        return torch.softmax(x.detach(), dim)
    return torch.softmax(x, dim)


def layer_norm(x: torch.Tensor, shape: Any, weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float) -> torch.Tensor:
    """LayerNorm with its std held constant (the centring stays linear and keeps its gradient)."""
    import torch.nn.functional as F

    if not x.requires_grad:
        return F.layer_norm(x, shape, weight, bias, eps)
    dims = tuple(range(-len(tuple(shape)), 0))
    centred = x - x.mean(dims, keepdim=True)
    y = centred * (centred.detach().pow(2).mean(dims, keepdim=True) + eps).rsqrt()
    y = y * weight if weight is not None else y
    return y + bias if bias is not None else y


def rms_norm(x: torch.Tensor, shape: Any, weight: torch.Tensor | None, eps: float | None) -> torch.Tensor:
    """RMSNorm with its root mean square held constant."""
    import torch
    import torch.nn.functional as F

    exact = F.rms_norm(x, shape, weight, eps)
    if not x.requires_grad:
        return exact
    dims = tuple(range(-len(tuple(shape)), 0))
    e = torch.finfo(x.dtype).eps if eps is None else eps
    y = x / (x.detach().pow(2).mean(dims, keepdim=True) + e).sqrt()
    y = y * weight if weight is not None else y
    return exact.detach() + (y - y.detach())


def arg(args: Any, kwargs: Any, i: int, name: str, default: Any = None) -> Any:
    """Positional argument `i` or keyword `name`."""
    return args[i] if len(args) > i else kwargs.get(name, default)


def notes(rules: dict[str, int], attention: str) -> list[str]:
    """What the page says about the transformer rules that ran."""
    out = []
    if any(k.startswith(("softmax", "multi_head", "scaled_dot")) for k in rules):
        text = DESCRIPTIONS["cp" if attention == "cp" else "attnlrp"]
        out.append(text[0].upper() + text[1:] + ".")
        if attention != "cp":
            out.append("The AttnLRP softmax rule is not conservative by design: its Taylor bias term "
                       "(s·ΣR_out) absorbs relevance, so the map's sum differs from the score (see the "
                       "conservation plot); attention='cp' keeps conservation.")
    return out
