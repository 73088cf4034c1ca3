"""The graph page at LLM scale: build time, size and in-browser timings for a GPT-style stack.

For a stack of `--blocks` pre-norm transformer blocks (720 give 9.4k ops; tests/models.py:gpt_stack) it
builds the report with only the graph analysis, then opens graph.html from file:// in headless Chromium:
first draw, opening one more group in place, two groups opened together by one link, and "Open all".
Each page timing is printed beside a baseline measured in the same run: Python's own layout
(`draw_view`) of the same view. `--export-baseline` also times torch.export capture, which "auto" skips
for models this large.

    python3 benchmarks/graph_page.py [--blocks 720] [--out DIR] [--no-open-all] [--export-baseline]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import nnreport  # noqa: E402
from nnreport.config import ReportConfig  # noqa: E402
from nnreport.graph.drawing import all_groups, draw_view  # noqa: E402

from models import gpt_stack  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def _site_bytes(site: Path) -> int:
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file())


def _page_bytes(html: str) -> int:
    start = html.index('id="graph-data">') + len('id="graph-data">')
    return len(html[start:html.index("</script>", start)].encode("utf-8"))


def _python_seconds(graph: object, expand: list[str], restarts: int) -> float:
    start = time.perf_counter()
    draw_view(graph, expand, restarts=restarts)  # type: ignore[arg-type]
    return time.perf_counter() - start


def _row(what: str, page_s: float, python_s: float | None, note: str = "") -> None:
    ratio = f"{page_s / python_s:.2f}" if python_s else ""
    base = f"{python_s:.2f}" if python_s is not None else ""
    print(f"{what:<34} {page_s:>8.2f} {base:>10} {ratio:>10}  {note}", flush=True)


def _browser(site: Path, graph: object, restarts: int, blocks: int, open_all: bool) -> None:
    from playwright.sync_api import sync_playwright

    url = (site / "graph.html").resolve().as_uri()
    series = next(g.id for g in graph.groups if g.series)  # type: ignore[attr-defined]
    a, b = f"blocks.{blocks // 3}", f"blocks.{2 * blocks // 3}"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def idle() -> float:
            page.wait_for_selector("#graph-svg[data-state=idle]", state="attached", timeout=600_000)
            return float(page.get_attribute("#graph-svg", "data-ms") or 0) / 1000

        def click(gid: str) -> float:
            page.dispatch_event(f"#graph-layer .gv-group[data-id='{gid}']", "click")
            return idle()

        page.goto(url)
        idle()
        fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0") / 1000
        ready = float(page.get_attribute("#graph-svg", "data-ready-ms") or 0) / 1000
        _row("first draw (first paint)", fcp, _python_seconds(graph, [], restarts), f"interactive at {ready:.2f} s")
        _row(f"open {series}", click(series), _python_seconds(graph, [series], restarts))
        _row(f"open {a} in place", click(a), _python_seconds(graph, [series, a], restarts))
        took = click(b)
        both = page.evaluate("[...document.querySelectorAll('#graph-layer .gv-frame')].map(e => e.dataset.id)")
        _row(f"open one more: {b}", took, _python_seconds(graph, [series, a, b], restarts),
             f"{a} still open: {a in both}, {b} open: {b in both}")
        link = browser.new_page(viewport={"width": 1280, "height": 900})
        link.on("pageerror", lambda e: errors.append(str(e)))
        start = time.perf_counter()
        link.goto(f"{url}#graph:{a},{b}")
        link.wait_for_selector(f"#graph-layer .gv-frame[data-id='{b}']", state="attached", timeout=120_000)
        took = time.perf_counter() - start
        frames = link.evaluate("[...document.querySelectorAll('#graph-layer .gv-frame')].map(e => e.dataset.id)")
        _row(f"link #graph:{a},{b}", took, _python_seconds(graph, [a, b], restarts),
             f"opened together: {a in frames and b in frames}")
        link.close()
        if open_all:
            page.click("#graph-all")
            took = idle()
            drawn = page.evaluate("document.querySelectorAll('#graph-layer [data-id]').length")
            layout = float(page.get_attribute("#graph-svg", "data-layout-ms") or 0) / 1000
            heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0") / 2**20
            _row("Open all", took, _python_seconds(graph, sorted(all_groups(graph) - {""}), restarts),  # type: ignore[arg-type]
                 f"{drawn} nodes drawn; layout {layout:.2f} s in the worker; JS heap {heap:.0f} MiB")
        browser.close()
    print(f"console errors: {len(errors)}" + (f" {errors[:3]}" if errors else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=720)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-open-all", action="store_true", help="skip Open all (and its Python baseline)")
    parser.add_argument("--export-baseline", action="store_true", help="also time torch.export capture")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="nnreport-graph-page-"))
    model, inputs = gpt_stack(args.blocks)
    config = ReportConfig(only=("graph",), cache=False, timings=False)
    start, cpu = time.perf_counter(), time.process_time()
    insp = nnreport.inspect(model, None, config, example_inputs=inputs)
    site = nnreport.render(insp, out / "site")
    build, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    result = insp.result("graph")
    graph = result.graph
    ops = sum(1 for n in graph.nodes if n.kind == "op")
    html = (site / "graph.html").read_text(encoding="utf-8")
    print(f"GPT-style stack: {args.blocks} blocks, {ops} ops, {len(graph.edges)} edges, {len(graph.groups) - 1} groups;"
          f" captured with {graph.capture}")
    print(f"build (--only graph, inspect + render): {build:.1f} s wall, {build_cpu:.1f} s CPU")
    if args.export_baseline:
        from nnreport.graph import capture_graph

        start = time.perf_counter()
        capture_graph(model, inputs, "export")
        export = time.perf_counter() - start
        print(f"baseline: torch.export capture alone {export:.1f} s (build / export capture = {build / export:.2f})")
    print(f"site: {_site_bytes(site) / 1e6:.2f} MB; graph.html {len((site / 'graph.html').read_bytes()) / 1e6:.2f} MB; "
          f"graph data in the page {_page_bytes(html) / ops:.1f} bytes per op; "
          f"block types {len(result.packed.types)}, distinct ops {len(result.packed.records)}")
    print(f"peak memory (this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"\n{'in Chromium, from file://':<34} {'page s':>8} {'python s':>10} {'page/py':>10}")
    print("-" * 70)
    _browser(site, graph, result.restarts, args.blocks, not args.no_open_all)
    print("\npage s: from the click (or navigation) until the view is drawn; python s: nnreport's Python layout of")
    print("the same view (draw_view, no cache), the baseline. Timings on a shared, loaded machine.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
