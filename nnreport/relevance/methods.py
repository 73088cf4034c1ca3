"""Attribution methods, batched, on a canonical copy of the model: gradients and their variants,
Integrated Gradients, SmoothGrad, Grad-CAM, Occlusion and LRP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from nnreport.relevance import engine

if TYPE_CHECKING:
    import torch

    from nnreport.relevance.lrp.canonizers import Canonical

MethodName = Literal["gradient", "saliency", "sensitivity", "deconvnet", "guided_backprop", "input_x_gradient",
                     "integrated_gradients", "smoothgrad", "gradcam", "occlusion", "lrp"]
METHOD_NAMES: tuple[str, ...] = get_args(MethodName)


class NotApplicable(ValueError):
    """The method does not apply to this model or input (the message says why)."""


@dataclass
class Explanation:
    relevance: torch.Tensor          # shaped like the input
    scores: torch.Tensor             # the explained output per sample
    audit: engine.Audit | None = None
    notes: list[str] = field(default_factory=list)


def select(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The explained score per sample: out[i, target[i]], or the single output of a regression."""
    if out.dim() == 1:
        return out
    flat = out.reshape(len(out), -1)
    if flat.shape[1] == 1:
        return flat[:, 0]
    if out.dim() != 2:
        raise NotApplicable(f"the output has shape {tuple(out.shape)}; methods explain one score per class")
    return flat.gather(1, target.view(-1, 1).to(flat.device)).squeeze(1)


def resolve_target(canon: Canonical, x: torch.Tensor, target: Any) -> torch.Tensor:
    """Per-sample class indices: given ints, one int for all, or the predicted class when None."""
    import torch

    from nnreport.context import primary_output

    if target is None:
        with torch.no_grad():
            out = primary_output(canon.model(x))
        return out.reshape(len(out), -1).argmax(1) if out.dim() > 1 else torch.zeros(len(x), dtype=torch.long,
                                                                                     device=x.device)
    t = torch.as_tensor(target, dtype=torch.long).to(x.device)
    return t.expand(len(x)).clone() if t.dim() == 0 else t.reshape(-1)


def _run(canon: Canonical, x: torch.Tensor, target: torch.Tensor, relu: engine.ReluMode = "gradient",
         composite: Any = None, capture: bool = False) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """One forward + backward under the engine's mode; returns (input gradient, scores, mode)."""
    import torch

    from nnreport.context import primary_output

    xin = x.detach().clone().requires_grad_(True)
    with engine.mode(relu, composite, xin, canon.cache, capture) as m:
        out = primary_output(canon.model(xin))
    score = select(out, target)
    leaves = [xin] + list(m.pieces)
    grads = torch.autograd.grad(score.sum(), leaves, allow_unused=True)
    m.leaves, m.grads = leaves, grads
    grad = grads[0] if grads[0] is not None else torch.zeros_like(xin)
    return grad, score.detach(), m


def gradient(canon: Canonical, x: torch.Tensor, target: torch.Tensor, **_: Any) -> Explanation:
    g, s, _m = _run(canon, x, target)
    return Explanation(g, s)


def saliency(canon: Canonical, x: torch.Tensor, target: torch.Tensor, **_: Any) -> Explanation:
    g, s, _m = _run(canon, x, target)
    return Explanation(g.abs(), s)


def sensitivity(canon: Canonical, x: torch.Tensor, target: torch.Tensor, **_: Any) -> Explanation:
    g, s, _m = _run(canon, x, target)
    return Explanation(g * g, s)


def deconvnet(canon: Canonical, x: torch.Tensor, target: torch.Tensor, **_: Any) -> Explanation:
    g, s, _m = _run(canon, x, target, relu="deconvnet")
    return Explanation(g, s)


def guided_backprop(canon: Canonical, x: torch.Tensor, target: torch.Tensor, **_: Any) -> Explanation:
    g, s, _m = _run(canon, x, target, relu="guided")
    return Explanation(g, s)


def input_x_gradient(canon: Canonical, x: torch.Tensor, target: torch.Tensor, **_: Any) -> Explanation:
    g, s, _m = _run(canon, x, target)
    return Explanation(x * g, s)


