"""Image files on disk: find them, check them cheaply, and decode one with a bound on its size."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from nnreport.errors import named

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Refused before decoding: 50 megapixels is a 200 MB RGBA buffer; a photograph has a tenth of that.
MAX_PIXELS = 50_000_000
# Formats whose last bytes say whether the file is complete (a truncated file fails only when decoded).
_TRAILERS = {"JPEG": (b"\xff\xd9",), "PNG": (b"IEND\xaeB`\x82",), "GIF": (b"\x3b",)}


class UnreadableImage(Exception):
    """A file that is not a complete, decodable image of an acceptable size; the message says why."""


def image_files(folder: Path) -> list[Path]:
    """The entries directly inside `folder` named like images, sorted by name (fifos and devices too, so that
    check_image names them as skipped instead of leaving them out unsaid)."""
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.is_dir())


def check_image(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[tuple[int, int], str]:
    """Read only the header (and the last bytes) of `path`: its (width, height) and mode.
    Raises UnreadableImage for non-images, truncated files and images over `max_pixels`."""
    from PIL import Image

    if not path.is_file():  # a fifo would block the read, a device never end it
        raise UnreadableImage("not a plain file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by our own limit
            im = Image.open(path)
        with im:
            size, mode, fmt = im.size, im.mode, im.format or ""
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"not a readable image ({named(exc, 80)})") from None
    if size[0] * size[1] > max_pixels:
        raise UnreadableImage(f"{size[0]}×{size[1]} pixels is over the limit of {max_pixels:,}")
    if fmt in _TRAILERS and not _ends_with(path, _TRAILERS[fmt]):
        raise UnreadableImage(f"truncated {fmt} file")
    return size, mode


def _ends_with(path: Path, trailers: tuple[bytes, ...]) -> bool:
    """Whether one of `trailers` ends the file, allowing trailing zero padding (some cameras add it)."""
    with path.open("rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 4096))
        tail = f.read().rstrip(b"\x00")
    return any(tail.endswith(t) for t in trailers)


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode one image, refusing it by its header's size before any pixel is decoded."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, by our own limit
            im = Image.open(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"not a readable image ({named(exc, 80)})") from None
    try:
        if im.size[0] * im.size[1] > max_pixels:
            raise UnreadableImage(f"{im.size[0]}×{im.size[1]} pixels is over the limit of {max_pixels:,}")
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        im.close()
        raise UnreadableImage(f"cannot be decoded ({type(exc).__name__}: {exc})") from None
    except UnreadableImage:
        im.close()
        raise
    return im
