"""LRP rules for transformer operations (AttnLRP, Achtibat et al. 2024; CP-LRP, Ali et al. 2022), written as
modified gradients and found at the operation level (no class names):

- LayerNorm / RMSNorm (and hand-written norms through ``sqrt``/``rsqrt``): identity rule, the normalising
  std is a constant in the backward pass.
- Product of two activations (``matmul``, ``bmm``, ``einsum``, element-wise ``mul``): ε-rule with a uniform
  split, each operand gets half of the relevance. A product with a constant (a weight) is a linear map: ε-rule.
- Softmax: the AttnLRP rule R_in = x ⊙ (R_out − s·ΣR_out), whose gradient form is the softmax's own gradient;
  under ``attention="cp"`` the attention probabilities are constants (queries and keys get no relevance).
- ``F.multi_head_attention_forward`` and ``F.scaled_dot_product_attention`` are written out with the ops
  above (their fused kernels would hide the products and the softmax).
- ``F.embedding`` reading a token-id model input hands back a leaf: relevance is attributed at the embedding
  output (see `methods.token_leaf`).
"""

from __future__ import annotations

import inspect
import math
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


class Ops:
    """What the written-out attention calls: the engine's linear rule, products and softmax under their rules
    (`lrp` off: plain ops), a recorder for attention probabilities and a counter for the audit."""

    def __init__(self, linear: Callable[..., torch.Tensor], eps: float, attention: str, lrp: bool,
                 record: Callable[[torch.Tensor], None], count: Callable[[str], None]) -> None:
        self.linear, self.eps, self.attention, self.lrp = linear, eps, attention, lrp
        self.record, self.count = record, count

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        import torch

        if not self.lrp:
            return torch.matmul(a, b)
        out, label = product(torch.matmul, a, b, self.eps)
        if label:
            self.count(f"matmul ({label})")
        return out

    def softmax(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        s = softmax(x, -1, self.attention) if self.lrp else torch.softmax(x, -1)
        if self.lrp and x.requires_grad:
            self.count("softmax → " + ("constant (CP)" if self.attention == "cp" else "AttnLRP"))
        self.record(s)
        return s


def _float_mask(mask: torch.Tensor | None, dtype: Any, disallow_true: bool) -> torch.Tensor | None:
    """A boolean mask as an additive float mask (−inf where attention is not allowed)."""
    import torch

    if mask is None or mask.is_floating_point():
        return None if mask is None else mask.to(dtype)
    blocked = mask if disallow_true else ~mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(blocked, float("-inf"))


def sdpa(ops: Ops, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
         dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
         enable_gqa: bool = False) -> torch.Tensor:
    """`F.scaled_dot_product_attention` written out (eval: dropout is not applied)."""
    import torch

    length, source = q.size(-2), k.size(-2)
    factor = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    if enable_gqa and k.dim() >= 3 and k.size(-3) != q.size(-3):
        rep = q.size(-3) // k.size(-3)
        k, v = k.repeat_interleave(rep, -3), v.repeat_interleave(rep, -3)
    scores = ops.matmul(q * factor, k.transpose(-2, -1))
    if is_causal:
        allowed = torch.ones(length, source, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    mask = _float_mask(attn_mask, scores.dtype, disallow_true=False)
    if mask is not None:
        scores = scores + mask
    return ops.matmul(ops.softmax(scores), v)


_MHA_SIGNATURE: list[inspect.Signature] = []


def mha(ops: Ops, args: Any, kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """`F.multi_head_attention_forward` written out with the engine's ops; None where it is not supported
    (static keys/values)."""
    import torch
    import torch.nn.functional as F

    if not _MHA_SIGNATURE:
        _MHA_SIGNATURE.append(inspect.signature(F.multi_head_attention_forward))
    a = _MHA_SIGNATURE[0].bind(*args, **kwargs)
    a.apply_defaults()
    p = a.arguments
    if p["static_k"] is not None or p["static_v"] is not None:
        return None
    query, key, value = p["query"], p["key"], p["value"]
    batched = query.dim() == 3
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
    length, n, e = query.shape
    heads = p["num_heads"]
    hd = e // heads
    if p["use_separate_proj_weight"]:
        wq, wk, wv = p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]
    else:
        wq, wk, wv = p["in_proj_weight"].chunk(3)
    bq = bk = bv = None
    if p["in_proj_bias"] is not None:
        bq, bk, bv = p["in_proj_bias"].chunk(3)
    q, k, v = ops.linear(query, wq, bq), ops.linear(key, wk, bk), ops.linear(value, wv, bv)
    mask = _float_mask(p["attn_mask"], q.dtype, disallow_true=True)
    pad = _float_mask(p["key_padding_mask"], q.dtype, disallow_true=True)
    if p["bias_k"] is not None:
        k = torch.cat([k, p["bias_k"].repeat(1, n, 1)])
        v = torch.cat([v, p["bias_v"].repeat(1, n, 1)])
        mask = None if mask is None else F.pad(mask, (0, 1))
        pad = None if pad is None else F.pad(pad, (0, 1))
    q = q.reshape(length, n * heads, hd).transpose(0, 1)
    k = k.reshape(k.size(0), n * heads, hd).transpose(0, 1)
    v = v.reshape(v.size(0), n * heads, hd).transpose(0, 1)
    if p["add_zero_attn"]:
        k = torch.cat([k, k.new_zeros(n * heads, 1, hd)], 1)
        v = torch.cat([v, v.new_zeros(n * heads, 1, hd)], 1)
        mask = None if mask is None else F.pad(mask, (0, 1))
        pad = None if pad is None else F.pad(pad, (0, 1))
    source = k.size(1)
    if mask is None and p["is_causal"]:
        mask = torch.zeros(length, source, dtype=q.dtype, device=q.device).masked_fill(
            ~torch.ones(length, source, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if mask is not None and mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if pad is not None:
        pad = pad.reshape(n, 1, 1, source).expand(-1, heads, -1, -1).reshape(n * heads, 1, source)
        mask = pad if mask is None else mask + pad
    scores = ops.matmul(q * (1.0 / math.sqrt(hd)), k.transpose(-2, -1))
    if mask is not None:
        scores = scores + mask
    probs = ops.softmax(scores)
    out = ops.matmul(probs, v).transpose(0, 1).reshape(length * n, e)
    out = ops.linear(out, p["out_proj_weight"], p["out_proj_bias"]).reshape(length, n, e)
    weights = None
    if p["need_weights"]:
        weights = probs.detach().reshape(n, heads, length, source)
        weights = weights.mean(1) if p["average_attn_weights"] else weights
        weights = weights if batched else weights.squeeze(0)
    return (out if batched else out.squeeze(1)), weights


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


NOT_HANDLED = object()


class Rules:
    """The engine's transformer hook: `handle` returns the op's result under its rule, or NOT_HANDLED.

    `lrp` off (gradient methods): only the token-embedding leaf and the attention recorder are active."""

    def __init__(self, attention: str = "attnlrp", eps: float = 1e-6, lrp: bool = True,
                 record_attention: bool = False) -> None:
        check_attention(attention)
        self.attention, self.eps, self.lrp, self.record_attention = attention, eps, lrp, record_attention
        self.embedding: torch.Tensor | None = None   # the leaf standing for a token input's embedding
        self.maps: list[torch.Tensor] = []             # attention probabilities, in call order

    def record(self, probs: torch.Tensor) -> None:
        if self.record_attention:
            self.maps.append(probs.detach())

    def handle(self, mode: Any, func: Any, name: str, args: Any, kwargs: Any) -> Any:
        if name == "embedding":
            return self._embedding(mode, func, args, kwargs)
        if name == "multi_head_attention_forward":
            return self._mha(mode, func, args, kwargs)
        if name == "scaled_dot_product_attention":
            out = sdpa(self._ops(mode), *args, **kwargs)
            self._count(mode, "scaled_dot_product_attention → written out")
            return out
        if name == "softmax" and (self.lrp or self.record_attention):
            return self._softmax(mode, func, args, kwargs)
        if not self.lrp:
            return NOT_HANDLED
        return self._lrp_op(mode, func, name, args, kwargs)

    def _lrp_op(self, mode: Any, func: Any, name: str, args: Any, kwargs: Any) -> Any:
        import torch

        if name == "layer_norm":
            self._count(mode, "layer_norm → identity (std constant)")
            return layer_norm(args[0] if args else kwargs["input"], arg(args, kwargs, 1, "normalized_shape"),
                              arg(args, kwargs, 2, "weight"), arg(args, kwargs, 3, "bias"),
                              arg(args, kwargs, 4, "eps", 1e-5))
        if name == "rms_norm":
            self._count(mode, "rms_norm → identity (rms constant)")
            return rms_norm(args[0] if args else kwargs["input"], arg(args, kwargs, 1, "normalized_shape"),
                            arg(args, kwargs, 2, "weight"), arg(args, kwargs, 3, "eps"))
        if name in NORMALISERS:
            out = func(*args, **kwargs)
            if out.requires_grad:
                self._count(mode, f"{name} → constant (hand-written norm)")
            return out.detach()
        tensors = [t for t in args if isinstance(t, torch.Tensor)]
        if name in PRODUCT_OPS and len(tensors) == 2 and not kwargs:
            if name == "einsum":
                eq = args[0]
                op: Bilinear = lambda a, b: torch.einsum(eq, a, b)  # noqa: E731
            else:
                op = (lambda a, b: func(b, a)) if name == "__rmatmul__" else func  # noqa: E731
            out, label = product(op, args[-2], args[-1], self.eps)
            if label:
                self._count(mode, f"{name.strip('_')} ({label})")
            return out
        if (name in MUL_OPS and len(tensors) == 2 and not kwargs and all(t.requires_grad for t in tensors)
                and min(t.numel() for t in tensors) > 1):
            self._count(mode, "mul (activation × activation → uniform split)")
            return mul(tensors[0], tensors[1])
        return NOT_HANDLED

    def _softmax(self, mode: Any, func: Any, args: Any, kwargs: Any) -> Any:
        x = args[0] if args else kwargs["input"]
        import torch

        dim = arg(args, kwargs, 1, "dim")
        dtype = kwargs.get("dtype", args[2] if len(args) > 2 and isinstance(args[2], torch.dtype) else None)
        if dim is None or not self.lrp:
            out = func(*args, **kwargs)
        else:
            out = softmax(x, int(dim), self.attention, dtype)
            if x.requires_grad:
                self._count(mode, "softmax → " + ("constant (CP)" if self.attention == "cp" and x.dim() >= 3
                                                  else "AttnLRP"))
        if x.dim() >= ATTENTION_MIN_DIM:
            self.record(out)
        return out

    def _mha(self, mode: Any, func: Any, args: Any, kwargs: Any) -> Any:
        out = mha(self._ops(mode), args, kwargs)
        if out is None:
            mode.audit.unhandled["multi_head_attention_forward (static keys)"] += 1
            return func(*args, **kwargs)
        self._count(mode, "multi_head_attention_forward → written out")
        return out

    def _ops(self, mode: Any) -> Ops:
        import torch.nn.functional as F

        def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            if mode.composite is None:
                return F.linear(x, w, b)
            return mode._linear(F.linear, "linear", False, (x, w, b), {})

        return Ops(linear, self.eps, self.attention, self.lrp, self.record, lambda label: self._count(mode, label))

    def _count(self, mode: Any, label: str) -> None:
        if self.lrp:
            mode.audit.rules[label] += 1

    def _embedding(self, mode: Any, func: Any, args: Any, kwargs: Any) -> Any:
        out = func(*args, **kwargs)
        ids = args[0] if args else kwargs["input"]
        mi = mode.model_input
        same = mi is not None and (ids is mi or (ids.shape == mi.shape and bool((ids == mi).all())))
        if self.embedding is None and same and out.is_floating_point():
            self.embedding = out.detach().requires_grad_(True)
            return self.embedding
        return out



def attention_maps(model: Any, x: torch.Tensor) -> list[torch.Tensor]:
    """The attention probabilities (after softmax over keys) of every attention call in one forward pass, in
    call order, found at the operation level (nn.MultiheadAttention, scaled_dot_product_attention, softmax over
    ≥ 3-D scores). Plain forward: nothing of the model changes."""
    import torch

    from nnreport.context import primary_output
    from nnreport.relevance import engine

    hook = Rules(lrp=False, record_attention=True)
    with torch.no_grad(), engine.mode(model_input=x, transformer=hook):
        primary_output(model(x))
    return hook.maps
