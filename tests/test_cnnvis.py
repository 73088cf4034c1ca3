"""CNNVis: clustering oracles and properties, effective edge weights, skips, the zoo and the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from torch import nn

from nnreport import api, codec
from nnreport.cnnvis.clustering import bicluster_order, cluster_neurons, linear_cka, segment_layers
from nnreport.cnnvis.results import CNNVisResult
from nnreport.config import ReportConfig
from nnreport.datasets import Dataset, load_builtin
from nnreport.site.build import render

from browser import assert_clean, visit
from models import XSS, ZOO, FunctionalNet, TinyCNN


def _config(seed: int = 0, **options: object) -> ReportConfig:
    return ReportConfig(preset="quick", seed=seed, only=("cnnvis",), cache=False, analyses={"cnnvis": dict(options)})


def _synthetic(shape: tuple[int, ...], n: int = 96, labels: bool = True, kind: str = "tabular") -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = rng.integers(0, 3, n) if labels else None
    return Dataset("synthetic", kind, x, y, x, y)  # type: ignore[arg-type]


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return TinyCNN().eval()


@pytest.fixture(scope="module")
def digits_run() -> tuple[object, CNNVisResult]:
    insp = api.inspect(_tiny_cnn(), load_builtin("digits"), _config(samples=160))
    result = insp.result("cnnvis")
    assert result is not None, insp.manifest.records
    return insp, result


# --- clustering -----------------------------------------------------------------------------------

def test_neuron_clusters_are_stable_under_a_fixed_seed() -> None:
    profiles = np.random.default_rng(3).normal(size=(40, 10))
    a = cluster_neurons(profiles, 5, 3, seed=7)
    b = cluster_neurons(profiles, 5, 3, seed=7)
    assert np.array_equal(a.labels, b.labels) and a.representatives == b.representatives
    # clusters are numbered by their first unit, so equal partitions give equal labels
    assert [m[0] for m in a.members] == sorted(m[0] for m in a.members)


def test_whole_analysis_is_deterministic_for_a_seed(digits_run) -> None:
    insp, r = digits_run
    again = api.inspect(_tiny_cnn(), load_builtin("digits"), _config(samples=160)).result("cnnvis")
    assert codec.to_files(again) == codec.to_files(r)
    for group_a, group_b in zip(r.groups, again.groups, strict=True):
        assert np.array_equal(group_a.labels, group_b.labels)


def test_kmeans_recovers_planted_neuron_clusters() -> None:
    rng = np.random.default_rng(0)
    prototypes = rng.normal(size=(3, 8)) * 3
    truth = np.repeat(np.arange(3), 10)
    profiles = prototypes[truth] + rng.normal(size=(30, 8)) * 0.1
    got = cluster_neurons(profiles, 3, 2, seed=1)
    assert adjusted_rand_score(truth, got.labels) == 1.0
    for members, reps in zip(got.members, got.representatives, strict=True):
        assert set(reps) <= set(members) and len(reps) == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coclustering_recovers_a_planted_block_matrix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows, cols = np.repeat(np.arange(3), [5, 7, 4]), np.repeat(np.arange(3), [3, 4, 3])
    planted = (rows[:, None] == cols[None, :]) * 5.0 + rng.uniform(0, 0.5, (16, 10))
    pr, pc = rng.permutation(16), rng.permutation(10)
    shuffled = planted[pr][:, pc]
    got = bicluster_order(shuffled, 3, "cocluster", seed=0)
    assert adjusted_rand_score(rows[pr], got.row_labels) == 1.0
    assert adjusted_rand_score(cols[pc], got.column_labels) == 1.0
    # co-clusters pair row block k with column block k, and the reordered matrix is block diagonal
    reordered = shuffled[got.row_order][:, got.column_order]
    r_lab, c_lab = got.row_labels[got.row_order], got.column_labels[got.column_order]
    on_block = reordered[r_lab[:, None] == c_lab[None, :]]
    assert on_block.min() > reordered[r_lab[:, None] != c_lab[None, :]].max()
    assert np.all(np.diff(r_lab) >= 0) and np.all(np.diff(c_lab) >= 0)


def test_spectral_biclustering_recovers_a_planted_checkerboard() -> None:
    rng = np.random.default_rng(0)
    rows, cols = np.repeat(np.arange(2), [6, 6]), np.repeat(np.arange(2), [5, 5])
    levels = np.array([[1.0, 6.0], [8.0, 2.0]])
    planted = levels[rows][:, cols] + rng.uniform(0, 0.3, (12, 10))
    pr, pc = rng.permutation(12), rng.permutation(10)
    got = bicluster_order(planted[pr][:, pc], 2, "bicluster", seed=0)
    assert adjusted_rand_score(rows[pr], got.row_labels) == 1.0
    assert adjusted_rand_score(cols[pc], got.column_labels) == 1.0


def test_layer_segments_are_consecutive_runs_and_recover_planted_blocks() -> None:
    blocks = np.repeat(np.arange(3), [3, 2, 4])
    sim = np.where(blocks[:, None] == blocks[None, :], 0.95, 0.2)
    np.fill_diagonal(sim, 1.0)
    groups = segment_layers(sim, 3, 0.99)
    assert groups == [[0, 1, 2], [3, 4], [5, 6, 7, 8]]
    for max_groups in range(1, 10):
        got = segment_layers(np.random.default_rng(max_groups).uniform(size=(9, 9)), max_groups, 2.0)
        assert [i for g in got for i in g] == list(range(9)) and len(got) <= max_groups


def test_linear_cka_against_the_hsic_formula() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 4))
    h = np.eye(30) - 1 / 30
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    oracle = np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_))
    assert linear_cka(x, y) == pytest.approx(oracle, rel=1e-9)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)


# --- the analysis -----------------------------------------------------------------------------------

def test_edges_equal_cluster_averaged_weights_for_a_linear_stack() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 3)).eval()
    r = api.inspect(model, _synthetic((4,)), _config(layer_groups=3, layer_similarity=2.0, neuron_clusters=3)).result("cnnvis")
    assert [g.representative for g in r.groups] == [0, 1, 2]
    for e in r.edges:
        w = (model[1] if e.source == 0 else model[2]).weight.detach().numpy()
        src, dst = r.groups[e.source].clusters, r.groups[e.target].clusters
        expected = np.array([[w[np.ix_(b.units, a.units)].mean() for b in dst] for a in src])
        assert np.allclose(e.weights, expected, atol=1e-5)


def test_profiles_and_patches(digits_run) -> None:
    _, r = digits_run
    assert r.by_label and r.classes == tuple(str(i) for i in range(10))
    assert sorted(r.class_order) == list(range(10))
    assert [layer.name for layer in r.layers] == ["features.0", "features.3", "classifier"]
    for g in r.groups:
        assert sorted(g.order) == list(range(len(g.clusters)))
        covered = sorted(u for c in g.clusters for u in c.units)
        assert covered == list(range(r.layers[g.representative].units))
        for c in g.clusters:
            assert c.patches is not None and c.patches.dtype == np.uint8 and c.patches.shape[1:] == (16, 16, 3)
            assert len(c.patches) == len(c.patch_sources)
            # standardised profile: each unit's has mean 0, so their average does too
            assert abs(float(c.profile.mean())) < 1e-5


def test_first_layer_patches_are_its_receptive_field() -> None:
    from nnreport.cnnvis.overview import Unit, _boxes

    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU()).eval()
    x = torch.randn(2, 1, 10, 10)
    unit = Unit("0", conv, [], [], [np.array([[44, 0], [0, 99]])], (10, 10))
    boxes = _boxes(model, x, [unit], [(0, 0, 0), (0, 1, 1)], chunk=2)
    assert boxes[0] == (3, 6, 3, 6)  # position 44 = (4, 4): rows and columns 3..5
    assert boxes[1] == (8, 10, 8, 10)  # position 99 = (9, 9): cut by the border
    assert _boxes(model, x, [unit], [(0, 0, 0), (0, 1, 1)], chunk=1) == boxes  # batched within the memory budget


def test_patches_and_edges_are_the_same_in_small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tight memory budget splits the gradient passes (patch boxes, cluster edges) into batches: the result
    is the same up to float summation order."""
    from nnreport.cnnvis import overview

    passes: list[int] = []
    real = overview._gradient_mass
    monkeypatch.setattr(overview, "_gradient_mass", lambda *a: passes.append(len(a[4])) or real(*a))
    torch.manual_seed(0)
    model, _ = ZOO["tiny_cnn"]()
    data = _synthetic((1, 16, 16), kind="image")
    wide = api.inspect(model, data, _config()).result("cnnvis")
    assert len(passes) == 1
    tight = api.inspect(model, data, ReportConfig(preset="quick", cache=False, only=("cnnvis",),
                                                  memory_budget="64KB")).result("cnnvis")
    assert len(passes) > 2 and max(passes[1:]) < passes[0]
    assert len(wide.edges) == len(tight.edges) > 0
    for a, b in zip(wide.edges, tight.edges, strict=True):
        np.testing.assert_allclose(a.weights, b.weights, rtol=1e-4, atol=1e-6)
    for ga, gb in zip(wide.groups, tight.groups, strict=True):
        assert [c.patch_sources for c in ga.clusters] == [c.patch_sources for c in gb.clusters]
        for ca, cb in zip(ga.clusters, gb.clusters, strict=True):
            assert ca.patches is not None and cb.patches is not None and np.array_equal(ca.patches, cb.patches)


