"""Graph layout quality and speed: nnreport's layered layout against Graphviz dot on the same graphs.

For the ResNet-18-, Inception- and DenseNet-121-like test models, fully expanded (every op, no group
frames), it prints the edge crossings counted geometrically on the drawn polylines (dot's splines are
sampled into polylines) and the layout time. dot is used only here (`apt-get install -y graphviz`).
With Chromium and playwright at hand it also runs the page's JavaScript port of the layout
(assets/nnreport-graph-layout.js) on the nested view, which must give the same drawing as Python's.

    python3 benchmarks/graph_layout.py [--dot-timeout 600] [--models resnet18,inception,densenet121]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from nnreport.graph import capture_graph, draw_graph  # noqa: E402
from nnreport.graph.ir import Graph  # noqa: E402
from nnreport.graph.metrics import count_crossings, edge_pair_crossings, overlapping_boxes  # noqa: E402

from models import densenet121_like, inception_like, resnet18_like  # noqa: E402

MODELS = {"resnet18": resnet18_like, "inception": inception_like, "densenet121": densenet121_like}


def dot_source(graph: Graph, sizes: dict[str, tuple[float, float]]) -> str:
    """The same graph for dot: same node order and box sizes (points at 72 per inch)."""
    lines = ["digraph G {", "  node [shape=box, fixedsize=true, label=\"\"];", "  graph [splines=spline];"]
    for n in graph.nodes:
        w, h = sizes[n.id]
        lines.append(f'  "{n.id}" [width={w / 72:.3f}, height={h / 72:.3f}];')
    seen = set()
    for e in graph.edges:
        if (e.source, e.target) not in seen:
            seen.add((e.source, e.target))
            lines.append(f'  "{e.source}" -> "{e.target}";')
    lines.append("}")
    return "\n".join(lines)


def _bezier(ctrl: list[tuple[float, float]], samples: int = 8) -> list[tuple[float, float]]:
    pts = [ctrl[0]]
    for k in range(0, len(ctrl) - 3, 3):
        p0, p1, p2, p3 = ctrl[k:k + 4]
        for i in range(1, samples + 1):
            t = i / samples
            a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t ** 3
            pts.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return pts


def run_dot(source: str, timeout: float, flags: tuple[str, ...] = ()) -> tuple[float, list[list[tuple[float, float]]] | None]:
    """Lay out with dot -Tplain; return (seconds, edge polylines in px, y down) or (seconds, None) on timeout."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.dot"
        path.write_text(source)
        start = time.perf_counter()
        try:
            out = subprocess.run(["dot", *flags, "-Tplain", str(path)], capture_output=True, text=True,
                                 timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            return time.perf_counter() - start, None
        seconds = time.perf_counter() - start
    height = 0.0
    polylines = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if parts[0] == "graph":
            height = float(parts[3])
        elif parts[0] == "edge":
            n = int(parts[3])
            ctrl = [(float(parts[4 + 2 * i]) * 72, (height - float(parts[5 + 2 * i])) * 72) for i in range(n)]
            polylines.append(_bezier(ctrl))
    return seconds, polylines


def _row(graph: str, who: str, points: object, pairs: object, seconds: object, ours: tuple[int, int, float] | None) -> None:
    ratio = speed = ""
    if ours is not None and isinstance(points, int) and isinstance(pairs, int) and isinstance(seconds, float):
        ratio = f"{ours[0] / points:.2f} / {ours[1] / pairs:.2f}" if points and pairs else f"{ours[0]} vs {points}"
        speed = f"{seconds / ours[2]:.1f}x"
    secs = f"{seconds:.2f}" if isinstance(seconds, float) else str(seconds)
    print(f"{graph:<20} {who:<26} {points!s:>9} {pairs!s:>10} {secs:>8} | {ratio:>13} {speed:>9}", flush=True)


def _javascript_nested(graph: Graph) -> tuple[list[list[tuple[float, float]]], float, int] | None:
    """The nested view laid out by the page's JavaScript in headless Chromium: (polylines, seconds, crossings)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    from nnreport.graph.packed import pack
    from nnreport.resources import resource_dir
    from nnreport.site.pages.graph import LAYOUT_SCRIPT, page_data

    data = page_data(pack(graph), 4)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.add_script_tag(content=(resource_dir("templates") / "static" / LAYOUT_SCRIPT).read_text(encoding="utf-8"))
        out = page.evaluate("""data => { const g = nnreportGraph.decode(data.graph), t = performance.now();
            const all = g.groups.filter(x => x.id).map(x => x.id);
            const v = nnreportGraph.drawView(g, all, data.restarts, new Map());
            return {ms: performance.now() - t, crossings: v.crossings, lines: v.edges.map(e => e.points)}; }""", data)
        browser.close()
    return [[tuple(q) for q in line] for line in out["lines"]], out["ms"] / 1000, out["crossings"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot-timeout", type=float, default=600.0, help="seconds per dot run")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    have_dot = shutil.which("dot") is not None
    if not have_dot:
        print("dot not found (apt-get install -y graphviz): printing nnreport's numbers only")
    print(f"{'graph':<20} {'layout':<26} {'crossings':>9} {'edge pairs':>10} {'time s':>8} | {'ours/dot':>13} {'dot/ours':>9}")
    print("-" * 104)
    for name in args.models.split(","):
        model, inputs = MODELS[name]()
        graph = capture_graph(model, inputs)
        start = time.perf_counter()
        flat = draw_graph(graph, expand="flat")
        seconds = time.perf_counter() - start
        lines = [e.points for e in flat.edges]
        ours = (count_crossings(lines), edge_pair_crossings(lines), seconds)
        assert not overlapping_boxes([(b.x, b.y, b.width, b.height) for b in flat.nodes.values()])
        title = f"{name} {len(graph.nodes)}n/{len(graph.edges)}e"
        _row(title, "nnreport (flat)", ours[0], ours[1], seconds, None)
        start = time.perf_counter()
        nested = draw_graph(graph, expand="all")
        nested_t = time.perf_counter() - start
        nested_lines = [e.points for e in nested.edges]
        _row("", "nnreport (nested groups)", count_crossings(nested_lines), edge_pair_crossings(nested_lines), nested_t, None)
        js = _javascript_nested(graph)
        if js is not None:
            js_lines, js_t, same = js
            _row("", "page JS (nested groups)", count_crossings(js_lines), edge_pair_crossings(js_lines), js_t, None)
            print(f"{'':<20} {'':<26} layered crossings: Python {nested.view.crossings}, JavaScript {same}")
        if not have_dot:
            continue
        sizes = {b.id: (b.width, b.height) for b in flat.nodes.values()}
        source = dot_source(graph, sizes)
        for who, flags in (("dot (defaults)", ()), ("dot (mclimit=.2 nslimit=2)", ("-Gmclimit=0.2", "-Gnslimit=2"))):
            took, polylines = run_dot(source, args.dot_timeout, flags)
            if polylines is None:
                _row("", who, "timeout", "timeout", f">{args.dot_timeout:.0f}", None)
            else:
                _row("", who, count_crossings(polylines), edge_pair_crossings(polylines), took, ours)
    print("\ncrossings = distinct points where drawn edges cross (nnreport's bundled edges share route pieces, so")
    print("a crossing of a bundle counts once); edge pairs = classical count, a crossing of k bundled edges counts k.")
    print("ours/dot = ratio of crossings (points / edge pairs), <= 1 is the goal; dot/ours = how much longer dot took.")
    print("Each layout runs on the same flat op graph with the same box sizes; dot's splines are sampled into polylines.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
