"""Built-in offline datasets (digits, shapes, 2-D point sets, iris, cars) as plain numpy (torch-free)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

if TYPE_CHECKING:
    from nnreport.streaming import LazyInputs

# In-memory arrays, or inputs read on demand (image folders, torch Datasets): both index like numpy.
Inputs = Union[np.ndarray, "LazyInputs"]
DataKind = Literal["image", "points", "tabular", "sequence", "other"]


@dataclass(frozen=True)
class Dataset:
    """Inputs in the model's own space (already normalised), with optional labels and masks."""

    name: str
    kind: DataKind
    x_train: Inputs
    y_train: np.ndarray | None
    x_test: Inputs
    y_test: np.ndarray | None
    class_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None
    # Ground-truth object masks for x_test (N, H, W), where the data knows them (built-in `shapes`).
    masks_test: np.ndarray | None = None
    # Per-channel normalisation applied to the raw [0, 1] images, to show them as the eye saw them.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    description: str = ""
    # Token data: the string of each id (so token heatmaps can show words).
    vocab: tuple[str, ...] | None = None
    # For the model card: what the model was fed, how the splits came about, and files left out.
    preprocessing: str = ""
    split: str = ""
    skipped: tuple[str, ...] = ()   # the first few unreadable files, "name: why"
    skipped_count: int = 0

    @property
    def has_labels(self) -> bool:
        return self.y_train is not None and self.y_test is not None

    @property
    def num_classes(self) -> int | None:
        if self.class_names is not None:
            return len(self.class_names)
        if self.y_train is not None and np.issubdtype(self.y_train.dtype, np.integer):
            return int(max(self.y_train.max(), self.y_test.max() if self.y_test is not None else 0)) + 1
        return None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_test.shape[1:])

    def value_range(self) -> tuple[float, float]:
        """The range of input values: for streamed images with a known normalisation, the image of [0, 1]
        under it (nothing read); otherwise as seen in (at most 4,000 samples of) the data."""
        if not isinstance(self.x_test, np.ndarray) and self.kind == "image" and self.mean is not None \
                and self.std is not None:
            lows = [(0.0 - m) / s for m, s in zip(self.mean, self.std, strict=True)]
            highs = [(1.0 - m) / s for m, s in zip(self.mean, self.std, strict=True)]
            return float(min(lows)), float(max(highs))
        if isinstance(self.x_test, np.ndarray) and isinstance(self.x_train, np.ndarray):
            x = np.concatenate([self.x_train[:2000], self.x_test[:2000]])
            return float(x.min()), float(x.max())
        lo, hi = np.inf, -np.inf  # streamed: 256 of each split, read a batch at a time
        for split in (self.x_train, self.x_test):
            for start in range(0, min(256, len(split)), 64):
                batch = np.asarray(split[start:min(start + 64, 256, len(split))])
                lo, hi = min(lo, float(batch.min())), max(hi, float(batch.max()))
        return float(lo), float(hi)

    def card_notes(self) -> tuple[str, ...]:
        """Lines for the model card: the preprocessing, the split and any files that were left out."""
        notes = []
        if self.preprocessing:
            notes.append(f"Fed to the model: {self.preprocessing}.")
        if self.split:
            notes.append(f"Split: {self.split}.")
        if self.skipped_count:
            shown = "; ".join(self.skipped)
            more = f" (and {self.skipped_count - len(self.skipped)} more)" if self.skipped_count > len(self.skipped) else ""
            notes.append(f"Skipped {self.skipped_count} unreadable file(s): {shown}{more}.")
        return tuple(notes)

    def to_display(self, x: np.ndarray) -> np.ndarray:
        """Undo the normalisation of image inputs (N, C, H, W) so that they show as [0, 1] (where the data does
        not say how it was normalised, values outside [0, 1] are scaled by the batch's range)."""
        x = np.asarray(x)
        if self.mean is None or self.std is None:
            lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
            if self.kind != "image" or (lo >= 0.0 and hi <= 1.0):
                return x
            return ((x - lo) / (hi - lo if hi > lo else 1.0)).astype(x.dtype)
        mean = np.asarray(self.mean, dtype=x.dtype).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=x.dtype).reshape(1, -1, 1, 1)
        return np.clip(x * std + mean, 0.0, 1.0)


