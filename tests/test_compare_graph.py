"""The compare page's graph section: a self-comparison highlights nothing, a widened layer highlights exactly
the rows the layer table calls changed, an added layer is green and a removed one listed, matching ignores
node ids and order, model names are escaped, the summary.md line, and the browser checks."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from nnreport.api import ComparisonReport, compare
from nnreport.config import ReportConfig
from nnreport.graph.ir import Graph
from nnreport.site.compare_graph import compare_graphs, graph_markdown, mark_graph

from browser import assert_clean, visit

NETS = """
from torch import nn

class Net(nn.Module):
    def __init__(self, width=16, extra=False, name="body"):
        super().__init__()
        layers = [nn.Linear(4, width), nn.ReLU()]
        if extra:
            layers += [nn.Linear(width, width), nn.Tanh()]
        self.name = name
        setattr(self, name, nn.Sequential(*layers))
        self.head = nn.Linear(width, 3)
    def forward(self, x):
        return self.head(getattr(self, self.name)(x))

def base():
    return Net(16)

def wide():
    return Net(32)

def deep():
    return Net(16, extra=True)

def nasty():
    return Net(16, name="<script>alert(1)</script>")
"""

CONFIG = ReportConfig(preset="quick", only=("summary", "graph"))


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nets") / "nets.py"
    path.write_text(NETS)
    return path


@pytest.fixture(scope="module")
def reports(nets: Path) -> dict[str, ComparisonReport]:
    def run(a: str, b: str) -> ComparisonReport:
        return compare(f"{nets}:{a}", f"{nets}:{b}", data="iris", config=CONFIG, names=("base", "head"))

    # Reuse the inspections: every model is inspected once.
    base_wide = run("base", "wide")
    base = base_wide.a
    deep = run("deep", "deep").a
    return {
        "self": compare(base, base, names=("base", "head")), "wide": base_wide,
        "deeper": compare(base, deep, names=("base", "head")), "shallower": compare(deep, base, names=("base", "head")),
        "nasty": run("base", "nasty"),
    }


def _section(page: str) -> str:
    start = page.index('id="compare-graph"')
    return page[start:page.index("</section>", start)]


def _marked_paths(graph: Graph, marks: dict, status: str) -> set[str]:
    """Module paths of B's drawn groups and ops with the given status (inputs/outputs by label)."""
    groups = {g.id: g.module for g in graph.groups}
    nodes = {n.id: n.module or n.label for n in graph.nodes}
    return {groups.get(i) or nodes.get(i, i) for i, m in marks.items() if m.status == status and i}


def test_a_model_compared_with_itself_highlights_nothing(reports: dict[str, ComparisonReport], tmp_path: Path) -> None:
    r = reports["self"]
    view = compare_graphs(r.a.result("graph"), r.b.result("graph"))
    assert view is not None and view.identical and not view.removed and view.marks
    assert {m.status for m in view.marks.values()} == {"same"}
    page = (r.save(tmp_path / "out") / "index.html").read_text()
    section = _section(page)
    assert "cg-changed" not in section.split("</ul>", 1)[1] and "cg-added" not in section.split("</ul>", 1)[1]
    assert "Nothing was added, changed or removed" in section
    assert "**Graph:** no group or op added, changed or removed." in r.markdown()


def test_widening_one_layer_highlights_exactly_the_changed_layers(reports: dict[str, ComparisonReport]) -> None:
    r = reports["wide"]
    gb = r.b.result("graph").graph
    marks, removed, _ = mark_graph(r.a.result("graph").graph, gb)
    changed = _marked_paths(gb, marks, "changed")
    # Oracle: the layer table (summary rows matched by module path) says the same.
    assert changed == {d.path for d in r.result.layer_changes} == {"body", "body.0", "body.1", "head"}
    assert not removed and not _marked_paths(gb, marks, "added")
    node = next(n for n in gb.nodes if n.module == "body.0")
    assert marks[node.id].detail == "params 80 → 160; output 16 → 32"
    assert "16 → 32" in marks[next(n.id for n in gb.nodes if n.module == "body.1")].detail


