"""The graph page in Chromium: expand/collapse, deep links, search, hover card, no console errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnreport.config import ReportConfig

from browser import assert_clean, visit
from models import XSS, ZOO


def _site(tmp: Path, name: str, theme: str = "light", single_file: bool = False) -> Path:
    import nnreport

    model, inputs = ZOO[name]()
    config = ReportConfig(preset="quick", only=("graph",), cache=False, timings=False, theme=theme,
                          single_file=single_file)
    insp = nnreport.inspect(model, None, config, example_inputs=inputs)
    return nnreport.render(insp, tmp / f"{name}-{theme}-{single_file}", theme=theme, single_file=single_file)


@pytest.fixture(scope="module")
def resnet_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _site(tmp_path_factory.mktemp("graph"), "resnet")


def _visible_key(page) -> str:
    """The open groups of the drawn view (with their ancestors), comma-separated, once it is drawn."""
    page.wait_for_selector("#graph-svg[data-state=idle]", state="attached")
    return page.get_attribute("#graph-layer", "data-key")


def test_expand_collapse_and_deep_link(browser, resnet_site: Path) -> None:
    seen = {}

    def act(page) -> None:
        seen["start"] = _visible_key(page)
        seen["groups"] = page.evaluate("document.querySelectorAll('#graph-layer .gv-group').length")
        page.click("#graph-layer .gv-group[data-id='layers']")
        seen["opened"] = _visible_key(page)
        seen["frame"] = page.evaluate("!!document.querySelector('#graph-layer .gv-frame[data-id=layers]')")
        seen["hash"] = page.evaluate("location.hash")
        page.click("#graph-layer .gv-frame[data-id='layers'] .gv-frame-label")
        seen["closed"] = _visible_key(page)
        page.hover("#graph-layer .gv-group[data-id='layers']")
        seen["card"] = page.evaluate("document.getElementById('graph-card').hidden ? '' : document.getElementById('graph-card').textContent")

    v = visit(browser, resnet_site / "graph.html", action=act)
    assert_clean(v)
    assert seen["start"] == "" and seen["groups"] >= 1
    assert seen["opened"] == "layers" and seen["frame"]
    assert seen["hash"] == "#graph:layers"
    assert seen["closed"] == ""
    assert "Sequential" in seen["card"] and "parameters" in seen["card"]

    deep = {}
    page = browser.new_page()
    try:
        page.goto((resnet_site / "graph.html").resolve().as_uri() + "#graph:" + "layers.1.0")
        page.wait_for_selector("#graph-svg[data-ready]", state="attached")
        deep["key"] = _visible_key(page)
    finally:
        page.close()
    assert deep["key"] == "layers,layers.1.0"


def test_search_finds_and_highlights_a_nested_node(browser, resnet_site: Path) -> None:
    seen = {}

    def act(page) -> None:
        page.fill("#graph-search", "downsample")
        seen["status"] = page.text_content("#graph-search-status")
        seen["view"] = _visible_key(page)
        seen["hit"] = page.evaluate("""() => { const h = document.querySelector('#graph-layer .gv-hit');
            return h ? h.getAttribute('data-id') : null; }""")
        page.fill("#graph-search", "no-such-layer-xyz")
        seen["none"] = page.text_content("#graph-search-status")

    v = visit(browser, resnet_site / "graph.html", action=act)
    assert_clean(v)
    assert seen["status"].startswith("1 of")
    assert seen["hit"] is not None and "downsample" in seen["hit"]
    assert seen["view"] != ""  # it had to open the block that holds the downsample branch
    assert seen["none"] == "no match"


def test_download_link_carries_a_standalone_svg(browser, resnet_site: Path) -> None:
    seen = {}

    def act(page) -> None:
        page.evaluate("document.getElementById('graph-download').dispatchEvent(new MouseEvent('click', {cancelable: true}))")
        seen["href"] = page.get_attribute("#graph-download", "href")

    v = visit(browser, resnet_site / "graph.html", action=act)
    assert_clean(v)
    assert seen["href"].startswith("data:image/svg+xml")
    assert "%3Csvg" in seen["href"] and "gv-node" in seen["href"]


@pytest.mark.parametrize("name", ["nasty_names", "control_flow"])
def test_zoo_pages_are_clean_and_escaped(browser, tmp_path: Path, name: str) -> None:
    site = _site(tmp_path, name, theme="paper")
    html = (site / "graph.html").read_text(encoding="utf-8")
    assert XSS not in html
    v = visit(browser, site / "graph.html")
    assert_clean(v)
    if name == "control_flow":
        assert "torch.export failed" in html


def test_single_file_report_keeps_the_graph_working(browser, tmp_path: Path) -> None:
    site = _site(tmp_path, "inception", single_file=True)
    seen = {}

    def act(page) -> None:
        page.click("#graph-layer .gv-group[data-id='blocks']")
        seen["key"] = _visible_key(page)

    v = visit(browser, site / "report.html", action=act)
    assert_clean(v)
    assert seen["key"] == "blocks"
