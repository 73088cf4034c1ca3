"""One generic codec: frozen dataclasses of numpy arrays and plain values <-> JSON + .npz (torch-free)."""

from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
import zipfile
from collections.abc import Mapping
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np

_ARRAY_KEY = "__ndarray__"


def encode(obj: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """Turn a result into a JSON-ready tree plus the arrays it refers to by key."""
    arrays: dict[str, np.ndarray] = {}
    return _encode(obj, "r", arrays), arrays


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _encode(getattr(obj, f.name), f"{path}.{f.name}", arrays) for f in dataclasses.fields(obj)}
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"  # numbered in traversal order: stable, and never two paths on one key
        arrays[key] = obj
        return {_ARRAY_KEY: key}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [_encode(v, f"{path}.{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"{path}: mapping keys must be str, got {type(key).__name__}")
        # Sorted, so that a mapping's arrays are numbered the same whatever order it was filled in (a
        # result read back from the cache has its keys in JSON's sorted order).
        return {k: _encode(obj[k], f"{path}.{k}", arrays) for k in sorted(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"{path}: cannot encode {type(obj).__name__}; results hold numpy arrays and plain values")


def decode(tp: Any, tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Rebuild a value of type `tp` from `encode`'s output, guided by the type hints."""
    origin = get_origin(tp)
    if tp is Any:
        return tree
    if origin in (Union, types.UnionType):
        return _decode_union(get_args(tp), tree, arrays)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        kwargs = {f.name: decode(hints[f.name], tree[f.name], arrays) for f in dataclasses.fields(tp) if f.name in tree}
        return tp(**kwargs)
    if tp is np.ndarray or origin is np.ndarray:
        return np.asarray(arrays[tree[_ARRAY_KEY]])
    if origin in (list, tuple) or tp in (list, tuple):
        args = get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(decode(a, v, arrays) for a, v in zip(args, tree, strict=True))
        item = args[0] if args else Any
        values = [decode(item, v, arrays) for v in tree]
        return tuple(values) if origin is tuple or tp is tuple else values
    if origin is dict or tp is dict:
        args = get_args(tp)
        item = args[1] if args else Any
        return {k: decode(item, tree[k], arrays) for k in sorted(tree)}
    if origin is Literal:
        if tree not in get_args(tp):
            raise ValueError(f"{tree!r} is not one of {get_args(tp)}")
        return tree
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(tree)
    if tp is float and isinstance(tree, int):
        return float(tree)
    return tree


def _decode_union(options: tuple[Any, ...], tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if tree is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return decode(option, tree, arrays)
        except (TypeError, ValueError, KeyError) as exc:
            errors.append(str(exc))
    raise ValueError(f"value matches none of {options}: {errors}")


def dumps_json(tree: Any) -> str:
    """Deterministic JSON text (sorted keys, fixed separators); NaN/inf allowed."""
    return json.dumps(tree, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=True) + "\n"


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A deterministic .npz (fixed member timestamps, sorted order, no pickle)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            array = np.asarray(arrays[key])
            if array.dtype == object:
                raise TypeError(f"{key}: object arrays cannot be stored without pickle")
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    """Read an .npz written by `npz_bytes`, refusing pickled members."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def to_files(obj: Any) -> tuple[str, bytes]:
    """Encode a result as (JSON text, npz bytes)."""
    tree, arrays = encode(obj)
    return dumps_json(tree), npz_bytes(arrays)


def from_files(tp: Any, json_text: str, npz: bytes | None) -> Any:
    """Decode a result of type `tp` from its JSON text and npz bytes."""
    arrays = load_npz(npz) if npz else {}
    return decode(tp, json.loads(json_text), arrays)
