"""The analysis registry: each analysis is registered by name with its config and result types.

Analysis modules in this package must import without torch (the site decodes their result types on
machines without it): they import torch inside the analysis function or keep heavy code elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnreport.context import Context


@dataclass(frozen=True)
class Analysis:
    """One registered analysis: `run(ctx, config) -> result`."""

    name: str
    title: str
    run: Callable[[Context, Any], Any]
    config_type: type
    result_type: type
    requires: tuple[str, ...] = ()
    order: int = 50
    summary: str = ""


REGISTRY: dict[str, Analysis] = {}


def analysis(
    name: str,
    *,
    title: str,
    config: type,
    result: type,
    requires: tuple[str, ...] = (),
    order: int = 50,
) -> Callable[[Callable[[Context, Any], Any]], Callable[[Context, Any], Any]]:
    """Register the decorated function as the analysis `name`."""

    def register(func: Callable[[Context, Any], Any]) -> Callable[[Context, Any], Any]:
        if name in REGISTRY and REGISTRY[name].run is not func:
            raise ValueError(f"analysis {name!r} is registered twice")
        doc = (func.__doc__ or "").strip().splitlines()
        REGISTRY[name] = Analysis(name, title, func, config, result, requires, order, doc[0] if doc else "")
        return func

    return register


def load_all() -> dict[str, Analysis]:
    """Import every analysis module so that each registers itself; return the registry."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def get_analysis(name: str) -> Analysis:
    """Look up an analysis by name; the error lists the known names."""
    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown analysis {name!r}; known analyses: {known}") from None


def ordered(names: list[str] | None = None) -> list[Analysis]:
    """Analyses in dependency order (requirements first), ties broken by display order then name."""
    registry = load_all()
    wanted = set(registry) if names is None else set(names)
    done: list[Analysis] = []
    seen: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in stack:
            raise ValueError(f"analysis dependency cycle: {' -> '.join(stack + (name,))}")
        spec = get_analysis(name)
        for dep in spec.requires:
            visit(dep, stack + (name,))
        seen.add(name)
        done.append(spec)

    for spec in sorted((registry[n] for n in wanted), key=lambda a: (a.order, a.name)):
        visit(spec.name, ())
    return done