_BUILTINS: dict[str, Callable[[int], Dataset]] = {}
BUILTIN_DESCRIPTIONS: dict[str, str] = {}


def builtin(name: str, description: str) -> Callable[[Callable[[int], Dataset]], Callable[[int], Dataset]]:
    """Register a generator of a built-in dataset under `name`."""

    def register(func: Callable[[int], Dataset]) -> Callable[[int], Dataset]:
        _BUILTINS[name] = func
        BUILTIN_DESCRIPTIONS[name] = description
        return func

    return register


def builtin_names() -> list[str]:
    return sorted(_BUILTINS)


@cache
def load_builtin(name: str, seed: int = 0) -> Dataset:
    """Return the built-in dataset `name`; the error lists the known names."""
    if name not in _BUILTINS:
        raise KeyError(f"unknown built-in dataset {name!r}; known: {', '.join(builtin_names())}")
    ds = _BUILTINS[name](seed)
    split = ds.split or (f"built-in, split at random with seed {seed}: {len(ds.x_test):,} test and "
                         f"{len(ds.x_train):,} training samples")
    return replace(ds, description=ds.description or BUILTIN_DESCRIPTIONS[name], split=split)


def _split(x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float = 0.25) -> tuple[np.ndarray, ...]:
    """A deterministic stratified split."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return x_tr, y_tr, x_te, y_te


def _normalise_images(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((x - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)).astype(np.float32)


def upsample(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of (N, H, W) float images to (N, size, size), via Pillow."""
    from PIL import Image

    out = np.empty((len(images), size, size), dtype=np.float32)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR))
    return out


@builtin("digits", "scikit-learn's 8x8 handwritten digits (1,797 images), upsampled to 16x16, normalised")
def _digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = upsample(raw.images / 16.0, 16)[:, None]
    x_tr, y_tr, x_te, y_te = _split(images, raw.target.astype(np.int64), seed)
    mean, std = np.array([float(x_tr.mean())]), np.array([float(x_tr.std())])
    return Dataset(
        name="digits",
        kind="image",
        x_train=_normalise_images(x_tr, mean, std),
        y_train=y_tr,
        x_test=_normalise_images(x_te, mean, std),
        y_test=y_te,
        class_names=tuple(str(d) for d in range(10)),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )


SHAPE_NAMES = ("circle", "square", "triangle", "cross")


