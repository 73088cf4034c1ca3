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


def crossing_points(polylines: Sequence[Sequence[Point]], eps: float = 1e-6, chunk: int = 2048) -> set[Point]:
    """Points where two drawn segments properly cross (interiors meet at one point: not at a shared
    end, not along a shared piece), rounded to 0.1 px. Bundled edges that share a piece of route
    cross a third edge there once, as drawn."""
    seg, _ = segments(polylines)
    seg = np.unique(np.round(seg, 3), axis=0)  # bundled edges share segments: test each piece once
    n = len(seg)
    found: set[Point] = set()
    for start in range(0, n, chunk):
        a = seg[start:start + chunk]
        p, r = a[:, None, :2], a[:, None, 2:] - a[:, None, :2]
        q, s = seg[None, :, :2], seg[None, :, 2:] - seg[None, :, :2]
        denom = r[..., 0] * s[..., 1] - r[..., 1] * s[..., 0]
        qp = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[..., 0] * s[..., 1] - qp[..., 1] * s[..., 0]) / denom
            u = (qp[..., 0] * r[..., 1] - qp[..., 1] * r[..., 0]) / denom
        ok = (np.abs(denom) > eps) & (t > eps) & (t < 1 - eps) & (u > eps) & (u < 1 - eps)
        ok &= np.arange(start, start + len(a))[:, None] < np.arange(n)[None, :]
        ii, jj = np.nonzero(ok)
        xs = a[ii, 0] + t[ii, jj] * (a[ii, 2] - a[ii, 0])
        ys = a[ii, 1] + t[ii, jj] * (a[ii, 3] - a[ii, 1])
        found.update(zip(np.round(xs, 1).tolist(), np.round(ys, 1).tolist(), strict=True))
    return found


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
