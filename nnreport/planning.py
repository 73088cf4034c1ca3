"""Time-budgeted presets: measure one forward and one forward + backward pass of the model on its device,
estimate each analysis's run time from its settings, and shrink the settings of those that would not fit
the preset's budget (`quick` ≈ 2 minutes, `standard` ≈ 10 minutes, `thorough` unbounded).

Explicit options in the config always win: the plan only changes settings the user did not set. A model
whose analyses fit the budget with the preset's settings (e.g. the demo) keeps them unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nnreport.context import Context


class Planned(Protocol):
    """What the plan needs of an analysis (nnreport.analyses.Analysis; named here by its shape, since the
    core never imports the registry above it)."""

    @property
    def name(self) -> str: ...

    @property
    def config_type(self) -> type: ...

BUDGET_SECONDS: dict[str, float | None] = {"quick": 120.0, "standard": 600.0, "thorough": None}
# Share of the budget each analysis may take when the whole report does not fit (renormalised over the
# analyses that run). The landscape and relevance maps are the two that grow with the model.
SHARES: dict[str, float] = {"summary": 0.04, "landscape": 0.3, "relevance": 0.3, "activations": 0.1,
                            "featvis": 0.08, "facets": 0.06, "cnnvis": 0.1, "evaluation": 0.06, "graph": 0.01,
                            "playground": 0.01}


@dataclass(frozen=True)
class Timing:
    """Seconds per sample of one forward pass and of one forward + backward pass, as measured."""

    forward: float
    backward: float


@dataclass(frozen=True)
class Choice:
    """What the plan set for one analysis (`values` override the preset) and why."""

    values: dict[str, Any]
    reason: str
    estimate: float  # seconds, with the chosen settings
    before: float  # seconds, with the preset's settings


@dataclass(frozen=True)
class BudgetPlan:
    preset: str
    device: str
    budget: float | None
    timing: Timing | None
    choices: dict[str, Choice] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The plan as the terminal shows it before the analyses run."""
        head = (f"plan: preset {self.preset} on {self.device}, "
                + (f"budget ≈ {self.budget:.0f} s" if self.budget else "no time budget"))
        if self.timing is not None:
            head += (f"; one sample takes {self.timing.forward * 1e3:.2f} ms forward, "
                     f"{self.timing.backward * 1e3:.2f} ms forward + backward")
        out = [head]
        for c in self.choices.values():
            out.append(f"  {c.reason} (estimated {c.estimate:.0f} s; preset settings {c.before:.0f} s)")
        if self.budget and not self.choices:
            out.append("  every analysis keeps the preset's settings (they fit the budget)")
        return out


Estimator = Callable[[dict[str, Any], Timing, "DataSize"], float]


@dataclass(frozen=True)
class DataSize:
    test: int  # test samples the per-sample analyses may take (capped by the config's max_samples)
    train: int
    image_side: int  # shorter side of image inputs (0 for other inputs)
    checkpoints: int
    whole_test: int = 0  # the whole test split, which summary accuracy and the evaluation stream over (0: `test`)

    @property
    def streamed(self) -> int:
        return max(self.whole_test, self.test)


# ---- estimates (seconds) from an analysis's settings -------------------------------------------------


