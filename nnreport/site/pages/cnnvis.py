"""cnnvis.html: layer groups, neuron clusters as packed patch rectangles, the cluster x class matrix and
bundled edges between the clusters of consecutive representative layers, all in one SVG."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnreport.cnnvis.results import CNNVisResult, LayerGroup
from nnreport.site import images
from nnreport.site.pages import page
from nnreport.site.themes import Palette

if TYPE_CHECKING:
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets, ImageRef

TILE = 24  # drawn size of one patch
CELL = 13  # one cell of the cluster x class matrix
GAP_Y = 16  # between clusters
BLOCK_GAP = 10  # extra space between biclusters (rows) and half of it between column biclusters
EDGE_GAP = 120  # between a column's matrix and the next column's rectangles
HEADER = 78  # room for the layer strip and the group headers
EDGE_SHARE = 0.2  # edges weaker than this share of the strongest in their layer pair are left out
BUNDLE = 0.6  # how far edges are pulled towards the middle of the gap (0 = straight, 1 = one point)


@dataclass(frozen=True)
class StripBox:
    x: float
    width: float
    colour: str
    representative: bool
    title: str


@dataclass(frozen=True)
class Cell:
    x: float
    y: float
    colour: str
    title: str


@dataclass(frozen=True)
class ClusterBox:
    x: float
    y: float
    width: float
    height: float
    image: ImageRef | None
    label: str
    title: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class ClassLabel:
    x: float
    y: float
    text: str
    bicluster: int


@dataclass(frozen=True)
class GroupColumn:
    x: float
    title: str
    subtitle: str
    colour: str
    labels: tuple[ClassLabel, ...]
    clusters: tuple[ClusterBox, ...]


@dataclass(frozen=True)
class EdgePath:
    d: str
    colour: str
    width: float
    opacity: float
    title: str


@dataclass(frozen=True)
class CNNVisPage:
    record: AnalysisRecord | None
    width: int
    height: int
    strip: tuple[StripBox, ...]
    columns: tuple[GroupColumn, ...]
    edges: tuple[EdgePath, ...]
    similarity: ImageRef
    layer_names: tuple[str, ...]
    classes_word: str
    samples: int
    scale: str
    notes: tuple[str, ...]


def _hex(rgb: np.ndarray) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb))


def _cluster_image(patches: np.ndarray | None, assets: Assets, name: str, alt: str) -> tuple[ImageRef | None, int, int]:
    """Pack a cluster's patches into a near-square grid; returns the image and its drawn size."""
    if patches is None or not len(patches):
        return None, 3 * TILE, 2 * TILE
    n = len(patches)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = images.tile(list(patches), cols, pad=1, background=255)
    ref = assets.png(name, sheet, alt)
    return ref, cols * TILE, rows * TILE


def _cell_xs(r: CNNVisResult) -> np.ndarray:
    """x of every matrix column (in bicluster order), with a gap between column biclusters.

    One pass over the classes: recounting the gaps per cell made the page quadratic in the classes
    (100,000 class names took over 15 minutes)."""
    blocks = np.asarray([r.column_bicluster[c] for c in r.class_order])
    if not len(blocks):
        return np.zeros(0)
    gaps = np.concatenate([[0], np.cumsum(blocks[1:] != blocks[:-1])])
    return np.arange(len(blocks)) * CELL + BLOCK_GAP / 2 * gaps


def _top(r: CNNVisResult) -> float:
    """Where the clusters start: below the headers and the class labels (drawn at 60 degrees, cut at 14 characters)."""
    longest = max((min(len(c), 14) for c in r.classes), default=1)
    return HEADER + 12 + longest * 5.2


