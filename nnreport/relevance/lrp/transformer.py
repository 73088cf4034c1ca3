"""The engine's transformer hook: transformer rules on the ops they cover, fused attention written out,
token-id inputs attributed at the embedding output (a leaf stands for it), attention probabilities recorded.
Found at the operation level, never by class name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nnreport.relevance.engine import NOT_HANDLED
from nnreport.relevance.lrp.attention import (
    ATTENTION_MIN_DIM,
    MUL_OPS,
    NORMALISERS,
    PRODUCT_OPS,
    Bilinear,
    arg,
    check_attention,
    layer_norm,
    mul,
    product,
    rms_norm,
    softmax,
)
from nnreport.relevance.lrp.written import Ops, mha, sdpa

if TYPE_CHECKING:
    import torch


class Rules:
    """The engine's transformer hook: `handle` returns the op's result under its rule, or NOT_HANDLED.

    `lrp` off (gradient methods): only the token-embedding leaf and the attention recorder are active."""

    def __init__(self, attention: str = "attnlrp", eps: float = 1e-6, lrp: bool = True,
                 record_attention: bool = False) -> None:
        check_attention(attention)
        self.attention, self.eps, self.lrp, self.record_attention = attention, eps, lrp, record_attention
        self.embedding: torch.Tensor | None = None   # the leaf standing for a token input's embedding
        self.maps: list[torch.Tensor] = []             # attention probabilities, in call order
        self.replace_embedding: torch.Tensor | None = None  # used instead of the token embedding (IG paths)

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
        if name in MUL_OPS and len(tensors) == 2 and not kwargs and min(t.numel() for t in tensors) > 1:
            if all(t.requires_grad for t in tensors):
                self._count(mode, "mul (activation × activation → uniform split)")
                return mul(tensors[0], tensors[1])
            if any(t.requires_grad for t in tensors):  # scaling by a constant (a weight, a held normaliser): linear
                self._count(mode, "mul (activation × constant → linear)")
                return func(*args)
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
            given = self.replace_embedding
            if given is not None and given.shape != out.shape:
                raise ValueError(f"replacement embedding {tuple(given.shape)} does not match {tuple(out.shape)}")
            self.embedding = (out if given is None else given).detach().requires_grad_(True)
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
