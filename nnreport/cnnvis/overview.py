"""Run CNNVis on a model: unit activations per class, layer and neuron clusters, patches and cluster edges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nnreport import scoped
from nnreport.cnnvis.clustering import (
    bicluster_order,
    class_profiles,
    cluster_neurons,
    representative_layer,
    segment_layers,
    similarity_matrix,
)
from nnreport.cnnvis.results import (
    ClusterEdges,
    CNNVisConfig,
    CNNVisLayer,
    CNNVisResult,
    LayerGroup,
    NeuronCluster,
)
from nnreport.errors import Skipped

if TYPE_CHECKING:
    from nnreport.context import Context

UNIT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
CKA_SAMPLES = 256  # CKA compares samples x samples Gram matrices; this many keep it cheap for deep nets


@dataclass
class Unit:
    """Per-layer statistics over the samples: the mean, the max and where the max is, per unit."""

    path: str
    module: nn.Module
    mean: list[np.ndarray]
    peak: list[np.ndarray]
    where: list[np.ndarray]
    spatial: tuple[int, ...] = ()


def _units_first(module: nn.Module, out: torch.Tensor, batch: int) -> torch.Tensor:
    """(N, units, positions): conv channels are axis 1, linear units the last axis. A layer that runs on
    the batch folded with another axis (Swin's windows: (N * windows, tokens, C)) has the fold counted
    among its positions; the caller checks that the leading axis is a multiple of N."""
    if out.shape[0] != batch:
        if isinstance(module, nn.Linear):
            return out.reshape(batch, -1, out.shape[-1]).movedim(-1, 1)
        return out.reshape(batch, out.shape[0] // batch, *out.shape[1:]).movedim(1, 2).reshape(batch, out.shape[1], -1)
    if isinstance(module, nn.Linear):
        out = out.movedim(-1, 1)
    return out.reshape(out.shape[0], out.shape[1], -1)


def collect(model: nn.Module, x: torch.Tensor, batch_size: int) -> list[Unit]:
    """Forward `x` in batches; record each conv/linear layer's first call per forward pass. Under torchrun
    the batches are shared out over the processes and their statistics gathered in batch order."""
    from nnreport import distributed

    layers: dict[int, Unit] = {}
    got: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]] = {}
    size = [0]  # the current batch's sample count, for layers that fold the batch with windows

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        path = layers[id(module)].path
        if path in got or not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[0] % size[0]:
            return
        flat = _units_first(module, out.detach(), size[0]).float()
        peak, where = flat.max(2)
        spatial = () if isinstance(module, nn.Linear) or out.shape[0] != size[0] else tuple(out.shape[2:])
        got[path] = (flat.mean(2).cpu().numpy(), peak.cpu().numpy(), where.cpu().numpy(), spatial)

    def one(start: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]]:
        got.clear()
        xb = x[start:start + batch_size]
        size[0] = len(xb)
        model(xb)
        return dict(got)

    paths = {id(m): name for name, m in model.named_modules()}
    with scoped.hooks() as h, torch.no_grad():
        for m in model.modules():
            if isinstance(m, UNIT_TYPES):
                layers[id(m)] = Unit(paths.get(id(m), "?"), m, [], [], [])
                h.forward(m, hook)
        by_path = {u.path: u for u in layers.values()}
        for batch in distributed.map_shared(one, list(range(0, len(x), batch_size))):
            for path, (mean, peak, where, spatial) in batch.items():
                unit = by_path[path]
                unit.mean.append(mean)
                unit.peak.append(peak)
                unit.where.append(where)
                unit.spatial = spatial or unit.spatial
    return [u for u in layers.values() if u.mean]


def run_cnnvis(ctx: Context, config: CNNVisConfig) -> CNNVisResult:
    return _run(ctx, config)


def _run(ctx: Context, config: CNNVisConfig) -> CNNVisResult:
    data = ctx.require_data("CNNVis describes each unit by its response to data")
    model = ctx.model
    if not any(isinstance(m, UNIT_TYPES) for m in model.modules()):
        raise Skipped("CNNVis clusters the units of conv and linear layers; this model has no nn.Conv or nn.Linear module")
    rep = ctx.stage()
    x, y = ctx.samples(config.samples)
    with scoped.eval_mode(model):
        rep.step(0, 5, "activations")
        layers = _ordered(model, x, ctx.batch_size(config.batch_size))
    if not layers:
        raise Skipped("no conv or linear layer produced an output during a forward pass")
    means = [np.concatenate(u.mean) for u in layers]
    classes, names, by_label, notes = _classes(y, data, means[-1], config, ctx)
    rep.step(1, 5, "layer similarity")
    sim = similarity_matrix([m[:CKA_SAMPLES].astype(np.float64) for m in means])
    segments = segment_layers(sim, config.layer_groups, config.layer_similarity)
    reps = [representative_layer(sim, g) for g in segments]
    rep.step(2, 5, "neuron clusters")
    seed = int(ctx.rng("cnnvis-kmeans").integers(2**31 - 1))
    profiles = [class_profiles(means[r], classes, len(names)) for r in reps]
    clusterings = [cluster_neurons(p, config.neuron_clusters, config.representatives, seed, config.n_init) for p in profiles]
    rows = [(g, c) for g, cl in enumerate(clusterings) for c in range(len(cl.members))]
    matrix = np.stack([profiles[g][list(clusterings[g].members[c])].mean(0) for g, c in rows])
    bic = bicluster_order(matrix, config.biclusters, config.bicluster_method, seed)
    rep.step(3, 5, "top-example patches")
    patches = _patches(ctx, model, x, layers, reps, clusterings, config, notes)
    rep.step(4, 5, "cluster edges")
    edges = _edges(ctx, model, x[:config.edge_samples], layers, reps, clusterings, notes)
    groups = []
    for g, (segment, r) in enumerate(zip(segments, reps, strict=True)):
        cl = clusterings[g]
        position = {rows.index((g, c)): c for c in range(len(cl.members))}
        order = tuple(position[int(i)] for i in bic.row_order if int(i) in position)
        clusters = tuple(NeuronCluster(cl.members[c], cl.representatives[c], matrix[rows.index((g, c))].astype(np.float32),
                                       patches[g][c][0], patches[g][c][1]) for c in range(len(cl.members)))
        groups.append(LayerGroup(tuple(segment), r, cl.labels, clusters, order,
                                 tuple(int(bic.row_labels[rows.index((g, c))]) for c in range(len(cl.members)))))
    group_of = {i: g for g, seg in enumerate(segments) for i in seg}
    return CNNVisResult(
        layers=tuple(CNNVisLayer(u.path, type(u.module).__name__, means[i].shape[1], group_of[i], i in reps)
                     for i, u in enumerate(layers)),
        similarity=sim.astype(np.float32), groups=tuple(groups), edges=tuple(edges), classes=names, by_label=by_label,
        class_order=tuple(int(i) for i in bic.column_order), column_bicluster=tuple(int(v) for v in bic.column_labels),
        samples=len(x), notes=tuple(notes),
    )


def _ordered(model: nn.Module, x: torch.Tensor, batch_size: int) -> list[Unit]:
    """Layers in the order of their first call (one probe pass), with their statistics over `x`."""
    order: list[int] = []

    def note(module: nn.Module, args: Any, out: Any) -> None:
        if id(module) not in order:
            order.append(id(module))

    with scoped.hooks() as h, torch.no_grad():
        for m in model.modules():
            if isinstance(m, UNIT_TYPES):
                h.forward(m, note)
        model(x[:2])
    units = {id(u.module): u for u in collect(model, x, batch_size)}
    return [units[i] for i in order if i in units]


def _classes(y: torch.Tensor | None, data: Any, last: np.ndarray, config: CNNVisConfig,
             ctx: Context) -> tuple[np.ndarray, tuple[str, ...], bool, list[str]]:
    """Class ids per sample: the labels, or k-means clusters of the last layer's activations."""
    if y is not None and y.dim() == 1 and not torch.is_floating_point(y):
        labels = y.cpu().numpy().astype(np.int64)
        n = max(int(labels.max()) + 1, data.num_classes or 0)
        names = ctx.class_names or data.class_names
        names = tuple(names) if names is not None and len(names) == n else tuple(str(i) for i in range(n))
        return labels, names, True, []
    from sklearn.cluster import KMeans

    k = max(2, min(config.data_clusters, len(last) // 4))
    seed = int(ctx.rng("cnnvis-data").integers(2**31 - 1))
    raw = KMeans(n_clusters=k, n_init=config.n_init, random_state=seed).fit_predict(last.astype(np.float64))
    names = tuple(f"cluster {i + 1}" for i in range(k))
    return raw.astype(np.int64), names, False, [f"the data has no labels: the columns are {k} k-means clusters of the last layer's activations"]


def _patches(ctx: Context, model: nn.Module, x: torch.Tensor, layers: list[Unit], reps: list[int], clusterings: list[Any],
             config: CNNVisConfig, notes: list[str]) -> list[list[tuple[np.ndarray | None, tuple[tuple[int, int], ...]]]]:
    """For each representative neuron, its top examples cropped to the input region that drives it."""
    data = ctx.data
    images = data is not None and data.kind == "image" and x.dim() == 4
    if not images:
        notes.append("the data are not images, so the neuron clusters show no example patches")
    sources = []
    for r, cl in zip(reps, clusterings, strict=True):
        peak = np.concatenate(layers[r].peak)
        sources.append([[(u, int(s)) for u in members for s in np.argsort(-peak[:, u], kind="stable")[:config.examples]]
                        for members in cl.representatives])
    if not images:
        return [[(None, tuple(src)) for src in per_layer] for per_layer in sources]
    rows = [(g, u, s) for g, per_layer in enumerate(sources) for src in per_layer for u, s in src]
    boxes = _boxes(model, x, [layers[r] for r in reps], rows, ctx.batch_size(len(rows), backward=True))
    display = data.to_display(x[[s for _, _, s in rows]].cpu().numpy())  # type: ignore[union-attr]
    tiles = iter(_crop(display[k], box, config.patch) for k, box in enumerate(boxes))
    return [[(np.stack([next(tiles) for _ in src]), tuple(src)) for src in per_layer] for per_layer in sources]


def _boxes(model: nn.Module, x: torch.Tensor, units: list[Unit], rows: list[tuple[int, int, int]],
           chunk: int) -> list[tuple[int, int, int, int]]:
    """The input box (top, bottom, left, right) that each (layer, unit, sample) peak depends on: where the
    gradient of the unit's peak activation is non-zero. Batched passes of at most `chunk` rows (the memory
    budget's forward + backward size) for all layers at once (each row of a batch feeds only its own layer's
    objective; eval-mode samples are independent)."""
    h, w = x.shape[2], x.shape[3]
    spatial = [g for g, unit in enumerate(units) if not isinstance(unit.module, nn.Linear) and len(unit.spatial) == 2]
    picked = [k for k, (g, _, _) in enumerate(rows) if g in spatial]
    boxes = [(0, h, 0, w)] * len(rows)
    where = {g: np.concatenate(units[g].where) for g in spatial}
    for start in range(0, len(picked), max(1, chunk)):
        part = picked[start:start + max(1, chunk)]
        mass = _gradient_mass(model, x, units, rows, part, spatial, where)
        for i, k in enumerate(part):
            top = mass[i].max()
            ys, xs = np.nonzero(mass[i] > top * 1e-6) if top > 0 else ((), ())
            if len(ys):
                boxes[k] = (int(min(ys)), int(max(ys)) + 1, int(min(xs)), int(max(xs)) + 1)
    return boxes


def _gradient_mass(model: nn.Module, x: torch.Tensor, units: list[Unit], rows: list[tuple[int, int, int]],
                   part: list[int], spatial: list[int], where: dict[int, np.ndarray]) -> np.ndarray:
    """|d peak / d input| summed over channels, (len(part), H, W), for one batch of rows."""
    batch = x[[rows[k][2] for k in part]].clone().requires_grad_(True)
    captured: dict[int, torch.Tensor] = {}
    index = {id(units[g].module): g for g in spatial}

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        captured.setdefault(index[id(module)], out)

    with scoped.hooks() as hs, scoped.frozen(model), torch.enable_grad():
        for g in {rows[k][0] for k in part}:
            hs.forward(units[g].module, hook)
        model(batch)
        picks = []
        for i, k in enumerate(part):
            g, u, s = rows[k]
            flat = captured[g].reshape(len(part), captured[g].shape[1], -1)
            picks.append(flat[i, u, int(where[g][s, u])])
        (grad,) = torch.autograd.grad(torch.stack(picks).sum(), batch)
    return grad.abs().sum(1).cpu().numpy()


def _crop(image: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Crop (C, H, W) in [0, 1] to the box and resize (nearest) to size x size RGB uint8."""
    top, bottom, left, right = box
    patch = image[:, top:bottom, left:right]
    ri = np.minimum((np.arange(size) * patch.shape[1] / size).astype(int), patch.shape[1] - 1)
    ci = np.minimum((np.arange(size) * patch.shape[2] / size).astype(int), patch.shape[2] - 1)
    patch = patch[:, ri][:, :, ci]
    rgb = np.repeat(patch, 3, axis=0) if patch.shape[0] == 1 else patch[:3]
    return (np.clip(rgb.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)


def _edges(ctx: Context, model: nn.Module, x: torch.Tensor, layers: list[Unit], reps: list[int], clusterings: list[Any],
           notes: list[str]) -> list[ClusterEdges]:
    """Effective weights between the clusters of consecutive representative layers: one forward pass in
    which each representative layer's output is replaced by a copy that gradients stop at, then for each
    target cluster the gradient of its units' mean activation with respect to the previous layer's units."""
    if len(reps) < 2:
        return []
    modules = {id(layers[r].module): g for g, r in enumerate(reps)}
    outputs: dict[int, torch.Tensor] = {}
    leaves: dict[int, torch.Tensor] = {}

    def hook(module: nn.Module, args: Any, out: Any) -> Any:
        g = modules[id(module)]
        if g in outputs or not isinstance(out, torch.Tensor):
            return None
        outputs[g] = out
        leaves[g] = out.detach().requires_grad_(True)
        return leaves[g].clone()  # a non-leaf, so that in-place activations downstream stay legal

    # Forward + backward in batches within the memory budget; the per-batch means are weighted by batch size.
    chunk = max(1, ctx.batch_size(len(x), backward=True))
    totals: list[list[np.ndarray] | None] = [[] for _ in range(len(reps) - 1)]
    with scoped.hooks() as hs, scoped.frozen(model), torch.enable_grad():
        for r in reps:
            hs.forward(layers[r].module, hook)
        for start in range(0, len(x), chunk):
            xb = x[start:start + chunk]
            model(xb)
            for g in range(len(reps) - 1):
                a, b = layers[reps[g]], layers[reps[g + 1]]
                sens = _sensitivity(outputs.get(g + 1), leaves.get(g), a, b, clusterings[g + 1].members, len(xb))
                before = totals[g]
                if sens is None or before is None:
                    totals[g] = None
                    continue
                part = [v * (len(xb) / len(x)) for v in sens]
                totals[g] = part if not before else [t + v for t, v in zip(before, part, strict=True)]
            outputs.clear()  # the hook keeps each layer's first call: the next batch must find them empty
            leaves.clear()
    result = []
    for g, sens_total in enumerate(totals):
        a, b = layers[reps[g]], layers[reps[g + 1]]
        if not sens_total:
            notes.append(f"{b.path} does not depend on {a.path}: no edges drawn between them")
            weights = np.zeros((len(clusterings[g].members), len(clusterings[g + 1].members)), np.float32)
        else:
            weights = np.array([[sens_total[j][list(members)].mean() for j in range(len(sens_total))]
                                for members in clusterings[g].members], np.float32)
        result.append(ClusterEdges(g, g + 1, weights))
    return result


def _sensitivity(b_out: torch.Tensor | None, a_leaf: torch.Tensor | None, a: Unit, b: Unit,
                 targets: list[tuple[int, ...]], n: int) -> list[np.ndarray] | None:
    """For each target cluster: the mean over samples of d(mean of its units' mean activation)/d(shift of
    each unit of layer a)."""
    if b_out is None or a_leaf is None or not b_out.requires_grad:
        return None
    bmean = _units_first(b.module, b_out, n).mean(2)
    result = []
    for members in targets:
        objective = bmean[:, list(members)].mean(1).mean(0)
        (grad,) = torch.autograd.grad(objective, a_leaf, retain_graph=True, allow_unused=True)
        if grad is None:
            return None
        result.append(_units_first(a.module, grad, n).sum(2).sum(0).cpu().numpy().astype(np.float64))
    return result
