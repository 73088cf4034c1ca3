"""The relevance analysis on the torch side: run every method on test samples, then score the maps by
region perturbation, parameter randomisation, conservation and object-mask share."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.analyses.relevance import (
    METHOD_TEXT,
    ConservationResult,
    CurveResult,
    MaskShareResult,
    MethodResult,
    PerturbationResult,
    RandomisationResult,
    RelevanceConfig,
    RelevanceResult,
)
from nnreport.errors import Skipped

if TYPE_CHECKING:
    import torch

    from nnreport.context import Context


def method_call(key: str, config: RelevanceConfig, low: float, high: float, seed: int,
                side: int = 16) -> tuple[str, dict[str, Any]]:
    """The library method and options behind a page method key (`side`: the image's shorter side)."""
    patch = config.occlusion_patch or max(1, side // 4)
    stride = config.occlusion_stride or max(1, patch // 2)
    if key.startswith("lrp_"):
        return "lrp", {"composite": key[4:], "epsilon": config.epsilon, "gamma": config.gamma, "low": low, "high": high}
    return key, {
        "integrated_gradients": {"steps": config.ig_steps, "baseline": 0.0},
        "smoothgrad": {"samples": config.smoothgrad_samples, "noise": config.smoothgrad_noise, "seed": seed},
        "occlusion": {"patch": patch, "stride": stride, "baseline": 0.0},
    }.get(key, {})


def settings_text(key: str, options: dict[str, Any]) -> str:
    """The exact settings, as printed on the method's card."""
    from nnreport.relevance.lrp import composites

    if key.startswith("lrp_"):
        comp = composites.composite(options["composite"], options["epsilon"], options["gamma"], options["low"],
                                    options["high"])
        return "; ".join(f"{where}: {rule}" for where, rule in comp.describe())
    extra = {"integrated_gradients": "baseline 0 (the data mean after normalisation), midpoint Riemann sum",
             "smoothgrad": "σ = noise × each sample's value range",
             "occlusion": "patch over all channels, replaced by 0 (the data mean)",
             "gradcam": "at the last 2-D convolution, bilinear upsampling"}.get(key, "")
    parts = [f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in options.items()]
    return "; ".join(parts + ([extra] if extra else [])) or "no settings"


def _inputs(ctx: Context) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """Test inputs, labels and the dataset (None: the example inputs)."""
    if ctx.data is None:
        if not ctx.single_input:
            raise Skipped("the model takes several inputs; relevance maps explain single-input models")
        return ctx.example_inputs[0].detach().cpu().numpy(), None, None
    data = ctx.require_data("relevance maps explain test samples")
    return data.x_test, data.y_test, data


def _check_output(ctx: Context, canon: Any, x: torch.Tensor) -> int:
    import torch

    from nnreport.context import primary_output

    if not x.is_floating_point():
        raise Skipped("the inputs are not floating point (e.g. token ids), so no gradient reaches them; "
                      "relevance methods do not apply")
    if x.dim() > 4 or x.dim() < 2:
        raise Skipped(f"inputs of shape {tuple(x.shape[1:])} are neither images, sequences nor feature vectors")
    with torch.no_grad():
        out = primary_output(canon.model(x[:2]))
    if out.dim() == 1 or (out.dim() == 2 and out.shape[1] >= 1):
        return 1 if out.dim() == 1 else int(out.shape[1])
    raise Skipped(f"the output has shape {tuple(out.shape)}; relevance maps explain one score per class")


def _rows(labels: np.ndarray | None, n_classes: int, config: RelevanceConfig, n: int, vector: bool) -> list[int]:
    if vector:  # feature vectors show as mean bars: average over more samples
        return list(range(min(n, max(config.max_rows, 32))))
    if labels is None or n_classes < 2:
        return list(range(min(n, config.max_rows)))
    rows: list[int] = []
    for c in range(n_classes):
        rows += [int(i) for i in np.flatnonzero(labels[:n] == c)[:config.per_class]]
        if len(rows) >= config.max_rows:
            break
    return rows[:config.max_rows]


def run(ctx: Context, config: RelevanceConfig) -> RelevanceResult:
    """The analysis (the inspector runs small models on one thread: see scoped.small_model_threads)."""
    import torch

    from nnreport import distributed
    from nnreport.relevance import prepare
    from nnreport.relevance.methods import NotApplicable, explain, resolve_target

    x_np, labels, data = _inputs(ctx)
    x_all = torch.from_numpy(np.ascontiguousarray(x_np))  # on the CPU; the rows used are moved below
    try:
        canon = prepare(ctx.model, ctx.to_device(x_all[:1]))
    except ValueError as exc:
        raise Skipped(str(exc)) from exc
    n_classes = _check_output(ctx, canon, ctx.to_device(x_all[:2]))
    rows = _rows(labels, n_classes, config, len(x_all), x_all.dim() == 2)
    pert_idx = list(range(min(config.perturbation_samples, len(x_all))))
    has_masks = data is not None and data.masks_test is not None and x_all.dim() == 4
    mask_idx = list(range(min(config.mask_samples, len(x_all)))) if has_masks else []
    batch_idx = sorted(set(rows) | set(pert_idx) | set(mask_idx))
    where = {i: k for k, i in enumerate(batch_idx)}
    x = ctx.to_device(x_all[batch_idx])
    target = resolve_target(canon, x, None)
    low, high = (data.value_range() if data is not None else (float(x.min()), float(x.max())))
    seed = ctx.config.seed
    side = min(x.shape[-2:]) if x.dim() == 4 else 1
    rep = ctx.stage()
    steps_total = len(config.methods) * 2 + 2
    maps: dict[str, np.ndarray] = {}
    infos: list[MethodResult] = []
    scores = None
    lrp_notes: dict[str, tuple[str, ...]] = {}
    explain(canon, x[:1], target[:1], "gradient")  # warm-up, so that the first method's time is not inflated
    methods: list[str] = list(config.methods)

    def one(key: str) -> tuple[MethodResult, np.ndarray | None, np.ndarray | None]:
        """One method's record, maps and scores (None when it did not run)."""
        rep.step(methods.index(key), steps_total, f"relevance: {key}")
        name, options = method_call(key, config, low, high, seed, side)
        text = METHOD_TEXT[key]
        settings = settings_text(key, options)
        start = time.perf_counter()
        try:
            e = explain(canon, x, target, name, memory_budget=ctx.memory_budget, **options)
        except NotApplicable as exc:
            return MethodResult(key, text.title, text.signed, settings, skipped=str(exc)), None, None
        except Exception as exc:  # noqa: BLE001 - one failing method must not sink the page
            return MethodResult(key, text.title, text.signed, settings,
                                skipped=f"failed: {type(exc).__name__}: {exc}"), None, None
        elapsed = (time.perf_counter() - start) / len(x)
        info = MethodResult(key, text.title, text.signed, settings, notes=tuple(e.notes),
                            seconds_per_sample=round(elapsed, 6) if ctx.config.timings else None)
        return info, e.relevance.detach().cpu().numpy().astype(np.float32), e.scores.cpu().numpy()

    # Under torchrun the methods are shared out over the processes; every process gets all maps.
    for info, m, s in distributed.map_shared(one, methods):
        infos.append(info)
        if m is not None:
            maps[info.key] = m
            scores = s if scores is None else scores
            lrp_notes[info.key] = info.notes
    if scores is None:
        raise Skipped("no relevance method applies to this model: "
                      + "; ".join(f"{m.title}: {m.skipped}" for m in infos))
    notes: list[str] = []
    perturbation = _perturbation(ctx, canon, x, target, maps, [where[i] for i in pert_idx], config, low, high, rep,
                                 len(config.methods), steps_total)
    rep.step(len(config.methods) * 2, steps_total, "relevance: randomisation check")
    layers, randomisation = _randomisation(ctx, x[[where[i] for i in pert_idx[:config.randomisation_samples]]],
                                           target[[where[i] for i in pert_idx[:config.randomisation_samples]]],
                                           maps, [where[i] for i in pert_idx[:config.randomisation_samples]],
                                           config, low, high, seed, side, notes)
    conservation = tuple(ConservationResult(k, scores.astype(np.float64), maps[k].reshape(len(x), -1).sum(1).astype(np.float64))
                         for k in maps if k.startswith("lrp_"))
    shares, area = _mask_shares(data, maps, mask_idx, where) if has_masks else ((), None)
    grid = [where[i] for i in rows]
    kind = "vector" if x.dim() == 2 else "image"
    shown = x_np[rows]
    if data is not None and data.kind == "image" and x.dim() == 4:
        shown = data.to_display(shown)
    elif kind == "image":
        lo_, hi_ = float(shown.min()), float(shown.max())
        shown = (shown - lo_) / (hi_ - lo_ if hi_ > lo_ else 1.0)
        shown = shown[:, None] if shown.ndim == 3 else shown
    with torch.no_grad():
        from nnreport.context import primary_output

        out = primary_output(canon.model(x[grid]))
        preds = out.argmax(1).cpu().numpy() if out.dim() == 2 and out.shape[1] > 1 else np.zeros(len(grid), dtype=np.int64)
    names = (tuple(ctx.class_names) if ctx.class_names else
             tuple(data.class_names) if data is not None and data.class_names else tuple(str(c) for c in range(n_classes)))
    feature_names = (tuple(data.feature_names) if data is not None and data.feature_names
                     else tuple(f"x{j}" for j in range(x.shape[-1])))
    return RelevanceResult(
        kind=kind,  # type: ignore[arg-type]
        inputs=np.asarray(shown, dtype=np.float32),
        labels=None if labels is None else np.asarray(labels)[rows].astype(np.int64),
        predictions=preds.astype(np.int64),
        targets=target[grid].cpu().numpy().astype(np.int64),
        class_names=names,
        feature_names=feature_names if kind == "vector" else (),
        methods=tuple(infos),
        maps={k: _grid_map(v[grid], kind) for k, v in maps.items()},
        perturbation=perturbation,
        randomisation=randomisation,
        layers=tuple(layers),
        conservation=conservation,
        mask_share=shares,
        mask_area=area,
        notes=tuple(notes),
    )


def _grid_map(m: np.ndarray, kind: str) -> np.ndarray:
    """Channels summed for images (N, H, W); sequences stay (N, T, F); vectors (N, F)."""
    return (m.sum(1) if m.ndim == 4 else m).astype(np.float32)


def _score_fn(canon: Any, ctx: Context) -> Any:
    import torch

    from nnreport.context import primary_output
    from nnreport.relevance.methods import select

    def score(batch: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), ctx.autocast():
            return select(primary_output(canon.model(batch)).float(), t)

    return score


def _perturbation(ctx: Context, canon: Any, x: torch.Tensor, target: torch.Tensor, maps: dict[str, np.ndarray],
                  idx: list[int], config: RelevanceConfig, low: float, high: float, rep: Any, done: int,
                  total: int) -> PerturbationResult | None:
    from nnreport.relevance import perturbation as P

    if not idx or config.steps < 1:
        return None
    xs, ts = x[idx], target[idx]
    ids, count = P.region_index(tuple(xs.shape[1:]), config.region if xs.dim() == 4 else 1)
    rng = ctx.rng("relevance-perturbation")
    fill = P.replacement_values(xs, config.replacement, low, high, rng)
    score = _score_fn(canon, ctx)
    steps = min(config.steps, count)
    batch = ctx.batch_size(256)
    randoms = [P.perturbation_curve(score, xs, ts, np.stack([rng.permutation(count) for _ in idx]), ids, steps, fill,
                                    batch) for _ in range(max(1, config.random_orderings))]
    curves = []
    for i, (key, m) in enumerate(maps.items()):
        rep.step(done + i, total, f"relevance: region perturbation ({key})")
        morf, lerf = P.orderings(m[idx], ids, count)
        a = P.perturbation_curve(score, xs, ts, morf, ids, steps, fill, batch)
        b = P.perturbation_curve(score, xs, ts, lerf, ids, steps, fill, batch)
        curves.append(CurveResult(key, a.drop, b.drop, a.aopc, a.se, b.aopc, b.se))
    random_drop = np.mean([r.drop for r in randoms], axis=0)
    return PerturbationResult(
        region=config.region if xs.dim() == 4 else 1, steps=steps, replacement=config.replacement, samples=len(idx),
        regions_total=count, random=random_drop, random_aopc=float(np.mean([r.aopc for r in randoms])),
        random_se=float(np.mean([r.se for r in randoms])), curves=tuple(curves))


def _randomisation(ctx: Context, x: torch.Tensor, target: torch.Tensor, maps: dict[str, np.ndarray], idx: list[int],
                   config: RelevanceConfig, low: float, high: float, seed: int, side: int,
                   notes: list[str]) -> tuple[list[str], tuple[RandomisationResult, ...]]:
    from nnreport.relevance import prepare, sanity
    from nnreport.relevance.methods import explain

    layers = sanity.parameter_layers(ctx.model)
    points = sanity.cascade_points(layers, config.cascade_steps)
    if not points or len(x) == 0:
        return layers, ()
    sims: dict[str, list[tuple[float, float]]] = {k: [] for k in maps}
    for k in points:
        try:
            canon = prepare(sanity.randomised_copy(ctx.model, layers[:k], seed + k), x[:1])
        except Exception as exc:  # noqa: BLE001
            notes.append(f"Randomisation check stopped at {k} layers: {type(exc).__name__}: {exc}")
            return layers, ()
        for key in maps:
            name, options = method_call(key, config, low, high, seed, side)
            try:
                r = explain(canon, x, target, name, memory_budget=ctx.memory_budget,
                            **options).relevance.detach().cpu().numpy()
            except Exception:  # noqa: BLE001 - recorded as a gap below
                r = np.full_like(maps[key][idx], np.nan)
            a, b = _as_map(maps[key][idx]), _as_map(r)
            sims[key].append(sanity.mean_se(sanity.rank_similarity(a, b)))
    return layers, tuple(RandomisationResult(key, tuple(points), np.array([s[0] for s in v]), np.array([s[1] for s in v]))
                         for key, v in sims.items())


def _as_map(m: np.ndarray) -> np.ndarray:
    return m.sum(1) if m.ndim == 4 else m


def _mask_shares(data: Any, maps: dict[str, np.ndarray], mask_idx: list[int],
                 where: dict[int, int]) -> tuple[tuple[MaskShareResult, ...], float | None]:
    from nnreport.relevance import sanity

    masks = np.asarray(data.masks_test)[mask_idx].astype(np.float64)
    rows = [where[i] for i in mask_idx]
    out = []
    for key, m in maps.items():
        share, se = sanity.mean_se(sanity.mask_share(_as_map(m[rows]), masks))
        out.append(MaskShareResult(key, share, se))
    return tuple(out), float(masks.reshape(len(masks), -1).mean())
