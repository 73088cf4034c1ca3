"""Bounded, checked reads of user files: images, bundle members, config text.

Every refusal is one line naming the file and the problem: a symbolic link or a device where a file
belongs, a file larger than its limit, a truncated image, a decompression bomb.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nnreport.errors import SpecError

MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000; checked from the header, before any pixel is decoded
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
GRAY_MODES = ("L", "1", "LA", "F") + SIXTEEN_BIT_MODES


def read_bytes(path: str | Path, limit: int, what: str = "file", error: type[Exception] = SpecError,
               follow: bool = False) -> bytes:
    """The bytes of regular file `path`, refusing devices, fifos, files over `limit` bytes and (unless
    `follow`) symbolic links."""
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise error(f"{what} {p} does not exist") from None
    except OSError as exc:
        why = "is a symbolic link" if p.is_symlink() else f"cannot be opened ({exc.strerror})"
        raise error(f"{what} {p} {why}; nnreport reads only plain files") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {p} is not a plain file (a device, fifo or folder); nnreport reads only plain files")
        if info.st_size > limit:
            raise error(f"{what} {p} is {info.st_size:,} bytes, more than the {limit:,} allowed")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} {p} grew past the {limit:,} bytes allowed while being read")
    return data


def read_text(path: str | Path, limit: int, what: str = "file", error: type[Exception] = SpecError,
              follow: bool = False) -> str:
    """UTF-8 text of a plain file (see `read_bytes`); a decoding error names the byte offset."""
    data = read_bytes(path, limit, what, error, follow)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _open_image(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():  # a fifo would block the open, a device never ends
        raise SpecError(f"image {path} is not a plain file")
    try:
        with warnings.catch_warnings():  # Pillow warns past its own limit; ours below is lower and one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise SpecError(f"cannot read image {path}: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SpecError(f"cannot read image {path}: {exc}") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise SpecError(f"image {path} is {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS:,} allowed "
                        "(a decompression bomb, or far too large for a report)")
    return im


def image_header(path: str | Path) -> tuple[tuple[int, int], str]:
    """(width, height) and PIL mode of an image, from its header alone; the file is closed again."""
    with _open_image(Path(path)) as im:
        return im.size, im.mode


def _scaled(im: Any, gray: bool) -> np.ndarray:
    """Pixels in [0, 1]: 8-bit divided by 255, 16-bit by 65535 (not clipped to 255), float as is."""
    if im.mode in SIXTEEN_BIT_MODES:
        a = np.asarray(im, dtype=np.float32) / 65535.0
        return a if gray else np.repeat(a[..., None], 3, axis=-1)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float32)
        return a if gray else np.repeat(a[..., None], 3, axis=-1)
    return np.asarray(im.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if (a.shape[1], a.shape[0]) == size:
        return a
    channels = [a] if a.ndim == 2 else [a[..., c] for c in range(a.shape[-1])]
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(c), mode="F").resize(size, Image.Resampling.BILINEAR))
           for c in channels]
    return out[0] if a.ndim == 2 else np.stack(out, axis=-1)


def read_image(path: str | Path, gray: bool, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as float32 in [0, 1], (H, W) if `gray` else (H, W, 3), resized to `size` (width, height).

    The file is opened, decoded and closed here (a folder of thousands of images never holds them all
    open), and a truncated file or a decompression bomb is a one-line SpecError naming it."""
    from PIL import Image

    p = Path(path)
    with _open_image(p) as im:
        try:
            im.load()
            if im.mode in ("L", "1", "RGB", "RGBA", "P", "LA", "CMYK", "YCbCr") and size is not None:
                # 8-bit images: convert and resize as 8-bit, as before (the same numbers as earlier reports)
                small = im.convert("L" if gray else "RGB")
                if small.size != size:
                    small = small.resize(size, Image.Resampling.BILINEAR)
                return np.asarray(small, dtype=np.float32) / 255.0
            a = _scaled(im, gray)
        except (OSError, ValueError, SyntaxError) as exc:
            raise SpecError(f"cannot read image {p}: {exc}") from None
    return _resize(a, size) if size is not None else a