def test_unlabelled_data_uses_kmeans_clusters() -> None:
    torch.manual_seed(0)
    model, _ = ZOO["mlp"]()
    r = api.inspect(model, _synthetic((4,), labels=False), _config(data_clusters=4)).result("cnnvis")
    assert not r.by_label and r.classes == tuple(f"cluster {i}" for i in range(1, 5))
    assert any("k-means" in n for n in r.notes)


def test_skips_with_a_reason() -> None:
    insp = api.inspect(FunctionalNet(), load_builtin("digits"), _config())
    assert insp.record("cnnvis").status == "skipped" and "nn.Conv" in insp.record("cnnvis").message
    model, inputs = ZOO["tiny_cnn"]()
    insp = api.inspect(model, None, _config(), example_inputs=inputs)
    assert insp.record("cnnvis").status == "skipped" and "data" in insp.record("cnnvis").message


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_runs_or_skips(name: str) -> None:
    model, inputs = ZOO[name]()
    shape = tuple(inputs[0].shape[1:])
    floats = len(inputs) == 1 and inputs[0].is_floating_point()  # token-id models get no synthetic float data
    data = _synthetic(shape, n=48, kind="image" if len(shape) == 3 else "tabular") if floats else None
    insp = api.inspect(model, data, _config(samples=48, edge_samples=16), example_inputs=inputs)
    record = insp.record("cnnvis")
    assert record.status in ("ok", "skipped"), (name, record.message, record.traceback)
    assert record.message or record.status == "ok"


