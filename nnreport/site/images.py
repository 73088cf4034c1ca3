"""Images for the site: colour maps, tiling and deterministic PNG encoding (Pillow + numpy)."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np

ColourMap = Literal["viridis", "magma", "rdbu", "gray"]

# Anchor colours sampled from the published maps; intermediate values are interpolated linearly.
_ANCHORS: dict[str, list[str]] = {
    "viridis": ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"],
    "magma": ["#000004", "#1c1044", "#4f127b", "#812581", "#b5367a", "#e55964", "#fb8761", "#fec287", "#fcfdbf"],
    # Diverging: negative blue, zero white, positive red.
    "rdbu": ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"],
    "gray": ["#000000", "#ffffff"],
}


def _lut(name: str, n: int = 256) -> np.ndarray:
    anchors = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in _ANCHORS[name]], dtype=np.float64)
    pos = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, pos, anchors[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


_LUTS = {name: _lut(name) for name in _ANCHORS}


def colourize(values: np.ndarray, cmap: ColourMap = "viridis", vmin: float | None = None,
              vmax: float | None = None) -> np.ndarray:
    """Map a 2-D array to RGB uint8 (H, W, 3). For "rdbu" the scale is symmetric around zero by default."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if cmap == "rdbu" and vmin is None and vmax is None:
        m = float(np.abs(finite).max()) if finite.size else 1.0
        vmin, vmax = -m, m
    lo = float(finite.min()) if vmin is None and finite.size else (vmin if vmin is not None else 0.0)
    hi = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    scale = hi - lo if hi > lo else 1.0
    idx = np.clip((np.nan_to_num(v, nan=lo) - lo) / scale, 0, 1) * 255
    return _LUTS[cmap][idx.round().astype(np.int64)]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) or (H, W) float image in [0, 1] -> RGB uint8 (H, W, 3)."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else img[:3].transpose(1, 2, 0)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return thumbnail((np.clip(img, 0, 1) * 255).round().astype(np.uint8))


# Inputs and maps show at most this many pixels a side: a 512-px input adds bytes, not insight.
THUMBNAIL = 224


def thumbnail(rgb: np.ndarray, side: int = THUMBNAIL) -> np.ndarray:
    """Shrink an (H, W, 3) uint8 image by the smallest whole factor that fits `side` (box average)."""
    h, w = rgb.shape[:2]
    k = -(-max(h, w) // side)
    if k <= 1:
        return rgb
    hh, ww = h // k * k, w // k * k
    blocks = rgb[:hh, :ww].reshape(hh // k, k, ww // k, k, -1).astype(np.float64).mean(axis=(1, 3))
    return blocks.round().astype(np.uint8)


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so small maps stay crisp in the browser."""
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1) if factor > 1 else rgb


def tile(tiles: list[np.ndarray], columns: int, pad: int = 1, background: int = 255) -> np.ndarray:
    """Lay equally sized RGB tiles out in a grid."""
    if not tiles:
        return np.full((1, 1, 3), background, dtype=np.uint8)
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    cols = min(columns, len(tiles))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), background, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = t
    return out


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes with no metadata (so identical pixels give identical files)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()
