"""playground.html: neuron maps in a network diagram, the decision map and the loss, with a snapshot slider."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnreport.playground.results import NeuronLayer, PlaygroundResult
from nnreport.site import images
from nnreport.site.pages import page
from nnreport.site.themes import Palette

if TYPE_CHECKING:
    from nnreport.inspection import AnalysisRecord, Inspection
    from nnreport.site.assets import Assets

NODE = 44  # drawn size of a neuron map
GAP = 10  # vertical gap between neurons
COLUMN = 150  # distance between columns
PAD = 2  # pixels between tiles in a sprite, so that smoothing never bleeds one map into the next
LEVELS = 4  # quantisation step of the drawn maps (of 256)
DECISION = 300
LEFT = 70  # room for the input features' names  # drawn size of the decision map


@dataclass(frozen=True)
class Node:
    x: float
    y: float
    size: int
    # Position of this map in the sprite (pixels).
    sx: int
    sy: int
    label: str
    title: str
    # The label sits left of an input's map and right of an output's.
    label_left: bool = False


@dataclass(frozen=True)
class Edge:
    d: str
    width: float
    colour: str
    opacity: float
    title: str


@dataclass(frozen=True)
class Column:
    x: float
    name: str
    module: str
    units: int
    shown: int


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    colour: str
    test: bool

    @property
    def group(self) -> tuple[bool, str]:
        return self.test, self.colour


@dataclass(frozen=True)
class Curve:
    name: str
    points: str
    colour: str
    dashed: bool


@dataclass(frozen=True)
class PlaygroundPage:
    record: AnalysisRecord | None
    features: tuple[str, str]
    width: int
    height: int
    tile: int
    sprite_width: int
    sprite_height: int
    columns: tuple[Column, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    sprites: tuple[str, ...]  # asset paths, one per snapshot
    decisions: tuple[str, ...]
    decision_size: int
    points: tuple[Point, ...]
    legend: tuple[tuple[str, str], ...]
    x_range: tuple[str, str]
    y_range: tuple[str, str]
    labels: tuple[str, ...]
    # Per snapshot, per edge: the weight scaled to [-1, 1] by the largest |weight| of its layer pair.
    edge_frames: tuple[tuple[float, ...], ...]
    curves: tuple[Curve, ...]
    loss_width: int
    loss_height: int
    loss_x: tuple[float, ...]
    loss_max: str
    stats: tuple[str, ...]
    output_kind: str
    # Tabular data: the points' other features differ from the held values, so they are projections.
    projected: bool
    # Outline of the training points: white on the diverging map, dark on the categorical one.
    point_stroke: str
    notes: tuple[str, ...]


def _palette(colours: Palette) -> np.ndarray:
    """256 colours of the diverging map, for palette PNGs (its ends are `colours.negative`/`positive`)."""
    return images.colourize(np.linspace(-1, 1, 256)[None], colours.diverging, -1.0, 1.0)[0]


def encode_indexed(index: np.ndarray, palette: np.ndarray) -> bytes:
    """A palette PNG (1 byte per pixel) with no metadata: a quarter of the size of the RGB one."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(index, dtype=np.uint8), mode="P")
    img.putpalette(palette.astype(np.uint8).ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def _sprite_layout(layers: tuple[NeuronLayer, ...], grid: int) -> tuple[list[tuple[int, int, int, int]], int, int]:
    """(layer, unit, sx, sy) for every map, tiled in rows of at most 16."""
    cells = [(li, u) for li, layer in enumerate(layers) for u in range(len(layer.shown))]
    per_row = min(16, len(cells))
    step = grid + PAD
    placed = [(li, u, (i % per_row) * step, (i // per_row) * step) for i, (li, u) in enumerate(cells)]
    rows = (len(cells) + per_row - 1) // per_row
    return placed, per_row * step - PAD, rows * step - PAD


def _sprites(r: PlaygroundResult, assets: Assets, placed: list[tuple[int, int, int, int]], w: int, h: int) -> tuple[str, ...]:
    palette = _palette(assets.palette)
    grid = len(r.xs)
    srcs = []
    for k in range(len(r.snapshot_labels)):
        sheet = np.full((h, w), 127, np.uint8)
        for li, u, sx, sy in placed:
            sheet[sy:sy + grid, sx:sx + grid] = r.layers[li].frames[k, u][::-1]  # rows: y upwards
        sheet = sheet // LEVELS * LEVELS + LEVELS // 2  # 64 colour steps: half the bytes, no visible banding
        srcs.append(assets.add(f"{assets.page}-neurons-{k}.png", encode_indexed(sheet, palette)))
    return tuple(srcs)


def _decisions(r: PlaygroundResult, assets: Assets) -> tuple[str, ...]:
    palette = _palette(assets.palette)
    srcs = []
    for k in range(len(r.snapshot_labels)):
        frame = r.decision_frames[k][:, ::-1]
        if r.output_kind == "value" or frame.shape[0] == 2:
            data = encode_indexed(frame[-1], palette)
        else:
            colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in assets.palette.categorical], np.float64)
            probs = frame.astype(np.float64) / 255.0
            mix = np.einsum("khw,kc->hwc", probs, colours[np.arange(len(probs)) % len(colours)])
            confidence = probs.max(0)[..., None]
            rgb = 255 - (255 - mix) * (0.25 + 0.6 * confidence)  # pale where the model hesitates
            data = images.encode_png(np.clip(rgb, 0, 255).round().astype(np.uint8))
        srcs.append(assets.add(f"{assets.page}-decision-{k}.png", data))
    return tuple(srcs)


def _network(r: PlaygroundResult, placed: list[tuple[int, int, int, int]], colours: Palette) -> tuple[list[Column], list[Node], list[Edge], list[list[float]], int, int]:
    tallest = max(len(layer.shown) for layer in r.layers)
    height = tallest * (NODE + GAP) - GAP + 60
    where = {(li, u): (sx, sy) for li, u, sx, sy in placed}
    columns, nodes, edges = [], [], []
    frames: list[list[float]] = [[] for _ in r.snapshot_labels]
    centres: list[list[tuple[float, float]]] = []
    for li, layer in enumerate(r.layers):
        x = LEFT + li * COLUMN
        top = 40 + (tallest - len(layer.shown)) * (NODE + GAP) / 2
        columns.append(Column(x + NODE / 2, layer.name, layer.module, layer.units, len(layer.shown)))
        centres.append([])
        for u, label in enumerate(layer.unit_names):
            y = top + u * (NODE + GAP)
            sx, sy = where[(li, u)]
            nodes.append(Node(x, y, NODE, sx, sy, label if layer.kind != "hidden" else "", _node_title(layer, u),
                              layer.kind == "input"))
            centres[-1].append((x, y + NODE / 2))
        if li == 0 or layer.weights is None:
            continue
        biggest = float(np.abs(layer.weights).max()) or 1.0
        for j, (x2, y2) in enumerate(centres[li]):
            for i, (x1, y1) in enumerate(centres[li - 1]):
                x1 += NODE
                mid = (x1 + x2) / 2
                final = float(layer.weights[-1, j, i])
                strength = final / biggest
                width, colour, opacity = edge_style(strength, colours)
                edges.append(Edge(f"M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}",
                                  width, colour, opacity,
                                  f"{r.layers[li - 1].unit_names[i]} → {layer.unit_names[j]}: weight {final:.3g}"))
                for k in range(len(frames)):
                    frames[k].append(round(float(layer.weights[k, j, i]) / biggest, 3))
    width = LEFT + (len(r.layers) - 1) * COLUMN + NODE + 110
    return columns, nodes, edges, frames, width, int(height)


def edge_style(strength: float, colours: Palette) -> tuple[float, str, float]:
    """Width, colour and opacity of an edge from its weight scaled to [-1, 1] (the page script mirrors this)."""
    a = min(abs(strength), 1.0)
    return round(0.4 + 4.0 * a, 2), colours.positive if strength >= 0 else colours.negative, round(0.15 + 0.75 * a, 2)


def _node_title(layer: NeuronLayer, u: int) -> str:
    what = {"input": "input feature", "hidden": "after its activation", "output": "output (logit)"}[layer.kind]
    bias = "" if layer.bias is None else f", bias {float(layer.bias[-1, u]):.3g}"
    return f"{layer.unit_names[u]} ({what}{bias}); colour range ±{float(layer.scale[-1, u]):.3g}"


def _points(r: PlaygroundResult, colours: Palette) -> list[Point]:
    xs, ys = r.xs, r.ys
    sx = DECISION / float(xs[-1] - xs[0] or 1.0)
    sy = DECISION / float(ys[-1] - ys[0] or 1.0)
    binary = r.output_kind == "value" or len(r.class_names) == 2
    out = []
    for pts, labels, test in ((r.train_points, r.train_labels, False), (r.test_points, r.test_labels, True)):
        for (px, py), lab in zip(pts, labels, strict=True):
            if lab < 0:
                colour = "#444444"
            elif binary:
                colour = colours.positive if lab == 1 else colours.negative
            else:
                colour = colours.categorical[int(lab) % len(colours.categorical)]
            out.append(Point(round((float(px) - float(xs[0])) * sx, 1), round(DECISION - (float(py) - float(ys[0])) * sy, 1), colour, test))
    return out


def _legend(r: PlaygroundResult, colours: Palette) -> tuple[tuple[str, str], ...]:
    if r.output_kind == "value":
        return (("low output", colours.negative), ("high output", colours.positive))
    if len(r.class_names) == 2:
        return ((r.class_names[0], colours.negative), (r.class_names[1], colours.positive))
    return tuple((name, colours.categorical[i % len(colours.categorical)]) for i, name in enumerate(r.class_names))


def _curves(r: PlaygroundResult, width: int, height: int, colours: Palette) -> tuple[list[Curve], list[float], str]:
    n = len(r.snapshot_labels)
    series = [("training loss (recorded)", r.history, "#888888", True)]
    if r.train_loss is not None and r.test_loss is not None:
        series += [("train loss", r.train_loss, colours.categorical[0], False), ("test loss", r.test_loss, colours.categorical[1], False)]
    finite = [float(v) for _, s, _, _ in series for v in s if math.isfinite(float(v))]
    top = max(finite) if finite else 1.0
    top = top if top > 0 else 1.0
    xs = [44 + (width - 54) * (k / max(n - 1, 1)) for k in range(n)]
    curves = []
    for name, values, colour, dashed in series:
        pts = " ".join(f"{xs[k]:.1f},{height - 20 - (height - 30) * float(v) / top:.1f}"
                       for k, v in enumerate(values) if math.isfinite(float(v)))
        if pts:
            curves.append(Curve(name, pts, colour, dashed))
    return curves, [round(x, 1) for x in xs], f"{top:.3g}"


def _stats(r: PlaygroundResult) -> tuple[str, ...]:
    out = []
    for k in range(len(r.snapshot_labels)):
        parts = [r.snapshot_labels[k]]
        if r.train_loss is not None and r.test_loss is not None:
            parts.append(f"train loss {r.train_loss[k]:.3f}, test loss {r.test_loss[k]:.3f}")
        if r.train_accuracy is not None and r.test_accuracy is not None:
            parts.append(f"train accuracy {r.train_accuracy[k]:.1%}, test accuracy {r.test_accuracy[k]:.1%}")
        out.append(" · ".join(parts))
    return tuple(out)


@page("playground", title="Playground", analyses=("playground",), order=70)
def playground_page(insp: Inspection, assets: Assets) -> PlaygroundPage:
    r = insp.require("playground", PlaygroundResult)
    grid = len(r.xs)
    placed, sw, sh = _sprite_layout(r.layers, grid)
    columns, nodes, edges, frames, width, height = _network(r, placed, assets.palette)
    curves, loss_x, loss_max = _curves(r, 380, 170, assets.palette)
    return PlaygroundPage(
        record=insp.record("playground"), features=r.features, width=width, height=height, tile=grid,
        sprite_width=sw, sprite_height=sh, columns=tuple(columns), nodes=tuple(nodes), edges=tuple(edges),
        sprites=_sprites(r, assets, placed, sw, sh), decisions=_decisions(r, assets), decision_size=DECISION,
        points=tuple(_points(r, assets.palette)), legend=_legend(r, assets.palette),
        x_range=(f"{float(r.xs[0]):.2g}", f"{float(r.xs[-1]):.2g}"), y_range=(f"{float(r.ys[0]):.2g}", f"{float(r.ys[-1]):.2g}"),
        labels=r.snapshot_labels, edge_frames=tuple(tuple(f) for f in frames), curves=tuple(curves),
        loss_width=380, loss_height=170, loss_x=tuple(loss_x), loss_max=loss_max, stats=_stats(r),
        output_kind=r.output_kind, projected=len(r.base) > 2,
        point_stroke="#ffffff" if r.output_kind == "value" or len(r.class_names) == 2 else "#222222", notes=r.notes,
    )
