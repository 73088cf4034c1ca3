"""Compound drawing of a Graph at one expansion state: edges bundled at the lowest common expanded
ancestor, each expanded group laid out inside its parent, bottom-up; plus the `Drawing` API object."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from nnreport.graph.ir import Box, DrawnEdge, Graph, Group, Point, View
from nnreport.graph.layout import LayeredLayout, Spacing, layered_layout

PAD = 12.0
HEADER = 22.0
CHAR = 6.4  # average glyph width at the drawing's 11px font
LABEL_CHAR = 5.6  # at the 9.5px edge-label font
IN, OUT = "\x00in", "\x00out"


def shape_label(shape: tuple[int, ...], batch: int) -> str:
    dims = shape[1:] if len(shape) >= 2 and shape[0] == batch else shape
    return "×".join(str(d) for d in dims) if dims else "scalar"


def compact(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return str(int(n))


@dataclass
class _Index:
    graph: Graph
    groups: dict[str, Group] = field(init=False)
    node_group: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.groups = {g.id: g for g in self.graph.groups}
        self.node_group = {n.id: n.group for n in self.graph.nodes}
        self.nodes = {n.id: n for n in self.graph.nodes}
        self.member_parent = {c: g.id for g in self.graph.groups for c in g.children}
        numel = [e.numel for e in self.graph.edges] or [1]
        self.log_lo, self.log_hi = math.log10(max(min(numel), 1)), math.log10(max(max(numel), 1))
        self.hue = hues(self.graph)

    def parent(self, item: str) -> str:
        return self.member_parent.get(item, "")

    def chain(self, item: str) -> list[str]:
        """Groups containing `item`, from the model down to its direct parent."""
        out = []
        while item:
            item = self.parent(item)
            out.append(item)
        return out[::-1]


def hues(graph: Graph) -> dict[str, int]:
    """Colour class per structural hash that more than one group has (the page computes the same)."""
    repeated = [h for h, c in _counts(g.hash for g in graph.groups if g.id).items() if c > 1]
    return {h: i % 10 for i, h in enumerate(repeated)}


def _counts(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def closed_expansion(graph: Graph, expand: Iterable[str]) -> set[str]:
    """The expanded groups with all their ancestors (the model itself is always expanded)."""
    index = _Index(graph)
    out = {""}
    for gid in expand:
        if gid in index.groups:
            out.add(gid)
            out.update(index.chain(gid))
    return out


def all_groups(graph: Graph) -> set[str]:
    return {g.id for g in graph.groups}


LayoutCache = dict[tuple[Any, ...], LayeredLayout]


def draw_view(graph: Graph, expand: Iterable[str] = (), *, flat: bool = False, key: str = "",
              restarts: int = 4, cache: LayoutCache | None = None) -> View:
    """Lay out `graph` with the groups in `expand` (and their ancestors) open; `flat` ignores groups.
    A group's inner layout depends only on what is open inside it, so with a shared `cache` a new
    view re-lays out only the groups whose inside changed (the opened group and its ancestors)."""
    index = _Index(graph)
    expanded = all_groups(graph) if flat else closed_expansion(graph, expand)
    levels = _level_edges(index, expanded, flat)
    builder = _Builder(index, expanded, levels, flat, restarts, cache if cache is not None else {})
    builder.layout("")
    boxes, edges = builder.compose()
    edges = _place_labels(edges, boxes)
    w, h = builder.size[""]
    return View(key, tuple(sorted(expanded - {""})), round(w, 1), round(h, 1), tuple(boxes), tuple(edges),
                builder.crossings)


def _visible(index: _Index, expanded: set[str], node: str, flat: bool) -> str:
    if flat:
        return node
    for gid in index.chain(node):
        if gid not in expanded:
            return gid
    return node


@dataclass
class _Bundle:
    count: int = 0
    numel: int = 0
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)  # distinct tensors (by producer)


def _level_edges(index: _Index, expanded: set[str], flat: bool) -> dict[str, dict[tuple[str, str], _Bundle]]:
    """Edges per expanded group: between its children, and to its in/out ports for edges that cross
    its border. Data edges with the same ends at a level are bundled."""
    levels: dict[str, dict[tuple[str, str], _Bundle]] = {g: {} for g in expanded}

    def add(level: str, a: str, b: str, numel: int, shape: tuple[int, ...], source: str) -> None:
        bundle = levels[level].setdefault((a, b), _Bundle())
        bundle.count += 1
        bundle.numel += numel
        bundle.sources.add(source)
        if shape not in bundle.shapes:
            bundle.shapes.append(shape)

    for e in index.graph.edges:
        va, vb = _visible(index, expanded, e.source, flat), _visible(index, expanded, e.target, flat)
        if va == vb:
            continue
        ca = [""] if flat else index.chain(va)
        cb = [""] if flat else index.chain(vb)
        common = 0
        while common < min(len(ca), len(cb)) and ca[common] == cb[common]:
            common += 1
        lca = ca[common - 1]
        pa = (ca + [va])[common]
        pb = (cb + [vb])[common]
        add(lca, pa, pb, e.numel, e.shape, e.source)
        for k in range(common, len(ca)):
            add(ca[k], (ca + [va])[k + 1], OUT, e.numel, e.shape, e.source)
        for k in range(common, len(cb)):
            add(cb[k], IN, (cb + [vb])[k + 1], e.numel, e.shape, e.source)
    return levels


class _Builder:
    """Bottom-up compound layout: each expanded group is laid out once, inside its parent."""

    def __init__(self, index: _Index, expanded: set[str], levels: dict[str, dict[tuple[str, str], _Bundle]],
                 flat: bool, restarts: int, cache: LayoutCache) -> None:
        self.index, self.expanded, self.levels, self.flat, self.restarts = index, expanded, levels, flat, restarts
        self.cache = cache
        self.computed = 0  # layered layouts actually run (not taken from the cache)
        self.size: dict[str, tuple[float, float]] = {}
        self.inner: dict[str, LayeredLayout] = {}
        self.items: dict[str, list[str]] = {}
        self.crossings = 0

    def children(self, gid: str) -> list[str]:
        if self.flat:
            return [n.id for n in self.index.graph.nodes]
        return list(self.index.groups[gid].children)

    def item_size(self, item: str) -> tuple[float, float]:
        if item in self.expanded and item in self.index.groups:
            return self.layout(item)
        label, sub = self.labels(item)
        width = max(len(label) * CHAR, len(sub) * CHAR * 0.85) + 18
        if item in self.index.groups:
            return (min(max(width, 60.0), 240.0), 36.0)
        return (min(max(width, 40.0), 200.0), 30.0 if sub else 22.0)

    def labels(self, item: str) -> tuple[str, str]:
        if item in self.index.groups:
            g = self.index.groups[item]
            label = g.name
            parts = [g.type if g.type != "series" else "series"]
            if g.params:
                parts.append(f"{compact(g.params)} params")
            return _clip(label, 34), _clip(" · ".join(parts), 40)
        n = self.index.nodes[item]
        if n.kind != "op":
            return _clip(n.label, 30), ""
        sub = n.op if n.label != n.op else ""
        if n.aux:
            sub = (sub + " " if sub else "") + "+" + ",".join(n.aux[:2]) + ("…" if len(n.aux) > 2 else "")
        return _clip(n.label, 30), _clip(sub, 34)

    def layout(self, gid: str) -> tuple[float, float]:
        if gid in self.size:
            return self.size[gid]
        items = self.children(gid)
        bundles = self.levels.get(gid, {})
        sizes: dict[Any, tuple[float, float]] = {item: self.item_size(item) for item in items}
        ports_in = [IN] if any(a == IN for a, _ in bundles) else []
        ports_out = [OUT] if any(b == OUT for _, b in bundles) else []
        for p in ports_in + ports_out:
            sizes[p] = (0.0, 0.0)
        edges = list(bundles)
        inside = frozenset(e for e in self.expanded if e != gid and (gid == "" or gid in self.index.chain(e)))
        memo = (self.flat, gid, self.restarts, inside)
        result = self.cache.get(memo)
        if result is None:
            result = layered_layout(sizes, edges, top=ports_in, bottom=ports_out, restarts=self.restarts,
                                    spacing=Spacing(layer_gap=38.0))
            self.cache[memo] = result
            self.computed += 1
        self.crossings += result.crossings
        self.inner[gid] = result
        self.items[gid] = items
        width = max(result.width, 40.0)
        if gid:
            label, sub = self.labels(gid)
            width = max(width, (len(label) + 2) * CHAR + len(sub) * CHAR * 0.8 + 16 - 2 * PAD)
        if gid == "":
            size = (width + 2 * PAD, result.height + 2 * PAD)
        else:
            size = (width + 2 * PAD, result.height + HEADER + PAD)
        self.size[gid] = size
        return size

    def origin(self, gid: str) -> Point:
        return (PAD, PAD) if gid == "" else (PAD, HEADER)

    def compose(self) -> tuple[list[Box], list[DrawnEdge]]:
        boxes: list[Box] = []
        edges: list[DrawnEdge] = []
        self._place("", 0.0, 0.0, 0, boxes, edges)
        return boxes, edges

    def _place(self, gid: str, left: float, top: float, depth: int, boxes: list[Box], edges: list[DrawnEdge]) -> None:
        lay = self.inner[gid]
        ox, oy = self.origin(gid)
        ox, oy = ox + left, oy + top
        shift = (self.size[gid][0] - 2 * PAD - lay.width) / 2  # centre a narrow layout in its frame
        ox += max(shift, 0.0)
        abs_box: dict[str, tuple[float, float, float, float]] = {}
        for item in self.items[gid]:
            cx, cy = lay.centres[item]
            w, h = self.item_size(item)
            x, y = ox + cx - w / 2, oy + cy - h / 2
            abs_box[item] = (x, y, w, h)
            expanded = item in self.expanded and item in self.index.groups
            label, sub = self.labels(item)
            kind = "expanded" if expanded else ("group" if item in self.index.groups else self.index.nodes[item].kind)
            boxes.append(Box(item, round(x, 1), round(y, 1), round(w, 1), round(h, 1), label, sub, kind, gid,
                             self._hue(item), depth))
            if expanded:
                self._place(item, x, y, depth + 1, boxes, edges)
        ports = {IN: (ox + lay.centres[IN][0], top) if IN in lay.centres else None,
                 OUT: (ox + lay.centres[OUT][0], top + self.size[gid][1]) if OUT in lay.centres else None}
        bundles = self.levels.get(gid, {})
        for (a, b), route in zip(list(bundles), lay.routes, strict=True):
            bundle = bundles[(a, b)]
            pts = [(ox + px, oy + py) for px, py in route]
            if a == IN and (port_in := ports[IN]):
                pts = [port_in] + pts
            if b == OUT and (port_out := ports[OUT]):
                pts = pts + [port_out]
            pts = self._snap_to_ports(a, b, pts)
            edges.append(self._edge(gid if a == IN else a, gid if b == OUT else b, pts, bundle))

    def _snap_to_ports(self, a: str, b: str, pts: list[Point]) -> list[Point]:
        """An edge into (out of) an expanded group meets the in-port (out-port) drawn inside it: move
        the end and, when the route drops vertically there, the bend above (below) it."""
        pts = list(pts)
        if b in self.inner and IN in self.inner[b].centres and len(pts) >= 2:
            px, old = self._port_x(b, IN), pts[-1][0]
            pts[-1] = (px, pts[-1][1])
            if len(pts) > 2 and pts[-2][0] == old:
                pts[-2] = (px, pts[-2][1])
        if a in self.inner and OUT in self.inner[a].centres and len(pts) >= 2:
            px, old = self._port_x(a, OUT), pts[0][0]
            pts[0] = (px, pts[0][1])
            if len(pts) > 2 and pts[1][0] == old:
                pts[1] = (px, pts[1][1])
        return pts

    def _port_x(self, gid: str, port: str) -> float:
        return self._abs_left[gid] + self._shift(gid) + PAD + self.inner[gid].centres[port][0]

    def _shift(self, gid: str) -> float:
        return max((self.size[gid][0] - 2 * PAD - self.inner[gid].width) / 2, 0.0)

    @cached_property
    def _abs_left(self) -> dict[str, float]:
        out: dict[str, float] = {"": 0.0}

        def walk(gid: str, left: float) -> None:
            lay = self.inner[gid]
            ox = left + PAD + self._shift(gid)
            for item in self.items[gid]:
                if item in self.inner and item in self.expanded:
                    x = ox + lay.centres[item][0] - self.size[item][0] / 2
                    out[item] = x
                    walk(item, x)

        walk("", 0.0)
        return out

    def _hue(self, item: str) -> int:
        g = self.index.groups.get(item)
        return self.index.hue.get(g.hash, -1) if g is not None else -1

    def _edge(self, a: str, b: str, pts: list[Point], bundle: _Bundle) -> DrawnEdge:
        batch = self.index.graph.batch
        if len(bundle.shapes) == 1:
            label = shape_label(bundle.shapes[0], batch)
            label = f"{len(bundle.sources)}× {label}" if len(bundle.sources) > 1 else label
        else:
            label = f"{len(bundle.sources)} tensors"
        lo, hi = self.index.log_lo, self.index.log_hi
        frac = 0.5 if hi <= lo else (math.log10(max(bundle.numel, 1)) - lo) / (hi - lo)
        width = round(1.0 + 3.0 * min(max(frac, 0.0), 1.0), 2)
        clean = tuple((round(x, 1), round(y, 1)) for x, y in pts)
        return DrawnEdge(a, b, clean, bundle.count, bundle.numel, label, width)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _place_labels(edges: list[DrawnEdge], boxes: list[Box]) -> list[DrawnEdge]:
    """Put each edge's shape label just below its first bend; drop labels that would overlap a box,
    another label or repeat the label of the same source."""
    if not edges:
        return edges
    rects = [[b.x, b.y, b.x + b.width, b.y + (b.height if b.kind != "expanded" else HEADER)] for b in boxes]
    bx = np.array(rects or [[0, 0, 0, 0]])
    placed: list[tuple[float, float, float, float]] = []
    groups = {b.id: b.kind for b in boxes}
    inside: dict[str, set[str]] = {}
    for b in boxes:
        inside.setdefault(b.group, set()).add(b.id)
    seen: set[tuple[str, str]] = set()
    out = []
    for e in edges:
        at = None
        port = e.source in groups and groups[e.source] == "expanded" and e.target in inside.get(e.source, set())
        port = port or (e.target in groups and e.source in inside.get(e.target, set()))
        if len(e.points) >= 2 and (e.source, e.label) not in seen and not port:
            x0, y0 = e.points[0]
            rect = (x0 + 3, y0 + 2, x0 + 3 + len(e.label) * LABEL_CHAR, y0 + 13)
            hit_box = np.any((bx[:, 0] < rect[2]) & (bx[:, 2] > rect[0]) & (bx[:, 1] < rect[3]) & (bx[:, 3] > rect[1]))
            hit_label = any(r[0] < rect[2] and r[2] > rect[0] and r[1] < rect[3] and r[3] > rect[1] for r in placed)
            if not hit_box and not hit_label:
                placed.append(rect)
                seen.add((e.source, e.label))
                at = (round(rect[0], 1), round(rect[3] - 2, 1))
        out.append(DrawnEdge(e.source, e.target, e.points, e.count, e.numel, e.label, e.width, at))
    return out


@dataclass(frozen=True)
class Drawing:
    """A laid-out graph: `.nodes` (id -> Box), `.edges` (DrawnEdge with polyline points), `.svg()`."""

    graph: Graph
    view: View

    @property
    def nodes(self) -> dict[str, Box]:
        return {b.id: b for b in self.view.boxes}

    @property
    def edges(self) -> list[DrawnEdge]:
        return list(self.view.edges)

    @property
    def width(self) -> float:
        return self.view.width

    @property
    def height(self) -> float:
        return self.view.height

    def svg(self) -> str:
        """A standalone SVG document (styles inline) of this drawing."""
        from nnreport.templating import environment

        return environment().get_template("graph.svg").render(view=self.view, standalone=True)
