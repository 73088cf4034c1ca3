"""The graph page at scale, in Chromium: any set of groups open in place, deep links with several paths,
"Open all" on a 2k-op graph, the page's JavaScript layout against Python's, the worker under the CSP."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nnreport.config import ReportConfig
from nnreport.graph import capture_graph
from nnreport.graph.drawing import all_groups, draw_view
from nnreport.graph.layout import layered_layout
from nnreport.graph.packed import pack
from nnreport.resources import resource_dir
from nnreport.site.pages.graph import LAYOUT_SCRIPT, page_data

from browser import assert_clean, visit
from models import ZOO, densenet121_like, gpt_stack


def _gpt_site(tmp: Path, blocks: int) -> Path:
    import nnreport

    model, inputs = gpt_stack(blocks)
    config = ReportConfig(preset="quick", only=("graph",), cache=False, timings=False)
    insp = nnreport.inspect(model, None, config, example_inputs=inputs)
    return nnreport.render(insp, tmp / f"gpt{blocks}")


@pytest.fixture(scope="module")
def gpt4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _gpt_site(tmp_path_factory.mktemp("gpt"), 4)


def _idle(page, timeout: int = 30_000) -> None:
    page.wait_for_selector("#graph-svg[data-state=idle]", state="attached", timeout=timeout)


def _click(page, selector: str) -> None:
    """A click on a drawn node; dispatched, since a node of a big fitted drawing may be under a pixel."""
    page.dispatch_event(selector, "click")
    _idle(page)


def _drawn(page, prefix: str) -> list[str]:
    return page.evaluate("""p => [...document.querySelectorAll('#graph-layer [data-id]')]
        .map(e => e.getAttribute('data-id')).filter(i => i.startsWith(p))""", prefix)


def test_groups_opened_by_clicking_stay_open_together(browser, gpt4: Path) -> None:
    seen: dict = {}

    def act(page) -> None:
        _click(page, "#graph-layer .gv-group[data-id='blocks.0~4']")
        _click(page, "#graph-layer .gv-group[data-id='blocks.1']")
        _click(page, "#graph-layer .gv-group[data-id='blocks.3']")
        seen["frames"] = _drawn(page, "blocks.")
        seen["hash"] = page.evaluate("location.hash")
        seen["worker"] = page.get_attribute("#graph-svg", "data-worker")
        _click(page, "#graph-layer .gv-frame[data-id='blocks.1'] .gv-frame-label")
        seen["after_close"] = page.get_attribute("#graph-layer", "data-key")

    v = visit(browser, gpt4 / "graph.html", action=act)
    assert_clean(v)
    frames = seen["frames"]
    assert {"blocks.1", "blocks.3", "blocks.0", "blocks.2"} <= set(frames)
    # Ops inside the open blocks are drawn, named by their module path; closed blocks show no ops.
    assert "blocks.1.ln_1" in frames and "blocks.3.ln_1" in frames and "blocks.1.attn" in frames
    assert not [i for i in frames if i.startswith(("blocks.0.", "blocks.2."))]
    assert seen["hash"] == "#graph:blocks.1,blocks.3"
    assert seen["after_close"] == "blocks.0~4,blocks.3"
    # The layout ran in a Web Worker from a blob: URL, under the page's own CSP, from file://.
    assert seen["worker"] == "yes"
    assert "worker-src blob:" in (gpt4 / "graph.html").read_text(encoding="utf-8")


def test_a_deep_link_opens_three_paths_together(browser, gpt4: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto((gpt4 / "graph.html").resolve().as_uri() + "#graph:blocks.0,blocks.2.attn,blocks.3.mlp")
        page.wait_for_selector("#graph-layer .gv-frame[data-id='blocks.3.mlp']", state="attached")
        _idle(page)
        frames = page.evaluate("[...document.querySelectorAll('#graph-layer .gv-frame')].map(e => e.dataset.id)")
        ops = _drawn(page, "blocks.")
        hash_ = page.evaluate("location.hash")
    finally:
        page.close()
    assert not errors, errors
    assert {"blocks.0", "blocks.2", "blocks.2.attn", "blocks.3", "blocks.3.mlp", "blocks.0~4"} <= set(frames)
    assert "blocks.1" not in frames and "blocks.3.attn" not in frames
    assert "blocks.2.attn.c_attn" in ops and "blocks.3.mlp.c_fc" in ops and "blocks.0.ln_1" in ops
    assert hash_ == "#graph:blocks.0,blocks.2.attn,blocks.3.mlp"


@pytest.mark.slow
def test_open_all_on_a_2k_op_graph(browser, tmp_path: Path) -> None:
    site = _gpt_site(tmp_path, 150)
    graph = capture_graph(*gpt_stack(150))
    ops = {n.id for n in graph.nodes if n.kind == "op"}
    assert len(ops) > 1900
    seen: dict = {}

    def act(page) -> None:
        page.click("#graph-all")
        _idle(page, timeout=240_000)
        seen["ids"] = set(_drawn(page, ""))
        seen["frames"] = page.evaluate("document.querySelectorAll('#graph-layer .gv-frame').length")
        seen["hash"] = page.evaluate("location.hash")

    v = visit(browser, site / "graph.html", action=act, timeout_ms=60_000)
    assert_clean(v)
    assert ops <= seen["ids"]
    assert seen["frames"] == len(graph.groups) - 1
    assert seen["hash"] == "#graph:*"


def _js_page(browser):
    page = browser.new_page()
    page.set_content("<!DOCTYPE html><title>layout</title>")
    page.add_script_tag(content=(resource_dir("templates") / "static" / LAYOUT_SCRIPT).read_text(encoding="utf-8"))
    return page


def test_javascript_layout_matches_python_on_random_dags(browser) -> None:
    cases = []
    for seed in range(6):
        rng = random.Random(seed)
        n = 30 + 5 * seed
        sizes = [(float(rng.randint(20, 90)), float(rng.randint(16, 40))) for _ in range(n)]
        edges = [(rng.randint(max(0, v - 6), v - 1), v) for v in range(1, n) for _ in range(rng.randint(1, 3))]
        py = layered_layout(dict(enumerate(sizes)), edges, restarts=4)
        cases.append({"sizes": sizes, "edges": edges, "crossings": py.crossings,
                      "centres": [py.centres[i] for i in range(n)]})
    page = _js_page(browser)
    try:
        out = page.evaluate("""cases => cases.map(c => {
            const r = nnreportGraph.layered(c.sizes, c.edges, [], [], {restarts: 4,
                spacing: {nodeGap: 22, dummyGap: 9, layerGap: 34}});
            return {crossings: r.crossings, cx: r.cx, cy: r.cy}; })""", cases)
    finally:
        page.close()
    assert sum(c["crossings"] for c in cases) > 0  # the cases do exercise crossing reduction
    for case, js in zip(cases, out, strict=True):
        assert js["crossings"] == case["crossings"]
        for (x, y), jx, jy in zip(case["centres"], js["cx"], js["cy"], strict=True):
            assert abs(x - jx) < 1e-6 and abs(y - jy) < 1e-6


@pytest.mark.slow
def test_javascript_and_python_agree_on_crossings_for_zoo_models(browser) -> None:
    builders = {name: ZOO[name] for name in ("densenet", "inception", "text")}
    builders["densenet121"] = densenet121_like
    cases = []
    for name, build in builders.items():
        graph = capture_graph(*build())
        expansions = [[], sorted(all_groups(graph) - {""})] + [[g.id] for g in graph.groups[1:8]]
        views = [draw_view(graph, e, restarts=4) for e in expansions]
        cases.append({"name": name, "data": page_data(pack(graph), 4), "expand": expansions,
                      "crossings": [v.crossings for v in views], "boxes": [len(v.boxes) for v in views]})
    page = _js_page(browser)
    try:
        out = page.evaluate("""cases => cases.map(c => {
            const g = nnreportGraph.decode(c.data.graph), cache = new Map();
            return c.expand.map(e => { const v = nnreportGraph.drawView(g, e, c.data.restarts, cache);
                                       return [v.crossings, v.boxes.length]; }); })""", cases)
    finally:
        page.close()
    assert any(x > 0 for c in cases for x in c["crossings"])
    for case, js in zip(cases, out, strict=True):
        assert [x[0] for x in js] == case["crossings"], case["name"]
        assert [x[1] for x in js] == case["boxes"], case["name"]


def test_without_a_worker_the_page_lays_out_itself(browser, gpt4: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script("delete window.Worker")  # an old browser, or a policy that forbids workers
    try:
        page.goto((gpt4 / "graph.html").resolve().as_uri())
        _idle(page)
        _click(page, "#graph-layer .gv-group[data-id='blocks.0~4']")
        _click(page, "#graph-layer .gv-group[data-id='blocks.2']")
        worker = page.get_attribute("#graph-svg", "data-worker")
        ops = _drawn(page, "blocks.2.")
    finally:
        page.close()
    assert not errors, errors
    assert worker == "no" and "blocks.2.ln_1" in ops
