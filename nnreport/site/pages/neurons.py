"""neurons.html (per layer: activation grids and a gallery of units) and units.html (one section per unit)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from nnreport.neurons.results import (
    ActivationsResult,
    ClassFacets,
    FacetsResult,
    FeatvisResult,
    LayerActivations,
    LayerFeatvis,
)
from nnreport.site import images
from nnreport.site.pages import page

if TYPE_CHECKING:
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets, ChartRef, ImageRef

ANALYSES = ("activations", "featvis", "facets")
GALLERY_UNITS = 16  # units per layer in the neurons.html gallery; units.html lists every analysed unit
OUTSIDE = np.array([200, 200, 200], dtype=np.uint8)  # crop pixels beyond the input's edge (padding)
DEAD, SATURATED = np.array([215, 48, 39], np.uint8), np.array([244, 165, 30], np.uint8)


@dataclass(frozen=True)
class UnitCard:
    layer: str  # layer id, e.g. "L2"
    index: int
    name: str  # e.g. "unit 3" or the class name for output units
    optimised: ImageRef | None
    top: ImageRef | None
    top_values: tuple[float, ...]
    top_labels: tuple[str, ...]
    dead: bool
    saturated: bool
    stats: tuple[tuple[str, str], ...]  # (label, value) rows for the unit page
    trace: tuple[float, float] | None  # activation before and after optimisation
    facets: ClassFacetsView | None


@dataclass(frozen=True)
class FacetView:
    size: int
    mean: ImageRef
    optimised: ImageRef
    nearest: ImageRef
    start_value: float
    end_value: float


@dataclass(frozen=True)
class ClassFacetsView:
    name: str
    chart: ChartRef
    facets: tuple[FacetView, ...]


@dataclass(frozen=True)
class LayerView:
    id: str
    path: str
    type: str
    shape: tuple[int, ...]
    units: int
    shown: int
    gallery: int
    receptive: str
    flag_basis: str
    dead: int
    saturated: int
    grids: tuple[tuple[str, ImageRef], ...]  # (sample label, activation grid)
    cards: tuple[UnitCard, ...]


@dataclass(frozen=True)
class NeuronsPage:
    layers: tuple[LayerView, ...]
    records: tuple[AnalysisRecord, ...]
    normalise: str
    examples: str
    top_k: int
    method: str
    notes: tuple[str, ...]
    gallery_units: int
    input_kind: str
    facets_layer: str
    inputs: tuple[tuple[str, ImageRef], ...]  # the sample inputs of the activation grids
    features: str  # for vector inputs: the features the bars stand for, left to right


def _png(assets: Assets, name: str, rgb: np.ndarray, alt: str, target: int) -> ImageRef:
    """Store pixels at their own resolution (small files) and show them enlarged so that their shorter side
    is about `target` px (the templates draw images pixelated)."""
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        rgb = rgb[..., 0]  # grey pixels: a one-channel PNG is a third the size
    ref = assets.png(name, rgb, alt)
    f = max(1, round(target / min(rgb.shape[:2])))
    return replace(ref, width=ref.width * f, height=ref.height * f)


def _picture(img: np.ndarray) -> np.ndarray:
    """A (C, H, W) display image in [0, 1] (NaN: outside the input) as RGB."""
    img = np.asarray(img, dtype=np.float32)
    nan = np.isnan(img).any(axis=0)
    rgb = images.to_rgb(np.nan_to_num(img, nan=0.0))
    rgb[nan] = OUTSIDE
    return rgb


def _stretch(img: np.ndarray) -> np.ndarray:
    lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def bars(vector: np.ndarray, bound: float | None = None, height: int = 40, width: int = 6) -> np.ndarray:
    """A bar chart of a feature vector as RGB pixels: positive bars up (red), negative down (blue)."""
    v = np.asarray(vector, dtype=np.float64).ravel()
    m = bound or float(np.abs(v).max()) or 1.0
    half = height // 2
    out = np.full((height + 1, len(v) * width, 3), 255, dtype=np.uint8)
    out[half] = 120
    for i, x in enumerate(v):
        n = int(round(min(abs(x) / m, 1.0) * half))
        rows = slice(half - n, half) if x > 0 else slice(half + 1, half + 1 + n)
        out[rows, i * width:(i + 1) * width - 1] = (178, 24, 43) if x > 0 else (33, 102, 172)
    return out


def _frame(rgb: np.ndarray, colour: np.ndarray | None) -> np.ndarray:
    """A one-pixel frame around a tile: the flag colour, or white."""
    out = np.empty((rgb.shape[0] + 2, rgb.shape[1] + 2, 3), dtype=np.uint8)
    out[:] = colour if colour is not None else 255
    out[1:-1, 1:-1] = rgb
    return out


def _grid(layer: LayerActivations, sample: int, normalise: str) -> np.ndarray:
    maps = layer.maps[sample]
    flags = [DEAD if d else SATURATED if s else None for d, s in zip(layer.dead, layer.saturated, strict=True)]
    if maps.ndim == 1:  # a vector layer: one strip of cells
        lo, hi = (float(layer.maps.min()), float(layer.maps.max()))
        cells = [_frame(images.upscale(images.colourize(np.array([[v]]), vmin=lo, vmax=hi), 4), f)
                 for v, f in zip(maps, flags, strict=True)]
        return images.tile(cells, columns=min(len(cells), 32), pad=0)
    lo, hi = float(layer.maps.min()), float(layer.maps.max())
    tiles = []
    for m, f in zip(maps, flags, strict=True):
        rgb = images.colourize(m, vmin=lo, vmax=hi) if normalise == "layer" else images.colourize(m)
        tiles.append(_frame(rgb, f))
    return images.tile(tiles, columns=min(len(tiles), 16), pad=0)


def _label(names: tuple[str, ...] | None, y: int) -> str:
    return names[y] if names and 0 <= y < len(names) else str(y)


def _top_image(acts: ActivationsResult, layer: LayerActivations, u: int, assets: Assets, lid: str) -> ImageRef | None:
    top = layer.top
    if top is None:
        return None
    if acts.input_kind == "image":
        tiles = [_picture(c) for c in top.crops[u]]
        what = "examples (receptive-field crops)" if layer.receptive else "examples"
    else:
        bound = float(np.abs(top.crops).max()) or 1.0
        tiles = [bars(c, bound) for c in top.crops[u]]
        what = "examples (feature bars)"
    grid = images.tile(tiles, columns=3, pad=1)
    return _png(assets, f"{lid}-u{u}-top", grid, f"Top {len(tiles)} {what}: {layer.path} unit {u}", 96)


def _opt_image(fv: FeatvisResult | None, lf: LayerFeatvis | None, u: int, path: str, assets: Assets,
               lid: str) -> ImageRef | None:
    if fv is None or lf is None or u >= lf.units:
        return None
    img = lf.images[u]
    if fv.input_kind == "image":
        rgb = _picture(_stretch(img))
    else:
        rgb = bars(img, float(np.abs(lf.images).max()) or 1.0, height=64, width=10)
    return _png(assets, f"{lid}-u{u}-opt", rgb, f"Optimised input: {path} unit {u}", 64)


def _stats(layer: LayerActivations, u: int) -> tuple[tuple[str, str], ...]:
    s = layer.stats
    if s is None:
        return ()
    f = "{:.3g}".format
    return (("mean", f(s.mean[u])), ("std", f(s.std[u])), ("max", f(s.maximum[u])), ("min", f(s.minimum[u])),
            ("active on", f"{100 * s.frac_active[u]:.1f} % of inputs"),
            ("active everywhere on", f"{100 * s.frac_always_on[u]:.1f} % of inputs"))


def _facets_view(cf: ClassFacets, assets: Assets) -> ClassFacetsView:
    import altair as alt

    rows = [{"x": round(float(p[0]), 1), "y": round(float(p[1]), 1), "facet": int(c) + 1}
            for p, c in zip(cf.points, cf.cluster, strict=True)]
    chart = alt.Chart(alt.Data(values=rows)).mark_circle(size=30).encode(
        x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None), color=alt.Color("facet:N", title="facet"),
        tooltip=[alt.Tooltip("facet:N")]).properties(width=220, height=180, title=f"t-SNE of class {cf.name}")
    ref = assets.chart(chart, label=f"t-SNE embedding of class {cf.name}, coloured by facet",
                       caption="Each point is a training input of this class; colours are k-means facets.")
    views = []
    for i, f in enumerate(cf.facets):
        key = f"c{cf.index}-f{i}"
        near = images.tile([_picture(x / 255.0) for x in f.nearest_images], columns=len(f.nearest_images), pad=1)
        views.append(FacetView(
            f.size, _png(assets, f"{key}-mean", _picture(f.mean_image / 255.0), f"Mean image of facet {i + 1} of {cf.name}", 48),
            _png(assets, f"{key}-opt", _picture(_stretch(f.optimised)), f"Optimised from the mean of facet {i + 1}", 48),
            _png(assets, f"{key}-near", near, f"Inputs nearest the centre of facet {i + 1} of {cf.name}", 48),
            f.start_value, f.end_value))
    return ClassFacetsView(cf.name, ref, tuple(views))


def _layers(insp: Inspection, assets: Assets, gallery: bool) -> tuple[LayerView, ...]:
    """Per layer: for the gallery page, activation grids and the first GALLERY_UNITS cards; for the units
    page, every card with its facets (each page draws only what it shows)."""
    acts = insp.require("activations", ActivationsResult)
    fv = insp.get("featvis", FeatvisResult)
    fc = insp.get("facets", FacetsResult)
    by_path = {lf.path: lf for lf in fv.layers} if fv is not None else {}
    facets = {c.index: c for c in fc.classes} if fc is not None else {}
    out = []
    for i, layer in enumerate(acts.layers):
        lid = f"L{i}"
        is_output = i == len(acts.layers) - 1 and fc is not None and fc.output == layer.path
        grids = tuple((label, _png(assets, f"{lid}-grid-{s}", _grid(layer, s, acts.normalise),
                                   f"Activations of {layer.path} for {label}", 36))
                      for s, label in enumerate(acts.sample_labels)) if gallery else ()
        cards = []
        for u in range(min(GALLERY_UNITS, layer.shown) if gallery else layer.shown):
            top = layer.top
            name = f"unit {u}"
            if is_output or (i == len(acts.layers) - 1 and acts.class_names and layer.units == len(acts.class_names)):
                name = f"unit {u}: class {_label(acts.class_names, u)}"
            lf = by_path.get(layer.path)
            cards.append(UnitCard(
                lid, u, name, _opt_image(fv, lf, u, layer.path, assets, lid), _top_image(acts, layer, u, assets, lid),
                tuple(float(v) for v in top.values[u]) if top is not None else (),
                tuple(_label(acts.class_names, int(y)) for y in top.labels[u]) if top is not None and top.labels is not None else (),
                bool(layer.dead[u]), bool(layer.saturated[u]), _stats(layer, u),
                (float(lf.trace[u, 0]), float(lf.trace[u, -1])) if lf is not None and u < lf.units else None,
                _facets_view(facets[u], assets) if is_output and u in facets and not gallery else None))
        rf = "; ".join(f"{s} px (stride {j})" for s, j, _ in layer.receptive) if layer.receptive else (
            "the whole input" if acts.input_kind == "image" else "–")
        out.append(LayerView(lid, layer.path, layer.type, layer.shape, layer.units, layer.shown,
                             min(GALLERY_UNITS, layer.shown), rf, layer.flag_basis, int(layer.dead.sum()),
                             int(layer.saturated.sum()), grids, tuple(cards)))
    return tuple(out)


def _page(insp: Inspection, assets: Assets, gallery: bool) -> NeuronsPage:
    acts = insp.require("activations", ActivationsResult)
    fv = insp.get("featvis", FeatvisResult)
    fc = insp.get("facets", FacetsResult)
    records = tuple(r for r in (insp.record(a) for a in ANALYSES) if r is not None)
    method = ""
    if fv is not None:
        method = (f"gradient ascent in input space with Yosinski et al.'s regulariser set {fv.hyper}"
                  if fv.method == "yosinski" else "a decorrelated Fourier parameterisation with jitter, scale and rotation")
        method += f", {fv.steps} steps, all units of a layer in one batch"
    examples = (f"{acts.examples_seen:,} inputs of the {acts.examples_split} split" if acts.examples_split else "")
    top_k = next((layer.top.values.shape[1] for layer in acts.layers if layer.top is not None), 0)
    notes = tuple(n for n in (acts.note, fv.note if fv else "", _crop_note(fv), fc.note if fc else "") if n)
    return NeuronsPage(_layers(insp, assets, gallery), records, acts.normalise, examples, top_k, method, notes, GALLERY_UNITS,
                       acts.input_kind, fc.layer if fc is not None else "", _inputs(acts, assets) if gallery else (),
                       ", ".join(acts.feature_names or ()) if acts.input_kind == "vector" else "")


def _crop_note(fv: FeatvisResult | None) -> str:
    """Which layers' optimised inputs show only a unit's receptive field (plus a margin), and how large."""
    cropped = [lf for lf in fv.layers if lf.window] if fv is not None else []
    if not cropped:
        return ""
    sizes = "; ".join(f"{lf.path}: field {'×'.join(map(str, lf.field))} px, shown "
                      f"{'×'.join(str(b - a) for a, b in lf.window)} px" for lf in cropped)
    return ("Units whose receptive field is smaller than the input were optimised at the centre position only and "
            f"are shown as their field plus a margin: {sizes}.")


def _inputs(acts: ActivationsResult, assets: Assets) -> tuple[tuple[str, ImageRef], ...]:
    out = []
    for s, label in enumerate(acts.sample_labels):
        x = acts.samples[s]
        rgb = _picture(x) if acts.input_kind == "image" else bars(x, float(np.abs(acts.samples).max()) or 1.0)
        out.append((label, _png(assets, f"input-{s}", rgb, f"Sample input: {label}", 64)))
    return tuple(out)


def _markdown(insp: Inspection) -> str:
    acts = insp.get("activations", ActivationsResult)
    if acts is None:
        return ""
    dead = sum(int(layer.dead.sum()) for layer in acts.layers)
    sat = sum(int(layer.saturated.sum()) for layer in acts.layers)
    units = sum(layer.shown for layer in acts.layers)
    line = f"**Neurons**: {units} units in {len(acts.layers)} layers; {dead} dead, {sat} saturated."
    fv = insp.get("featvis", FeatvisResult)
    if fv is not None:
        rose = np.concatenate([(lf.trace[:, -1] > lf.trace[:, 0]) for lf in fv.layers])
        line += f" Activation maximisation raised {rose.mean():.0%} of the units' activations."
    return line


@page("neurons", title="Neurons", analyses=ANALYSES, order=40, markdown=_markdown)
def neurons_page(insp: Inspection, assets: Assets) -> NeuronsPage:
    return _page(insp, assets, gallery=True)


@page("units", title="Units", analyses=ANALYSES, order=41)
def units_page(insp: Inspection, assets: Assets) -> NeuronsPage:
    # The same context: its images are the neurons page's files (same names, same bytes), shown larger here.
    return _page(insp, replace(assets, page="neurons"), gallery=False)

