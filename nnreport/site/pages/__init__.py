"""The page registry: one function per page turns results into a template context."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnreport.inspection import Inspection
    from nnreport.site.assets import Assets

PageBuilder = Callable[["Inspection", "Assets"], Any]


@dataclass(frozen=True)
class PageSpec:
    """A page: built from `analyses`' results; shown as a status page when none of them succeeded."""

    slug: str
    title: str
    analyses: tuple[str, ...]
    order: int
    template: str
    build: PageBuilder
    # Optional lines for summary.md (the pull-request comment): key numbers and findings.
    markdown: Callable[[Inspection], str] | None = None


PAGES: dict[str, PageSpec] = {}


def page(slug: str, *, title: str, analyses: tuple[str, ...], order: int = 50, template: str | None = None,
         markdown: Callable[[Inspection], str] | None = None) -> Callable[[PageBuilder], PageBuilder]:
    """Register the decorated function as the builder of page `slug` (written to `slug`.html)."""

    def register(func: PageBuilder) -> PageBuilder:
        PAGES[slug] = PageSpec(slug, title, analyses, order, template or f"{slug}.html", func, markdown)
        return func

    return register


def load_pages() -> list[PageSpec]:
    """Import every page module; return the pages in navigation order."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return sorted(PAGES.values(), key=lambda p: (p.order, p.slug))
