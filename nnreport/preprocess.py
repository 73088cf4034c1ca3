"""How an image becomes the model's input: resizing, cropping, scaling and normalisation, or the model's own
transform; every step is stated on the model card, and the display undoes exactly the normalisation applied."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nnreport.errors import UsageError

if TYPE_CHECKING:
    from PIL import Image

Normalize = Literal["imagenet", "data", "none"]
NORMALIZE_CHOICES: tuple[str, ...] = ("imagenet", "data", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Images whose channel statistics are estimated for `--normalize data` (seeded; bounded whatever the folder's size).
STATS_SAMPLE = 256


@dataclass(frozen=True)
class Preprocess:
    """PIL image -> (C, H, W) float32. Either the fixed steps below, in order, or a user's callable."""

    mode: str = "RGB"                        # "L" (one channel) or "RGB"
    size: tuple[int, int] | None = None      # resize to exactly (width, height), bilinear
    size_note: str = ""                      # why that size (e.g. "the folder's most common size")
    resize: int | None = None                # or: shorter side to this many pixels, aspect kept, bilinear
    crop: int | None = None                  # then a centre crop of crop × crop
    mean: tuple[float, ...] | None = None    # per channel, applied to values in [0, 1]
    std: tuple[float, ...] | None = None
    stats_note: str = ""                     # where mean and std come from
    normalize: str = "none"                  # "imagenet", "data" (estimated by the loader), "none" or "custom"
    custom: Callable[[Any], Any] | None = None
    custom_name: str = ""

    def __call__(self, im: Image.Image) -> np.ndarray:
        if self.custom is not None:
            return _custom_output(self.custom(im.convert("RGB")), self.custom_name)
        im = _geometry(im, self)
        x = _unit_range(im, self.mode)
        if self.mean is not None and self.std is not None:
            mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
            std = np.asarray(self.std, np.float32).reshape(-1, 1, 1)
            x = (x - mean) / std
        return x.astype(np.float32)

    @property
    def channels(self) -> int:
        return 1 if self.mode == "L" else 3

    def describe(self) -> str:
        """What the model was fed, in one sentence-like line for the model card."""
        if self.custom is not None:
            norm = (f"; it normalises with mean {_fmt(self.mean)} and std {_fmt(self.std)} (undone for display)"
                    if self.mean is not None else "; its normalisation is unknown, so images show min-max scaled")
            shown = _short_repr(self.custom)
            return (f"the model's own transform {self.custom_name}{f' = {shown}' if shown else ''} applied to each "
                    f"RGB image{norm}")
        steps = ["converted to one grey channel" if self.mode == "L" else "converted to RGB"]
        if self.size is not None:
            steps.append(f"resized to {self.size[0]}×{self.size[1]} (bilinear{', ' + self.size_note if self.size_note else ''})")
        if self.resize is not None:
            steps.append(f"shorter side resized to {self.resize} px (bilinear, aspect kept)")
        if self.crop is not None:
            steps.append(f"centre-cropped to {self.crop}×{self.crop}")
        steps.append("scaled to [0, 1]")
        if self.mean is not None and self.std is not None:
            steps.append(f"normalised with mean {_fmt(self.mean)} and std {_fmt(self.std)}"
                         + (f" ({self.stats_note})" if self.stats_note else ""))
        else:
            steps.append("not normalised")
        return "; ".join(steps)

    def key(self) -> str:
        """Identifies the preprocessing for cache fingerprints (a callable by its qualified name)."""
        custom = self.custom
        name = f"{getattr(custom, '__module__', '')}.{getattr(custom, '__qualname__', type(custom).__name__)}:{custom!r}"
        return f"{self.describe()}|{name if custom is not None else ''}"


def _short_repr(obj: Any, limit: int = 300) -> str:
    """A transform's own description (torchvision's say their sizes, interpolation, mean and std), on one line;
    "" where it is only a type and an address."""
    text = " ".join(repr(obj).split())
    if " at 0x" in text or text.startswith("<"):
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(values: tuple[float, ...] | None) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values or ()) + ")"


