"""Layered (Sugiyama) layout of a DAG with box sizes: layering, bundled long edges, crossing
reduction, coordinate assignment by weighted isotonic regression, and polyline routes (numpy only)."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class Spacing:
    node_gap: float = 22.0  # horizontal gap between boxes
    dummy_gap: float = 9.0  # horizontal gap next to an edge bend point
    layer_gap: float = 34.0  # vertical gap between layers (edge labels live here)


@dataclass(frozen=True)
class LayeredLayout:
    """Centres of the nodes, one route per input edge (source bottom -> target top), the size."""

    centres: dict[Hashable, Point]
    routes: list[list[Point]]
    layers: dict[Hashable, int]
    width: float
    height: float
    crossings: int


def layered_layout(
    sizes: dict[Hashable, tuple[float, float]],
    edges: Sequence[tuple[Hashable, Hashable]],
    *,
    top: Sequence[Hashable] = (),
    bottom: Sequence[Hashable] = (),
    spacing: Spacing = Spacing(),
    restarts: int = 4,
    max_sweeps: int = 12,
    seed: int = 0,
) -> LayeredLayout:
    """Lay out the DAG `edges` over the nodes of `sizes` (insertion order decides ties).
    `top` nodes are pinned to the first layer and `bottom` nodes to the last one."""
    names = list(sizes)
    index = {n: i for i, n in enumerate(names)}
    pairs = [(index[u], index[v]) for u, v in edges]
    dag = _acyclic([(u, v) for u, v in pairs if u != v], len(names))
    layer = _layering(len(names), dag, {index[n] for n in top}, {index[n] for n in bottom})
    graph = _Proper(len(names), layer, dag)
    _order(graph, restarts, max_sweeps, seed)
    w = np.array([sizes[n][0] for n in names] + [0.0] * (graph.count - len(names)))
    h = np.array([sizes[n][1] for n in names] + [0.0] * (graph.count - len(names)))
    x = _x_coordinates(graph, w, spacing)
    band_top, band_h = _y_bands(graph, h, spacing)
    centres = {n: (float(x[i]), float(band_top[layer[i]] + band_h[layer[i]] / 2)) for i, n in enumerate(names)}
    routes = _routes(graph, pairs, x, w, h, band_top, band_h, centres, names)
    height = float(band_top[-1] + band_h[-1]) if len(band_top) else 0.0
    width = float(max((x[i] + w[i] / 2 for i in range(graph.count)), default=0.0))
    return LayeredLayout(centres, routes, {n: int(layer[i]) for i, n in enumerate(names)}, width, height,
                         graph.crossings())


def _acyclic(pairs: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """Reverse the edges that close a cycle (DFS back edges), so that layering is possible."""
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v in pairs:
        succ[u].append(v)
    state = [0] * n
    back: set[tuple[int, int]] = set()
    for root in range(n):
        if state[root]:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state[nxt] == 1:
                back.add((node, nxt))
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return [(v, u) if (u, v) in back else (u, v) for u, v in pairs]


def _layering(n: int, pairs: list[tuple[int, int]], top: set[int], bottom: set[int]) -> np.ndarray:
    """Longest-path layering, then sinks-first pull-down of nodes with more outputs than inputs
    (shortens the edges), then pinned top and bottom nodes."""
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v in pairs:
        succ[u].append(v)
        pred[v].append(u)
    order = _topological(n, succ, pred)
    layer = np.zeros(n, dtype=np.int64)
    for v in order:
        if pred[v]:
            layer[v] = max(layer[u] for u in pred[v]) + 1
    for v in reversed(order):
        if succ[v] and v not in top and len(succ[v]) >= len(pred[v]) and (pred[v] or len(succ[v]) > 0):
            limit = min(layer[s] for s in succ[v]) - 1
            if limit > layer[v] and (len(succ[v]) > len(pred[v]) or not pred[v]):
                layer[v] = limit
    if top:
        inner = [v for v in range(n) if v not in top]
        if inner:
            low = min(layer[v] for v in inner)
            for v in inner:
                layer[v] = layer[v] - low + 1
        for v in top:
            layer[v] = 0
    if bottom:
        last = max((layer[v] for v in range(n) if v not in bottom), default=-1) + 1
        for v in bottom:
            layer[v] = last
    # Compact away empty layers.
    used = np.unique(layer)
    remap = {int(old): new for new, old in enumerate(used)}
    return np.array([remap[int(v)] for v in layer], dtype=np.int64)


def _topological(n: int, succ: list[list[int]], pred: list[list[int]]) -> list[int]:
    indeg = [len(p) for p in pred]
    ready = [v for v in range(n) if indeg[v] == 0]
    ready.reverse()
    out: list[int] = []
    while ready:
        v = ready.pop()
        out.append(v)
        for s in reversed(succ[v]):
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return out


class _Proper:
    """The layered graph with bend points: every segment joins adjacent layers. Long edges from one
    source share one chain of bend points (a bus) that branches off at each target's layer, so a
    DenseNet's quadratic skip connections add bend points linearly per source."""

    def __init__(self, n: int, layer: np.ndarray, pairs: list[tuple[int, int]]) -> None:
        self.n = n
        self.layer_of: list[int] = [int(v) for v in layer]
        self.chain: dict[int, dict[int, int]] = {}  # source -> {layer: bend point}
        self.segments: set[tuple[int, int]] = set()
        # Edges routed along each segment: a crossing with a shared piece counts once per edge.
        self.weight: dict[tuple[int, int], int] = {}
        by_source: dict[int, list[int]] = {}
        for u, v in pairs:
            by_source.setdefault(u, []).append(v)
        for u, targets in by_source.items():
            deepest = max(self.layer_of[v] for v in targets)
            prev = u
            links: dict[int, int] = {}
            for lay in range(self.layer_of[u] + 1, deepest):
                d = len(self.layer_of)
                self.layer_of.append(lay)
                links[lay] = d
                self.segments.add((prev, d))
                self.weight[(prev, d)] = sum(1 for v in targets if self.layer_of[v] > lay)
                prev = d
            self.chain[u] = links
            for v in targets:
                seg = (links.get(self.layer_of[v] - 1, u), v)
                self.segments.add(seg)
                self.weight[seg] = self.weight.get(seg, 0) + 1 if seg[0] == u else 1
        self.count = len(self.layer_of)
        depth = max(self.layer_of, default=-1) + 1
        self.layers: list[list[int]] = [[] for _ in range(depth)]
        for v in range(self.count):
            self.layers[self.layer_of[v]].append(v)
        self.up: list[list[int]] = [[] for _ in range(self.count)]
        self.down: list[list[int]] = [[] for _ in range(self.count)]
        for a, b in sorted(self.segments):
            self.down[a].append(b)
            self.up[b].append(a)
        self.pos = np.zeros(self.count, dtype=np.float64)
        self._renumber()

    def _renumber(self) -> None:
        for nodes in self.layers:
            for i, v in enumerate(nodes):
                self.pos[v] = i

    def path(self, u: int, v: int) -> list[int]:
        """Bend points of the edge u -> v (the shared chain down to the layer above v)."""
        links = self.chain.get(u, {})
        return [links[lay] for lay in range(self.layer_of[u] + 1, self.layer_of[v]) if lay in links]

    def crossings_between(self, i: int) -> int:
        """Crossings between layer i and i + 1 (inversions of the segment end positions)."""
        segs = [(self.pos[a], self.pos[b], self.weight[(a, b)]) for a in self.layers[i] for b in self.down[a]]
        if len(segs) < 2:
            return 0
        arr = np.array(segs)
        a, b, w = arr[:, 0], arr[:, 1], arr[:, 2]
        return int(np.sum(((a[:, None] < a[None, :]) & (b[:, None] > b[None, :])) * (w[:, None] * w[None, :])))

    def crossings(self) -> int:
        return sum(self.crossings_between(i) for i in range(len(self.layers) - 1))