def _column(r: CNNVisResult, g: int, group: LayerGroup, x: float, assets: Assets,
            vmax: float) -> tuple[GroupColumn, dict[int, tuple[float, float, float]], float]:
    top = _top(r)
    rep = r.layers[group.representative]
    members = [r.layers[i].name for i in group.layers]
    span = members[0] if len(members) == 1 else f"{members[0]} … {members[-1]} ({len(members)} layers)"
    y = top
    boxes: list[ClusterBox] = []
    lefts: dict[int, tuple[float, float]] = {}  # cluster -> (left x, centre y)
    previous = None
    widest = 0.0
    xs = _cell_xs(r)
    order = np.asarray(r.class_order, dtype=np.int64)
    for c in group.order:
        cluster = group.clusters[c]
        if previous is not None and group.row_bicluster[c] != previous:
            y += BLOCK_GAP  # a new row bicluster
        previous = group.row_bicluster[c]
        ref, w, h = _cluster_image(cluster.patches, assets, f"g{g}-c{c}",
                                   f"Top-example patches of neuron cluster {c + 1} of {rep.name}")
        values = np.asarray(cluster.profile, dtype=np.float64)[order]
        colours = (images.colourize(values[None, :], assets.palette.diverging, -vmax, vmax)[0] if len(order)
                   else np.zeros((0, 3)))
        cells = [Cell(float(xs[k]), 0, _hex(colours[k]), f"{r.classes[col]}: {float(values[k]):+.2f}")
                 for k, col in enumerate(r.class_order)]
        units = len(cluster.units)
        label = f"{units} unit{'s' if units != 1 else ''}"
        title = (f"cluster {c + 1} of {rep.name}: units {', '.join(str(u) for u in cluster.units[:24])}"
                 f"{' …' if units > 24 else ''}; representatives {', '.join(str(u) for u in cluster.representatives)}")
        boxes.append(ClusterBox(x, y, w, h, ref, label, title, tuple(cells)))
        widest = max(widest, w)
        lefts[c] = (x, y + h / 2)
        y += h + GAP_Y + 12
    strip_x = x + widest + 8
    # every matrix strip starts at the same x in a column, so the class columns line up
    boxes = [ClusterBox(b.x, b.y, b.width, b.height, b.image, b.label, b.title,
                        tuple(Cell(strip_x + cell.x, b.y + (min(b.height, 2 * CELL) - CELL) / 2, cell.colour, cell.title)
                              for cell in b.cells)) for b in boxes]
    labels = tuple(ClassLabel(strip_x + float(xs[k]) + CELL / 2, top - 8, r.classes[col], r.column_bicluster[col])
                   for k, col in enumerate(r.class_order))
    right = strip_x + (float(xs[-1]) if len(xs) else -CELL) + CELL
    anchors = {c: (left, cy, right) for c, (left, cy) in lefts.items()}
    colours = assets.palette.categorical
    column = GroupColumn(x, rep.name, span, colours[g % len(colours)], labels, tuple(boxes))
    return column, anchors, y


def _edges(r: CNNVisResult, anchors: list[dict[int, tuple[float, float, float]]], palette: Palette) -> list[EdgePath]:
    paths = []
    for e in r.edges:
        w = e.weights
        biggest = float(np.abs(w).max()) if w.size else 0.0
        if biggest <= 0:
            continue
        src, dst = anchors[e.source], anchors[e.target]
        ys = [cy for _, cy, _ in src.values()] + [cy for _, cy, _ in dst.values()]
        middle = float(np.mean(ys))
        for a in range(w.shape[0]):
            for b in range(w.shape[1]):
                share = abs(float(w[a, b])) / biggest
                if share < EDGE_SHARE:
                    continue
                _, y1, x1 = src[a]
                x2, y2, _ = dst[b]
                gap = x2 - x1
                c1 = (x1 + gap * 0.45, y1 + (middle - y1) * BUNDLE)
                c2 = (x2 - gap * 0.45, y2 + (middle - y2) * BUNDLE)
                d = f"M{x1:.1f},{y1:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {x2:.1f},{y2:.1f}"
                colour = palette.positive if w[a, b] > 0 else palette.negative
                paths.append(EdgePath(d, colour, round(0.6 + 5 * share, 2), round(0.25 + 0.6 * share, 2),
                                      f"cluster {a + 1} → cluster {b + 1}: effective weight {float(w[a, b]):+.3g}"))
    return paths


def _strip(r: CNNVisResult, width: float, palette: Palette) -> list[StripBox]:
    n = len(r.layers)
    step = min(28.0, (width - 20) / max(n, 1))
    colours = palette.categorical
    return [StripBox(10 + i * step, step - 2, colours[layer.group % len(colours)], layer.representative,
                     f"{layer.name} ({layer.type}, {layer.units} units), group {layer.group + 1}"
                     + (", representative" if layer.representative else ""))
            for i, layer in enumerate(r.layers)]


def _similarity(r: CNNVisResult, assets: Assets) -> ImageRef:
    n = len(r.layers)
    rgb = images.colourize(r.similarity, assets.palette.sequential, 0.0, 1.0)
    return assets.png("similarity", images.upscale(rgb, max(1, 240 // max(n, 1))), "Linear CKA between the layers")


@page("cnnvis", title="CNNVis", analyses=("cnnvis",), order=60)
def cnnvis_page(insp: Inspection, assets: Assets) -> CNNVisPage:
    r = insp.require("cnnvis", CNNVisResult)
    profiles = [abs(float(v)) for g in r.groups for c in g.clusters for v in c.profile]
    vmax = max(profiles) if profiles else 1.0
    x, columns, anchors, bottom = 20.0, [], [], _top(r)
    for g, group in enumerate(r.groups):
        column, anchor, y = _column(r, g, group, x, assets, vmax or 1.0)
        columns.append(column)
        anchors.append(anchor)
        bottom = max(bottom, y)
        right = max(right for _, _, right in anchor.values())
        x = right + EDGE_GAP
    width = int(max(x - EDGE_GAP + 40, 400))
    return CNNVisPage(
        record=insp.record("cnnvis"), width=width, height=int(bottom + 10), strip=tuple(_strip(r, width, assets.palette)),
        columns=tuple(columns), edges=tuple(_edges(r, anchors, assets.palette)), similarity=_similarity(r, assets),
        layer_names=tuple(layer.name for layer in r.layers), classes_word="class" if r.by_label else "data cluster",
        samples=r.samples, scale=f"{vmax:.2g}", notes=r.notes,
    )
