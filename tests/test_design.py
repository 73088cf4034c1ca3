"""The boundaries of DESIGN.md, enforced: analyses compute plain typed data and never print or build HTML;
configs are complete dataclasses with valid presets; every result type round-trips through the codec."""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import pytest

from nnreport.analyses import REGISTRY, load_all
from nnreport.config import PRESETS

ROOT = Path(__file__).resolve().parents[1] / "nnreport"
COMPUTE_DIRS = [p for p in ROOT.iterdir() if p.is_dir() and p.name not in ("site", "__pycache__", "_data")]
PLAIN = (int, float, str, bool, type(None), np.ndarray)

load_all()


def _compute_files() -> list[Path]:
    return sorted(f for d in COMPUTE_DIRS for f in d.rglob("*.py"))


@pytest.mark.parametrize("path", _compute_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_compute_code_never_prints_or_builds_html(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prints = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]
    assert not prints, f"print() at lines {prints}: report progress through ctx.stage() instead"
    # Module-level imports only: a library helper such as draw_graph(...).svg() may render lazily.
    imports = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    imports |= {n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert not any(m == "jinja2" or m.startswith("nnreport.site") for m in imports), "compute code must not render"


def _check_type(tp: Any, where: str) -> None:
    origin = typing.get_origin(tp)
    if tp in PLAIN or origin is Literal:
        return
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            _check_type(arg, where)
        return
    if origin in (list, tuple):
        for arg in typing.get_args(tp):
            if arg is not Ellipsis:
                _check_type(arg, where)
        return
    if origin is dict:
        key, value = typing.get_args(tp)
        assert key is str, f"{where}: dict keys must be str"
        _check_type(value, where)
        return
    if dataclasses.is_dataclass(tp):
        assert tp.__dataclass_params__.frozen, f"{where}: {tp.__name__} must be frozen"
        for name, hint in typing.get_type_hints(tp).items():
            _check_type(hint, f"{where}.{name}")
        return
    raise AssertionError(f"{where}: {tp!r} is not plain typed data (numpy arrays, numbers, strings, dataclasses)")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_results_are_plain_typed_data(name: str) -> None:
    spec = REGISTRY[name]
    assert dataclasses.is_dataclass(spec.result_type)
    _check_type(spec.result_type, spec.result_type.__name__)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_configs_have_defaults_and_valid_presets(name: str) -> None:
    spec = REGISTRY[name]
    assert dataclasses.is_dataclass(spec.config_type)
    spec.config_type()  # every option has a default (the standard preset)
    presets = getattr(spec.config_type, "PRESETS", {})
    assert set(presets) <= set(PRESETS), f"unknown preset names {set(presets) - set(PRESETS)}"
    fields = {f.name for f in dataclasses.fields(spec.config_type)}
    for preset, values in presets.items():
        assert set(values) <= fields, f"{preset}: unknown options {set(values) - fields}"
        spec.config_type(**values)