def _summary(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    return t.forward * min(v["max_eval_samples"], d.streamed)


# t-SNE of the evaluation's embedding on the CPU (scikit-learn, one thread), seconds per point: measured on
# this project's 2-core machine at 300 and 1000 points of 512 features (1.9 and 9.1 s, other jobs running).
TSNE_SECONDS_PER_POINT = 0.009


def _evaluation(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    n = min(v["max_samples"], d.streamed)
    gallery = 2 * v["gallery"] * 2 * t.backward if v["maps"] else 0.0  # mistakes and hits, one LRP pass each
    return t.forward * n + TSNE_SECONDS_PER_POINT * min(v["embedding_samples"], n) + gallery


def _landscape(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    points = v["steps"] ** 2 + v["slice_steps"] + (v["interpolation_steps"] if d.checkpoints else 0) \
        + (v["trajectory_steps"] ** 2 if d.checkpoints >= 2 else 0) + v["sharpness_map_steps"] ** 2
    hessian = v["lanczos_iterations"] * min(v["hessian_samples"], d.test) if v["hessian_eigenvalues"] else 0
    return t.forward * points * min(v["samples"], d.test) + 2 * t.backward * hessian


def _activations(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    n = min(v["max_examples"], d.train if v["split"] == "train" else d.test)
    return 1.3 * t.forward * (n + v["samples"])


def _featvis(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    # One input per optimised unit: max_units (else the activations analysis's units per layer) × layers.
    per_layer = v.get("_per_layer", 32)
    units = min(v["max_units"], per_layer) if v["max_units"] > 0 else per_layer
    return t.backward * v["steps"] * units * v.get("_layers", 2)


def _facets(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    return t.forward * v["per_class"] * v["max_classes"] + t.backward * v["steps"] * v["k"] * v["max_classes"]


def _cnnvis(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    return t.forward * min(v["samples"], d.test) * 2 + t.backward * v["edge_samples"] * 2


def _relevance_per_sample(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    side = max(d.image_side, 1)
    patch = v["occlusion_patch"] or max(1, side // 4)
    stride = v["occlusion_stride"] or max(1, patch // 2)
    positions = (max(1, (side - patch) // stride + 2)) ** 2 if d.image_side else 64
    cost = {"integrated_gradients": t.backward * (v["ig_steps"] + 1),
            "smoothgrad": t.backward * (v["smoothgrad_samples"] + 1), "occlusion": t.forward * (positions + 1)}
    return sum(cost.get(m, 2 * t.backward) for m in v["methods"])


def _relevance(v: dict[str, Any], t: Timing, d: DataSize) -> float:
    per = _relevance_per_sample(v, t, d)
    rows = min(v["max_rows"], d.test or v["max_rows"])
    n_pert = min(v["perturbation_samples"], d.test or 1)
    perturb = t.forward * (2 * len(v["methods"]) + v["random_orderings"]) * n_pert * (v["steps"] + 1)
    randomise = per * v["cascade_steps"] * min(v["randomisation_samples"], n_pert)
    return per * max(rows, n_pert) + perturb + randomise


ESTIMATORS: dict[str, Estimator] = {"summary": _summary, "landscape": _landscape, "activations": _activations,
                                    "featvis": _featvis, "facets": _facets, "cnnvis": _cnnvis,
                                    "relevance": _relevance, "evaluation": _evaluation}
# Settings the plan may shrink, with the smallest value it goes to.
KNOBS: dict[str, tuple[tuple[str, int], ...]] = {
    "summary": (("max_eval_samples", 64),),
    "evaluation": (("max_samples", 256), ("embedding_samples", 100), ("gallery", 2)),
    "landscape": (("steps", 5), ("samples", 16), ("slice_steps", 9), ("interpolation_steps", 7),
                  ("trajectory_steps", 5), ("lanczos_iterations", 4), ("hessian_samples", 8),
                  ("sharpness_map_steps", 0)),
    "activations": (("max_examples", 64),),
    "featvis": (("steps", 4), ("max_units", 6)),
    "facets": (("per_class", 10), ("steps", 4), ("max_classes", 2)),
    "cnnvis": (("samples", 64), ("edge_samples", 16)),
    "relevance": (("perturbation_samples", 4), ("steps", 4), ("ig_steps", 4), ("smoothgrad_samples", 2),
                  ("randomisation_samples", 2), ("cascade_steps", 1), ("max_rows", 2), ("random_orderings", 1)),
}
ODD = {("landscape", "steps"), ("landscape", "slice_steps"), ("landscape", "trajectory_steps")}
# How much a cut of each setting costs the reader, relative to others (the grid's resolution matters more
# than the number of samples per point; the Hessian's iterations less).
WEIGHTS = {("landscape", "steps"): 2.0, ("landscape", "lanczos_iterations"): 0.5,
           ("landscape", "hessian_samples"): 0.5, ("relevance", "max_rows"): 3.0, ("featvis", "steps"): 2.0}


def shrink(name: str, values: dict[str, Any], fixed: set[str], timing: Timing, size: DataSize,
           seconds: float) -> dict[str, Any]:
    """Smaller settings whose estimate fits `seconds` (or every setting at its floor). The most valued
    setting (e.g. the landscape's grid size) is kept as large as the others' cuts allow; settings in
    `fixed` (the user's) are never touched."""
    est = ESTIMATORS[name]
    top = max((k for k, _f in KNOBS[name] if k not in fixed and k in values and WEIGHTS.get((name, k), 1.0) > 1),
              key=lambda k: WEIGHTS.get((name, k), 1.0), default=None)
    if top is not None:
        floor = dict(KNOBS[name])[top]
        value = values[top]
        while value >= floor:
            trial = _greedy(name, {**values, top: value}, fixed | {top}, timing, size, seconds)
            if est(trial, timing, size) <= seconds:
                return _refill(name, trial, values, fixed, timing, size, seconds)
            if value == floor:
                break
            value = _cut(name, top, value, floor)
    return _refill(name, _greedy(name, values, fixed, timing, size, seconds), values, fixed, timing, size, seconds)


def _greedy(name: str, values: dict[str, Any], fixed: set[str], timing: Timing, size: DataSize,
            seconds: float) -> dict[str, Any]:
    """Cut the setting whose cut saves most (weighted by how much it is valued), about 30% at a time,
    until the estimate fits `seconds` or every setting is at its floor."""
    est = ESTIMATORS[name]
    values = dict(values)
    while est(values, timing, size) > seconds:
        best: tuple[float, str, int] | None = None
        idle: tuple[str, int] | None = None  # a cut that saves nothing yet (e.g. 128 samples of 64)
        for knob, floor in KNOBS[name]:
            if knob in fixed or knob not in values or values[knob] <= floor:
                continue
            cut = _cut(name, knob, values[knob], floor)
            saved = (est(values, timing, size) - est({**values, knob: cut}, timing, size)) \
                / WEIGHTS.get((name, knob), 1.0)
            if saved > 0 and (best is None or saved > best[0]):
                best = (saved, knob, cut)
            elif saved <= 0 and idle is None:
                idle = (knob, cut)
        if best is not None:
            values[best[1]] = best[2]
        elif idle is not None:
            values[idle[0]] = idle[1]  # below the data's size, its next cuts save time
        else:
            break
    return values


def _refill(name: str, values: dict[str, Any], original: dict[str, Any], fixed: set[str], timing: Timing,
            size: DataSize, seconds: float) -> dict[str, Any]:
    """Give back what still fits, the most valued settings first (greedy cuts can overshoot)."""
    est = ESTIMATORS[name]
    knobs = sorted((k for k, _f in KNOBS[name] if k not in fixed and k in values),
                   key=lambda k: -WEIGHTS.get((name, k), 1.0))
    grown = True
    while grown:
        grown = False
        for knob in knobs:
            step = 2 if (name, knob) in ODD else max(1, round(values[knob] * 0.43))
            up = min(original[knob], values[knob] + step)
            if up > values[knob] and est({**values, knob: up}, timing, size) <= seconds:
                values[knob] = up
                grown = True
    return values


def _cut(name: str, knob: str, value: int, floor: int) -> int:
    """About 30% less; odd grid sizes (a point at the centre) go down by two."""
    if (name, knob) in ODD:
        return max(floor, value - 2 if value % 2 else value - 1)
    new = max(floor, int(value * 0.7))
    return min(new, value - 1)


def describe(name: str, values: dict[str, Any], changed: dict[str, Any], preset: str) -> str:
    """One line for the page: what was chosen, to fit which budget."""
    if name == "landscape":
        what = f"{values['steps']}×{values['steps']} grid on {values['samples']} samples"
    else:
        what = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in changed.items())
    return f"{name}: {what} to fit the {preset} budget"


# ---- measuring and planning -------------------------------------------------------------------------


def measure(ctx: Context) -> Timing:
    """Seconds per sample of a forward and of a forward + backward pass (the gradient reaches the input and
    every parameter), on a small batch after one warm-up call, rounded to a power of √2."""
    import torch

    from nnreport import scoped

    one = tuple(t[:1] for t in ctx.example_inputs)
    n = ctx.batch_size(cap=4, backward=True)
    xs = tuple(t.expand(n, *t.shape[1:]).contiguous() for t in one)
    model = ctx.model
    with scoped.eval_mode(model), scoped.frozen(model, True):
        with torch.no_grad():
            ctx.forward(*xs)
            forward = _timed(lambda: ctx.forward(*xs), ctx.device) / n
        leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in xs]

        def fwd_bwd() -> None:
            out = ctx.forward(*leaves).float().sum()
            if out.requires_grad:
                out.backward()

        kept = [(p, p.grad) for p in model.parameters()]
        for p, _g in kept:
            p.grad = None  # backward would add into the user's gradient tensors in place
        backward = _timed(fwd_bwd, ctx.device) / n
        for p, g in kept:
            p.grad = g  # the user's gradients, if any, are left as they were
    return Timing(_bucket(forward), _bucket(max(backward, forward)))


def _bucket(seconds: float) -> float:
    """Round to a power of √2, so that small differences between two measurements make the same plan."""
    return float(2 ** (round(math.log2(max(seconds, 1e-9)) * 2) / 2))


def _timed(fn: Callable[[], Any], device: str) -> float:
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def data_size(ctx: Context) -> DataSize:
    data = ctx.data
    x = ctx.example_inputs[0]
    side = int(min(x.shape[-2:])) if x.dim() == 4 else 0
    if data is None:
        return DataSize(len(x), 0, side, len(ctx.checkpoints))
    return DataSize(min(len(data.x_test), ctx.config.max_samples), len(data.x_train), side, len(ctx.checkpoints),
                    len(data.x_test))


def time_plan(ctx: Context, specs: Sequence[Planned], timing: Timing | None = None) -> BudgetPlan:
    """The plan for these analyses under the context's preset (no measurement for `thorough`; `timing`:
    a measurement made earlier, e.g. cached). Under torchrun every process uses rank 0's timing, so all of
    them make the same plan."""
    from nnreport import distributed

    preset = ctx.config.preset
    budget = BUDGET_SECONDS.get(preset)
    if budget is None:
        return BudgetPlan(preset, ctx.device, None, None)
    try:
        timing = timing or measure(ctx)
    except (Exception, SystemExit):  # noqa: BLE001 - a model that cannot be timed (even one calling sys.exit()) keeps the preset's settings
        timing = Timing(0.0, 0.0)
    timing = Timing(*distributed.broadcast_floats([timing.forward, timing.backward]))
    if timing.forward <= 0:
        return BudgetPlan(preset, ctx.device, budget, None)
    size = data_size(ctx)
    base: dict[str, tuple[dict[str, Any], set[str]]] = {}
    for spec in specs:
        if spec.name in ESTIMATORS:
            cfg = ctx.config.analysis_config(spec.name, spec.config_type)
            base[spec.name] = (dataclasses.asdict(cfg), set(ctx.config.analyses.get(spec.name, {})))
    if "featvis" in base and "activations" in base:
        acts = base["activations"][0]
        featvis = base["featvis"][0]
        featvis["_per_layer"], featvis["_layers"] = acts["max_units"], acts["max_layers"]
        if featvis["max_units"] <= 0:
            featvis["max_units"] = acts["max_units"]  # "every unit shown", as a number the plan can cut
    estimates = {n: ESTIMATORS[n](v, timing, size) for n, (v, _f) in base.items()}
    if sum(estimates.values()) <= budget:
        return BudgetPlan(preset, ctx.device, budget, timing)
    total_share = sum(SHARES.get(s.name, 0.01) for s in specs) or 1.0
    choices: dict[str, Choice] = {}
    for name, (values, fixed) in base.items():
        seconds = budget * SHARES.get(name, 0.01) / total_share
        if estimates[name] <= seconds:
            continue
        new = shrink(name, values, fixed, timing, size, seconds)
        changed = {k: v for k, v in new.items() if values.get(k) != v}
        if changed:
            choices[name] = Choice(changed, describe(name, new, changed, preset),
                                   ESTIMATORS[name](new, timing, size), estimates[name])
    return BudgetPlan(preset, ctx.device, budget, timing, choices)
