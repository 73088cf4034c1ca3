"""The relevance analysis on the torch side: run every method on test samples, then score the maps by
region perturbation, parameter randomisation, conservation and object-mask share."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport.errors import Skipped
from nnreport.relevance.catalogue import RECORDS, TRANSFORMER_METHODS, Setting
from nnreport.relevance.results import (
    ConservationResult,
    CurveResult,
    MaskShareResult,
    MethodResult,
    PerturbationResult,
    RandomisationResult,
    RelevanceConfig,
    RelevanceResult,
)
from nnreport.relevance.tokens import is_tokens, pad_id, vocabulary, words

if TYPE_CHECKING:
    import torch

    from nnreport.context import Context
    from nnreport.datasets import Inputs


def _inputs(ctx: Context) -> tuple[Inputs, np.ndarray | None, Any]:
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

    if not x.is_floating_point() and not is_tokens(x):
        raise Skipped(f"integer inputs of shape {tuple(x.shape[1:])} are not token sequences (N, T); relevance "
                      "methods do not apply")
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
    # Only the samples used are read (streamed data decodes nothing else), from the first max_samples; the
    # rows used are moved to the analysis device.
    n_all = min(len(x_np), ctx.config.max_samples) if data is not None else len(x_np)
    x_first = ctx.tensor(x_np[:2])
    try:
        canon = prepare(ctx.model, x_first[:1])
    except ValueError as exc:
        raise Skipped(str(exc)) from exc
    n_classes = _check_output(ctx, canon, x_first)
    tokens = is_tokens(x_first)
    rows = _rows(labels, n_classes, config, n_all, x_first.dim() == 2 and not tokens)
    pert_idx = list(range(min(config.perturbation_samples, n_all)))
    has_masks = data is not None and data.masks_test is not None and x_first.dim() == 4
    mask_idx = list(range(min(config.mask_samples, n_all))) if has_masks else []
    batch_idx = sorted(set(rows) | set(pert_idx) | set(mask_idx))
    where = {i: k for k, i in enumerate(batch_idx)}
    x = ctx.tensor(x_np[np.asarray(batch_idx, dtype=np.int64)])
    target = resolve_target(canon, x, None)
    low, high = (data.value_range() if data is not None else (float(x.min()), float(x.max())))
    seed = ctx.config.seed
    side = min(x.shape[-2:]) if x.dim() == 4 else 1
    setting = Setting(low, high, seed, side)
    rep = ctx.stage()
    keys = _method_keys(config, canon, x)
    steps_total = len(keys) * 2 + 2
    maps: dict[str, np.ndarray] = {}
    infos: list[MethodResult] = []
    scores = None
    lrp_notes: dict[str, tuple[str, ...]] = {}
    explain(canon, x[:1], target[:1], "input_x_gradient")  # warm-up, so that the first method's time is not inflated

    def one(key: str) -> tuple[MethodResult, np.ndarray | None, np.ndarray | None]:
        """One method's record, maps and scores (None when it did not run)."""
        rep.step(keys.index(key), steps_total, f"relevance: {key}")
        record = RECORDS[key]
        options = record.options(config, setting)
        settings = record.settings(options)
        start = time.perf_counter()
        try:
            e = explain(canon, x, target, record.method, memory_budget=ctx.memory_budget, **asdict(options))
        except NotApplicable as exc:
            return MethodResult(key, record.title, record.signed, settings, skipped=str(exc)), None, None
        except Exception as exc:  # noqa: BLE001 - one failing method must not sink the page
            return MethodResult(key, record.title, record.signed, settings,
                                skipped=f"failed: {type(exc).__name__}: {exc}"), None, None
        elapsed = (time.perf_counter() - start) / len(x)
        m = e.relevance.detach().cpu().numpy().astype(np.float32)
        s = e.scores.detach().cpu().numpy()
        notes_k = tuple(e.notes) + ((_gap_note(m, s),) if key in TRANSFORMER_METHODS else ())
        info = MethodResult(key, record.title, record.signed, settings, notes=notes_k,
                            seconds_per_sample=round(elapsed, 6) if ctx.config.timings else None)
        return info, m, s

    # Under torchrun the methods are shared out over the processes; every process gets all maps.
    for info, m, s in distributed.map_shared(one, list(keys)):
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
                                 len(keys), steps_total, pad_id(data) if tokens else None)
    rep.step(len(keys) * 2, steps_total, "relevance: randomisation check")
    layers, randomisation = _randomisation(ctx, x[[where[i] for i in pert_idx[:config.randomisation_samples]]],
                                           target[[where[i] for i in pert_idx[:config.randomisation_samples]]],
                                           maps, [where[i] for i in pert_idx[:config.randomisation_samples]],
                                           config, low, high, seed, side, notes)
    conservation = tuple(ConservationResult(k, scores.astype(np.float64), maps[k].reshape(len(x), -1).sum(1).astype(np.float64))
                         for k in maps if k.startswith("lrp_"))
    shares, area = _mask_shares(data, maps, mask_idx, where) if has_masks else ((), None)
    grid = [where[i] for i in rows]
    kind = "tokens" if tokens else "vector" if x.dim() == 2 else "image"
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
        words=words(x_np[rows], vocabulary(data)) if tokens else (),
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


