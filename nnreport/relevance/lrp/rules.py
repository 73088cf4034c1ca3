"""LRP rules for linear operations (dense and convolution), written as modified gradients.

Each rule turns a linear call `z = op(x, W, b)` into an output with the same value whose backward pass
carries the rule: with R_k = z_k * g_k the relevance arriving at output k (g: the incoming gradient),
`x * grad_x` after the backward pass is the rule's input relevance R_j. Rules with several terms
(αβ) give one term per group, each with its own normaliser. Input-layer rules (flat, w², z^B) also
hand back extra leaf tensors ("pieces"): their `piece * piece.grad` adds to the relevance of the input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import torch

RuleName = Literal["zero", "epsilon", "gamma", "alpha2_beta1", "alpha1_beta0", "zplus", "flat", "wsquare", "zbox"]
RULE_NAMES: tuple[str, ...] = get_args(RuleName)
Op = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor | None"], "torch.Tensor"]

# Keeps divisions finite where a normaliser is exactly zero (then every numerator is zero too).
TINY = 1e-9


@dataclass(frozen=True)
class Rule:
    """A rule and its settings; `describe()` gives the formula shown on the page."""

    name: RuleName
    epsilon: float = 1e-6
    gamma: float = 0.25
    low: float = 0.0
    high: float = 1.0

    @property
    def spec(self) -> RuleSpec:
        try:
            return RULES[self.name]
        except KeyError:
            raise KeyError(f"unknown LRP rule {self.name!r}; known rules: {', '.join(RULES)}") from None

    @property
    def alpha_beta(self) -> tuple[float, float]:
        return self.spec.alpha_beta

    @property
    def input_only(self) -> bool:
        """Rules whose relevance does not pass through the activations (meant for the input layer)."""
        return self.spec.input_only

    def describe(self) -> str:
        return self.spec.describe(self)


def stabilise(z: torch.Tensor, eps: float) -> torch.Tensor:
    """z + eps·sign(z), with sign(±0) = +1, so that the normaliser never vanishes (adding +0.0 first
    turns -0.0 into +0.0, so copysign, one element-wise operation, gives +eps there)."""
    import torch

    return z + torch.copysign(torch.tensor(eps, dtype=z.dtype, device=z.device), z + 0.0)


class WeightCache:
    """Modified weights (w⁺, w⁻, w + γw⁺, w², ...) computed once per weight tensor and version."""

    def __init__(self) -> None:
        self._store: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, w: torch.Tensor, key: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        k = (id(w), w._version, key)
        hit = self._store.get(k)
        if hit is None or hit[0] is not w:
            hit = (w, make().detach())
            self._store[k] = hit
        return hit[1]


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


# A rule's terms: (coefficient or per-output mask, modified output z', stabiliser ε) per group, and the
# extra leaf pieces of input-layer rules.
Terms = tuple[list[tuple[Any, "torch.Tensor", float]], list["torch.Tensor"]]
TermsFn = Callable[[Rule, Op, "torch.Tensor", "torch.Tensor", "torch.Tensor | None", "torch.Tensor", WeightCache], Terms]


@dataclass(frozen=True)
class RuleSpec:
    """One LRP rule: its description (with the rule's settings) beside the function that makes its terms."""

    name: str
    describe: Callable[[Rule], str]
    terms: TermsFn
    input_only: bool = False
    alpha_beta: tuple[float, float] = (1.0, 0.0)


RULES: dict[str, RuleSpec] = {}


def rule(name: str, describe: Callable[[Rule], str], *, input_only: bool = False,
         alpha_beta: tuple[float, float] = (1.0, 0.0)) -> Callable[[TermsFn], TermsFn]:
    """Register the decorated terms function as the LRP rule `name`."""

    def register(terms: TermsFn) -> TermsFn:
        if name in RULES:
            raise ValueError(f"LRP rule {name!r} is registered twice")
        RULES[name] = RuleSpec(name, describe, terms, input_only, alpha_beta)
        return terms

    return register


def groups(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
           cache: WeightCache) -> Terms:
    """The rule's terms as (coefficient or per-output mask, modified output z', stabiliser ε) and its
    extra leaf pieces."""
    return rule.spec.terms(rule, op, x, w, b, z, cache)


@rule("zero", lambda r: "LRP-0: R_j = Σ_k a_j w_jk / z_k · R_k")
def _zero(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
          cache: WeightCache) -> Terms:
    return [(1.0, z, TINY)], []


@rule("epsilon", lambda r: f"LRP-ε (ε={r.epsilon:g}): R_j = Σ_k a_j w_jk / (z_k + ε·sign z_k) · R_k")
def _epsilon(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
             cache: WeightCache) -> Terms:
    return [(1.0, z, rule.epsilon)], []


@rule("gamma", lambda r: f"LRP-γ (γ={r.gamma:g}): weights w + γ·w⁺ for positive outputs, w + γ·w⁻ for negative")
def _gamma(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
           cache: WeightCache) -> Terms:
    # Sign-aware γ (as in zennit): outputs > 0 favour positive contributions, outputs ≤ 0 negative ones,
    # so |z'| ≥ |z| and the ratio z / z' stays in (0, 1]: no blow-up where w + γw⁺ nearly cancels.
    g = rule.gamma
    up = (z > 0).to(z.dtype)
    if not _signed(x):
        # x ≥ 0: z⁺ = x·w⁺ + b⁺ and z − z⁺ = x·w⁻ + b⁻, so one extra convolution serves both terms
        zp = op(x, cache.get(w, "pos", lambda: w.clamp(min=0)), _pos(b))
        return [(up, z + g * zp, TINY), (1.0 - up, z + g * (z - zp), TINY)], []
    wup = cache.get(w, f"gamma+{g}", lambda: w + g * w.clamp(min=0))
    wdn = cache.get(w, f"gamma-{g}", lambda: w + g * w.clamp(max=0))
    bup = None if b is None else b + g * b.clamp(min=0)
    bdn = None if b is None else b + g * b.clamp(max=0)
    xp, xn = x.clamp(min=0), x.clamp(max=0)
    zup = op(xp, wup, bup) + op(xn, wdn, None)
    zdn = op(xp, wdn, bdn) + op(xn, wup, None)
    return [(up, zup, TINY), (1.0 - up, zdn, TINY)], []


def _positive_part(op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, cache: WeightCache,
                   with_bias: bool) -> torch.Tensor:
    """z⁺: the positive contributions x⁺·w⁺ + x⁻·w⁻ (+ b⁺)."""
    wp = cache.get(w, "pos", lambda: w.clamp(min=0))
    if not _signed(x):
        return op(x, wp, _pos(b) if with_bias else None)
    wn = cache.get(w, "neg", lambda: w.clamp(max=0))
    return op(x.clamp(min=0), wp, _pos(b) if with_bias else None) + op(x.clamp(max=0), wn, None)


@rule("zplus", lambda r: "LRP-z⁺: positive contributions only, biases ignored")
def _zplus(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
           cache: WeightCache) -> Terms:
    return [(1.0, _positive_part(op, x, w, b, cache, with_bias=False), TINY)], []


@rule("alpha1_beta0", lambda r: "LRP-αβ (α=1, β=0): positive contributions only, biases included", alpha_beta=(1.0, 0.0))
def _alpha1_beta0(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
                  cache: WeightCache) -> Terms:
    return [(1.0, _positive_part(op, x, w, b, cache, with_bias=True), TINY)], []


@rule("alpha2_beta1", lambda r: "LRP-αβ (α=2, β=1): α·positive − β·negative contributions, each normalised",
      alpha_beta=(2.0, 1.0))
def _alpha2_beta1(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
                  cache: WeightCache) -> Terms:
    alpha, beta = rule.alpha_beta
    zp = _positive_part(op, x, w, b, cache, with_bias=True)
    wp = cache.get(w, "pos", lambda: w.clamp(min=0))
    wn = cache.get(w, "neg", lambda: w.clamp(max=0))
    if not _signed(x):
        # z⁻ gets its own convolution: z − z⁺ would equal it in exact arithmetic, but where a neuron has no
        # negative contributions the rounding noise of that difference, divided by itself, blows up.
        return [(alpha, zp, TINY), (-beta, op(x, wn, _neg(b)), TINY)], []
    zn = op(x.clamp(min=0), wn, _neg(b)) + op(x.clamp(max=0), wp, None)
    return [(alpha, zp, TINY), (-beta, zn, TINY)], []


def _spread(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
            cache: WeightCache) -> Terms:
    """flat and w²: relevance spread over the receptive field by modified weights, whatever the input."""
    import torch

    ones = torch.ones_like(x).requires_grad_(True)
    wm = cache.get(w, rule.name, (lambda: torch.ones_like(w)) if rule.name == "flat" else (lambda: w * w))
    return [(1.0, op(ones, wm, None), TINY)], [ones]


rule("flat", lambda r: "flat: relevance spread evenly over each receptive field", input_only=True)(_spread)
rule("wsquare", lambda r: "w²: relevance spread in proportion to squared weights", input_only=True)(_spread)


@rule("zbox", lambda r: f"z^B (bounds {r.low:.3g} … {r.high:.3g}): input-domain rule for bounded inputs",
      input_only=True)
def _zbox(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
          cache: WeightCache) -> Terms:
    import torch

    low = torch.full_like(x, rule.low).requires_grad_(True)
    high = torch.full_like(x, rule.high).requires_grad_(True)
    wp = cache.get(w, "pos", lambda: w.clamp(min=0))
    wn = cache.get(w, "neg", lambda: w.clamp(max=0))
    zb = op(x, w, None) - op(low, wp, None) - op(high, wn, None)
    return [(1.0, zb, TINY)], [low, high]


def _signed(x: torch.Tensor) -> bool:
    return bool(x.numel()) and float(x.detach().min()) < 0


_FN: dict[str, Any] = {}


def _rescale_fn() -> Any:
    """An autograd function: forward returns the layer's true output; backward sends g·ratioᵢ to each zᵢ'."""
    if "fn" in _FN:
        return _FN["fn"]
    import torch

    class Rescale(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, value: torch.Tensor, *pairs: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(*pairs[1::2])
            return value.clone()

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> Any:
            grads: list[Any] = [None]
            for ratio in ctx.saved_tensors:
                grads += [g * ratio, None]
            return tuple(grads)

    _FN["fn"] = Rescale.apply
    return Rescale.apply


def apply(rule: Rule, op: Op, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, z: torch.Tensor,
          cache: WeightCache) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """An output equal to `z` whose gradient implements `rule`, plus the rule's extra pieces."""
    terms, pieces = groups(rule, op, x, w, b, z, cache)
    zd = z.detach()
    pairs: list[torch.Tensor] = []
    for coef, zmod, eps in terms:
        ratio = zd / stabilise(zmod.detach(), eps)
        pairs += [zmod, ratio * coef if not (isinstance(coef, float) and coef == 1.0) else ratio]
    return _rescale_fn()(zd, *pairs), pieces
