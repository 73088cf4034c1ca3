"""Inputs read on demand: image files and torch Datasets behave like numpy arrays (len, shape, dtype,
x[i], x[a:b], x[index array]) but decode only the items asked for, so memory follows the request, not the data."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from nnreport.imagefiles import MAX_PIXELS, UnreadableImage, read_image
from nnreport.preprocess import Preprocess

# Items read per batch when iterating, and the batch size below which decoding stays on one thread.
BATCH = 64
_THREADED_FROM = 8


class LazyInputs(ABC):
    """An array-like of model inputs (N, *item_shape) whose items are produced only when indexed."""

    item_shape: tuple[int, ...]
    dtype: np.dtype

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _read(self, idx: np.ndarray) -> np.ndarray:
        """Items at the (valid, non-negative) positions `idx`, stacked."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Identifies the contents without reading them all (for the result cache)."""

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.item_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.item_shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.read(np.array([int(key)]))[0]
        if isinstance(key, slice):
            return self.read(np.arange(*key.indices(len(self))))
        if isinstance(key, tuple):
            raise TypeError("lazy inputs take one index (an int, a slice or an index array), not a tuple")
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        flat = self.read(idx.reshape(-1))
        return flat.reshape(*idx.shape, *self.item_shape)

    def read(self, idx: np.ndarray) -> np.ndarray:
        """Items at positions `idx` (negative positions count from the end), as one numpy array."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        n = len(self)
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"index out of range for {n} inputs")
        if not idx.size:
            return np.empty((0, *self.item_shape), dtype=self.dtype)
        return self._read(idx)

    def batches(self, size: int = BATCH, n: int | None = None) -> Iterator[np.ndarray]:
        """The first `n` items (default all) in batches of `size`."""
        stop = len(self) if n is None else min(n, len(self))
        for start in range(0, stop, size):
            yield self.read(np.arange(start, min(start + size, stop)))

    def __iter__(self) -> Iterator[np.ndarray]:
        for batch in self.batches():
            yield from batch

    def view(self, idx: np.ndarray) -> LazyInputs:
        """The items at `idx`, still lazy (a split, a subset)."""
        return IndexView(self, np.asarray(idx, dtype=np.int64))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Everything, decoded: only for small data (points, short token sets); analyses index instead."""
        out = self.read(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"


def head(x: Any, n: int) -> Any:
    """The first `n` inputs: a lazy view for lazy inputs (nothing decoded yet), else a slice."""
    if isinstance(x, LazyInputs):
        return x.view(np.arange(min(n, len(x))))
    return x[:n]


def preprocess_of(x: Any) -> Preprocess | None:
    """The preprocessing behind lazy image inputs (None for arrays and tensor datasets)."""
    while isinstance(x, IndexView):
        x = x.base
    return getattr(x, "preprocess", None)


def subset(x: Any, idx: np.ndarray) -> Any:
    """The inputs at `idx`: a lazy view for lazy inputs (decoded batch by batch by whoever reads it), else an array."""
    return x.view(idx) if isinstance(x, LazyInputs) else x[idx]


class IndexView(LazyInputs):
    """Selected items of another lazy sequence."""

    def __init__(self, base: LazyInputs, idx: np.ndarray) -> None:
        self.base, self.idx = base, idx
        self.item_shape, self.dtype = base.item_shape, base.dtype

    def __len__(self) -> int:
        return len(self.idx)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        return self.base.read(self.idx[idx])

    def view(self, idx: np.ndarray) -> LazyInputs:
        return IndexView(self.base, self.idx[np.asarray(idx, dtype=np.int64)])

    def fingerprint(self) -> str:
        return _hash(self.base.fingerprint(), self.idx.tobytes())


class ImageFiles(LazyInputs):
    """Image files decoded and preprocessed on demand, on a few threads (Pillow releases the GIL while decoding)."""

    def __init__(self, files: list[Path], preprocess: Preprocess, max_pixels: int = MAX_PIXELS) -> None:
        # Paths as plain strings: about a third of the memory of Path objects, for folders of millions of files.
        self.files = [str(f) for f in files]
        self.preprocess, self.max_pixels = preprocess, max_pixels
        self.failures: list[str] = []  # files that passed the header check but failed to decode
        first = self._one(self.files[0])
        self.item_shape, self.dtype = tuple(first.shape), np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.files)

    def _one(self, path: str) -> np.ndarray:
        with read_image(Path(path), self.max_pixels) as im:
            return self.preprocess(im)

    def _safe(self, path: str) -> np.ndarray:
        try:
            x = self._one(path)
        except UnreadableImage as exc:
            self.failures.append(f"{Path(path).name}: {exc}")
            return np.zeros(self.item_shape, np.float32)  # the data mean, after normalisation
        if x.shape != self.item_shape:
            raise ValueError(f"{Path(path).name} preprocessed to {x.shape}, not {self.item_shape} like the first image; "
                             "give --image-size or a transform that returns one size")
        return x

    def _read(self, idx: np.ndarray) -> np.ndarray:
        paths = [self.files[int(i)] for i in idx]
        out = np.empty((len(paths), *self.item_shape), dtype=np.float32)
        if len(paths) < _THREADED_FROM:
            for j, p in enumerate(paths):
                out[j] = self._safe(p)
            return out
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for j, x in enumerate(pool.map(self._safe, paths)):
                out[j] = x
        return out

    def fingerprint(self) -> str:
        parts = [self.preprocess.key()]
        for f in self.files:
            st = os.stat(f)
            parts.append(f"{f}|{st.st_size}|{st.st_mtime_ns}")
        return _hash(*parts)