def _geometry(im: Image.Image, p: Preprocess) -> Image.Image:
    from PIL import Image

    bilinear = Image.Resampling.BILINEAR
    if p.size is not None and im.size != p.size:
        im = _as_resizable(im).resize(p.size, bilinear)
    if p.resize is not None:
        w, h = im.size
        short, long = (w, h) if w <= h else (h, w)
        # torchvision's Resize(int): the shorter side to `resize`, the longer truncated in proportion.
        new_long = int(p.resize * long / short)
        new = (p.resize, new_long) if w <= h else (new_long, p.resize)
        if new != im.size:
            im = _as_resizable(im).resize(new, bilinear)
    if p.crop is not None:
        w, h = im.size
        c = p.crop
        if w < c or h < c:  # as torchvision: pad with zeros when the image is smaller than the crop
            padded = Image.new(im.mode, (max(w, c), max(h, c)))
            padded.paste(im, ((max(w, c) - w) // 2, (max(h, c) - h) // 2))
            im, (w, h) = padded, padded.size
        top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
        im = im.crop((left, top, left + c, top + c))
    return im


def _as_resizable(im: Image.Image) -> Image.Image:
    """Palette and bilevel images are converted before resizing (resampling palette indices is meaningless)."""
    if im.mode in ("P", "1"):
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "CMYK":
        return im.convert("RGB")
    return im


def _unit_range(im: Image.Image, mode: str) -> np.ndarray:
    """(C, H, W) float32 in [0, 1]; 16- and 32-bit grey images are scaled by their type's range, not clipped."""
    if mode == "L" and im.mode in ("I", "I;16", "I;16B", "I;16L"):
        x = np.asarray(im, dtype=np.float32) / 65535.0
        return np.clip(x, 0.0, 1.0)[None]
    if mode == "L" and im.mode == "F":
        return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)[None]
    x = np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    return x[None] if mode == "L" else x.transpose(2, 0, 1)


def _custom_output(out: Any, name: str) -> np.ndarray:
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    x = np.asarray(out)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number):
        raise UsageError(f"the transform {name} returned {getattr(x, 'shape', '?')}; it must turn a PIL image "
                         "into a (C, H, W) tensor")
    return x.astype(np.float32)


def normalisation_of(transform: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | tuple[None, None]:
    """The mean and std a transform normalises with, where it says (a torchvision `Normalize`, a
    `weights.transforms()` preset, or a `Compose` holding one); else (None, None)."""
    found = [transform]
    while found:
        t = found.pop(0)
        mean, std = getattr(t, "mean", None), getattr(t, "std", None)
        if mean is not None and std is not None:
            try:
                return tuple(float(v) for v in mean), tuple(float(v) for v in std)
            except TypeError:
                pass
        found += list(getattr(t, "transforms", []) or [])
    return None, None


def from_options(transform: Any, image_size: int | None, normalize: str | None, mode: str,
                 name: str = "") -> Preprocess | None:
    """The preprocessing asked for by --transform / --image-size / --normalize, or None for the default.
    `transform` is "imagenet", a callable, or None; `mode` is the data's colour mode ("L" or "RGB")."""
    if normalize is not None and normalize not in NORMALIZE_CHOICES:
        raise UsageError(f"--normalize {normalize!r}: choose one of {', '.join(NORMALIZE_CHOICES)}")
    if image_size is not None and image_size < 1:
        raise UsageError(f"--image-size {image_size}: give a positive number of pixels")
    if callable(transform):
        if image_size is not None or normalize is not None:
            raise UsageError("--image-size and --normalize do not combine with a callable --transform: "
                             "the transform decides the size and normalisation")
        mean, std = normalisation_of(transform)
        return Preprocess(mode="RGB", mean=mean, std=std, custom=transform, normalize="custom",
                          custom_name=name or getattr(transform, "__name__", type(transform).__name__))
    if transform not in (None, "imagenet"):
        raise UsageError(f"--transform {transform!r}: write imagenet or FILE.py:callable (PIL image -> tensor)")
    if transform == "imagenet":
        side = image_size or 224
        base = Preprocess(mode="RGB", resize=round(side * 256 / 224), crop=side)
        return with_normalisation(base, normalize or "imagenet")
    if image_size is None and normalize is None:
        return None
    base = Preprocess(mode=mode, resize=image_size, crop=image_size)
    return with_normalisation(base, normalize or "data")


def with_normalisation(p: Preprocess, normalize: str) -> Preprocess:
    """Set ImageNet's statistics, or none; "data" is left for the loader, which estimates them from a sample."""
    if normalize == "imagenet":
        if p.mode == "L":
            return replace(p, mean=(float(np.mean(IMAGENET_MEAN)),), std=(float(np.mean(IMAGENET_STD)),),
                           stats_note="ImageNet's, averaged over channels for grey images", normalize="imagenet")
        return replace(p, mean=IMAGENET_MEAN, std=IMAGENET_STD, stats_note="ImageNet's", normalize="imagenet")
    if normalize == "none":
        return replace(p, mean=None, std=None, stats_note="", normalize="none")
    return replace(p, mean=None, std=None, normalize="data")  # the loader fills mean/std from a sample
