"""``F.multi_head_attention_forward`` and ``F.scaled_dot_product_attention`` written out with the engine's
linear rule and the transformer rules (their fused kernels would hide the products and the softmax)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnreport.relevance.lrp.attention import product, softmax

if TYPE_CHECKING:
    import torch


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
