"""Open report pages in headless Chromium and collect what a reader's browser would see."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PageVisit:
    url: str
    console_errors: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)
    charts: int = 0
    charts_rendered: int = 0
    svgs: int = 0
    empty_svgs: int = 0
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def visit(browser: Any, path: Path, timeout_ms: int = 30_000, action: Any = None) -> PageVisit:
    """Load a page from file://, wait for its charts, and report errors, requests and what was drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    result = PageVisit(path.resolve().as_uri())
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.console_errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: result.network.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
    try:
        page.goto(result.url)
        page.wait_for_selector("body[data-charts-ready]", state="attached", timeout=timeout_ms)
        if action is not None:
            action(page)
        stats = page.evaluate("""() => {
            const charts = [...document.querySelectorAll('.vega-chart')];
            const svgs = [...document.querySelectorAll('svg')];
            return {
              charts: charts.length,
              rendered: charts.filter(c => c.getAttribute('data-rendered') === 'true' && c.querySelector('svg, canvas')).length,
              svgs: svgs.length,
              empty: svgs.filter(s => { const b = s.getBoundingClientRect(); return s.childElementCount === 0 || b.width === 0 || b.height === 0; })
                         .filter(s => !s.closest('[hidden], details:not([open]), .collapsed')).length,
              broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src').slice(0, 80)),
              links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
            };
        }""")
        result.charts, result.charts_rendered = stats["charts"], stats["rendered"]
        result.svgs, result.empty_svgs = stats["svgs"], stats["empty"]
        result.broken_images, result.links = stats["broken"], stats["links"]
    finally:
        page.close()
    return result


def assert_clean(v: PageVisit) -> None:
    """No console errors, no network requests, every chart drawn, no empty SVG, no broken image."""
    assert not v.console_errors, f"{v.url}: console errors {v.console_errors}"
    assert not v.network, f"{v.url}: network requests {v.network}"
    assert v.charts == v.charts_rendered, f"{v.url}: {v.charts - v.charts_rendered} of {v.charts} charts not drawn"
    assert v.empty_svgs == 0, f"{v.url}: {v.empty_svgs} empty SVG(s)"
    assert not v.broken_images, f"{v.url}: broken images {v.broken_images}"