def integrated_gradients(canon: Canonical, x: torch.Tensor, target: torch.Tensor, steps: int = 32,
                         baseline: float = 0.0, batch_limit: int = 1024, **_: Any) -> Explanation:
    """(x − x')·mean of gradients at midpoints of the straight path from the baseline x'."""
    import torch

    base = torch.full_like(x, baseline)
    total = torch.zeros_like(x)
    per = max(1, batch_limit // max(1, len(x)))
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    for chunk in alphas.split(per):
        path = base[None] + chunk.view(-1, *([1] * x.dim())) * (x - base)[None]
        g, _s, _m = _run(canon, path.reshape(-1, *x.shape[1:]), target.repeat(len(chunk)))
        total += g.reshape(len(chunk), *x.shape).sum(0)
    score = _run(canon, x, target)[1]
    return Explanation((x - base) * total / steps, score)


def smoothgrad(canon: Canonical, x: torch.Tensor, target: torch.Tensor, samples: int = 16, noise: float = 0.15,
               seed: int = 0, batch_limit: int = 1024, **_: Any) -> Explanation:
    """Mean |gradient| over copies of the input with Gaussian noise (σ = noise × the sample's value range)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    span = (x.reshape(len(x), -1).amax(1) - x.reshape(len(x), -1).amin(1)).view(-1, *([1] * (x.dim() - 1)))
    total = torch.zeros_like(x)
    per = max(1, batch_limit // max(1, len(x)))
    done = 0
    while done < samples:
        k = min(per, samples - done)
        eps = torch.randn((k, *x.shape), generator=gen, dtype=x.dtype).to(x.device) * (noise * span)[None]
        g, _s, _m = _run(canon, (x[None] + eps).reshape(-1, *x.shape[1:]), target.repeat(k))
        total += g.abs().reshape(k, *x.shape).sum(0)
        done += k
    score = _run(canon, x, target)[1]
    return Explanation(total / samples, score)


def gradcam(canon: Canonical, x: torch.Tensor, target: torch.Tensor, **_: Any) -> Explanation:
    """ReLU(Σ_c mean(∂y/∂A_c)·A_c) at the last 2-D convolution, upsampled to the input."""
    import torch
    import torch.nn.functional as F

    if x.dim() != 4:
        raise NotApplicable("Grad-CAM needs image inputs (N, C, H, W)")
    xin = x.detach().clone().requires_grad_(True)
    from nnreport.context import primary_output

    with engine.mode("gradient", None, xin, canon.cache, capture_convs=True) as m:
        out = primary_output(canon.model(xin))
    score = select(out, target)
    convs = [c for c in m.convs if c.dim() == 4 and len(c) == len(x)]
    if not convs:
        raise NotApplicable("Grad-CAM needs a 2-D convolution in the model; none was called")
    act = convs[-1]
    (grad,) = torch.autograd.grad(score.sum(), act)
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    return Explanation(cam.expand_as(x).contiguous(), score.detach())


def occlusion(canon: Canonical, x: torch.Tensor, target: torch.Tensor, patch: int = 4, stride: int = 2,
              baseline: float = 0.0, batch_limit: int = 2048, **_: Any) -> Explanation:
    """Score drop when a patch (all channels) is set to the baseline, averaged over the patches covering
    each pixel; non-image inputs occlude one feature at a time."""
    import torch

    from nnreport.context import primary_output

    def score_of(batch: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return select(primary_output(canon.model(batch)), t)

    base = score_of(x, target)
    if x.dim() == 4:
        masks = _patch_masks(x.shape[2], x.shape[3], patch, stride, x.dtype).to(x.device)
    else:
        n_feat = x[0].numel()
        if n_feat > 4096:
            raise NotApplicable(f"occlusion of {n_feat} single features per sample would be too slow")
        masks = torch.eye(n_feat, dtype=x.dtype, device=x.device).reshape(n_feat, *x.shape[1:])
    total = torch.zeros_like(x)
    counts = torch.zeros_like(x[:1])
    per = max(1, batch_limit // max(1, len(x)))
    for chunk in masks.split(per):
        m = chunk[:, None]  # (P, 1, C|1, H, W)
        occluded = x[None] * (1 - m) + baseline * m
        drop = base[None] - score_of(occluded.reshape(-1, *x.shape[1:]), target.repeat(len(chunk))).view(len(chunk), -1)
        shape = (len(chunk), len(x)) + (1,) * (x.dim() - 1)
        total += (drop.view(shape) * m).sum(0)
        counts += m.sum(0)
    return Explanation(total / counts.clamp(min=1), base)


def _patch_masks(h: int, w: int, patch: int, stride: int, dtype: Any) -> torch.Tensor:
    import torch

    patch, stride = min(patch, h, w), max(1, stride)
    ys = list(range(0, max(1, h - patch + 1), stride))
    xs = list(range(0, max(1, w - patch + 1), stride))
    if ys[-1] != h - patch:
        ys.append(h - patch)
    if xs[-1] != w - patch:
        xs.append(w - patch)
    masks = torch.zeros(len(ys) * len(xs), 1, h, w, dtype=dtype)
    for i, (y0, x0) in enumerate((y, xx) for y in ys for xx in xs):
        masks[i, :, y0:y0 + patch, x0:x0 + patch] = 1
    return masks


def lrp(canon: Canonical, x: torch.Tensor, target: torch.Tensor, composite: str = "epsilon_plus_flat",
        rule: str | None = None, epsilon: float = 1e-6, gamma: float = 0.25, low: float | None = None,
        high: float | None = None, **_: Any) -> Explanation:
    """Layer-wise Relevance Propagation with a composite (or one `rule` everywhere)."""

    from nnreport.relevance.lrp import composites

    lo = float(x.min()) if low is None else low
    hi = float(x.max()) if high is None else high
    comp = (composites.single_rule(rule, epsilon, gamma, lo, hi) if rule is not None  # type: ignore[arg-type]
            else composites.composite(composite, epsilon, gamma, lo, hi))
    grad, score, m = _run(canon, x, target, composite=comp)
    rel = x * grad
    for leaf, g in zip(m.leaves[1:], m.grads[1:], strict=True):
        if g is not None:
            rel = rel + (leaf.detach() * g).reshape(x.shape)
    notes = lrp_notes(canon, m.audit, comp)
    return Explanation(rel.detach(), score, m.audit, notes)


def lrp_notes(canon: Canonical, audit: engine.Audit, comp: Any) -> list[str]:
    """Plain-language notes on what canonicalisation did and what no rule covers."""
    notes = []
    if audit.rules:
        notes.append("Rules applied: " + ", ".join(f"{k} ×{v}" for k, v in sorted(audit.rules.items())) + ".")
    if canon.folded:
        notes.append(f"BatchNorm folded into the layer before it: {', '.join(canon.folded)}.")
    if canon.unfolded:
        notes.append(f"BatchNorm without a conv/linear right before it (relevance passes proportionally, its "
                     f"shift absorbs some): {', '.join(canon.unfolded)}.")
    if comp.input is not None and audit.input_layers == 0:
        notes.append(f"No linear layer reads the model input directly, so the input-layer rule "
                     f"({comp.input.name}) was not applied.")
    if audit.activations:
        names = ", ".join(f"{k} ×{v}" for k, v in sorted(audit.activations.items()))
        notes.append(f"Activations given identity relevance (R_in = R_out): {names}.")
    if canon.unknown_modules:
        names = ", ".join(f"{k} ×{v}" for k, v in sorted(canon.unknown_modules.items()))
        notes.append(f"Layer types without an LRP rule (gradient × input passes through them; "
                     f"not conservative): {names}.")
    if audit.unhandled:
        names = ", ".join(f"{k} ×{v}" for k, v in sorted(audit.unhandled.items()))
        notes.append(f"Operations without an LRP rule (plain gradient): {names}.")
    return notes


METHODS: dict[str, Callable[..., Explanation]] = {
    "gradient": gradient, "saliency": saliency, "sensitivity": sensitivity, "deconvnet": deconvnet,
    "guided_backprop": guided_backprop, "input_x_gradient": input_x_gradient,
    "integrated_gradients": integrated_gradients, "smoothgrad": smoothgrad, "gradcam": gradcam,
    "occlusion": occlusion, "lrp": lrp,
}


# Tensors autograd may keep for one backward pass. Batches are split to stay under it: a DenseNet-121 at
# 32x32 keeps about 30 MB per sample, so a fixed batch of 1024 (Integrated Gradients' steps x samples)
# needed over 24 GB.
SAVED_BYTES_PER_PASS = 1 << 30


def samples_per_pass(canon: Canonical, x: torch.Tensor, budget: int | None = None) -> int:
    """How many inputs one forward + backward may take: the budget over what one sample keeps for backward
    (measured once per model and input shape; see nnreport.memory)."""
    from nnreport.memory import fit, saved_bytes

    key = tuple(x.shape[1:])
    known = getattr(canon, "_saved_bytes", {})
    if key not in known:
        known[key] = max(saved_bytes(canon.model, (x[:1],)), 1)
        canon._saved_bytes = known  # type: ignore[attr-defined]
    return fit(SAVED_BYTES_PER_PASS if budget is None else budget, known[key], 1 << 30)


def explain(canon: Canonical, x: torch.Tensor, target: Any, method: str, **options: Any) -> Explanation:
    """Run `method` on the canonical model; the error for an unknown name lists the known ones.

    Large batches run in parts that fit the memory budget; the result is the same as one pass (the z^B
    bounds of LRP come from the whole batch)."""
    import torch

    if method not in METHODS:
        raise KeyError(f"unknown attribution method {method!r}; known methods: {', '.join(METHOD_NAMES)}")
    t = resolve_target(canon, x, target)
    limit = samples_per_pass(canon, x, options.pop("memory_budget", None))
    options.setdefault("batch_limit", limit)  # Integrated Gradients' and SmoothGrad's expanded batches
    options.setdefault("low", float(x.min()))
    options.setdefault("high", float(x.max()))
    if len(x) <= limit:
        return METHODS[method](canon, x, t, **options)
    parts = [METHODS[method](canon, xc, tc, **options) for xc, tc in zip(x.split(limit), t.split(limit), strict=True)]
    return Explanation(torch.cat([p.relevance for p in parts]), torch.cat([p.scores for p in parts]),
                       parts[0].audit, parts[0].notes)