def test_result_round_trips(digits_run) -> None:
    _, r = digits_run
    back = codec.from_files(CNNVisResult, *codec.to_files(r))
    assert codec.to_files(back) == codec.to_files(r)


# --- the page --------------------------------------------------------------------------------------

def test_page_is_clean_in_chromium(digits_run, browser, tmp_path: Path) -> None:
    insp, r = digits_run
    out = render(insp, tmp_path / "site")
    html = (out / "cnnvis.html").read_text()
    assert html.count('class="cnnvis-cluster"') == sum(len(g.clusters) for g in r.groups)
    assert html.count("<path d=") >= 1
    assert_clean(visit(browser, out / "cnnvis.html"))
    single = render(insp, tmp_path / "single", single_file=True)
    assert_clean(visit(browser, single / "report.html"))


def test_names_are_escaped_and_pages_without_patches_draw(browser, tmp_path: Path) -> None:
    model, inputs = ZOO["nasty_names"]()
    insp = api.inspect(model, _synthetic((4,)), _config(), example_inputs=inputs)
    assert insp.record("cnnvis").status == "ok"
    out = render(insp, tmp_path / "site")
    html = (out / "cnnvis.html").read_text()
    assert XSS not in html and "&lt;script&gt;" in html
    assert_clean(visit(browser, out / "cnnvis.html"))