def _order(g: _Proper, restarts: int, max_sweeps: int, seed: int) -> None:
    """Barycentre sweeps with transposition from several starting orders; keep the best."""
    _initial_dfs(g)
    best = [list(nodes) for nodes in g.layers]
    best_cost = g.crossings()
    rng = random.Random(seed)
    for attempt in range(max(1, restarts)):
        if best_cost == 0:
            break
        if attempt == 1:
            g.layers = [list(reversed(nodes)) for nodes in best]
        elif attempt > 1:
            g.layers = [list(nodes) for nodes in best]
            for nodes in g.layers:
                rng.shuffle(nodes)
        g._renumber()
        cost, stale = g.crossings(), 0
        for sweep in range(max_sweeps):
            downward = sweep % 2 == 0
            rng_layers = range(1, len(g.layers)) if downward else range(len(g.layers) - 2, -1, -1)
            for i in rng_layers:
                _barycentre(g, i, g.up if downward else g.down)
            _transpose(g)
            new = g.crossings()
            if new < best_cost:
                best_cost, best = new, [list(nodes) for nodes in g.layers]
            stale = stale + 1 if new >= cost else 0
            cost = min(cost, new)
            if best_cost == 0 or stale >= 3:
                break
    g.layers = best
    g._renumber()


def _initial_dfs(g: _Proper) -> None:
    """Start from the order a depth-first walk meets the nodes: branches stay side by side."""
    seen = [False] * g.count
    order: list[int] = []
    for root in range(g.count):
        if seen[root] or g.up[root]:
            continue
        stack = [root]
        while stack:
            v = stack.pop()
            if seen[v]:
                continue
            seen[v] = True
            order.append(v)
            stack.extend(reversed(g.down[v]))
    order.extend(v for v in range(g.count) if not seen[v])
    rank = {v: i for i, v in enumerate(order)}
    g.layers = [sorted(nodes, key=rank.__getitem__) for nodes in g.layers]
    g._renumber()