def _gap_note(relevance: np.ndarray, scores: np.ndarray) -> str:
    """How much of the explained score the map's sum keeps, on these samples (the conservation gap)."""
    sums = relevance.reshape(len(relevance), -1).sum(1).astype(np.float64)
    ok = np.abs(scores) > 1e-6
    if not ok.any():
        return "Conservation: every explained score is zero here."
    share = np.median(sums[ok] / scores[ok])
    return (f"Conservation on these {int(ok.sum())} samples: the map sums to a median {share:.0%} of the explained "
            f"score (gap {1 - share:+.0%}; biases and, for AttnLRP, the softmax rule absorb the rest).")


def _method_keys(config: RelevanceConfig, canon: Any, x: torch.Tensor) -> tuple[str, ...]:
    """The configured methods, plus AttnLRP and CP-LRP where the model has attention."""
    from nnreport.relevance.lrp.transformer import attention_maps

    keys = tuple(config.methods)
    if all(k in keys for k in TRANSFORMER_METHODS) or not attention_maps(canon.model, x[:1]):
        return keys
    return keys + tuple(k for k in TRANSFORMER_METHODS if k not in keys)


def _perturbation(ctx: Context, canon: Any, x: torch.Tensor, target: torch.Tensor, maps: dict[str, np.ndarray],
                  idx: list[int], config: RelevanceConfig, low: float, high: float, rep: Any, done: int,
                  total: int, pad: int | None = None) -> PerturbationResult | None:
    import torch

    from nnreport.relevance import perturbation as P

    if not idx or config.steps < 1:
        return None
    xs, ts = x[idx], target[idx]
    region = (config.region or P.auto_region(min(xs.shape[-2:]))) if xs.dim() == 4 else 1
    ids, count = P.region_index(tuple(xs.shape[1:]), region)
    rng = ctx.rng("relevance-perturbation")
    # token ids: a deleted token becomes the pad id
    fill = P.replacement_values(xs, config.replacement, low, high, rng) if pad is None else torch.full_like(xs, pad)
    score = _score_fn(canon, ctx)
    steps, per_step = P.schedule(count, config.steps, config.min_removed)
    batch = ctx.batch_size(256)
    randoms = [P.perturbation_curve(score, xs, ts, np.stack([rng.permutation(count) for _ in idx]), ids, steps, fill,
                                    batch, per_step=per_step)
               for _ in range(max(1, config.random_orderings))]
    curves = []
    for i, (key, m) in enumerate(maps.items()):
        rep.step(done + i, total, f"relevance: region perturbation ({key})")
        morf, lerf = P.orderings(m[idx], ids, count)
        a = P.perturbation_curve(score, xs, ts, morf, ids, steps, fill, batch, per_step=per_step)
        b = P.perturbation_curve(score, xs, ts, lerf, ids, steps, fill, batch, per_step=per_step)
        curves.append(CurveResult(key, a.drop, b.drop, a.aopc, a.se, b.aopc, b.se))
    random_drop = np.mean([r.drop for r in randoms], axis=0)
    return PerturbationResult(
        region=region, steps=steps,
        replacement=config.replacement if pad is None else f"token:{pad}", samples=len(idx),
        regions_total=count, random=random_drop, random_aopc=float(np.mean([r.aopc for r in randoms])),
        random_se=float(np.mean([r.se for r in randoms])), curves=tuple(curves), per_step=per_step)


def _randomisation(ctx: Context, x: torch.Tensor, target: torch.Tensor, maps: dict[str, np.ndarray], idx: list[int],
                   config: RelevanceConfig, low: float, high: float, seed: int, side: int,
                   notes: list[str]) -> tuple[list[str], tuple[RandomisationResult, ...]]:
    from nnreport.relevance import prepare, sanity
    from nnreport.relevance.methods import explain

    layers = sanity.parameter_layers(ctx.model)
    setting = Setting(low, high, seed, side)
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
            record = RECORDS[key]
            try:
                r = explain(canon, x, target, record.method, memory_budget=ctx.memory_budget,
                            **asdict(record.options(config, setting))).relevance.detach().cpu().numpy()
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
