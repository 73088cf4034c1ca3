"""Geometry for the landscape page (numpy only, no torch): contour segments by marching squares, contour
levels, and a shaded 3-D surface projected to SVG polygons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Marching squares: corner bits (bottom-left 1, bottom-right 2, top-right 4, top-left 8) -> edge pairs.
# Edges: 0 bottom, 1 right, 2 top, 3 left.
_CASES: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 5: ((3, 2), (0, 1)), 6: ((0, 2),), 7: ((3, 2),),
    8: ((2, 3),), 9: ((2, 0),), 10: ((2, 1), (0, 3)), 11: ((2, 1),), 12: ((1, 3),), 13: ((1, 0),), 14: ((0, 3),),
}


def contour_levels(z: np.ndarray, count: int = 8) -> list[float]:
    """Levels at evenly spaced quantiles of the finite values (so a few high values do not take all the
    levels), rounded to two significant digits, without duplicates."""
    finite = z[np.isfinite(z)]
    if finite.size < 4 or float(finite.max()) == float(finite.min()):
        return []
    qs = np.quantile(finite, np.linspace(0.05, 0.95, count))
    out: list[float] = []
    for q in qs:
        v = float(f"{q:.2g}")
        if v not in out and finite.min() < v < finite.max():
            out.append(v)
    return out


def contour_segments(x: np.ndarray, y: np.ndarray, z: np.ndarray, level: float) -> list[tuple[float, float, float, float]]:
    """Line segments (x1, y1, x2, y2) of the level set z = level; cells with a non-finite corner are left out."""
    segs: list[tuple[float, float, float, float]] = []
    for i in range(len(y) - 1):
        for j in range(len(x) - 1):
            c = (z[i, j], z[i, j + 1], z[i + 1, j + 1], z[i + 1, j])  # bl, br, tr, tl
            if not all(np.isfinite(c)):
                continue
            case = sum(1 << k for k in range(4) if c[k] > level)
            for e1, e2 in _CASES.get(case, ()):
                p1, p2 = _edge_point(x, y, i, j, c, e1, level), _edge_point(x, y, i, j, c, e2, level)
                segs.append((p1[0], p1[1], p2[0], p2[1]))
    return segs


def _edge_point(x: np.ndarray, y: np.ndarray, i: int, j: int, c: tuple[float, ...], edge: int,
                level: float) -> tuple[float, float]:
    a, b = [(0, 1), (1, 2), (3, 2), (0, 3)][edge]
    corners = [(x[j], y[i]), (x[j + 1], y[i]), (x[j + 1], y[i + 1]), (x[j], y[i + 1])]
    za, zb = float(c[a]), float(c[b])
    t = 0.5 if zb == za else (level - za) / (zb - za)
    (xa, ya), (xb, yb) = corners[a], corners[b]
    return float(xa + t * (xb - xa)), float(ya + t * (yb - ya))


def label_positions(levels: list[list[tuple[float, float, float, float]]], span_x: float, span_y: float
                    ) -> list[tuple[float, float] | None]:
    """Where to write each level's value: greedily, the midpoint of one of its segments that lies furthest
    from the labels already placed (in units of the plot's extent), so labels do not pile up."""
    placed: list[tuple[float, float]] = []
    out: list[tuple[float, float] | None] = []
    sx, sy = span_x or 1.0, span_y or 1.0
    for segs in levels:
        if not segs:
            out.append(None)
            continue
        mids = np.array([((a + c) / 2, (b + d) / 2) for a, b, c, d in segs])
        if placed:
            p = np.array(placed)
            dist = np.min(np.hypot((mids[:, None, 0] - p[None, :, 0]) / sx, (mids[:, None, 1] - p[None, :, 1]) / sy),
                          axis=1)
        else:
            dist = -np.hypot(mids[:, 0] / sx - 0.3, mids[:, 1] / sy - 0.3)  # first label: upper right of centre
        best = mids[int(np.argmax(dist))]
        placed.append((float(best[0]), float(best[1])))
        out.append(placed[-1])
    return out


@dataclass(frozen=True)
class Polygon:
    points: str
    fill: str


@dataclass(frozen=True)
class SurfaceView:
    """A shaded 3-D surface as SVG primitives (numbers and fixed words only, so it is safe to inline)."""

    width: int
    height: int
    polygons: tuple[Polygon, ...]
    axes: tuple[tuple[float, float, float, float], ...]
    labels: tuple[tuple[float, float, str], ...]
    cap: float
    gaps: int


def surface_view(x: np.ndarray, y: np.ndarray, z: np.ndarray, lut: np.ndarray, width: int = 520, height: int = 380,
                 azimuth: float = -50.0, elevation: float = 28.0, cap: float | None = None) -> SurfaceView:
    """Project the surface z[iy, ix] (clipped at `cap`) with painter's-order quads, coloured by height
    through `lut` (256×3 uint8) and shaded by a Lambert light from the upper left."""
    zz = np.asarray(z, dtype=np.float64)
    finite = zz[np.isfinite(zz)]
    if finite.size == 0:
        return SurfaceView(width, height, (), (), (), float("nan"), int(zz.size))
    lo = float(finite.min())
    cap = float(cap if cap is not None else np.quantile(finite, 0.95))
    cap = cap if cap > lo else lo + 1.0
    zc = np.clip(zz, None, cap)
    gx, gy = np.meshgrid((x - x.min()) / (np.ptp(x) or 1) - 0.5, (y - y.min()) / (np.ptp(y) or 1) - 0.5)
    gz = (zc - lo) / (cap - lo) * 0.7
    az, el = np.radians(azimuth), np.radians(elevation)
    # Rotate about the vertical axis, then tilt towards the viewer.
    rx = gx * np.cos(az) - gy * np.sin(az)
    ry = gx * np.sin(az) + gy * np.cos(az)
    sx = rx
    sy = gz * np.cos(el) - ry * np.sin(el)
    depth = ry * np.cos(el) + gz * np.sin(el)
    corner_top = (float(sx[0, 0]), float(sy[0, 0] + 0.7 * np.cos(el)))  # the loss axis' upper end
    all_x = np.append(sx.ravel(), corner_top[0])
    all_y = np.append(sy.ravel(), corner_top[1])
    margin = 30.0
    scale = min((width - 2 * margin) / (np.ptp(all_x) or 1.0), (height - 2 * margin) / (np.ptp(all_y) or 1.0))
    off_x = (width - np.ptp(all_x) * scale) / 2 - all_x.min() * scale
    off_y = (height - np.ptp(all_y) * scale) / 2 + all_y.max() * scale
    px = off_x + sx * scale
    py = off_y - sy * scale
    light = np.array([-0.4, 0.5, 0.8]) / np.linalg.norm([-0.4, 0.5, 0.8])
    quads = []
    for i in range(zz.shape[0] - 1):
        for j in range(zz.shape[1] - 1):
            idx = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j)]
            if not all(np.isfinite(zz[a, b]) for a, b in idx):
                continue
            u = np.array([gx[i, j + 1] - gx[i, j], gy[i, j + 1] - gy[i, j], gz[i, j + 1] - gz[i, j]])
            v = np.array([gx[i + 1, j] - gx[i, j], gy[i + 1, j] - gy[i, j], gz[i + 1, j] - gz[i, j]])
            n = np.cross(u, v)
            n = n / (np.linalg.norm(n) or 1.0)
            shade = 0.55 + 0.45 * abs(float(n @ light))
            h = float(np.mean([gz[a, b] for a, b in idx])) / 0.7
            rgb = lut[int(round(np.clip(h, 0, 1) * 255))].astype(np.float64) * shade
            pts = " ".join(f"{px[a, b]:.1f},{py[a, b]:.1f}" for a, b in idx)
            r, g, b = (int(round(c)) for c in np.clip(rgb, 0, 255))
            fill = f"#{r:02x}{g:02x}{b:02x}"
            quads.append((float(np.mean([depth[a, b] for a, b in idx])), Polygon(pts, fill)))
    quads.sort(key=lambda q: -q[0])
    corner = (0, 0)
    axes = []
    labels = []
    for (a, b), text in (((0, -1), "direction 1"), ((-1, 0), "direction 2")):
        axes.append((float(px[corner]), float(py[corner]), float(px[a, b]), float(py[a, b])))
        labels.append((float(px[a, b]), float(py[a, b]) + 14, text))
    top_y = float(off_y - corner_top[1] * scale)
    axes.append((float(px[corner]), float(py[corner]), float(px[corner]), top_y))
    labels.append((float(px[corner]), top_y - 6, f"loss (≤ {cap:.3g})"))
    return SurfaceView(width, height, tuple(q[1] for q in quads), tuple(axes), tuple(labels), cap,
                       int((~np.isfinite(zz)).sum()))
