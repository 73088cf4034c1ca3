"""The `facets` analysis: multifaceted visualisation of output classes (Nguyen, Yosinski & Clune 2016).

Per class: embed its training inputs by a late layer, reduce (PCA, then t-SNE), cluster with k-means;
per facet show the members nearest its centre, its mean image, and an optimisation of the class score
started from that mean image (all facets of all classes in one batch).
"""

from __future__ import annotations

import numpy as np
import torch

from nnreport import distributed, scoped
from nnreport.context import Context
from nnreport.datasets import Inputs
from nnreport.errors import Skipped
from nnreport.neurons.activations import to_display
from nnreport.neurons.featvis import input_space
from nnreport.neurons.layers import NotReached, capture, display_path, module_map
from nnreport.neurons.maximise import Settings, maximise
from nnreport.neurons.regularisers import HYPER_SETS
from nnreport.neurons.results import ActivationsResult, ClassFacets, Facet, FacetsConfig, FacetsResult
from nnreport.streaming import subset


def _layers(ctx: Context, acts: ActivationsResult, config: FacetsConfig, classes: int) -> tuple[str, str]:
    out = acts.layers[-1]
    # (classes,) or a conv head's pooled (classes, 1, 1): each unit's value is then its class score.
    if out.shape[0] != classes or any(d != 1 for d in out.shape[1:]):
        raise Skipped(f"facets explain output classes, but the last layer shown ({display_path(out.path)}, "
                      f"shape {out.shape}) is not the {classes}-class output")
    if config.layer:
        if config.layer not in dict(ctx.model.named_modules()):
            raise ValueError(f"[analyses.facets] layer: no module {config.layer!r} in the model")
        return config.layer, out.path
    if len(acts.layers) < 2:
        raise Skipped("facets need a late layer before the output to embed by; name one with [analyses.facets] layer")
    return acts.layers[-2].path, out.path


def embed(ctx: Context, path: str, x: Inputs, batch: int = 256) -> np.ndarray:
    module = module_map(ctx.model, [path])
    batch = ctx.batch_size(batch)
    parts = []
    with torch.no_grad(), scoped.eval_mode(ctx.model):
        for s in range(0, len(x), batch):
            xb = ctx.tensor(x[s:s + batch])
            parts.append(capture(ctx.model, module, (xb,))[path].flatten(1).double().cpu().numpy())
    return np.concatenate(parts)


def cluster(features: np.ndarray, k: int, perplexity: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA (to at most 50 dimensions), t-SNE to 2-D, then k-means: (points, labels, centres)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # a few hundred points: OpenMP threads only add hand-off costs
        n = len(features)
        dims = max(1, min(50, n - 1, features.shape[1]))
        reduced = PCA(dims, random_state=seed).fit_transform(features)
        points = TSNE(2, perplexity=min(perplexity, (n - 1) / 3), init="pca", random_state=seed,
                      max_iter=300).fit_transform(reduced)
        km = KMeans(k, n_init=4, random_state=seed).fit(points)
    return points.astype(np.float32), km.labels_.astype(np.int64), km.cluster_centers_



def run(ctx: Context, config: FacetsConfig) -> FacetsResult:
    try:
        return _run(ctx, config)
    except NotReached as exc:
        raise Skipped(f"layer {exc}; facets need a layer every input reaches") from None


def _run(ctx: Context, config: FacetsConfig) -> FacetsResult:
    acts: ActivationsResult = ctx.results["activations"]
    data = ctx.require_labels("facets cluster each class's training inputs")
    if acts.input_kind != "image":
        raise Skipped("facets are drawn as images; this model's inputs are not images")
    classes = data.num_classes or 0
    layer, output = _layers(ctx, acts, config, classes)
    names = data.class_names or tuple(str(i) for i in range(classes))
    seed = int(ctx.rng("facets").integers(2**31 - 1))
    rep = ctx.stage()
    shown = min(classes, config.max_classes)
    found: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]] = []
    notes = []

    def one_class(c: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]] | str:
        """Embed, t-SNE and cluster one class (or say why it has no facets)."""
        rep.step(c, shown + 1, f"class {names[c]}")
        idx = np.flatnonzero(data.y_train == c)[: config.per_class]
        k = min(config.k, 10, len(idx) // 5)
        if k < 1:
            return f"class {names[c]} has too few training inputs ({len(idx)}) for facets"
        points, labels, centres = cluster(embed(ctx, layer, subset(data.x_train, idx)), k, config.perplexity, seed)
        return c, idx, points, labels, [_ordered(idx, points, labels, centres, f) for f in range(k)]

    # Under torchrun the classes are shared out over the processes (t-SNE dominates the time).
    for item in distributed.map_shared(one_class, list(range(shown))):
        if isinstance(item, str):
            notes.append(item)
        else:
            found.append(item)
    rep.step(shown, shown + 1, "optimising from the mean images")
    means = [data.x_train[m].mean(0) for _, _, _, _, ms in found for m in ms]
    units = [c for c, _, _, _, ms in found for _ in ms]
    opt = None
    if means:
        space = input_space(ctx)
        opt = maximise(ctx.model, output, module_map(ctx.model, [output])[output], units, acts.input_shape, space,
                       Settings(method="yosinski", hyper=HYPER_SETS[config.hyper], steps=config.steps, lr=config.lr),
                       ctx.generator("facets"), init=ctx.tensor(np.stack(means)).float())
    out, j = [], 0
    for c, _idx, points, labels, ordered in found:
        facets = []
        for members in ordered:
            near = members[: config.nearest]
            # `ordered` is a non-empty `ms` above, so `means` was non-empty and `opt` was computed.
            assert opt is not None
            facets.append(Facet(
                size=len(members), members=members.astype(np.int32), nearest=near,
                nearest_images=_bytes(to_display(ctx, data.x_train[near])),
                mean_image=_bytes(to_display(ctx, data.x_train[members].mean(0, keepdims=True))[0]),
                optimised=opt.display[j].astype(np.float16), start_value=float(opt.trace[j, 0]), end_value=float(opt.trace[j, -1])))
            j += 1
        out.append(ClassFacets(c, names[c], points, labels, tuple(facets)))
    rep.step(shown + 1, shown + 1)
    if shown < classes:
        notes.append(f"Facets for the first {shown} of {classes} classes (max_classes).")
    return FacetsResult(layer, output, tuple(out), " ".join(notes))


def _bytes(display: np.ndarray) -> np.ndarray:
    return (np.clip(display, 0, 1) * 255).round().astype(np.uint8)


def _ordered(idx: np.ndarray, points: np.ndarray, labels: np.ndarray, centres: np.ndarray, f: int) -> np.ndarray:
    """The facet's members (indices into the split), nearest its centre first."""
    mine = np.flatnonzero(labels == f)
    dist = np.linalg.norm(points[mine] - centres[f], axis=1)
    return idx[mine[np.lexsort((mine, dist))]]
