"""Graph capture, transformations and layout: zoo coverage, invariants, known optima, determinism."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch import nn

import nnreport
from nnreport import codec, scoped
from nnreport.graph import capture_graph, draw_graph
from nnreport.graph.drawing import all_groups, draw_view
from nnreport.graph.layout import layered_layout
from nnreport.graph.metrics import count_crossings, overlapping_boxes

from models import XSS, ZOO


@pytest.fixture(scope="module")
def zoo_graphs() -> dict[str, object]:
    out = {}
    for name, build in ZOO.items():
        model, inputs = build()
        out[name] = (model, inputs, capture_graph(model, inputs))
    return out


def _check_drawing(d) -> None:
    boxes = list(d.nodes.values())
    # Edges point down: y never decreases along a polyline.
    for e in d.edges:
        ys = [p[1] for p in e.points]
        assert all(b >= a - 1e-6 for a, b in zip(ys, ys[1:], strict=False)), (e.source, e.target, e.points)
        assert e.source in d.nodes and e.target in d.nodes
    # No two boxes overlap unless one is drawn inside the other (an open group's frame).
    by_id = {b.id: b for b in boxes}

    def ancestors(b):
        out = set()
        while b.group:
            out.add(b.group)
            b = by_id[b.group]
        return out

    rects = [(b.x, b.y, b.width, b.height) for b in boxes]
    for i, j in overlapping_boxes(rects):
        a, b = boxes[i], boxes[j]
        assert a.id in ancestors(b) or b.id in ancestors(a), f"{a.id} overlaps {b.id}"
    # Children lie inside their open group's frame.
    for b in boxes:
        if b.group:
            f = by_id[b.group]
            assert f.x - 0.5 <= b.x and b.x + b.width <= f.x + f.width + 0.5
            assert f.y - 0.5 <= b.y and b.y + b.height <= f.y + f.height + 0.5
    # Edge labels overlap neither each other nor boxes.
    labels = [(e.label_at[0], e.label_at[1] - 11, len(e.label) * 5.6, 11) for e in d.edges if e.label_at]
    assert not overlapping_boxes(labels, tol=1.0)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_captures_and_draws_at_every_level(zoo_graphs, name: str) -> None:
    model, inputs, graph = zoo_graphs[name]
    ops = [n for n in graph.nodes if n.kind == "op"]
    assert ops, "no op captured"
    assert sum(n.kind == "input" for n in graph.nodes) == len(inputs)
    assert any(n.kind == "output" for n in graph.nodes)
    ids = {n.id for n in graph.nodes}
    assert all(e.source in ids and e.target in ids for e in graph.edges)
    # Every op is reachable from an input or is a constant-free op with no data input.
    for expand in ("top", "all", "flat"):
        _check_drawing(draw_graph(graph, expand=expand))


def test_control_flow_falls_back_to_the_eager_recorder() -> None:
    model, inputs = ZOO["control_flow"]()
    graph = capture_graph(model, inputs)
    assert graph.capture == "eager"
    assert "torch.export failed" in graph.capture_note
    # The branch taken by the example input is what was captured: one of a / b, then head.
    modules = {n.module for n in graph.nodes if n.kind == "op"}
    assert "head" in modules and len(modules & {"a", "b"}) == 1


def test_dict_outputs_are_named_by_key() -> None:
    model, inputs = ZOO["dict_output"]()
    for method in ("export", "eager"):
        graph = capture_graph(model, inputs, method)
        outs = sorted(n.label for n in graph.nodes if n.kind == "output")
        assert outs == ["output['embedding']", "output['logits']"], (method, outs)


def test_export_and_eager_agree_on_simple_models() -> None:
    for name in ("mlp", "tiny_cnn", "resnet", "densenet", "inception", "reused"):
        model, inputs = ZOO[name]()
        a, b = capture_graph(model, inputs, "export"), capture_graph(model, inputs, "eager")
        ops_a = sorted(n.op for n in a.nodes if n.kind == "op")
        ops_b = sorted(n.op for n in b.nodes if n.kind == "op")
        assert len(ops_a) == len(ops_b), (name, ops_a, ops_b)
        assert sum(n.params for n in a.nodes) == sum(n.params for n in b.nodes)


def test_reused_module_gives_one_group_per_call() -> None:
    model, inputs = ZOO["reused"]()
    for method in ("export", "eager"):
        graph = capture_graph(model, inputs, method)
        ids = {g.id for g in graph.groups}
        assert {"shared", "shared@1"} <= ids, (method, ids)
        calls = [g for g in graph.groups if g.module == "shared" and g.type != "series"]
        assert len({g.hash for g in calls}) == 1  # same structure, same colour


def test_parameters_are_folded_not_drawn() -> None:
    model, inputs = ZOO["tiny_cnn"]()
    graph = capture_graph(model, inputs)
    assert sum(n.params for n in graph.nodes) == sum(p.numel() for p in model.parameters())
    convs = [n for n in graph.nodes if n.op == "conv2d"]
    assert convs and all(n.param_names for n in convs)
    assert all(n.mult_adds > 0 for n in convs)
    # Conv mult-adds for one sample: out elements x (in_channels x k x k).
    first = convs[0]
    assert first.mult_adds == 8 * 16 * 16 * (1 * 3 * 3)


def test_buffers_are_folded_but_not_counted_as_parameters(zoo_graphs) -> None:
    model, _, graph = zoo_graphs["resnet"]
    bns = [n for n in graph.nodes if n.op == "batch_norm"]
    assert bns and all(any("running_mean" in p for p in n.param_names) for n in bns)
    assert sum(n.params for n in graph.nodes) == sum(p.numel() for p in model.parameters())


def test_plumbing_is_folded_into_annotations() -> None:
    model, inputs = ZOO["functional"]()  # has x.view(x.size(0), -1)
    graph = capture_graph(model, inputs)
    assert not [n for n in graph.nodes if n.op in ("view", "size", "getattr")]
    assert any("view" in n.aux for n in graph.nodes)


def test_capture_leaves_the_model_untouched() -> None:
    model, inputs = ZOO["resnet"]()
    model.train()
    before = scoped.model_state(model)
    params = [p.detach().clone() for p in model.state_dict().values()]
    for method in ("export", "eager"):
        capture_graph(model, inputs, method)
    assert scoped.model_state(model) == before
    assert all(torch.equal(a, b) for a, b in zip(params, model.state_dict().values(), strict=False))


def test_densenet_concatenations_stay_nodes(zoo_graphs) -> None:
    graph = zoo_graphs["densenet"][2]
    cats = [n for n in graph.nodes if n.op == "cat"]
    assert len(cats) >= 4
    indeg = {c.id: sum(e.target == c.id for e in graph.edges) for c in cats}
    assert max(indeg.values()) >= 3


def test_series_collapse_of_identical_chained_blocks() -> None:
    from models import InceptionLike

    torch.manual_seed(0)
    model = InceptionLike(blocks=4).eval()
    graph = capture_graph(model, (torch.randn(1, 3, 8, 8),))
    series = [g for g in graph.groups if g.type == "series"]
    assert len(series) == 1 and series[0].series == 4
    assert series[0].name == "InceptionBlock ×4"
    members = [g for g in graph.groups if g.parent == series[0].id]
    assert len(members) == 4 and len({g.hash for g in members}) == 1


def test_edges_bundle_at_the_lowest_common_ancestor(zoo_graphs) -> None:
    graph = zoo_graphs["inception"][2]
    d = draw_graph(graph, expand="top")
    # Collapsed overview: only top-level items; the stem -> blocks edge carries the bundle.
    assert all(b.group == "" for b in d.nodes.values())
    total = sum(e.count for e in d.edges)
    assert total < len(graph.edges)
    widths = [e.width for e in draw_graph(graph, expand="flat").edges]
    assert min(widths) >= 1.0 and max(widths) <= 4.0


def test_expanding_a_group_keeps_the_rest_collapsed(zoo_graphs) -> None:
    graph = zoo_graphs["resnet"][2]
    d = draw_graph(graph, expand=["layers.1.0"])
    kinds = {b.id: b.kind for b in d.nodes.values()}
    assert kinds["layers"] == "expanded" and kinds["layers.1.0"] == "expanded"
    assert kinds["layers.0.0"] == "group"


def _random_dag(seed: int, n: int = 40) -> tuple[dict, list]:
    rng = random.Random(seed)
    sizes = {i: (rng.randint(20, 90), rng.randint(16, 40)) for i in range(n)}
    edges = [(rng.randint(max(0, v - 8), v - 1), v) for v in range(1, n) for _ in range(rng.randint(1, 2))]
    return sizes, edges


@pytest.mark.parametrize("seed", range(5))
def test_layout_invariants_on_random_dags(seed: int) -> None:
    sizes, edges = _random_dag(seed)
    lay = layered_layout(sizes, edges, seed=seed)
    rects = [(cx - sizes[n][0] / 2, cy - sizes[n][1] / 2, *sizes[n]) for n, (cx, cy) in lay.centres.items()]
    assert not overlapping_boxes(rects)
    for (u, v), route in zip(edges, lay.routes, strict=False):
        assert lay.layers[u] < lay.layers[v]
        ys = [p[1] for p in route]
        assert ys == sorted(ys)
        assert abs(route[0][1] - (lay.centres[u][1] + sizes[u][1] / 2)) < 1e-6
        assert abs(route[-1][1] - (lay.centres[v][1] - sizes[v][1] / 2)) < 1e-6
    again = layered_layout(sizes, edges, seed=seed)
    assert again.centres == lay.centres and again.routes == lay.routes


def _brute_force_min_crossings(layers: list[list[str]], edges: list[tuple[str, str]]) -> int:
    best = None
    for perms in itertools.product(*(itertools.permutations(layer) for layer in layers)):
        pos = {v: i for perm in perms for i, v in enumerate(perm)}
        c = sum(1 for (a, b), (c_, d) in itertools.combinations(edges, 2)
                if (pos[a] - pos[c_]) * (pos[b] - pos[d]) < 0)
        best = c if best is None else min(best, c)
    return best


@pytest.mark.parametrize("case", ["k33", "ladder", "twisted"])
def test_crossings_reach_the_known_optimum_on_small_graphs(case: str) -> None:
    if case == "k33":  # K3,3 between two layers: every order gives 9 crossings
        top, bottom = ["a", "b", "c"], ["x", "y", "z"]
        edges = [(u, v) for u in top for v in bottom]
    elif case == "ladder":  # a twisted ladder that can be drawn planar
        top, bottom = ["a", "b", "c", "d"], ["w", "x", "y", "z"]
        edges = [("a", "z"), ("b", "y"), ("c", "x"), ("d", "w"), ("a", "y"), ("b", "x")]
    else:  # a permutation: planar after reordering
        top, bottom = ["a", "b", "c", "d", "e"], ["v", "w", "x", "y", "z"]
        edges = [("a", "x"), ("b", "z"), ("c", "v"), ("d", "y"), ("e", "w")]
    optimum = _brute_force_min_crossings([top, bottom], edges)
    sizes = {n: (30.0, 20.0) for n in top + bottom}
    lay = layered_layout(sizes, edges)
    assert lay.crossings == optimum
    # Geometrically, crossings that coincide at one point count once.
    assert count_crossings(lay.routes) == optimum if optimum == 0 else 0 < count_crossings(lay.routes) <= optimum


def test_drawing_is_deterministic_and_round_trips(zoo_graphs) -> None:
    graph = zoo_graphs["densenet"][2]
    a = draw_view(graph, all_groups(graph), key="*")
    b = draw_view(graph, all_groups(graph), key="*")
    assert a == b
    tp = type(graph)
    assert codec.from_files(tp, *codec.to_files(graph)) == graph
    assert codec.from_files(type(a), *codec.to_files(a)) == a


def test_public_api_draw_graph_and_svg_escape_names() -> None:
    model, inputs = ZOO["nasty_names"]()
    d = nnreport.draw_graph(model, inputs, expand="all")
    assert d.nodes and d.edges
    box = next(iter(d.nodes.values()))
    assert {"x", "y", "width", "height", "label", "group"} <= set(vars(box))
    svg = d.svg()
    assert svg.lstrip().startswith("<svg") and "</svg>" in svg
    assert XSS not in svg and "&lt;script&gt;" in svg
    import xml.dom.minidom

    xml.dom.minidom.parseString(svg)  # well-formed


def test_draw_graph_accepts_a_single_tensor_and_group_ids() -> None:
    model, (x,) = ZOO["resnet"]()
    d = nnreport.draw_graph(model, x, expand=["layers"])
    assert d.nodes["layers"].kind == "expanded"


def test_analysis_result_round_trips_and_stays_small() -> None:
    from nnreport.analyses.graph import GraphConfig, GraphResult, graph_analysis
    from nnreport.context import Context

    model, inputs = ZOO["resnet"]()
    result = graph_analysis(Context(model, inputs), GraphConfig())
    text, npz = codec.to_files(result)
    assert codec.from_files(GraphResult, text, npz) == result
    # Only the overview is laid out in Python; the page lays out the rest.
    assert [v.key for v in result.views] == [""]
    assert result.graph == capture_graph(model, inputs) and len(text) < 100_000


@pytest.mark.parametrize("name", sorted(ZOO))
def test_packed_graph_round_trips_and_names_ops_by_group(zoo_graphs, name: str) -> None:
    from nnreport.graph.packed import pack, unpack

    graph = zoo_graphs[name][2]
    assert unpack(pack(graph)) == graph
    groups = {g.id: g for g in graph.groups}
    for n in graph.nodes:
        owner = n.group
        while owner and groups[owner].series:
            owner = groups[owner].parent
        assert n.id.startswith(owner + ".") if owner else n.id not in groups


def test_a_stack_of_equal_blocks_is_stored_once() -> None:
    from nnreport.graph.packed import pack, unpack

    from models import gpt_stack

    small, large = (capture_graph(*gpt_stack(k)) for k in (3, 24))
    a, b = pack(small), pack(large)
    assert len(b.types) == len(a.types) and len(b.records) == len(a.records)  # one block type, however many
    assert unpack(b) == large
    assert any(n.id.startswith("blocks.23.attn.") for n in large.nodes)


class _Unused(nn.Module):
    def forward(self, x):  # pragma: no cover - not a test
        return x


def test_opening_a_group_relays_out_only_it_and_its_ancestors(zoo_graphs, monkeypatch) -> None:
    from nnreport.graph import drawing

    graph = zoo_graphs["inception"][2]
    calls: list[int] = []
    real = drawing.layered_layout
    monkeypatch.setattr(drawing, "layered_layout", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache: dict = {}
    draw_view(graph, ("blocks",), cache=cache)
    calls.clear()
    cached = draw_view(graph, ("blocks.1.branch3",), cache=cache)
    # blocks.1.branch3 is new; blocks.1, blocks and the model changed inside; blocks.0 did not.
    assert len(calls) == 4
    assert cached == draw_view(graph, ("blocks.1.branch3",))


def _proper_cross(p1, p2, q1, q2) -> bool:
    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return (v > 1e-9) - (v < -1e-9)

    return (orient(p1, p2, q1) * orient(p1, p2, q2) < 0) and (orient(q1, q2, p1) * orient(q1, q2, p2) < 0)


def _meet(a, b, c, d) -> tuple[float, float]:
    r, s = (b[0] - a[0], b[1] - a[1]), (d[0] - c[0], d[1] - c[1])
    t = ((c[0] - a[0]) * s[1] - (c[1] - a[1]) * s[0]) / (r[0] * s[1] - r[1] * s[0])
    return (round(a[0] + t * r[0], 1), round(a[1] + t * r[1], 1))


@pytest.mark.parametrize("seed", range(3))
def test_geometric_crossing_count_matches_a_brute_force_oracle(seed: int) -> None:
    from nnreport.graph.metrics import edge_pair_crossings

    rng = random.Random(seed)
    lines = [[(rng.uniform(0, 300), rng.uniform(0, 300)) for _ in range(rng.randint(2, 4))] for _ in range(12)]
    segs = [(k, a, b) for k, pts in enumerate(lines) for a, b in zip(pts, pts[1:], strict=False)]
    crossing = [(a, b, c, d) for (_, a, b), (_, c, d) in itertools.combinations(segs, 2) if _proper_cross(a, b, c, d)]
    points = {_meet(*q) for q in crossing}
    assert count_crossings(lines) == len(points)
    assert edge_pair_crossings(lines) == len(crossing)
    # Two edges bundled along a shared piece, crossed once by a third: one point, two edge pairs.
    bundle = [[(0, 0), (0, 100), (-50, 150)], [(0, 0), (0, 100), (50, 150)], [(-40, 50), (40, 50)]]
    assert count_crossings(bundle) == 1 and edge_pair_crossings(bundle) == 2
