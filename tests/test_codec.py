"""The generic codec: dataclasses of numpy arrays and plain values round-trip through JSON + npz."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnreport import codec


@dataclass(frozen=True)
class Inner:
    label: str
    values: np.ndarray
    weight: float | None = None


@dataclass(frozen=True)
class Outer:
    name: str
    mode: Literal["a", "b"]
    inners: tuple[Inner, ...]
    table: dict[str, list[int]]
    shape: tuple[int, ...]
    maybe: Inner | None = None


arrays = hnp.arrays(dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
inners = st.builds(Inner, label=st.text(max_size=12), values=arrays,
                   weight=st.one_of(st.none(), st.floats(allow_nan=False, width=32)))
outers = st.builds(Outer, name=st.text(max_size=20), mode=st.sampled_from(["a", "b"]),
                   inners=st.lists(inners, max_size=3).map(tuple),
                   table=st.dictionaries(st.text(max_size=5), st.lists(st.integers(-5, 5), max_size=3), max_size=3),
                   shape=st.lists(st.integers(1, 9), max_size=4).map(tuple), maybe=st.one_of(st.none(), inners))


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=60, deadline=None)
@given(outers)
def test_round_trip(value: Outer) -> None:
    text, npz = codec.to_files(value)
    assert _equal(codec.from_files(Outer, text, npz), value)


@settings(max_examples=20, deadline=None)
@given(outers)
def test_encoding_is_deterministic(value: Outer) -> None:
    assert codec.to_files(value) == codec.to_files(value)


def test_npz_has_no_pickle_and_fixed_timestamps() -> None:
    data = codec.npz_bytes({"b": np.arange(3), "a": np.ones((2, 2))})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert [i.filename for i in zf.infolist()] == ["a.npy", "b.npy"]  # sorted, whatever the insertion order
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with pytest.raises(TypeError):
        codec.npz_bytes({"x": np.array([object()], dtype=object)})


def test_rejects_values_it_cannot_store() -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        codec.encode(Inner("x", np.zeros(1), weight=object()))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        codec.decode(Outer, {"name": "n", "mode": "zzz", "inners": [], "table": {}, "shape": []}, {})


@dataclass(frozen=True)
class Maps:
    maps: dict[str, np.ndarray]


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.text(max_size=6), arrays, max_size=5), st.randoms(use_true_random=False))
def test_encoding_is_canonical_whatever_the_key_order(maps: dict[str, np.ndarray], rnd: object) -> None:
    """A mapping filled in another order (as one read back from the cache is) encodes to the same bytes."""
    keys = list(maps)
    rnd.shuffle(keys)  # type: ignore[attr-defined]
    shuffled = Maps({k: maps[k] for k in keys})
    files = codec.to_files(Maps(maps))
    assert codec.to_files(shuffled) == files
    # ... and a round trip through the files changes nothing either.
    assert codec.to_files(codec.from_files(Maps, *files)) == files


def test_inspection_get_returns_a_typed_result() -> None:
    from nnreport.inspection import Inspection

    insp = Inspection(manifest=None, results={"maps": Maps({})})  # type: ignore[arg-type]
    assert insp.get("maps", Maps) == Maps({}) and insp.get("absent", Maps) is None
    with pytest.raises(TypeError, match="not a Inner"):
        insp.get("maps", Inner)
    with pytest.raises(KeyError, match="no absent result"):
        insp.require("absent", Maps)
