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


# The import layers, top to bottom: a module may import its own layer or any below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("nnreport.cli", "nnreport.__main__"),
    ("nnreport.api",),
    ("nnreport.inspector", "nnreport.site"),                      # schedule analyses | render results
    ("nnreport.inspection", "nnreport.compare", "nnreport.modelcard"),  # the bundle, its diffs, the model card
    ("nnreport.analyses",),                                       # registrations
    ("nnreport.graph", "nnreport.relevance", "nnreport.neurons", "nnreport.landscape", "nnreport.cnnvis",
     "nnreport.playground", "nnreport.evaluation", "nnreport.attention"),  # domain packages
)  # everything else is the core (context, codec, config, loading, templating, ...), imported by all


def _module_name(path: Path) -> str:
    parts = ("nnreport",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the nnreport modules it imports anywhere in its code (lazy and type-checking imports too)."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py") if "_data" not in p.parts}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            targets |= {t for t in map(known, (n for n in names if n.startswith("nnreport"))) if t and t != module}
        graph[module] = targets
    return graph


def _layer(module: str) -> int:
    for depth, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return len(LAYERS) - depth
    return 0


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles() -> None:
    graph = _import_graph()
    assert len(graph) > 50 and "nnreport.relevance.results" in graph["nnreport.analyses.relevance"]
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_run_one_way() -> None:
    """cli -> api -> inspector (or site) -> inspection -> analyses -> domain packages -> core, never back up."""
    upward = sorted(f"{m} -> {t}" for m, targets in _import_graph().items() for t in targets if _layer(t) > _layer(m))
    assert upward == []
    assert [_layer(m) for m in ("nnreport.cli", "nnreport.site.build", "nnreport.relevance.results", "nnreport.codec")] \
        == [6, 4, 1, 0]


def test_pictures_go_through_the_one_image_macro() -> None:
    templates = Path(__file__).resolve().parents[1] / "templates"
    raw = {p.name: p.read_text(encoding="utf-8").count("<img") for p in templates.rglob("*.html")}
    assert {name: n for name, n in raw.items() if n} == {"macros.html": 1}