def _shape_mask(kind: str, size: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if kind == "circle":
        return dx * dx + dy * dy <= r * r
    if kind == "square":
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if kind == "triangle":
        # Equilateral triangle pointing up in its rotated frame.
        return (v <= r * 0.6) & (v >= -r + np.abs(u) * 1.7 - r * 0.1)
    arm = r * 0.32
    return ((np.abs(u) <= arm) & (np.abs(v) <= r)) | ((np.abs(v) <= arm) & (np.abs(u) <= r))


def make_shapes(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coloured shapes on textured backgrounds: images (N, 3, H, W) in [0, 1], labels, masks."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    labels = np.arange(n) % len(SHAPE_NAMES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(n):
        # Texture: a few random low-frequency sinusoids per channel, plus fine noise.
        bg = np.zeros((3, size, size), dtype=np.float32)
        for ch in range(3):
            fx, fy, ph = rng.uniform(1, 5), rng.uniform(1, 5), rng.uniform(0, 2 * np.pi)
            bg[ch] = 0.5 + 0.18 * np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
        bg += rng.normal(0, 0.05, bg.shape).astype(np.float32)
        r = rng.uniform(size * 0.18, size * 0.3)
        cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
        mask = _shape_mask(SHAPE_NAMES[labels[i]], size, cx, cy, r, rng.uniform(0, np.pi))
        colour = rng.uniform(0, 1, 3).astype(np.float32)
        colour[rng.integers(3)] = rng.choice([0.05, 0.95])  # keep the object distinct from the grey-ish texture
        images[i] = np.where(mask[None], colour[:, None, None], bg)
        masks[i] = mask
    return np.clip(images, 0, 1), labels.astype(np.int64), masks


@builtin("shapes", "generated coloured shapes (circle, square, triangle, cross) on textured 32x32 backgrounds, with object masks")
def _shapes(seed: int) -> Dataset:
    images, labels, masks = make_shapes(2000, seed)
    n_test = 500
    mean = images[n_test:].mean(axis=(0, 2, 3))
    std = images[n_test:].std(axis=(0, 2, 3))
    return Dataset(
        name="shapes",
        kind="image",
        x_train=_normalise_images(images[n_test:], mean, std),
        y_train=labels[n_test:],
        x_test=_normalise_images(images[:n_test], mean, std),
        y_test=labels[:n_test],
        class_names=SHAPE_NAMES,
        masks_test=masks[:n_test],
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )


def _points(name: str, x: np.ndarray, y: np.ndarray, seed: int, classes: tuple[str, ...]) -> Dataset:
    x_tr, y_tr, x_te, y_te = _split(x.astype(np.float32), y.astype(np.int64), seed)
    return Dataset(name, "points", x_tr, y_tr, x_te, y_te, class_names=classes, feature_names=("x1", "x2"))


@builtin("moons", "two interleaving half-moons (2-D, 600 points)")
def _moons(seed: int) -> Dataset:
    from sklearn.datasets import make_moons

    x, y = make_moons(600, noise=0.15, random_state=seed)
    return _points("moons", (x - [0.5, 0.25]) * 1.2, y, seed, ("upper", "lower"))


@builtin("circles", "a circle inside a ring (2-D, 600 points)")
def _circles(seed: int) -> Dataset:
    from sklearn.datasets import make_circles

    x, y = make_circles(600, noise=0.08, factor=0.45, random_state=seed)
    return _points("circles", x * 1.5, y, seed, ("outer", "inner"))


@builtin("xor", "the exclusive-or pattern of four quadrants (2-D, 600 points)")
def _xor(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (600, 2))
    x += np.sign(x) * 0.08  # a small margin between the quadrants
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return _points("xor", x, y, seed, ("different sign", "same sign"))


@builtin("spiral", "two interleaved spirals (2-D, 600 points)")
def _spiral(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    n = 300
    t = np.sqrt(rng.uniform(0, 1, n)) * 3.0 * np.pi
    arms = []
    for k in range(2):
        angle = t + k * np.pi
        arm = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) / (3.0 * np.pi) * 1.8
        arms.append(arm + rng.normal(0, 0.04, arm.shape))
    x = np.concatenate(arms)
    y = np.repeat([0, 1], n)
    return _points("spiral", x, y, seed, ("arm A", "arm B"))


@builtin("gauss", "two Gaussian blobs (2-D, 600 points)")
def _gauss(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal([-0.8, -0.8], 0.45, (300, 2)), rng.normal([0.8, 0.8], 0.45, (300, 2))])
    return _points("gauss", x, np.repeat([0, 1], 300), seed, ("blob A", "blob B"))


def _tabular(name: str, features: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
             feature_names: tuple[str, ...], seed: int) -> Dataset:
    x_tr, y_tr, x_te, y_te = _split(features.astype(np.float32), labels.astype(np.int64), seed)
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-8
    return Dataset(
        name, "tabular", ((x_tr - mean) / std).astype(np.float32), y_tr,
        ((x_te - mean) / std).astype(np.float32), y_te, class_names=classes, feature_names=feature_names,
    )


@builtin("iris", "Fisher's iris flowers from vega-datasets: 4 standardised measurements, 3 species")
def _iris(seed: int) -> Dataset:
    from vega_datasets import local_data

    df = local_data.iris()
    names = ("sepalLength", "sepalWidth", "petalLength", "petalWidth")
    classes = tuple(sorted(df["species"].unique()))
    labels = df["species"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return _tabular("iris", df[list(names)].to_numpy(), labels, classes, names, seed)


@builtin("cars", "cars from vega-datasets: 6 standardised specs, origin (USA/Europe/Japan) as the class")
def _cars(seed: int) -> Dataset:
    from vega_datasets import local_data

    names = ("Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration")
    df = local_data.cars().dropna(subset=list(names))
    classes = tuple(sorted(df["Origin"].unique()))
    labels = df["Origin"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return _tabular("cars", df[list(names)].to_numpy(dtype=np.float64), labels, classes, names, seed)