class TorchItems(LazyInputs):
    """The inputs of a torch Dataset (`ds[i]` or `ds[i][0]`); PIL images go through `preprocess`."""

    def __init__(self, dataset: Any, preprocess: Preprocess | None = None) -> None:
        self.dataset, self.preprocess = dataset, preprocess
        first = self._one(0)
        self.item_shape, self.dtype = tuple(first.shape), first.dtype

    def __len__(self) -> int:
        return len(self.dataset)

    def _one(self, i: int) -> np.ndarray:
        item = self.dataset[i]
        x = item[0] if isinstance(item, (tuple, list)) else item
        return to_array(x, self.preprocess)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        if self.preprocess is not None and len(idx) >= _THREADED_FROM:
            # Items are PIL images: the decoding and resizing release the GIL, so a few threads help.
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                out = np.stack(list(pool.map(self._one, (int(i) for i in idx))))
        else:
            out = np.stack([self._one(int(i)) for i in idx])
        if out.shape[1:] != self.item_shape:
            raise ValueError(f"the dataset's items have different shapes ({out.shape[1:]} vs {self.item_shape}); "
                             "give it a transform that returns one size")
        return out.astype(self.dtype, copy=False)

    def fingerprint(self) -> str:
        """Type, length and a seeded sample of 16 items: a Dataset has no cheaper identity."""
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(len(self), size=min(16, len(self)), replace=False))
        t = type(self.dataset)
        return _hash(f"{t.__module__}.{t.__qualname__}|{len(self)}", self._read(sample).tobytes(),
                     self.preprocess.key() if self.preprocess else "")


def to_array(x: Any, preprocess: Preprocess | None) -> np.ndarray:
    """One item as numpy: tensors and arrays as they are (floats as float32), PIL images preprocessed."""
    if hasattr(x, "getbands"):  # a PIL image
        if preprocess is None:
            raise ValueError("the dataset returns PIL images; give it a transform, or pass --transform")
        return preprocess(x)
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr


def channel_stats(x: LazyInputs, seed: int, sample: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (N, C, H, W) inputs, over a seeded sample of at most `sample` items,
    read in batches (so memory stays bounded whatever the data's size)."""
    n = len(x)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    total = np.zeros(x.item_shape[0])
    total_sq = np.zeros(x.item_shape[0])
    count = 0
    for start in range(0, len(idx), 16):
        b = x.read(idx[start:start + 16])
        total += b.sum(axis=(0, 2, 3), dtype=np.float64)
        total_sq += np.square(b).sum(axis=(0, 2, 3), dtype=np.float64)
        count += b.shape[0] * b.shape[2] * b.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0)) + 1e-6
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _hash(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()
