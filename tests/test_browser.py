"""Reports in a real browser (Debian's Chromium via playwright): no console errors, no network requests,
charts and SVGs drawn, links resolve, and names from the model shown as text, never run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import nnreport
from nnreport.cli import main
from nnreport.config import ReportConfig

from browser import assert_clean, visit
from models import XSS, nasty_names_model

pytestmark = pytest.mark.browser


def _pages(report: Path) -> list[Path]:
    return sorted(report.glob("*.html"))


def test_every_demo_page_is_clean(browser: object, demo_report: Path) -> None:
    pages = _pages(demo_report)
    assert len(pages) >= 1 and (demo_report / "index.html") in pages
    for page in pages:
        v = visit(browser, page)
        assert_clean(v)
        for href in v.links:
            parts = urlsplit(href)
            assert not parts.scheme and not parts.netloc, f"{page.name}: absolute link {href}"
            if parts.path:
                assert (page.parent / parts.path).exists(), f"{page.name}: broken link {href}"


def test_index_shows_the_model_card_and_layer_table(browser: object, demo_report: Path) -> None:
    def check(page: object) -> None:
        text = page.inner_text("main")  # type: ignore[attr-defined]
        for expected in ("Model card", "Parameters", "Test accuracy", "Layers", "Conv2d: ", "Total"):
            assert expected in text

    v = visit(browser, demo_report / "index.html", action=check)
    assert v.charts >= 1 and v.charts_rendered == v.charts


def test_single_file_report_is_clean(browser: object, demo_report: Path, tmp_path: Path) -> None:
    out = tmp_path / "single"
    assert main(["render", str(demo_report / "inspection"), "--out", str(out), "--single-file"]) == 0
    v = visit(browser, out / "report.html")
    assert_clean(v)
    assert all(h.startswith("#") for h in v.links if not h.startswith("data:")), v.links


def test_dark_theme_draws_dark_charts(browser: object, demo_report: Path, tmp_path: Path) -> None:
    out = tmp_path / "dark"
    assert main(["render", str(demo_report / "inspection"), "--out", str(out), "--theme", "dark"]) == 0
    colours: dict[str, str] = {}

    def read(page: object) -> None:
        colours["body"] = page.evaluate("getComputedStyle(document.body).backgroundColor")  # type: ignore[attr-defined]
        colours["chart"] = page.evaluate(  # type: ignore[attr-defined]
            "(() => { const s = document.querySelector('.vega-chart svg'); return s ? s.style.backgroundColor : ''; })()")

    v = visit(browser, out / "index.html", action=read)
    assert_clean(v)
    assert colours["body"] == "rgb(15, 20, 25)"
    assert colours["chart"].lower() in ("#0f1419", "rgb(15, 20, 25)"), colours


def test_names_from_the_model_are_shown_as_text(browser: object, tmp_path: Path) -> None:
    data = nnreport.load_builtin("iris")
    labels = (XSS, '<img src=x onerror="alert(2)">', "a & b")
    subject = nnreport.Subject(nasty_names_model(), class_names=labels, name=XSS)
    insp = nnreport.inspect(subject, replace(data, class_names=labels, name=XSS),
                            ReportConfig(preset="quick", title=XSS))
    out = nnreport.render(insp, tmp_path / "xss")
    dialogs: list[str] = []
    for page_file in _pages(out):
        page = browser.new_page()  # type: ignore[attr-defined]
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.resolve().as_uri())
        page.wait_for_selector("body[data-charts-ready]", state="attached", timeout=30_000)
        if page_file.name == "index.html":
            assert XSS in page.inner_text("body")
        page.close()
        assert_clean(visit(browser, page_file))
    assert dialogs == [], f"script from a model name ran: {dialogs}"
