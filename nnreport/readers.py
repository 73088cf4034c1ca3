"""Bounded, checked reads of user files: bundle members and config text (images: nnreport.imagefiles).

Every refusal is one line naming the file and the problem: a symbolic link or a device where a file
belongs, a file larger than its limit, a truncated image, a decompression bomb.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nnreport.errors import SpecError


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
