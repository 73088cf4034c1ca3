"""Vet a torch.export archive (.pt2) before torch loads it: no member may need full unpickling.

`torch.export.load` honours an archive's own `use_pickle` flags and falls back to
`torch.load(weights_only=False)` for sample inputs and legacy state dicts, so a crafted archive runs
code on load. We read the zip ourselves first and refuse every route to a full unpickle (or to a
compiled library); `--unsafe-pickle` skips the check for archives the user trusts.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nnreport.errors import SpecError, first_line

MAX_MEMBER_BYTES = 1 << 30  # a pickled member we verify ourselves is read whole: bound it
MAX_CONFIG_BYTES = 64 << 20
# Constants stored as TorchScript objects or plain pickles (see torch/export/pt2_archive/_package.py).
UNSAFE_CONSTANT_PREFIXES = ("custom_obj_", "opaque_obj_")
UNSAFE_SUFFIXES = (".so", ".dll", ".dylib", ".pyd")
# The 2.7-era layout keeps these as torch.save bytes, which torch unpickles with a weights_only=False fallback.
LEGACY_PICKLED = ("serialized_state_dict.json", "serialized_constants.json")


def vet_archive(path: Path) -> None:
    """Raise SpecError when loading `path` would unpickle arbitrary objects or load native code."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                _vet_member(path, zf, info)
    except zipfile.BadZipFile as exc:
        raise SpecError(f"{path} is not a readable torch.export archive (not a zip file: {exc})") from None
    except (OSError, EOFError) as exc:
        raise SpecError(f"{path} is not a readable torch.export archive ({type(exc).__name__}: {exc})") from None


def _refuse(path: Path, member: str, why: str) -> SpecError:
    return SpecError(f"{path} member {member} {why}; unpickling runs arbitrary code, so nnreport refuses it "
                     "(re-export with torch.export.save, or pass --unsafe-pickle if you trust the file)")


def _vet_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if name.lower().endswith(UNSAFE_SUFFIXES) or "aotinductor" in name.lower():
        raise _refuse(path, name, "is a compiled library")
    if name.endswith("_config.json") and "/data/" in f"/{name}":
        _vet_payload_config(path, name, _read(path, zf, info, MAX_CONFIG_BYTES))
    elif name.endswith(".pt") or name.rpartition("/")[2] in LEGACY_PICKLED:
        _vet_pickle(path, name, _read(path, zf, info, MAX_MEMBER_BYTES))


def _read(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise SpecError(f"{path} member {info.filename} is {info.file_size:,} bytes, more than the {limit:,} allowed")
    with zf.open(info) as f:
        return f.read(limit + 1)[:limit]


def _vet_payload_config(path: Path, name: str, data: bytes) -> None:
    """A weights/constants config: every payload must be raw tensor bytes, never a pickle."""
    try:
        config = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"{path} member {name} is not valid JSON ({type(exc).__name__})") from None
    entries = config.get("config", {}) if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise SpecError(f"{path} member {name} is not a payload config")
    for fqn, meta in entries.items():
        if not isinstance(meta, dict):
            raise SpecError(f"{path} member {name}: entry {fqn!r} is not an object")
        if meta.get("use_pickle"):
            raise _refuse(path, name, f"asks for {fqn!r} to be unpickled")
        if str(meta.get("path_name", "")).startswith(UNSAFE_CONSTANT_PREFIXES):
            raise _refuse(path, name, f"stores {fqn!r} as a pickled object")


def _vet_pickle(path: Path, name: str, data: bytes) -> None:
    """Sample inputs and legacy state dicts are torch.save files: they must load with weights_only."""
    import torch

    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _refuse(path, name, f"does not load as plain tensors ({first_line(exc, 160)})") from None


@contextlib.contextmanager
def tensors_only() -> Iterator[None]:
    """Within the block, every `torch.load` is `weights_only=True` (a second guard behind `vet_archive`)."""
    import torch

    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = load  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = original


def load_exported(path: Path, unsafe_pickle: bool = False) -> Any:
    """`torch.export.load(path)`, after vetting the archive unless `unsafe_pickle`."""
    import torch

    if unsafe_pickle:
        return torch.export.load(str(path))
    vet_archive(path)
    with tensors_only():
        return torch.export.load(str(path))
