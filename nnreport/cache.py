"""Result cache keyed by fingerprints of analysis, config, weights, inputs, data and versions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnreport import codec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nnreport.datasets import Dataset


@cache
def code_fingerprint() -> str:
    """A digest of nnreport's own source: a code change invalidates cached results, not only a release."""
    package = Path(__file__).resolve().parent
    files = sorted(package.rglob("*.py"))
    return digest(str(f.relative_to(package)).encode() + f.read_bytes() for f in files)


def cache_root() -> Path:
    """$NNREPORT_CACHE_DIR, else $XDG_CACHE_HOME/nnreport, else ~/.cache/nnreport."""
    if os.environ.get("NNREPORT_CACHE_DIR"):
        return Path(os.environ["NNREPORT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nnreport"


def digest(parts: Iterable[bytes | str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes()


def model_fingerprint(model: nn.Module) -> str:
    """Architecture (repr) plus every parameter and buffer's name, dtype, shape and bytes."""
    parts: list[bytes | str] = [type(model).__qualname__, repr(model)]
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        parts += [name, str(t.dtype), str(tuple(t.shape)), tensor_bytes(t)]
    return digest(parts)


def tensors_fingerprint(tensors: Iterable[torch.Tensor]) -> str:
    return digest(p for t in tensors for p in (str(t.dtype), str(tuple(t.shape)), tensor_bytes(t)))


def dataset_fingerprint(data: Dataset | None) -> str:
    if data is None:
        return "none"
    data = _lazy_as_fingerprints(data)
    tree, arrays = codec.encode(data)
    return digest([json.dumps(tree, sort_keys=True)] + [k.encode() + np.ascontiguousarray(arrays[k]).tobytes() for k in sorted(arrays)])


def _lazy_as_fingerprints(data: Dataset) -> Dataset:
    """Streamed inputs stand in the fingerprint by their identity (files, sizes, times, preprocessing), not their
    decoded pixels, so fingerprinting reads no image."""
    from nnreport.streaming import LazyInputs

    lazy = {k: getattr(data, k) for k in ("x_train", "x_test") if isinstance(getattr(data, k), LazyInputs)}
    if not lazy:
        return data
    marks: dict[str, Any] = {k: np.frombuffer(v.fingerprint().encode(), np.uint8) for k, v in lazy.items()}
    return dataclasses.replace(data, **marks)


class ResultCache:
    """Stores each result as JSON + npz under <root>/results/<fingerprint>/."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()

    def _dir(self, fingerprint: str) -> Path:
        return self.root / "results" / fingerprint[:2] / fingerprint

    def probe(self) -> str:
        """'' when results can be stored here, else why not (the build then runs without a cache)."""
        try:
            (self.root / "results").mkdir(parents=True, exist_ok=True)
            Path(tempfile.mkdtemp(dir=self.root / "results", prefix=".probe-")).rmdir()
        except OSError as exc:
            return f"cannot write the result cache {self.root} ({exc.strerror or exc})"
        return ""

    def scratch(self, fingerprint: str) -> Path | None:
        """A folder for an analysis's checkpoints, so that an interrupted run can resume (None: no room)."""
        path = self.root / "scratch" / fingerprint
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return path

    def get(self, fingerprint: str, result_type: type) -> tuple[Any, float | None] | None:
        """A stored result, or None. An unreadable entry (truncated, bit-flipped, wrong type) is a miss,
        and is removed so that `put` writes it afresh."""
        folder = self._dir(fingerprint)
        if not folder.is_dir():
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text())
            npz = folder / "result.npz"
            result = codec.from_files(result_type, (folder / "result.json").read_text(), npz.read_bytes() if npz.exists() else None)
            seconds = meta.get("seconds") if isinstance(meta, dict) else None
            if seconds is not None and not isinstance(seconds, (int, float)):
                raise TypeError("meta.json: seconds is not a number")
        except Exception:  # any damage at all: zip, JSON, UTF-8, recursion, decoding errors
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return result, seconds

    def put(self, fingerprint: str, result: Any, seconds: float) -> None:
        """Write atomically: a half-written entry is never visible. A cache that cannot be written is
        skipped (the build goes on)."""
        folder = self._dir(fingerprint)
        if folder.exists():
            return
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        except OSError:
            return
        try:
            text, npz = codec.to_files(result)
            (tmp / "result.json").write_text(text)
            (tmp / "result.npz").write_bytes(npz)
            (tmp / "meta.json").write_text(json.dumps({"seconds": seconds}))
            os.replace(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(self.root / "scratch" / fingerprint, ignore_errors=True)
