"""Drawing quality measures on drawn polylines: geometric edge crossings and box overlaps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]


def segments(polylines: Sequence[Sequence[Point]]) -> tuple[np.ndarray, np.ndarray]:
    """All segments as an (n, 4) array [x0, y0, x1, y1] plus the index of the polyline of each."""
    rows, owner = [], []
    for k, pts in enumerate(polylines):
        for a, b in zip(pts[:-1], pts[1:], strict=False):
            if a != b:
                rows.append((a[0], a[1], b[0], b[1]))
                owner.append(k)
    return np.array(rows, dtype=np.float64).reshape(-1, 4), np.array(owner, dtype=np.int64)


def crossing_points(polylines: Sequence[Sequence[Point]], eps: float = 1e-6, cell: float = 48.0) -> set[Point]:
    """Points where two drawn segments properly cross (interiors meet at one point: not at a shared
    end, not along a shared piece), rounded to 0.1 px. Bundled edges that share a piece of route
    cross a third edge there once, as drawn. Segments are bucketed by height, so only segments whose
    vertical extents share a band are tested against each other."""
    return set(_crossings(polylines, eps, cell))


def edge_pair_crossings(polylines: Sequence[Sequence[Point]], eps: float = 1e-6, cell: float = 48.0) -> int:
    """Crossings counted the classical way, per pair of edges: where k bundled edges share the piece
    of route that a third edge crosses, that counts k times."""
    return sum(_crossings(polylines, eps, cell).values())


def _crossings(polylines: Sequence[Sequence[Point]], eps: float, cell: float) -> dict[Point, int]:
    raw, owner = segments(polylines)
    rounded = np.round(raw, 3)
    seg, inverse = np.unique(rounded, axis=0, return_inverse=True)  # shared pieces are tested once
    pairs = np.unique(np.stack([inverse.reshape(-1), owner]), axis=1)[0]
    weight = np.bincount(pairs, minlength=len(seg))  # edges drawn along each piece
    if len(seg) < 2:
        return {}
    lo = np.minimum(seg[:, 1], seg[:, 3])
    hi = np.maximum(seg[:, 1], seg[:, 3])
    first, last = np.floor(lo / cell).astype(np.int64), np.floor(hi / cell).astype(np.int64)
    members: dict[int, list[int]] = {}
    for i, (a, b) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
        for c in range(a, b + 1):
            members.setdefault(c, []).append(i)
    found: dict[Point, int] = {}
    for ids in members.values():
        if len(ids) > 1:
            idx = np.array(ids)
            for point, w in _pairwise(seg[idx], weight[idx], eps).items():
                found[point] = max(found.get(point, 0), w)
    return found


def _pairwise(seg: np.ndarray, weight: np.ndarray, eps: float) -> dict[Point, int]:
    p, r = seg[:, None, :2], seg[:, None, 2:] - seg[:, None, :2]
    q, s = seg[None, :, :2], seg[None, :, 2:] - seg[None, :, :2]
    denom = r[..., 0] * s[..., 1] - r[..., 1] * s[..., 0]
    qp = q - p
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (qp[..., 0] * s[..., 1] - qp[..., 1] * s[..., 0]) / denom
        u = (qp[..., 0] * r[..., 1] - qp[..., 1] * r[..., 0]) / denom
    ok = (np.abs(denom) > eps) & (t > eps) & (t < 1 - eps) & (u > eps) & (u < 1 - eps)
    ii, jj = np.nonzero(np.triu(ok, 1))
    xs = np.round(seg[ii, 0] + t[ii, jj] * (seg[ii, 2] - seg[ii, 0]), 1)
    ys = np.round(seg[ii, 1] + t[ii, jj] * (seg[ii, 3] - seg[ii, 1]), 1)
    out: dict[Point, int] = {}
    for x, y, w in zip(xs.tolist(), ys.tolist(), (weight[ii] * weight[jj]).tolist(), strict=True):
        out[(x, y)] = out.get((x, y), 0) + w
    return out


def count_crossings(polylines: Sequence[Sequence[Point]]) -> int:
    return len(crossing_points(polylines))


def overlapping_boxes(boxes: Sequence[tuple[float, float, float, float]], tol: float = 0.5) -> list[tuple[int, int]]:
    """Pairs of boxes (x, y, w, h) whose interiors overlap by more than `tol`."""
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    ox = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    oy = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    hit = (ox > tol) & (oy > tol)
    ii, jj = np.nonzero(np.triu(hit, 1))
    return list(zip(ii.tolist(), jj.tolist(), strict=True))
