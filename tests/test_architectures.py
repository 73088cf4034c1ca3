"""Every analysis on every common image-classifier family (issue 11 §6): ResNet, DenseNet, VGG, SqueezeNet
(a conv head, pooled by a module or by a functional mean), MobileNetV2, EfficientNet, ConvNeXt, Swin, ViT,
and classifiers that return a tuple or a Hugging-Face-style dict. A skip is allowed only where the analysis
has no meaning for the model: the playground (2-D inputs), sequence units (token or (T, F) inputs) and the
attention page for a model without attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nnreport
from nnreport.evaluation.results import EvaluationResult
from nnreport.neurons.layers import OUTPUT, capture, module_map, representative
from nnreport.neurons.results import FacetsResult

from models import FAMILIES, SqueezeFunctional, SqueezeLike, SwinLike, TinyViT

ATTENTION = {"swin", "vit"}
MEANINGLESS = {"playground", "sequence_units"}


def _data(n: int = 96, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four classes, each a bright square in its own quadrant and colour channel, on noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = (rng.normal(size=(n, 3, size, size)) * 0.3).astype(np.float32)
    h = size // 2
    for i, c in enumerate(y):
        x[i, c % 3, (c // 2) * h:(c // 2 + 1) * h, (c % 2) * h:(c % 2 + 1) * h] += 1.5
    return x, y


def _family(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "vit":
        return TinyViT(size=32, patch=8, classes=4).eval()
    return FAMILIES[name]().eval()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_zoo_every_analysis_runs_on_every_family(name: str, tmp_path: object) -> None:
    report = nnreport.Report(_family(name), _data(), nnreport.ReportConfig(preset="quick", cache=False, timings=False))
    insp = report.inspect()
    status = {r.name: (r.status, r.message) for r in insp.manifest.records}
    allowed = MEANINGLESS | (set() if name in ATTENTION else {"attention"})
    wrong = {k: v for k, v in status.items() if v[0] != "ok" and k not in allowed}
    assert not wrong, wrong
    assert {"facets", "cnnvis", "relevance", "landscape", "featvis", "evaluation"} <= {
        k for k, (s, _) in status.items() if s == "ok"}
    assert insp.require("evaluation", EvaluationResult).embedding is not None
    report.save(tmp_path / "site")  # type: ignore[operator]


def test_swin_channels_last_stages_are_read_with_channels_as_units() -> None:
    """Swin's stages give (N, H, W, C): units are the C channels, not the H rows."""
    model, x = _family("swin"), torch.from_numpy(_data(4)[0])
    chosen = {c.path: c for c in representative(model, (x[:1],), 12)}
    assert chosen["features.1"].shape == (16, 8, 8) and chosen["features.1"].channels_last
    assert chosen["features.3"].shape == (32, 4, 4) and chosen["norm"].channels_last
    raw = capture(model, module_map(model, ["features.1"]), (x,))["features.1"]
    read = capture(model, module_map(model, ["features.1"]), (x,), last_axis=frozenset({"features.1"}))["features.1"]
    assert raw.shape == (4, 8, 8, 16) and read.shape == (4, 16, 8, 8)
    assert torch.equal(read[:, 5], raw[..., 5])


def test_convnext_blocks_that_permute_back_stay_channels_first() -> None:
    model, x = _family("convnext"), torch.from_numpy(_data(2)[0])
    chosen = representative(model, (x[:1],), 12)
    assert all(not c.channels_last for c in chosen)
    assert [c.shape for c in chosen if c.path.startswith("features")][:3] == [(16, 8, 8)] * 3


def test_model_output_is_a_layer_when_no_module_gives_it() -> None:
    x = torch.from_numpy(_data(2)[0])
    torch.manual_seed(0)
    pooled = representative(SqueezeLike().eval(), (x[:1],), 12)
    assert pooled[-1].path == "classifier" and pooled[-1].shape == (4, 1, 1)  # the pool module gives the scores
    functional = SqueezeFunctional().eval()
    chosen = representative(functional, (x[:1],), 12)
    assert chosen[-1].path == OUTPUT and chosen[-1].shape == (4,)
    got = capture(functional, module_map(functional, [OUTPUT]), (x,))[OUTPUT]
    assert torch.equal(got, functional(x))
    hf = _family("dict_output")
    last = representative(hf, (x[:1],), 12)[-1]
    assert last.path == OUTPUT and last.shape == (4,)  # the logits, not the projection called after them
    assert torch.equal(capture(hf, module_map(hf, [OUTPUT]), (x,))[OUTPUT], hf(x)["logits"])


def test_facets_optimise_the_class_score_of_a_conv_head() -> None:
    torch.manual_seed(0)
    insp = nnreport.inspect(SqueezeFunctional().eval(), _data(), nnreport.ReportConfig(
        preset="quick", cache=False, only=("activations", "facets")))
    record = insp.record("facets")
    assert record is not None and record.status == "ok", record
    facets = insp.require("facets", FacetsResult)
    assert facets.output == OUTPUT and facets.classes


def test_cnnvis_reads_windowed_layers_per_sample() -> None:
    """Swin's window attention runs on (N × windows, tokens, C): its statistics are still one row per sample."""
    from nnreport.cnnvis.overview import collect

    x = torch.from_numpy(_data(6)[0])
    units = {u.path: u for u in collect(SwinLike().eval(), x, 4)}
    qkv = units["features.1.attn.qkv"]
    assert np.concatenate(qkv.mean).shape == (6, 48) and qkv.spatial == ()
    assert np.concatenate(units["head"].mean).shape == (6, 4)


def test_evaluation_embeds_a_model_without_linear_layers_by_its_last_convolution() -> None:
    torch.manual_seed(0)
    insp = nnreport.inspect(SqueezeLike().eval(), _data(), nnreport.ReportConfig(
        preset="quick", cache=False, only=("evaluation",)))
    e = insp.require("evaluation", EvaluationResult).embedding
    assert e is not None and e.kind == "conv" and e.layer == "classifier.1" and e.dimensions == 16
