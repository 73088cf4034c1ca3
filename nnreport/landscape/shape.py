"""Numbers that describe a loss surface: local minima, growth away from the centre, curvature (numpy only)."""

from __future__ import annotations

import numpy as np


def local_minima(loss: np.ndarray) -> int:
    """Interior grid points strictly lower than all eight finite neighbours (the window's edge is left out,
    because a point there has no outside neighbours to compare with)."""
    z = np.asarray(loss, dtype=np.float64)
    if z.ndim != 2 or min(z.shape) < 3:
        return 0
    centre = z[1:-1, 1:-1]
    ok = np.isfinite(centre)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            nb = z[1 + dy:z.shape[0] - 1 + dy, 1 + dx:z.shape[1] - 1 + dx]
            ok &= ~np.isfinite(nb) | (centre < nb)
    return int(ok.sum())


def ring_mean(x: np.ndarray, y: np.ndarray, loss: np.ndarray, radius: float) -> float:
    """Mean finite loss over grid points within half a step of `radius` from the centre."""
    step = float(np.min(np.diff(x))) if len(x) > 1 else 1.0
    r = np.hypot(*np.meshgrid(x, y))
    ring = (np.abs(r - radius) <= step / 2 + 1e-12) & np.isfinite(loss)
    return float(loss[ring].mean()) if ring.any() else float("nan")


def negative_curvature_fraction(x: np.ndarray, y: np.ndarray, loss: np.ndarray) -> float:
    """Share of interior points where the surface's 2-D finite-difference Hessian has a negative eigenvalue
    (saddles and ridges: non-convex there)."""
    z = np.asarray(loss, dtype=np.float64)
    if z.ndim != 2 or min(z.shape) < 3:
        return float("nan")
    hx, hy = float(np.mean(np.diff(x))), float(np.mean(np.diff(y)))
    fxx = (z[1:-1, 2:] - 2 * z[1:-1, 1:-1] + z[1:-1, :-2]) / hx ** 2
    fyy = (z[2:, 1:-1] - 2 * z[1:-1, 1:-1] + z[:-2, 1:-1]) / hy ** 2
    fxy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * hx * hy)
    lam_min = (fxx + fyy) / 2 - np.sqrt(((fxx - fyy) / 2) ** 2 + fxy ** 2)
    ok = np.isfinite(lam_min)
    if not ok.any():
        return float("nan")
    scale = max(float(np.nanmax(np.abs(np.where(ok, fxx + fyy, np.nan)))), 1e-12)
    return float((lam_min[ok] < -1e-6 * scale).mean())


def centre_index(coords: np.ndarray) -> int:
    return int(np.argmin(np.abs(coords)))
