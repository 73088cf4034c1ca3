"""Sharpness: extreme Hessian eigenvalues by Lanczos iteration on Hessian-vector products."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.landscape.surface import Batches, LossFn, default_loss, primary

if TYPE_CHECKING:
    import torch
    from torch import nn


def hvp_operator(model: nn.Module, params: list[torch.Tensor], batches: Batches,
                 loss_fn: LossFn | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """v ↦ H v for the mean loss over `batches` (double backward; parameters must require grad).

    H v comes back as a new float64 vector (the caller may change it in place); `v` may be float32 or
    float64, since it is handed to autograd in the parameters' dtype anyway. Each batch's product is
    added into the result in place, tensor by tensor (no float64 copies of it, no concatenation), and
    a batch's gradients and product are dropped before the next batch's forward pass (the second
    backward pass already frees the graph)."""
    import torch

    loss_fn = loss_fn or default_loss
    n = batches.count
    sizes = [p.numel() for p in params]

    def hvp(v: torch.Tensor) -> torch.Tensor:
        vs = [c.view_as(p) for c, p in zip(v.split(sizes), params, strict=True)]
        total = torch.zeros(sum(sizes), dtype=torch.float64, device=params[0].device)
        parts = [c.view_as(p) for c, p in zip(total.split(sizes), params, strict=True)]
        with torch.enable_grad(), _twice_differentiable_attention():
            for x, y in zip(batches.x, batches.y, strict=True):
                loss = loss_fn(primary(model(x)), y) * (len(y) / n)
                grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
                used = [i for i, g in enumerate(grads) if g is not None]
                hv: tuple[torch.Tensor | None, ...] = ()
                if used:
                    # H v = ∇(∇L · v): the gradients can go before the second backward pass, since the scalar
                    # ∇L · v keeps only their graph (its backward hands v to it, as grad_outputs=v would).
                    dot = sum((torch.mul(grads[i], vs[i].to(grads[i].dtype)).sum() for i in used),
                              torch.zeros((), device=total.device))
                    grads = ()
                    hv = torch.autograd.grad(dot, [params[i] for i in used], allow_unused=True)
                    del dot
                del loss, grads  # dropped before the next batch's forward pass, as is the product:
                for i, h in zip(used, hv, strict=True):
                    if h is not None:
                        parts[i].add_(h)  # float64 += the parameter's dtype: as adding h.double()
                del hv
        return total

    return hvp


def _twice_differentiable_attention() -> Any:
    """The math kernel of scaled_dot_product_attention: the fused ones (flash attention on the CPU,
    flash and memory-efficient on CUDA) have no derivative of their backward, so a transformer's
    Hessian-vector product fails with them ("derivative for ..._flash_attention_..._backward is not
    implemented"). Other operations are unaffected; a no-op on a torch without the switch."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch before 2.3
        return nullcontext()
    return sdpa_kernel([SDPBackend.MATH])


LARGE_BASIS = 1_000_000
# The Lanczos arithmetic walks model-sized vectors in slices of this many numbers, so that a float32
# basis vector is never copied whole to float64. Above LARGE_BASIS: a model whose basis is float64
# (at most LARGE_BASIS numbers) is done in one slice, exactly as whole-vector arithmetic would.
CHUNK = 1 << 20


def _dot(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """w · b in float64 (w float64, b float32 or float64), slice by slice."""
    total = None
    for s in range(0, len(w), CHUNK):
        part = w[s:s + CHUNK] @ b[s:s + CHUNK].double()
        total = part if total is None else total + part
    assert total is not None
    return total


def _subtract(w: torch.Tensor, b: torch.Tensor, c: float | torch.Tensor) -> None:
    """w -= c·b in place (w float64, b float32 or float64), slice by slice: the products are rounded
    before the subtraction, as `w - c * b` does."""
    for s in range(0, len(w), CHUNK):
        w[s:s + CHUNK].sub_(b[s:s + CHUNK].double() * c)


def _orthogonalise(w: torch.Tensor, basis: list[torch.Tensor]) -> None:
    """Full reorthogonalisation against the basis, in place: it keeps the Ritz values from duplicating."""
    for b in basis:
        _subtract(w, b, _dot(w, b))


def lanczos(hvp: Callable[[torch.Tensor], torch.Tensor], size: int, iterations: int,
            generator: torch.Generator, device: torch.device | str = "cpu") -> np.ndarray:
    """Ritz values (ascending) of the symmetric operator after `iterations` Lanczos steps with full
    reorthogonalisation; the extremes converge first, so the ends approximate λmin and λmax.

    Memory: the basis (`iterations` vectors; `iterations` - 1 during an HVP) and one float64 vector w,
    changed in place; the other float64 arithmetic goes slice by slice (CHUNK numbers), so no further
    model-sized vectors are made."""
    import torch

    m = max(1, min(iterations, size))
    q = torch.randn(size, generator=generator, dtype=torch.float64)
    q = q.to(device)  # drawn on the CPU generator: the same start vector on every device
    q /= q.norm()
    # The basis is kept in float32 for large models (it is `iterations` vectors the size of the model; the
    # arithmetic stays float64): a ResNet-50's 8 vectors take 0.8 GB instead of 1.6 GB.
    keep = torch.float32 if size > LARGE_BASIS else torch.float64
    basis = [q.to(keep)]
    del q
    alphas: list[float] = []
    betas: list[float] = []
    for k in range(m):
        qk = basis[k]
        if k == m - 1:  # the last step needs α = w·q alone: the rest of the basis is freed before its HVP
            del basis[:k]
            alphas.append(float(_dot(hvp(qk), qk)))
            break
        w = hvp(qk)
        alpha = float(_dot(w, qk))
        alphas.append(alpha)
        _subtract(w, qk, alpha)
        if k > 0:
            _subtract(w, basis[k - 1], betas[-1])
        _orthogonalise(w, basis)
        beta = float(w.norm())
        if beta < 1e-10 or not np.isfinite(beta):
            break
        betas.append(beta)
        basis.append(w.div_(beta).to(keep))
        del w
    t = np.diag(alphas)
    for i, beta_i in enumerate(betas[:len(alphas) - 1]):
        t[i, i + 1] = t[i + 1, i] = beta_i
    if not np.all(np.isfinite(t)):
        return np.full(len(alphas), np.nan)
    return np.linalg.eigvalsh(t)


def sharpness(model: nn.Module, params: list[torch.Tensor], batches: Batches, iterations: int,
              generator: torch.Generator, loss_fn: LossFn | None = None) -> np.ndarray:
    """Ascending Ritz values of the loss Hessian at the model's current parameters."""
    size = sum(p.numel() for p in params)
    return lanczos(hvp_operator(model, params, batches, loss_fn), size, iterations, generator,
                   params[0].device if params else "cpu")
