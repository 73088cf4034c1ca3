"""Attribution methods, batched, on a canonical copy of the model: gradients and their variants,
Integrated Gradients, SmoothGrad, Grad-CAM, Occlusion and LRP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

from nnreport.relevance import engine
from nnreport.relevance.options import (
    IntegratedGradientsOptions,
    LRPOptions,
    NoOptions,
    OcclusionOptions,
    SmoothGradOptions,
    make_options,
)

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


@dataclass(frozen=True)
class Method:
    """One attribution method: its function `(canon, x, target, options, batch_limit) -> Explanation` and
    the type of its options."""

    name: str
    run: Callable[..., Explanation]
    options: type


METHODS: dict[str, Method] = {}


def method(name: str, options: type = NoOptions) -> Callable[[Callable[..., Explanation]], Callable[..., Explanation]]:
    """Register the decorated function as the attribution method `name` with options of type `options`."""

    def register(run: Callable[..., Explanation]) -> Callable[..., Explanation]:
        METHODS[name] = Method(name, run, options)
        return run

    return register


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
         composite: Any = None, capture: bool = False, attention: str = "attnlrp",
         epsilon: float = 1e-6, embedding: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """One forward + backward under the engine's mode; returns (gradient at the first leaf, scores, mode).
    The first leaf (`mode.leaves[0]`) is the input, or for token ids the embedding output."""
    import torch

    from nnreport.context import primary_output
    from nnreport.relevance.lrp.transformer import Rules

    tokens = not x.is_floating_point()
    xin = x.detach().clone() if tokens else x.detach().clone().requires_grad_(True)
    hook = Rules(attention, epsilon, lrp=composite is not None) if composite is not None or tokens else None
    if hook is not None:
        hook.replace_embedding = embedding
    with engine.mode(relu, composite, xin, canon.cache, capture, transformer=hook) as m:
        out = primary_output(canon.model(xin))
    first = xin
    if tokens:
        if hook is None or hook.embedding is None:
            raise NotApplicable("token-id inputs need an embedding that reads them (F.embedding / nn.Embedding)")
        first = hook.embedding
    score = select(out, target)
    leaves = [first] + list(m.pieces)
    grads = torch.autograd.grad(score.sum(), leaves, allow_unused=True)
    m.leaves, m.grads = leaves, grads
    grad = grads[0] if grads[0] is not None else torch.zeros_like(first)
    return grad, score.detach(), m


def _times_input(m: Any, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """leaf × gradient, summed over the embedding dimension for token ids (then shaped like the ids)."""
    rel = m.leaves[0].detach() * grad
    return rel.sum(-1) if not x.is_floating_point() else rel


# Methods that work on token ids (at the embedding output).
TOKEN_METHODS = ("input_x_gradient", "integrated_gradients", "lrp")


@method("gradient")
def gradient(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: NoOptions, batch_limit: int) -> Explanation:
    g, s, _m = _run(canon, x, target)
    return Explanation(g, s)


@method("saliency")
def saliency(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: NoOptions, batch_limit: int) -> Explanation:
    g, s, _m = _run(canon, x, target)
    return Explanation(g.abs(), s)


@method("sensitivity")
def sensitivity(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: NoOptions, batch_limit: int) -> Explanation:
    g, s, _m = _run(canon, x, target)
    return Explanation(g * g, s)


@method("deconvnet")
def deconvnet(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: NoOptions, batch_limit: int) -> Explanation:
    g, s, _m = _run(canon, x, target, relu="deconvnet")
    return Explanation(g, s)


@method("guided_backprop")
def guided_backprop(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: NoOptions, batch_limit: int) -> Explanation:
    g, s, _m = _run(canon, x, target, relu="guided")
    return Explanation(g, s)


@method("input_x_gradient")
def input_x_gradient(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: NoOptions, batch_limit: int) -> Explanation:
    g, s, m = _run(canon, x, target)
    return Explanation(_times_input(m, g, x), s)


@method("integrated_gradients", IntegratedGradientsOptions)
def integrated_gradients(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: IntegratedGradientsOptions,
                         batch_limit: int = 1024) -> Explanation:
    """(x − x')·mean of gradients at midpoints of the straight path from the baseline x'. Token ids: the path
    runs in embedding space, from the zero embedding to the ids' embedding, summed over the embedding dimension."""
    import torch

    steps, baseline = opts.steps, opts.baseline
    if not x.is_floating_point():
        return _token_integrated_gradients(canon, x, target, steps, batch_limit)

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


def _token_integrated_gradients(canon: Canonical, x: torch.Tensor, target: torch.Tensor, steps: int,
                                batch_limit: int) -> Explanation:
    import torch

    _g, score, m = _run(canon, x, target)
    emb = m.leaves[0].detach()
    total = torch.zeros_like(emb)
    per = max(1, batch_limit // max(1, len(x)))
    alphas = (torch.arange(steps, dtype=emb.dtype, device=emb.device) + 0.5) / steps
    for chunk in alphas.split(per):
        path = (chunk.view(-1, *([1] * emb.dim())) * emb[None]).reshape(-1, *emb.shape[1:])
        g, _s, _m = _run(canon, x.repeat(len(chunk), *([1] * (x.dim() - 1))), target.repeat(len(chunk)),
                         embedding=path)
        total += g.reshape(len(chunk), *emb.shape).sum(0)
    return Explanation((emb * total / steps).sum(-1), score)


@method("smoothgrad", SmoothGradOptions)
def smoothgrad(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: SmoothGradOptions,
               batch_limit: int = 1024) -> Explanation:
    """Mean |gradient| over copies of the input with Gaussian noise (σ = noise × the sample's value range)."""
    import torch

    samples, noise, seed = opts.samples, opts.noise, opts.seed

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


@method("gradcam")
def gradcam(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: NoOptions, batch_limit: int) -> Explanation:
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


@method("occlusion", OcclusionOptions)
def occlusion(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: OcclusionOptions,
              batch_limit: int = 2048) -> Explanation:
    """Score drop when a patch (all channels) is set to the baseline, averaged over the patches covering
    each pixel; non-image inputs occlude one feature at a time."""
    import torch

    patch, stride, baseline = opts.patch, opts.stride, opts.baseline

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


@method("lrp", LRPOptions)
def lrp(canon: Canonical, x: torch.Tensor, target: torch.Tensor, opts: LRPOptions, batch_limit: int = 0) -> Explanation:
    """Layer-wise Relevance Propagation with a composite (or one `rule` everywhere); `opts.attention`: "attnlrp"
    (relevance through softmax into queries and keys) or "cp" (queries and keys held constant)."""

    from nnreport.relevance.lrp import attention as attn
    from nnreport.relevance.lrp import composites

    attn.check_attention(opts.attention)

    lo = float(x.min()) if opts.low is None else opts.low
    hi = float(x.max()) if opts.high is None else opts.high
    comp = (composites.single_rule(opts.rule, opts.epsilon, opts.gamma, lo, hi)  # type: ignore[arg-type]
            if opts.rule is not None else composites.composite(opts.composite, opts.epsilon, opts.gamma, lo, hi))
    grad, score, m = _run(canon, x, target, composite=comp, attention=opts.attention, epsilon=opts.epsilon)
    rel = _times_input(m, grad, x)
    for leaf, g in zip(m.leaves[1:], m.grads[1:], strict=True):
        if g is not None:
            rel = rel + (leaf.detach() * g).reshape(x.shape)
    notes = lrp_notes(canon, m.audit, comp) + attn.notes(dict(m.audit.rules), opts.attention)
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
        known[key] = max(saved_bytes(canon.model, (x[:1],)), 1)  # token ids: saved_bytes leaves them without grad
        canon._saved_bytes = known  # type: ignore[attr-defined]
    return fit(SAVED_BYTES_PER_PASS if budget is None else budget, known[key], 1 << 30)


def explain(canon: Canonical, x: torch.Tensor, target: Any, method: str, **options: Any) -> Explanation:
    """Run `method` with `options` (its options dataclass's fields) on the canonical model; an unknown
    method or option is an error that lists the known ones.

    Large batches run in parts that fit the memory budget; the result is the same as one pass (the z^B
    bounds of LRP come from the whole batch)."""
    import torch

    spec = METHODS.get(method)
    if spec is None:
        raise KeyError(f"unknown attribution method {method!r}; known methods: {', '.join(METHOD_NAMES)}")
    if not x.is_floating_point() and method not in TOKEN_METHODS:
        raise NotApplicable(f"on token ids only {', '.join(TOKEN_METHODS)} apply (at the embedding output)")
    budget = options.pop("memory_budget", None)  # the report's one memory budget (bytes), not a method option
    opts: Any = make_options(spec.options, method, options)
    if isinstance(opts, LRPOptions):  # the z^B bounds come from the whole batch, before it is split
        opts = replace(opts, low=float(x.min()) if opts.low is None else opts.low,
                       high=float(x.max()) if opts.high is None else opts.high)
    t = resolve_target(canon, x, target)
    limit = samples_per_pass(canon, x, budget)  # also Integrated Gradients' and SmoothGrad's expanded batches
    if len(x) <= limit:
        return spec.run(canon, x, t, opts, limit)
    parts = [spec.run(canon, xc, tc, opts, limit) for xc, tc in zip(x.split(limit), t.split(limit), strict=True)]
    return Explanation(torch.cat([p.relevance for p in parts]), torch.cat([p.scores for p in parts]),
                       parts[0].audit, parts[0].notes)
