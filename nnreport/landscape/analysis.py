"""The "landscape" analysis: the random plane, its 1-D slice, checkpoint interpolation, the PCA path
and sharpness, with progress (and an ETA) across all of them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.errors import Skipped
from nnreport.landscape import shape as shapes
from nnreport.landscape.api import grid_points, line_coords, line_evaluator, symmetric_coords
from nnreport.landscape.directions import (
    Space,
    flatten,
    is_filter_weight,
    parameter_space,
    pca_directions,
    random_direction,
    state_space,
)
from nnreport.landscape.results import (
    Curve,
    Directions,
    LandscapeConfig,
    LandscapeResult,
    Shape,
    Sharpness,
    Surface,
    Trajectory,
)
from nnreport.landscape.surface import Batches, Evaluator, make_batches, sweep, sweep_key

if TYPE_CHECKING:
    import torch

    from nnreport.context import Context


class Progress:
    """One progress bar over every sweep of the analysis, with an ETA in the message."""

    def __init__(self, ctx: Context, total: int) -> None:
        self.rep = ctx.stage()
        self.total = max(total, 1)
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    def part(self, label: str) -> Any:
        offset = self.done

        def step(done: int, total: int) -> None:
            self.done = offset + done
            now = time.monotonic()
            if done == total or now - self._last > 0.25:
                self._last = now
                rate = (now - self.start) / max(self.done, 1)
                eta = rate * (self.total - self.done)
                self.rep.step(min(self.done, self.total - 1), self.total, f"{label}, eta {eta:.0f}s")

        return step


def _check_output(ctx: Context, x: torch.Tensor) -> None:
    import torch

    from nnreport import scoped

    with scoped.eval_mode(ctx.model), torch.inference_mode():
        out = ctx.forward(x[:2])
    classes = ctx.data.num_classes if ctx.data is not None else None
    fix = "call nnreport.loss_landscape(model, data, loss_fn=...) with a loss that fits"
    if out.dim() != 2 or out.shape[1] < 2:
        raise Skipped(f"the output has shape {tuple(out.shape)}, not one score per class, so the report has no loss "
                      f"to map; {fix}")
    if classes and out.shape[1] != classes:
        raise Skipped(f"the model gives {out.shape[1]} scores per sample but the data has {classes} classes, so the "
                      f"report has no loss to map; {fix}")


def run(ctx: Context, config: LandscapeConfig) -> LandscapeResult:
    import torch

    from nnreport import scoped
    from nnreport.memory import release_freed_memory

    ctx.require_labels("the loss landscape needs labels to compute a loss")
    x, y = ctx.samples(config.samples)
    if y is None or y.dtype.is_floating_point:
        raise Skipped("the labels are not class indices; the loss landscape uses cross-entropy")
    _check_output(ctx, x)
    model = ctx.model
    space = parameter_space(model)
    if not any(is_filter_weight(w) or config.include_bias_bn for w in space.base):
        raise Skipped("the model has no weight matrices or filters to move (only biases and norm scales)")
    seed = int(ctx.rng("landscape-directions").integers(2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    dirs = [random_direction(space, gen, config.normalisation, config.include_bias_bn) for _ in range(2)]
    batches = make_batches(x, y, ctx.batch_size(config.batch_size), ctx.autocast)
    bn: Batches | None = None
    if config.batchnorm == "recompute":
        bx, by = ctx.samples(config.recompute_samples, split="train")
        assert by is not None  # require_labels above: both splits have labels
        bn = make_batches(bx, by, ctx.batch_size(config.batch_size), ctx.autocast)
    notes: list[str] = []
    checkpoints = _usable_checkpoints(ctx, space, notes)
    total = config.steps ** 2 + config.slice_steps + (config.interpolation_steps if checkpoints else 0) \
        + (config.trajectory_steps ** 2 if len(checkpoints) >= 2 else 0)
    progress = Progress(ctx, total)
    settings = (f"{config.batchnorm}|{config.samples}|{len(batches.x[0]) if batches.x else 0}|{config.recompute_samples}"
                f"|{ctx.precision}")
    # One copy of the trained values serves the sweeps (space.base), the way home and the final restore.
    home = state_space(model, space)
    summary = _directions(space, dirs, config, seed)
    with scoped.eval_mode(model):
        with scoped.restored_parameters(model, zip(home.tensors, home.base, strict=True)):
            plane, slice_ = _plane_and_slice(ctx, config, space, dirs, batches, bn, progress, settings)
            _go_home(home)
            interp = _interpolation(ctx, config, checkpoints, batches, bn, progress, settings, notes)
            _go_home(home)
            traj = _trajectory(ctx, config, space, checkpoints, batches, bn, progress, settings, notes)
        # Back at the trained values. The sharpness map moves the parameters, so it runs under a restore; the
        # Hessian alone moves nothing (a forward pass and autograd), so the copy of the trained values and the
        # directions (three vectors the size of the model) are freed before it, the analysis's largest stage.
        params = space.tensors
        if config.hessian_eigenvalues > 0 and config.sharpness_map_steps > 0:
            with scoped.restored_parameters(model, zip(home.tensors, home.base, strict=True)):
                sharp = _sharpness(ctx, config, params, notes, (space, dirs))
        else:
            del space, home, dirs
            release_freed_memory()  # the Hessian's vectors are fresh mappings: the freed heap would stay resident
            sharp = _sharpness(ctx, config, params, notes)
    rep = ctx.stage()
    rep.step(total, total, "done")
    return LandscapeResult(
        directions=summary, plane=plane, shape=_shape(plane), samples=batches.count, batchnorm=config.batchnorm,
        span=config.span, steps=config.steps, slice=slice_, interpolation=interp, trajectory=traj,
        sharpness=sharp, notes=tuple(notes))


def _plane_and_slice(ctx: Context, config: LandscapeConfig, space: Space, dirs: list[list[torch.Tensor]],
                     batches: Batches, bn: Batches | None, progress: Progress, settings: str
                     ) -> tuple[Surface, Curve | None]:
    """The random plane and the 1-D slice along its first direction."""
    coords = symmetric_coords(config.span, config.steps)
    plane_pts = grid_points(coords, coords)
    ev = Evaluator(ctx.model, space, dirs, batches, None, config.batchnorm, bn)
    loss, acc = sweep(ev, plane_pts, ctx.scratch, sweep_key("plane", plane_pts, dirs, settings),
                      progress.part("random plane"))
    plane = Surface(coords, coords.copy(), loss.reshape(len(coords), -1), acc.reshape(len(coords), -1))
    if config.slice_steps <= 0:
        return plane, None
    t = symmetric_coords(config.span, config.slice_steps)
    ev1 = Evaluator(ctx.model, space, dirs[:1], batches, None, config.batchnorm, bn)
    sl, sa = sweep(ev1, t[:, None], ctx.scratch, sweep_key("slice", t[:, None], dirs[:1], settings),
                   progress.part("1-D slice"))
    return plane, Curve(t, sl, sa, "direction 1")


def _go_home(home: Space) -> None:
    """Put every parameter and buffer back to the trained values (after a sweep that moved others)."""
    import torch

    with torch.no_grad():
        for t, b in zip(home.tensors, home.base, strict=True):
            t.copy_(b)


def _directions(space: Space, dirs: list[list[torch.Tensor]], config: LandscapeConfig, seed: int) -> Directions:
    import torch

    moved = [i for i, d in enumerate(dirs[0]) if bool(d.any())]
    count = sum(dirs[0][i].numel() for i in moved)
    vecs = None
    if len(dirs) * count <= config.store_directions_max:
        vecs = np.stack([flatten([d[i] for i in moved]) for d in dirs]).astype(np.float16)
    # The cosine of the stored (float16) directions in float64, tensor by tensor: for a large model the
    # whole float64 vectors would take 16 bytes per parameter.
    dot = sq_a = sq_b = torch.zeros((), dtype=torch.float64)
    for i in moved:
        a, b = (d[i].detach().reshape(-1).half().double().cpu() for d in dirs)
        dot, sq_a, sq_b = dot + a @ b, sq_a + a @ a, sq_b + b @ b
    cos = float(dot / (sq_a.sqrt() * sq_b.sqrt())) if float(sq_a) > 0 and float(sq_b) > 0 else 0.0
    return Directions(
        normalisation=config.normalisation, include_bias_bn=config.include_bias_bn, seed=seed,
        total_params=space.size, moved_params=count,
        moved_tensors=tuple(space.names[i] for i in moved),
        fixed_tensors=tuple(n for i, n in enumerate(space.names) if i not in set(moved)),
        vectors=vecs, cosine=round(cos, 6))


def _shape(plane: Surface) -> Shape:
    ci = shapes.centre_index(plane.x)
    centre = float(plane.loss[ci, ci])
    ring = shapes.ring_mean(plane.x, plane.y, plane.loss, 0.5)
    return Shape(
        centre_loss=centre, centre_accuracy=float(plane.accuracy[ci, ci]),
        local_minima=shapes.local_minima(plane.loss),
        growth_at_half=ring - centre, growth_ratio_at_half=ring / centre if centre > 0 else float("nan"),
        negative_curvature_fraction=shapes.negative_curvature_fraction(plane.x, plane.y, plane.loss),
        nonfinite_points=int((~np.isfinite(plane.loss)).sum()))


def _usable_checkpoints(ctx: Context, space: Space, notes: list[str]) -> list[dict[str, torch.Tensor]]:
    if not ctx.checkpoints:
        notes.append("No training snapshots were given, so there is no checkpoint interpolation or training path.")
        return []
    ok = []
    for state in ctx.checkpoints:
        if all(n in state and tuple(state[n].shape) == tuple(w.shape) for n, w in zip(space.names, space.base,
                                                                                      strict=True)):
            ok.append(dict(state))
    if len(ok) < len(ctx.checkpoints):
        notes.append(f"{len(ctx.checkpoints) - len(ok)} training snapshot(s) do not match the model's parameters "
                     "and were left out.")
    return ok


def _interpolation(ctx: Context, config: LandscapeConfig, checkpoints: list[dict[str, torch.Tensor]],
                   batches: Batches, bn: Batches | None, progress: Progress, settings: str,
                   notes: list[str]) -> Curve | None:
    if not checkpoints or config.interpolation_steps <= 0:
        return None
    try:
        ev = line_evaluator(ctx.model, checkpoints[0], None, batches, None, config.batchnorm)
    except ValueError as exc:
        notes.append(f"Checkpoint interpolation left out: {exc}.")
        return None
    ev.bn_batches = bn or batches
    alphas = np.linspace(-0.25, 1.25, config.interpolation_steps)
    pts = line_coords(alphas)
    loss, acc = sweep(ev, pts, ctx.scratch, sweep_key("interp", pts, ev.directions, settings),
                      progress.part("checkpoint interpolation"))
    return Curve(alphas, loss, acc, "oldest snapshot (α=0) → final model (α=1)")


def _trajectory(ctx: Context, config: LandscapeConfig, space: Space, checkpoints: list[dict[str, torch.Tensor]],
                batches: Batches, bn: Batches | None, progress: Progress, settings: str,
                notes: list[str]) -> Trajectory | None:
    if config.trajectory_steps <= 0:
        return None
    if len(checkpoints) < 2:
        if ctx.checkpoints:
            notes.append("The training path needs at least two snapshots.")
        return None
    d1, d2, explained, path = pca_directions(space, checkpoints, config.include_bias_bn)
    if not np.any(path):
        notes.append("The training snapshots all equal the final model, so there is no training path.")
        return None
    px, py = np.append(path[:, 0], 0.0), np.append(path[:, 1], 0.0)
    xs = _axis(px, config.trajectory_steps)
    ys = _axis(py, config.trajectory_steps)
    pts = grid_points(xs, ys)
    ev = Evaluator(ctx.model, space, [d1, d2], batches, None, config.batchnorm, bn)
    loss, acc = sweep(ev, pts, ctx.scratch, sweep_key("pca", pts, [d1, d2], settings), progress.part("training path"))
    path_loss = tuple(ev.at((float(a), float(b)))[0] for a, b in zip(px, py, strict=True))
    surface = Surface(xs, ys, loss.reshape(len(ys), len(xs)), acc.reshape(len(ys), len(xs)))
    return Trajectory(surface, px, py, path_loss, (float(explained[0]), float(explained[1])), len(checkpoints))


def _axis(values: np.ndarray, steps: int) -> np.ndarray:
    """Grid coordinates covering the path with a 25% margin, with 0 (the final model) on a grid node."""
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    pad = 0.25 * (hi - lo) if hi > lo else 1.0
    lo, hi = lo - pad, hi + pad
    if steps < 2:
        return np.zeros(1)
    step = (hi - lo) / (steps - 1)
    first = -round(-lo / step)
    return (first + np.arange(steps)) * step


def _sharpness(ctx: Context, config: LandscapeConfig, params: list[torch.Tensor], notes: list[str],
               plane: tuple[Space, list[list[torch.Tensor]]] | None = None) -> Sharpness | None:
    """Sharpness at the trained weights (where the model is on entry); with `plane` (the parameter space and
    the two directions), the map over that plane too."""
    if config.hessian_eigenvalues <= 0:
        return None
    from nnreport import scoped
    from nnreport.landscape.hessian import sharpness

    x, y = ctx.samples(config.hessian_samples)
    assert y is not None  # only called from run(), after ctx.require_labels: both splits have labels
    # A Hessian-vector product keeps the first backward pass's graph for the second, hence a third of the
    # backward batch. Measured per added sample (a dispatch mode counting live tensors): 164 MB on ResNet-50
    # and 289 MB on ViT-B/16 at 224 px, 0.73× and 0.64× the backward estimate (which also counts the weights
    # each layer saves), so a third is on the safe side; what does not shrink with the batch is model-sized
    # (the float64 product, the gradients, autograd's buffers: 4-5× the parameter bytes on ViT-B/16).
    batches = make_batches(x, y, max(1, ctx.batch_size(config.batch_size, backward=True) // 3))
    gen = ctx.generator("landscape-lanczos")
    try:
        iterations = _lanczos_iterations(ctx, config, params, notes)
        with scoped.frozen(ctx.model, True):
            ritz = sharpness(ctx.model, params, batches, iterations, gen)
            smap = None
            if config.sharpness_map_steps > 0 and plane is not None:
                smap = _sharpness_map(ctx, config, Evaluator(ctx.model, *plane, batches), batches, params, gen)
    except RuntimeError as exc:  # e.g. an operation without a second derivative
        notes.append(f"Sharpness left out: Hessian-vector products failed ({exc}).")
        return None
    lmax, lmin = float(ritz[-1]), float(ritz[0])
    top = tuple(float(v) for v in ritz[::-1][:config.hessian_eigenvalues])
    ratio = abs(lmin / lmax) if lmax != 0 else float("nan")
    return Sharpness(top, lmin, lmax, ratio, iterations, batches.count, smap)


def _lanczos_fits(ctx: Context, params: list[torch.Tensor]) -> int:
    """Lanczos keeps one model-sized vector per iteration: as many as the memory budget holds (at least 3).
    Measured with benchmarks/landscape_memory.py (default 512 MB budget): ViT-B/16's 3 iterations peak at
    4.0 GB resident, the basis being 0.6 GB of it during an HVP."""
    vector = 4 * sum(p.numel() for p in params)
    return int(max(3, ctx.memory_budget // max(vector, 1)))


def _lanczos_iterations(ctx: Context, config: LandscapeConfig, params: list[torch.Tensor], notes: list[str]) -> int:
    fits = _lanczos_fits(ctx, params)
    if fits < config.lanczos_iterations:
        notes.append(f"Lanczos ran {fits} iterations, not {config.lanczos_iterations}: each keeps a vector the "
                     "size of the model, and more would not fit the memory budget (--memory-budget).")
    return int(min(config.lanczos_iterations, fits))


def _sharpness_map(ctx: Context, config: LandscapeConfig, ev: Evaluator, batches: Batches,
                   params: list[torch.Tensor], gen: torch.Generator) -> Surface:
    from nnreport.landscape.hessian import sharpness

    coords = symmetric_coords(config.span, config.sharpness_map_steps)
    pts = grid_points(coords, coords)
    ratios = np.full(len(pts), np.nan)
    rep = ctx.stage()
    # Half the iterations (at least 8) at each point, within what the memory budget holds.
    iterations = min(max(8, config.lanczos_iterations // 2), _lanczos_fits(ctx, params))
    for i, p in enumerate(pts):
        ev.set_point(p)
        ritz = sharpness(ctx.model, params, batches, iterations, gen)
        if np.all(np.isfinite(ritz)) and ritz[-1] != 0:
            ratios[i] = abs(ritz[0] / ritz[-1])
        rep.step(i + 1, len(pts) + 1, "sharpness map")
    grid = ratios.reshape(len(coords), len(coords))
    return Surface(coords, coords.copy(), grid, np.full_like(grid, np.nan))