def test_matching_ignores_node_ids_and_order(reports: dict[str, ComparisonReport]) -> None:
    """Renumber and reverse B's nodes: every module path keeps its status."""
    r = reports["wide"]
    ga, gb = r.a.result("graph").graph, r.b.result("graph").graph
    rename = {n.id: f"x{len(gb.nodes) - i}" for i, n in enumerate(gb.nodes)}
    nodes = tuple(dataclasses.replace(n, id=rename[n.id]) for n in reversed(gb.nodes))
    groups = tuple(dataclasses.replace(g, children=tuple(rename.get(c, c) for c in g.children)) for g in gb.groups)
    edges = tuple(dataclasses.replace(e, source=rename[e.source], target=rename[e.target]) for e in gb.edges)
    shuffled = dataclasses.replace(gb, nodes=nodes, groups=groups, edges=edges)
    before, _, _ = mark_graph(ga, gb)
    after, _, _ = mark_graph(ga, shuffled)
    for status in ("same", "changed", "added"):
        assert _marked_paths(gb, before, status) == _marked_paths(shuffled, after, status)


def test_an_added_layer_is_green_and_a_removed_one_is_listed(reports: dict[str, ComparisonReport],
                                                              tmp_path: Path) -> None:
    deeper = reports["deeper"]
    gb = deeper.b.result("graph").graph
    view = compare_graphs(deeper.a.result("graph"), deeper.b.result("graph"))
    assert view is not None and view.marks is not None and view.view is not None
    assert _marked_paths(gb, view.marks, "added") == {"body.2", "body.3"}
    assert _marked_paths(gb, view.marks, "changed") == {"body"}
    section = _section((deeper.save(tmp_path / "deeper") / "index.html").read_text())
    added = {i for i in re.findall(r'<g class="cg-node cg-added" data-id="([^"]+)"', section)}
    assert added == {n.id for n in gb.nodes if n.module in ("body.2", "body.3")}
    assert "body" in re.findall(r'<g class="cg-frame cg-changed" data-id="([^"]+)"', section)  # opened: it changed
    assert "Removed from" not in section

    shallower = reports["shallower"]
    view = compare_graphs(shallower.a.result("graph"), shallower.b.result("graph"))
    assert view is not None and view.marks is not None
    assert {x.path for x in view.removed} == {"body.2", "body.3"} and view.ops[2] == 2
    assert not _marked_paths(shallower.b.result("graph").graph, view.marks, "added")
    section = _section((shallower.save(tmp_path / "shallower") / "index.html").read_text())
    table = section[section.index("Removed from base"):]
    assert "<code>body.2</code>" in table and "<code>body.3</code>" in table and "Tanh" in table
    line = next(x for x in shallower.markdown().splitlines() if x.startswith("**Graph:**"))
    assert "0 ops changed, 0 added, 2 removed" in line and "1 group changed" in line


def test_model_names_are_escaped(reports: dict[str, ComparisonReport], tmp_path: Path) -> None:
    r = reports["nasty"]
    page = (r.save(tmp_path / "out") / "index.html").read_text()
    section = _section(page)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section  # drawn (added) and listed (body removed)
    # The removed group stands for its contents: listed once, not op by op.
    assert "<code>body</code>" in section and "<code>body.0</code>" not in section


def test_one_side_without_a_graph_says_so(reports: dict[str, ComparisonReport], tmp_path: Path) -> None:
    r = reports["wide"]
    b = dataclasses.replace(r.b, results={k: v for k, v in r.b.results.items() if k != "graph"})
    assert compare_graphs(r.a.result("graph"), None, ("base", "head")).reason == "head has no graph"  # type: ignore[union-attr]
    assert compare_graphs(None, None) is None and graph_markdown(None, None) == ""
    out = ComparisonReport(r.a, b, r.result).save(tmp_path / "out")
    assert "Graphs are not compared: head has no graph" in (out / "index.html").read_text()
    a = dataclasses.replace(r.a, results={k: v for k, v in r.a.results.items() if k != "graph"})
    out = ComparisonReport(a, b, r.result).save(tmp_path / "none")
    assert 'id="compare-graph"' not in (out / "index.html").read_text() and "**Graph:**" not in (out / "summary.md").read_text()


@pytest.mark.browser
def test_the_compare_page_passes_the_browser_checks(browser: object, reports: dict[str, ComparisonReport],
                                                    tmp_path: Path) -> None:
    for name in ("shallower", "nasty"):
        site = reports[name].save(tmp_path / name)
        v = visit(browser, site / "index.html")
        assert_clean(v)
        assert v.svgs and not v.empty_svgs
    single = reports["wide"].save(tmp_path / "single", single_file=True)
    assert 'id="compare-graph"' in (single / "report.html").read_text()
    assert_clean(visit(browser, single / "report.html"))