def _barycentre(g: _Proper, i: int, neighbours: list[list[int]]) -> None:
    nodes = g.layers[i]
    keys = []
    up = neighbours is g.up
    for v in nodes:
        nb = neighbours[v]
        if not nb:
            keys.append(g.pos[v])
            continue
        ws = [g.weight[(u, v) if up else (v, u)] for u in nb]
        keys.append(sum(g.pos[u] * w for u, w in zip(nb, ws, strict=True)) / sum(ws))
    order = sorted(range(len(nodes)), key=lambda k: (keys[k], g.pos[nodes[k]]))
    g.layers[i] = [nodes[k] for k in order]
    for k, v in enumerate(g.layers[i]):
        g.pos[v] = k


def _pair_crossings(g: _Proper, v: int, w: int) -> int:
    """Crossings among the segments of v and w when v is left of w (with both neighbouring layers)."""
    total = 0
    for nb, up in ((g.up, True), (g.down, False)):
        if nb[v] and nb[w]:
            pv = [(g.pos[a], g.weight[(a, v) if up else (v, a)]) for a in nb[v]]
            pw = [(g.pos[b], g.weight[(b, w) if up else (w, b)]) for b in nb[w]]
            total += sum(x * y for a, x in pv for b, y in pw if a > b)
    return total


def _transpose(g: _Proper, passes: int = 4) -> None:
    """Swap neighbours in a layer while that lowers the crossings (greedy local search)."""
    for _ in range(passes):
        improved = False
        for nodes in g.layers:
            for k in range(len(nodes) - 1):
                v, w = nodes[k], nodes[k + 1]
                if _pair_crossings(g, v, w) > _pair_crossings(g, w, v):
                    nodes[k], nodes[k + 1] = w, v
                    g.pos[v], g.pos[w] = k + 1, k
                    improved = True
        if not improved:
            return


def _isotonic(target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for t, wt in zip(target.tolist(), weight.tolist(), strict=True):
        values.append(t)
        weights.append(wt)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w2 = weights[-2] + weights[-1]
            values[-2] = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w2
            weights[-2] = w2
            sizes[-2] += sizes[-1]
            values.pop(), weights.pop(), sizes.pop()
    return np.repeat(np.array(values), sizes)


def _x_coordinates(g: _Proper, w: np.ndarray, spacing: Spacing) -> np.ndarray:
    """Place each layer as close as possible to its neighbours' positions, keeping the order and
    the gaps: a weighted isotonic regression per layer, swept down and up. Bend points weigh more,
    which keeps long edges straight."""
    x = np.zeros(g.count)
    dummy = np.arange(g.count) >= g.n
    offsets: list[np.ndarray] = []
    for nodes in g.layers:
        off = np.zeros(len(nodes))
        for k in range(1, len(nodes)):
            a, b = nodes[k - 1], nodes[k]
            gap = spacing.dummy_gap if (dummy[a] or dummy[b]) else spacing.node_gap
            off[k] = off[k - 1] + (w[a] + w[b]) / 2 + gap
        offsets.append(off)
        x[nodes] = off - off[-1] / 2 if len(nodes) else off

    def place(i: int, sides: tuple[list[list[int]], ...]) -> None:
        nodes = g.layers[i]
        if not nodes:
            return
        target = x[nodes].copy()
        weight = np.full(len(nodes), 0.05)
        for k, v in enumerate(nodes):
            tot, wsum = 0.0, 0.0
            for side in sides:
                for u in side[v]:
                    wt = 8.0 if (dummy[u] and dummy[v]) else (2.0 if (dummy[u] or dummy[v]) else 1.0)
                    tot += wt * x[u]
                    wsum += wt
            if wsum:
                target[k], weight[k] = tot / wsum, wsum
        x[nodes] = _isotonic(target - offsets[i], weight) + offsets[i]

    depth = len(g.layers)
    for _ in range(6):
        for i in range(1, depth):
            place(i, (g.up,))
        for i in range(depth - 2, -1, -1):
            place(i, (g.down,))
    for i in range(depth):
        place(i, (g.up, g.down))
    left = min((x[v] - w[v] / 2 for v in range(g.count)), default=0.0)
    return x - left


def _y_bands(g: _Proper, h: np.ndarray, spacing: Spacing) -> tuple[np.ndarray, np.ndarray]:
    heights = np.array([max((h[v] for v in nodes), default=0.0) for nodes in g.layers])
    tops = np.zeros(len(heights))
    for i in range(1, len(heights)):
        tops[i] = tops[i - 1] + heights[i - 1] + spacing.layer_gap
    return tops, heights


def _routes(g: _Proper, pairs: list[tuple[int, int]], x: np.ndarray, w: np.ndarray, h: np.ndarray,
            band_top: np.ndarray, band_h: np.ndarray, centres: dict[Hashable, Point],
            names: list[Hashable]) -> list[list[Point]]:
    """Polylines from the bottom of the source to the top of the target. Diagonal pieces only run
    in the gaps between layers; ports are spread along the box edges in the order of their peers."""
    routes: list[list[Point]] = []
    out_ports = _spread_ports(g, pairs, x, w, outgoing=True)
    in_ports = _spread_ports(g, pairs, x, w, outgoing=False)
    for k, (u, v) in enumerate(pairs):
        flip = g.layer_of[u] > g.layer_of[v]
        a, b = (v, u) if flip else (u, v)
        if a == b:
            routes.append([])
            continue
        la, lb = g.layer_of[a], g.layer_of[b]
        ya = centres[names[a]][1] + h[a] / 2
        yb = centres[names[b]][1] - h[b] / 2
        xa, xb = out_ports[(a, k)], in_ports[(b, k)]
        pts: list[Point] = [(xa, ya), (xa, band_top[la] + band_h[la])]
        for d in g.path(a, b):
            ld = g.layer_of[d]
            pts += [(x[d], band_top[ld]), (x[d], band_top[ld] + band_h[ld])]
        pts += [(xb, band_top[lb]), (xb, yb)]
        clean = [(float(px), float(py)) for px, py in pts]
        clean = [p for i, p in enumerate(clean) if i == 0 or p != clean[i - 1]]
        routes.append(clean[::-1] if flip else clean)
    return routes


def _spread_ports(g: _Proper, pairs: list[tuple[int, int]], x: np.ndarray, w: np.ndarray,
                  outgoing: bool) -> dict[tuple[int, int], float]:
    """x of each edge's port: one slot per distinct first hop (out) or last hop (in), sorted by x."""
    hops: dict[int, dict[int, list[int]]] = {}
    for k, (u, v) in enumerate(pairs):
        a, b = (v, u) if g.layer_of[u] > g.layer_of[v] else (u, v)
        if a == b:
            continue
        path = g.path(a, b)
        node, hop = (a, path[0] if path else b) if outgoing else (b, path[-1] if path else a)
        hops.setdefault(node, {}).setdefault(hop, []).append(k)
    ports: dict[tuple[int, int], float] = {}
    for node, by_hop in hops.items():
        ordered = sorted(by_hop, key=lambda hop: (x[hop], hop))
        span = w[node] * 0.6
        for j, hop in enumerate(ordered):
            px = x[node] if len(ordered) == 1 else x[node] - span / 2 + span * j / (len(ordered) - 1)
            for k in by_hop[hop]:
                ports[(node, k)] = float(px)
    return ports
